//! The search spaces: the original study's KerasTuner ranges, a little wider, and the seeded
//! draw of one configuration from them.

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::engine::mix_seed;
use crate::models::Arch;

/// A hyperparameter on an evenly spaced grid `min, min + step, ..., max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Steps {
    pub min: u16,
    pub max: u16,
    pub step: u16,
}

impl Steps {
    /// `min, min + step, ..., max`.
    pub const fn new(min: u16, max: u16, step: u16) -> Steps {
        Steps { min, max, step }
    }

    pub fn contains(self, v: u16) -> bool {
        (self.min..=self.max).contains(&v) && (v - self.min).is_multiple_of(self.step)
    }

    fn draw(self, rng: &mut StdRng) -> u16 {
        self.min + self.step * rng.gen_range(0..=(self.max - self.min) / self.step)
    }
}

/// Units of each of the MLP's two hidden layers.
pub const MLP_UNITS: Steps = Steps::new(32, 512, 32);
/// Filters of the CNN's first convolution.
pub const CNN_FILTERS_1: Steps = Steps::new(16, 64, 16);
/// Filters of the CNN's second convolution, when the draw keeps it (even odds).
pub const CNN_FILTERS_2: Steps = Steps::new(32, 256, 32);
/// Units of the CNN's dense layer.
pub const CNN_DENSE: Steps = Steps::new(64, 256, 64);
/// Dropout rate: 0 to 0.5 in steps of 0.05.
pub const DROPOUT_MAX: f32 = 0.5;
const DROPOUT_STEPS: u32 = 10;
/// Adam's learning rate, drawn log-uniformly and kept to three significant digits, so that a
/// printed value is the value trained with.
pub const LR_MIN: f32 = 1e-4;
pub const LR_MAX: f32 = 1e-2;

/// One configuration of the search.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub arch: Arch,
    pub dropout: f32,
    pub lr: f32,
}

/// Salt that keeps the configuration draws apart from the training seeds of the same search.
const SPACE_SALT: u64 = 0x7370_6163_6500_0000;

/// The configuration a search seeded with `seed` tries under id `config` (the id of the trial
/// that trains it first): a pure function of the two, whatever else the search has done.
pub fn candidate(family: Arch, seed: u64, config: usize) -> Candidate {
    let mut rng = StdRng::seed_from_u64(mix_seed(seed ^ SPACE_SALT, config as u64));
    let arch = match family.family() {
        Arch::Mlp => Arch::MlpOf {
            h1: MLP_UNITS.draw(&mut rng),
            h2: MLP_UNITS.draw(&mut rng),
        },
        _ => {
            let c1 = CNN_FILTERS_1.draw(&mut rng);
            let second = rng.gen_bool(0.5);
            let c2 = CNN_FILTERS_2.draw(&mut rng);
            Arch::CnnOf {
                c1,
                c2: second.then_some(c2),
                dense: CNN_DENSE.draw(&mut rng),
            }
        }
    };
    // k/20 is the f32 nearest to 0.05·k, which prints as the short decimal.
    let dropout = rng.gen_range(0..=DROPOUT_STEPS) as f32 / (DROPOUT_STEPS as f32 / DROPOUT_MAX);
    let ln_lr = rng.gen_range((LR_MIN as f64).ln()..=(LR_MAX as f64).ln());
    let lr = format!("{:.2e}", ln_lr.exp())
        .parse::<f32>()
        .expect("a formatted float parses")
        .clamp(LR_MIN, LR_MAX);
    Candidate { arch, dropout, lr }
}

/// Whether `c` lies in `family`'s search space (what [`candidate`] can draw).
pub fn in_space(family: Arch, c: &Candidate) -> bool {
    let arch_ok = match (family.family(), c.arch) {
        (Arch::Mlp, Arch::MlpOf { h1, h2 }) => MLP_UNITS.contains(h1) && MLP_UNITS.contains(h2),
        (Arch::Cnn, Arch::CnnOf { c1, c2, dense }) => {
            CNN_FILTERS_1.contains(c1)
                && c2.is_none_or(|c2| CNN_FILTERS_2.contains(c2))
                && CNN_DENSE.contains(dense)
        }
        _ => false,
    };
    let steps = c.dropout * DROPOUT_STEPS as f32 / DROPOUT_MAX;
    arch_ok
        && (0.0..=DROPOUT_MAX).contains(&c.dropout)
        && (steps - steps.round()).abs() < 1e-4
        && (LR_MIN..=LR_MAX).contains(&c.lr)
}

