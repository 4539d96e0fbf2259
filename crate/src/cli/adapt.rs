//! `digits adapt`: fine-tune a trained run to another domain from that domain's images alone
//! (class-balanced self-training; see the library's `adapt` module).

use std::path::{Path, PathBuf};

use clap::Args;
use digits::adapt::run::{
    adapt_run, adapt_run_name, finished_adapt_run, save_adapt_record, AdaptRecord,
};
use digits::adapt::AdaptConfig;
use digits::data::{Dataset, Framing, Unlabeled};
use digits::eval::evaluate;
use digits::models::Weights;
use digits::train::run::{self, EvalSummary, RunRecord};
use digits::train::Progress;
use digits::{Error, Result};

#[derive(Args)]
pub struct AdaptArgs {
    /// The trained run to adapt (a folder made by `digits train` or `digits study`).
    pub run: PathBuf,
    /// The domain whose images (never its labels) the model adapts to.
    #[arg(long, default_value = "usps-esl-train")]
    pub target: String,
    /// How the target is brought to 28×28: mnist-frame or resize.
    #[arg(long, default_value = "mnist-frame")]
    pub framing: Framing,
    /// Seed of the adaptation's shuffles, dropout and source samples (default: the run's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Folder of the adapted run (default: beside RUN, `<run>-adapt-<target>-<framing>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the record as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Test sets and framings: adapting to them would fit the very images it is scored on.
const TEST_SETS: &[&str] = &[
    "mnist-test",
    "mnist-paper",
    "mnist-paper-dev",
    "usps-test",
    "usps-esl-test",
    "usps-esl-all",
];

/// What an adapted run reports on: MNIST test, and both USPS test renderings in both framings.
const REPORT: &[(&str, Framing)] = &[
    ("mnist-test", Framing::Resize),
    ("usps-test", Framing::Resize),
    ("usps-test", Framing::MnistFrame),
    ("usps-esl-test", Framing::Resize),
    ("usps-esl-test", Framing::MnistFrame),
];

pub fn run(data_dir: &Path, a: &AdaptArgs) -> Result<()> {
    if TEST_SETS.contains(&a.target.as_str()) {
        return Err(Error::invalid(format!(
            "`{}` holds test images, which adaptation must not see; adapt to a training set such as usps-esl-train",
            a.target
        )));
    }
    let source = run::load_record(&a.run)?;
    let (_, source_weights) = run::load_model(&a.run)?;
    let cfg = AdaptConfig {
        seed: a.seed.unwrap_or(source.config.seed),
        ..AdaptConfig::cbst()
    };
    let dir = a.out.clone().unwrap_or_else(|| default_dir(a, &source));
    let target = run::try_domain(&a.target, data_dir, a.framing)?.ok_or_else(|| {
        Error::invalid(format!(
            "`{}`: data not found in {}; run `digits data fetch`",
            a.target,
            data_dir.display()
        ))
    })?;
    // The labels stop here: the adaptation sees the images only.
    let target = Unlabeled::from_dataset(target);
    let (train_set, val_set) =
        run::mnist_train_val(data_dir, source.val_split, source.config.seed)?;
    let (weights, mut record) = match finished_adapt_run(
        &dir,
        &cfg,
        &source,
        &source_weights,
        &target,
    )? {
        Some(record) => {
            eprintln!("{}: already adapted, reused", dir.display());
            (run::load_model(&dir)?.1, record)
        }
        None => {
            eprintln!(
                    "adapting {} to the {} images of {} ({} rounds of class-balanced self-training) into {}",
                    a.run.display(),
                    target.len(),
                    target.name,
                    cfg.portions.len(),
                    dir.display()
                );
            let (outcome, record) = adapt_run(
                &dir,
                &cfg,
                &source,
                &source_weights,
                &train_set,
                &val_set,
                &target,
                true,
                Progress::Auto,
            )?;
            (outcome.weights, record)
        }
    };
    record.results = report_sets(data_dir, true)?
        .iter()
        .map(|ds| {
            Ok(EvalSummary::from(&evaluate(
                source.config.arch,
                &weights,
                ds,
            )?))
        })
        .collect::<Result<_>>()?;
    save_adapt_record(&dir, &record)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&record).expect("record serialises")
        );
        return Ok(());
    }
    print_summary(data_dir, &dir, &source, &source_weights, &record)
}

/// The adapted run's folder unless `--out` names one: beside the source run, named after it,
/// the target and the framing.
fn default_dir(a: &AdaptArgs, source: &RunRecord) -> PathBuf {
    let run_name = a
        .run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| run::run_name(&source.config));
    a.run
        .parent()
        .unwrap_or(Path::new("."))
        .join(adapt_run_name(&run_name, &a.target, a.framing.name()))
}

/// The [`REPORT`] sets found in `data_dir`; a missing one is skipped, and said so when `say`.
fn report_sets(data_dir: &Path, say: bool) -> Result<Vec<Dataset>> {
    let mut sets = Vec::new();
    for &(spec, framing) in REPORT {
        match run::try_domain(spec, data_dir, framing)? {
            Some(ds) => sets.push(ds),
            None if say => eprintln!("{spec}: data not found, skipped (run `digits data fetch`)"),
            None => {}
        }
    }
    Ok(sets)
}

/// The adapted run's rounds and its accuracy on each report set beside the source run's.
fn print_summary(
    data_dir: &Path,
    dir: &Path,
    source: &RunRecord,
    source_weights: &Weights,
    record: &AdaptRecord,
) -> Result<()> {
    let arch = source.config.arch;
    let last = record.rounds.last().ok_or_else(|| {
        Error::format(
            run::record_path(dir),
            "adaptation record has no rounds; delete the folder and run `digits adapt` again",
        )
    })?;
    println!(
        "{arch} adapted to {}: {} rounds, {:.1} s; MNIST validation accuracy {:.2}% (source run: {})",
        record.target,
        record.rounds.len(),
        record.seconds,
        100.0 * last.mnist_val_accuracy,
        source
            .results
            .iter()
            .find(|r| r.dataset.starts_with("mnist-test"))
            .map(|r| format!("MNIST test {:.2}%", 100.0 * r.accuracy))
            .unwrap_or_else(|| "no MNIST test result".into())
    );
    let before: Vec<(String, f64)> = report_sets(data_dir, false)?
        .iter()
        .map(|ds| {
            Ok((
                ds.name.clone(),
                evaluate(arch, source_weights, ds)?.accuracy,
            ))
        })
        .collect::<Result<_>>()?;
    for r in &record.results {
        let was = before
            .iter()
            .find(|(n, _)| *n == r.dataset)
            .map(|(_, acc)| format!(" (source {:.2}%)", 100.0 * acc))
            .unwrap_or_default();
        println!(
            "  {:<28} {:>6} images  accuracy {:>6.2}%{was}",
            r.dataset,
            r.n,
            100.0 * r.accuracy
        );
    }
    println!("weights and record in {}", dir.display());
    Ok(())
}
