//! The study's tables as polars DataFrames (shown inline in notebooks) and as CSV files in
//! `results/`, with a README that says what every column holds.

use std::path::Path;

use polars::prelude::*;

use super::analysis::Tables;
use super::engine_change::{engine_change, EngineChangeRow};
use super::stats::{MeanCi, CALIBRATION_BINS};
use crate::io::write_atomic;
use crate::train::history::save_csv;
use crate::Result;

fn pct(v: f64) -> f64 {
    100.0 * v
}

fn strings<T>(rows: &[T], f: impl Fn(&T) -> &str) -> Vec<String> {
    rows.iter().map(|r| f(r).to_string()).collect()
}

fn floats<T>(rows: &[T], f: impl Fn(&T) -> f64) -> Vec<f64> {
    rows.iter().map(f).collect()
}

fn counts<T>(rows: &[T], f: impl Fn(&T) -> usize) -> Vec<u64> {
    rows.iter().map(|r| f(r) as u64).collect()
}

/// Mean and interval columns of a [`MeanCi`], in percent, under `prefix`.
fn ci_columns<T>(rows: &[T], prefix: &str, f: impl Fn(&T) -> MeanCi) -> Vec<Column> {
    vec![
        Column::new(
            format!("{prefix}_pct").into(),
            floats(rows, |r| pct(f(r).mean)),
        ),
        Column::new(
            format!("{prefix}_ci_low_pct").into(),
            floats(rows, |r| pct(f(r).low)),
        ),
        Column::new(
            format!("{prefix}_ci_high_pct").into(),
            floats(rows, |r| pct(f(r).high)),
        ),
    ]
}

fn frame(columns: Vec<Column>) -> DataFrame {
    DataFrame::new(columns).expect("columns of equal length and distinct names")
}

impl Tables {
    pub fn accuracy_frame(&self) -> DataFrame {
        let r = &self.accuracy;
        let mut c = vec![
            Column::new("variant".into(), strings(r, |x| &x.variant)),
            Column::new("model".into(), strings(r, |x| &x.model)),
            Column::new("augment".into(), strings(r, |x| &x.augment)),
            Column::new("trained_on".into(), strings(r, |x| &x.trained_on)),
            Column::new("domain".into(), strings(r, |x| &x.domain)),
            Column::new("framing".into(), strings(r, |x| &x.framing)),
            Column::new("images".into(), counts(r, |x| x.images)),
            Column::new("seeds".into(), counts(r, |x| x.ci.n)),
        ];
        c.extend(ci_columns(r, "accuracy", |x| x.ci));
        c.push(Column::new("sd_pct".into(), floats(r, |x| pct(x.ci.sd))));
        c.push(Column::new("min_pct".into(), floats(r, |x| pct(x.min))));
        c.push(Column::new("max_pct".into(), floats(r, |x| pct(x.max))));
        frame(c)
    }

    pub fn accuracy_by_seed_frame(&self) -> DataFrame {
        let r = &self.accuracy_by_seed;
        frame(vec![
            Column::new("variant".into(), strings(r, |x| &x.variant)),
            Column::new(
                "seed".into(),
                r.iter().map(|x| x.seed).collect::<Vec<u64>>(),
            ),
            Column::new("domain".into(), strings(r, |x| &x.domain)),
            Column::new("framing".into(), strings(r, |x| &x.framing)),
            Column::new("images".into(), counts(r, |x| x.images)),
            Column::new("accuracy_pct".into(), floats(r, |x| pct(x.accuracy))),
            Column::new(
                "mean_confidence_pct".into(),
                floats(r, |x| pct(x.mean_confidence)),
            ),
        ])
    }

    pub fn paired_frame(&self) -> DataFrame {
        let r = &self.paired;
        frame(vec![
            Column::new("mlp".into(), strings(r, |x| &x.mlp)),
            Column::new("cnn".into(), strings(r, |x| &x.cnn)),
            Column::new("augment".into(), strings(r, |x| &x.augment)),
            Column::new("domain".into(), strings(r, |x| &x.domain)),
            Column::new("framing".into(), strings(r, |x| &x.framing)),
            Column::new(
                "seed".into(),
                r.iter().map(|x| x.seed).collect::<Vec<u64>>(),
            ),
            Column::new("images".into(), counts(r, |x| x.counts.n())),
            Column::new("both_right".into(), counts(r, |x| x.counts.both_right)),
            Column::new("mlp_only_right".into(), counts(r, |x| x.counts.only_a)),
            Column::new("cnn_only_right".into(), counts(r, |x| x.counts.only_b)),
            Column::new("both_wrong".into(), counts(r, |x| x.counts.both_wrong)),
            Column::new("cnn_minus_mlp_pct".into(), floats(r, |x| pct(x.difference))),
            Column::new("bootstrap_low_pct".into(), floats(r, |x| pct(x.boot_low))),
            Column::new("bootstrap_high_pct".into(), floats(r, |x| pct(x.boot_high))),
            Column::new("mcnemar_p".into(), floats(r, |x| x.mcnemar_p)),
        ])
    }

