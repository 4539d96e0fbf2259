//! `digits study`: the whole domain-shift study, headless.
//!
//! This folder owns the study: the runs and their predictions (here and `predictions`), the
//! statistics (`stats`, `analysis`), the tables (`tables`), the controlled changes
//! (`robustness`), where the ink falls (`mechanism`), `digits report` over the same predictions
//! (`report`), published results beside ours with their protocols (`anchors`), the previous engine's numbers
//! beside this one's (`engine_change`), and the markdown made from the tables: `results/summary.md` and the marked
//! numbers of the README and `docs/` (`markdown`).
//!
//! 1. **Runs.** Every model variant ([`VARIANTS`]: the published MLP and CNN, each without and
//!    with the original's augmentation, the MLP of the CNN's size, both trained on USPS, and
//!    the augmented pair adapted to USPS's unlabeled images) is trained with several seeds
//!    into `runs/<variant>-seed<seed>/`. A finished run is reused when its record says it was
//!    trained with the same configuration, seed, validation split and training data (by
//!    hash); an interrupted one resumes from its checkpoint.
//! 2. **Predictions.** Each run answers every evaluation set: every test domain in both
//!    framings, and MNIST test digits shifted, rotated, scaled and thickened
//!    ([`robustness`]). Answers are cached in the run folder ([`predictions`]).
//! 3. **Analysis** ([`analysis`]): accuracy with 95% intervals over seeds, paired MLP-vs-CNN
//!    tests on the same images, per-class accuracy, calibration, how much of each model's error
//!    the framing explains, and the robustness curves; written as CSV tables into `results/`
//!    with a README of their columns ([`tables`]).
//! 4. **Figures** into `img/`: drawn by [`plot::study`](crate::plot::study) from the result.
//!
//! Notebooks read the study through [`view::StudyView`]: computed from the runs when they are
//! all here, else the committed tables ([`committed`]) and figures; they never write `results/`.

pub mod accuracy;
pub mod analysis;
pub mod anchors;
pub mod committed;
pub mod engine_change;
pub mod markdown;
pub mod mechanism;
pub mod predictions;
pub mod report;
pub mod robustness;
pub mod shards;
pub mod stats;
pub mod tables;
pub mod view;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::adapt::run::{adapt_run, adapt_run_name, finished_adapt_run, AdaptRecord};
use crate::adapt::AdaptConfig;
use crate::augment::AugmentSpec;
use crate::data::{load_mnist, Dataset, Framing, Split, Unlabeled};
use crate::lock::RunLock;
use crate::models::{Arch, Weights};
use crate::search::Shard;
use crate::train::run::{self, load_model, RunRecord};
use crate::train::{Progress, TrainConfig};
use crate::{Error, Result};
use report::{framings_of, TEST_DOMAINS};

pub use analysis::Tables;
use predictions::{cached_predict, load_cache, save_cache, Predictions};
use robustness::{Perturbation, FAMILIES};
pub use view::StudyView;

/// Where a variant's training digits come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// MNIST's training digits (the study's question: trained on MNIST, tested elsewhere).
    Mnist,
    /// USPS's own training digits ([`USPS_TRAIN`], the ESL rendering: the only public file of
    /// them), framed into 28×28 the way the study frames USPS: the in-domain reference.
    UspsTrain,
    /// The study's run of variant `from` (MNIST-trained), then adapted without labels to
    /// [`USPS_TRAIN`]'s images in `framing` by class-balanced self-training ([`crate::adapt`],
    /// the run's seed, [`StudyConfig::adaptation`]'s settings). Its folder is the one
    /// `digits adapt` makes beside the source run, so either reuses the other's.
    Adapted {
        from: &'static str,
        framing: Framing,
    },
}

/// The USPS training digits a [`Source::UspsTrain`] variant learns from.
pub const USPS_TRAIN: &str = "usps-esl-train";

impl Source {
    /// The training data's name, for the tables (`mnist`, `usps-esl-train`).
    pub fn name(self) -> &'static str {
        match self {
            Source::Mnist => "mnist",
            Source::UspsTrain => USPS_TRAIN,
            Source::Adapted {
                framing: Framing::MnistFrame,
                ..
            } => "mnist+usps-esl-train-images(mnist-frame)",
            Source::Adapted {
                framing: Framing::Resize,
                ..
            } => "mnist+usps-esl-train-images(resize)",
        }
    }
}

