//! The study's numbers in markdown, made from the CSV files in `results/` and nothing else:
//! `results/summary.md`, and every study number in the README, `docs/` and the notebooks'
//! markdown cells, which sit between markers that [`fill`] (and, for notebooks,
//! [`fill_notebook`]) rewrites. Since both come from the CSV files alone, a test can
//! regenerate them from the committed `results/` and find any number that drifted.
//!
//! # Markers
//! An HTML comment (invisible when rendered) opens a marked span and `<!-- /digits -->` closes
//! it; [`fill`] replaces what lies between.
//!
//! - A value: `<!-- digits FORMAT FILE COLUMN=VALUE... -->38.16% ± 4.20<!-- /digits -->`.
//!   `FILE` is a table of `results/` without `.csv`; the `COLUMN=VALUE` pairs must select
//!   exactly one row. `FORMAT` is one of
//!   - `ci:COL:D`: `COL` (a `_pct` column) with its 95% interval as "mean% ± half-width", `D`
//!     decimals (the interval columns are `COL` with `_pct` replaced by `_ci_low_pct` and
//!     `_ci_high_pct`);
//!   - `pm:COL:D`: the same without the % sign (differences in points);
//!   - `pct:COL:D`: the value with `D` decimals and a % sign;
//!   - `num:COL:D`: the value with `D` decimals;
//!   - `int:COL`: a whole number with thousands separators (`15,008`);
//!   - `p:COL`: a p-value to two significant figures ([`p_value`]).
//!
//!   One value is not a row's: `<!-- digits minutes:D runs -->`, the study's recorded
//!   minutes in all (training, adaptation and predictions), the `time` table's last cell.
//! - A table: `<!-- digits table NAME -->` on a line of its own, the table, and
//!   `<!-- /digits -->`: one of the tables of `results/summary.md` ([`TABLES`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::robustness::{level_value, FAMILIES};
use crate::io::write_atomic;
use crate::models::group_thousands;
use crate::{Error, Result};

/// One CSV table of `results/`, as text: its header and its rows.
#[derive(Clone, Debug)]
pub struct Csv {
    pub name: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    /// Parses CSV text as polars writes it: comma-separated, fields with commas or quotes
    /// quoted, quotes doubled.
    pub fn parse(name: &str, text: &str) -> Result<Csv> {
        let mut records = Vec::new();
        let mut field = String::new();
        let mut record = Vec::new();
        let mut quoted = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => record.push(std::mem::take(&mut field)),
                (false, '\n') => {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                (false, '\r') => {}
                (false, c) => field.push(c),
            }
        }
        if !field.is_empty() || !record.is_empty() {
            record.push(field);
            records.push(record);
        }
        let mut records = records.into_iter();
        let header = records
            .next()
            .ok_or_else(|| Error::invalid(format!("results/{name}.csv is empty")))?;
        let rows: Vec<Vec<String>> = records.collect();
        if let Some(bad) = rows.iter().position(|r| r.len() != header.len()) {
            return Err(Error::invalid(format!(
                "results/{name}.csv: row {} has {} fields, the header {}; regenerate it with `digits study`",
                bad + 1,
                rows[bad].len(),
                header.len()
            )));
        }
        Ok(Csv {
            name: name.to_string(),
            header,
            rows,
        })
    }

    fn column(&self, col: &str) -> Result<usize> {
        self.header.iter().position(|h| h == col).ok_or_else(|| {
            Error::invalid(format!(
                "results/{}.csv has no column `{col}` (it has: {})",
                self.name,
                self.header.join(", ")
            ))
        })
    }

    /// The rows as maps from column to value, in file order.
    pub fn records(&self) -> Vec<Row<'_>> {
        self.rows
            .iter()
            .map(|r| Row {
                csv: self,
                cells: r,
            })
            .collect()
    }

    /// The one row whose columns hold the given values.
    pub fn find(&self, keys: &[(&str, &str)]) -> Result<Row<'_>> {
        let cols = keys
            .iter()
            .map(|(k, _)| self.column(k))
            .collect::<Result<Vec<_>>>()?;
        let hits: Vec<&Vec<String>> = self
            .rows
            .iter()
            .filter(|r| cols.iter().zip(keys).all(|(&c, (_, v))| r[c] == *v))
            .collect();
        let what = keys
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        match hits.as_slice() {
            [one] => Ok(Row {
                csv: self,
                cells: one,
            }),
            [] => Err(Error::invalid(format!(
                "results/{}.csv has no row with {what}",
                self.name
            ))),
            more => Err(Error::invalid(format!(
                "results/{}.csv has {} rows with {what}; name more columns",
                self.name,
                more.len()
            ))),
        }
    }
}

