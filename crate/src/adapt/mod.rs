//! Adaptation without labels: a model trained on MNIST, fine-tuned to another domain from that
//! domain's images alone, by class-balanced self-training.
//!
//! # The method
//! Class-balanced self-training (CBST; Zou, Yu, Kumar and Wang, "Unsupervised Domain
//! Adaptation for Semantic Segmentation via Class-Balanced Self-Training", ECCV 2018) repeats
//! rounds of:
//!
//! 1. predict every target image with the current model (no dropout);
//! 2. for each predicted class, keep the most confident portion `p_r` of the images predicted
//!    as that class, with that class as their pseudo-label ([`select_balanced`]). The
//!    threshold is per class, so a class the source model favours cannot take over the
//!    pseudo-labels, which is CBST's point against plain confidence thresholding;
//! 3. fine-tune, starting from the current weights, on the kept target images with their
//!    pseudo-labels together with labelled source images (MNIST's training split), with the
//!    source run's own recipe: Adam, its batch size, dropout, augmentation and convolution
//!    algorithm ([`train`]).
//!
//! The portion grows each round, so the easy, reliable pseudo-labels come first and the model
//! that results labels the harder ones. This module keeps each image's most probable class as
//! its pseudo-label and selects by that class's threshold (the selection as the paper states
//! it, with the class-normalised confidence `p(c|x)/λ_c` compared to 1 only for the predicted
//! class). The target comes in only as [`Unlabeled`]: the method never has labels to read.
//!
//! # Where every number comes from
//! Nothing is chosen on any target label, nor on any USPS data:
//! - the portions, 20% rising by 5% a round to 50% (7 rounds): CBST's schedule (initial
//!   portion 20%, +5% per round, at most 50%), fixed before any run;
//! - one source image per pseudo-labelled target image in each round (`source_ratio` 1): the
//!   two terms of CBST's loss weighted alike; fixed a priori;
//! - 2 epochs per round (`epochs_per_round`): fixed a priori, a short fine-tune that keeps a
//!   round's cost below one source epoch;
//! - learning rate, batch size, dropout, augmentation: the source run's own (`lr: None`);
//! - the seed of each round's shuffles, dropout and source sample: derived from `seed`.
//!
//! The MNIST validation accuracy after each round is recorded for inspection (and falls if the
//! fine-tune forgets the source); it chooses nothing either.
//!
//! Everything is a pure function of the inputs and the seed: round `r` trains with seed
//! `mix_seed(seed ^ ROUND_SALT, r)` and samples its source images with
//! `mix_seed(seed ^ SOURCE_SALT, r)`; a fresh Adam starts each round. With the weights after
//! each round checkpointed, a resumed adaptation computes what an uninterrupted one would.

pub mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::{Dataset, Unlabeled};
use crate::engine::mix_seed;
use crate::eval::{argmax, predict_images};
use crate::models::Weights;
use crate::train::checkpoint::{load_safetensors, save_safetensors};
use crate::train::{train, Progress, TrainConfig, TrainOptions};
use crate::{Error, Result};

/// Salts of the per-round seeds (see the module documentation).
const ROUND_SALT: u64 = 0xADA9_7001;
const SOURCE_SALT: u64 = 0xADA9_7002;

/// Everything that decides an adaptation's numbers (besides the source run and the data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdaptConfig {
    /// The portion of each predicted class's target images kept as pseudo-labels, one entry per
    /// round, in order.
    pub portions: Vec<f64>,
    /// Passes over each round's training set (pseudo-labelled target plus source images).
    pub epochs_per_round: usize,
    /// Labelled source images sampled into each round per pseudo-labelled target image.
    pub source_ratio: f64,
    /// Adam's learning rate while fine-tuning; `None`: the source run's.
    pub lr: Option<f32>,
    pub seed: u64,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        AdaptConfig::cbst()
    }
}

impl AdaptConfig {
    /// CBST's schedule (20% rising by 5% a round to 50%), 2 epochs a round, one source image
    /// per pseudo-label, the source run's learning rate, seed 0.
    pub fn cbst() -> Self {
        AdaptConfig {
            portions: (0..7).map(|r| (20 + 5 * r) as f64 / 100.0).collect(),
            epochs_per_round: 2,
            source_ratio: 1.0,
            lr: None,
            seed: 0,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m));
        if self.portions.is_empty() {
            return bad("adaptation needs at least one round (portions is empty)".into());
        }
        if let Some(p) = self.portions.iter().find(|p| !(**p > 0.0 && **p <= 1.0)) {
            return bad(format!("every portion must be in (0, 1], got {p}"));
        }
        if self.epochs_per_round == 0 {
            return bad("epochs_per_round must be at least 1".into());
        }
        if !(self.source_ratio.is_finite() && self.source_ratio >= 0.0) {
            return bad(format!(
                "source_ratio must be 0 or more, got {}",
                self.source_ratio
            ));
        }
        if let Some(lr) = self.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
            return bad(format!(
                "the learning rate must be a positive number, got {lr}"
            ));
        }
        Ok(())
    }
}

