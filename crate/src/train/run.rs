//! A training run on disk: `runs/<name>/` holds the record of what was run (`run.json`: seed,
//! configuration, versions, data hashes, results), the checkpoint, the final weights and the
//! history. This is what the command-line tool and the study reuse instead of retraining.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{load_domain, load_mnist, Dataset, Framing, Split};
use crate::eval::Evaluation;
use crate::io::{read_json, write_json};
use crate::models::{Arch, Weights};
use crate::train::checkpoint::{load_safetensors, save_safetensors};
use crate::train::history::{history_frame, save_csv, EpochRecord};
use crate::train::{train, Progress, TrainConfig, TrainOptions, TrainOutcome};
use crate::{Error, Result};

/// dfdx's version, as pinned in Cargo.lock (a test keeps the two in step).
pub const DFDX_VERSION: &str = "0.13.0";

/// Versions of what computed a run's numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub digits: String,
    pub dfdx: String,
    pub rustc: String,
    /// The matrix multiply and its kernels, e.g. `gemm 0.19.0 (AVX2+FMA kernels)` (see
    /// `engine::gemm`). Absent from the oldest records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gemm: Option<String>,
}

impl Versions {
    pub fn current() -> Self {
        Versions {
            digits: env!("CARGO_PKG_VERSION").into(),
            dfdx: DFDX_VERSION.into(),
            rustc: env!("DIGITS_RUSTC_VERSION").into(),
            gemm: Some(crate::engine::gemm::backend_name()),
        }
    }
}

/// One evaluation as the run record keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    /// Data set name, framing included (e.g. `usps-test[mnist-frame]`).
    pub dataset: String,
    pub source_sha256: String,
    pub n: usize,
    pub accuracy: f64,
    pub loss: f64,
    pub mean_confidence: f64,
}

impl From<&Evaluation> for EvalSummary {
    fn from(e: &Evaluation) -> Self {
        EvalSummary {
            dataset: e.dataset.clone(),
            source_sha256: e.source_sha256.clone(),
            n: e.n,
            accuracy: e.accuracy,
            loss: e.loss,
            mean_confidence: e.mean_confidence,
        }
    }
}

/// `run.json`: everything needed to know, and redo, what a run did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub config: TrainConfig,
    /// Fraction of MNIST's training set held out for validation (split seeded by the run's seed).
    pub val_split: f64,
    /// sha256 provenance of the training and validation data.
    pub train_data: String,
    pub val_data: String,
    pub versions: Versions,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub train_seconds: f64,
    pub results: Vec<EvalSummary>,
}

impl RunRecord {
    /// The record as `digits train` prints it: epochs, speed over `train_images` images per
    /// epoch, and each test set's accuracy.
    pub fn text(&self, train_images: usize) -> String {
        let secs = self.train_seconds / self.epochs_run.max(1) as f64;
        let mut out = format!(
            "{}: {} epochs (best {}), {:.1} s/epoch, {:.0} images/s\n",
            self.config.arch,
            self.epochs_run,
            self.best_epoch,
            secs,
            train_images as f64 / secs
        );
        for r in &self.results {
            out += &format!(
                "  {:<28} {:>6} images  accuracy {:>6.2}%\n",
                r.dataset,
                r.n,
                100.0 * r.accuracy
            );
        }
        out
    }
}

/// File names inside a run folder.
/// A run's folder name, `<model>[-<augmentation>][-<conv>]-seed<seed>`: the one naming that
/// `digits train` and the study share, so runs trained by hand are reused by the study.
///
/// The augmentation is a preset's name, or the spec itself made file-name safe, so augmented
/// and plain runs never share a folder; another convolution algorithm than the default is
/// another run too.
pub fn run_name(cfg: &TrainConfig) -> String {
    let aug = match &cfg.augment {
        None => String::new(),
        Some(spec) => {
            let text = spec.to_string();
            let name = crate::augment::PRESETS
                .iter()
                .find(|(_, p)| *p == text)
                .map(|(n, _)| n.to_string())
                .unwrap_or_else(|| text.replace(['=', ':'], "").replace(',', "_"));
            format!("-{name}")
        }
    };
    let conv = if cfg.conv.is_default() {
        String::new()
    } else {
        format!("-{}", cfg.conv)
    };
    format!("{}{aug}{conv}-seed{}", cfg.arch, cfg.seed)
}

pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.safetensors")
}
pub fn model_path(dir: &Path) -> PathBuf {
    dir.join("model.safetensors")
}
pub fn record_path(dir: &Path) -> PathBuf {
    dir.join("run.json")
}
pub fn history_path(dir: &Path) -> PathBuf {
    dir.join("history.csv")
}