/// One row of a [`Csv`].
#[derive(Clone, Copy)]
pub struct Row<'a> {
    csv: &'a Csv,
    cells: &'a [String],
}

impl<'a> Row<'a> {
    /// A number in a column that tables written before it was added lack: `None` where the
    /// column is missing or the cell is empty.
    pub fn f64_if_present(&self, col: &str) -> Result<Option<f64>> {
        match self.csv.header.iter().any(|h| h == col) && !self.str(col)?.is_empty() {
            true => self.f64(col).map(Some),
            false => Ok(None),
        }
    }

    pub fn str(&self, col: &str) -> Result<&'a str> {
        Ok(&self.cells[self.csv.column(col)?])
    }

    pub fn f64(&self, col: &str) -> Result<f64> {
        let s = self.str(col)?;
        s.parse().map_err(|_| {
            Error::invalid(format!(
                "results/{}.csv: `{s}` in column `{col}` is not a number",
                self.csv.name
            ))
        })
    }

    /// A `_pct` column with its interval: (mean, half-width, seeds). The half-width is 0
    /// where the interval is empty (one seed).
    pub fn ci(&self, col: &str) -> Result<(f64, f64)> {
        let stem = col.strip_suffix("_pct").ok_or_else(|| {
            Error::invalid(format!("`{col}` has no interval: only `_pct` columns do"))
        })?;
        let mean = self.f64(col)?;
        let low = self.str(&format!("{stem}_ci_low_pct"))?;
        let high = self.str(&format!("{stem}_ci_high_pct"))?;
        let half = match (low.parse::<f64>(), high.parse::<f64>()) {
            (Ok(l), Ok(h)) if l.is_finite() && h.is_finite() => (h - l) / 2.0,
            _ => 0.0,
        };
        Ok((mean, half))
    }
}

/// The tables of `results/` by name (without `.csv`).
#[derive(Clone, Debug, Default)]
pub struct Results {
    pub tables: BTreeMap<String, Csv>,
}

impl Results {
    /// Every `*.csv` file of a `results/` folder.
    pub fn load(dir: &Path) -> Result<Results> {
        let mut tables = BTreeMap::new();
        let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            if path.extension().is_some_and(|e| e == "csv") {
                let name = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                tables.insert(name.clone(), Csv::parse(&name, &text)?);
            }
        }
        Ok(Results { tables })
    }

    pub fn table(&self, name: &str) -> Result<&Csv> {
        self.tables.get(name).ok_or_else(|| {
            Error::invalid(format!(
                "no results/{name}.csv; run `digits study` to write the tables"
            ))
        })
    }
}

/// A p-value to two significant figures (`0.0015`, `0.23`, `2.3e-9`): a value, never a bound,
/// except below 1e-300 where the exact test's arithmetic stops.
pub fn p_value(p: f64) -> String {
    if p.is_nan() {
        "–".into()
    } else if p < 1e-300 {
        "< 1e-300".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        // Two significant figures: one decimal more than the first significant digit's place.
        let first = p.log10().floor() as i32;
        let decimals = (1 - first).max(1) as usize;
        let s = format!("{p:.decimals$}");
        // Rounding up can add a digit (0.00996 → 0.010): say it with two figures again.
        let rounded: f64 = s.parse().unwrap_or(p);
        if rounded.log10().floor() as i32 > first {
            format!("{rounded:.prec$}", prec = decimals.saturating_sub(1).max(1))
        } else {
            s
        }
    }
}

/// `mean ± half-width` with two decimals (just the mean with one seed).
fn pm(mean: f64, half: f64, seeds: usize) -> String {
    if seeds > 1 {
        format!("{mean:.2} ± {half:.2}")
    } else {
        format!("{mean:.2}")
    }
}

/// The tables of `results/summary.md`, in order, with their headings and what they show.
pub const TABLES: [(&str, &str, &str); 7] = [
    (
        "accuracy",
        "",
        "Accuracy in %, mean ± half-width of the 95% confidence interval over training seeds.",
    ),
    (
        "paired",
        "CNN minus MLP on the same images",
        "Paired by seed; mean difference in points with its 95% interval over seeds, and the largest exact McNemar p-value of any seed.",
    ),
    (
        "framing",
        "Error explained by framing",
        "Error (%) with the image resized against framed like MNIST, and the difference.",
    ),
    (
        "robustness",
        "Robustness on MNIST test digits",
        "Accuracy (%) under each controlled change.",
    ),
    (
        "calibration",
        "Calibration",
        "Expected calibration error (%, 15 bins) and mean confidence against accuracy.",
    ),
    (
        "ink",
        "Where the ink falls",
        "Share of a digit's ink on pixels fewer than 1% of MNIST training digits ink, on pixels none inks, and the ink's mean bounding box.",
    ),
    (
        "anchors",
        "Published results beside ours",
        "MNIST → USPS results with their protocols, quoted from their sources, then ours on USPS test (mean ± 95% interval over seeds). Rows compare only where the protocol columns agree.",
    ),
];

