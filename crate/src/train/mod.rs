//! Training: mini-batch Adam on softmax cross-entropy, validation each epoch, early stopping
//! that restores the best weights, an atomic checkpoint every epoch, and exact resumption.
//!
//! This folder owns training: the loop here, Keras's Adam (`optim`), checkpoints that resume
//! exactly (`checkpoint`), the per-epoch history (`history`), run folders and their records,
//! named once for the command and the study (`run`), whole runs as bits for comparing builds
//! and thread counts (`fingerprint`), and a few steps with their gradients laid
//! bare for the cross-cell test (`probe`).
//!
//! Everything random is a pure function of the run's seed: the shuffle of epoch `e` is drawn
//! from `mix_seed(seed, e)` and the dropout masks of batch `b` from `mix_seed(seed, e << 32 | b)`.
//! Augmentation, when on, draws batch `b` from `mix_seed(seed ^ 0xA5A5_A5A5, e << 32 | b)`: a
//! stream of its own, so switching it on leaves the shuffles and dropout masks as they were.
//! With the optimiser's state in the checkpoint, a resumed run computes exactly what an
//! uninterrupted one would have.

pub mod checkpoint;
pub mod fingerprint;
pub mod history;
pub mod optim;
pub mod probe;
pub mod run;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dfdx::prelude::*;
use dfdx::tensor::Cpu;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::augment::{augment_batch, AugmentSpec};
use crate::data::Dataset;
use crate::engine::mix_seed;
use crate::engine::profile::{self, Phase};
use crate::eval::{argmax, evaluate_net, require_mnist_frame};
use crate::models::{export_weights, model_net, Arch, Classifier, ConvAlgo, Weights};
use crate::train::checkpoint::{load_safetensors, save_safetensors};
use crate::train::history::EpochRecord;
use crate::train::optim::{Adam, AdamConfig};
use crate::{Error, Result};

/// Everything that decides a training run's numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub arch: Arch,
    /// Upper bound on epochs (early stopping may end sooner).
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub dropout: f32,
    pub seed: u64,
    /// Stop after this many epochs without a lower validation loss, and restore the best
    /// weights (Keras's `EarlyStopping(patience, restore_best_weights=True)`); `None` trains
    /// every epoch and keeps the last weights.
    pub patience: Option<usize>,
    /// Random changes to every training image, drawn afresh each epoch; validation data are
    /// never augmented. Left out of the JSON when `None`, and `None` when absent there, so
    /// checkpoints and records of runs without augmentation read and write as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<AugmentSpec>,
    /// How the convolutions are computed (Winograd by default). Always written; a record
    /// without it was trained with im2col (see [`ConvAlgo::unrecorded`]).
    #[serde(default = "ConvAlgo::unrecorded")]
    pub conv: ConvAlgo,
}

/// Salt of the augmentation seeds (see the module documentation).
const AUGMENT_SALT: u64 = 0xA5A5_A5A5;

impl TrainConfig {
    /// The original study's settings: 30 epochs, batches of 128, Adam at 1e-3, patience 5.
    pub fn new(arch: Arch) -> Self {
        TrainConfig {
            arch,
            epochs: 30,
            batch_size: 128,
            lr: 1e-3,
            dropout: arch.default_dropout(),
            seed: 0,
            patience: Some(5),
            augment: None,
            conv: ConvAlgo::default(),
        }
    }

    /// Exactly `epochs` epochs at `batch_size` (no early stopping), the other settings the
    /// original study's: the short runs of the tests and of `run_fingerprint`.
    pub fn fixed(arch: Arch, epochs: usize, batch_size: usize, seed: u64) -> Self {
        TrainConfig {
            epochs,
            batch_size,
            patience: None,
            seed,
            ..TrainConfig::new(arch)
        }
    }

    /// Check the settings before any data is read or time spent.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr must be a positive number, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("--dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.patience == Some(0) {
            return bad("--patience must be at least 1 (leave it out to train every epoch)".into());
        }
        if let Some(spec) = &self.augment {
            spec.validate()?;
        }
        Ok(())
    }
}