/// A model as the study trains it: an architecture, an augmentation preset and its training
/// digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// `mlp`, `cnn-keras`, `mlp-usps`, ...: the name in every table.
    pub name: &'static str,
    pub arch: Arch,
    /// An [`AugmentSpec`] preset name, or `None` for plain training.
    pub augment: Option<&'static str>,
    pub source: Source,
}

impl Variant {
    /// `mlp` or `cnn`.
    pub fn model(&self) -> &'static str {
        match self.arch.family() {
            Arch::Mlp => "mlp",
            _ => "cnn",
        }
    }

    /// `none` or the preset's name.
    pub fn augmentation(&self) -> &'static str {
        self.augment.unwrap_or("none")
    }

    /// The variant an adapted variant starts from (`None` for trained ones).
    pub fn adapted_from(&self) -> Option<Variant> {
        match self.source {
            Source::Adapted { from, .. } => variant_named(from),
            _ => None,
        }
    }

    /// The training configuration of the run (for an adapted variant, its source run's).
    pub fn config(&self, seed: u64, epochs: usize) -> TrainConfig {
        TrainConfig {
            seed,
            epochs,
            augment: self
                .augment
                .map(|p| AugmentSpec::preset(p).expect("study presets exist")),
            ..TrainConfig::new(self.arch)
        }
    }

    /// The run's folder: named as `digits train` names it ([`run::run_name`]) for MNIST-trained
    /// variants, so runs trained by hand are reused; with the training data's name before the
    /// seed otherwise (`mlp-usps-esl-train-seed0`).
    pub fn run_dir(&self, runs_dir: &Path, seed: u64) -> PathBuf {
        let name = run::run_name(&self.config(seed, 1));
        runs_dir.join(match self.source {
            Source::Mnist => name,
            Source::Adapted { from, framing } => {
                let source = variant_named(from).expect("adapted variants name a study variant");
                let source_dir = source.run_dir(Path::new(""), seed);
                adapt_run_name(&source_dir.to_string_lossy(), USPS_TRAIN, framing.name())
            }
            source => {
                let stem = name
                    .strip_suffix(&format!("-seed{seed}"))
                    .expect("run names end in their seed");
                format!("{stem}-{}-seed{seed}", source.name())
            }
        })
    }
}

const fn variant(
    name: &'static str,
    arch: Arch,
    augment: Option<&'static str>,
    source: Source,
) -> Variant {
    Variant {
        name,
        arch,
        augment,
        source,
    }
}

/// An adapted variant: `from`'s architecture and augmentation, adapted in `framing`.
const fn adapted(name: &'static str, from: Variant, framing: Framing) -> Variant {
    let source = Source::Adapted {
        from: from.name,
        framing,
    };
    variant(name, from.arch, from.augment, source)
}

/// The variants the adapted ones start from.
const MLP_KERAS: Variant = variant("mlp-keras", Arch::Mlp, Some("keras"), Source::Mnist);
const CNN_KERAS: Variant = variant("cnn-keras", Arch::Cnn, Some("keras"), Source::Mnist);

/// The study's models: the published MLP and CNN trained on MNIST, plain and with the
/// original's augmentation; the one-hidden-layer MLP with the CNN's parameter budget, plain
/// and augmented (is it capacity?); both published models trained on USPS itself (the
/// in-domain reference); and the augmented pair adapted to USPS's training images without
/// their labels, framed and resized (how much of the gap unlabeled target images close).
/// MNIST-trained run folders match `digits train`'s defaults, so runs trained by hand are reused.
pub const VARIANTS: &[Variant] = &[
    variant("mlp", Arch::Mlp, None, Source::Mnist),
    variant("cnn", Arch::Cnn, None, Source::Mnist),
    MLP_KERAS,
    CNN_KERAS,
    variant("mlp-1586", Arch::MlpWide, None, Source::Mnist),
    variant(
        "mlp-1586-keras",
        Arch::MlpWide,
        Some("keras"),
        Source::Mnist,
    ),
    variant("mlp-usps", Arch::Mlp, None, Source::UspsTrain),
    variant("cnn-usps", Arch::Cnn, None, Source::UspsTrain),
    adapted("mlp-keras-adapt-framed", MLP_KERAS, Framing::MnistFrame),
    adapted("cnn-keras-adapt-framed", CNN_KERAS, Framing::MnistFrame),
    adapted("mlp-keras-adapt-resized", MLP_KERAS, Framing::Resize),
    adapted("cnn-keras-adapt-resized", CNN_KERAS, Framing::Resize),
];