/// A table the documents may quote that `results/summary.md` leaves out: minutes each variant's
/// runs took to train, adapt and predict every test set, from `runs.csv` (an adapted run's
/// training is its source's, counted there; – where a run did not record it). Times differ
/// from one run of the study to the next, and the summary must not.
pub const TIME_TABLE: &str = "time";

/// One of [`TABLES`] or the [`TIME_TABLE`] as markdown, from the CSV files.
pub fn table(r: &Results, name: &str) -> Result<String> {
    match name {
        "accuracy" => accuracy_table(r),
        "paired" => paired_table(r),
        "framing" => framing_table(r),
        "robustness" => robustness_table(r),
        "calibration" => calibration_table(r),
        "ink" => ink_table(r),
        "anchors" => anchors_table(r),
        TIME_TABLE => time_table(r),
        other => {
            let mut names: Vec<&str> = TABLES.iter().map(|t| t.0).collect();
            names.push(TIME_TABLE);
            Err(Error::invalid(format!(
                "no study table `{other}`; the tables are {}",
                names.join(", ")
            )))
        }
    }
}

/// The variants of `rows`, each once, in the order they first appear.
fn variants_in<'a>(rows: &[Row<'a>]) -> Result<Vec<&'a str>> {
    let mut variants: Vec<&str> = Vec::new();
    for row in rows {
        let v = row.str("variant")?;
        if !variants.contains(&v) {
            variants.push(v);
        }
    }
    Ok(variants)
}

/// The `accuracy` table: one row per test set and framing, one column per variant.
fn accuracy_table(r: &Results) -> Result<String> {
    let acc = r.table("accuracy")?;
    let rows = acc.records();
    let variants = variants_in(&rows)?;
    // Test sets and framings in file order, each with its image count.
    let mut keys: Vec<(&str, &str, &str)> = Vec::new();
    for row in &rows {
        let k = (row.str("domain")?, row.str("framing")?, row.str("images")?);
        if !keys.iter().any(|x| x.0 == k.0 && x.1 == k.1) {
            keys.push(k);
        }
    }
    let seeds = seeds_of(r)?;
    let heads: Vec<String> = variants
        .iter()
        .map(|v| format!("{v} ({} seeds)", seeds.get(*v).copied().unwrap_or(0)))
        .collect();
    let mut out = format!(
        "| test set | framing | images | {} |\n|---|---|---:|{}\n",
        heads.join(" | "),
        "---:|".repeat(variants.len())
    );
    for (d, f, n) in &keys {
        let mut cells = Vec::new();
        for v in &variants {
            cells.push(
                match acc.find(&[("variant", v), ("domain", d), ("framing", f)]) {
                    Ok(row) => {
                        let (mean, half) = row.ci("accuracy_pct")?;
                        pm(mean, half, row.str("seeds")?.parse().unwrap_or(1))
                    }
                    Err(_) => "–".into(),
                },
            );
        }
        out += &format!("| {d} | {f} | {n} | {} |\n", cells.join(" | "));
    }
    Ok(out)
}

/// The `paired` table: CNN minus MLP per pair, test set and framing.
fn paired_table(r: &Results) -> Result<String> {
    let mut out = String::from(
        "| MLP | CNN | test set | framing | CNN − MLP | largest p |\n|---|---|---|---|---:|---:|\n",
    );
    for row in r.table("paired_summary")?.records() {
        let (mean, half) = row.ci("cnn_minus_mlp_pct")?;
        // Tables written before the pairs were named paired by augmentation alone.
        let (mlp, cnn) = match (row.str("mlp"), row.str("cnn")) {
            (Ok(m), Ok(c)) => (m.to_string(), c.to_string()),
            _ => match row.str("augment")? {
                "none" => ("mlp".into(), "cnn".into()),
                a => (format!("mlp-{a}"), format!("cnn-{a}")),
            },
        };
        out += &format!(
            "| {mlp} | {cnn} | {} | {} | {} | {} |\n",
            row.str("domain")?,
            row.str("framing")?,
            pm(mean, half, row.str("seeds")?.parse().unwrap_or(1)),
            p_value(row.f64("largest_mcnemar_p")?)
        );
    }
    Ok(out)
}

