//! The statistics of the study: intervals over seeds, paired tests between two models on the
//! same images, and calibration.
//!
//! Two kinds of uncertainty are kept apart on purpose. Training seeds vary the model (initial
//! weights, shuffles, dropout, augmentation, validation split): [`mean_ci`] gives a Student-t
//! interval over them. The test images are a sample too: [`mcnemar_exact`] and
//! [`paired_bootstrap`] compare two models on the *same* images, which is far more sensitive
//! than two means side by side because most images are right (or wrong) for both.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};

/// Two-sided 95% quantiles of Student's t for 1 to 30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 97.5% quantile of Student's t with `df` degrees of freedom (a table to 30, then two
/// Cornish–Fisher terms, within 0.0002 of the exact value).
pub fn t_quantile_975(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T_975[df - 1],
        _ => {
            let v = df as f64;
            1.959964 + 2.372_2 / v + 2.822_3 / (v * v)
        }
    }
}

/// Mean, sample standard deviation and 95% confidence interval of the mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanCi {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); NaN for fewer than two values.
    pub sd: f64,
    /// The interval's ends; both NaN for fewer than two values (one seed says nothing of the
    /// spread between seeds).
    pub low: f64,
    pub high: f64,
}

impl MeanCi {
    /// Half the interval's width (NaN without an interval).
    pub fn half_width(&self) -> f64 {
        (self.high - self.low) / 2.0
    }
}

