//! Hyperparameter search over the MLP's and the CNN's sizes, dropout and learning rate: random
//! search (the original study's) or Hyperband, seeded, resumable and shardable.
//!
//! - What runs ([`schedule`]): trials numbered from the bracket arithmetic alone, so every
//!   process agrees on what trial `k` is. Hyperband's promoted configurations continue from
//!   their checkpoint (`TrainOptions { resume: true }` with the larger epoch budget), which
//!   gives exactly the numbers of a training from scratch to that budget (resumption is exact)
//!   for a fraction of the time.
//! - What is tried ([`space`]): each configuration is drawn from the search seed and the id of
//!   the trial that first trains it, and trained with a seed drawn from the same two, so a
//!   configuration and its numbers never depend on which process or shard ran it.
//! - What is chosen: the lowest **validation loss** (the quantity early stopping watches; finer
//!   than accuracy on a 6,000-image split) on the MNIST validation split. [`search`] takes a
//!   training and a validation set and nothing else: no test set can reach the selection.
//! - What is kept ([`table`]): each finished trial is appended to the shard's table file
//!   (written atomically) before the next starts. A rerun skips finished trials and continues
//!   an interrupted one from its checkpoint, so an interruption loses at most the epoch in
//!   flight.

pub mod schedule;
pub mod space;
pub mod table;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

pub use schedule::{Algorithm, Shard};
use schedule::{PlannedBracket, PlannedRung};
pub use space::Candidate;
pub use table::{trials_frame, TrialRecord};

use crate::data::Dataset;
use crate::engine::mix_seed;
use crate::eval::require_mnist_frame;
use crate::io::{read_json, write_json};
use crate::models::{Arch, ConvAlgo};
use crate::train::history::EpochRecord;
use crate::train::run::{checkpoint_path, load_history, Versions};
use crate::train::{train, EpochCallback, Progress, TrainConfig, TrainOptions};
use crate::{Error, Result};

/// Everything that decides a search's trials and numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneConfig {
    /// [`Arch::Mlp`] or [`Arch::Cnn`]: which kind of model is searched.
    pub family: Arch,
    pub algorithm: Algorithm,
    /// Trials to run (a trial is one training to one epoch budget; Hyperband's continuation of
    /// a configuration to a larger budget is a trial of its own, as in KerasTuner).
    pub trials: usize,
    /// The largest epoch budget of a trial (Hyperband's `R`; every random-search trial's).
    pub max_epochs: usize,
    /// Hyperband's halving factor: each rung keeps the best `1/eta` for `eta` times the epochs.
    pub eta: usize,
    pub seed: u64,
    /// Search on this many training images drawn with the search seed (`None`: all).
    pub subset: Option<usize>,
    pub batch_size: usize,
    /// Early-stopping patience within each trial (as `digits train`).
    pub patience: Option<usize>,
}

impl TuneConfig {
    /// 30 trials, `R = 9` epochs, `eta = 3`, batches of 128 and patience 5 (the study's
    /// training settings).
    pub fn new(family: Arch, algorithm: Algorithm) -> Self {
        TuneConfig {
            family,
            algorithm,
            trials: 30,
            max_epochs: 9,
            eta: 3,
            seed: 0,
            subset: None,
            batch_size: 128,
            patience: Some(5),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m));
        if self.family != self.family.family() {
            return bad(format!(
                "search a model kind, `mlp` or `cnn`, not `{}`",
                self.family
            ));
        }
        if self.trials == 0 {
            return bad("--trials must be at least 1".into());
        }
        if self.max_epochs == 0 {
            return bad("--max-epochs must be at least 1".into());
        }
        if self.eta < 2 {
            return bad(format!("--eta must be at least 2, got {}", self.eta));
        }
        if self.subset == Some(0) {
            return bad("--subset must be at least 1 image".into());
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if self.patience == Some(0) {
            return bad("--patience must be at least 1 (leave it out to train every epoch)".into());
        }
        Ok(())
    }

    /// The brackets holding the search's trials.
    pub fn plan(&self) -> Vec<schedule::PlannedBracket> {
        schedule::plan(self.algorithm, self.max_epochs, self.eta, self.trials)
    }