/// The `framing` table: error resized against framed, per model and test set.
fn framing_table(r: &Results) -> Result<String> {
    let seeds = seeds_of(r)?;
    let mut out = String::from("| model | test set | error, resize | error, mnist-frame | explained by framing | share |\n|---|---|---:|---:|---:|---:|\n");
    for row in r.table("framing")?.records() {
        let n = seeds.get(row.str("variant")?).copied().unwrap_or(1);
        let cell = |col: &str| row.ci(col).map(|(m, h)| pm(m, h, n));
        out += &format!(
            "| {} | {} | {} | {} | {} | {:.0}% |\n",
            row.str("variant")?,
            row.str("domain")?,
            cell("error_resize_pct")?,
            cell("error_mnist_frame_pct")?,
            cell("explained_by_framing_pct")?,
            row.f64("share_explained_pct")?
        );
    }
    Ok(out)
}

/// The `robustness` tables: one per family of [`FAMILIES`], a column per level.
fn robustness_table(r: &Results) -> Result<String> {
    let rows = r.table("robustness")?.records();
    let variants = variants_in(&rows)?;
    let mut out = String::new();
    for (i, (family, levels)) in FAMILIES.iter().enumerate() {
        if i > 0 {
            out += "\n";
        }
        out += &robustness_family(&rows, &variants, family, levels)?;
    }
    Ok(out)
}

/// One family's robustness table: a row per variant, its accuracy at each level.
fn robustness_family(
    rows: &[Row<'_>],
    variants: &[&str],
    family: &str,
    levels: &[f32],
) -> Result<String> {
    let mut out = format!(
        "| {family} | {} |\n|---|{}\n",
        levels
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(" | "),
        "---:|".repeat(levels.len())
    );
    for v in variants {
        let mut cells = Vec::new();
        for &l in levels {
            let hit = rows.iter().find(|x| {
                x.str("variant").ok() == Some(v)
                    && x.str("family").ok() == Some(family)
                    && x.f64("level").ok() == Some(level_value(l))
            });
            cells.push(match hit {
                Some(x) => format!("{:.1}", x.f64("accuracy_pct")?),
                None => "–".into(),
            });
        }
        out += &format!("| {v} | {} |\n", cells.join(" | "));
    }
    Ok(out)
}

/// The `calibration` table: accuracy, confidence and ECE per model, test set and framing.
fn calibration_table(r: &Results) -> Result<String> {
    let seeds = seeds_of(r)?;
    let mut out = String::from("| model | test set | framing | accuracy | confidence | ECE |\n|---|---|---|---:|---:|---:|\n");
    for row in r.table("calibration")?.records() {
        let n = seeds.get(row.str("variant")?).copied().unwrap_or(1);
        let (m, h) = row.ci("ece_pct")?;
        out += &format!(
            "| {} | {} | {} | {:.2} | {:.2} | {} |\n",
            row.str("variant")?,
            row.str("domain")?,
            row.str("framing")?,
            row.f64("accuracy_pct")?,
            row.f64("confidence_pct")?,
            pm(m, h, n)
        );
    }
    Ok(out)
}

/// The `ink` table: where each test set's ink falls in the 28×28 frame.
fn ink_table(r: &Results) -> Result<String> {
    let mut out = String::from("| test set | framing | ink on rare pixels | ink on never-inked pixels | box height × width (px) |\n|---|---|---:|---:|---:|\n");
    for row in r.table("ink")?.records() {
        out += &format!(
            "| {} | {} | {:.2}% | {:.2}% | {:.1} × {:.1} |\n",
            row.str("domain")?,
            row.str("framing")?,
            row.f64("ink_on_rare_pixels_pct")?,
            row.f64("ink_on_never_inked_pixels_pct")?,
            row.f64("ink_box_height_px")?,
            row.f64("ink_box_width_px")?
        );
    }
    Ok(out)
}

/// The `anchors` table: published results with their protocols, then ours.
fn anchors_table(r: &Results) -> Result<String> {
    let mut out = String::from("| source | method | backbone | trained on | target images | tested on | preparation | accuracy (%) |\n|---|---|---|---|---|---|---|---:|\n");
    for row in r.table("anchors")?.records() {
        let seeds: usize = row.str("seeds")?.parse().unwrap_or(1);
        let accuracy = if seeds > 1 {
            let half = (row.f64("ci_high_pct")? - row.f64("ci_low_pct")?) / 2.0;
            pm(row.f64("accuracy_pct")?, half, seeds)
        } else {
            // A published number, as its source gives it.
            row.str("accuracy_pct")?.to_string()
        };
        let cells: Vec<&str> = [
            "source",
            "method",
            "backbone",
            "trained_on",
            "target_images",
            "tested_on",
            "preparation",
        ]
        .iter()
        .map(|c| row.str(c))
        .collect::<Result<_>>()?;
        out += &format!("| {} | {accuracy} |\n", cells.join(" | "));
    }
    Ok(out)
}

/// The `time` table: per variant, its runs' minutes of training, adaptation and predictions,
/// and the study's sum of each.
fn time_table(r: &Results) -> Result<String> {
    let rows = r.table("runs")?.records();
    let mut out = String::from("| variant | runs | training | adaptation | predictions | total |\n|---|---:|---:|---:|---:|---:|\n");
    let (variants, sum) = minutes_by_variant(&rows)?;
    for v in variants {
        out += &time_row(v.variant, v.runs, v.parts);
    }
    Ok(out + &time_row("**all**", rows.len(), sum))
}

/// Minutes of training, adaptation and predictions; `None` where a run has no record of a part.
type Parts = [Option<f64>; 3];

/// One variant's line of the `time` table: its runs, counted, and their minutes.
struct VariantMinutes<'a> {
    variant: &'a str,
    runs: usize,
    parts: Parts,
}

