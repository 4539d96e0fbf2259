//! The trial table: one row per finished trial, as records, as a polars DataFrame, and as CSV
//! files in the search folder (one per shard, merged on read).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::schedule::{PlannedBracket, PlannedRung, Shard};
use crate::models::Arch;
use crate::train::history::save_csv;
use crate::{Error, Result};

/// One finished trial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub trial: usize,
    /// Bracket index from the start of the search (random search: the trial id).
    pub bracket: usize,
    /// Rung within the bracket (0: the configuration's first training).
    pub rung: usize,
    /// The trial that first trained this configuration (the trial itself at rung 0); its
    /// id seeds both the configuration's draw and its training.
    pub config: usize,
    pub arch: Arch,
    pub dropout: f32,
    pub lr: f32,
    /// The trial's epoch budget.
    pub epochs: usize,
    /// Epochs trained by the end of the trial (fewer than `epochs` when early stopping ended it).
    pub epochs_run: usize,
    /// The epoch whose weights early stopping keeps; its validation numbers are the trial's.
    pub best_epoch: usize,
    /// Validation loss of the best epoch; `None` when training diverged.
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// Training time of the epochs this trial added to its configuration.
    pub seconds: f64,
    /// The training seed (shuffles, dropout masks, initial weights).
    pub seed: u64,
    /// Training images used: MNIST train minus the validation split, or the `--subset` of it.
    pub train_images: usize,
    /// `--subset` as given (`None`: all of the training split).
    pub subset: Option<usize>,
    /// The shard that ran the trial.
    pub shard: Shard,
}

impl TrialRecord {
    /// Ranking key: lower validation loss first, a diverged trial last, ties by trial id.
    pub fn score(&self) -> (f64, usize) {
        (self.val_loss.unwrap_or(f64::INFINITY), self.trial)
    }
}

/// The order in which trials rank: best validation loss first.
pub fn by_score(a: &TrialRecord, b: &TrialRecord) -> std::cmp::Ordering {
    let (la, ta) = a.score();
    let (lb, tb) = b.score();
    la.total_cmp(&lb).then(ta.cmp(&tb))
}

/// The table as a DataFrame in trial order, with one column per hyperparameter of `family`
/// (MLP: `units_1`, `units_2`; CNN: `filters_1`, `conv_2`, `filters_2` (null without the
/// second convolution), `dense_units`) beside `arch`, `dropout` and `lr`: ready for plots of
/// the score against the trial or any hyperparameter.
pub fn trials_frame(family: Arch, records: &[TrialRecord]) -> DataFrame {
    // polars has no usize columns: counts are u64.
    let count = |name, f: fn(&TrialRecord) -> usize| column(records, name, |r| f(r) as u64);
    let mut cols = vec![
        count("trial", |r| r.trial),
        count("bracket", |r| r.bracket),
        count("rung", |r| r.rung),
        count("config", |r| r.config),
        column(records, "arch", |r| r.arch.to_string()),
    ];
    cols.extend(size_columns(family, records));
    cols.extend([
        column(records, "dropout", |r| r.dropout),
        column(records, "lr", |r| r.lr),
        count("epochs", |r| r.epochs),
        count("epochs_run", |r| r.epochs_run),
        count("best_epoch", |r| r.best_epoch),
        column(records, "val_loss", |r| r.val_loss),
        column(records, "val_accuracy", |r| r.val_accuracy),
        column(records, "seconds", |r| r.seconds),
        column(records, "seed", |r| r.seed),
        count("train_images", |r| r.train_images),
        column(records, "subset", |r| r.subset.map(|n| n as u64)),
        column(records, "shard", |r| r.shard.to_string()),
    ]);
    DataFrame::new(cols).expect("columns of equal length and distinct names")
}

/// One column of the trial table: `f` of every record.
fn column<T>(records: &[TrialRecord], name: &str, f: impl Fn(&TrialRecord) -> T) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Column::new(name.into(), records.iter().map(f).collect::<Vec<_>>())
}