    pub fn paired_summary_frame(&self) -> DataFrame {
        let r = &self.paired_summary;
        let mut c = vec![
            Column::new("mlp".into(), strings(r, |x| &x.mlp)),
            Column::new("cnn".into(), strings(r, |x| &x.cnn)),
            Column::new("augment".into(), strings(r, |x| &x.augment)),
            Column::new("domain".into(), strings(r, |x| &x.domain)),
            Column::new("framing".into(), strings(r, |x| &x.framing)),
            Column::new("seeds".into(), counts(r, |x| x.difference.n)),
        ];
        c.extend(ci_columns(r, "cnn_minus_mlp", |x| x.difference));
        c.push(Column::new(
            "largest_mcnemar_p".into(),
            floats(r, |x| x.largest_p),
        ));
        frame(c)
    }

    pub fn per_class_frame(&self) -> DataFrame {
        let r = &self.per_class;
        let mut c = vec![
            Column::new("variant".into(), strings(r, |x| &x.variant)),
            Column::new("domain".into(), strings(r, |x| &x.domain)),
            Column::new("framing".into(), strings(r, |x| &x.framing)),
            Column::new(
                "class".into(),
                r.iter().map(|x| x.class as u32).collect::<Vec<u32>>(),
            ),
            Column::new("images".into(), counts(r, |x| x.images)),
        ];
        c.extend(ci_columns(r, "accuracy", |x| x.ci));
        frame(c)
    }

    /// Long form: one row per (variant, set, true class, predicted class), seeds summed.
    pub fn confusion_frame(&self) -> DataFrame {
        let mut rows = Vec::new();
        for r in &self.confusion {
            for (t, row) in r.counts.iter().enumerate() {
                for (p, &n) in row.iter().enumerate() {
                    rows.push((r, t as u32, p as u32, n));
                }
            }
        }
        frame(vec![
            Column::new("variant".into(), strings(&rows, |x| &x.0.variant)),
            Column::new("domain".into(), strings(&rows, |x| &x.0.domain)),
            Column::new("framing".into(), strings(&rows, |x| &x.0.framing)),
            Column::new("seeds".into(), counts(&rows, |x| x.0.seeds)),
            Column::new(
                "true".into(),
                rows.iter().map(|x| x.1).collect::<Vec<u32>>(),
            ),
            Column::new(
                "predicted".into(),
                rows.iter().map(|x| x.2).collect::<Vec<u32>>(),
            ),
            Column::new(
                "count".into(),
                rows.iter().map(|x| x.3).collect::<Vec<u32>>(),
            ),
        ])
    }

    pub fn calibration_frame(&self) -> DataFrame {
        let r = &self.calibration;
        let mut c = vec![
            Column::new("variant".into(), strings(r, |x| &x.variant)),
            Column::new("domain".into(), strings(r, |x| &x.domain)),
            Column::new("framing".into(), strings(r, |x| &x.framing)),
            Column::new("accuracy_pct".into(), floats(r, |x| pct(x.accuracy))),
            Column::new("confidence_pct".into(), floats(r, |x| pct(x.confidence))),
        ];
        c.extend(ci_columns(r, "ece", |x| x.ece));
        frame(c)
    }

    pub fn reliability_frame(&self) -> DataFrame {
        let r = &self.reliability;
        frame(vec![
            Column::new("variant".into(), strings(r, |x| &x.variant)),
            Column::new("domain".into(), strings(r, |x| &x.domain)),
            Column::new("framing".into(), strings(r, |x| &x.framing)),
            Column::new("bin_low".into(), floats(r, |x| x.bin_low)),
            Column::new("bin_high".into(), floats(r, |x| x.bin_high)),
            Column::new("predictions".into(), counts(r, |x| x.count)),
            Column::new("confidence_pct".into(), floats(r, |x| pct(x.confidence))),
            Column::new("accuracy_pct".into(), floats(r, |x| pct(x.accuracy))),
        ])
    }