/// The mean of `values` with a Student-t 95% interval.
pub fn mean_ci(values: &[f64]) -> MeanCi {
    let n = values.len();
    if n == 0 {
        return MeanCi {
            n,
            mean: f64::NAN,
            sd: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return MeanCi {
            n,
            mean,
            sd: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
        };
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let sd = var.sqrt();
    let half = t_quantile_975(n - 1) * sd / (n as f64).sqrt();
    MeanCi {
        n,
        mean,
        sd,
        low: mean - half,
        high: mean + half,
    }
}

/// How two models' answers on the same images agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PairedCounts {
    pub both_right: usize,
    /// Right for the first model only.
    pub only_a: usize,
    /// Right for the second model only.
    pub only_b: usize,
    pub both_wrong: usize,
}

impl PairedCounts {
    /// Count from per-image correctness of model a and model b (same images, same order).
    pub fn from_correct(a: &[bool], b: &[bool]) -> Self {
        assert_eq!(a.len(), b.len(), "paired comparisons need the same images");
        let mut c = PairedCounts::default();
        for (&x, &y) in a.iter().zip(b) {
            match (x, y) {
                (true, true) => c.both_right += 1,
                (true, false) => c.only_a += 1,
                (false, true) => c.only_b += 1,
                (false, false) => c.both_wrong += 1,
            }
        }
        c
    }

    pub fn n(&self) -> usize {
        self.both_right + self.only_a + self.only_b + self.both_wrong
    }

    /// Accuracy of b minus accuracy of a.
    pub fn difference(&self) -> f64 {
        (self.only_b as f64 - self.only_a as f64) / self.n() as f64
    }
}

/// The exact (binomial) two-sided McNemar test: the probability, if both models were equally
/// good, of a split of the discordant images at least as uneven as `only_a` against `only_b`.
/// 1.0 when there are no discordant images. Computed in log space; values below about 1e-300
/// come out as 0.
pub fn mcnemar_exact(c: &PairedCounts) -> f64 {
    let m = c.only_a + c.only_b;
    if m == 0 {
        return 1.0;
    }
    let k = c.only_a.min(c.only_b);
    // ln C(m, i) from running log-factorials.
    let mut ln_fact = vec![0.0f64; m + 1];
    for i in 1..=m {
        ln_fact[i] = ln_fact[i - 1] + (i as f64).ln();
    }
    let ln_half_m = m as f64 * 0.5f64.ln();
    let terms: Vec<f64> = (0..=k)
        .map(|i| ln_fact[m] - ln_fact[i] - ln_fact[m - i] + ln_half_m)
        .collect();
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tail = max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

/// A 95% percentile-bootstrap interval for [`PairedCounts::difference`], resampling images with
/// replacement `replicates` times. Only the discordant counts move the difference, so each
/// replicate draws them as a multinomial (two binomials) instead of resampling every image:
/// the same distribution, at a cost independent of the number of images.
pub fn paired_bootstrap(c: &PairedCounts, replicates: usize, seed: u64) -> (f64, f64) {
    let n = c.n();
    if n == 0 || replicates == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let p_a = c.only_a as f64 / n as f64;
    let rest = n - c.only_a;
    let p_b_rest = if rest == 0 {
        0.0
    } else {
        c.only_b as f64 / rest as f64
    };
    let mut diffs: Vec<f64> = (0..replicates)
        .map(|_| {
            let a = Binomial::new(n as u64, p_a)
                .expect("p in [0,1]")
                .sample(&mut rng);
            let b = Binomial::new(n as u64 - a, p_b_rest)
                .expect("p in [0,1]")
                .sample(&mut rng);
            (b as f64 - a as f64) / n as f64
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    (percentile(&diffs, 0.025), percentile(&diffs, 0.975))
}

/// Linear-interpolated percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Number of equal-width confidence bins for calibration (the usual choice in the
/// calibration literature, e.g. Guo et al. 2017).
pub const CALIBRATION_BINS: usize = 15;

/// One confidence bin of a reliability diagram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReliabilityBin {
    pub low: f64,
    pub high: f64,
    pub count: usize,
    /// Mean confidence of the predictions in the bin (NaN when empty).
    pub confidence: f64,
    /// Their accuracy (NaN when empty).
    pub accuracy: f64,
}

/// Predictions grouped into [`CALIBRATION_BINS`] equal-width bins of confidence (the
/// probability given to the predicted class). A confidence of exactly 1 falls in the top bin.
pub fn reliability(confidence: &[f32], correct: &[bool]) -> Vec<ReliabilityBin> {
    assert_eq!(confidence.len(), correct.len());
    let k = CALIBRATION_BINS;
    let mut sum_conf = vec![0.0f64; k];
    let mut right = vec![0usize; k];
    let mut count = vec![0usize; k];
    for (&c, &ok) in confidence.iter().zip(correct) {
        let b = ((c as f64 * k as f64) as usize).min(k - 1);
        sum_conf[b] += c as f64;
        right[b] += ok as usize;
        count[b] += 1;
    }
    (0..k)
        .map(|b| ReliabilityBin {
            low: b as f64 / k as f64,
            high: (b + 1) as f64 / k as f64,
            count: count[b],
            confidence: sum_conf[b] / count[b] as f64,
            accuracy: right[b] as f64 / count[b] as f64,
        })
        .collect()
}

/// Expected calibration error: the bins' |accuracy − confidence| weighted by their share of
/// the predictions. 0 for a perfectly calibrated model; at most 1.
pub fn expected_calibration_error(bins: &[ReliabilityBin]) -> f64 {
    let n: usize = bins.iter().map(|b| b.count).sum();
    if n == 0 {
        return f64::NAN;
    }
    bins.iter()
        .filter(|b| b.count > 0)
        .map(|b| b.count as f64 / n as f64 * (b.accuracy - b.confidence).abs())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_matches_a_hand_computed_one() {
        // 1, 2, 3: mean 2, sd 1, t(2) = 4.303, half width 4.303/sqrt(3).
        let ci = mean_ci(&[1.0, 2.0, 3.0]);
        assert_eq!(ci.mean, 2.0);
        assert!((ci.sd - 1.0).abs() < 1e-12);
        assert!((ci.half_width() - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        let one = mean_ci(&[0.7]);
        assert_eq!(one.mean, 0.7);
        assert!(one.low.is_nan() && one.high.is_nan());
        assert!(mean_ci(&[]).mean.is_nan());
        // Beyond the table the approximation joins it smoothly and tends to 1.96.
        assert!((t_quantile_975(31) - 2.0395).abs() < 2e-4);
        assert!((t_quantile_975(120) - 1.9799).abs() < 2e-4);
    }

    #[test]
    fn mcnemar_matches_the_binomial_tail() {
        let c = |a, b| PairedCounts {
            both_right: 100,
            only_a: a,
            only_b: b,
            both_wrong: 3,
        };
        // 10 against 0: 2 * 0.5^10.
        assert!((mcnemar_exact(&c(10, 0)) - 2.0 / 1024.0).abs() < 1e-12);
        assert!((mcnemar_exact(&c(0, 10)) - 2.0 / 1024.0).abs() < 1e-12);
        // 2 against 8: 2 * (1 + 10 + 45) / 1024.
        assert!((mcnemar_exact(&c(2, 8)) - 112.0 / 1024.0).abs() < 1e-12);
        assert_eq!(mcnemar_exact(&c(5, 5)), 1.0);
        assert_eq!(mcnemar_exact(&c(0, 0)), 1.0);
        // Large, lopsided counts stay finite and tiny instead of overflowing.
        let p = mcnemar_exact(&c(30, 600));
        assert!(p > 0.0 && p < 1e-100, "{p}");
    }

    #[test]
    fn paired_counts_and_bootstrap() {
        let a = [true, true, false, false, true, false];
        let b = [true, false, true, true, true, false];
        let c = PairedCounts::from_correct(&a, &b);
        assert_eq!(
            c,
            PairedCounts {
                both_right: 2,
                only_a: 1,
                only_b: 2,
                both_wrong: 1
            }
        );
        assert!((c.difference() - 1.0 / 6.0).abs() < 1e-12);

        let big = PairedCounts {
            both_right: 9000,
            only_a: 100,
            only_b: 400,
            both_wrong: 500,
        };
        let (lo, hi) = paired_bootstrap(&big, 2000, 7);
        assert!(lo < big.difference() && big.difference() < hi, "{lo} {hi}");
        // The normal approximation's half width: 1.96 * sqrt((a + b)/n - d^2) / sqrt(n).
        let d = big.difference();
        let half = 1.96 * ((500.0 / 10000.0 - d * d) / 10000.0f64).sqrt();
        assert!(
            ((hi - lo) / 2.0 - half).abs() < 0.2 * half,
            "{lo} {hi} {half}"
        );
        assert_eq!(paired_bootstrap(&big, 2000, 7), (lo, hi), "seeded");
    }

    #[test]
    fn calibration_error_of_known_cases() {
        // Always 0.9 confident and right 90% of the time: calibrated.
        let conf = vec![0.9f32; 100];
        let correct: Vec<bool> = (0..100).map(|i| i % 10 != 0).collect();
        let bins = reliability(&conf, &correct);
        assert_eq!(bins.len(), CALIBRATION_BINS);
        assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), 100);
        assert!(expected_calibration_error(&bins) < 1e-6);
        // Always fully confident and right half the time: ECE 0.5, all in the top bin.
        let conf = vec![1.0f32; 10];
        let correct: Vec<bool> = (0..10).map(|i| i % 2 == 0).collect();
        let bins = reliability(&conf, &correct);
        assert_eq!(bins[CALIBRATION_BINS - 1].count, 10);
        assert!((expected_calibration_error(&bins) - 0.5).abs() < 1e-9);
    }
}