    /// The training run of configuration `config` to `epochs`.
    pub fn train_config(&self, config: usize, epochs: usize) -> TrainConfig {
        let c = space::candidate(self.family, self.seed, config);
        TrainConfig {
            arch: c.arch,
            epochs,
            batch_size: self.batch_size,
            lr: c.lr,
            dropout: c.dropout,
            seed: training_seed(self.seed, config),
            patience: self.patience,
            // The search compares architectures and rates on plain digits, as the original's did.
            augment: None,
            conv: ConvAlgo::default(),
        }
    }
}

/// Salt that keeps training seeds apart from the configuration draws.
const TRAIN_SALT: u64 = 0x7472_6169_6e00_0000;

/// The training seed of configuration `config` (the id of the trial that first trains it).
pub fn training_seed(search_seed: u64, config: usize) -> u64 {
    mix_seed(search_seed ^ TRAIN_SALT, config as u64)
}

/// Called after each finished trial (its row already written); `false` stops the search there.
pub type TrialCallback<'a> = Box<dyn FnMut(&TrialRecord) -> bool + 'a>;
/// Called after each epoch of trial `.0`; `false` stops the search mid-trial, as an
/// interruption would.
pub type TrialEpochCallback<'a> = Box<dyn FnMut(usize, &EpochRecord) -> bool + 'a>;

/// How a search is carried out, not what it computes.
pub struct TuneOptions<'a> {
    pub shard: Shard,
    /// `Quiet` prints nothing; otherwise a line per trial, and on a terminal each epoch's bar.
    pub progress: Progress,
    pub on_trial: Option<TrialCallback<'a>>,
    pub on_epoch: Option<TrialEpochCallback<'a>>,
}

impl Default for TuneOptions<'_> {
    fn default() -> Self {
        TuneOptions {
            shard: Shard::ALL,
            progress: Progress::Auto,
            on_trial: None,
            on_epoch: None,
        }
    }
}

/// What a call of [`search`] did, and the table as it stands after it.
#[derive(Clone, Debug, Serialize)]
pub struct SearchOutcome {
    pub config: TuneConfig,
    pub shard: Shard,
    /// Every finished trial in the folder (all shards), in trial order.
    pub trials: Vec<TrialRecord>,
    /// Trials trained by this call.
    pub ran: usize,
    /// Trials of this shard found finished and skipped.
    pub skipped: usize,
    /// Whether this shard's part of the search is finished (`false`: stopped by a callback).
    pub completed: bool,
    pub seconds: f64,
}

impl SearchOutcome {
    /// The trial with the lowest validation loss (none while nothing has finished).
    pub fn best(&self) -> Option<&TrialRecord> {
        best(&self.trials)
    }

    /// The trial table as a DataFrame (for plots of the score against trial or hyperparameter).
    pub fn frame(&self) -> DataFrame {
        trials_frame(self.config.family, &self.trials)
    }

    /// Whether every trial of the search (all shards) is in the table.
    pub fn all_done(&self) -> bool {
        self.trials
            .iter()
            .filter(|r| r.trial < self.config.trials)
            .count()
            == self.config.trials
    }
}

/// The trial with the lowest validation loss among those that did not diverge.
pub fn best(trials: &[TrialRecord]) -> Option<&TrialRecord> {
    trials
        .iter()
        .filter(|r| r.val_loss.is_some())
        .min_by(|a, b| table::by_score(a, b))
}

/// The `digits train` command that trains a trial's configuration (with `digits train`'s
/// epochs and early stopping).
pub fn train_command(cfg: &TuneConfig, r: &TrialRecord) -> String {
    let arch = r.arch.canonical();
    let family = arch.family();
    let mut cmd = format!("digits train {family}");
    if arch != family {
        cmd += &format!(" --arch {arch}");
    }
    cmd += &format!(" --dropout {} --lr {}", r.dropout, r.lr);
    if cfg.batch_size != 128 {
        cmd += &format!(" --batch-size {}", cfg.batch_size);
    }
    cmd
}

/// `search.json`: what the search in a folder is, so that a rerun with other settings is
/// refused instead of mixing two searches in one table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchRecord {
    pub config: TuneConfig,
    /// sha256 provenance of the training (after `subset`) and validation data.
    pub train_data: String,
    pub val_data: String,
    pub versions: Versions,
}

impl SearchRecord {
    /// The record of a search of `cfg` on these data, by this build.
    fn of(cfg: &TuneConfig, train: &Dataset, val: &Dataset) -> SearchRecord {
        SearchRecord {
            config: cfg.clone(),
            train_data: train.source_sha256.clone(),
            val_data: val.source_sha256.clone(),
            versions: Versions::current(),
        }
    }
}

