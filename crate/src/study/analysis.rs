//! From predictions to the study's tables. Every number here is computed from the runs'
//! answers; nothing is typed in except the published anchors ([`super::anchors::PUBLISHED`]), which are quoted
//! beside ours and never mixed with them.

use super::accuracy::AccuracyRow;
use super::mechanism::{ink_row, InkRow};
use super::robustness::FAMILIES;
use super::stats::{
    expected_calibration_error, mcnemar_exact, mean_ci, paired_bootstrap, reliability, MeanCi,
    PairedCounts,
};
use super::{SetKind, StudyData, Variant};

/// Bootstrap replicates for each paired interval.
pub const BOOTSTRAP_REPLICATES: usize = 4000;

/// One run's accuracy on one set.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedAccuracyRow {
    pub variant: String,
    pub seed: u64,
    pub domain: String,
    pub framing: String,
    pub images: usize,
    pub accuracy: f64,
    pub mean_confidence: f64,
}

/// MLP against CNN (one of [`super::PAIRS`], same seed) on the same images.
#[derive(Clone, Debug, PartialEq)]
pub struct PairedRow {
    pub mlp: String,
    pub cnn: String,
    /// The augmentation both were trained with.
    pub augment: String,
    pub domain: String,
    pub framing: String,
    pub seed: u64,
    pub counts: PairedCounts,
    /// CNN accuracy minus MLP accuracy.
    pub difference: f64,
    pub boot_low: f64,
    pub boot_high: f64,
    pub mcnemar_p: f64,
}

/// The paired differences of all seeds together.
#[derive(Clone, Debug, PartialEq)]
pub struct PairedSummaryRow {
    pub mlp: String,
    pub cnn: String,
    pub augment: String,
    pub domain: String,
    pub framing: String,
    pub difference: MeanCi,
    /// The largest McNemar p-value over the seeds.
    pub largest_p: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PerClassRow {
    pub variant: String,
    pub domain: String,
    pub framing: String,
    pub class: u8,
    pub images: usize,
    pub ci: MeanCi,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationRow {
    pub variant: String,
    pub domain: String,
    pub framing: String,
    /// Mean over seeds of the accuracy and of the mean confidence.
    pub accuracy: f64,
    pub confidence: f64,
    /// Expected calibration error over seeds.
    pub ece: MeanCi,
}

/// Confusion counts of a variant on a domain set, summed over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionRow {
    pub variant: String,
    pub domain: String,
    pub framing: String,
    pub seeds: usize,
    /// `counts[true][predicted]`.
    pub counts: [[u32; 10]; 10],
}

/// A reliability-diagram bin, pooled over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct ReliabilityRow {
    pub variant: String,
    pub domain: String,
    pub framing: String,
    pub bin_low: f64,
    pub bin_high: f64,
    pub count: usize,
    pub confidence: f64,
    pub accuracy: f64,
}

/// How much of a variant's error on a domain the framing explains.
#[derive(Clone, Debug, PartialEq)]
pub struct FramingRow {
    pub variant: String,
    pub domain: String,
    pub error_resize: MeanCi,
    pub error_frame: MeanCi,
    /// Error under `resize` minus error under `mnist-frame`, per seed.
    pub explained: MeanCi,
    /// `explained / error_resize` (means).
    pub share_explained: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RobustnessRow {
    pub variant: String,
    pub family: String,
    pub level: f64,
    pub images: usize,
    pub ci: MeanCi,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    pub variant: String,
    pub seed: u64,
    pub dir: String,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub train_seconds: f64,
    pub train_data: String,
    pub config: String,
    pub versions: String,
    /// Adapted runs: the target images (name and provenance) and the adaptation's seconds.
    pub adapted_to: Option<String>,
    pub adapt_seconds: Option<f64>,
    /// Seconds the run's predictions on every evaluation set took; `None` where some came
    /// from a cache that did not record its time.
    pub predict_seconds: Option<f64>,
    /// MLP runs: first-layer weights on never-inked pixels still as initialised, and how many
    /// weights those pixels have.
    pub unchanged_weights: Option<(usize, usize)>,
}

/// Every table of the study.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    pub accuracy: Vec<AccuracyRow>,
    pub accuracy_by_seed: Vec<SeedAccuracyRow>,
    pub paired: Vec<PairedRow>,
    pub paired_summary: Vec<PairedSummaryRow>,
    pub per_class: Vec<PerClassRow>,
    pub confusion: Vec<ConfusionRow>,
    pub calibration: Vec<CalibrationRow>,
    pub reliability: Vec<ReliabilityRow>,
    pub framing: Vec<FramingRow>,
    pub robustness: Vec<RobustnessRow>,
    pub runs: Vec<RunRow>,
    pub ink: Vec<InkRow>,
    /// Published MNIST → USPS results with their protocols, then ours on USPS test.
    pub anchors: Vec<super::anchors::AnchorRow>,
}

