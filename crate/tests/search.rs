//! The hyperparameter search on small synthetic digit sets: reproducible, resumable after
//! completion or interruption, shardable, and the Hyperband promotions it makes.

use std::path::{Path, PathBuf};

use digits::data::Dataset;
use digits::models::Arch;
use digits::search::{
    self, best, search, space, Algorithm, SearchOutcome, Shard, TrialRecord, TuneConfig,
    TuneOptions,
};
use digits::train::history::EpochRecord;
use digits::train::Progress;

fn synthetic(n: usize, seed: u64) -> Dataset {
    digits::data::synthetic::blocks(n, seed, false)
}

fn data() -> (Dataset, Dataset) {
    (synthetic(160, 1), synthetic(60, 2))
}

/// Hyperband with R = 3, eta = 3: brackets [3 configs at 1 epoch, best 1 at 3], [2 at 3]:
/// 6 trials per iteration; 8 trials reach into the second iteration.
fn config() -> TuneConfig {
    TuneConfig {
        trials: 8,
        max_epochs: 3,
        batch_size: 32,
        seed: 11,
        ..TuneConfig::new(Arch::Mlp, Algorithm::Hyperband)
    }
}

fn quiet<'a>() -> TuneOptions<'a> {
    TuneOptions {
        progress: Progress::Quiet,
        ..Default::default()
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("digits-tune-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The table without what legitimately differs between runs: time and the shard.
fn numbers(trials: &[TrialRecord]) -> Vec<TrialRecord> {
    trials
        .iter()
        .map(|r| TrialRecord {
            seconds: 0.0,
            shard: Shard::ALL,
            ..r.clone()
        })
        .collect()
}

fn run(cfg: &TuneConfig, dir: &Path, opts: TuneOptions) -> SearchOutcome {
    let (tr, val) = data();
    search(cfg, &tr, &val, dir, opts).unwrap()
}

fn checkpoints_left(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("checkpoints"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The best epoch (lowest validation loss) of configuration `config` trained from scratch for
/// `epochs`.
fn scratch_best(cfg: &TuneConfig, config: usize, epochs: usize) -> EpochRecord {
    let (tr, val) = data();
    let opts = digits::train::TrainOptions {
        progress: Progress::Quiet,
        ..Default::default()
    };
    let out = digits::train::train(&cfg.train_config(config, epochs), &tr, &val, opts).unwrap();
    out.history
        .into_iter()
        .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
        .unwrap()
}

#[test]
fn a_search_is_reproducible_follows_hyperband_and_continuing_it_does_no_work() {
    let cfg = config();
    let dir = tmp("repro");
    let a = run(&cfg, &dir, quiet());
    assert!(a.completed && a.all_done());
    assert_eq!((a.ran, a.skipped), (8, 0));
    let ids: Vec<usize> = a.trials.iter().map(|r| r.trial).collect();
    assert_eq!(ids, (0..8).collect::<Vec<_>>());

    check_bracket_structure(&a.trials);
    check_trials_are_their_candidates(&cfg, &a.trials);
    check_scores_are_from_scratch(&cfg, &a.trials);

    // Finished brackets leave no checkpoint; the cut-short one keeps its rung's two.
    assert_eq!(checkpoints_left(&dir), 2);

    check_continuing_trains_nothing(&cfg, &dir, &a);
    let (dir2, dir3) = check_the_seed_decides_the_numbers(&cfg, &a);
    check_the_table_loads_as_a_frame(&dir);
    check_other_settings_refused_and_longer_extends(&cfg, &dir, &a);
    for d in [dir, dir2, dir3] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// The bracket structure: trials 0-2 one epoch each, trial 3 the best of them to 3 epochs,
/// trials 4-5 two new configurations at 3 epochs, 6-7 the next iteration's first rung.
fn check_bracket_structure(t: &[TrialRecord]) {
    let shape: Vec<(usize, usize, usize)> =
        t.iter().map(|r| (r.bracket, r.rung, r.epochs)).collect();
    assert_eq!(
        shape,
        vec![
            (0, 0, 1),
            (0, 0, 1),
            (0, 0, 1),
            (0, 1, 3),
            (1, 0, 3),
            (1, 0, 3),
            (2, 0, 1),
            (2, 0, 1)
        ]
    );
    let winner = t[..3]
        .iter()
        .min_by(|a, b| a.val_loss.partial_cmp(&b.val_loss).unwrap())
        .unwrap();
    assert_eq!(t[3].config, winner.trial, "the best of rung 0 is promoted");
    assert_eq!(
        (t[3].arch, t[3].lr, t[3].seed),
        (winner.arch, winner.lr, winner.seed)
    );
}

/// Every trial trained the candidate its configuration number draws from the search space,
/// with that configuration's seed, on the whole training set; the best is the lowest loss.
fn check_trials_are_their_candidates(cfg: &TuneConfig, t: &[TrialRecord]) {
    for r in t {
        let c = space::candidate(Arch::Mlp, cfg.seed, r.config);
        assert!(space::in_space(Arch::Mlp, &c));
        assert_eq!((r.arch, r.dropout, r.lr), (c.arch, c.dropout, c.lr));
        assert_eq!(r.seed, search::training_seed(cfg.seed, r.config));
        assert_eq!((r.train_images, r.subset), (160, None));
    }
    assert_eq!(
        best(t).unwrap().val_loss,
        t.iter().filter_map(|r| r.val_loss).reduce(f64::min)
    );
}

/// Every trial's score is its best epoch's, trained from scratch with its configuration;
/// the promoted one continued its checkpoint, which must come to the same numbers.
fn check_scores_are_from_scratch(cfg: &TuneConfig, t: &[TrialRecord]) {
    for r in t {
        let best_epoch = scratch_best(cfg, r.config, r.epochs);
        assert_eq!(
            (r.val_loss, r.val_accuracy, r.best_epoch),
            (
                Some(best_epoch.val_loss),
                Some(best_epoch.val_accuracy),
                best_epoch.epoch
            ),
            "trial {}",
            r.trial
        );
    }
}

/// Continuing a finished search trains nothing and leaves the table as it was, to the byte.
fn check_continuing_trains_nothing(cfg: &TuneConfig, dir: &Path, a: &SearchOutcome) {
    let table = std::fs::read(dir.join("trials.csv")).unwrap();
    let again = run(cfg, dir, quiet());
    assert_eq!((again.ran, again.skipped), (0, 8));
    assert_eq!(again.trials, a.trials);
    assert_eq!(std::fs::read(dir.join("trials.csv")).unwrap(), table);
}

/// The same seed in another folder gives the same numbers; another seed other candidates.
/// Returns the two folders searched, for the caller to remove.
fn check_the_seed_decides_the_numbers(cfg: &TuneConfig, a: &SearchOutcome) -> (PathBuf, PathBuf) {
    let dir2 = tmp("repro2");
    let b = run(cfg, &dir2, quiet());
    assert_eq!(numbers(&b.trials), numbers(&a.trials));
    let dir3 = tmp("repro3");
    let c = run(
        &TuneConfig {
            seed: 12,
            trials: 3,
            ..cfg.clone()
        },
        &dir3,
        quiet(),
    );
    assert_ne!(
        c.trials.iter().map(|r| r.arch).collect::<Vec<_>>(),
        a.trials[..3].iter().map(|r| r.arch).collect::<Vec<_>>()
    );
    (dir2, dir3)
}

/// The table comes back as a DataFrame with a column per hyperparameter.
fn check_the_table_loads_as_a_frame(dir: &Path) {
    let df = search::load_frame(dir).unwrap();
    assert_eq!(df.height(), 8);
    for col in [
        "trial",
        "bracket",
        "rung",
        "units_1",
        "units_2",
        "dropout",
        "lr",
        "epochs",
        "val_loss",
        "val_accuracy",
        "seconds",
        "shard",
        "train_images",
    ] {
        assert!(df.column(col).is_ok(), "{col} missing");
    }
}

/// Other settings in the same folder are refused; a longer search extends it.
fn check_other_settings_refused_and_longer_extends(
    cfg: &TuneConfig,
    dir: &Path,
    a: &SearchOutcome,
) {
    let (tr, val) = data();
    let err = search(
        &TuneConfig {
            eta: 2,
            ..cfg.clone()
        },
        &tr,
        &val,
        dir,
        quiet(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("other settings") && !err.contains('\n'),
        "{err}"
    );
    let longer = run(
        &TuneConfig {
            trials: 10,
            ..cfg.clone()
        },
        dir,
        quiet(),
    );
    assert_eq!((longer.ran, longer.skipped), (2, 8));
    assert_eq!(longer.trials[..8], a.trials[..]);
}

#[test]
fn an_interrupted_search_resumes_to_the_uninterrupted_table() {
    let cfg = config();
    let whole_dir = tmp("whole");
    let whole = run(&cfg, &whole_dir, quiet());

    // Stop in the middle of trial 3 (the promoted configuration, epoch 2 of 3).
    let dir = tmp("interrupted");
    let stopped = run(
        &cfg,
        &dir,
        TuneOptions {
            on_epoch: Some(Box::new(|trial, r| !(trial == 3 && r.epoch == 2))),
            ..quiet()
        },
    );
    assert!(!stopped.completed);
    assert_eq!(stopped.ran, 3);
    let promoted = whole.trials[3].config;
    let ckpt = dir.join("checkpoints").join(format!("config-{promoted}"));
    assert_eq!(
        digits::train::run::load_history(&ckpt).unwrap().len(),
        2,
        "checkpoint at epoch 2"
    );
    // Stop again after trial 5 has finished.
    let stopped = run(
        &cfg,
        &dir,
        TuneOptions {
            on_trial: Some(Box::new(|r| r.trial != 5)),
            ..quiet()
        },
    );
    assert!(!stopped.completed);
    assert_eq!((stopped.ran, stopped.skipped), (3, 3));
    let resumed = run(&cfg, &dir, quiet());
    assert!(resumed.completed);
    assert_eq!((resumed.ran, resumed.skipped), (2, 6));
    assert_eq!(numbers(&resumed.trials), numbers(&whole.trials));
    std::fs::remove_dir_all(whole_dir).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn two_shards_merged_equal_a_single_run() {
    let cfg = TuneConfig {
        trials: 10,
        ..config()
    };
    let single_dir = tmp("single");
    let single = run(&cfg, &single_dir, quiet());
    let dir = tmp("shards");
    let shard = |i| TuneOptions {
        shard: Shard { index: i, count: 2 },
        ..quiet()
    };
    let first = run(&cfg, &dir, shard(1));
    assert!(first.completed && !first.all_done());
    // Brackets 0 (trials 0-3), 1 (4-5) and 2 (6-9); shard 1 of 2 runs bracket 1 alone.
    assert_eq!(
        first
            .trials
            .iter()
            .map(|r| (r.trial, r.bracket))
            .collect::<Vec<_>>(),
        vec![(4, 1), (5, 1)]
    );
    let second = run(&cfg, &dir, shard(0));
    assert!(second.all_done());
    assert!(dir.join("trials-shard-0-of-2.csv").exists());
    assert!(dir.join("trials-shard-1-of-2.csv").exists());
    assert!(!dir.join("trials.csv").exists());
    assert_eq!(numbers(&second.trials), numbers(&single.trials));
    assert_eq!(first.ran + second.ran, 10);
    // Running the whole search over the shards' folder finds everything done.
    let whole = run(&cfg, &dir, quiet());
    assert_eq!((whole.ran, whole.skipped), (0, 10));
    std::fs::remove_dir_all(single_dir).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn random_search_trains_every_trial_to_the_full_budget_and_shards_by_trial() {
    let cfg = TuneConfig {
        algorithm: Algorithm::Random,
        trials: 3,
        max_epochs: 2,
        subset: Some(100),
        ..config()
    };
    let dir = tmp("random");
    let out = run(
        &cfg,
        &dir,
        TuneOptions {
            shard: Shard { index: 1, count: 2 },
            ..quiet()
        },
    );
    assert_eq!(
        out.trials.iter().map(|r| r.trial).collect::<Vec<_>>(),
        vec![1]
    );
    let out = run(&cfg, &dir, quiet());
    assert!(out.all_done());
    for (i, r) in out.trials.iter().enumerate() {
        assert_eq!(
            (r.trial, r.bracket, r.rung, r.config, r.epochs),
            (i, i, 0, i, 2)
        );
        assert_eq!((r.train_images, r.subset), (100, Some(100)));
    }
    assert_eq!(checkpoints_left(&dir), 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn selection_sees_only_training_and_validation_sets_and_bad_settings_are_refused() {
    // Structurally: the search takes a training set and a validation set, and nothing else
    // that holds images.
    let _: fn(
        &TuneConfig,
        &Dataset,
        &Dataset,
        &Path,
        TuneOptions,
    ) -> digits::Result<SearchOutcome> = search;
    let (tr, val) = data();
    let dir = tmp("bad");
    for (cfg, needle) in [
        (
            TuneConfig {
                family: Arch::MlpOf { h1: 32, h2: 32 },
                ..config()
            },
            "`mlp` or `cnn`",
        ),
        (
            TuneConfig {
                trials: 0,
                ..config()
            },
            "--trials",
        ),
        (TuneConfig { eta: 1, ..config() }, "--eta"),
        (
            TuneConfig {
                subset: Some(0),
                ..config()
            },
            "--subset",
        ),
    ] {
        let err = search(&cfg, &tr, &val, &dir, quiet())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle) && !err.contains('\n'), "{err}");
    }
    assert!(!dir.exists(), "nothing written for refused settings");
}

#[test]
fn cnn_search_builds_its_candidates() {
    let cfg = TuneConfig {
        family: Arch::Cnn,
        algorithm: Algorithm::Random,
        trials: 2,
        max_epochs: 1,
        subset: Some(40),
        ..config()
    };
    let dir = tmp("cnn");
    let out = run(&cfg, &dir, quiet());
    assert_eq!(out.trials.len(), 2);
    assert!(out
        .trials
        .iter()
        .all(|r| matches!(r.arch, Arch::CnnOf { .. }) && r.val_loss.is_some()));
    let df = out.frame();
    for col in ["filters_1", "conv_2", "filters_2", "dense_units"] {
        assert!(df.column(col).is_ok(), "{col} missing");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