pub fn record_path(dir: &Path) -> PathBuf {
    dir.join("search.json")
}

pub fn load_record(dir: &Path) -> Result<SearchRecord> {
    read_json(
        &record_path(dir),
        "not a search folder; start one with `digits tune`",
        |e| format!("unreadable search record ({e}); delete the folder to start afresh"),
    )
}

/// The trial table of the search in `dir`, all shards merged, as a DataFrame.
pub fn load_frame(dir: &Path) -> Result<DataFrame> {
    let record = load_record(dir)?;
    Ok(trials_frame(
        record.config.family,
        &table::read_merged(dir)?,
    ))
}

/// Check `dir`'s record against this search (only the trial count may differ: a search can be
/// extended), or write it for a new search.
fn check_record(dir: &Path, record: &SearchRecord) -> Result<()> {
    if record_path(dir).exists() {
        let stored = load_record(dir)?;
        let same = |r: &SearchRecord| {
            (
                TuneConfig {
                    trials: 0,
                    ..r.config.clone()
                },
                r.train_data.clone(),
                r.val_data.clone(),
            )
        };
        if same(&stored) != same(record) {
            return Err(Error::invalid(format!(
                "{}: holds a search with other settings or data ({}); use the same settings, or another --name",
                dir.display(),
                serde_json::to_string(&stored.config).unwrap_or_default()
            )));
        }
        if stored.config.trials >= record.config.trials {
            return Ok(());
        }
    }
    write_json(&record_path(dir), record)
}

fn config_dir(dir: &Path, config: usize) -> PathBuf {
    dir.join("checkpoints").join(format!("config-{config}"))
}

/// Drop a configuration's checkpoint once no later trial can continue it.
fn forget(dir: &Path, config: usize) -> Result<()> {
    let d = config_dir(dir, config);
    match std::fs::remove_dir_all(&d) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(d, e)),
        _ => Ok(()),
    }
}

/// Where a trial sits in the search.
#[derive(Clone, Copy, Debug)]
struct Slot {
    trial: usize,
    bracket: usize,
    rung: usize,
    config: usize,
    epochs: usize,
    /// The configuration's epochs before this trial (the rung before's budget).
    epochs_before: usize,
}

fn check_shard(shard: Shard) -> Result<()> {
    if shard.count == 0 || shard.index >= shard.count {
        return Err(Error::invalid(format!(
            "bad shard {shard}; write i/n with 0 <= i < n"
        )));
    }
    Ok(())
}

/// How the search reports (trial lines, or nothing) and how each trial's training does (bars
/// on a terminal, else nothing: the trial lines say enough in a log).
fn progress_modes(asked: Progress) -> (Progress, Progress) {
    match asked {
        Progress::Quiet => (Progress::Quiet, Progress::Quiet),
        Progress::Auto | Progress::Bars if std::io::stderr().is_terminal() => {
            (Progress::Lines, Progress::Bars)
        }
        _ => (Progress::Lines, Progress::Quiet),
    }
}

/// The configurations a rung continues: the best `keep` of the rung before by validation
/// score; the others' checkpoints are dropped. `None` when the rung before was cut short by the
/// trial count, so there is nothing to promote.
fn promote(
    dir: &Path,
    done: &BTreeMap<usize, TrialRecord>,
    prev: &PlannedRung,
    keep: usize,
) -> Result<Option<Vec<usize>>> {
    let rows: Option<Vec<&TrialRecord>> = (prev.first_trial..prev.first_trial + prev.configs)
        .map(|t| done.get(&t))
        .collect();
    let Some(mut rows) = rows else {
        return Ok(None);
    };
    rows.sort_by(|a, b| table::by_score(a, b));
    for r in &rows[keep..] {
        forget(dir, r.config)?;
    }
    Ok(Some(rows[..keep].iter().map(|r| r.config).collect()))
}

/// A trial already in the table must be the one the plan puts in its slot: a table from
/// another plan is refused rather than mixed in.
fn check_planned(dir: &Path, r: &TrialRecord, slot: Slot) -> Result<()> {
    if (r.config, r.epochs, r.bracket, r.rung)
        == (slot.config, slot.epochs, slot.bracket, slot.rung)
    {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{}: trial {} in the table is configuration {} at {} epochs, the search plans configuration {} at {}; delete the folder to start afresh",
        dir.display(),
        slot.trial,
        r.config,
        r.epochs,
        slot.config,
        slot.epochs
    )))
}