impl Tables {
    /// The variants in the tables, in the order the study ran them.
    pub fn variant_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.accuracy {
            if !out.contains(&r.variant.as_str()) {
                out.push(&r.variant);
            }
        }
        out
    }

    /// The headline as `digits study` prints it: each variant's accuracy on MNIST test and on
    /// USPS (test, and all 9,298 digits) in both framings, mean ± 95% interval over seeds.
    pub fn headline(&self, variants: &[&str]) -> String {
        let w = variants.iter().map(|v| v.len()).max().unwrap_or(0).max(10);
        let mut out = format!(
            "{:<w$} {:>16} {:>16} {:>16} {:>16} {:>16}\n",
            "model",
            "MNIST test",
            "USPS resize",
            "USPS framed",
            "all USPS resize",
            "all USPS framed"
        );
        let cell = |v: &str, d: &str, f: &str| {
            self.accuracy_of(v, d, f).map_or("–".to_string(), |r| {
                if r.ci.n > 1 {
                    format!("{:.2}±{:.2}", 100.0 * r.ci.mean, 100.0 * r.ci.half_width())
                } else {
                    format!("{:.2}", 100.0 * r.ci.mean)
                }
            })
        };
        for v in variants {
            out += &format!(
                "{:<w$} {:>16} {:>16} {:>16} {:>16} {:>16}\n",
                v,
                cell(v, "mnist-test", "native"),
                cell(v, "usps-test", "resize"),
                cell(v, "usps-test", "mnist-frame"),
                cell(v, "usps-esl-all", "resize"),
                cell(v, "usps-esl-all", "mnist-frame"),
            );
        }
        out
    }

    /// The accuracy row of a variant on a domain in a framing (`native` for MNIST).
    pub fn accuracy_of(&self, variant: &str, domain: &str, framing: &str) -> Option<&AccuracyRow> {
        self.accuracy
            .iter()
            .find(|r| r.variant == variant && r.domain == domain && r.framing == framing)
    }
}

/// The framing column's value: MNIST test is its own frame (`mnist-paper` is not).
pub fn framing_name(domain: &str, kind: &SetKind) -> String {
    match kind {
        SetKind::Domain { .. } if crate::data::domains::is_mnist_frame(domain) => "native".into(),
        SetKind::Domain { framing } => framing.name().into(),
        SetKind::Perturbed(p) => p.tag(),
    }
}

/// The distinct variants of the runs, in the order first met.
fn variants(data: &StudyData) -> Vec<Variant> {
    let mut out: Vec<Variant> = Vec::new();
    for r in &data.runs {
        if !out.contains(&r.variant) {
            out.push(r.variant);
        }
    }
    out
}

