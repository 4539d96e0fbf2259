//! Published MNIST → USPS results beside ours, each with its protocol: a leaderboard would
//! compare numbers measured on different splits of USPS, differently prepared, some with the
//! target's images and some without. `results/anchors.csv` puts the protocol in columns so the
//! reader sees which rows are comparable. The published numbers are the only typed-in numbers
//! of the study; ours are computed from the accuracy table.

use super::accuracy::AccuracyRow;
use super::{variant_named, Source};
use crate::models::Arch;

/// A published result and the protocol behind it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anchor {
    /// Paper or library that reported it.
    pub source: &'static str,
    /// `source only` (trained on MNIST, tested as is), an adaptation method, `trained on USPS`
    /// or `human`.
    pub method: &'static str,
    pub backbone: &'static str,
    /// Labelled training digits.
    pub trained_on: &'static str,
    /// Target-domain images seen in training without their labels (`none` if none).
    pub target_images: &'static str,
    /// The USPS images scored.
    pub tested_on: &'static str,
    /// How USPS's 16×16 digits were brought to the model's input.
    pub preparation: &'static str,
    pub accuracy_pct: f64,
}

#[allow(clippy::too_many_arguments)]
const fn anchor(
    source: &'static str,
    method: &'static str,
    backbone: &'static str,
    trained_on: &'static str,
    target_images: &'static str,
    tested_on: &'static str,
    preparation: &'static str,
    accuracy_pct: f64,
) -> Anchor {
    Anchor {
        source,
        method,
        backbone,
        trained_on,
        target_images,
        tested_on,
        preparation,
        accuracy_pct,
    }
}

const KERAS: &str = "original Keras study";
const TLL: &str = "Transfer-Learning-Library benchmark";
const CYCADA: &str = "CyCADA (Hoffman et al. 2018)";
const ADDA: &str = "ADDA (Tzeng et al. 2017)";
const USPS_TEST: &str = "USPS test (2,007)";
const USPS_TRAIN_UNLABELED: &str = "USPS train (7,291), unlabeled";
const RESIZE_28: &str = "resized to 28×28";

/// The published numbers quoted beside ours, one per line: source, method, backbone, labelled
/// training digits, target images seen without labels, USPS images scored, preparation,
/// accuracy (%).
#[rustfmt::skip]
pub const PUBLISHED: &[Anchor] = &[
    anchor(KERAS, "source only", "MLP 784-224-288-10", "MNIST", "none", "MNIST test (10,000)", "native", 98.01),
    anchor(KERAS, "source only", "CNN of this study, augmented", "MNIST", "none", "MNIST test (10,000)", "native", 99.44),
    anchor(KERAS, "source only", "MLP 784-224-288-10", "MNIST", "none", "USPS, all (9,298)", RESIZE_28, 41.18),
    anchor(KERAS, "source only", "CNN of this study, augmented", "MNIST", "none", "USPS, all (9,298)", RESIZE_28, 97.45),
    anchor(ADDA, "source only", "LeNet", "MNIST (2,000 sampled)", "none", "USPS (1,800 sampled)", RESIZE_28, 75.2),
    anchor(ADDA, "ADDA", "LeNet", "MNIST (2,000 sampled)", "USPS (1,800 sampled), unlabeled", "USPS (1,800 sampled)", RESIZE_28, 89.4),
    anchor(TLL, "source only", "LeNet", "MNIST", "none", USPS_TEST, RESIZE_28, 82.1),
    anchor(TLL, "DANN", "LeNet", "MNIST", USPS_TRAIN_UNLABELED, USPS_TEST, RESIZE_28, 91.7),
    anchor(TLL, "MCD", "LeNet", "MNIST", USPS_TRAIN_UNLABELED, USPS_TEST, RESIZE_28, 94.1),
    anchor(TLL, "ADDA", "LeNet", "MNIST", USPS_TRAIN_UNLABELED, USPS_TEST, RESIZE_28, 94.5),
    anchor(TLL, "CDAN", "LeNet", "MNIST", USPS_TRAIN_UNLABELED, USPS_TEST, RESIZE_28, 96.0),
    anchor("MCD (Saito et al. 2018)", "MCD", "LeNet-like CNN", "MNIST (full)", "USPS train (full), unlabeled", "USPS test", RESIZE_28, 96.5),
    anchor(CYCADA, "source only", "LeNet", "MNIST", "none", USPS_TEST, RESIZE_28, 82.2),
    anchor(CYCADA, "CyCADA", "LeNet", "MNIST", USPS_TRAIN_UNLABELED, USPS_TEST, RESIZE_28, 95.6),
    anchor(CYCADA, "trained on USPS", "LeNet", "USPS train (7,291)", "none", USPS_TEST, RESIZE_28, 96.3),
    anchor("SHOT (Liang et al. 2020)", "SHOT", "LeNet", "MNIST", "USPS train (7,438, CoGAN's 28×28 split), unlabeled", "USPS (1,860, CoGAN's split)", "CoGAN's 28×28 rendering", 98.0),
    anchor("Bromley & Säckinger 1991", "human", "-", "-", "-", "USPS test", "-", 97.5),
    anchor("re-measured 2007", "human", "-", "-", "-", "USPS test", "-", 97.63),
];

