//! Adaptation without labels on small synthetic domains: the target's labels cannot reach it,
//! it is exact across thread counts and interruptions, it helps on a shifted domain, and a
//! folder holding another adaptation is refused.

#[path = "common/command.rs"]
mod command;
use command::fresh_dir;
use digits::adapt::run::{adapt_run, finished_adapt_run, load_adapt_record};
use digits::adapt::{adapt, AdaptConfig, AdaptOptions, AdaptOutcome, RoundRecord};
use digits::data::{Dataset, Unlabeled};
use digits::eval::evaluate;
use digits::models::{Arch, Weights};
use digits::runtime::with_threads;
use digits::train::fingerprint::weight_bits;
use digits::train::run::{load_model, train_run, RunRecord};
use digits::train::{train, Progress, TrainConfig, TrainOptions};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Class-specific 6×6 blocks as in `data::synthetic::blocks`, moved `shift` pixels to the
/// right, on noise in [0, `noise`]: the source domain with `shift` 0, a shifted one otherwise.
fn blocks(n: usize, seed: u64, shift: usize, noise: f32) -> Dataset {
    blocks_of(n, seed, shift, noise, 1.0)
}

/// [`blocks`] drawn with ink of intensity `ink`.
fn blocks_of(n: usize, seed: u64, shift: usize, noise: f32, ink: f32) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut images = vec![0.0f32; n * 784];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = rng.gen_range(0..10u8);
        let (r0, c0) = (
            3 + (label as usize / 5) * 12,
            1 + (label as usize % 5) * 5 + shift,
        );
        for r in 0..6 {
            for c in 0..6 {
                images[i * 784 + (r0 + r) * 28 + (c0 + c).min(27)] = ink;
            }
        }
        for p in &mut images[i * 784..(i + 1) * 784] {
            *p = (*p + rng.gen_range(0.0..noise)).min(1.0);
        }
        labels.push(label);
    }
    let source = format!("test:blocks(n={n},seed={seed},shift={shift},noise={noise},ink={ink})");
    Dataset::new(format!("blocks-{shift}"), images, labels, 28, 28, source).unwrap()
}

fn source_config() -> TrainConfig {
    TrainConfig::fixed(Arch::Mlp, 2, 32, 11)
}

/// A source model trained on unshifted blocks, with its training and validation sets.
fn source() -> (TrainConfig, Weights, Dataset, Dataset) {
    let cfg = source_config();
    let (tr, val) = (blocks(300, 1, 0, 0.3), blocks(100, 2, 0, 0.3));
    let opts = TrainOptions {
        progress: Progress::Quiet,
        ..Default::default()
    };
    let w = train(&cfg, &tr, &val, opts).unwrap().weights;
    (cfg, w, tr, val)
}

/// A short adaptation: three rounds of one epoch.
fn short() -> AdaptConfig {
    AdaptConfig {
        portions: vec![0.2, 0.35, 0.5],
        epochs_per_round: 1,
        seed: 5,
        ..AdaptConfig::cbst()
    }
}

