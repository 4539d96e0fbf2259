//! The per-epoch training record, as a polars DataFrame and a CSV file.

use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::io::write_atomic;
use crate::{Error, Result};

/// One epoch's measurements. Training loss and accuracy are running means over the epoch's
/// batches with dropout on (as Keras reports them); validation ones use the model at the end
/// of the epoch without dropout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
}

pub fn history_frame(history: &[EpochRecord]) -> DataFrame {
    let col = |f: fn(&EpochRecord) -> f64| history.iter().map(f).collect::<Vec<f64>>();
    df!(
        "epoch" => history.iter().map(|r| r.epoch as u32).collect::<Vec<u32>>(),
        "train_loss" => col(|r| r.train_loss),
        "train_accuracy" => col(|r| r.train_accuracy),
        "val_loss" => col(|r| r.val_loss),
        "val_accuracy" => col(|r| r.val_accuracy),
        "seconds" => col(|r| r.seconds),
    )
    .expect("columns of equal length")
}

/// CSV text of any DataFrame.
pub fn frame_to_csv(df: &DataFrame) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut df = df.clone();
    CsvWriter::new(&mut buf)
        .finish(&mut df)
        .map_err(|e| Error::invalid(format!("cannot write CSV: {e}")))?;
    Ok(buf)
}

/// Write a DataFrame as CSV, atomically.
pub fn save_csv(df: &DataFrame, path: &Path) -> Result<()> {
    write_atomic(path, &frame_to_csv(df)?)
}
