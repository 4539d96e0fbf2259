//! `digits`: the command-line face of the study. Every subcommand is a thin call into the
//! library; errors print as one line and exit non-zero.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use digits::augment::AugmentSpec;
use digits::data::{self, Framing};
use digits::eval::{evaluate, Evaluation};
use digits::models::{Arch, ConvAlgo};
use digits::run::{self, EvalSummary};
use digits::train::{Progress, TrainConfig};
use digits::tune::{self, Algorithm, Shard, TuneConfig, TuneOptions};
use digits::{Error, Result};

#[derive(Parser)]
#[command(
    name = "digits",
    version,
    about = "Why CNNs beat MLPs on handwritten digits, and why the gap widens on USPS"
)]
struct Cli {
    /// Folder holding the data sets (filled by `digits data fetch`).
    #[arg(long, global = true, default_value = "data", env = "DIGITS_DATA_DIR")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch and verify the data sets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Print a model's layers, output shapes and parameter counts (like Keras's summary).
    Summary { model: Arch },
    /// Train a published model on MNIST, then evaluate it on MNIST test and USPS.
    Train(TrainArgs),
    /// Evaluate trained weights on a data set.
    Eval(EvalArgs),
    /// Search sizes, dropout and learning rate (Hyperband or random search), scored on the
    /// MNIST validation split only.
    Tune(TuneArgs),
    /// Measure training and inference speed against this machine's GEMM peak.
    Bench(BenchArgs),
    /// A markdown table of runs' accuracy on every test domain in both framings.
    Report {
        /// Run folders, e.g. runs/mlp-seed0 runs/cnn-seed0.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
    },
    /// The whole domain-shift study: train (or reuse) every model with several seeds, test
    /// them on every domain in both framings and under controlled changes, and write the
    /// tables (results/) and figures (img/).
    Study(StudyArgs),
    /// Draw a run's figures (curves, confusion matrices, mistakes, first layer) into a folder.
    Figures {
        /// Run folders, e.g. runs/mlp-seed0.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[arg(long, default_value = "img")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct StudyArgs {
    /// A one-minute version (2 seeds, 2 epochs on 2,000 images, 300 images per test set)
    /// that writes under runs/quick/ only; also set by DIGITS_QUICK=1.
    #[arg(long, env = "DIGITS_QUICK", value_parser = clap::builder::FalseyValueParser::new())]
    quick: bool,
    /// Seeds per model, numbered from 0 (default: 5, quick: 2).
    #[arg(long)]
    seeds: Option<u64>,
    /// Only these models (default: mlp, cnn, mlp-keras, cnn-keras).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Folder of the run folders (default: runs, quick: runs/quick/runs).
    #[arg(long)]
    runs: Option<PathBuf>,
    /// Folder for the CSV tables (default: results, quick: runs/quick/results).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Folder for the figures (default: img, quick: runs/quick/img).
    #[arg(long)]
    img: Option<PathBuf>,
    /// Train nothing: use the runs already finished (each table says how many seeds it
    /// summarises).
    #[arg(long)]
    only_finished: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// Models to measure (default: both).
    models: Vec<Arch>,
    /// Fewest training steps timed per model (more when they take under a second).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Convolution algorithms to measure the CNN with (default: both).
    #[arg(long, value_delimiter = ',')]
    conv: Vec<ConvAlgo>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Copy the data sets from a local mirror (DIGITS_DATA_MIRROR) or download them, verifying each.
    Fetch {
        /// Local folder laid out like the verified copies (overrides DIGITS_DATA_MIRROR).
        #[arg(long)]
        mirror: Option<PathBuf>,
    },
    /// Re-verify every data file present.
    Check,
}

#[derive(Args)]
struct TrainArgs {
    /// The published model to train: mlp or cnn.
    model: Arch,
    /// Train another size of the model's kind, as `digits tune` names them: mlp-H1-H2,
    /// cnn-C1-C2-DENSE or cnn-C1-none-DENSE.
    #[arg(long)]
    arch: Option<Arch>,
    /// Most epochs to train (early stopping may end sooner).
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Images per optimisation step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Dropout rate (default: 0.3 for the MLP, 0.2 for the CNN).
    #[arg(long)]
    dropout: Option<f32>,
    /// Seed of every random choice: initial weights, validation split, shuffles, dropout,
    /// augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fraction of MNIST's training set held out for validation.
    #[arg(long, default_value_t = 0.1)]
    val_split: f64,
    /// Epochs without a better validation loss before stopping (0: never stop early).
    #[arg(long, default_value_t = 5)]
    patience: usize,
    /// Run folder (default: runs/<model>[-<augmentation>][-winograd]-seed<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Augment every training batch: a preset (none, keras, elastic, strong) or a spec such as
    /// `rotate=10,shift=0.1,zoom=0.1,elastic=34:4,thickness=1`.
    #[arg(long)]
    augment: Option<AugmentSpec>,
    /// How the convolutions are computed: im2col (the reference, used by every published
    /// run) or winograd (F(2×2,3×3): faster, equal up to rounding). Recorded with the run.
    #[arg(long, default_value = "im2col")]
    conv: ConvAlgo,
    /// Continue an interrupted run in the run folder.
    #[arg(long)]
    resume: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct TuneArgs {
    /// The kind of model searched: mlp or cnn.
    model: Arch,
    #[arg(long, default_value = "hyperband")]
    algorithm: Algorithm,
    /// Trials to run; Hyperband counts each continuation of a configuration as a trial.
    #[arg(long, default_value_t = 30)]
    trials: usize,
    /// The largest epoch budget of a trial (Hyperband's R; every random-search trial's).
    #[arg(long, default_value_t = 9)]
    max_epochs: usize,
    /// Hyperband's halving factor.
    #[arg(long, default_value_t = 3)]
    eta: usize,
    /// Seeds the configurations, their training and the validation split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Search on this many of the training images (drawn with the seed).
    #[arg(long)]
    subset: Option<usize>,
    /// Run part i of n: Hyperband brackets (random-search trials) numbered i modulo n. Shards
    /// write their own table in the same folder.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// The search folder is runs/tune-<name> (default: <model>-<algorithm>).
    #[arg(long)]
    name: Option<String>,
    /// Fraction of MNIST's training set held out for validation.
    #[arg(long, default_value_t = 0.1)]
    val_split: f64,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EvalArgs {
    /// A run folder (or a model.safetensors file).
    #[arg(long)]
    weights: PathBuf,
    /// Data set: mnist-test, usps-test, usps-esl-test, usps-esl-all, semeion, mfeat, optdigits, idx:PATH, png:DIR, ...
    #[arg(long, default_value = "mnist-test")]
    on: String,
    /// How a non-MNIST domain is brought to 28×28: resize or mnist-frame.
    #[arg(long, default_value = "resize")]
    frame: Framing,
    /// How many of the most confident mistakes to list.
    #[arg(long, default_value_t = 10)]
    mistakes: usize,
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Show whole trial tables; set here, before any thread can read the environment.
    digits::runtime::show_whole_tables();
    if let Err(e) = digits::models::gemm::check_backend() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    match dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Data(DataCommand::Fetch { mirror }) => {
            let mirror = mirror.clone().or_else(data::mirror_from_env);
            let report = data::fetch(&cli.data, mirror.as_deref(), true)?;
            println!("{report}");
            Ok(())
        }
        Command::Data(DataCommand::Check) => {
            let statuses = data::check(&cli.data)?;
            let mut bad = 0;
            for s in &statuses {
                println!("{:<40} {:?}", s.rel_path, s.state);
                bad += (!s.is_ok()) as usize;
            }
            if bad > 0 {
                return Err(digits::Error::invalid(format!(
                    "{bad} data file(s) missing or corrupt; run `digits data fetch`"
                )));
            }
            Ok(())
        }
        Command::Summary { model } => {
            print!("{}", model.summary());
            Ok(())
        }
        Command::Train(args) => train(&cli.data, args),
        Command::Eval(args) => eval(&cli.data, args),
        Command::Tune(args) => tune(&cli.data, args),
        Command::Report { runs } => {
            let rows = digits::report::accuracy_table(runs, &cli.data)?;
            print!("{}", digits::report::markdown(runs, &rows));
            Ok(())
        }
        Command::Study(args) => study(&cli.data, args),
        Command::Figures { runs, out } => {
            for dir in runs {
                for path in digits::figures::export_run_figures(dir, &cli.data, out)? {
                    println!("{}", path.display());
                }
            }
            Ok(())
        }
        Command::Bench(args) => {
            let mut cfg = digits::bench::BenchConfig {
                steps: args.steps.max(1),
                ..Default::default()
            };
            if !args.models.is_empty() {
                cfg.archs = args.models.clone();
            }
            if !args.conv.is_empty() {
                cfg.convs = args.conv.clone();
            }
            let report = digits::bench::run(&cfg);
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serialises")
                );
            } else {
                print!("{report}");
            }
            Ok(())
        }
    }
}