/// Indices of the runs of `variant`, by seed.
fn runs_of(data: &StudyData, variant: &Variant) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..data.runs.len())
        .filter(|&i| data.runs[i].variant == *variant)
        .collect();
    idx.sort_by_key(|&i| data.runs[i].seed);
    idx
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Compute every table.
pub fn analyse(data: &StudyData) -> Tables {
    let mut t = Tables::default();
    let vs = variants(data);
    for v in &vs {
        let runs = runs_of(data, v);
        for (s, set) in data.sets.iter().enumerate() {
            let labels = &set.data.labels;
            let framing = framing_name(&set.domain, &set.kind);
            let accs: Vec<f64> = runs
                .iter()
                .map(|&r| data.predictions[r][s].accuracy(labels))
                .collect();
            let ci = mean_ci(&accs);
            match set.kind {
                SetKind::Perturbed(p) => t.robustness.push(RobustnessRow {
                    variant: v.name.into(),
                    family: p.family().into(),
                    level: p.level_value(),
                    images: set.data.len(),
                    ci,
                }),
                SetKind::Domain { .. } => {
                    let (min, max) = min_max(&accs);
                    t.accuracy.push(AccuracyRow {
                        variant: v.name.into(),
                        model: v.model().into(),
                        augment: v.augmentation().into(),
                        trained_on: v.source.name().into(),
                        domain: set.domain.clone(),
                        framing: framing.clone(),
                        images: set.data.len(),
                        ci,
                        min,
                        max,
                    });
                    domain_tables(&mut t, data, v, &runs, s, &framing);
                }
            }
        }
        framing_tables(&mut t, data, v, &runs);
    }
    paired_tables(&mut t, data, &vs);
    for set in &data.sets {
        if let SetKind::Domain { .. } = set.kind {
            let framing = framing_name(&set.domain, &set.kind);
            t.ink
                .push(ink_row(&data.ink_map, &set.domain, &framing, &set.data));
        }
    }
    let runs = data.runs.iter().zip(&data.unchanged_weights);
    for ((r, &unchanged_weights), predictions) in runs.zip(&data.predictions) {
        t.runs.push(RunRow {
            unchanged_weights,
            predict_seconds: predictions.iter().map(|p| p.seconds).sum(),
            variant: r.variant.name.into(),
            seed: r.seed,
            // The folder's name only: the CLI (`runs/`) and notebooks (`../runs/`) see the same
            // folder under different paths, and must write the same table.
            dir: r.dir.file_name().map_or_else(
                || r.dir.display().to_string(),
                |n| n.to_string_lossy().into(),
            ),
            epochs_run: r.record.epochs_run,
            best_epoch: r.record.best_epoch,
            train_seconds: r.record.train_seconds,
            train_data: r.record.train_data.clone(),
            config: serde_json::to_string(&r.record.config).expect("config serialises"),
            versions: {
                let v = &r.record.versions;
                let gemm = v
                    .gemm
                    .as_ref()
                    .map(|g| format!(", {g}"))
                    .unwrap_or_default();
                format!("digits {}, dfdx {}, {}{gemm}", v.digits, v.dfdx, v.rustc)
            },
            adapted_to: r
                .adaptation
                .as_ref()
                .map(|a| format!("{} {}", a.target, a.target_data)),
            adapt_seconds: r.adaptation.as_ref().map(|a| a.seconds),
        });
    }
    // Robustness rows in the order of the families' levels, per variant.
    t.robustness.sort_by(|a, b| {
        let fam = |f: &str| FAMILIES.iter().position(|(n, _)| *n == f);
        let va = vs.iter().position(|v| v.name == a.variant);
        let vb = vs.iter().position(|v| v.name == b.variant);
        (va, fam(&a.family))
            .cmp(&(vb, fam(&b.family)))
            .then(a.level.total_cmp(&b.level))
    });
    t.anchors = super::anchors::anchor_rows(&t.accuracy);
    t
}

/// Per-seed accuracy, per-class accuracy and calibration of one variant on one domain set.
fn domain_tables(
    t: &mut Tables,
    data: &StudyData,
    v: &Variant,
    runs: &[usize],
    s: usize,
    framing: &str,
) {
    let set = &data.sets[s];
    let labels = &set.data.labels;
    let mut eces = Vec::new();
    let (mut conf_all, mut correct_all) = (Vec::new(), Vec::new());
    let mut per_class: Vec<Vec<f64>> = vec![Vec::new(); 10];
    let counts = set.data.label_counts();
    let (mut acc_sum, mut conf_sum) = (0.0, 0.0);
    let mut summed = [[0u32; 10]; 10];
    for &r in runs {
        let p = &data.predictions[r][s];
        let correct = p.correct(labels);
        let accuracy = p.accuracy(labels);
        let mean_conf =
            p.confidence.iter().map(|&c| c as f64).sum::<f64>() / p.confidence.len() as f64;
        acc_sum += accuracy;
        conf_sum += mean_conf;
        t.accuracy_by_seed.push(SeedAccuracyRow {
            variant: v.name.into(),
            seed: data.runs[r].seed,
            domain: set.domain.clone(),
            framing: framing.into(),
            images: set.data.len(),
            accuracy,
            mean_confidence: mean_conf,
        });
        eces.push(expected_calibration_error(&reliability(
            &p.confidence,
            &correct,
        )));
        let confusion = p.confusion(labels);
        for (sum, row) in summed.iter_mut().zip(&confusion) {
            for (s, v) in sum.iter_mut().zip(row) {
                *s += v;
            }
        }
        for (c, row) in confusion.iter().enumerate() {
            if counts[c] > 0 {
                per_class[c].push(row[c] as f64 / counts[c] as f64);
            }
        }
        conf_all.extend_from_slice(&p.confidence);
        correct_all.extend(correct);
    }
    for (c, accs) in per_class.iter().enumerate() {
        if counts[c] == 0 {
            continue;
        }
        t.per_class.push(PerClassRow {
            variant: v.name.into(),
            domain: set.domain.clone(),
            framing: framing.into(),
            class: c as u8,
            images: counts[c],
            ci: mean_ci(accs),
        });
    }
    t.confusion.push(ConfusionRow {
        variant: v.name.into(),
        domain: set.domain.clone(),
        framing: framing.into(),
        seeds: runs.len(),
        counts: summed,
    });
    let n = runs.len() as f64;
    t.calibration.push(CalibrationRow {
        variant: v.name.into(),
        domain: set.domain.clone(),
        framing: framing.into(),
        accuracy: acc_sum / n,
        confidence: conf_sum / n,
        ece: mean_ci(&eces),
    });
    for b in reliability(&conf_all, &correct_all) {
        t.reliability.push(ReliabilityRow {
            variant: v.name.into(),
            domain: set.domain.clone(),
            framing: framing.into(),
            bin_low: b.low,
            bin_high: b.high,
            count: b.count,
            confidence: b.confidence,
            accuracy: b.accuracy,
        });
    }
}