/// How training reports progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Bars on a terminal, one line per epoch elsewhere (logs, CI, notebooks).
    Auto,
    /// A progress bar per epoch with rate and time left, then the epoch's line.
    Bars,
    /// One line per epoch.
    Lines,
    Quiet,
}

/// Called after each epoch; returning `false` stops the run there.
pub type EpochCallback<'a> = Box<dyn FnMut(&EpochRecord) -> bool + 'a>;

/// Options that change how a run is carried out, not its numbers.
pub struct TrainOptions<'a> {
    /// Where to write the checkpoint after every epoch (atomically).
    pub checkpoint: Option<PathBuf>,
    /// Continue from `checkpoint` if it exists.
    pub resume: bool,
    pub progress: Progress,
    /// Called after each epoch's checkpoint is written; returning `false` stops the run there,
    /// as an interruption would (used by tests and notebooks).
    pub on_epoch: Option<EpochCallback<'a>>,
    /// Start from these weights instead of the configuration's seeded initialisation (to
    /// fine-tune a trained model, as adaptation does); a checkpoint resumed from wins over it.
    pub initial: Option<Weights>,
}

impl Default for TrainOptions<'_> {
    fn default() -> Self {
        TrainOptions {
            checkpoint: None,
            resume: false,
            progress: Progress::Auto,
            on_epoch: None,
            initial: None,
        }
    }
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The weights to use: the best epoch's with early stopping, else the last epoch's.
    pub weights: Weights,
    pub history: Vec<EpochRecord>,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    pub stopped_early: bool,
    /// `false` when `on_epoch` stopped the run before it was done.
    pub completed: bool,
}

/// Training state between epochs: exactly what a checkpoint holds.
#[derive(Clone, Debug)]
struct State {
    epochs_done: usize,
    weights: Weights,
    adam: Adam,
    best: Weights,
    best_val_loss: f64,
    best_epoch: usize,
    /// Epochs since the validation loss last improved.
    wait: usize,
    stopped_early: bool,
    history: Vec<EpochRecord>,
}

/// The scalar part of [`State`], stored as JSON in the checkpoint's metadata.
#[derive(Serialize, Deserialize)]
struct StateMeta {
    epochs_done: usize,
    adam_t: u64,
    adam: AdamConfig,
    best_val_loss: f64,
    best_epoch: usize,
    wait: usize,
    stopped_early: bool,
    history: Vec<EpochRecord>,
}

impl State {
    fn fresh(cfg: &TrainConfig, initial: Option<Weights>) -> Self {
        let weights = initial.unwrap_or_else(|| cfg.arch.init(cfg.seed));
        State {
            epochs_done: 0,
            adam: Adam::new(AdamConfig::keras(cfg.lr), &weights),
            best: weights.clone(),
            weights,
            best_val_loss: f64::INFINITY,
            best_epoch: 0,
            wait: 0,
            stopped_early: false,
            history: Vec::new(),
        }
    }

    fn save(&self, path: &Path, cfg: &TrainConfig, train: &Dataset, val: &Dataset) -> Result<()> {
        let meta = StateMeta {
            epochs_done: self.epochs_done,
            adam_t: self.adam.t,
            adam: self.adam.cfg,
            best_val_loss: self.best_val_loss,
            best_epoch: self.best_epoch,
            wait: self.wait,
            stopped_early: self.stopped_early,
            history: self.history.clone(),
        };
        let metadata = BTreeMap::from([
            (
                "state".to_string(),
                serde_json::to_string(&meta).expect("state serialises"),
            ),
            (
                "config".to_string(),
                serde_json::to_string(cfg).expect("config serialises"),
            ),
            ("train_data".to_string(), train.source_sha256.clone()),
            ("val_data".to_string(), val.source_sha256.clone()),
            ("engine".to_string(), crate::engine::gemm::backend_name()),
        ]);
        let sets = [
            ("", &self.weights),
            ("adam_m/", &self.adam.m),
            ("adam_v/", &self.adam.v),
            ("best/", &self.best),
        ];
        save_safetensors(path, &sets, &metadata)
    }

