//! The accuracy table's row: one variant on one set, over seeds. The study's tables are built
//! from it and the published anchors are set beside it, so it sits below both.

#[cfg(test)]
use super::stats::mean_ci;
use super::stats::MeanCi;

/// Accuracy of a variant on a set, over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct AccuracyRow {
    pub variant: String,
    pub model: String,
    pub augment: String,
    /// The training digits' name ([`super::Source::name`]).
    pub trained_on: String,
    pub domain: String,
    pub framing: String,
    pub images: usize,
    pub ci: MeanCi,
    pub min: f64,
    pub max: f64,
}

#[cfg(test)]
impl AccuracyRow {
    /// A row of `variant` on the 2,007 USPS test digits in `framing`, over seeds scoring `accs`.
    pub(crate) fn usps_test(variant: &str, framing: &str, accs: &[f64]) -> AccuracyRow {
        let v = super::variant_named(variant);
        AccuracyRow {
            variant: variant.into(),
            model: v.map_or("mlp", |v| v.model()).into(),
            augment: v.map_or("none", |v| v.augmentation()).into(),
            trained_on: v.map_or("mnist", |v| v.source.name()).into(),
            domain: "usps-test".into(),
            framing: framing.into(),
            images: 2007,
            ci: mean_ci(accs),
            min: accs.iter().copied().fold(f64::INFINITY, f64::min),
            max: accs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}
