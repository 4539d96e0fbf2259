//! `digits draw`: a local web page to draw a digit (or drop a photo of one) and watch the
//! study's MLP and CNN answer it, resized and framed, as the person draws.
//!
//! The study's finding in one gesture: a small digit drawn in a corner, only resized, is
//! lost on the MLP; framed as MNIST framed its digits, the MLP reads it; the CNN copes with
//! both. The page shows the 28×28 each model is given under each preparation, every model's
//! three most probable digits, and one sentence saying what happened ([`reading`]).
//!
//! - Models: the study's seed-0 runs of [`DEFAULT_VARIANTS`](crate::predict::DEFAULT_VARIANTS)
//!   under a runs folder, as `digits predict` finds them ([`load_models`]); [`train_missing`]
//!   trains the missing ones first, as `digits study` would.
//! - Server ([`server`]): axum on a small tokio runtime, the page served from the binary,
//!   local only unless asked; every bad request gets a 4xx and one line of JSON.

pub mod reading;
pub mod server;

use std::path::Path;

use crate::data::{load_mnist, Split};
use crate::predict::{default_runs, Model, DEFAULT_VARIANTS};
use crate::study::{ensure_runs, StudyConfig, VARIANTS};
use crate::train::Progress;
use crate::{Error, Result};

pub use reading::{read_drawing, read_photo, Reading};
pub use server::{bind, serve, Server};

/// The seed-0 runs of the default variants under `runs_dir`, or an error naming the command
/// that makes them.
pub fn load_models(runs_dir: &Path) -> Result<Vec<Model>> {
    let runs = default_runs(runs_dir);
    if let Some(missing) = runs.iter().find(|r| !r.exists()) {
        return Err(Error::Missing {
            path: missing.clone(),
            hint: format!(
                "no trained {} to draw with; run `digits draw --train --runs {}` to train them first (as `digits study` does)",
                DEFAULT_VARIANTS.join(" and "),
                runs_dir.display()
            ),
        });
    }
    let models = crate::predict::load_models(&runs, runs_dir)?;
    // The page must never start half working: every model answers once before it is served.
    crate::predict::answer_frames(vec![0.0; 28 * 28], &models)?;
    Ok(models)
}

/// Trains (or resumes) the default variants' seed-0 runs that `runs_dir` lacks, with the
/// study's configuration and progress bars; finished runs are reused as they are.
pub fn train_missing(data_dir: &Path, runs_dir: &Path) -> Result<()> {
    let cfg = StudyConfig {
        variants: VARIANTS
            .iter()
            .filter(|v| DEFAULT_VARIANTS.contains(&v.name))
            .copied()
            .collect(),
        seeds: vec![0],
        runs_dir: runs_dir.to_path_buf(),
        progress: Progress::Auto,
        ..StudyConfig::full()
    };
    let mnist_train = load_mnist(data_dir, Split::Train)?;
    ensure_runs(&cfg, &mnist_train, data_dir)?;
    Ok(())
}