    fn load(path: &Path, cfg: &TrainConfig, train: &Dataset, val: &Dataset) -> Result<Self> {
        let mut loaded = load_safetensors(path)?;
        let corrupt = |what: &str| {
            Error::format(
                path,
                format!("not a training checkpoint ({what}); start a fresh run without --resume"),
            )
        };
        let stored_cfg: TrainConfig = loaded
            .metadata
            .get("config")
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| corrupt("no configuration"))?;
        // Resuming is exact only on the engine that wrote the checkpoint.
        let engine = crate::engine::gemm::backend_name();
        let stored_engine = loaded.metadata.get("engine").cloned();
        if stored_engine.as_deref() != Some(engine.as_str()) {
            return Err(Error::invalid(format!(
                "{}: checkpoint was written by another engine ({}) than this one ({engine}), so resuming would not be exact; move it away, or another --out to start afresh",
                path.display(),
                stored_engine.as_deref().unwrap_or("gemm 0.15")
            )));
        }
        // Only the epoch budget may change on resume (to train longer).
        if (TrainConfig {
            epochs: cfg.epochs,
            ..stored_cfg.clone()
        }) != *cfg
        {
            return Err(Error::invalid(format!(
                "{}: checkpoint was written by a different configuration ({}); use the same settings, or another --out to start afresh",
                path.display(),
                serde_json::to_string(&stored_cfg).unwrap_or_default()
            )));
        }
        for (key, ds) in [("train_data", train), ("val_data", val)] {
            if loaded.metadata.get(key) != Some(&ds.source_sha256) {
                return Err(Error::invalid(format!(
                    "{}: checkpoint was trained on other data than `{}` ({key} hash differs); use the same data and --val-split, or another --out",
                    path.display(),
                    ds.name
                )));
            }
        }
        let meta: StateMeta = loaded
            .metadata
            .get("state")
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| corrupt("no training state"))?;
        let mut take = |k: &str| {
            loaded
                .sets
                .remove(k)
                .ok_or_else(|| corrupt(&format!("no `{k}` tensors")))
        };
        let (weights, m, v, best) = (
            take("")?,
            take("adam_m/")?,
            take("adam_v/")?,
            take("best/")?,
        );
        let layout = cfg.arch.layout();
        for w in [&weights, &best] {
            w.check_layout(&cfg.arch.to_string(), &layout)?;
        }
        Ok(State {
            epochs_done: meta.epochs_done,
            adam: Adam {
                cfg: meta.adam,
                t: meta.adam_t,
                m,
                v,
            },
            weights,
            best,
            best_val_loss: meta.best_val_loss,
            best_epoch: meta.best_epoch,
            wait: meta.wait,
            stopped_early: meta.stopped_early,
            history: meta.history,
        })
    }

    fn outcome(&self, cfg: &TrainConfig, completed: bool) -> TrainOutcome {
        let (weights, best_epoch) = if cfg.patience.is_some() && self.best_epoch > 0 {
            (self.best.clone(), self.best_epoch)
        } else {
            (self.weights.clone(), self.epochs_done)
        };
        TrainOutcome {
            weights,
            history: self.history.clone(),
            best_epoch,
            stopped_early: self.stopped_early,
            completed,
        }
    }
}