/// The hyperparameter columns of `family`'s sizes; null where a record's model has no such
/// size (a CNN without its second convolution has no `filters_2`).
fn size_columns(family: Arch, records: &[TrialRecord]) -> Vec<Column> {
    let size =
        |name, f: fn(Arch) -> Option<u16>| column(records, name, |r| f(r.arch).map(u32::from));
    match family.family() {
        Arch::Mlp => {
            fn mlp(a: Arch) -> Option<(u16, u16)> {
                match a {
                    Arch::MlpOf { h1, h2 } => Some((h1, h2)),
                    Arch::Mlp => Some((224, 288)),
                    _ => None,
                }
            }
            vec![
                size("units_1", |a| mlp(a).map(|m| m.0)),
                size("units_2", |a| mlp(a).map(|m| m.1)),
            ]
        }
        _ => {
            fn cnn(a: Arch) -> Option<(u16, Option<u16>, u16)> {
                match a {
                    Arch::CnnOf { c1, c2, dense } => Some((c1, c2, dense)),
                    Arch::Cnn => Some((32, Some(192), 128)),
                    _ => None,
                }
            }
            vec![
                size("filters_1", |a| cnn(a).map(|c| c.0)),
                column(records, "conv_2", |r| cnn(r.arch).map(|c| c.1.is_some())),
                size("filters_2", |a| cnn(a).and_then(|c| c.1)),
                size("dense_units", |a| cnn(a).map(|c| c.2)),
            ]
        }
    }
}

/// A compact view for printing: where each trial sits, its configuration and its scores,
/// rounded (validation loss to 4 decimals, accuracy in percent to 2, seconds to 1).
pub fn summary_frame(records: &[TrialRecord]) -> DataFrame {
    let round = |v: f64, places: i32| (v * 10f64.powi(places)).round() / 10f64.powi(places);
    let u = |f: fn(&TrialRecord) -> usize| records.iter().map(|r| f(r) as u64).collect::<Vec<_>>();
    df!(
        "trial" => u(|r| r.trial),
        "bracket" => u(|r| r.bracket),
        "rung" => u(|r| r.rung),
        "arch" => records.iter().map(|r| r.arch.to_string()).collect::<Vec<_>>(),
        "dropout" => records.iter().map(|r| r.dropout).collect::<Vec<_>>(),
        "lr" => records.iter().map(|r| r.lr).collect::<Vec<_>>(),
        "epochs" => u(|r| r.epochs),
        "epochs_run" => u(|r| r.epochs_run),
        "val_loss" => records.iter().map(|r| r.val_loss.map(|v| round(v, 4))).collect::<Vec<_>>(),
        "val_acc_%" => records
            .iter()
            .map(|r| r.val_accuracy.map(|v| round(100.0 * v, 2)))
            .collect::<Vec<_>>(),
        "seconds" => records.iter().map(|r| round(r.seconds, 1)).collect::<Vec<_>>(),
        "shard" => records.iter().map(|r| r.shard.to_string()).collect::<Vec<_>>(),
    )
    .expect("columns of equal length")
}

/// A search's plan, one row per rung of each bracket: which trials it trains, how many
/// configurations and for how many epochs each (what a notebook shows before searching).
pub fn plan_frame(plan: &[PlannedBracket]) -> DataFrame {
    let rungs: Vec<(usize, &PlannedRung)> = plan
        .iter()
        .flat_map(|b| b.rungs.iter().map(move |r| (b.index, r)))
        .collect();
    let u = |f: fn(&(usize, &PlannedRung)) -> usize| {
        rungs.iter().map(|x| f(x) as u64).collect::<Vec<_>>()
    };
    df!(
        "bracket" => u(|x| x.0),
        "rung" => u(|x| x.1.rung),
        "trials" => rungs
            .iter()
            .map(|(_, r)| format!("{}–{}", r.first_trial, r.first_trial + r.configs - 1))
            .collect::<Vec<_>>(),
        "configurations" => u(|x| x.1.configs),
        "epochs_each" => u(|x| x.1.epochs),
    )
    .expect("columns of equal length")
}

/// The columns read back from a table file and their types (the hyperparameter columns are
/// derived from `arch` and not read).
fn read_schema() -> Schema {
    use DataType::*;
    [
        ("trial", UInt64),
        ("bracket", UInt64),
        ("rung", UInt64),
        ("config", UInt64),
        ("arch", String),
        ("dropout", Float32),
        ("lr", Float32),
        ("epochs", UInt64),
        ("epochs_run", UInt64),
        ("best_epoch", UInt64),
        ("val_loss", Float64),
        ("val_accuracy", Float64),
        ("seconds", Float64),
        ("seed", UInt64),
        ("train_images", UInt64),
        ("subset", UInt64),
        ("shard", String),
    ]
    .into_iter()
    .map(|(name, dtype)| Field::new(name.into(), dtype))
    .collect()
}