/// The MLP-against-CNN comparisons the paired tables make, as (MLP variant, CNN variant): each
/// MLP beside the CNN trained on the same digits with the same augmentation, so the difference
/// is the architecture's.
pub const PAIRS: &[(&str, &str)] = &[
    ("mlp", "cnn"),
    ("mlp-keras", "cnn-keras"),
    ("mlp-1586", "cnn"),
    ("mlp-1586-keras", "cnn-keras"),
    ("mlp-usps", "cnn-usps"),
    ("mlp-keras-adapt-framed", "cnn-keras-adapt-framed"),
    ("mlp-keras-adapt-resized", "cnn-keras-adapt-resized"),
];

/// A study variant by name.
pub fn variant_named(name: &str) -> Option<Variant> {
    VARIANTS.iter().copied().find(|v| v.name == name)
}

/// What the study runs and where it writes.
#[derive(Clone, Debug)]
pub struct StudyConfig {
    pub variants: Vec<Variant>,
    pub seeds: Vec<u64>,
    /// Most epochs per run (early stopping ends most runs sooner).
    pub epochs: usize,
    /// Fraction of MNIST train held out for validation (split seeded by each run's seed).
    pub val_split: f64,
    /// Train on this many images of the training split (`None`: all of them).
    pub train_images: Option<usize>,
    /// Validate on this many images of the validation split (`None`: all of them).
    pub val_images: Option<usize>,
    /// Evaluate on at most this many images of each test set (`None`: all of them).
    pub test_images: Option<usize>,
    /// MNIST test images in each robustness set.
    pub robustness_images: usize,
    pub runs_dir: PathBuf,
    pub results_dir: PathBuf,
    pub img_dir: PathBuf,
    /// Bars on a terminal, lines elsewhere, or nothing.
    pub progress: Progress,
    /// Use only the runs already finished and train nothing (each table says how many seeds
    /// it summarises); for looking at a study while its runs are still training.
    pub only_finished: bool,
    /// The part of the runs this process trains ([`run_shard`]); the whole study is `0/1`.
    pub shard: Shard,
    /// How adapted variants adapt (the seed is each run's own): CBST's published schedule in
    /// the full study, two short rounds in the quick one.
    pub adaptation: AdaptConfig,
    /// Adapt to at most this many of the target's images (`None`: all of them).
    pub target_images: Option<usize>,
}

impl StudyConfig {
    /// The full study: every variant × 5 seeds, all data, up to 30 epochs each.
    pub fn full() -> Self {
        StudyConfig {
            variants: VARIANTS.to_vec(),
            seeds: (0..5).collect(),
            epochs: 30,
            val_split: 0.1,
            train_images: None,
            val_images: None,
            test_images: None,
            robustness_images: 2000,
            runs_dir: "runs".into(),
            results_dir: "results".into(),
            img_dir: "img".into(),
            progress: Progress::Auto,
            only_finished: false,
            shard: Shard::ALL,
            adaptation: AdaptConfig::cbst(),
            target_images: None,
        }
    }

    /// The same study in about a minute, to check that everything runs (`--quick`, CI and
    /// the notebooks' quick mode): 2 seeds, 2 epochs on 2,000 images, 300 images per test set,
    /// adaptation in 2 rounds of 1 epoch to 500 target images.
    /// Writes under `runs/quick/` so the full study's files are never touched.
    pub fn quick() -> Self {
        StudyConfig {
            seeds: vec![0, 1],
            epochs: 2,
            train_images: Some(2000),
            val_images: Some(500),
            test_images: Some(300),
            robustness_images: 200,
            adaptation: AdaptConfig {
                portions: vec![0.2, 0.5],
                epochs_per_round: 1,
                ..AdaptConfig::cbst()
            },
            target_images: Some(500),
            ..StudyConfig::full()
        }
        .under(Path::new("runs/quick"))
    }

    /// The same study with its runs, tables and figures in `runs/`, `results/` and `img/` under
    /// `root`.
    pub fn under(self, root: &Path) -> Self {
        StudyConfig {
            runs_dir: root.join("runs"),
            results_dir: root.join("results"),
            img_dir: root.join("img"),
            ..self
        }
    }

    fn validate(&self) -> Result<()> {
        if self.variants.is_empty() || self.seeds.is_empty() {
            return Err(Error::invalid(
                "the study needs at least one model and one seed",
            ));
        }
        if self.shard.count == 0 || self.shard.index >= self.shard.count {
            return Err(Error::invalid(format!(
                "shard {} does not exist: use i/n with 0 <= i < n",
                self.shard
            )));
        }
        if self.robustness_images == 0 {
            return Err(Error::invalid("--robustness-images must be at least 1"));
        }
        self.adaptation.validate()
    }
}