/// Train `cfg.arch` on `train`, validating on `val` (both 28×28).
pub fn train(
    cfg: &TrainConfig,
    train: &Dataset,
    val: &Dataset,
    mut opts: TrainOptions,
) -> Result<TrainOutcome> {
    cfg.validate()?;
    crate::runtime::keep_freed_memory();
    require_mnist_frame(train)?;
    require_mnist_frame(val)?;
    let mut state = match &opts.checkpoint {
        Some(path) if opts.resume && path.exists() => State::load(path, cfg, train, val)?,
        _ => {
            if let Some(w) = &opts.initial {
                w.check_layout(&cfg.arch.to_string(), &cfg.arch.layout())?;
            }
            State::fresh(cfg, opts.initial.take())
        }
    };
    let dev = Cpu::default();
    let mut model = cfg.arch.build(&dev, &state.weights, cfg.dropout)?;
    model.set_conv(cfg.conv);
    let progress = match opts.progress {
        Progress::Auto if std::io::stderr().is_terminal() => Progress::Bars,
        Progress::Auto => Progress::Lines,
        p => p,
    };
    if progress != Progress::Quiet && state.epochs_done > 0 {
        eprintln!("resuming {} after epoch {}", cfg.arch, state.epochs_done);
    }
    while state.epochs_done < cfg.epochs && !state.stopped_early {
        let epoch = state.epochs_done + 1;
        let started = Instant::now();
        // On a thread of the pool, so that each step's parallel loops start inside it.
        let (train_loss, train_accuracy) = crate::runtime::on_pool(|| {
            run_epoch(
                cfg,
                epoch,
                model.as_mut(),
                &dev,
                &mut state.adam,
                train,
                progress,
            )
        })?;
        let v = evaluate_net(&model_net(cfg.arch, model.as_ref(), cfg.conv)?, val)?;
        let record = EpochRecord {
            epoch,
            train_loss,
            train_accuracy,
            val_loss: v.loss,
            val_accuracy: v.accuracy,
            seconds: started.elapsed().as_secs_f64(),
        };
        if progress != Progress::Quiet {
            eprintln!(
                "{} epoch {epoch}/{}: loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}% | {:.1} s ({:.0} img/s)",
                cfg.arch,
                cfg.epochs,
                record.train_loss,
                100.0 * record.train_accuracy,
                record.val_loss,
                100.0 * record.val_accuracy,
                record.seconds,
                train.len() as f64 / record.seconds
            );
        }
        state.weights = export_weights(cfg.arch, model.as_ref());
        state.epochs_done = epoch;
        if record.val_loss < state.best_val_loss {
            state.best_val_loss = record.val_loss;
            state.best_epoch = epoch;
            state.best = state.weights.clone();
            state.wait = 0;
        } else {
            state.wait += 1;
            if cfg.patience.is_some_and(|p| state.wait >= p) {
                state.stopped_early = true;
                if progress != Progress::Quiet {
                    eprintln!(
                        "early stop: no better validation loss for {} epochs; keeping epoch {}",
                        state.wait, state.best_epoch
                    );
                }
            }
        }
        state.history.push(record.clone());
        if let Some(path) = &opts.checkpoint {
            state.save(path, cfg, train, val)?;
        }
        if let Some(cb) = opts.on_epoch.as_mut() {
            if !cb(&record) {
                return Ok(state.outcome(cfg, false));
            }
        }
    }
    Ok(state.outcome(cfg, true))
}

/// Copy the images `idx` of `ds` into the front of `images` and return their one-hot labels
/// (timed as data preparation).
pub fn gather_batch(ds: &Dataset, idx: &[usize], images: &mut [f32]) -> Vec<f32> {
    profile::time(Phase::DataPreparation, || {
        let px = ds.pixels();
        let mut onehot = vec![0.0f32; idx.len() * 10];
        for (j, &i) in idx.iter().enumerate() {
            images[j * px..(j + 1) * px].copy_from_slice(ds.image(i));
            onehot[j * 10 + ds.labels[i] as usize] = 1.0;
        }
        onehot
    })
}

/// One optimisation step on a batch: forward with dropout drawn from `seed`, cross-entropy,
/// backward, Adam. Returns the batch's mean loss (before the update) and how many images the
/// model got right. A non-finite loss is returned as it is, and no update is made.
pub fn train_step(
    model: &mut dyn Classifier,
    dev: &Cpu,
    adam: &mut Adam,
    images: &[f32],
    onehot: Vec<f32>,
    labels: &[u8],
    seed: u64,
) -> (f32, usize) {
    let m = labels.len();
    let mut grads = Gradients::leaky();
    for p in model.params() {
        p.alloc_grad(&mut grads);
    }
    let logits = model.train_logits(dev, images, m, seed, grads);
    let right = logits
        .as_vec()
        .chunks(10)
        .zip(labels)
        .filter(|(row, &l)| argmax(row) == l as usize)
        .count();
    let loss =
        cross_entropy_with_logits_loss(logits, dev.tensor_from_vec(onehot, (m, Const::<10>)));
    let loss_value = loss.array();
    if loss_value.is_finite() {
        let mut grads = loss.backward();
        profile::time(Phase::Optimiser, || adam_step(model, adam, &mut grads));
    }
    (loss_value, right)
}

