//! Each run's answers on each evaluation set, kept in the run folder (`predictions.json`) so
//! that re-running the study only computes what is new. An entry is reused only when the set's
//! content hash (framing and perturbation included) and size match.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::eval::{argmax, predict_probabilities, require_mnist_frame};
use crate::io::write_atomic;
use crate::models::{Arch, ConvAlgo, Weights};
use crate::{Error, Result};

/// One model's answers on one set: the predicted class and the probability it gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Predictions {
    pub source_sha256: String,
    pub predicted: Vec<u8>,
    pub confidence: Vec<f32>,
    /// Seconds the answers took: the model built and every image predicted. Absent from
    /// caches written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl Predictions {
    /// Which answers are right, against the set's labels.
    pub fn correct(&self, labels: &[u8]) -> Vec<bool> {
        self.predicted
            .iter()
            .zip(labels)
            .map(|(p, l)| p == l)
            .collect()
    }

    pub fn accuracy(&self, labels: &[u8]) -> f64 {
        let right = self.correct(labels).iter().filter(|&&c| c).count();
        right as f64 / labels.len() as f64
    }

    /// `confusion[true][predicted]` counts.
    pub fn confusion(&self, labels: &[u8]) -> [[u32; 10]; 10] {
        let mut m = [[0u32; 10]; 10];
        for (&p, &l) in self.predicted.iter().zip(labels) {
            m[l as usize][p as usize] += 1;
        }
        m
    }

    fn matches(&self, ds: &Dataset) -> bool {
        self.source_sha256 == ds.source_sha256
            && self.predicted.len() == ds.len()
            && self.confidence.len() == ds.len()
    }
}

/// A run's cached predictions, by data set name.
pub type PredictionCache = BTreeMap<String, Predictions>;

pub fn cache_path(run_dir: &Path) -> PathBuf {
    run_dir.join("predictions.json")
}

/// The cache of a run folder; empty when there is none yet. An unreadable cache is an error
/// that says to delete it (it is only a cache, and the study rebuilds it).
pub fn load_cache(run_dir: &Path) -> Result<PredictionCache> {
    let path = cache_path(run_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::format(
                &path,
                format!("unreadable prediction cache ({e}); delete it and the study rebuilds it"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PredictionCache::new()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

pub fn save_cache(run_dir: &Path, cache: &PredictionCache) -> Result<()> {
    let json = serde_json::to_vec(cache).expect("predictions serialise");
    write_atomic(&cache_path(run_dir), &json)
}

/// Predict every image of `ds` with a freshly built model.
pub fn predict(arch: Arch, weights: &Weights, ds: &Dataset) -> Result<Predictions> {
    require_mnist_frame(ds)?;
    let started = Instant::now();
    let net = arch.inference_net(weights, ConvAlgo::default())?;
    let probs = predict_probabilities(&net, ds);
    let mut predicted = Vec::with_capacity(ds.len());
    let mut confidence = Vec::with_capacity(ds.len());
    for row in probs.chunks(10) {
        let p = argmax(row);
        predicted.push(p as u8);
        confidence.push(row[p]);
    }
    Ok(Predictions {
        source_sha256: ds.source_sha256.clone(),
        predicted,
        confidence,
        seconds: Some(started.elapsed().as_secs_f64()),
    })
}

/// The cached predictions for `ds`, computing (and recording in `cache`) them when absent or
/// stale. Returns whether they were computed.
pub fn cached_predict(
    cache: &mut PredictionCache,
    arch: Arch,
    weights: &Weights,
    ds: &Dataset,
) -> Result<bool> {
    if cache.get(&ds.name).is_some_and(|p| p.matches(ds)) {
        return Ok(false);
    }
    let p = predict(arch, weights, ds)?;
    cache.insert(ds.name.clone(), p);
    Ok(true)
}