/// A finished run the study uses.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub variant: Variant,
    pub seed: u64,
    pub dir: PathBuf,
    /// The training run's record (for an adapted run, its source run's).
    pub record: RunRecord,
    /// What adapted the source run's weights into this run's, for adapted variants.
    pub adaptation: Option<AdaptRecord>,
}

/// What an evaluation set is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SetKind {
    /// A test domain in a framing (MNIST test is its own frame and is listed once, as `resize`).
    Domain { framing: Framing },
    /// MNIST test images under a controlled change.
    Perturbed(Perturbation),
}

/// An evaluation set and what it is.
#[derive(Clone, Debug)]
pub struct EvalSet {
    /// The domain's name (`usps-test`), without framing or change.
    pub domain: String,
    pub kind: SetKind,
    pub data: Dataset,
}

impl EvalSet {
    pub fn framing(&self) -> Option<Framing> {
        match self.kind {
            SetKind::Domain { framing } => Some(framing),
            SetKind::Perturbed(_) => None,
        }
    }
}

/// Everything the analysis reads: the runs, the sets and every run's answers on every set.
pub struct StudyData {
    pub runs: Vec<RunInfo>,
    pub sets: Vec<EvalSet>,
    /// `predictions[run][set]`.
    pub predictions: Vec<Vec<Predictions>>,
    /// Domains named by the study whose files were absent (left out, with a message).
    pub missing: Vec<String>,
    /// Where MNIST's training digits put their ink.
    pub ink_map: mechanism::InkMap,
    /// For each MLP run: its first-layer weights on never-inked pixels still at their initial
    /// values, out of all weights on those pixels (`None` for CNN runs).
    pub unchanged_weights: Vec<Option<(usize, usize)>>,
}

impl StudyData {
    /// The first run of `variant` (seed 0 in the study), for the figures of one run.
    pub fn first_run(&self, variant: &str) -> Result<&RunInfo> {
        self.runs
            .iter()
            .find(|r| r.variant.name == variant)
            .ok_or_else(|| Error::invalid(format!("the study has no run of `{variant}`")))
    }

    /// The test set of `domain` in `framing` (`resize` or `mnist-frame`).
    pub fn domain_set(&self, domain: &str, framing: &str) -> Result<&Dataset> {
        self.sets
            .iter()
            .find(|x| {
                x.domain == domain
                    && matches!(x.kind, SetKind::Domain { .. })
                    && analysis::framing_name(&x.domain, &x.kind) == framing
            })
            .map(|x| &x.data)
            .ok_or_else(|| Error::invalid(format!("the study has no set {domain} [{framing}]")))
    }
}

/// A finished study: what it measured and the tables made from it. Plain data, safe to keep
/// between notebook cells.
pub struct Study {
    pub data: StudyData,
    pub tables: Tables,
}

/// A summary only: the data behind a study are millions of numbers.
impl std::fmt::Debug for Study {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Study")
            .field("runs", &self.data.runs.len())
            .field("sets", &self.data.sets.len())
            .field("accuracy_rows", &self.tables.accuracy.len())
            .finish()
    }
}

/// Run the study: train or reuse every run, predict every set, then write the tables into
/// `cfg.results_dir`, with `summary.md` and the study's numbers in the `README.md` and
/// `docs/*.md` beside that folder, when there are any ([`markdown::write_all`]). Its figures
/// are drawn from the result by [`plot::study::write_all`](crate::plot::study::write_all).
pub fn run_study(cfg: &StudyConfig, data_dir: &Path) -> Result<Study> {
    let data = collect(cfg, data_dir)?;
    let tables = analysis::analyse(&data);
    tables::write_all(&tables, &cfg.results_dir)?;
    markdown::write_all(&cfg.results_dir, &documents_root(&cfg.results_dir))?;
    Ok(Study { data, tables })
}