/// Records from the CSV text of a table file.
pub fn records_from_csv(path: &Path, bytes: &[u8]) -> Result<Vec<TrialRecord>> {
    let bad = |what: String| {
        Error::format(
            path,
            format!("not a readable trial table ({what}); delete it to redo its trials"),
        )
    };
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_schema_overwrite(Some(Arc::new(read_schema())))
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
        .map_err(|e| bad(e.to_string()))?;
    let col = |name: &str| df.column(name).map_err(|e| bad(e.to_string()));
    let ints = |name: &str| -> Result<Vec<Option<u64>>> {
        Ok(col(name)?
            .u64()
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .collect())
    };
    let f32s = |name: &str| -> Result<Vec<Option<f32>>> {
        Ok(col(name)?
            .f32()
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .collect())
    };
    let f64s = |name: &str| -> Result<Vec<Option<f64>>> {
        Ok(col(name)?
            .f64()
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .collect())
    };
    let strs = |name: &str| -> Result<Vec<Option<std::string::String>>> {
        Ok(col(name)?
            .str()
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .map(|s| s.map(str::to_string))
            .collect())
    };
    let (trial, bracket, rung, config) = (
        ints("trial")?,
        ints("bracket")?,
        ints("rung")?,
        ints("config")?,
    );
    let (epochs, epochs_run, best_epoch, seed, train_images, subset) = (
        ints("epochs")?,
        ints("epochs_run")?,
        ints("best_epoch")?,
        ints("seed")?,
        ints("train_images")?,
        ints("subset")?,
    );
    let (arch, shard) = (strs("arch")?, strs("shard")?);
    let (dropout, lr) = (f32s("dropout")?, f32s("lr")?);
    let (val_loss, val_accuracy, seconds) =
        (f64s("val_loss")?, f64s("val_accuracy")?, f64s("seconds")?);
    (0..df.height())
        .map(|i| {
            let row = |what: &str| bad(format!("row {}: no {what}", i + 1));
            let int =
                |c: &[Option<u64>], what: &str| c[i].map(|v| v as usize).ok_or_else(|| row(what));
            Ok(TrialRecord {
                trial: int(&trial, "trial")?,
                bracket: int(&bracket, "bracket")?,
                rung: int(&rung, "rung")?,
                config: int(&config, "config")?,
                arch: arch[i]
                    .as_deref()
                    .ok_or_else(|| row("arch"))?
                    .parse()
                    .map_err(|e: Error| bad(format!("row {}: {e}", i + 1)))?,
                dropout: dropout[i].ok_or_else(|| row("dropout"))?,
                lr: lr[i].ok_or_else(|| row("lr"))?,
                epochs: int(&epochs, "epochs")?,
                epochs_run: int(&epochs_run, "epochs_run")?,
                best_epoch: int(&best_epoch, "best_epoch")?,
                val_loss: val_loss[i],
                val_accuracy: val_accuracy[i],
                seconds: seconds[i].ok_or_else(|| row("seconds"))?,
                seed: seed[i].ok_or_else(|| row("seed"))?,
                train_images: int(&train_images, "train_images")?,
                subset: subset[i].map(|v| v as usize),
                shard: shard[i]
                    .as_deref()
                    .ok_or_else(|| row("shard"))?
                    .parse()
                    .map_err(|e: Error| bad(format!("row {}: {e}", i + 1)))?,
            })
        })
        .collect()
}

/// The table file a shard writes: `trials.csv` for a whole search in one process,
/// `trials-shard-<i>-of-<n>.csv` otherwise, so that shards never write the same file.
pub fn shard_file(dir: &Path, shard: Shard) -> PathBuf {
    if shard.count == 1 {
        dir.join("trials.csv")
    } else {
        dir.join(format!(
            "trials-shard-{}-of-{}.csv",
            shard.index, shard.count
        ))
    }
}

fn is_table_file(name: &str) -> bool {
    name == "trials.csv"
        || (name.starts_with("trials-shard-") && name.ends_with(".csv") && name.contains("-of-"))
}