fn quiet<'a>() -> AdaptOptions<'a> {
    AdaptOptions {
        progress: Progress::Quiet,
        ..Default::default()
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    fresh_dir("adapt", name)
}

fn without_time(h: &[RoundRecord]) -> Vec<RoundRecord> {
    h.iter()
        .map(|r| RoundRecord {
            seconds: 0.0,
            ..r.clone()
        })
        .collect()
}

fn run(
    cfg: &AdaptConfig,
    s: &(TrainConfig, Weights, Dataset, Dataset),
    target: &Unlabeled,
    opts: AdaptOptions,
) -> AdaptOutcome {
    adapt(cfg, &s.0, &s.1, &s.2, &s.3, target, opts).unwrap()
}

#[test]
fn the_targets_labels_cannot_change_the_adapted_weights() {
    let s = source();
    let target = blocks(200, 3, 1, 0.3);
    let a = run(
        &short(),
        &s,
        &Unlabeled::from_dataset(target.clone()),
        quiet(),
    );
    // The same images under shuffled (and under constant) labels.
    let mut shuffled = target.labels.clone();
    shuffled.rotate_left(7);
    shuffled.reverse();
    assert_ne!(shuffled, target.labels);
    for labels in [shuffled, vec![0; target.len()]] {
        let relabelled = Dataset {
            labels,
            ..target.clone()
        };
        let b = run(&short(), &s, &Unlabeled::from_dataset(relabelled), quiet());
        assert_eq!(weight_bits(&a.weights), weight_bits(&b.weights));
        assert_eq!(without_time(&a.history), without_time(&b.history));
    }
    // The adaptation did change the model, and each round kept what its portion says.
    assert_ne!(weight_bits(&a.weights), weight_bits(&s.1));
    assert_eq!(a.history.len(), 3);
    for r in &a.history {
        assert_eq!(r.class_counts.iter().sum::<usize>(), r.kept);
        assert_eq!(r.source_images, r.kept);
        let expected = r.portion * 200.0;
        assert!((r.kept as f64 - expected).abs() <= 10.0, "{r:?}");
    }
}

#[test]
fn the_same_numbers_on_one_thread_or_several() {
    let s = source();
    let target = Unlabeled::from_dataset(blocks(200, 3, 1, 0.3));
    let on = |threads: usize| with_threads(threads, || run(&short(), &s, &target, quiet()));
    let one = on(1);
    let three = on(3);
    assert_eq!(weight_bits(&one.weights), weight_bits(&three.weights));
    assert_eq!(without_time(&one.history), without_time(&three.history));
    // Another seed gives other numbers: the comparison above can fail.
    let other = run(&AdaptConfig { seed: 6, ..short() }, &s, &target, quiet());
    assert_ne!(weight_bits(&one.weights), weight_bits(&other.weights));
}

#[test]
fn an_interrupted_adaptation_resumes_to_the_uninterrupted_result() {
    let s = source();
    let target = Unlabeled::from_dataset(blocks(200, 3, 1, 0.3));
    let whole = run(&short(), &s, &target, quiet());
    let dir = tmp("resume");
    let ckpt = dir.join("adapt-checkpoint.safetensors");
    let checkpointed = |opts: AdaptOptions| {
        let opts = AdaptOptions {
            checkpoint: Some(ckpt.clone()),
            ..opts
        };
        run(&short(), &s, &target, opts)
    };
    let first = checkpointed(AdaptOptions {
        on_round: Some(Box::new(|r: &RoundRecord| r.round < 2)),
        ..quiet()
    });
    assert!(!first.completed);
    assert_eq!(first.history.len(), 2);
    let resumed = checkpointed(AdaptOptions {
        resume: true,
        ..quiet()
    });
    assert!(resumed.completed);
    assert_eq!(weight_bits(&resumed.weights), weight_bits(&whole.weights));
    assert_eq!(without_time(&resumed.history), without_time(&whole.history));
    // Another configuration does not resume from this checkpoint.
    let err = adapt(
        &AdaptConfig { seed: 9, ..short() },
        &s.0,
        &s.1,
        &s.2,
        &s.3,
        &target,
        AdaptOptions {
            checkpoint: Some(ckpt),
            resume: true,
            ..quiet()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("adapt_config") && !err.contains('\n'), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn adaptation_helps_on_a_shifted_domain() {
    let s = source();
    // Fainter blocks (ink 0.6) moved two pixels right on twice the noise: the source model
    // is right on about four images in five. (Moved three pixels, each block lies mostly on
    // the next class's place and self-training only confirms the source's errors.)
    let target = blocks_of(600, 3, 2, 0.6, 0.6);
    let test = blocks_of(400, 4, 2, 0.6, 0.6);
    let before = evaluate(Arch::Mlp, &s.1, &test).unwrap().accuracy;
    let cfg = AdaptConfig {
        seed: 5,
        ..AdaptConfig::cbst()
    };
    let out = run(&cfg, &s, &Unlabeled::from_dataset(target), quiet());
    let after = evaluate(Arch::Mlp, &out.weights, &test).unwrap().accuracy;
    eprintln!("shifted test accuracy: source {before:.3}, adapted {after:.3}");
    assert!(
        before < 0.9,
        "the shift should hurt the source model: {before}"
    );
    assert!(
        after > before + 0.1 && after > 0.95,
        "adaptation should help: {before} -> {after}"
    );
    // The source domain is not forgotten.
    let source_acc = evaluate(Arch::Mlp, &out.weights, &s.3).unwrap().accuracy;
    assert!(source_acc > 0.9, "source validation accuracy {source_acc}");
}

#[test]
fn a_folder_with_another_adaptation_is_refused_and_the_same_one_reused() {
    let source = SourceRun::train("source");
    let SourceRun {
        tr,
        val,
        dir: src_dir,
        record,
        weights: w,
        target,
    } = &source;
    let dir = tmp("finished");
    let cfg = short();
    assert!(finished_adapt_run(&dir, &cfg, record, w, target)
        .unwrap()
        .is_none());
    let (out, rec) = source.adapt(&dir, &cfg, tr).unwrap();
    // Loaded exactly as a trained run is.
    let (arch, loaded) = load_model(&dir).unwrap();
    assert_eq!(arch, Arch::Mlp);
    assert_eq!(weight_bits(&loaded), weight_bits(&out.weights));
    assert_eq!(load_adapt_record(&dir).unwrap(), rec);
    assert_eq!(rec.target_data, target.source_sha256);
    assert!(rec.target_data.ends_with("+unlabeled"));
    // The same adaptation is reused.
    assert_eq!(
        finished_adapt_run(&dir, &cfg, record, w, target).unwrap(),
        Some(rec.clone())
    );
    // Another seed, another target, other source weights: refused, in one line.
    let other_target = Unlabeled::from_dataset(blocks(200, 8, 1, 0.3));
    let mut other_w = w.clone();
    other_w.tensors[0].data[0] += 1.0;
    let other_cfg = AdaptConfig { seed: 6, ..short() };
    for err in [
        finished_adapt_run(&dir, &other_cfg, record, w, target),
        finished_adapt_run(&dir, &cfg, record, w, &other_target),
        finished_adapt_run(&dir, &cfg, record, &other_w, target),
    ] {
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains("different adaptation") && !err.contains('\n'),
            "{err}"
        );
    }
    // Another engine's adaptation is refused too.
    let mut foreign = rec.clone();
    foreign.versions.gemm = Some("OpenBLAS 0.3.21 (Zen kernels)".into());
    digits::adapt::run::save_adapt_record(&dir, &foreign).unwrap();
    let err = finished_adapt_run(&dir, &cfg, record, w, target)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("another engine") && !err.contains('\n'),
        "{err}"
    );
    // A trained run's folder is not an adapted run.
    let err = finished_adapt_run(src_dir, &cfg, record, w, target)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not the record of an adapted run"), "{err}");
    // Source data other than the run's is refused before any work.
    let err = source.adapt(&dir, &cfg, val).unwrap_err().to_string();
    assert!(err.contains("not the training data"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(src_dir).unwrap();
}

/// A trained source run in its own folder, with its data and an unlabeled, shifted target:
/// what the tests of adapted-run folders start from.
struct SourceRun {
    tr: Dataset,
    val: Dataset,
    dir: std::path::PathBuf,
    record: RunRecord,
    weights: Weights,
    target: Unlabeled,
}

impl SourceRun {
    fn train(name: &str) -> SourceRun {
        let (tr, val) = (blocks(300, 1, 0, 0.3), blocks(100, 2, 0, 0.3));
        let dir = tmp(name);
        let (trained, record) = train_run(
            &source_config(),
            &tr,
            &val,
            0.1,
            &dir,
            false,
            Progress::Quiet,
        )
        .unwrap();
        SourceRun {
            tr,
            val,
            dir,
            record,
            weights: trained.weights,
            target: Unlabeled::from_dataset(blocks(200, 3, 1, 0.3)),
        }
    }

    /// Adapt this run to its target into `dir`, quietly and from scratch, claiming
    /// `source_train` as the run's training data.
    fn adapt(
        &self,
        dir: &std::path::Path,
        cfg: &AdaptConfig,
        source_train: &Dataset,
    ) -> digits::Result<(AdaptOutcome, digits::adapt::run::AdaptRecord)> {
        adapt_run(
            dir,
            cfg,
            &self.record,
            &self.weights,
            source_train,
            &self.val,
            &self.target,
            false,
            Progress::Quiet,
        )
    }
}

/// The one-line error of `digits figures DIR`, which reads the adaptation record in DIR.
fn figures_error(dir: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_digits"))
        .args(["figures", dir.to_str().unwrap(), "--out"])
        .arg(dir.join("figures"))
        .output()
        .expect("run digits");
    assert!(
        !out.status.success(),
        "figures of a corrupt record succeeded"
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn an_empty_or_unreadable_adaptation_record_is_one_line_naming_the_file() {
    let source = SourceRun::train("corrupt-source");
    let SourceRun {
        record,
        weights: w,
        target,
        ..
    } = &source;
    let dir = tmp("corrupt");
    let cfg = short();
    let (_, rec) = source.adapt(&dir, &cfg, &source.tr).unwrap();
    let path = dir.join("run.json");
    // A record with no rounds, or fewer than its schedule, is refused by every reader.
    for kept in [0, 2] {
        let mut cut = rec.clone();
        cut.rounds.truncate(kept);
        digits::adapt::run::save_adapt_record(&dir, &cut).unwrap();
        let want = format!("{}: adaptation record has {kept} rounds", path.display());
        for err in [
            load_adapt_record(&dir).unwrap_err().to_string(),
            finished_adapt_run(&dir, &cfg, record, w, target)
                .unwrap_err()
                .to_string(),
            figures_error(&dir),
        ] {
            assert!(
                err.contains(&want) && err.trim_end().lines().count() == 1,
                "{err}"
            );
        }
    }
    std::fs::write(&path, "{\"adaptation\": ").unwrap();
    let err = load_adapt_record(&dir).unwrap_err().to_string();
    let want = format!("{}: not the record of an adapted run", path.display());
    assert!(err.starts_with(&want) && !err.contains('\n'), "{err}");
    let err = figures_error(&dir);
    assert!(err.contains(&path.display().to_string()), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(&source.dir).unwrap();
}