/// Error under `resize` against error under `mnist-frame`, for every domain that has both.
fn framing_tables(t: &mut Tables, data: &StudyData, v: &Variant, runs: &[usize]) {
    use crate::data::Framing;
    let find = |domain: &str, framing: Framing| {
        data.sets
            .iter()
            .position(|s| s.domain == domain && s.kind == SetKind::Domain { framing })
    };
    let mut domains: Vec<&str> = Vec::new();
    for s in &data.sets {
        if matches!(s.kind, SetKind::Domain { .. })
            && !crate::data::domains::is_mnist_frame(&s.domain)
            && !domains.contains(&s.domain.as_str())
        {
            domains.push(&s.domain);
        }
    }
    for domain in domains {
        let (Some(a), Some(b)) = (
            find(domain, Framing::Resize),
            find(domain, Framing::MnistFrame),
        ) else {
            continue;
        };
        let err = |s: usize| -> Vec<f64> {
            runs.iter()
                .map(|&r| 1.0 - data.predictions[r][s].accuracy(&data.sets[s].data.labels))
                .collect()
        };
        let (ea, eb) = (err(a), err(b));
        let diff: Vec<f64> = ea.iter().zip(&eb).map(|(x, y)| x - y).collect();
        let (er, ef, ex) = (mean_ci(&ea), mean_ci(&eb), mean_ci(&diff));
        t.framing.push(FramingRow {
            variant: v.name.into(),
            domain: domain.into(),
            error_resize: er,
            error_frame: ef,
            explained: ex,
            share_explained: ex.mean / er.mean,
        });
    }
}

/// Each of [`super::PAIRS`] whose two variants are in the study, seed by seed, on every
/// domain set.
fn paired_tables(t: &mut Tables, data: &StudyData, vs: &[Variant]) {
    for (mlp_name, cnn_name) in super::PAIRS {
        let named = |n: &str| vs.iter().find(|v| v.name == n);
        let (Some(mlp), Some(cnn)) = (named(mlp_name), named(cnn_name)) else {
            continue;
        };
        let (ma, ca) = (runs_of(data, mlp), runs_of(data, cnn));
        for (s, set) in data.sets.iter().enumerate() {
            if !matches!(set.kind, SetKind::Domain { .. }) {
                continue;
            }
            let framing = framing_name(&set.domain, &set.kind);
            let labels = &set.data.labels;
            let mut diffs = Vec::new();
            let mut largest_p: f64 = 0.0;
            for &m in &ma {
                let seed = data.runs[m].seed;
                let Some(&c) = ca.iter().find(|&&c| data.runs[c].seed == seed) else {
                    continue;
                };
                let counts = PairedCounts::from_correct(
                    &data.predictions[m][s].correct(labels),
                    &data.predictions[c][s].correct(labels),
                );
                let (boot_low, boot_high) = paired_bootstrap(
                    &counts,
                    BOOTSTRAP_REPLICATES,
                    crate::engine::mix_seed(seed, s as u64),
                );
                let p = mcnemar_exact(&counts);
                largest_p = largest_p.max(p);
                diffs.push(counts.difference());
                t.paired.push(PairedRow {
                    mlp: mlp.name.into(),
                    cnn: cnn.name.into(),
                    augment: mlp.augmentation().into(),
                    domain: set.domain.clone(),
                    framing: framing.clone(),
                    seed,
                    counts,
                    difference: counts.difference(),
                    boot_low,
                    boot_high,
                    mcnemar_p: p,
                });
            }
            if !diffs.is_empty() {
                t.paired_summary.push(PairedSummaryRow {
                    mlp: mlp.name.into(),
                    cnn: cnn.name.into(),
                    augment: mlp.augmentation().into(),
                    domain: set.domain.clone(),
                    framing,
                    difference: mean_ci(&diffs),
                    largest_p,
                });
            }
        }
    }
}