/// Each variant's runs and minutes ([`run_minutes`]) in the order of `runs.csv`; then the sum
/// of each part over them all.
fn minutes_by_variant<'a>(rows: &[Row<'a>]) -> Result<(Vec<VariantMinutes<'a>>, Parts)> {
    let mut sum = [Some(0.0); 3];
    let mut variants = Vec::new();
    for v in variants_in(rows)? {
        let runs: Vec<&Row<'_>> = rows
            .iter()
            .filter(|x| x.str("variant").ok() == Some(v))
            .collect();
        let parts = run_minutes(&runs)?;
        for (s, p) in sum.iter_mut().zip(parts) {
            *s = s.zip(p).map(|(a, b)| a + b);
        }
        variants.push(VariantMinutes {
            variant: v,
            runs: runs.len(),
            parts,
        });
    }
    Ok((variants, sum))
}

/// The three parts' sum, unknown where a part is.
fn total_minutes(parts: Parts) -> Option<f64> {
    parts[0]
        .zip(parts[1])
        .zip(parts[2])
        .map(|((a, b), c)| a + b + c)
}

/// The study's minutes in all, as the `time` table's last cell gives them, with `decimals`.
fn study_minutes(r: &Results, decimals: usize) -> Result<String> {
    let (_, sum) = minutes_by_variant(&r.table("runs")?.records())?;
    let total = total_minutes(sum).ok_or_else(|| {
        Error::invalid("runs.csv lacks a run's times: re-run `digits study` to record them")
    })?;
    Ok(format!("{total:.decimals$}"))
}

/// Minutes of training (runs that are not adapted ones), adaptation and predictions summed
/// over `runs`; `None` where a run has no record of that part.
fn run_minutes(runs: &[&Row<'_>]) -> Result<Parts> {
    let mut parts = [Some(0.0); 3];
    for x in runs {
        let adapted = !x.str("adapted_to")?.is_empty();
        let seconds = [
            Some(if adapted {
                0.0
            } else {
                x.f64("train_seconds")?
            }),
            Some(if adapted {
                x.f64("adapt_seconds")?
            } else {
                0.0
            }),
            x.f64_if_present("predict_seconds")?,
        ];
        for (p, s) in parts.iter_mut().zip(seconds) {
            *p = p.zip(s).map(|(a, b)| a + b / 60.0);
        }
    }
    Ok(parts)
}

fn time_row(variant: &str, runs: usize, parts: Parts) -> String {
    let cell = |m: Option<f64>| m.map_or_else(|| "–".into(), |m| format!("{m:.1}"));
    let total = total_minutes(parts);
    format!(
        "| {variant} | {runs} | {} | {} | {} | {} |\n",
        cell(parts[0]),
        cell(parts[1]),
        cell(parts[2]),
        cell(total)
    )
}

/// Seeds per variant, from `accuracy.csv`.
fn seeds_of(r: &Results) -> Result<BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    for row in r.table("accuracy")?.records() {
        out.entry(row.str("variant")?.to_string())
            .or_insert(row.str("seeds")?.parse().unwrap_or(1));
    }
    Ok(out)
}

/// `results/summary.md`: every table of [`TABLES`] under its heading.
pub fn summary(r: &Results) -> Result<String> {
    let mut out = String::from("# Summary of `digits study`\n");
    for (name, heading, about) in TABLES {
        if !heading.is_empty() {
            out += &format!("\n## {heading}\n");
        }
        out += &format!("\n{about}\n\n{}", table(r, name)?);
    }
    Ok(out)
}