impl Slot {
    /// The `j`-th configuration (`config`) of rung `rung` of `bracket`.
    fn of(bracket: &PlannedBracket, rung: usize, j: usize, config: usize) -> Slot {
        let planned = &bracket.rungs[rung];
        Slot {
            trial: planned.first_trial + j,
            bracket: bracket.index,
            rung,
            config,
            epochs: planned.epochs,
            epochs_before: if rung == 0 {
                0
            } else {
                bracket.rungs[rung - 1].epochs
            },
        }
    }
}

/// The search's first line: what it searches, how much of it this shard runs, what is done.
fn announce(
    cfg: &TuneConfig,
    plan: &[PlannedBracket],
    shard: Shard,
    done: &BTreeMap<usize, TrialRecord>,
    dir: &Path,
) {
    let mine = plan.iter().filter(|b| shard.owns(b)).count();
    let already = done.keys().filter(|&&t| t < cfg.trials).count();
    eprintln!(
        "{} search of {} ({}): {} trials in {} brackets, shard {shard} runs {mine}; {already} trials already in {}",
        cfg.algorithm,
        cfg.family,
        space::describe(cfg.family),
        cfg.trials,
        plan.len(),
        dir.display()
    );
}

/// Says so when a trial's configuration has epochs beyond the rung before's: an interrupted
/// training that the trial continues.
fn say_if_continuing(dir: &Path, slot: Slot) {
    let before = load_history(&config_dir(dir, slot.config)).map_or(0, |h| h.len());
    if before > slot.epochs_before {
        eprintln!(
            "trial {}: continuing its interrupted training after epoch {before}",
            slot.trial
        );
    }
}

/// Run (or continue) this shard's part of the search `cfg` in `dir`, training on `train` and
/// scoring on `val` only.
pub fn search(
    cfg: &TuneConfig,
    train: &Dataset,
    val: &Dataset,
    dir: &Path,
    mut opts: TuneOptions,
) -> Result<SearchOutcome> {
    cfg.validate()?;
    let shard = opts.shard;
    check_shard(shard)?;
    require_mnist_frame(train)?;
    require_mnist_frame(val)?;
    let started = Instant::now();
    let subset = cfg.subset.map(|n| train.subset(n, cfg.seed));
    let train = subset.as_ref().unwrap_or(train);
    check_record(dir, &SearchRecord::of(cfg, train, val))?;
    let own_file = table::shard_file(dir, shard);
    let mut own = table::read_file(&own_file)?;
    let mut done: BTreeMap<usize, TrialRecord> = table::read_merged(dir)?
        .into_iter()
        .map(|r| (r.trial, r))
        .collect();
    let plan = cfg.plan();
    let (progress, epoch_progress) = progress_modes(opts.progress);
    if progress != Progress::Quiet {
        announce(cfg, &plan, shard, &done, dir);
    }
    let (mut ran, mut skipped) = (0, 0);
    let outcome = |done: &BTreeMap<usize, TrialRecord>, ran, skipped, completed| SearchOutcome {
        config: cfg.clone(),
        shard,
        trials: done.values().cloned().collect(),
        ran,
        skipped,
        completed,
        seconds: started.elapsed().as_secs_f64(),
    };
    for bracket in plan.iter().filter(|b| shard.owns(b)) {
        let first = &bracket.rungs[0];
        let mut members: Vec<usize> =
            (first.first_trial..first.first_trial + first.configs).collect();
        let mut finished_bracket = true;
        for (i, rung) in bracket.rungs.iter().enumerate() {
            if i > 0 {
                let Some(promoted) = promote(dir, &done, &bracket.rungs[i - 1], rung.configs)?
                else {
                    finished_bracket = false;
                    break;
                };
                members = promoted;
            }
            for (j, &config) in members.iter().enumerate() {
                let slot = Slot::of(bracket, i, j, config);
                if slot.trial >= cfg.trials {
                    finished_bracket = false;
                    break;
                }
                if let Some(r) = done.get(&slot.trial) {
                    check_planned(dir, r, slot)?;
                    skipped += 1;
                    continue;
                }
                if progress != Progress::Quiet {
                    say_if_continuing(dir, slot);
                }
                let on_epoch: Option<EpochCallback> = opts
                    .on_epoch
                    .as_mut()
                    .map(|f| Box::new(move |r: &EpochRecord| f(slot.trial, r)) as EpochCallback);
                let Some(record) =
                    run_trial(cfg, slot, shard, train, val, dir, epoch_progress, on_epoch)?
                else {
                    return Ok(outcome(&done, ran, skipped, false));
                };
                own.push(record.clone());
                table::write_file(&own_file, cfg.family, &own)?;
                done.insert(record.trial, record.clone());
                ran += 1;
                if progress != Progress::Quiet {
                    eprintln!("{}", trial_line(cfg, &record));
                }
                if let Some(cb) = opts.on_trial.as_mut() {
                    if !cb(&record) {
                        return Ok(outcome(&done, ran, skipped, false));
                    }
                }
            }
        }
        if finished_bracket {
            for &config in &members {
                forget(dir, config)?;
            }
        }
    }
    Ok(outcome(&done, ran, skipped, true))
}