    pub fn framing_frame(&self) -> DataFrame {
        let r = &self.framing;
        let mut c = vec![
            Column::new("variant".into(), strings(r, |x| &x.variant)),
            Column::new("domain".into(), strings(r, |x| &x.domain)),
        ];
        c.extend(ci_columns(r, "error_resize", |x| x.error_resize));
        c.extend(ci_columns(r, "error_mnist_frame", |x| x.error_frame));
        c.extend(ci_columns(r, "explained_by_framing", |x| x.explained));
        c.push(Column::new(
            "share_explained_pct".into(),
            floats(r, |x| pct(x.share_explained)),
        ));
        frame(c)
    }

    pub fn robustness_frame(&self) -> DataFrame {
        let r = &self.robustness;
        let mut c = vec![
            Column::new("variant".into(), strings(r, |x| &x.variant)),
            Column::new("family".into(), strings(r, |x| &x.family)),
            Column::new("level".into(), floats(r, |x| x.level)),
            Column::new("images".into(), counts(r, |x| x.images)),
            Column::new("seeds".into(), counts(r, |x| x.ci.n)),
        ];
        c.extend(ci_columns(r, "accuracy", |x| x.ci));
        frame(c)
    }

    pub fn runs_frame(&self) -> DataFrame {
        let r = &self.runs;
        let mut columns = vec![
            Column::new("variant".into(), strings(r, |x| &x.variant)),
            Column::new(
                "seed".into(),
                r.iter().map(|x| x.seed).collect::<Vec<u64>>(),
            ),
            Column::new("run".into(), strings(r, |x| &x.dir)),
            Column::new("epochs_run".into(), counts(r, |x| x.epochs_run)),
            Column::new("best_epoch".into(), counts(r, |x| x.best_epoch)),
            Column::new("train_seconds".into(), floats(r, |x| x.train_seconds)),
            Column::new("train_data_sha256".into(), strings(r, |x| &x.train_data)),
            Column::new("config".into(), strings(r, |x| &x.config)),
            Column::new("versions".into(), strings(r, |x| &x.versions)),
            Column::new(
                "adapted_to".into(),
                r.iter()
                    .map(|x| x.adapted_to.clone())
                    .collect::<Vec<Option<String>>>(),
            ),
            Column::new(
                "adapt_seconds".into(),
                r.iter()
                    .map(|x| x.adapt_seconds)
                    .collect::<Vec<Option<f64>>>(),
            ),
            Column::new(
                "mlp_unchanged_weights".into(),
                r.iter()
                    .map(|x| x.unchanged_weights.map(|u| u.0 as u64))
                    .collect::<Vec<Option<u64>>>(),
            ),
            Column::new(
                "mlp_weights_on_never_inked_pixels".into(),
                r.iter()
                    .map(|x| x.unchanged_weights.map(|u| u.1 as u64))
                    .collect::<Vec<Option<u64>>>(),
            ),
        ];
        // Last, and only when some run timed its predictions: tables written before it was
        // recorded read back into the same file.
        if r.iter().any(|x| x.predict_seconds.is_some()) {
            columns.push(Column::new(
                "predict_seconds".into(),
                r.iter()
                    .map(|x| x.predict_seconds)
                    .collect::<Vec<Option<f64>>>(),
            ));
        }
        frame(columns)
    }

    pub fn ink_frame(&self) -> DataFrame {
        let r = &self.ink;
        frame(vec![
            Column::new("domain".into(), strings(r, |x| &x.domain)),
            Column::new("framing".into(), strings(r, |x| &x.framing)),
            Column::new("images".into(), counts(r, |x| x.images)),
            Column::new(
                "ink_on_rare_pixels_pct".into(),
                floats(r, |x| pct(x.ink_on_rare)),
            ),
            Column::new(
                "ink_on_never_inked_pixels_pct".into(),
                floats(r, |x| pct(x.ink_on_never)),
            ),
            Column::new("ink_box_height_px".into(), floats(r, |x| x.box_height)),
            Column::new("ink_box_width_px".into(), floats(r, |x| x.box_width)),
            Column::new("centre_offset_px".into(), floats(r, |x| x.centre_offset)),
        ])
    }