/// Human accuracy on USPS test, the first human anchor (2.5% error).
pub fn human_accuracy_pct() -> f64 {
    PUBLISHED
        .iter()
        .find(|a| a.method == "human")
        .expect("a human anchor exists")
        .accuracy_pct
}

/// One row of `anchors.csv`: a published result, or one of ours with its interval over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct AnchorRow {
    pub source: String,
    pub method: String,
    pub backbone: String,
    pub trained_on: String,
    pub target_images: String,
    pub tested_on: String,
    pub preparation: String,
    pub accuracy_pct: f64,
    /// Ours only: the seeds and the 95% interval over them.
    pub seeds: Option<usize>,
    pub ci_low_pct: Option<f64>,
    pub ci_high_pct: Option<f64>,
}

impl From<&Anchor> for AnchorRow {
    fn from(a: &Anchor) -> Self {
        AnchorRow {
            source: a.source.into(),
            method: a.method.into(),
            backbone: a.backbone.into(),
            trained_on: a.trained_on.into(),
            target_images: a.target_images.into(),
            tested_on: a.tested_on.into(),
            preparation: a.preparation.into(),
            accuracy_pct: a.accuracy_pct,
            seeds: None,
            ci_low_pct: None,
            ci_high_pct: None,
        }
    }
}

/// The published rows, then ours: every study variant on USPS test (the LIBSVM rendering,
/// 2,007 digits, as most published results use) in each framing, in the same columns.
pub fn anchor_rows(accuracy: &[AccuracyRow]) -> Vec<AnchorRow> {
    let mut rows: Vec<AnchorRow> = PUBLISHED.iter().map(AnchorRow::from).collect();
    for r in accuracy.iter().filter(|r| r.domain == "usps-test") {
        let Some(v) = variant_named(&r.variant) else {
            continue;
        };
        let augmented = if v.augment.is_some() {
            ", augmented"
        } else {
            ""
        };
        let backbone = match v.arch {
            Arch::Mlp => "MLP 784-224-288-10",
            Arch::MlpWide => "MLP 784-1586-10 (the CNN's parameters)",
            _ => "CNN of this study",
        };
        let (method, trained_on, target_images) = match v.source {
            Source::Mnist => ("source only", "MNIST".to_string(), "none".to_string()),
            Source::UspsTrain => (
                "trained on USPS",
                "USPS train (ESL rendering), framed".to_string(),
                "none".to_string(),
            ),
            Source::Adapted { framing, .. } => (
                "CBST",
                "MNIST".to_string(),
                format!("USPS train (ESL rendering), unlabeled, {framing}"),
            ),
        };
        rows.push(AnchorRow {
            source: "this study".into(),
            method: format!("{method} ({})", r.variant),
            backbone: format!("{backbone}{augmented}"),
            trained_on,
            target_images,
            tested_on: format!("USPS test ({})", r.images),
            preparation: match r.framing.as_str() {
                "resize" => RESIZE_28.into(),
                f => format!("{f} (ink cropped, 20 px box, centred by mass in 28×28)"),
            },
            accuracy_pct: 100.0 * r.ci.mean,
            seeds: Some(r.ci.n),
            ci_low_pct: Some(100.0 * r.ci.low),
            ci_high_pct: Some(100.0 * r.ci.high),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(variant: &str, framing: &str, accs: &[f64]) -> AccuracyRow {
        AccuracyRow::usps_test(variant, framing, accs)
    }

    #[test]
    fn our_rows_follow_the_published_ones_in_the_same_columns() {
        let mut other = row("cnn", "mnist-frame", &[0.9, 0.92]);
        other.domain = "semeion".into();
        let acc = [
            row("cnn-keras", "resize", &[0.80, 0.84]),
            row("cnn-keras-adapt-framed", "mnist-frame", &[0.96, 0.97, 0.98]),
            row("cnn-usps", "mnist-frame", &[0.97]),
            other,
        ];
        let rows = anchor_rows(&acc);
        assert_eq!(rows.len(), PUBLISHED.len() + 3, "only USPS test rows join");
        let ours: Vec<_> = rows.iter().filter(|r| r.source == "this study").collect();
        assert!(rows[..PUBLISHED.len()].iter().all(|r| r.seeds.is_none()));
        let plain = ours[0];
        assert_eq!(plain.method, "source only (cnn-keras)");
        assert_eq!(plain.target_images, "none");
        assert_eq!(plain.preparation, RESIZE_28);
        assert!((plain.accuracy_pct - 82.0).abs() < 1e-9);
        assert!(plain.ci_low_pct.unwrap() < 82.0 && plain.ci_high_pct.unwrap() > 82.0);
        let adapted = ours[1];
        assert_eq!(adapted.seeds, Some(3));
        assert!(adapted.target_images.contains("unlabeled, mnist-frame"));
        assert!(adapted.preparation.starts_with("mnist-frame"));
        assert!(ours[2].trained_on.starts_with("USPS train"));
        assert_eq!(human_accuracy_pct(), 97.5);
    }
}