/// The folder whose `README.md` and `docs/` quote a results folder: the one that holds it.
pub fn documents_root(results_dir: &Path) -> PathBuf {
    match results_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Steps 1 and 2: the runs and their predictions.
pub fn collect(cfg: &StudyConfig, data_dir: &Path) -> Result<StudyData> {
    cfg.validate()?;
    if cfg.shard != Shard::ALL {
        return Err(Error::invalid(format!(
            "shard {} holds only part of the runs: train it with `run_shard` (`digits study --shard`), then gather every shard's runs with a whole study",
            cfg.shard
        )));
    }
    let mnist_train = load_mnist(data_dir, Split::Train)?;
    let runs = ensure_runs(cfg, &mnist_train, data_dir)?;
    if runs.is_empty() {
        return Err(Error::invalid(format!(
            "no finished run in {}; run `digits study` without --only-finished to train them",
            cfg.runs_dir.display()
        )));
    }
    let ink_map = mechanism::InkMap::of(&mnist_train);
    drop(mnist_train);
    let never = ink_map.never();
    let unchanged_weights = runs
        .iter()
        .map(|r| {
            if r.variant.model() != "mlp" {
                return Ok(None);
            }
            let (arch, trained) = load_model(&r.dir)?;
            let initial = arch.init(r.seed);
            Ok(Some(mechanism::unchanged_first_layer(
                &initial, &trained, &never,
            )))
        })
        .collect::<Result<Vec<_>>>()?;
    let (sets, missing) = eval_sets(cfg, data_dir)?;
    let predictions = predict_all(cfg, &runs, &sets)?;
    Ok(StudyData {
        runs,
        sets,
        predictions,
        missing,
        ink_map,
        unchanged_weights,
    })
}

/// Every (variant, seed) run, trained or reused (with `only_finished`, the finished ones).
/// USPS's training digits are read from `data_dir` only when a variant learns from them or
/// adapts to them. An adapted run needs its source run: it is the source's shard's (see
/// [`owns_run`]) and trains the source first if the list does not.
pub fn ensure_runs(
    cfg: &StudyConfig,
    mnist_train: &Dataset,
    data_dir: &Path,
) -> Result<Vec<RunInfo>> {
    let lines = cfg.progress != Progress::Quiet;
    let mut usps_train: Option<Dataset> = None;
    let mut targets = Targets {
        cfg,
        data_dir,
        loaded: Vec::new(),
    };
    let total = cfg.variants.len() * cfg.seeds.len();
    let mut runs = Vec::with_capacity(total);
    for (k, (variant, &seed)) in cfg
        .variants
        .iter()
        .flat_map(|v| cfg.seeds.iter().map(move |s| (v, s)))
        .enumerate()
    {
        if !owns_run(cfg, k) {
            continue;
        }
        let step = Step { k, total, lines };
        let Source::Adapted { framing, .. } = variant.source else {
            let dir = variant.run_dir(&cfg.runs_dir, seed);
            let digits = match variant.source {
                Source::UspsTrain => {
                    if usps_train.is_none() {
                        usps_train = Some(load_usps_train(data_dir, Framing::MnistFrame)?);
                    }
                    usps_train.as_ref().expect("just loaded")
                }
                _ => mnist_train,
            };
            if let Some(record) = trained_run(cfg, variant, seed, digits, step)? {
                runs.push(RunInfo {
                    variant: *variant,
                    seed,
                    dir,
                    record,
                    adaptation: None,
                });
            }
            continue;
        };
        if let Some(info) =
            adapted_run(cfg, variant, seed, framing, mnist_train, &mut targets, step)?
        {
            runs.push(info);
        }
    }
    Ok(runs)
}

/// The adapted run of `variant` (adapted in `framing`) with `seed`: its source run trained
/// first if need be, then adapted, or both reused. `None` when `--only-finished` leaves it out.
fn adapted_run(
    cfg: &StudyConfig,
    variant: &Variant,
    seed: u64,
    framing: Framing,
    mnist_train: &Dataset,
    targets: &mut Targets,
    step: Step,
) -> Result<Option<RunInfo>> {
    let dir = variant.run_dir(&cfg.runs_dir, seed);
    let from = variant
        .adapted_from()
        .expect("adapted variants name a study variant");
    // The source run: reused quietly when the list trained it already.
    let source_dir = from.run_dir(&cfg.runs_dir, seed);
    let (train_set, val_set) = training_data(cfg, mnist_train, seed);
    let source = match run::finished_run(
        &source_dir,
        &from.config(seed, cfg.epochs),
        cfg.val_split,
        &train_set,
    )? {
        Some(record) => Some(record),
        None => trained_run(cfg, &from, seed, mnist_train, step)?,
    };
    let Some(source) = source else {
        step.say(
            &dir,
            format_args!(
                "its source run {} is not finished, left out (--only-finished)",
                source_dir.display()
            ),
        );
        return Ok(None);
    };
    let target = targets.get(framing)?;
    let (_, source_weights) = load_model(&source_dir)?;
    let _lock = lock_unless_only_finished(cfg, &dir, step)?;
    let acfg = AdaptConfig {
        seed,
        ..cfg.adaptation.clone()
    };
    let adaptation = match finished_adapt_run(&dir, &acfg, &source, &source_weights, target)? {
        Some(record) => {
            step.say(&dir, format_args!("reused (adapted)"));
            record
        }
        None if cfg.only_finished => {
            step.say(
                &dir,
                format_args!("not finished, left out (--only-finished)"),
            );
            return Ok(None);
        }
        None => {
            step.say(
                &dir,
                format_args!(
                    "adapting {} to {} images of {} ({} rounds){}",
                    from.name,
                    target.len(),
                    target.name,
                    acfg.portions.len(),
                    resuming(&crate::adapt::run::adapt_checkpoint_path(&dir))
                ),
            );
            adapt_run(
                &dir,
                &acfg,
                &source,
                &source_weights,
                &train_set,
                &val_set,
                target,
                true,
                cfg.progress,
            )?
            .1
        }
    };
    Ok(Some(RunInfo {
        variant: *variant,
        seed,
        dir,
        record: source,
        adaptation: Some(adaptation),
    }))
}

/// The adaptation targets' images, each framing read once for the whole list.
struct Targets<'a> {
    cfg: &'a StudyConfig,
    data_dir: &'a Path,
    loaded: Vec<(Framing, Unlabeled)>,
}