    /// A few variants side by side: one row per variant, one column per (test set, framing),
    /// each cell "mean ± half-width" in % over seeds ("" where the study has no such row).
    /// Notebooks use it to put the variants one question compares next to each other.
    pub fn accuracy_grid_frame(&self, variants: &[&str], cells: &[(&str, &str)]) -> DataFrame {
        let mut c = vec![Column::new(
            "variant".into(),
            variants.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        )];
        for (domain, framing) in cells {
            let text: Vec<String> = variants
                .iter()
                .map(|v| match self.accuracy_of(v, domain, framing) {
                    Some(r) if r.ci.n > 1 => {
                        format!("{:.2} ± {:.2}", pct(r.ci.mean), pct(r.ci.half_width()))
                    }
                    Some(r) => format!("{:.2}", pct(r.ci.mean)),
                    None => String::new(),
                })
                .collect();
            c.push(Column::new(format!("{domain} [{framing}]").into(), text));
        }
        frame(c)
    }

    /// Published MNIST → USPS results and ours on USPS test, each with its protocol.
    pub fn anchors_frame(&self) -> DataFrame {
        let r = &self.anchors;
        frame(vec![
            Column::new("source".into(), strings(r, |x| &x.source)),
            Column::new("method".into(), strings(r, |x| &x.method)),
            Column::new("backbone".into(), strings(r, |x| &x.backbone)),
            Column::new("trained_on".into(), strings(r, |x| &x.trained_on)),
            Column::new("target_images".into(), strings(r, |x| &x.target_images)),
            Column::new("tested_on".into(), strings(r, |x| &x.tested_on)),
            Column::new("preparation".into(), strings(r, |x| &x.preparation)),
            Column::new("accuracy_pct".into(), floats(r, |x| x.accuracy_pct)),
            Column::new(
                "seeds".into(),
                r.iter()
                    .map(|x| x.seeds.map(|n| n as u64))
                    .collect::<Vec<Option<u64>>>(),
            ),
            Column::new(
                "ci_low_pct".into(),
                r.iter().map(|x| x.ci_low_pct).collect::<Vec<Option<f64>>>(),
            ),
            Column::new(
                "ci_high_pct".into(),
                r.iter()
                    .map(|x| x.ci_high_pct)
                    .collect::<Vec<Option<f64>>>(),
            ),
        ])
    }

    /// Every table with its file name.
    pub fn frames(&self) -> Vec<(&'static str, DataFrame)> {
        vec![
            ("accuracy.csv", self.accuracy_frame()),
            ("accuracy_by_seed.csv", self.accuracy_by_seed_frame()),
            ("paired.csv", self.paired_frame()),
            ("paired_summary.csv", self.paired_summary_frame()),
            ("per_class.csv", self.per_class_frame()),
            ("confusion.csv", self.confusion_frame()),
            ("calibration.csv", self.calibration_frame()),
            ("reliability.csv", self.reliability_frame()),
            ("framing.csv", self.framing_frame()),
            ("robustness.csv", self.robustness_frame()),
            ("runs.csv", self.runs_frame()),
            ("ink.csv", self.ink_frame()),
            ("anchors.csv", self.anchors_frame()),
        ]
    }
}

/// Write every table and the README of their columns into `dir` (each file atomically).
/// The markdown made from them is [`super::markdown`]'s.
pub fn write_all(tables: &Tables, dir: &Path) -> Result<()> {
    for (name, df) in tables.frames() {
        save_csv(&df, &dir.join(name))?;
    }
    if let Some(rows) = engine_change(dir, tables)? {
        save_csv(&engine_change_frame(&rows), &dir.join("engine_change.csv"))?;
    }
    write_atomic(&dir.join("README.md"), readme().as_bytes())
}

/// `engine_change.csv`: the previous engine's accuracy beside this study's.
pub fn engine_change_frame(r: &[EngineChangeRow]) -> DataFrame {
    frame(vec![
        Column::new("variant".into(), strings(r, |x| &x.variant)),
        Column::new("domain".into(), strings(r, |x| &x.domain)),
        Column::new("framing".into(), strings(r, |x| &x.framing)),
        Column::new("old_seeds".into(), counts(r, |x| x.old_seeds)),
        Column::new("old_accuracy_pct".into(), floats(r, |x| x.old.0)),
        Column::new("old_ci_low_pct".into(), floats(r, |x| x.old.1)),
        Column::new("old_ci_high_pct".into(), floats(r, |x| x.old.2)),
        Column::new("new_seeds".into(), counts(r, |x| x.new_seeds)),
        Column::new("new_accuracy_pct".into(), floats(r, |x| x.new.0)),
        Column::new("new_ci_low_pct".into(), floats(r, |x| x.new.1)),
        Column::new("new_ci_high_pct".into(), floats(r, |x| x.new.2)),
        Column::new("difference_pct".into(), floats(r, |x| x.difference)),
        Column::new(
            "intervals_overlap".into(),
            r.iter().map(|x| x.intervals_overlap).collect::<Vec<bool>>(),
        ),
        Column::new("old_versions".into(), strings(r, |x| &x.old_versions)),
        Column::new("new_versions".into(), strings(r, |x| &x.new_versions)),
    ])
}