/// Train one trial, continuing its configuration's checkpoint; `None` when `on_epoch` stopped it.
#[allow(clippy::too_many_arguments)]
fn run_trial(
    cfg: &TuneConfig,
    slot: Slot,
    shard: Shard,
    train_set: &Dataset,
    val: &Dataset,
    dir: &Path,
    progress: Progress,
    on_epoch: Option<EpochCallback>,
) -> Result<Option<TrialRecord>> {
    let tc = cfg.train_config(slot.config, slot.epochs);
    let ckpt_dir = config_dir(dir, slot.config);
    std::fs::create_dir_all(&ckpt_dir).map_err(|e| Error::io(&ckpt_dir, e))?;
    let opts = TrainOptions {
        checkpoint: Some(checkpoint_path(&ckpt_dir)),
        resume: true,
        progress,
        on_epoch,
        initial: None,
    };
    let record = |history: &[EpochRecord], diverged: bool| {
        // A checkpoint can be ahead of this trial's budget only if a later rung ran before;
        // the first `epochs` epochs are then exactly what training to the budget gives.
        let history = &history[..history.len().min(slot.epochs)];
        let best = history
            .iter()
            .reduce(|a, b| if b.val_loss < a.val_loss { b } else { a })
            .filter(|_| !diverged);
        TrialRecord {
            trial: slot.trial,
            bracket: slot.bracket,
            rung: slot.rung,
            config: slot.config,
            arch: tc.arch,
            dropout: tc.dropout,
            lr: tc.lr,
            epochs: slot.epochs,
            epochs_run: history.len(),
            best_epoch: best.map_or(0, |b| b.epoch),
            val_loss: best.map(|b| b.val_loss),
            val_accuracy: best.map(|b| b.val_accuracy),
            seconds: history
                .iter()
                .skip(slot.epochs_before)
                .map(|r| r.seconds)
                .sum(),
            seed: tc.seed,
            train_images: train_set.len(),
            subset: cfg.subset,
            shard,
        }
    };
    match train(&tc, train_set, val, opts) {
        Ok(out) if !out.completed => Ok(None),
        Ok(out) => Ok(Some(record(&out.history, false))),
        // A learning rate at the top of the range can blow a configuration up: that is a
        // result (the worst score), not a reason to stop the search.
        Err(Error::NonFinite(_)) => {
            let history = load_history(&ckpt_dir).unwrap_or_default();
            Ok(Some(record(&history, true)))
        }
        Err(e) => Err(e),
    }
}

/// One line per finished trial.
pub fn trial_line(cfg: &TuneConfig, r: &TrialRecord) -> String {
    let score = match (r.val_loss, r.val_accuracy) {
        (Some(l), Some(a)) => format!(
            "val loss {l:.4}, acc {:.2}% (epoch {})",
            100.0 * a,
            r.best_epoch
        ),
        _ => "diverged".into(),
    };
    format!(
        "trial {}/{} [bracket {}, rung {}] {} dropout {} lr {}: {}/{} epochs, {score}, {:.1} s",
        r.trial,
        cfg.trials,
        r.bracket,
        r.rung,
        r.arch,
        r.dropout,
        r.lr,
        r.epochs_run,
        r.epochs,
        r.seconds
    )
}