/// One marked value (see the module documentation), e.g. `ci:accuracy_pct:2 accuracy
/// variant=mlp domain=usps-test framing=resize`.
pub fn value(r: &Results, spec: &str) -> Result<String> {
    let bad = |why: &str| Error::invalid(format!("marker `digits {spec}`: {why}"));
    let mut words = spec.split_whitespace();
    let format = words.next().ok_or_else(|| bad("empty"))?;
    let file = words.next().ok_or_else(|| bad("names no results table"))?;
    let keys: Vec<(&str, &str)> = words
        .map(|w| {
            w.split_once('=')
                .ok_or_else(|| bad(&format!("`{w}` is not COLUMN=VALUE")))
        })
        .collect::<Result<_>>()?;
    let parts: Vec<&str> = format.split(':').collect();
    let decimals = |i: usize| -> Result<usize> {
        parts
            .get(i)
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| bad("the format needs its decimals, e.g. ci:accuracy_pct:2"))
    };
    if parts[0] == "minutes" {
        if file != "runs" || !keys.is_empty() {
            return Err(bad(
                "the study's minutes come from `runs` alone: `minutes:D runs`",
            ));
        }
        return study_minutes(r, decimals(1)?);
    }
    let row = r.table(file)?.find(&keys)?;
    let col = *parts
        .get(1)
        .ok_or_else(|| bad("the format names no column"))?;
    Ok(match parts[0] {
        "ci" | "pm" => {
            let (mean, half) = row.ci(col)?;
            let d = decimals(2)?;
            let unit = if parts[0] == "ci" { "%" } else { "" };
            format!("{mean:.d$}{unit} ± {half:.d$}")
        }
        "pct" => format!("{:.*}%", decimals(2)?, row.f64(col)?),
        "num" => format!("{:.*}", decimals(2)?, row.f64(col)?),
        "int" => group_thousands(row.f64(col)?.round() as usize),
        "p" => p_value(row.f64(col)?),
        other => {
            return Err(bad(&format!(
                "unknown format `{other}` (ci, pm, pct, num, int, p, minutes)"
            )))
        }
    })
}

const OPEN: &str = "<!-- digits ";
const CLOSE: &str = "<!-- /digits -->";

/// `text` with every marked span rewritten from the results (see the module documentation).
pub fn fill(text: &str, r: &Results) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        let head_end = rest[at..]
            .find("-->")
            .map(|i| at + i + 3)
            .ok_or_else(|| Error::invalid("a `<!-- digits` marker is not closed with `-->`"))?;
        let spec = rest[at + OPEN.len()..head_end - 3].trim();
        let end = rest[head_end..]
            .find(CLOSE)
            .map(|i| head_end + i)
            .ok_or_else(|| {
                Error::invalid(format!("marker `digits {spec}` has no `{CLOSE}` after it"))
            })?;
        out += &rest[..head_end];
        match spec.strip_prefix("table ") {
            Some(name) => {
                out += "\n";
                out += &table(r, name.trim())?;
            }
            None => out += &value(r, spec)?,
        }
        out += CLOSE;
        rest = &rest[end + CLOSE.len()..];
    }
    out += rest;
    Ok(out)
}

/// The markdown files whose marked numbers `digits study` keeps up to date: `README.md` and
/// every `docs/*.md` under `root`, those present.
pub fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    files.extend(files_in(&root.join("docs"), "md"));
    files.retain(|p| p.is_file());
    files
}

/// The notebooks whose markdown cells hold marked numbers: every `notebooks/*.ipynb` under
/// `root`.
pub fn notebooks(root: &Path) -> Vec<PathBuf> {
    files_in(&root.join("notebooks"), "ipynb")
}

/// The files of `dir` (not its subfolders' files) ending in `.ext`, sorted; none when `dir`
/// cannot be read.
fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// A notebook's text (nbformat JSON) with its marked numbers rewritten. The file is filled as
/// text, not re-serialised, so Jupyter's own layout stays byte for byte; that is sound because a
/// filled value holds no quote, backslash or line break. A marker that spans two lines of a
/// cell, or a table marker, would break the JSON, and is refused.
pub fn fill_notebook(text: &str, r: &Results) -> Result<String> {
    let filled = fill(text, r)?;
    let spans_lines = || {
        Error::invalid(
            "a marker spans two lines of a cell or is a table; keep each marked number on one line",
        )
    };
    // Jupyter writes one line of a cell per line of the file: a marker spread over two lines of a
    // cell, or a table, changes the count.
    if filled.lines().count() != text.lines().count() {
        return Err(spans_lines());
    }
    let cells = |t: &str| -> Option<Vec<serde_json::Value>> {
        let nb: serde_json::Value = serde_json::from_str(t).ok()?;
        let cells = nb.get("cells")?.as_array()?.clone();
        // Only markdown cells may change: code and outputs are compared as they are.
        Some(
            cells
                .into_iter()
                .filter(|c| c["cell_type"] != "markdown")
                .collect(),
        )
    };
    let before = cells(text).ok_or_else(|| Error::invalid("not a notebook (nbformat JSON)"))?;
    match cells(&filled) {
        Some(after) if after == before => Ok(filled),
        Some(_) => Err(Error::invalid(
            "a marked number sits in a code cell or its output; mark numbers in markdown cells only",
        )),
        None => Err(spans_lines()),
    }
}