/// What one round did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// 1-based.
    pub round: usize,
    pub portion: f64,
    /// Target images kept with pseudo-labels.
    pub kept: usize,
    /// Pseudo-labels kept per class.
    pub class_counts: [usize; 10],
    /// Source images trained on beside them.
    pub source_images: usize,
    /// On MNIST's validation split, after the round.
    pub mnist_val_accuracy: f64,
    pub mnist_val_loss: f64,
    /// Prediction, selection and fine-tuning.
    pub seconds: f64,
}

/// The result of an adaptation.
#[derive(Clone, Debug)]
pub struct AdaptOutcome {
    /// The weights after the last round done.
    pub weights: Weights,
    pub history: Vec<RoundRecord>,
    /// The rounds' seconds together.
    pub seconds: f64,
    /// `false` when `on_round` stopped it before the last round.
    pub completed: bool,
}

/// Called after each round's checkpoint is written; returning `false` stops there.
pub type RoundCallback<'a> = Box<dyn FnMut(&RoundRecord) -> bool + 'a>;

/// Options that change how an adaptation is carried out, not its numbers.
pub struct AdaptOptions<'a> {
    /// Where to write the weights after every round (atomically).
    pub checkpoint: Option<PathBuf>,
    /// Continue from `checkpoint` if it exists.
    pub resume: bool,
    pub progress: Progress,
    pub on_round: Option<RoundCallback<'a>>,
}

impl Default for AdaptOptions<'_> {
    fn default() -> Self {
        AdaptOptions {
            checkpoint: None,
            resume: false,
            progress: Progress::Auto,
            on_round: None,
        }
    }
}

/// The images CBST keeps from `probabilities` (`n × 10`): for each predicted class, the
/// `round(portion × n_c)` most confident of the `n_c` images predicted as it (ties to the
/// lower index). Returns (image index, pseudo-label) in index order.
pub fn select_balanced(probabilities: &[f32], portion: f64) -> Vec<(usize, u8)> {
    let mut by_class: [Vec<(usize, f32)>; 10] = Default::default();
    for (i, row) in probabilities.chunks(10).enumerate() {
        let c = argmax(row);
        by_class[c].push((i, row[c]));
    }
    let portion = portion.clamp(0.0, 1.0);
    let mut kept = Vec::new();
    for (c, members) in by_class.iter_mut().enumerate() {
        members.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let k = ((portion * members.len() as f64).round() as usize).min(members.len());
        kept.extend(members[..k].iter().map(|&(i, _)| (i, c as u8)));
    }
    kept.sort_unstable();
    kept
}

