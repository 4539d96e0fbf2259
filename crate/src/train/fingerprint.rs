//! A whole run as bits: the weights, every epoch's losses and accuracies and the test set's
//! probabilities, for comparing runs made under different conditions (thread counts, vector
//! widths, another build's matrix kernels). Seconds are left out: they differ every time.
//!
//! The runs train on small synthetic sets ([`small_sets`]), so one takes seconds, and they
//! need no data on disk.

use crate::data::checksums::sha256_hex;
use crate::data::synthetic::blocks;
use crate::data::Dataset;
use crate::error::Result;
use crate::eval::{evaluate, Evaluation};
use crate::models::Weights;
use crate::runtime::with_threads;

use super::history::EpochRecord;
use super::{train, Progress, TrainConfig, TrainOptions};

/// Everything a run produces that a reader sees, as bits.
#[derive(Debug, PartialEq)]
pub struct Fingerprint {
    pub weights: Vec<u32>,
    /// Per epoch: training loss, validation loss, training accuracy, validation accuracy.
    pub history: Vec<[u64; 4]>,
    pub probabilities: Vec<u32>,
    pub accuracy: u64,
}

impl Fingerprint {
    pub fn of(w: &Weights, history: &[EpochRecord], e: &Evaluation) -> Fingerprint {
        Fingerprint {
            weights: weight_bits(w),
            history: history
                .iter()
                .map(|r| {
                    [
                        r.train_loss.to_bits(),
                        r.val_loss.to_bits(),
                        r.train_accuracy.to_bits(),
                        r.val_accuracy.to_bits(),
                    ]
                })
                .collect(),
            probabilities: e.probabilities.iter().map(|p| p.to_bits()).collect(),
            accuracy: e.accuracy.to_bits(),
        }
    }

    /// The sha256 of every field's bits (little-endian, in the order above): one line that two
    /// builds or two machines can compare.
    pub fn digest(&self) -> String {
        let mut bytes = Vec::new();
        bytes.extend(self.weights.iter().flat_map(|v| v.to_le_bytes()));
        bytes.extend(self.history.iter().flatten().flat_map(|v| v.to_le_bytes()));
        bytes.extend(self.probabilities.iter().flat_map(|v| v.to_le_bytes()));
        bytes.extend(self.accuracy.to_le_bytes());
        sha256_hex(&bytes)
    }
}

/// Every weight's bits, tensor after tensor.
pub fn weight_bits(w: &Weights) -> Vec<u32> {
    w.tensors
        .iter()
        .flat_map(|t| t.data.iter().map(|v| v.to_bits()))
        .collect()
}

/// Train `cfg` on `sets.0` (validating on `sets.1`) and evaluate on `sets.2`, all on a pool of
/// `threads` threads.
pub fn run_on(
    threads: usize,
    cfg: &TrainConfig,
    sets: &(Dataset, Dataset, Dataset),
) -> Result<Fingerprint> {
    let (tr, val, test) = sets;
    with_threads(threads, || {
        let opts = TrainOptions {
            progress: Progress::Quiet,
            ..Default::default()
        };
        let out = train(cfg, tr, val, opts)?;
        let e = evaluate(cfg.arch, &out.weights, test)?;
        Ok(Fingerprint::of(&out.weights, &out.history, &e))
    })
}

/// Training, validation and test sets of 1,600, 300 and 500 synthetic images (class-placed
/// blocks on noise), always the same.
pub fn small_sets() -> (Dataset, Dataset, Dataset) {
    (
        blocks(1600, 1, false),
        blocks(300, 2, false),
        blocks(500, 3, false),
    )
}