fn study(data_dir: &Path, a: &StudyArgs) -> Result<()> {
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
    let tables = run_study(&cfg, data_dir)?.tables;
    println!(
        "{:<10} {:>16} {:>16} {:>16} {:>16} {:>16}",
        "model", "MNIST test", "USPS resize", "USPS framed", "all USPS resize", "all USPS framed"
    );
    let cell = |v: &str, d: &str, f: &str| {
        tables.accuracy_of(v, d, f).map_or("–".to_string(), |r| {
            if r.ci.n > 1 {
                format!("{:.2}±{:.2}", 100.0 * r.ci.mean, 100.0 * r.ci.half_width())
            } else {
                format!("{:.2}", 100.0 * r.ci.mean)
            }
        })
    };
    for v in &cfg.variants {
        println!(
            "{:<10} {:>16} {:>16} {:>16} {:>16} {:>16}",
            v.name,
            cell(v.name, "mnist-test", "native"),
            cell(v.name, "usps-test", "resize"),
            cell(v.name, "usps-test", "mnist-frame"),
            cell(v.name, "usps-esl-all", "resize"),
            cell(v.name, "usps-esl-all", "mnist-frame"),
        );
    }
    println!(
        "accuracy in %, mean ± 95% CI over {} seeds (fewer where runs were left out); tables in {}, figures in {}",
        cfg.seeds.len(),
        cfg.results_dir.display(),
        cfg.img_dir.display()
    );
    Ok(())
}