/// The space in words, for the search's summary.
pub fn describe(family: Arch) -> String {
    let grid = |s: Steps| format!("{}-{} step {}", s.min, s.max, s.step);
    let arch = match family.family() {
        Arch::Mlp => format!("hidden units {} (each layer)", grid(MLP_UNITS)),
        _ => format!(
            "conv 1 filters {}, conv 2 absent or {}, dense units {}",
            grid(CNN_FILTERS_1),
            grid(CNN_FILTERS_2),
            grid(CNN_DENSE)
        ),
    };
    format!("{arch}; dropout 0-{DROPOUT_MAX} step 0.05; lr {LR_MIN:e}-{LR_MAX:e} log-uniform")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_candidates_other_seed_others() {
        for family in Arch::ALL {
            let a: Vec<_> = (0..20).map(|i| candidate(family, 7, i)).collect();
            let b: Vec<_> = (0..20).map(|i| candidate(family, 7, i)).collect();
            assert_eq!(a, b);
            let c: Vec<_> = (0..20).map(|i| candidate(family, 8, i)).collect();
            assert_ne!(a, c);
            // Configurations differ from one id to the next.
            assert!(a.windows(2).all(|w| w[0] != w[1]), "{a:?}");
        }
    }

    #[test]
    fn draws_stay_inside_the_space_and_cover_it() {
        let mut seen_units = std::collections::BTreeSet::new();
        let (mut lr_lo, mut lr_hi, mut drop_hi) = (f32::MAX, 0.0f32, 0.0f32);
        let mut without_second = 0;
        for i in 0..2000 {
            for family in Arch::ALL {
                let c = candidate(family, 3, i);
                assert!(in_space(family, &c), "{c:?}");
                assert_eq!(c.arch.family(), family);
                lr_lo = lr_lo.min(c.lr);
                lr_hi = lr_hi.max(c.lr);
                drop_hi = drop_hi.max(c.dropout);
                match c.arch {
                    Arch::MlpOf { h1, h2 } => {
                        seen_units.insert(h1);
                        seen_units.insert(h2);
                    }
                    Arch::CnnOf { c2: None, .. } => without_second += 1,
                    _ => {}
                }
            }
        }
        assert_eq!(seen_units.len(), 16, "every unit count 32..=512 drawn");
        assert!(lr_lo < 1.2e-4 && lr_hi > 0.9e-2, "{lr_lo} {lr_hi}");
        assert_eq!(drop_hi, 0.5);
        assert!((800..1200).contains(&without_second), "{without_second}");
        // Values print as short decimals.
        let c = candidate(Arch::Mlp, 3, 0);
        assert!(
            c.lr.to_string().trim_start_matches("0.").len() <= 7,
            "{}",
            c.lr
        );
        assert!(c.dropout.to_string().len() <= 4, "{}", c.dropout);
    }

    #[test]
    fn out_of_space_configurations_are_told_apart() {
        let ok = candidate(Arch::Mlp, 1, 0);
        for bad in [
            Candidate {
                arch: Arch::MlpOf { h1: 33, h2: 64 },
                ..ok
            },
            Candidate {
                arch: Arch::MlpOf { h1: 544, h2: 64 },
                ..ok
            },
            Candidate { lr: 0.02, ..ok },
            Candidate { dropout: 0.6, ..ok },
            Candidate {
                dropout: 0.12,
                ..ok
            },
            Candidate {
                arch: Arch::Cnn,
                ..ok
            },
        ] {
            assert!(!in_space(Arch::Mlp, &bad), "{bad:?}");
        }
    }
}
