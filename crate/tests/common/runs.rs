//! Whole runs as bits, for the tests that compare runs made under different conditions
//! (thread counts, vector widths).

use digits::data::synthetic::blocks;
use digits::data::Dataset;
use digits::eval::{evaluate, Evaluation};
use digits::models::Weights;
use digits::train::history::EpochRecord;
use digits::train::{train, Progress, TrainConfig, TrainOptions};

/// Everything a run produces that a reader sees, as bits: weights, losses and accuracies per
/// epoch (not their seconds), and the test set's probabilities.
#[derive(Debug, PartialEq)]
pub struct Fingerprint {
    pub weights: Vec<u32>,
    pub history: Vec<[u64; 4]>,
    pub probabilities: Vec<u32>,
    pub accuracy: u64,
}

pub fn fingerprint(w: &Weights, history: &[EpochRecord], e: &Evaluation) -> Fingerprint {
    Fingerprint {
        weights: w
            .tensors
            .iter()
            .flat_map(|t| t.data.iter().map(|v| v.to_bits()))
            .collect(),
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

/// Train `cfg` and evaluate on `test`, all on a pool of `threads` threads.
pub fn run_on(
    threads: usize,
    cfg: &TrainConfig,
    sets: &(Dataset, Dataset, Dataset),
) -> Fingerprint {
    let (tr, val, test) = sets;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
        .install(|| {
            let opts = TrainOptions {
                progress: Progress::Quiet,
                ..Default::default()
            };
            let out = train(cfg, tr, val, opts).expect("training");
            let e = evaluate(cfg.arch, &out.weights, test).expect("evaluation");
            fingerprint(&out.weights, &out.history, &e)
        })
}

pub fn sets() -> (Dataset, Dataset, Dataset) {
    (
        blocks(1600, 1, false),
        blocks(300, 2, false),
        blocks(500, 3, false),
    )
}