impl Targets<'_> {
    fn get(&mut self, framing: Framing) -> Result<&Unlabeled> {
        if !self.loaded.iter().any(|(f, _)| *f == framing) {
            let target = adaptation_target(self.cfg, self.data_dir, framing)?;
            self.loaded.push((framing, target));
        }
        Ok(&self
            .loaded
            .iter()
            .find(|(f, _)| *f == framing)
            .expect("just read")
            .1)
    }
}

/// Where run `k` of the list stands, for its progress line.
#[derive(Clone, Copy)]
struct Step {
    k: usize,
    total: usize,
    lines: bool,
}

impl Step {
    /// `[run k/total] DIR: what`, unless the study is quiet.
    fn say(self, dir: &Path, what: std::fmt::Arguments) {
        if self.lines {
            eprintln!(
                "[run {}/{}] {}: {what}",
                self.k + 1,
                self.total,
                dir.display()
            );
        }
    }
}

/// The run folder `dir` locked for this process ([`RunLock`]), unless the study trains
/// nothing and so writes no run.
fn lock_unless_only_finished(cfg: &StudyConfig, dir: &Path, step: Step) -> Result<Option<RunLock>> {
    if cfg.only_finished {
        return Ok(None);
    }
    RunLock::acquire(dir, &mut |line| step.say(dir, format_args!("{line}"))).map(Some)
}

/// ` (resuming)` when `checkpoint` exists.
fn resuming(checkpoint: &Path) -> &'static str {
    if checkpoint.exists() {
        " (resuming)"
    } else {
        ""
    }
}

/// A trained variant's run, reused when finished, else trained from `digits` (resuming its
/// checkpoint); `None` when it is unfinished and the study trains nothing.
fn trained_run(
    cfg: &StudyConfig,
    variant: &Variant,
    seed: u64,
    digits: &Dataset,
    step: Step,
) -> Result<Option<RunRecord>> {
    let dir = variant.run_dir(&cfg.runs_dir, seed);
    let want = variant.config(seed, cfg.epochs);
    let (train_set, val_set) = training_data(cfg, digits, seed);
    // Held until this run is trained: another process on the same runs folder (a shard
    // started twice, a resubmitted task) waits, then finds the run finished below.
    let _lock = lock_unless_only_finished(cfg, &dir, step)?;
    if let Some(record) = run::finished_run(&dir, &want, cfg.val_split, &train_set)? {
        step.say(
            &dir,
            format_args!("reused (trained {} epochs)", record.epochs_run),
        );
        return Ok(Some(record));
    }
    if cfg.only_finished {
        step.say(
            &dir,
            format_args!("not finished, left out (--only-finished)"),
        );
        return Ok(None);
    }
    step.say(
        &dir,
        format_args!(
            "training {} on {} images{}",
            variant.name,
            train_set.len(),
            resuming(&run::checkpoint_path(&dir))
        ),
    );
    let (_, record) = run::train_run(
        &want,
        &train_set,
        &val_set,
        cfg.val_split,
        &dir,
        true,
        cfg.progress,
    )?;
    Ok(Some(record))
}