/// A sha256 of weights (architecture, tensor names, shapes and values), naming exactly the
/// model an adaptation started from.
pub fn weights_sha256(w: &Weights) -> String {
    let mut h = Sha256::new();
    h.update(w.arch.as_bytes());
    for t in &w.tensors {
        h.update(t.name.as_bytes());
        for &d in &t.shape {
            h.update((d as u64).to_le_bytes());
        }
        for v in &t.data {
            h.update(v.to_le_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Adapt `source_weights` (trained as `source_cfg` says) to the images of `target`, with
/// CBST (see the module documentation), fine-tuning beside `source_train` and reporting
/// accuracy on `source_val` after each round. All sets 28×28.
pub fn adapt(
    cfg: &AdaptConfig,
    source_cfg: &TrainConfig,
    source_weights: &Weights,
    source_train: &Dataset,
    source_val: &Dataset,
    target: &Unlabeled,
    mut opts: AdaptOptions,
) -> Result<AdaptOutcome> {
    cfg.validate()?;
    source_cfg.validate()?;
    source_weights.check_layout(&source_cfg.arch.to_string(), &source_cfg.arch.layout())?;
    if (target.width, target.height) != (28, 28) || target.is_empty() {
        return Err(Error::invalid(format!(
            "target `{}` has {} images of {}x{}; adaptation needs 28x28 images: frame it first (resize or mnist-frame)",
            target.name,
            target.len(),
            target.width,
            target.height
        )));
    }
    let inputs = Inputs {
        cfg,
        source_cfg,
        source_train,
        source_val,
        target,
    };
    let ids = Ids::of(&inputs, source_weights);
    let (mut weights, mut history) = match &opts.checkpoint {
        Some(path) if opts.resume && path.exists() => {
            load_checkpoint(path, &ids, source_cfg, cfg.portions.len())?
        }
        _ => (source_weights.clone(), Vec::new()),
    };
    let quiet = opts.progress == Progress::Quiet;
    if !quiet && !history.is_empty() {
        eprintln!("resuming the adaptation after round {}", history.len());
    }
    let rounds = cfg.portions.len();
    while history.len() < rounds {
        let round = history.len() + 1;
        let (next, record) = run_round(&inputs, weights, round, opts.progress)?;
        weights = next;
        if !quiet {
            eprintln!(
                "adapt round {round}/{rounds}: kept {} of {} target images ({:.0}% of each class; per class {:?}) + {} MNIST | MNIST val acc {:.2}% | {:.1} s",
                record.kept,
                target.len(),
                100.0 * record.portion,
                record.class_counts,
                record.source_images,
                100.0 * record.mnist_val_accuracy,
                record.seconds
            );
        }
        history.push(record.clone());
        if let Some(path) = &opts.checkpoint {
            save_checkpoint(path, &ids, &weights, &history)?;
        }
        if let Some(cb) = opts.on_round.as_mut() {
            if !cb(&record) && history.len() < rounds {
                return Ok(outcome(weights, history, false));
            }
        }
    }
    Ok(outcome(weights, history, true))
}

/// What an adaptation reads besides the weights: the settings, the source run's configuration
/// and data, and the target's images.
struct Inputs<'a> {
    cfg: &'a AdaptConfig,
    source_cfg: &'a TrainConfig,
    source_train: &'a Dataset,
    source_val: &'a Dataset,
    target: &'a Unlabeled,
}

/// One round of self-training from `weights`: pseudo-label the target's most confident
/// images of each class, train on them mixed with a sample of the source, and score on the
/// source's validation split. Returns the new weights and the round's record.
fn run_round(
    inputs: &Inputs,
    mut weights: Weights,
    round: usize,
    progress: Progress,
) -> Result<(Weights, RoundRecord)> {
    let Inputs {
        cfg,
        source_cfg,
        source_train,
        source_val,
        target,
    } = *inputs;
    let portion = cfg.portions[round - 1];
    let started = Instant::now();
    let probs = {
        let net = source_cfg.arch.inference_net(&weights, source_cfg.conv)?;
        predict_images(&net, &target.images, target.pixels())
    };
    let kept = select_balanced(&probs, portion);
    let mut class_counts = [0usize; 10];
    for &(_, c) in &kept {
        class_counts[c as usize] += 1;
    }
    let (idx, labels): (Vec<usize>, Vec<u8>) = kept.iter().copied().unzip();
    let pseudo = target.pseudo_labelled(&idx, &labels, &format!("cbst-round{round}"))?;
    let n_source = (cfg.source_ratio * kept.len() as f64).round() as usize;
    let source = source_train.subset(n_source, mix_seed(cfg.seed ^ SOURCE_SALT, round as u64));
    let parts: Vec<&Dataset> = [&pseudo, &source]
        .into_iter()
        .filter(|d| !d.is_empty())
        .collect();
    let round_cfg = TrainConfig {
        epochs: cfg.epochs_per_round,
        patience: None,
        seed: mix_seed(cfg.seed ^ ROUND_SALT, round as u64),
        lr: cfg.lr.unwrap_or(source_cfg.lr),
        ..source_cfg.clone()
    };
    let (val_accuracy, val_loss) = if parts.is_empty() {
        // Nothing was kept and no source sampled: the round leaves the model as it is.
        let net = source_cfg.arch.inference_net(&weights, source_cfg.conv)?;
        let v = crate::eval::evaluate_net(&net, source_val)?;
        (v.accuracy, v.loss)
    } else {
        let mixed = Dataset::concat(format!("{}+mnist", pseudo.name), &parts)?;
        let out = train(
            &round_cfg,
            &mixed,
            source_val,
            TrainOptions {
                progress,
                initial: Some(weights),
                ..Default::default()
            },
        )?;
        weights = out.weights;
        let last = out.history.last().expect("at least one epoch ran");
        (last.val_accuracy, last.val_loss)
    };
    Ok((
        weights,
        RoundRecord {
            round,
            portion,
            kept: kept.len(),
            class_counts,
            source_images: source.len(),
            mnist_val_accuracy: val_accuracy,
            mnist_val_loss: val_loss,
            seconds: started.elapsed().as_secs_f64(),
        },
    ))
}

fn outcome(weights: Weights, history: Vec<RoundRecord>, completed: bool) -> AdaptOutcome {
    AdaptOutcome {
        weights,
        seconds: history.iter().map(|r| r.seconds).sum(),
        history,
        completed,
    }
}

/// What an adaptation checkpoint must match to be resumed: its inputs, by value or hash.
struct Ids(BTreeMap<String, String>);

impl Ids {
    fn of(inputs: &Inputs, source_weights: &Weights) -> Ids {
        Ids(BTreeMap::from([
            (
                "adapt_config".into(),
                serde_json::to_string(inputs.cfg).expect("config serialises"),
            ),
            (
                "source_config".into(),
                serde_json::to_string(inputs.source_cfg).expect("config serialises"),
            ),
            ("source_weights".into(), weights_sha256(source_weights)),
            (
                "source_train".into(),
                inputs.source_train.source_sha256.clone(),
            ),
            ("source_val".into(), inputs.source_val.source_sha256.clone()),
            ("target".into(), inputs.target.source_sha256.clone()),
            ("engine".into(), crate::engine::gemm::backend_name()),
        ]))
    }
}

fn save_checkpoint(
    path: &Path,
    ids: &Ids,
    weights: &Weights,
    history: &[RoundRecord],
) -> Result<()> {
    let mut meta = ids.0.clone();
    meta.insert(
        "rounds".into(),
        serde_json::to_string(history).expect("history serialises"),
    );
    save_safetensors(path, &[("", weights)], &meta)
}

fn load_checkpoint(
    path: &Path,
    ids: &Ids,
    source_cfg: &TrainConfig,
    rounds: usize,
) -> Result<(Weights, Vec<RoundRecord>)> {
    let mut loaded = load_safetensors(path)?;
    for (key, want) in &ids.0 {
        if loaded.metadata.get(key) != Some(want) {
            return Err(Error::invalid(format!(
                "{}: adaptation checkpoint was made with another {key} than this adaptation's; use the same settings and source run, or another --out to start afresh",
                path.display()
            )));
        }
    }
    let corrupt = || {
        Error::format(
            path,
            "not an adaptation checkpoint; move it away to start afresh",
        )
    };
    let history: Vec<RoundRecord> = loaded
        .metadata
        .get("rounds")
        .and_then(|s| serde_json::from_str(s).ok())
        // More rounds than the schedule has cannot come from this adaptation.
        .filter(|h: &Vec<RoundRecord>| h.len() <= rounds)
        .ok_or_else(corrupt)?;
    let weights = loaded.sets.remove("").ok_or_else(corrupt)?;
    weights.check_layout(&source_cfg.arch.to_string(), &source_cfg.arch.layout())?;
    Ok((weights, history))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probabilities with the given argmax and confidence per image.
    fn probs(rows: &[(usize, f32)]) -> Vec<f32> {
        rows.iter()
            .flat_map(|&(c, p)| {
                let mut row = [(1.0 - p) / 9.0; 10];
                row[c] = p;
                row
            })
            .collect()
    }

    #[test]
    fn selection_keeps_each_class_portion_most_confident_first() {
        // Class 3 dominates (8 images), class 5 has 2, class 7 has 1.
        let mut rows = vec![];
        for (i, p) in [0.9, 0.5, 0.99, 0.6, 0.7, 0.95, 0.4, 0.8]
            .iter()
            .enumerate()
        {
            rows.push((3, *p));
            if i == 2 {
                rows.push((5, 0.3));
                rows.push((7, 0.2));
            }
            if i == 5 {
                rows.push((5, 0.35));
            }
        }
        // Indices: 0:3@.9 1:3@.5 2:3@.99 3:5@.3 4:7@.2 5:3@.6 6:3@.7 7:3@.95 8:5@.35 9:3@.4
        // 10:3@.8
        let kept = select_balanced(&probs(&rows), 0.5);
        // Class 3: 4 of 8, the most confident (.99, .95, .9, .8); class 5: 1 of 2 (.35);
        // class 7: round(0.5) = 1 of 1, although it is the least confident image overall.
        assert_eq!(kept, vec![(0, 3), (2, 3), (4, 7), (7, 3), (8, 5), (10, 3)]);
        let kept = select_balanced(&probs(&rows), 0.25);
        assert_eq!(kept, vec![(2, 3), (7, 3), (8, 5)]);
        assert_eq!(select_balanced(&probs(&rows), 1.0).len(), rows.len());
        // Ties go to the lower index.
        let tied = select_balanced(&probs(&[(1, 0.5), (1, 0.5), (1, 0.5)]), 0.34);
        assert_eq!(tied, vec![(0, 1)]);
    }

    #[test]
    fn configurations_are_checked() {
        assert!(AdaptConfig::cbst().validate().is_ok());
        assert_eq!(
            AdaptConfig::cbst().portions,
            vec![0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]
        );
        for bad in [
            AdaptConfig {
                portions: vec![],
                ..AdaptConfig::cbst()
            },
            AdaptConfig {
                portions: vec![0.2, 1.5],
                ..AdaptConfig::cbst()
            },
            AdaptConfig {
                epochs_per_round: 0,
                ..AdaptConfig::cbst()
            },
            AdaptConfig {
                lr: Some(-1.0),
                ..AdaptConfig::cbst()
            },
        ] {
            let e = bad.validate().unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