/// [`fill`] for markdown files, [`fill_notebook`] for notebooks.
type Filler = fn(&str, &Results) -> Result<String>;

/// Rewrites `results/summary.md`, the marked numbers of [`documents`] and those of
/// [`notebooks`] from the CSV files in `results`; returns the files whose text changed.
pub fn write_all(results: &Path, root: &Path) -> Result<Vec<PathBuf>> {
    let r = Results::load(results)?;
    let mut changed = Vec::new();
    let summary_path = results.join("summary.md");
    let text = summary(&r)?;
    if fs::read_to_string(&summary_path).ok().as_deref() != Some(text.as_str()) {
        write_atomic(&summary_path, text.as_bytes())?;
        changed.push(summary_path);
    }
    let markdown = documents(root).into_iter().map(|p| (p, fill as Filler));
    let notebooks = notebooks(root)
        .into_iter()
        .map(|p| (p, fill_notebook as Filler));
    for (path, filler) in markdown.chain(notebooks) {
        let old = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let new =
            filler(&old, &r).map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
        if new != old {
            write_atomic(&path, new.as_bytes())?;
            changed.push(path);
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> Results {
        let acc = "variant,domain,framing,images,seeds,accuracy_pct,accuracy_ci_low_pct,accuracy_ci_high_pct\n\
                   mlp,usps-test,resize,2007,5,38.1564524165421,33.95214974263631,42.360755090447896\n\
                   mlp,mnist-test,native,10000,1,98.2,,\n";
        let paired = "augment,domain,framing,seeds,cnn_minus_mlp_pct,cnn_minus_mlp_ci_low_pct,cnn_minus_mlp_ci_high_pct,largest_mcnemar_p\n\
                      none,usps-test,mnist-frame,5,2.55107125062282,1.5324049720515596,3.56973752919408,0.0014660719473423714\n";
        let runs = "variant,config\nmlp,\"{\"\"arch\"\":\"\"mlp\"\",\"\"seed\"\":0}\"\n";
        let mut tables = BTreeMap::new();
        for (n, t) in [
            ("accuracy", acc),
            ("paired_summary", paired),
            ("runs", runs),
        ] {
            tables.insert(n.to_string(), Csv::parse(n, t).unwrap());
        }
        Results { tables }
    }

    #[test]
    fn p_values_have_two_significant_figures() {
        assert_eq!(p_value(0.0014660719473423714), "0.0015");
        assert_eq!(p_value(2.313649065944457e-9), "2.3e-9");
        assert_eq!(p_value(0.229), "0.23");
        assert_eq!(p_value(0.079), "0.079");
        assert_eq!(p_value(0.5), "0.50");
        assert_eq!(p_value(0.00996), "0.010");
        assert_eq!(p_value(1.0), "1.0");
        assert_eq!(p_value(1e-320), "< 1e-300");
    }

    #[test]
    fn quoted_fields_parse() {
        let r = results();
        let row = r
            .table("runs")
            .unwrap()
            .find(&[("variant", "mlp")])
            .unwrap();
        assert_eq!(row.str("config").unwrap(), r#"{"arch":"mlp","seed":0}"#);
    }

    #[test]
    fn values_are_filled_from_their_row() {
        let r = results();
        let text = "MLP: <!-- digits ci:accuracy_pct:2 accuracy variant=mlp domain=usps-test framing=resize -->old<!-- /digits -->, \
                    p <!-- digits p:largest_mcnemar_p paired_summary augment=none domain=usps-test framing=mnist-frame -->0.001<!-- /digits -->, \
                    <!-- digits pm:cnn_minus_mlp_pct:1 paired_summary augment=none domain=usps-test framing=mnist-frame -->x<!-- /digits --> points";
        let filled = fill(text, &r).unwrap();
        assert_eq!(
            filled,
            "MLP: <!-- digits ci:accuracy_pct:2 accuracy variant=mlp domain=usps-test framing=resize -->38.16% ± 4.20<!-- /digits -->, \
             p <!-- digits p:largest_mcnemar_p paired_summary augment=none domain=usps-test framing=mnist-frame -->0.0015<!-- /digits -->, \
             <!-- digits pm:cnn_minus_mlp_pct:1 paired_summary augment=none domain=usps-test framing=mnist-frame -->2.6 ± 1.0<!-- /digits --> points"
        );
        // Filling is idempotent: the filled text is what a second fill writes.
        assert_eq!(fill(&filled, &r).unwrap(), filled);
    }

    #[test]
    fn a_notebook_is_filled_in_its_markdown_cells_and_keeps_its_layout() {
        let r = results();
        let marker = "<!-- digits ci:accuracy_pct:2 accuracy variant=mlp domain=usps-test framing=resize -->";
        let nb = |md: &str, code: &str| {
            format!(
                "{{\n \"cells\": [\n  {{\n   \"cell_type\": \"markdown\",\n   \"metadata\": {{}},\n   \"source\": [\n    \"{md}\"\n   ]\n  }},\n  {{\n   \"cell_type\": \"code\",\n   \"source\": [\"{code}\"],\n   \"outputs\": []\n  }}\n ],\n \"nbformat\": 4\n}}\n"
            )
        };
        let text = nb(&format!("The MLP: {marker}old<!-- /digits -->."), "1 + 1");
        let filled = fill_notebook(&text, &r).unwrap();
        assert_eq!(
            filled,
            nb(
                &format!("The MLP: {marker}38.16% ± 4.20<!-- /digits -->."),
                "1 + 1"
            )
        );
        // A marker in a code cell, or one spread over two lines of a cell, is refused.
        let in_code = nb("text", &format!("// {marker}old<!-- /digits -->"));
        assert!(fill_notebook(&in_code, &r)
            .unwrap_err()
            .to_string()
            .contains("markdown cells only"));
        let split = text.replace("-->old", "-->old\",\n    \"more");
        assert!(fill_notebook(&split, &r)
            .unwrap_err()
            .to_string()
            .contains("one line"));
    }

    #[test]
    fn a_marker_that_selects_no_row_or_several_says_so() {
        let r = results();
        let error = |text: &str| fill(text, &r).unwrap_err().to_string();
        let none =
            error("<!-- digits pct:accuracy_pct:1 accuracy variant=cnn -->1<!-- /digits -->");
        assert!(none.contains("no row with variant=cnn"), "{none}");
        let many =
            error("<!-- digits pct:accuracy_pct:1 accuracy variant=mlp -->1<!-- /digits -->");
        assert!(many.contains("2 rows"), "{many}");
        let open = error("<!-- digits pct:accuracy_pct:1 accuracy variant=mlp -->1");
        assert!(open.contains("no `<!-- /digits -->`"), "{open}");
    }

    #[test]
    fn tables_are_filled_between_their_markers() {
        let r = results();
        let text = "before\n<!-- digits table accuracy -->\n| stale |\n<!-- /digits -->\nafter\n";
        let filled = fill(text, &r).unwrap();
        assert!(filled.starts_with("before\n<!-- digits table accuracy -->\n| test set |"));
        assert!(filled.contains("| mlp (5 seeds) |"), "{filled}");
        assert!(
            filled.contains("| usps-test | resize | 2007 | 38.16 ± 4.20 |\n"),
            "{filled}"
        );
        assert!(
            filled.contains("| mnist-test | native | 10000 | 98.20 |\n"),
            "{filled}"
        );
        assert!(filled.ends_with("|\n<!-- /digits -->\nafter\n"), "{filled}");
    }

    #[test]
    fn the_time_table_sums_each_part_and_counts_training_once() {
        let runs = "variant,train_seconds,adapted_to,adapt_seconds,predict_seconds\n\
                    cnn,600,,,30\n\
                    cnn,660,,,30\n\
                    cnn-adapt,600,usps x,120,30\n";
        let mut r = results();
        r.tables
            .insert("runs".into(), Csv::parse("runs", runs).unwrap());
        let t = table(&r, TIME_TABLE).unwrap();
        // The adapted run's training is its source's: only its adaptation counts.
        let rows = [
            "| cnn | 2 | 21.0 | 0.0 | 1.0 | 22.0 |\n",
            "| cnn-adapt | 1 | 0.0 | 2.0 | 0.5 | 2.5 |\n",
            "| **all** | 3 | 21.0 | 2.0 | 1.5 | 24.5 |\n",
        ];
        assert!(t.ends_with(&rows.concat()), "{t}");
        let quoted = fill("<!-- digits minutes:1 runs --><!-- /digits -->", &r).unwrap();
        assert_eq!(quoted, "<!-- digits minutes:1 runs -->24.5<!-- /digits -->");
        // Runs from before predictions were timed: that part and the totals are unknown.
        let old = "variant,train_seconds,adapted_to,adapt_seconds\nmlp,60,,\n";
        r.tables
            .insert("runs".into(), Csv::parse("runs", old).unwrap());
        let t = table(&r, TIME_TABLE).unwrap();
        assert!(t.ends_with("| **all** | 1 | 1.0 | 0.0 | – | – |\n"), "{t}");
        let unknown = fill("<!-- digits minutes:0 runs --><!-- /digits -->", &r).unwrap_err();
        assert!(
            unknown.to_string().contains("re-run `digits study`"),
            "{unknown}"
        );
    }
}
