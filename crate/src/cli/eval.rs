//! `digits eval`: trained weights on one data set.

use std::path::{Path, PathBuf};

use clap::Args;
use digits::data::{self, Framing};
use digits::eval::evaluate;
use digits::train::run;
use digits::Result;

#[derive(Args)]
pub struct EvalArgs {
    /// A run folder (or a model.safetensors file).
    #[arg(long)]
    pub weights: PathBuf,
    /// Data set: mnist-test, usps-test, usps-esl-test, usps-esl-all, semeion, mfeat, optdigits, mnist-paper, mnist-paper-dev, idx:PATH, dir:DIR (PNG or JPEG), ...
    #[arg(long, default_value = "mnist-test")]
    pub on: String,
    /// How a non-MNIST domain is brought to 28×28: resize or mnist-frame (also spelt --frame).
    #[arg(long, alias = "frame", default_value = "resize")]
    pub framing: Framing,
    /// How many of the most confident mistakes to list.
    #[arg(long, default_value_t = 10)]
    pub mistakes: usize,
    #[arg(long)]
    pub json: bool,
}

pub fn run(data_dir: &Path, a: &EvalArgs) -> Result<()> {
    let (arch, weights) = run::load_model(&a.weights)?;
    let ds = data::load_domain(&a.on, data_dir, a.framing)?;
    let e = evaluate(arch, &weights, &ds)?;
    if a.json {
        let mut e = e.clone();
        e.mistakes.truncate(a.mistakes);
        println!(
            "{}",
            serde_json::to_string_pretty(&e).expect("evaluation serialises")
        );
    } else {
        print!("{}", e.text(arch, a.mistakes));
    }
    Ok(())
}