/// Whether run `k` of the study's list is this process's shard's ([`shards::plan`], which keeps
/// an adapted run with its source run, so the shard that trains a source run adapts it).
pub fn owns_run(cfg: &StudyConfig, k: usize) -> bool {
    cfg.shard == Shard::ALL || shards::owns(cfg, cfg.shard, k)
}

/// The images an adapted variant adapts to: [`USPS_TRAIN`] in `framing`, without its labels.
fn adaptation_target(cfg: &StudyConfig, data_dir: &Path, framing: Framing) -> Result<Unlabeled> {
    let ds = load_usps_train(data_dir, framing)?;
    let ds = match cfg.target_images {
        Some(n) => ds.subset(n, 0),
        None => ds,
    };
    // The labels stop here: adaptation sees the images only.
    Ok(Unlabeled::from_dataset(ds))
}

/// One shard of a study spread over machines: train (or reuse) this shard's runs into
/// `cfg.runs_dir` and fill their prediction caches, writing no table or figure. Once every
/// shard is done, a plain [`run_study`] over the same `runs_dir` (or one with
/// `only_finished`) trains and predicts nothing and writes what one process would have.
pub fn run_shard(cfg: &StudyConfig, data_dir: &Path) -> Result<Vec<RunInfo>> {
    cfg.validate()?;
    let mnist_train = load_mnist(data_dir, Split::Train)?;
    let runs = ensure_runs(cfg, &mnist_train, data_dir)?;
    drop(mnist_train);
    let (sets, _) = eval_sets(cfg, data_dir)?;
    predict_all(cfg, &runs, &sets)?;
    Ok(runs)
}

/// USPS's training digits in `framing`: `mnist-frame`, as the study frames USPS for testing,
/// for the variants that learn from them; either framing for those that adapt to them.
fn load_usps_train(data_dir: &Path, framing: Framing) -> Result<Dataset> {
    run::try_domain(USPS_TRAIN, data_dir, framing)?.ok_or_else(|| {
        Error::invalid(format!(
            "{USPS_TRAIN} is not in {}: run `digits data fetch` to get USPS",
            data_dir.display()
        ))
    })
}

/// The training and validation sets of a seed, cut down as the configuration says: the same
/// share held out of whichever digits the variant learns from.
fn training_data(cfg: &StudyConfig, digits: &Dataset, seed: u64) -> (Dataset, Dataset) {
    let (mut train, mut val) = digits.split(cfg.val_split, seed);
    if let Some(n) = cfg.train_images {
        train = train.subset(n, seed);
    }
    if let Some(n) = cfg.val_images {
        val = val.subset(n, seed);
    }
    (train, val)
}

/// The test domains in both framings, then the perturbed MNIST test sets.
/// Domains whose files are absent are left out, named in the second list and, unless the
/// study is quiet, in a line each.
pub fn eval_sets(cfg: &StudyConfig, data_dir: &Path) -> Result<(Vec<EvalSet>, Vec<String>)> {
    let mut sets = Vec::new();
    let mut missing = Vec::new();
    let cut = |ds: Dataset| match cfg.test_images {
        Some(n) => ds.subset(n, 0),
        None => ds,
    };
    for &spec in TEST_DOMAINS {
        for &framing in framings_of(spec) {
            match run::try_domain(spec, data_dir, framing)? {
                Some(ds) => sets.push(EvalSet {
                    domain: spec.to_string(),
                    kind: SetKind::Domain { framing },
                    data: cut(ds),
                }),
                None => {
                    if cfg.progress != Progress::Quiet {
                        eprintln!("{spec}: data not found, left out of the study (run `digits data fetch`)");
                    }
                    missing.push(spec.to_string());
                    break;
                }
            }
        }
    }
    let mnist_test = load_mnist(data_dir, Split::Test)?.subset(cfg.robustness_images, 0);
    for (family, levels) in FAMILIES {
        for &level in *levels {
            let p = Perturbation::of(family, level).expect("listed families exist");
            sets.push(EvalSet {
                domain: "mnist-test".into(),
                kind: SetKind::Perturbed(p),
                data: p.apply_to(&mnist_test, 0)?,
            });
        }
    }
    Ok((sets, missing))
}