/// MNIST's training set split into training and validation parts.
pub fn mnist_train_val(data_dir: &Path, val_split: f64, seed: u64) -> Result<(Dataset, Dataset)> {
    if !(val_split > 0.0 && val_split < 1.0) {
        return Err(Error::invalid(format!(
            "--val-split must be between 0 and 1, got {val_split}"
        )));
    }
    let full = load_mnist(data_dir, Split::Train)?;
    let (train, val) = full.split(val_split, seed);
    Ok((train, val))
}

/// Train and save a run into `dir`: checkpoint every epoch, then the best weights, history and
/// record. With `resume`, an interrupted run in `dir` continues where it stopped.
pub fn train_run(
    cfg: &TrainConfig,
    train_set: &Dataset,
    val_set: &Dataset,
    val_split: f64,
    dir: &Path,
    resume: bool,
    progress: Progress,
) -> Result<(TrainOutcome, RunRecord)> {
    let opts = TrainOptions {
        checkpoint: Some(checkpoint_path(dir)),
        resume,
        progress,
        on_epoch: None,
        initial: None,
    };
    let outcome = train(cfg, train_set, val_set, opts)?;
    let record = RunRecord {
        config: cfg.clone(),
        val_split,
        train_data: train_set.source_sha256.clone(),
        val_data: val_set.source_sha256.clone(),
        versions: Versions::current(),
        epochs_run: outcome.history.len(),
        best_epoch: outcome.best_epoch,
        stopped_early: outcome.stopped_early,
        train_seconds: outcome.history.iter().map(|r| r.seconds).sum(),
        results: Vec::new(),
    };
    save_model(dir, &outcome.weights, &record)?;
    save_csv(&history_frame(&outcome.history), &history_path(dir))?;
    save_record(dir, &record)?;
    Ok((outcome, record))
}

/// The record of a finished run in `dir` made exactly as `cfg` says, on `train_set` (by hash)
/// with the same validation split; `None` when `dir` holds no finished run. A finished run of
/// anything else is an error: nothing here overwrites a run it did not make.
pub fn finished_run(
    dir: &Path,
    cfg: &TrainConfig,
    val_split: f64,
    train_set: &Dataset,
) -> Result<Option<RunRecord>> {
    if !record_path(dir).exists() || !model_path(dir).exists() {
        return Ok(None);
    }
    let record = load_record(dir)?;
    let how = format!("trained with {} convolutions", record.config.conv);
    require_same_engine(dir, &record.versions, &how, "--runs folder")?;
    let same = record.config == *cfg
        && record.val_split == val_split
        && record.train_data == train_set.source_sha256;
    if !same {
        return Err(Error::invalid(format!(
            "{} holds a different run (its run.json differs in configuration or training data); move it away, or choose another folder",
            dir.display()
        )));
    }
    Ok(Some(record))
}

/// Whether a run was computed by this build's matrix multiply: the same `gemm` version, on
/// whatever kernels the machine that trained it had (they are in its record; a study spread
/// over machines of several kinds gathers them all).
pub fn same_engine(versions: &Versions) -> bool {
    versions
        .gemm
        .as_deref()
        .is_some_and(|g| g.starts_with(&format!("gemm {} (", crate::engine::gemm::GEMM_VERSION)))
}

/// Refuses a folder another engine made (`how`: what it did there, named in the message;
/// `elsewhere`: the option that picks another folder): its numbers are not this engine's.
pub fn require_same_engine(
    dir: &Path,
    versions: &Versions,
    how: &str,
    elsewhere: &str,
) -> Result<()> {
    if same_engine(versions) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{} was {how} by another engine ({}) than this build's ({}); its numbers are not this engine's: move it away, or choose another {elsewhere}",
        dir.display(),
        versions.gemm.as_deref().unwrap_or("gemm 0.15"),
        crate::engine::gemm::backend_name()
    )))
}

/// A finished run, reused as it is when `dir` holds one made the same way (see
/// [`finished_run`]), else trained (or resumed) into `dir`: its weights, history and record.
pub fn train_or_reuse(
    cfg: &TrainConfig,
    train_set: &Dataset,
    val_set: &Dataset,
    val_split: f64,
    dir: &Path,
    progress: Progress,
) -> Result<(Weights, Vec<EpochRecord>, RunRecord)> {
    if let Some(record) = finished_run(dir, cfg, val_split, train_set)? {
        let (_, weights) = load_model(dir)?;
        return Ok((weights, load_history(dir)?, record));
    }
    let (outcome, record) = train_run(cfg, train_set, val_set, val_split, dir, true, progress)?;
    Ok((outcome.weights, outcome.history, record))
}

pub fn save_record(dir: &Path, record: &RunRecord) -> Result<()> {
    write_json(&record_path(dir), record)
}

pub fn load_record(dir: &Path) -> Result<RunRecord> {
    read_json(
        &record_path(dir),
        "not a finished run folder; train one with `digits train`",
        |e| format!("unreadable run record ({e}); train the run again"),
    )
}

