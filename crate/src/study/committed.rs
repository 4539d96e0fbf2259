//! The study's tables read back from the CSV files of a `results/` folder: what a notebook
//! shows when the runs behind them are not on this machine (a fresh clone has the committed
//! tables, not the sixty trained networks). The inverse of [`super::tables`]: percentages back
//! to fractions, intervals back to [`MeanCi`]s. A column the files do not keep (the standard
//! deviation outside `accuracy.csv`, the seed count of some tables) comes back as NaN or as
//! the count the file gives elsewhere, and no figure drawn from the tables uses it.

use std::path::Path;

use super::accuracy::AccuracyRow;
use super::analysis::{
    CalibrationRow, ConfusionRow, FramingRow, PairedRow, PairedSummaryRow, PerClassRow,
    ReliabilityRow, RobustnessRow, RunRow, SeedAccuracyRow, Tables,
};
use super::anchors::AnchorRow;
use super::markdown::{Csv, Results, Row};
use super::mechanism::InkRow;
use super::stats::{MeanCi, PairedCounts};
use crate::{Error, Result};

/// Every table of the study from the CSV files in `dir` (as `digits study` writes them).
pub fn load_tables(dir: &Path) -> Result<Tables> {
    if !dir.join("accuracy.csv").is_file() {
        return Err(Error::invalid(format!(
            "no study tables in {}: check out the repository's results/ folder, or run `make study`",
            dir.display()
        )));
    }
    let r = Results::load(dir)?;
    let rows = |name: &str| r.table(name).map(Csv::records);
    Ok(Tables {
        accuracy: parse_all(rows("accuracy")?, accuracy)?,
        accuracy_by_seed: parse_all(rows("accuracy_by_seed")?, seed_accuracy)?,
        paired: parse_all(rows("paired")?, paired)?,
        paired_summary: parse_all(rows("paired_summary")?, paired_summary)?,
        per_class: parse_all(rows("per_class")?, per_class)?,
        confusion: confusion(r.table("confusion")?)?,
        calibration: parse_all(rows("calibration")?, calibration)?,
        reliability: parse_all(rows("reliability")?, reliability)?,
        framing: parse_all(rows("framing")?, framing)?,
        robustness: parse_all(rows("robustness")?, robustness)?,
        runs: parse_all(rows("runs")?, run)?,
        ink: parse_all(rows("ink")?, ink)?,
        anchors: parse_all(rows("anchors")?, anchor)?,
    })
}

fn parse_all<T>(rows: Vec<Row<'_>>, f: impl Fn(&Row<'_>) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

fn text(r: &Row<'_>, col: &str) -> Result<String> {
    Ok(r.str(col)?.to_string())
}

/// A whole number; the CSV files write counts as integers.
fn count(r: &Row<'_>, col: &str) -> Result<usize> {
    let v = r.f64(col)?;
    if v < 0.0 || v.fract() != 0.0 {
        return Err(Error::invalid(format!(
            "`{v}` in column `{col}` is not a count; regenerate the tables with `digits study`"
        )));
    }
    Ok(v as usize)
}

