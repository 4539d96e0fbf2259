//! A search's figures: the selection score against the trial and against each hyperparameter,
//! one colour per epoch budget (Hyperband's rungs train the same configurations longer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::models::Arch;
use crate::plot::{scatter_chart, Figure};
use crate::search::table::TrialRecord;
use crate::Result;

/// The hyperparameters of a trial as named numbers (sizes of both families, dropout, log10 of
/// the learning rate); a CNN without a second convolution has 0 filters there.
fn hyperparameters(r: &TrialRecord) -> Vec<(&'static str, f64)> {
    let mut out = match r.arch {
        Arch::Mlp => vec![("units_1", 224.0), ("units_2", 288.0)],
        Arch::MlpOf { h1, h2 } => vec![("units_1", h1 as f64), ("units_2", h2 as f64)],
        // Never a search trial; listed so every architecture has its sizes.
        Arch::MlpWide => vec![
            ("units_1", crate::models::WIDE_UNITS as f64),
            ("units_2", 0.0),
        ],
        Arch::Cnn => vec![
            ("filters_1", 32.0),
            ("filters_2", 192.0),
            ("dense_units", 128.0),
        ],
        Arch::CnnOf { c1, c2, dense } => vec![
            ("filters_1", c1 as f64),
            ("filters_2", c2.unwrap_or(0) as f64),
            ("dense_units", dense as f64),
        ],
    };
    out.push(("dropout", r.dropout as f64));
    out.push(("log10_learning_rate", (r.lr as f64).log10()));
    out
}

/// Points grouped by epoch budget, for one x value per trial. A diverged trial has no score,
/// so it is no point.
fn by_budget(
    records: &[TrialRecord],
    x: impl Fn(&TrialRecord) -> f64,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut groups: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for r in records {
        if let Some(y) = r.val_loss {
            groups.entry(r.epochs).or_default().push((x(r), y));
        }
    }
    groups
        .into_iter()
        .map(|(e, pts)| (format!("{e} epoch{}", if e == 1 { "" } else { "s" }), pts))
        .collect()
}

/// `score_vs_trial` and `score_vs_<hyperparameter>` figures, with their file stems.
pub fn search_figures(records: &[TrialRecord]) -> Result<Vec<(String, Figure)>> {
    let y_label = "validation loss (lower is better)";
    let mut out = Vec::new();
    let draw = |groups: Vec<(String, Vec<(f64, f64)>)>, title: &str, x_label: &str| {
        let series: Vec<(&str, Vec<(f64, f64)>)> = groups
            .iter()
            .map(|(n, p)| (n.as_str(), p.clone()))
            .collect();
        scatter_chart(&series, title, x_label, y_label)
    };
    out.push((
        "score_vs_trial".to_string(),
        draw(
            by_budget(records, |r| r.trial as f64),
            "search score by trial",
            "trial",
        )?,
    ));
    let names: Vec<&str> = records
        .first()
        .map(|r| hyperparameters(r).iter().map(|h| h.0).collect())
        .unwrap_or_default();
    for name in names {
        let x = |r: &TrialRecord| {
            hyperparameters(r)
                .into_iter()
                .find(|h| h.0 == name)
                .map_or(f64::NAN, |h| h.1)
        };
        let fig = draw(
            by_budget(records, x),
            &format!("search score by {name}"),
            name,
        )?;
        out.push((format!("score_vs_{name}"), fig));
    }
    Ok(out)
}

/// Write [`search_figures`] into the search's folder; returns the files written.
pub fn save_search_figures(dir: &Path, records: &[TrialRecord]) -> Result<Vec<PathBuf>> {
    if !records.iter().any(|r| r.val_loss.is_some()) {
        return Ok(Vec::new());
    }
    let mut written = Vec::new();
    for (stem, fig) in search_figures(records)? {
        let path = dir.join(format!("{stem}.png"));
        fig.save(&path)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::table::tests::record;

    #[test]
    fn one_figure_per_hyperparameter_and_a_diverged_trial_is_left_out() {
        if crate::plot::font::ensure().is_err() {
            let why = "no font for figures (install fonts-dejavu-core)";
            return crate::runtime::skip_unless_required("font", why);
        }
        let loss = |t: usize| 0.1 + t as f64 / 100.0;
        let mut records: Vec<TrialRecord> = (0..6)
            .map(|t| {
                record(
                    t,
                    Arch::MlpOf {
                        h1: 32 * (t as u16 + 1),
                        h2: 64,
                    },
                    Some(loss(t)),
                )
            })
            .collect();
        records[3].val_loss = None;
        records[4].epochs = 9;
        let stems = [
            "score_vs_trial",
            "score_vs_units_1",
            "score_vs_units_2",
            "score_vs_dropout",
            "score_vs_log10_learning_rate",
        ];
        let dir = crate::plot::testutil::temp_dir("search");
        let written = save_search_figures(&dir, &records).unwrap();
        let want: Vec<PathBuf> = stems.iter().map(|s| dir.join(format!("{s}.png"))).collect();
        assert_eq!(written, want);
        for ((stem, fig), path) in search_figures(&records).unwrap().iter().zip(&written) {
            // Each file is its figure, decodable at the size it declares, and not blank.
            assert_eq!(std::fs::read(path).unwrap(), fig.png, "{stem}");
            crate::plot::testutil::check_basic(fig, fig.width, fig.height);
        }
        // Trial 3 diverged: no point; trial 4 trained 9 epochs: its own series.
        let groups = by_budget(&records, |r| r.trial as f64);
        let want = [
            (
                "3 epochs",
                [0, 1, 2, 5].map(|t| (t as f64, loss(t))).to_vec(),
            ),
            ("9 epochs", vec![(4.0, loss(4))]),
        ];
        let got: Vec<(&str, Vec<(f64, f64)>)> = groups
            .iter()
            .map(|(n, p)| (n.as_str(), p.clone()))
            .collect();
        assert_eq!(got, want);
        let units = by_budget(&records, |r| hyperparameters(r)[0].1);
        assert_eq!(units[0].1[3], (192.0, loss(5)), "units_1 of trial 5");
        let cnn = record(
            0,
            Arch::CnnOf {
                c1: 16,
                c2: None,
                dense: 64,
            },
            Some(0.2),
        );
        assert_eq!(hyperparameters(&cnn)[1], ("filters_2", 0.0));
        // A search whose every trial diverged has nothing to draw.
        records.iter_mut().for_each(|r| r.val_loss = None);
        assert!(save_search_figures(&dir, &records).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