/// Every table file in `dir` (in name order).
pub fn table_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_str().is_some_and(is_table_file) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// The records of one table file (none when it does not exist yet).
pub fn read_file(path: &Path) -> Result<Vec<TrialRecord>> {
    match std::fs::read(path) {
        Ok(bytes) => records_from_csv(path, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// All finished trials of the search in `dir`, every shard's file merged, in trial order. A
/// trial found in two files (a search first run in shards, then whole) is taken once: both
/// rows hold the same numbers, bar the time and the shard.
pub fn read_merged(dir: &Path) -> Result<Vec<TrialRecord>> {
    let mut by_trial = BTreeMap::new();
    for file in table_files(dir)? {
        for r in read_file(&file)? {
            by_trial.entry(r.trial).or_insert(r);
        }
    }
    Ok(by_trial.into_values().collect())
}

/// Write a shard's records (sorted by trial) atomically.
pub fn write_file(path: &Path, family: Arch, records: &[TrialRecord]) -> Result<()> {
    let mut sorted = records.to_vec();
    sorted.sort_by_key(|r| r.trial);
    save_csv(&trials_frame(family, &sorted), path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_plan_table_has_a_row_per_rung_with_its_trials() {
        let plan = super::super::schedule::plan(super::super::Algorithm::Hyperband, 9, 3, 30);
        let rungs: usize = plan.iter().map(|b| b.rungs.len()).sum();
        let df = plan_frame(&plan);
        assert_eq!(df.height(), rungs);
        assert_eq!(
            df.get_column_names_str(),
            ["bracket", "rung", "trials", "configurations", "epochs_each"]
        );
        let trials = df.column("trials").unwrap().str().unwrap();
        // The first bracket: 9 configurations for 1 epoch, 3 for 3, 1 for 9.
        assert_eq!(trials.get(0), Some("0–8"));
        assert_eq!(trials.get(1), Some("9–11"));
        assert_eq!(trials.get(2), Some("12–12"));
        let epochs = df.column("epochs_each").unwrap().u64().unwrap();
        assert_eq!(epochs.get(2), Some(9));
    }

    pub(crate) fn record(trial: usize, arch: Arch, val_loss: Option<f64>) -> TrialRecord {
        TrialRecord {
            trial,
            bracket: trial / 3,
            rung: trial % 2,
            config: trial - trial % 2,
            arch,
            dropout: 0.15,
            lr: 0.001_23,
            epochs: 3,
            epochs_run: 2,
            best_epoch: 2,
            val_loss,
            val_accuracy: val_loss.map(|l| 1.0 - l / 10.0),
            seconds: 1.5,
            seed: u64::MAX - trial as u64,
            train_images: 500,
            subset: trial.is_multiple_of(2).then_some(500),
            shard: Shard {
                index: trial % 2,
                count: 2,
            },
        }
    }

    #[test]
    fn records_round_trip_through_csv_exactly() {
        let dir = std::env::temp_dir().join(format!("digits-tune-table-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cnn = [
            Arch::CnnOf {
                c1: 16,
                c2: None,
                dense: 64,
            },
            Arch::CnnOf {
                c1: 48,
                c2: Some(96),
                dense: 256,
            },
        ];
        let recs: Vec<TrialRecord> = (0..4)
            .map(|i| {
                let mut r = record(
                    i,
                    cnn[i % 2],
                    (i != 2).then_some(0.1 + 1.0 / 3.0 * i as f64),
                );
                r.lr = 1.0 / 7.0 / (i + 1) as f32;
                r
            })
            .collect();
        let path = shard_file(&dir, Shard { index: 1, count: 2 });
        assert!(path.ends_with("trials-shard-1-of-2.csv"));
        write_file(&path, Arch::Cnn, &recs).unwrap();
        assert_eq!(read_file(&path).unwrap(), recs);
        let df = trials_frame(Arch::Cnn, &recs);
        assert_eq!(df.column("filters_2").unwrap().null_count(), 2);
        assert_eq!(df.column("val_loss").unwrap().null_count(), 1);

        // Merging: another file with an overlapping trial keeps one row per trial.
        let other = vec![recs[1].clone(), {
            let mut r = recs[3].clone();
            r.trial = 9;
            r
        }];
        write_file(&shard_file(&dir, Shard::ALL), Arch::Cnn, &other).unwrap();
        std::fs::write(dir.join("notes.csv"), "not a table").unwrap();
        let merged = read_merged(&dir).unwrap();
        assert_eq!(
            merged.iter().map(|r| r.trial).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 9]
        );
        std::fs::write(&path, "trial,arch\n1,rnn\n").unwrap();
        let err = read_merged(&dir).unwrap_err().to_string();
        assert!(
            err.contains("not a readable trial table") && !err.contains('\n'),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(read_merged(&dir).unwrap().is_empty());
    }

    #[test]
    fn mlp_columns_and_ranking() {
        let recs = vec![
            record(0, Arch::MlpOf { h1: 64, h2: 96 }, Some(0.3)),
            record(1, Arch::MlpOf { h1: 32, h2: 32 }, None),
            record(2, Arch::MlpOf { h1: 512, h2: 32 }, Some(0.2)),
            record(3, Arch::MlpOf { h1: 512, h2: 32 }, Some(0.2)),
        ];
        let df = trials_frame(Arch::Mlp, &recs);
        let units: Vec<Option<u32>> = df
            .column("units_1")
            .unwrap()
            .u32()
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(units, vec![Some(64), Some(32), Some(512), Some(512)]);
        let mut ranked = recs.clone();
        ranked.sort_by(by_score);
        assert_eq!(
            ranked.iter().map(|r| r.trial).collect::<Vec<_>>(),
            vec![2, 3, 0, 1]
        );
    }
}
