//! `digits train`: train a published model (or another size of one) on MNIST.

use std::path::{Path, PathBuf};

use clap::Args;
use digits::augment::AugmentSpec;
use digits::data::Framing;
use digits::eval::evaluate;
use digits::models::{Arch, ConvAlgo};
use digits::train::run::{self, EvalSummary};
use digits::train::{Progress, TrainConfig};
use digits::{Error, Result};

#[derive(Args)]
pub struct TrainArgs {
    /// The published model to train: mlp or cnn.
    pub model: Arch,
    /// Train another size of the model's kind, as `digits tune` names them: mlp-H1-H2,
    /// cnn-C1-C2-DENSE or cnn-C1-none-DENSE.
    #[arg(long)]
    pub arch: Option<Arch>,
    /// Most epochs to train (early stopping may end sooner).
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Images per optimisation step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    /// Dropout rate (default: 0.3 for the MLP, 0.2 for the CNN).
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Seed of every random choice: initial weights, validation split, shuffles, dropout,
    /// augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of MNIST's training set held out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val_split: f64,
    /// Epochs without a better validation loss before stopping (0: never stop early).
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// Run folder (default: runs/<model>[-<augmentation>][-im2col]-seed<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Augment every training batch: a preset (none, keras, elastic, strong) or a spec such as
    /// `rotate=10,shift=0.1,zoom=0.1,elastic=34:4,thickness=1`.
    #[arg(long)]
    pub augment: Option<AugmentSpec>,
    /// How the convolutions are computed: winograd (F(2×2,3×3), the default) or im2col (the
    /// reference the tests compare against; slower, equal up to rounding). Recorded with the run.
    #[arg(long, default_value = "winograd")]
    pub conv: ConvAlgo,
    /// Continue an interrupted run in the run folder.
    #[arg(long)]
    pub resume: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The domains every training run reports on: MNIST test, and USPS test in both framings.
const REPORT: &[(&str, Framing)] = &[
    ("mnist-test", Framing::Resize),
    ("usps-test", Framing::Resize),
    ("usps-test", Framing::MnistFrame),
];

pub fn run(data_dir: &Path, a: &TrainArgs) -> Result<()> {
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
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| Path::new("runs").join(run::run_name(&cfg)));
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
    print!("{}", record.text(train_set.len()));
    println!("weights, history and record in {}", dir.display());
    Ok(())
}