/// The domains every training run reports on: MNIST test, and USPS test in both framings.
const REPORT: &[(&str, Framing)] = &[
    ("mnist-test", Framing::Resize),
    ("usps-test", Framing::Resize),
    ("usps-test", Framing::MnistFrame),
];

fn train(data_dir: &Path, a: &TrainArgs) -> Result<()> {
    let arch = match a.arch {
        Some(arch) if arch.family() != a.model.family() => {
            return Err(Error::invalid(format!(
                "--arch {arch} is not of the model kind `{}`; pass `digits train {} --arch {arch}`",
                a.model.family(),
                arch.family()
            )))
        }
        Some(arch) => arch,
        None => a.model,
    };
    let cfg = TrainConfig {
        arch,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        dropout: a.dropout.unwrap_or(arch.default_dropout()),
        seed: a.seed,
        patience: (a.patience > 0).then_some(a.patience),
        // `none` is no augmentation, and should resume a run that had none.
        augment: a.augment.filter(|s| !s.is_identity()),
        conv: a.conv,
    };
    cfg.validate()?;
    let dir = a.out.clone().unwrap_or_else(|| default_run_dir(&cfg));
    let (train_set, val_set) = run::mnist_train_val(data_dir, a.val_split, a.seed)?;
    eprintln!(
        "training {} on {} MNIST images ({} held out for validation) into {}",
        cfg.arch,
        train_set.len(),
        val_set.len(),
        dir.display()
    );
    let (outcome, mut record) = run::train_run(
        &cfg,
        &train_set,
        &val_set,
        a.val_split,
        &dir,
        a.resume,
        Progress::Auto,
    )?;
    for &(spec, framing) in REPORT {
        match run::try_domain(spec, data_dir, framing)? {
            Some(ds) => record.results.push(EvalSummary::from(&evaluate(
                cfg.arch,
                &outcome.weights,
                &ds,
            )?)),
            None => eprintln!("{spec}: data not found, skipped (run `digits data fetch`)"),
        }
    }
    run::save_record(&dir, &record)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&record).expect("record serialises")
        );
        return Ok(());
    }
    let secs = record.train_seconds / record.epochs_run as f64;
    println!(
        "{}: {} epochs (best {}), {:.1} s/epoch, {:.0} images/s",
        cfg.arch,
        record.epochs_run,
        record.best_epoch,
        secs,
        train_set.len() as f64 / secs
    );
    for r in &record.results {
        println!(
            "  {:<28} {:>6} images  accuracy {:>6.2}%",
            r.dataset,
            r.n,
            100.0 * r.accuracy
        );
    }
    println!("weights, history and record in {}", dir.display());
    Ok(())
}