/// What each file and column holds.
pub fn readme() -> String {
    format!(
        r#"# Results of `digits study`

Written by `digits study` (see `docs/study.md` for how to reproduce). Do not edit by hand:
the next run rewrites every file. Accuracies, errors and differences are in percent (`_pct`).

Common columns:
- `variant`: `mlp`, `cnn` (the published models, plain training) or `mlp-keras`, `cnn-keras`
  (trained with the original's augmentation: rotation 10°, shifts 10%, zoom 10%), all trained
  on MNIST; `mlp-1586`, `mlp-1586-keras`: an MLP with one hidden layer of 1,586 units, as
  many parameters as the CNN (1,260,880 against 1,261,450), trained on MNIST; `mlp-usps`,
  `cnn-usps`: the published models trained on USPS's own training digits (`usps-esl-train`,
  7,291, framed like MNIST; 10% held out for validation), the in-domain reference;
  `mlp-keras-adapt-framed`, `cnn-keras-adapt-framed`, `mlp-keras-adapt-resized`,
  `cnn-keras-adapt-resized`: the seed's `mlp-keras` or `cnn-keras` run adapted to USPS's
  training images, framed or resized, without their labels (class-balanced self-training).
- `trained_on` (accuracy.csv): the training digits, `mnist` or `usps-esl-train`; adapted
  variants `mnist+usps-esl-train-images(<framing>)` (the USPS images without labels).
- `domain`: the test set (`mnist-test`, `usps-test` = LIBSVM rendering of the 2,007 USPS test
  digits, `usps-esl-test` = the same digits from the ESL rendering, `usps-esl-all` = all 9,298
  USPS digits, `semeion`, `mfeat` = mfeat-pix, `optdigits` = the writer-independent test set,
  `mnist-paper` = MNIST's test digits drawn on paper as a user's scans or photos look).
- `framing`: how a domain's digits were brought to 28×28. `resize` stretches the whole image
  to 28×28 (what the original study did); `mnist-frame` fits the digit's ink into a 20×20
  box and centres it by mass, as MNIST itself was made. MNIST is `native`.
- `seeds`: how many training seeds (runs) a row summarises; `*_ci_low_pct`/`*_ci_high_pct`
  are a Student-t 95% confidence interval of the mean over those seeds (empty with one seed).

Files:
- `accuracy.csv`: mean accuracy over seeds per variant, domain and framing (`images`: test
  set size), with its interval, the seeds' standard deviation (`sd_pct`), `min_pct` and
  `max_pct`.
- `accuracy_by_seed.csv`: every run's accuracy and mean confidence (probability given to the
  predicted class) on every set.
- `paired.csv`: an MLP (`mlp`) against a CNN (`cnn`) trained on the same digits with the same
  augmentation (`augment`), seed by seed, on the same images:
  how many both got right (`both_right`), only the MLP (`mlp_only_right`), only the CNN
  (`cnn_only_right`), neither (`both_wrong`); `cnn_minus_mlp_pct` the accuracy difference with a
  paired-bootstrap 95% interval over images (`bootstrap_low_pct`, `bootstrap_high_pct`,
  4,000 replicates); `mcnemar_p` the exact two-sided McNemar test's p-value (0 means below
  1e-300).
- `paired_summary.csv`: the paired differences over seeds: mean with a t interval, and the
  largest McNemar p-value among the seeds.
- `per_class.csv`: accuracy on each true class (`images`: how many of that class).
- `confusion.csv`: confusion matrices in long form, the seeds' counts summed: how many digits
  of class `true` the variant called `predicted`.
- `calibration.csv`: mean accuracy, mean confidence and expected calibration error (`ece`,
  {bins} equal-width confidence bins, with its interval over seeds). A calibrated model's
  confidence equals its accuracy: ECE 0.