/// Every run's predictions on every set, from the run's cache where possible.
fn predict_all(
    cfg: &StudyConfig,
    runs: &[RunInfo],
    sets: &[EvalSet],
) -> Result<Vec<Vec<Predictions>>> {
    let images: usize = sets.iter().map(|s| s.data.len()).sum::<usize>() * runs.len();
    let bar = match cfg.progress {
        Progress::Quiet => ProgressBar::hidden(),
        Progress::Auto if !std::io::stderr().is_terminal() => ProgressBar::hidden(),
        Progress::Lines => ProgressBar::hidden(),
        _ => ProgressBar::new(images as u64),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "predicting {bar:30} {pos}/{len} images, {per_sec}, {eta} left  {msg}",
        )
        .expect("valid template"),
    );
    let mut all = Vec::with_capacity(runs.len());
    for (k, r) in runs.iter().enumerate() {
        let (arch, weights): (Arch, Weights) = load_model(&r.dir)?;
        let mut cache = load_cache(&r.dir)?;
        let mut computed = 0usize;
        bar.set_message(r.dir.display().to_string());
        for s in sets {
            if cached_predict(&mut cache, arch, &weights, &s.data)? {
                computed += s.data.len();
            }
            bar.inc(s.data.len() as u64);
        }
        if computed > 0 {
            save_cache(&r.dir, &cache)?;
        }
        if cfg.progress != Progress::Quiet && bar.is_hidden() {
            eprintln!(
                "[predict {}/{}] {}: {} images predicted, {} from the cache",
                k + 1,
                runs.len(),
                r.dir.display(),
                computed,
                sets.iter().map(|s| s.data.len()).sum::<usize>() - computed
            );
        }
        all.push(
            sets.iter()
                .map(|s| cache.remove(&s.data.name).expect("just predicted"))
                .collect(),
        );
    }
    bar.finish_and_clear();
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_study_names_its_runs_as_digits_train_does() {
        for v in VARIANTS {
            for seed in [0, 4] {
                let cfg = v.config(seed, 30);
                let want = match v.source {
                    // MNIST-trained runs are `digits train`'s folders, so hand-trained ones are reused.
                    Source::Mnist => run::run_name(&cfg),
                    // Others name their training digits too, never a `digits train` folder.
                    Source::UspsTrain => format!("{}-usps-esl-train-seed{seed}", cfg.arch),
                    // Adapted ones are `digits adapt`'s default folder beside their source run.
                    Source::Adapted { from, framing } => {
                        format!("{from}-seed{seed}-adapt-usps-esl-train-{framing}")
                    }
                };
                assert_eq!(
                    v.run_dir(Path::new("runs"), seed),
                    Path::new("runs").join(&want)
                );
                if v.source == Source::Mnist {
                    assert_eq!(want, format!("{}-seed{seed}", v.name));
                }
            }
        }
    }

    #[test]
    fn adapted_variants_start_from_an_mnist_variant_of_their_own_architecture() {
        let adapted: Vec<_> = VARIANTS
            .iter()
            .filter(|v| matches!(v.source, Source::Adapted { .. }))
            .collect();
        assert_eq!(adapted.len(), 4);
        for v in adapted {
            let from = v.adapted_from().unwrap();
            assert_eq!(from.source, Source::Mnist, "{}", v.name);
            assert_eq!((from.arch, from.augment), (v.arch, v.augment), "{}", v.name);
            assert_eq!(v.config(3, 30), from.config(3, 30));
        }
        // Every pair's two variants exist.
        for (m, c) in PAIRS {
            assert_eq!(variant_named(m).unwrap().model(), "mlp");
            assert_eq!(variant_named(c).unwrap().model(), "cnn");
        }
    }

    #[test]
    fn an_adapted_run_belongs_to_the_shard_of_its_source_run() {
        let names = ["mlp-keras", "cnn", "cnn-keras", "cnn-keras-adapt-framed"];
        let cfg = StudyConfig {
            variants: names.iter().map(|n| variant_named(n).unwrap()).collect(),
            seeds: vec![0, 1, 2],
            ..StudyConfig::full()
        };
        for count in 1..=5 {
            let owner = |k: usize| {
                (0..count)
                    .filter(|&index| {
                        let shard = Shard { index, count };
                        owns_run(
                            &StudyConfig {
                                shard,
                                ..cfg.clone()
                            },
                            k,
                        )
                    })
                    .collect::<Vec<_>>()
            };
            for k in 0..12 {
                // Every run has exactly one shard,
                assert_eq!(owner(k).len(), 1);
            }
            // and adaptations (runs 9–11) go where their cnn-keras source (runs 6–8) went.
            for seed in 0..3 {
                assert_eq!(owner(9 + seed), owner(6 + seed));
            }
        }
    }
}
