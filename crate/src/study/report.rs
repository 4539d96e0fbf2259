//! `digits report`: a markdown table of several runs' accuracy on every test domain in both
//! framings. It predicts through the study's own path ([`super::predictions`]), cache
//! included, so a run the study has evaluated is reported from the same answers.

use std::path::{Path, PathBuf};

use super::predictions::{cached_predict, load_cache, save_cache};
use crate::data::Framing;
use crate::train::run::{load_model, try_domain};
use crate::Result;

/// Domains that are test sets for a model trained on MNIST (never trained on, never used to
/// choose anything).
pub const TEST_DOMAINS: &[&str] = &[
    "mnist-test",
    "mnist-paper",
    "usps-test",
    "usps-esl-test",
    "usps-esl-all",
    "semeion",
    "mfeat",
    "optdigits",
];

/// The framings a test domain is evaluated in: both, except for MNIST, which is its own frame
/// (either framing leaves it unchanged) and is listed once. `mnist-paper`, MNIST's digits on
/// paper, is not in MNIST's frame and gets both.
pub fn framings_of(spec: &str) -> &'static [Framing] {
    if crate::data::domains::is_mnist_frame(spec) {
        &[Framing::Resize]
    } else {
        &Framing::ALL
    }
}

/// One row: a domain in a framing, its size, and each run's accuracy (`None` where absent).
#[derive(Clone, Debug)]
pub struct Row {
    pub dataset: String,
    pub n: usize,
    pub accuracy: Vec<Option<f64>>,
}

/// Evaluate every run on every domain it can find under `data_dir`. MNIST is listed once,
/// since both framings leave it unchanged.
pub fn accuracy_table(runs: &[PathBuf], data_dir: &Path) -> Result<Vec<Row>> {
    let models = runs
        .iter()
        .map(|r| load_model(r))
        .collect::<Result<Vec<_>>>()?;
    // A run folder keeps its answers in its prediction cache; a bare weights file has none.
    let mut caches = runs
        .iter()
        .map(|r| {
            if r.is_dir() {
                load_cache(r)
            } else {
                Ok(Default::default())
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let mut computed = vec![false; runs.len()];
    let mut rows = Vec::new();
    for &spec in TEST_DOMAINS {
        for &framing in framings_of(spec) {
            let Some(ds) = try_domain(spec, data_dir, framing)? else {
                continue;
            };
            let mut accuracy = Vec::with_capacity(runs.len());
            for (i, (arch, w)) in models.iter().enumerate() {
                computed[i] |= cached_predict(&mut caches[i], *arch, w, &ds)?;
                accuracy.push(Some(caches[i][&ds.name].accuracy(&ds.labels)));
            }
            rows.push(Row {
                dataset: ds.name.clone(),
                n: ds.len(),
                accuracy,
            });
        }
    }
    for ((run, cache), computed) in runs.iter().zip(&caches).zip(computed) {
        if computed && run.is_dir() {
            save_cache(run, cache)?;
        }
    }
    Ok(rows)
}

/// The table as markdown, one column per run (headed by the run folder's name).
pub fn markdown(runs: &[PathBuf], rows: &[Row]) -> String {
    let names: Vec<String> = runs
        .iter()
        .map(|r| {
            r.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        })
        .collect();
    let mut out = format!("| test set [framing] | images | {} |\n", names.join(" | "));
    out += &format!("|---|---:|{}\n", "---:|".repeat(names.len()));
    for row in rows {
        let cells: Vec<String> = row
            .accuracy
            .iter()
            .map(|a| a.map_or("–".to_string(), |a| format!("{:.2}%", 100.0 * a)))
            .collect();
        out += &format!("| {} | {} | {} |\n", row.dataset, row.n, cells.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_has_one_column_per_run_and_marks_absent_values() {
        let runs = [
            PathBuf::from("runs/mlp-seed0"),
            PathBuf::from("runs/cnn-seed0"),
        ];
        let rows = vec![Row {
            dataset: "usps-test[resize]".into(),
            n: 2007,
            accuracy: vec![Some(0.35821), None],
        }];
        let md = markdown(&runs, &rows);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "| test set [framing] | images | mlp-seed0 | cnn-seed0 |"
        );
        assert_eq!(lines[1], "|---|---:|---:|---:|");
        assert_eq!(lines[2], "| usps-test[resize] | 2007 | 35.82% | – |");
    }
}
