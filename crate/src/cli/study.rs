//! `digits study`: the whole domain-shift study.

use std::path::{Path, PathBuf};

use clap::Args;
use digits::{Error, Result};

#[derive(Args)]
pub struct StudyArgs {
    /// A version of a few minutes (2 seeds, 2 epochs on 2,000 images, 300 images per test set)
    /// that writes under runs/quick/ only; also set by DIGITS_QUICK=1.
    #[arg(long, env = "DIGITS_QUICK", value_parser = clap::builder::FalseyValueParser::new())]
    pub quick: bool,
    /// Seeds per model, numbered from 0 (default: 5, quick: 2).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Only these models (default: all of the study's, in this order: mlp, cnn, mlp-keras,
    /// cnn-keras, mlp-1586, mlp-1586-keras, mlp-usps, cnn-usps, and the adapted
    /// mlp-keras-adapt-framed, cnn-keras-adapt-framed, mlp-keras-adapt-resized,
    /// cnn-keras-adapt-resized).
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Folder of the run folders (default: runs, quick: runs/quick/runs).
    #[arg(long)]
    pub runs: Option<PathBuf>,
    /// Folder for the CSV tables (default: results, quick: runs/quick/results).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Folder for the figures (default: img, quick: runs/quick/img).
    #[arg(long)]
    pub img: Option<PathBuf>,
    /// Train nothing: use the runs already finished (each table says how many seeds it
    /// summarises).
    #[arg(long)]
    pub only_finished: bool,
    /// Train and predict nothing: rewrite results/summary.md and the study's numbers in
    /// README.md and docs/ from the CSV files in the results folder.
    #[arg(long, conflicts_with_all = ["quick", "only_finished"])]
    pub tables_only: bool,
    /// Train only part i of n of the runs (the runs dealt to n parts by expected cost, as
    /// `--plan --shards n` prints; an adapted run goes with its source run) into the runs folder, and predict with them; no tables or figures. Once every part is
    /// done, `digits study` (or `--only-finished`) over the same runs folder gathers them.
    /// In a Slurm job array or a Kubernetes Indexed Job, `i` is the task's index.
    #[arg(long, conflicts_with_all = ["only_finished", "tables_only"])]
    pub shard: Option<digits::search::Shard>,
    /// Print which runs each of `--shards n` parts trains and its share of the expected
    /// cost, then stop (nothing is trained or read).
    #[arg(long, requires = "shards", conflicts_with_all = ["shard", "tables_only"])]
    pub plan: bool,
    /// With `--plan`: how many parts.
    #[arg(long, requires = "plan")]
    pub shards: Option<usize>,
}

pub fn run(data_dir: &Path, a: &StudyArgs) -> Result<()> {
    use digits::study::{run_study, StudyConfig, VARIANTS};
    let mut cfg = if a.quick {
        StudyConfig::quick()
    } else {
        StudyConfig::full()
    };
    if let Some(n) = a.seeds {
        if n == 0 {
            return Err(Error::invalid("--seeds must be at least 1"));
        }
        cfg.seeds = (0..n).collect();
    }
    if !a.models.is_empty() {
        cfg.variants = a
            .models
            .iter()
            .map(|m| {
                VARIANTS
                    .iter()
                    .find(|v| v.name == m)
                    .copied()
                    .ok_or_else(|| {
                        let names: Vec<&str> = VARIANTS.iter().map(|v| v.name).collect();
                        Error::invalid(format!(
                            "unknown model `{m}` for --models; choose from {}",
                            names.join(", ")
                        ))
                    })
            })
            .collect::<Result<_>>()?;
    }
    if let Some(d) = &a.runs {
        cfg.runs_dir = d.clone();
    }
    if let Some(d) = &a.results {
        cfg.results_dir = d.clone();
    }
    if let Some(d) = &a.img {
        cfg.img_dir = d.clone();
    }
    cfg.only_finished = a.only_finished;
    if let (true, Some(n)) = (a.plan, a.shards) {
        if n == 0 {
            return Err(Error::invalid("--shards must be at least 1"));
        }
        print!("{}", digits::study::shards::describe(&cfg, n));
        return Ok(());
    }
    if a.tables_only {
        let root = digits::study::documents_root(&cfg.results_dir);
        let changed = digits::study::markdown::write_all(&cfg.results_dir, &root)?;
        println!(
            "{} file(s) rewritten from {}{}",
            changed.len(),
            cfg.results_dir.display(),
            changed
                .iter()
                .map(|p| format!("\n  {}", p.display()))
                .collect::<String>()
        );
        return Ok(());
    }
    if let Some(shard) = a.shard {
        cfg.shard = shard;
        let runs = digits::study::run_shard(&cfg, data_dir)?;
        println!(
            "shard {shard}: {} run(s) trained or reused and their predictions cached in {}; once every shard is done, `digits study --runs {}` gathers them",
            runs.len(),
            cfg.runs_dir.display(),
            cfg.runs_dir.display()
        );
        return Ok(());
    }
    let study = run_study(&cfg, data_dir)?;
    digits::plot::study::write_all(&study.data, &study.tables, data_dir, &cfg.img_dir)?;
    let tables = study.tables;
    let names: Vec<&str> = cfg.variants.iter().map(|v| v.name).collect();
    print!("{}", tables.headline(&names));
    println!(
        "accuracy in %, mean ± 95% CI over {} seeds (fewer where runs were left out); tables in {}, figures in {}",
        cfg.seeds.len(),
        cfg.results_dir.display(),
        cfg.img_dir.display()
    );
    Ok(())
}