/// Apply one Adam step to every parameter of `model` from this step's gradients.
pub fn adam_step(model: &mut dyn Classifier, adam: &mut Adam, grads: &mut Gradients<f32, Cpu>) {
    let alpha = adam.begin_step();
    for (i, p) in model.params_mut().into_iter().enumerate() {
        let mut w = p.values();
        adam.update(i, alpha, &mut w, p.grad(grads));
        p.set_values(&w);
    }
}

/// Run `step` and `prepare_next` at once where the pool has a thread to spare, and return
/// both results: how training readies the next batch during the current step (the benchmark
/// times the same). Both run as rayon tasks: a thread of the pool that waited for a thread
/// outside it, whose own parallel loops wait for the pool, would wait forever on a pool of
/// one thread.
pub fn beside<R: Send, T: Send>(
    step: impl FnOnce() -> R + Send,
    prepare_next: impl FnOnce() -> T + Send,
) -> (R, T) {
    rayon::join(step, prepare_next)
}

/// One pass over the shuffled training set; returns the running mean loss and accuracy.
fn run_epoch(
    cfg: &TrainConfig,
    epoch: usize,
    model: &mut dyn Classifier,
    dev: &Cpu,
    adam: &mut Adam,
    train: &Dataset,
    progress: Progress,
) -> Result<(f64, f64)> {
    let (n, px) = (train.len(), train.pixels());
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(mix_seed(cfg.seed, epoch as u64)));
    let bar = if progress == Progress::Bars {
        ProgressBar::new(n as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} images {per_sec} ETA {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} epoch {epoch}/{}", cfg.arch, cfg.epochs));
    let batches: Vec<&[usize]> = order.chunks(cfg.batch_size).collect();
    // Batch b's images (gathered and augmented) as a pure function of (seed, epoch, b).
    let prepare = |b: usize, images: &mut [f32]| -> Vec<f32> {
        let idx = batches[b];
        let onehot = gather_batch(train, idx, images);
        if let Some(spec) = &cfg.augment {
            let seed = mix_seed(cfg.seed ^ AUGMENT_SALT, ((epoch as u64) << 32) | b as u64);
            profile::time(Phase::Augmentation, || {
                augment_batch(&mut images[..idx.len() * px], train.width, spec, seed)
            });
        }
        onehot
    };
    let (mut images, mut next_images) = (
        vec![0.0f32; cfg.batch_size * px],
        vec![0.0f32; cfg.batch_size * px],
    );
    let mut onehot = prepare(0, &mut images);
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    for (b, idx) in batches.iter().enumerate() {
        let m = idx.len();
        let seed = mix_seed(cfg.seed, ((epoch as u64) << 32) | b as u64);
        let labels: Vec<u8> = idx.iter().map(|&i| train.labels[i]).collect();
        // The next batch is prepared beside this one's step: augmentation then costs the
        // MLP's short step little, and the batches are the same either way.
        let buf = &mut next_images;
        let (step, next_onehot) = beside(
            || train_step(model, dev, adam, &images[..m * px], onehot, &labels, seed),
            || (b + 1 < batches.len()).then(|| prepare(b + 1, buf)),
        );
        let (loss_value, right) = step;
        std::mem::swap(&mut images, &mut next_images);
        onehot = next_onehot.unwrap_or_default();
        if !loss_value.is_finite() {
            bar.abandon();
            return Err(Error::NonFinite(format!(
                "training diverged: the loss became {loss_value} at epoch {epoch}, batch {b}; lower the learning rate (--lr, now {})",
                cfg.lr
            )));
        }
        correct += right;
        loss_sum += loss_value as f64 * m as f64;
        bar.inc(m as u64);
        if b % 20 == 0 {
            bar.set_message(format!("loss {:.4}", loss_sum / bar.position() as f64));
        }
    }
    bar.finish_and_clear();
    Ok((loss_sum / n as f64, correct as f64 / n as f64))
}