/// An optional cell: empty where the table has no value for the row.
fn optional<T>(
    r: &Row<'_>,
    col: &str,
    f: impl Fn(&Row<'_>, &str) -> Result<T>,
) -> Result<Option<T>> {
    if r.str(col)?.is_empty() {
        Ok(None)
    } else {
        f(r, col).map(Some)
    }
}

fn fraction(r: &Row<'_>, col: &str) -> Result<f64> {
    Ok(r.f64(col)? / 100.0)
}

/// `{stem}_pct` with `{stem}_ci_low_pct` and `{stem}_ci_high_pct`, over `n` seeds.
fn mean_ci(r: &Row<'_>, stem: &str, n: usize, sd: f64) -> Result<MeanCi> {
    Ok(MeanCi {
        n,
        mean: fraction(r, &format!("{stem}_pct"))?,
        sd,
        low: fraction(r, &format!("{stem}_ci_low_pct"))?,
        high: fraction(r, &format!("{stem}_ci_high_pct"))?,
    })
}

/// The seed count of a table without a `seeds` column: 1 where its interval is empty (one
/// seed), else unknown (0); the figures read the interval's ends, never this count.
fn seeds_of(ci: &MeanCi) -> usize {
    if ci.low.is_nan() {
        1
    } else {
        0
    }
}

fn accuracy(r: &Row<'_>) -> Result<AccuracyRow> {
    Ok(AccuracyRow {
        variant: text(r, "variant")?,
        model: text(r, "model")?,
        augment: text(r, "augment")?,
        trained_on: text(r, "trained_on")?,
        domain: text(r, "domain")?,
        framing: text(r, "framing")?,
        images: count(r, "images")?,
        ci: mean_ci(r, "accuracy", count(r, "seeds")?, fraction(r, "sd_pct")?)?,
        min: fraction(r, "min_pct")?,
        max: fraction(r, "max_pct")?,
    })
}

fn seed_accuracy(r: &Row<'_>) -> Result<SeedAccuracyRow> {
    Ok(SeedAccuracyRow {
        variant: text(r, "variant")?,
        seed: count(r, "seed")? as u64,
        domain: text(r, "domain")?,
        framing: text(r, "framing")?,
        images: count(r, "images")?,
        accuracy: fraction(r, "accuracy_pct")?,
        mean_confidence: fraction(r, "mean_confidence_pct")?,
    })
}

fn paired(r: &Row<'_>) -> Result<PairedRow> {
    Ok(PairedRow {
        mlp: text(r, "mlp")?,
        cnn: text(r, "cnn")?,
        augment: text(r, "augment")?,
        domain: text(r, "domain")?,
        framing: text(r, "framing")?,
        seed: count(r, "seed")? as u64,
        counts: PairedCounts {
            both_right: count(r, "both_right")?,
            only_a: count(r, "mlp_only_right")?,
            only_b: count(r, "cnn_only_right")?,
            both_wrong: count(r, "both_wrong")?,
        },
        difference: fraction(r, "cnn_minus_mlp_pct")?,
        boot_low: fraction(r, "bootstrap_low_pct")?,
        boot_high: fraction(r, "bootstrap_high_pct")?,
        mcnemar_p: r.f64("mcnemar_p")?,
    })
}

fn paired_summary(r: &Row<'_>) -> Result<PairedSummaryRow> {
    Ok(PairedSummaryRow {
        mlp: text(r, "mlp")?,
        cnn: text(r, "cnn")?,
        augment: text(r, "augment")?,
        domain: text(r, "domain")?,
        framing: text(r, "framing")?,
        difference: mean_ci(r, "cnn_minus_mlp", count(r, "seeds")?, f64::NAN)?,
        largest_p: r.f64("largest_mcnemar_p")?,
    })
}

fn per_class(r: &Row<'_>) -> Result<PerClassRow> {
    let mut ci = mean_ci(r, "accuracy", 0, f64::NAN)?;
    ci.n = seeds_of(&ci);
    Ok(PerClassRow {
        variant: text(r, "variant")?,
        domain: text(r, "domain")?,
        framing: text(r, "framing")?,
        class: count(r, "class")? as u8,
        images: count(r, "images")?,
        ci,
    })
}

/// Long form back to one 10×10 matrix per (variant, domain, framing), in file order.
fn confusion(csv: &Csv) -> Result<Vec<ConfusionRow>> {
    let mut out: Vec<ConfusionRow> = Vec::new();
    for r in csv.records() {
        let (variant, domain, framing) = (
            text(&r, "variant")?,
            text(&r, "domain")?,
            text(&r, "framing")?,
        );
        let (t, p) = (count(&r, "true")?, count(&r, "predicted")?);
        if t > 9 || p > 9 {
            return Err(Error::invalid(format!(
                "results/confusion.csv: class {t} or {p} is not a digit; regenerate it with `digits study`"
            )));
        }
        let same =
            |c: &ConfusionRow| c.variant == variant && c.domain == domain && c.framing == framing;
        if !out.last().is_some_and(same) {
            out.push(ConfusionRow {
                variant,
                domain,
                framing,
                seeds: count(&r, "seeds")?,
                counts: [[0; 10]; 10],
            });
        }
        let last = out.last_mut().expect("pushed above");
        last.counts[t][p] = count(&r, "count")? as u32;
    }
    Ok(out)
}

fn calibration(r: &Row<'_>) -> Result<CalibrationRow> {
    let mut ece = mean_ci(r, "ece", 0, f64::NAN)?;
    ece.n = seeds_of(&ece);
    Ok(CalibrationRow {
        variant: text(r, "variant")?,
        domain: text(r, "domain")?,
        framing: text(r, "framing")?,
        accuracy: fraction(r, "accuracy_pct")?,
        confidence: fraction(r, "confidence_pct")?,
        ece,
    })
}

fn reliability(r: &Row<'_>) -> Result<ReliabilityRow> {
    Ok(ReliabilityRow {
        variant: text(r, "variant")?,
        domain: text(r, "domain")?,
        framing: text(r, "framing")?,
        bin_low: r.f64("bin_low")?,
        bin_high: r.f64("bin_high")?,
        count: count(r, "predictions")?,
        confidence: fraction(r, "confidence_pct")?,
        accuracy: fraction(r, "accuracy_pct")?,
    })
}

fn framing(r: &Row<'_>) -> Result<FramingRow> {
    let ci = |stem: &str| -> Result<MeanCi> {
        let mut c = mean_ci(r, stem, 0, f64::NAN)?;
        c.n = seeds_of(&c);
        Ok(c)
    };
    Ok(FramingRow {
        variant: text(r, "variant")?,
        domain: text(r, "domain")?,
        error_resize: ci("error_resize")?,
        error_frame: ci("error_mnist_frame")?,
        explained: ci("explained_by_framing")?,
        share_explained: fraction(r, "share_explained_pct")?,
    })
}

fn robustness(r: &Row<'_>) -> Result<RobustnessRow> {
    Ok(RobustnessRow {
        variant: text(r, "variant")?,
        family: text(r, "family")?,
        level: r.f64("level")?,
        images: count(r, "images")?,
        ci: mean_ci(r, "accuracy", count(r, "seeds")?, f64::NAN)?,
    })
}

fn run(r: &Row<'_>) -> Result<RunRow> {
    let unchanged = optional(r, "mlp_unchanged_weights", count)?;
    let pixels = optional(r, "mlp_weights_on_never_inked_pixels", count)?;
    Ok(RunRow {
        variant: text(r, "variant")?,
        seed: count(r, "seed")? as u64,
        dir: text(r, "run")?,
        epochs_run: count(r, "epochs_run")?,
        best_epoch: count(r, "best_epoch")?,
        train_seconds: r.f64("train_seconds")?,
        train_data: text(r, "train_data_sha256")?,
        config: text(r, "config")?,
        versions: text(r, "versions")?,
        adapted_to: optional(r, "adapted_to", text)?,
        adapt_seconds: optional(r, "adapt_seconds", |r, c| r.f64(c))?,
        predict_seconds: r.f64_if_present("predict_seconds")?,
        unchanged_weights: unchanged.zip(pixels),
    })
}

fn ink(r: &Row<'_>) -> Result<InkRow> {
    Ok(InkRow {
        domain: text(r, "domain")?,
        framing: text(r, "framing")?,
        images: count(r, "images")?,
        ink_on_rare: fraction(r, "ink_on_rare_pixels_pct")?,
        ink_on_never: fraction(r, "ink_on_never_inked_pixels_pct")?,
        box_height: r.f64("ink_box_height_px")?,
        box_width: r.f64("ink_box_width_px")?,
        centre_offset: r.f64("centre_offset_px")?,
    })
}

fn anchor(r: &Row<'_>) -> Result<AnchorRow> {
    Ok(AnchorRow {
        source: text(r, "source")?,
        method: text(r, "method")?,
        backbone: text(r, "backbone")?,
        trained_on: text(r, "trained_on")?,
        target_images: text(r, "target_images")?,
        tested_on: text(r, "tested_on")?,
        preparation: text(r, "preparation")?,
        accuracy_pct: r.f64("accuracy_pct")?,
        seeds: optional(r, "seeds", count)?,
        ci_low_pct: optional(r, "ci_low_pct", |r, c| r.f64(c))?,
        ci_high_pct: optional(r, "ci_high_pct", |r, c| r.f64(c))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::tables::write_all;

    fn committed() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../results")
    }

    /// Two cells agree: the same text, or numbers equal to rounding (percentages are divided
    /// by 100 on reading and multiplied again on writing).
    fn same_cell(a: &str, b: &str) -> bool {
        match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => {
                (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(1.0)
            }
            _ => a == b,
        }
    }

    #[test]
    fn the_committed_tables_read_back_into_the_same_files() {
        let tables = load_tables(&committed()).unwrap();
        assert!(tables.accuracy.len() > 100 && tables.runs.len() >= 60);
        let out = std::env::temp_dir().join(format!("digits-committed-{}", std::process::id()));
        write_all(&tables, &out).unwrap();
        for (file, _) in tables.frames() {
            let read = |dir: &Path| {
                let text = std::fs::read_to_string(dir.join(file)).unwrap();
                Csv::parse(file, &text).unwrap()
            };
            let (was, again) = (read(&committed()), read(&out));
            assert_eq!(was.header, again.header, "{file}");
            assert_eq!(was.rows.len(), again.rows.len(), "{file}");
            for (k, (a, b)) in was.rows.iter().zip(&again.rows).enumerate() {
                for (col, (x, y)) in was.header.iter().zip(a.iter().zip(b)) {
                    assert!(
                        same_cell(x, y),
                        "{file} row {k} column {col}: {x} became {y}"
                    );
                }
            }
        }
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn a_folder_without_tables_says_where_they_come_from() {
        let e = load_tables(Path::new("no-such-results"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no-such-results") && e.contains("make study"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1);
    }

    #[test]
    fn a_count_that_is_not_whole_is_refused() {
        let csv = Csv::parse("runs", "seed\n1.5\n").unwrap();
        let rows = csv.records();
        assert!(count(&rows[0], "seed").is_err());
    }
}
