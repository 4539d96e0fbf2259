//! `digits tune`: hyperparameter search on the MNIST validation split.

use std::path::{Path, PathBuf};

use clap::Args;
use digits::models::Arch;
use digits::search::{self, Algorithm, Shard, TuneConfig, TuneOptions};
use digits::train::run;
use digits::{Error, Result};

#[derive(Args)]
pub struct TuneArgs {
    /// The kind of model searched: mlp or cnn.
    pub model: Arch,
    #[arg(long, default_value = "hyperband")]
    pub algorithm: Algorithm,
    /// Trials to run; Hyperband counts each continuation of a configuration as a trial.
    #[arg(long, default_value_t = 30)]
    pub trials: usize,
    /// The largest epoch budget of a trial (Hyperband's R; every random-search trial's).
    #[arg(long, default_value_t = 9)]
    pub max_epochs: usize,
    /// Hyperband's halving factor.
    #[arg(long, default_value_t = 3)]
    pub eta: usize,
    /// Seeds the configurations, their training and the validation split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Search on this many of the training images (drawn with the seed).
    #[arg(long)]
    pub subset: Option<usize>,
    /// Run part i of n: Hyperband brackets (random-search trials) numbered i modulo n. Shards
    /// write their own table in the same folder.
    #[arg(long, default_value = "0/1")]
    pub shard: Shard,
    /// The search folder is runs/tune-<name> (default: <model>-<algorithm>).
    #[arg(long)]
    pub name: Option<String>,
    /// Fraction of MNIST's training set held out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val_split: f64,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(data_dir: &Path, a: &TuneArgs) -> Result<()> {
    let cfg = TuneConfig {
        trials: a.trials,
        max_epochs: a.max_epochs,
        eta: a.eta,
        seed: a.seed,
        subset: a.subset,
        ..TuneConfig::new(a.model, a.algorithm)
    };
    cfg.validate()?;
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", a.model, a.algorithm));
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::invalid(format!(
            "--name `{name}` must be a plain folder name (no `/`, not starting with `.`)"
        )));
    }
    let dir = PathBuf::from(format!("runs/tune-{name}"));
    let (train_set, val_set) = run::mnist_train_val(data_dir, a.val_split, a.seed)?;
    let out = search::search(
        &cfg,
        &train_set,
        &val_set,
        &dir,
        TuneOptions {
            shard: a.shard,
            ..Default::default()
        },
    )?;
    let best = out.best();
    let command = best.map(|b| search::train_command(&cfg, b));
    if a.json {
        let json = serde_json::json!({
            "dir": dir,
            "outcome": &out,
            "all_done": out.all_done(),
            "best": best,
            "train_command": command,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("outcome serialises")
        );
        return Ok(());
    }
    let shown = search::table::summary_frame(&out.trials);
    println!("{shown}");
    let in_table = out.trials.iter().filter(|r| r.trial < cfg.trials).count();
    println!(
        "{} search of {}: {} trials trained now, {} found done; {in_table} of {} trials in the table ({:.0} s)",
        cfg.algorithm, cfg.family, out.ran, out.skipped, cfg.trials, out.seconds
    );
    if !out.all_done() {
        println!(
            "shard {} is done; run the other shards (or the whole search) with the same settings to finish",
            out.shard
        );
    }
    if let (Some(b), Some(command)) = (best, command) {
        println!(
            "best so far (lowest validation loss): trial {}: {} dropout {} lr {}, {} epochs (best {}), val loss {:.4}, val accuracy {:.2}%",
            b.trial,
            b.arch,
            b.dropout,
            b.lr,
            b.epochs_run,
            b.best_epoch,
            b.val_loss.unwrap_or(f64::NAN),
            100.0 * b.val_accuracy.unwrap_or(f64::NAN)
        );
        println!("train it: {command}");
    }
    let figures = digits::plot::search::save_search_figures(&dir, &out.trials)?;
    println!(
        "trial table (all columns) and {} figures (score against trial and each hyperparameter) in {}",
        figures.len(),
        dir.display()
    );
    Ok(())
}
