//! An adaptation on disk, beside the training runs: `model.safetensors` (read by
//! [`load_model`](crate::train::run::load_model) as any run's weights), `run.json` (the
//! [`AdaptRecord`]) and the checkpoint written after every round.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{adapt, weights_sha256, AdaptConfig, AdaptOptions, AdaptOutcome, RoundRecord};
use crate::data::{Dataset, Unlabeled};
use crate::io::{read_json, write_json};
use crate::models::Weights;
use crate::train::checkpoint::save_safetensors;
use crate::train::run::{
    model_path, record_path, require_same_engine, EvalSummary, RunRecord, Versions,
};
use crate::train::Progress;
use crate::{Error, Result};

/// `run.json` of an adapted run: what it started from, what it adapted to, how, and what each
/// round did. It is deliberately not a [`RunRecord`] (no top-level `config`), so that a
/// trained run is never mistaken for an adapted one, nor the reverse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdaptRecord {
    pub adaptation: AdaptConfig,
    /// The source run's record, as it was when adapted.
    pub source: RunRecord,
    /// [`weights_sha256`] of the source run's weights.
    pub source_weights: String,
    /// The target's name (framing included) and provenance (ending in `+unlabeled`).
    pub target: String,
    pub target_data: String,
    pub versions: Versions,
    pub rounds: Vec<RoundRecord>,
    pub seconds: f64,
    /// Evaluations added by the caller (the command adds MNIST and USPS test sets).
    pub results: Vec<EvalSummary>,
}

pub fn adapt_checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("adapt-checkpoint.safetensors")
}

/// The default folder of an adapted run: beside its source run, named
/// `<source run>-adapt-<target>-<framing>` (characters unfit for a file name become `_`).
pub fn adapt_run_name(source_dir_name: &str, target: &str, framing: &str) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!(
        "{}-adapt-{}-{}",
        safe(source_dir_name),
        safe(target),
        safe(framing)
    )
}

/// Adapt the run `source` (its weights `source_weights`, trained on `source_train`) to
/// `target` into `dir`: a checkpoint after every round, then the weights and the record. With
/// `resume`, an interrupted adaptation in `dir` continues after its last finished round.
#[allow(clippy::too_many_arguments)]
pub fn adapt_run(
    dir: &Path,
    cfg: &AdaptConfig,
    source: &RunRecord,
    source_weights: &Weights,
    source_train: &Dataset,
    source_val: &Dataset,
    target: &Unlabeled,
    resume: bool,
    progress: Progress,
) -> Result<(AdaptOutcome, AdaptRecord)> {
    for (what, ds, want) in [
        ("training", source_train, &source.train_data),
        ("validation", source_val, &source.val_data),
    ] {
        if &ds.source_sha256 != want {
            return Err(Error::invalid(format!(
                "`{}` is not the {what} data the source run was trained with (its hash differs from run.json's); rebuild it with the run's --val-split and seed",
                ds.name
            )));
        }
    }
    let opts = AdaptOptions {
        checkpoint: Some(adapt_checkpoint_path(dir)),
        resume,
        progress,
        on_round: None,
    };
    let outcome = adapt(
        cfg,
        &source.config,
        source_weights,
        source_train,
        source_val,
        target,
        opts,
    )?;
    let record = AdaptRecord {
        adaptation: cfg.clone(),
        source: source.clone(),
        source_weights: weights_sha256(source_weights),
        target: target.name.clone(),
        target_data: target.source_sha256.clone(),
        versions: Versions::current(),
        rounds: outcome.history.clone(),
        seconds: outcome.seconds,
        results: Vec::new(),
    };
    save_adapted_model(dir, &outcome.weights, &record)?;
    save_adapt_record(dir, &record)?;
    Ok((outcome, record))
}

/// The record of a finished adaptation in `dir` made exactly so (same configuration, source
/// run and weights, target images); `None` when `dir` holds no finished run. Anything else
/// there (another adaptation, a trained run, another engine's adaptation) is an error: nothing
/// here overwrites what it did not make.
pub fn finished_adapt_run(
    dir: &Path,
    cfg: &AdaptConfig,
    source: &RunRecord,
    source_weights: &Weights,
    target: &Unlabeled,
) -> Result<Option<AdaptRecord>> {
    if !record_path(dir).exists() || !model_path(dir).exists() {
        return Ok(None);
    }
    let record = load_adapt_record(dir)?;
    require_same_engine(dir, &record.versions, "adapted", "--out")?;
    let same = record.adaptation == *cfg
        && record.source.config == source.config
        && record.source.train_data == source.train_data
        && record.source_weights == weights_sha256(source_weights)
        && record.target_data == target.source_sha256;
    if !same {
        return Err(Error::invalid(format!(
            "{} holds a different adaptation (its run.json differs in configuration, source run or target); move it away, or choose another --out",
            dir.display()
        )));
    }
    Ok(Some(record))
}

pub fn save_adapt_record(dir: &Path, record: &AdaptRecord) -> Result<()> {
    write_json(&record_path(dir), record)
}

pub fn load_adapt_record(dir: &Path) -> Result<AdaptRecord> {
    let path = record_path(dir);
    let record: AdaptRecord = read_json(
        &path,
        "not a finished adapted run; make one with `digits adapt`",
        |e| {
            format!("not the record of an adapted run ({e}); move the folder away, or choose another --out")
        },
    )?;
    check_rounds(&path, &record)?;
    Ok(record)
}

/// A finished adaptation recorded every round of its schedule; a record with fewer (none, in
/// an emptied or hand-edited file) describes no adapted weights that can be trusted.
fn check_rounds(path: &Path, record: &AdaptRecord) -> Result<()> {
    let (got, want) = (record.rounds.len(), record.adaptation.portions.len());
    if got == 0 || got != want {
        return Err(Error::format(
            path,
            format!("adaptation record has {got} rounds where its schedule has {want}; delete the folder and run `digits adapt` again"),
        ));
    }
    Ok(())
}

/// Whether the `run.json` in `dir` is an adapted run's (it names an `adaptation`), so that a
/// reader can report that record's own error rather than a trained run's.
pub fn is_adapt_record(dir: &Path) -> bool {
    std::fs::read_to_string(record_path(dir))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|v| v.get("adaptation").is_some())
}

/// The adapted weights with the record in the file's metadata, laid out as a trained run's
/// model file.
fn save_adapted_model(dir: &Path, weights: &Weights, record: &AdaptRecord) -> Result<()> {
    let meta = BTreeMap::from([(
        "adaptation".to_string(),
        serde_json::to_string(record).expect("record serialises"),
    )]);
    save_safetensors(&model_path(dir), &[("", weights)], &meta)
}