/// `runs/<model>-seed<seed>`, with the augmentation in the name when there is one (a preset's
/// name, or the spec itself made file-name safe), so augmented and plain runs never share a
/// folder.
fn default_run_dir(cfg: &TrainConfig) -> PathBuf {
    let aug = match &cfg.augment {
        None => String::new(),
        Some(spec) => {
            let text = spec.to_string();
            let name = digits::augment::PRESETS
                .iter()
                .find(|(_, p)| *p == text)
                .map(|(n, _)| n.to_string())
                .unwrap_or_else(|| text.replace(['=', ':'], "").replace(',', "_"));
            format!("-{name}")
        }
    };
    // Another convolution algorithm is another run too (the study's folders are im2col's).
    let conv = if cfg.conv.is_default() {
        String::new()
    } else {
        format!("-{}", cfg.conv)
    };
    PathBuf::from(format!("runs/{}{aug}{conv}-seed{}", cfg.arch, cfg.seed))
}

fn tune(data_dir: &Path, a: &TuneArgs) -> Result<()> {
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
    let out = tune::search(
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
    let command = best.map(|b| tune::train_command(&cfg, b));
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
    let shown = tune::table::summary_frame(&out.trials);
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
    let figures = tune::figures::save_search_figures(&dir, &out.trials)?;
    println!(
        "trial table (all columns) and {} figures (score against trial and each hyperparameter) in {}",
        figures.len(),
        dir.display()
    );
    Ok(())
}

fn eval(data_dir: &Path, a: &EvalArgs) -> Result<()> {
    let (arch, weights) = run::load_model(&a.weights)?;
    let ds = data::load_domain(&a.on, data_dir, a.frame)?;
    let e = evaluate(arch, &weights, &ds)?;
    if a.json {
        let mut e = e.clone();
        e.mistakes.truncate(a.mistakes);
        println!(
            "{}",
            serde_json::to_string_pretty(&e).expect("evaluation serialises")
        );
    } else {
        print_evaluation(arch, &e, a.mistakes);
    }
    Ok(())
}

fn print_evaluation(arch: Arch, e: &Evaluation, mistakes: usize) {
    println!(
        "{arch} on {} ({} images): accuracy {:.2}%, mean confidence {:.3}, loss {:.4}",
        e.dataset,
        e.n,
        100.0 * e.accuracy,
        e.mean_confidence,
        e.loss
    );
    println!(
        "per class: {}",
        (0..10)
            .map(|c| format!("{c}:{:.1}%", 100.0 * e.per_class_accuracy[c]))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("confusion (rows: true digit, columns: predicted)");
    println!(
        "     {}",
        (0..10).map(|c| format!("{c:>5}")).collect::<String>()
    );
    for (t, row) in e.confusion.iter().enumerate() {
        println!(
            "  {t}: {}",
            row.iter().map(|v| format!("{v:>5}")).collect::<String>()
        );
    }
    println!("{} mistakes; most confident:", e.mistakes.len());
    for m in e.mistakes.iter().take(mistakes) {
        println!(
            "  #{:<6} true {} predicted {} with p={:.3}",
            m.index, m.label, m.predicted, m.confidence
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders_keep_augmentation_and_algorithm_apart() {
        // The plain and keras folders are the study's own (`study::Variant::run_dir`).
        let plain = TrainConfig::new(Arch::Cnn);
        assert_eq!(default_run_dir(&plain), PathBuf::from("runs/cnn-seed0"));
        let keras = TrainConfig {
            augment: Some("keras".parse().unwrap()),
            seed: 3,
            ..plain.clone()
        };
        assert_eq!(
            default_run_dir(&keras),
            PathBuf::from("runs/cnn-keras-seed3")
        );
        let winograd = TrainConfig {
            conv: ConvAlgo::Winograd,
            ..keras
        };
        assert_eq!(
            default_run_dir(&winograd),
            PathBuf::from("runs/cnn-keras-winograd-seed3")
        );
    }
}