/// The final weights with the run's record in the file's metadata.
pub fn save_model(dir: &Path, weights: &Weights, record: &RunRecord) -> Result<()> {
    let meta = BTreeMap::from([(
        "run".to_string(),
        serde_json::to_string(record).expect("record serialises"),
    )]);
    save_safetensors(&model_path(dir), &[("", weights)], &meta)
}

/// Load the weights of a run folder (or of a `.safetensors` file) and their architecture.
pub fn load_model(path: &Path) -> Result<(Arch, Weights)> {
    let file = if path.is_dir() {
        model_path(path)
    } else {
        path.to_path_buf()
    };
    let mut loaded = load_safetensors(&file)?;
    let weights = loaded.sets.remove("").ok_or_else(|| {
        Error::format(
            &file,
            "holds no model weights; pass a run folder or its model.safetensors",
        )
    })?;
    let arch: Arch = weights.arch.parse()?;
    weights.check_layout(&weights.arch, &arch.layout())?;
    Ok((arch, weights))
}

/// Load a named domain in a framing; `None` (with the reason) when its files are absent, so a
/// report can go on without an optional data set.
pub fn try_domain(spec: &str, data_dir: &Path, framing: Framing) -> Result<Option<Dataset>> {
    match load_domain(spec, data_dir, framing) {
        Ok(ds) => Ok(Some(ds)),
        Err(Error::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// History of a run as records (for plots and notebooks).
pub fn load_history(dir: &Path) -> Result<Vec<EpochRecord>> {
    let loaded = load_safetensors(&checkpoint_path(dir))?;
    #[derive(Deserialize)]
    struct Meta {
        history: Vec<EpochRecord>,
    }
    loaded
        .metadata
        .get("state")
        .and_then(|s| serde_json::from_str::<Meta>(s).ok())
        .map(|m| m.history)
        .ok_or_else(|| {
            Error::format(
                checkpoint_path(dir),
                "no training history; train the run again",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ConvAlgo;

    #[test]
    fn run_names_keep_augmentation_and_algorithm_apart() {
        let plain = TrainConfig::new(Arch::Cnn);
        assert_eq!(run_name(&plain), "cnn-seed0");
        let keras = TrainConfig {
            augment: Some("keras".parse().unwrap()),
            seed: 3,
            ..plain.clone()
        };
        assert_eq!(run_name(&keras), "cnn-keras-seed3");
        let im2col = TrainConfig {
            conv: ConvAlgo::Im2col,
            ..keras
        };
        assert_eq!(run_name(&im2col), "cnn-keras-im2col-seed3");
        let custom = TrainConfig {
            augment: Some("rotate=5,shift=0.1".parse().unwrap()),
            ..TrainConfig::new(Arch::Mlp)
        };
        assert_eq!(run_name(&custom), "mlp-rotate5_shift0.1-seed0");
    }

    #[test]
    fn a_run_of_another_engine_is_refused_in_one_line() {
        let dir = std::env::temp_dir().join(format!("digits-unit-engine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let train_set = crate::data::synthetic::blocks(20, 1, false);
        let cfg = TrainConfig::new(Arch::Mlp);
        let mut record = RunRecord {
            config: cfg.clone(),
            val_split: 0.1,
            train_data: train_set.source_sha256.clone(),
            val_data: String::new(),
            versions: Versions::current(),
            epochs_run: 1,
            best_epoch: 1,
            stopped_early: false,
            train_seconds: 1.0,
            results: Vec::new(),
        };
        save_model(&dir, &cfg.arch.init(0), &record).unwrap();
        save_record(&dir, &record).unwrap();
        // This engine's own run is reused, whatever kernels trained it.
        assert!(finished_run(&dir, &cfg, 0.1, &train_set).unwrap().is_some());
        record.versions.gemm = Some("gemm 0.19.0 (AVX-512 kernels)".into());
        save_record(&dir, &record).unwrap();
        assert!(finished_run(&dir, &cfg, 0.1, &train_set).unwrap().is_some());
        // A run of another matrix multiply, or one whose record does not say, is not.
        for old in [
            Some("portable (gemm 0.15)"),
            Some("OpenBLAS 0.3.21 (Zen kernels)"),
            None,
        ] {
            record.versions.gemm = old.map(String::from);
            save_record(&dir, &record).unwrap();
            let err = finished_run(&dir, &cfg, 0.1, &train_set)
                .unwrap_err()
                .to_string();
            assert!(err.contains("another engine"), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dfdx_version_constant_matches_the_lock_file() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
        let entry = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"dfdx\""))
            .unwrap();
        assert!(
            entry.contains(&format!("version = \"{}\"", super::DFDX_VERSION)),
            "{entry}"
        );
    }
}
