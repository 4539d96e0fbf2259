//! The study's numbers on the engine that made the previous results beside this one's.
//!
//! Training amplifies rounding: another matrix multiply or convolution algorithm gives the same
//! seed another early-stopping epoch, so a study's numbers belong to the engine that made them.
//! When the engine changes, the previous `accuracy.csv` and `runs.csv` are kept in
//! `results/previous-engine/`, and every study written beside them compares: per variant,
//! test set and framing, the old and the new mean with their intervals, and whether the
//! intervals overlap (`engine_change.csv`).

use std::path::Path;

use super::analysis::Tables;
use super::markdown::Csv;
use crate::{Error, Result};

/// The folder under the results folder that holds the previous engine's tables.
pub const PREVIOUS: &str = "previous-engine";

/// One variant on one set in one framing, on both engines (percent).
#[derive(Clone, Debug, PartialEq)]
pub struct EngineChangeRow {
    pub variant: String,
    pub domain: String,
    pub framing: String,
    pub old_seeds: usize,
    pub old: (f64, f64, f64),
    pub new_seeds: usize,
    /// Mean, interval low and high.
    pub new: (f64, f64, f64),
    /// New mean minus old mean.
    pub difference: f64,
    /// Whether the two 95% intervals share a point.
    pub intervals_overlap: bool,
    /// The versions that trained the variant's runs (old: without the GEMM crate's name, the
    /// portable `gemm` 0.15 and im2col convolutions, recorded before engines were).
    pub old_versions: String,
    pub new_versions: String,
}

/// The comparison for the study in `tables`, when `results_dir` holds the previous engine's
/// tables; `None` otherwise. Rows follow the previous `accuracy.csv`; variants or sets that
/// this study lacks are left out.
pub fn engine_change(results_dir: &Path, tables: &Tables) -> Result<Option<Vec<EngineChangeRow>>> {
    let dir = results_dir.join(PREVIOUS);
    let read = |name: &str| -> Result<Option<Csv>> {
        let path = dir.join(format!("{name}.csv"));
        match std::fs::read_to_string(&path) {
            Ok(text) => Csv::parse(&format!("{PREVIOUS}/{name}"), &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    };
    let Some(accuracy) = read("accuracy")? else {
        return Ok(None);
    };
    let runs = read("runs")?;
    let old_versions = |variant: &str| -> Result<String> {
        let Some(runs) = &runs else {
            return Ok(String::new());
        };
        for r in runs.records() {
            if r.str("variant")? == variant {
                return Ok(r.str("versions")?.to_string());
            }
        }
        Ok(String::new())
    };
    let new_versions = |variant: &str| {
        tables
            .runs
            .iter()
            .find(|r| r.variant == variant)
            .map_or(String::new(), |r| r.versions.clone())
    };
    let mut out = Vec::new();
    for r in accuracy.records() {
        let (variant, domain, framing) = (r.str("variant")?, r.str("domain")?, r.str("framing")?);
        let Some(now) = tables.accuracy_of(variant, domain, framing) else {
            continue;
        };
        let old = (
            r.f64("accuracy_pct")?,
            r.f64("accuracy_ci_low_pct")?,
            r.f64("accuracy_ci_high_pct")?,
        );
        let new = (100.0 * now.ci.mean, 100.0 * now.ci.low, 100.0 * now.ci.high);
        out.push(EngineChangeRow {
            variant: variant.into(),
            domain: domain.into(),
            framing: framing.into(),
            old_seeds: r.f64("seeds")? as usize,
            old,
            new_seeds: now.ci.n,
            new,
            difference: new.0 - old.0,
            intervals_overlap: old.1 <= new.2 && new.1 <= old.2,
            old_versions: old_versions(variant)?,
            new_versions: new_versions(variant),
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::accuracy::AccuracyRow;

    #[test]
    fn the_previous_engines_rows_meet_this_studys_where_both_have_them() {
        let dir = std::env::temp_dir().join(format!("digits-engine-change-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut tables = Tables::default();
        let row = AccuracyRow::usps_test;
        tables.accuracy = vec![
            row("mlp", "resize", &[0.40, 0.42, 0.44]),
            row("mlp", "mnist-frame", &[0.90, 0.91, 0.92]),
        ];
        // No previous tables: no comparison.
        assert_eq!(engine_change(&dir, &tables).unwrap(), None);
        std::fs::create_dir_all(dir.join(PREVIOUS)).unwrap();
        std::fs::write(
            dir.join(PREVIOUS).join("accuracy.csv"),
            "variant,domain,framing,seeds,accuracy_pct,accuracy_ci_low_pct,accuracy_ci_high_pct\n\
             mlp,usps-test,resize,5,38.0,36.0,40.0\n\
             mlp,usps-test,mnist-frame,5,93.0,92.0,94.0\n\
             cnn,usps-test,resize,5,80.0,78.0,82.0\n",
        )
        .unwrap();
        let rows = engine_change(&dir, &tables).unwrap().unwrap();
        assert_eq!(rows.len(), 2, "cnn is not in this study");
        let resize = &rows[0];
        assert_eq!((resize.old_seeds, resize.new_seeds), (5, 3));
        assert!((resize.difference - 4.0).abs() < 1e-9);
        // 42 ± 4.97 reaches down to 37.0, into 36–40.
        assert!(resize.intervals_overlap);
        // 91 ± 2.48 tops out at 93.5 > 92: overlapping too; move it and it is not.
        assert!(rows[1].intervals_overlap);
        tables.accuracy[1] = row("mlp", "mnist-frame", &[0.80, 0.81, 0.82]);
        let rows = engine_change(&dir, &tables).unwrap().unwrap();
        assert!(!rows[1].intervals_overlap);
        assert!((rows[1].difference + 12.0).abs() < 1e-9);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