- `reliability.csv`: the reliability diagram's bins, predictions of all seeds pooled:
  `predictions` in the bin, their mean confidence and their accuracy (empty bins are blank).
- `framing.csv`: error under `resize` and under `mnist-frame`, and their difference
  (`explained_by_framing`: the error the framing alone removes), each over seeds;
  `share_explained_pct` is that difference over the `resize` error.
- `robustness.csv`: accuracy on MNIST test digits (`images` of them, the same for every model)
  under one controlled change (`family`, `level`): `shift` in pixels (each digit in its own
  random direction), `rotate` in degrees (random sign), `scale` as a factor about the centre,
  `thickness` as a dilation radius in pixels (negative: erosion).
- `runs.csv`: every run used: its folder's name (under the runs folder), epochs trained, the epoch whose weights were kept,
  training time, the sha256 provenance of its training data, its full configuration (seed
  included) and the versions that trained it. Adapted runs show their source run's training
  and, in `adapted_to` and `adapt_seconds`, the images they adapted to (name and provenance,
  labels never read) and the adaptation's time. For MLP runs, `mlp_unchanged_weights` counts the
  first-layer weights on pixels no MNIST training digit inks that still hold their initial
  values, out of `mlp_weights_on_never_inked_pixels` (no ink, no gradient). Last,
  `predict_seconds`: the time the run's predictions on every test set took (blank where some
  came from a cache that did not record it; no such column in a study that timed none).
- `ink.csv`: where each set's digits put their ink in the 28×28 frame, against MNIST's
  training digits: mean share of a digit's ink on pixels fewer than 1% of training digits ink
  (`ink_on_rare_pixels_pct`) and on pixels none inks (`ink_on_never_inked_pixels_pct`); the
  mean height and width of the ink's bounding box; the mean distance of the centre of mass
  from the frame's centre.
- `engine_change.csv` (only beside a `previous-engine/` folder holding the `accuracy.csv` and
  `runs.csv` of a study made by another engine): per variant, domain and framing, the old and
  the new mean with their 95% intervals and seeds, `difference_pct` (new minus old),
  `intervals_overlap`, and the versions that trained each (`old_versions` without a GEMM
  name: the portable `gemm` 0.15 with im2col convolutions, before the engine was recorded).
- `anchors.csv`: published MNIST → USPS results beside ours, each with its protocol, since
  they were measured on different USPS splits, prepared differently, some with the target's
  images: `source`, `method` (`source only`, an adaptation method, `trained on USPS`, `human`;
  ours name their variant), `backbone`, `trained_on` (labelled digits), `target_images` (seen
  without labels in training, `none` if none), `tested_on`, `preparation` (how USPS's 16×16
  digits became the input) and `accuracy_pct`. Ours are every variant on USPS test in each
  framing, with `seeds` and the 95% interval (`ci_low_pct`, `ci_high_pct`); the published
  rows are quoted, not computed here.
- `summary.md`: the headline tables in markdown (what `docs/study.md` quotes).
"#,
        bins = CALIBRATION_BINS
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::accuracy::AccuracyRow;

    #[test]
    fn the_grid_puts_each_variant_on_a_row_and_each_set_in_a_column() {
        let tables = Tables {
            accuracy: vec![
                AccuracyRow::usps_test("mlp", "resize", &[0.30, 0.40]),
                AccuracyRow::usps_test("mlp", "mnist-frame", &[0.94]),
                AccuracyRow::usps_test("cnn", "resize", &[0.80, 0.82, 0.84]),
            ],
            ..Tables::default()
        };
        let grid = tables.accuracy_grid_frame(
            &["cnn", "mlp"],
            &[("usps-test", "resize"), ("usps-test", "mnist-frame")],
        );
        assert_eq!(grid.shape(), (2, 3));
        let col = |name: &str| -> Vec<String> {
            let c = grid.column(name).unwrap().str().unwrap().clone();
            c.into_iter().map(|v| v.unwrap().to_string()).collect()
        };
        assert_eq!(col("variant"), ["cnn", "mlp"]);
        // Two seeds: a t interval of 12.71 × sd / √2 around 35%.
        assert_eq!(col("usps-test [resize]")[1], "35.00 ± 63.53");
        assert!(col("usps-test [resize]")[0].starts_with("82.00 ± "));
        // One seed has no interval; a missing row is an empty cell.
        assert_eq!(col("usps-test [mnist-frame]"), ["", "94.00"]);
    }
}
