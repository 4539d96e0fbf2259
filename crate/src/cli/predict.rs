//! `digits predict`: trained models' answers on image files.

use std::path::PathBuf;

use clap::Args;
use digits::predict::{figure, input_files, load_models, predict_all};
use digits::{Error, Result};
use serde_json::json;

#[derive(Args)]
pub struct PredictArgs {
    /// Image files (PNG, JPEG), or folders: every image file under them, subfolders included.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// A run folder or model.safetensors to predict with; repeat for several. Default: the
    /// study's seed-0 runs of mlp and cnn-keras under --runs.
    #[arg(long)]
    pub weights: Vec<PathBuf>,
    /// The study's runs folder, where the default runs are.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Also draw each input, the 28×28 the models saw and their answers into this PNG.
    #[arg(long)]
    pub show: Option<PathBuf>,
    /// Print one JSON object (predictions and failures) instead of a line per image.
    #[arg(long)]
    pub json: bool,
}

/// Prints every answer, and one line on stderr for each input that failed; fails (exit
/// status 1) when any did, after all the others have been predicted.
pub fn run(a: &PredictArgs) -> Result<()> {
    let models = load_models(&a.weights, &a.runs)?;
    let results = predict_all(input_files(&a.inputs), &models)?;
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(p) => done.push(p),
            Err(e) => failed.push(e),
        }
    }
    if a.json {
        let failures: Vec<_> = failed
            .iter()
            .map(|e| json!({ "error": e.to_string() }))
            .collect();
        let out = json!({ "predictions": done, "failed": failures });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("predictions serialise")
        );
    } else {
        for p in &done {
            println!("{}", p.line());
        }
    }
    for e in &failed {
        eprintln!("error: {e}");
    }
    if let Some(path) = &a.show {
        if !done.is_empty() {
            figure(&done)?.save(path)?;
            eprintln!("wrote {}", path.display());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{} of {} inputs could not be predicted (each named above)",
            failed.len(),
            failed.len() + done.len()
        )))
    }
}
