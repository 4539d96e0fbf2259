//! Training behaviour on small synthetic digit sets: learning, reproducibility, exact resume,
//! early stopping, and a clear error when the loss diverges.

#[path = "common/command.rs"]
mod command;
use command::fresh_dir;
use digits::data::Dataset;
use digits::eval::evaluate;
use digits::models::{Arch, ConvAlgo};
use digits::train::history::EpochRecord;
use digits::train::{train, Progress, TrainConfig, TrainOptions};

fn synthetic(n: usize, seed: u64, random_labels: bool) -> Dataset {
    digits::data::synthetic::blocks(n, seed, random_labels)
}

fn quiet() -> TrainOptions<'static> {
    TrainOptions {
        progress: Progress::Quiet,
        ..Default::default()
    }
}

fn config(arch: Arch, epochs: usize) -> TrainConfig {
    TrainConfig::fixed(arch, epochs, 32, 42)
}

/// Options that continue the training checkpointed at `ckpt`.
fn resuming(ckpt: &std::path::Path) -> TrainOptions<'static> {
    TrainOptions {
        checkpoint: Some(ckpt.to_path_buf()),
        resume: true,
        ..quiet()
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    fresh_dir("train", name)
}

fn without_time(h: &[EpochRecord]) -> Vec<EpochRecord> {
    h.iter()
        .map(|r| EpochRecord {
            seconds: 0.0,
            ..r.clone()
        })
        .collect()
}

/// The per-epoch losses of `both_models_learn_a_separable_task`, recorded from that very run.
/// Training is deterministic for a seed (whatever the thread count), so any change to the
/// models, the optimiser, the data order or the kernels moves these numbers. To record them
/// again after a deliberate change, run
/// `DIGITS_RECORD_CURVES=1 cargo test --test training both_models_learn`, and commit the file.
const CURVES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/expected/training_curves.csv"
);
/// The variable that makes the test rewrite [`CURVES`] instead of comparing with it.
const RECORD_CURVES_ENV: &str = "DIGITS_RECORD_CURVES";
/// Relative tolerance on each recorded loss: room for another CPU's kernels summing in
/// another order, far below what a changed training run moves.
const CURVE_TOLERANCE: f64 = 1e-4;

/// One CSV row per epoch: `arch,epoch,train_loss,val_loss`.
fn curve_rows(arch: Arch, history: &[EpochRecord]) -> Vec<String> {
    history
        .iter()
        .map(|r| format!("{arch},{},{:e},{:e}", r.epoch, r.train_loss, r.val_loss))
        .collect()
}

/// Compare `rows` with the recorded curves (or record them, with [`RECORD_CURVES_ENV`]=1).
fn check_curves(rows: &[String]) {
    if std::env::var(RECORD_CURVES_ENV).as_deref() == Ok("1") {
        let header = "# written by `DIGITS_RECORD_CURVES=1 cargo test --test training both_models_learn`\narch,epoch,train_loss,val_loss\n";
        std::fs::write(CURVES, header.to_string() + &rows.join("\n") + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(CURVES)
        .unwrap_or_else(|e| panic!("{CURVES}: {e}; record it with {RECORD_CURVES_ENV}=1"));
    let want: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(want.len(), rows.len(), "epochs: {rows:?} vs {want:?}");
    for (got, want) in rows.iter().zip(&want) {
        let (g, w): (Vec<&str>, Vec<&str>) = (got.split(',').collect(), want.split(',').collect());
        assert_eq!(g[..2], w[..2], "{got} vs recorded {want}");
        for (gv, wv) in g[2..].iter().zip(&w[2..]) {
            let (gv, wv): (f64, f64) = (gv.parse().unwrap(), wv.parse().unwrap());
            assert!(
                (gv - wv).abs() <= CURVE_TOLERANCE * wv.abs(),
                "loss {got} differs from the recorded {want} (tolerance {CURVE_TOLERANCE:e} relative)"
            );
        }
    }
}

#[test]
fn both_models_learn_a_separable_task() {
    let (tr, val) = (synthetic(600, 1, false), synthetic(200, 2, false));
    let mut rows = Vec::new();
    for (arch, epochs) in [(Arch::Mlp, 3), (Arch::Cnn, 1)] {
        let out = train(&config(arch, epochs), &tr, &val, quiet()).unwrap();
        let acc = evaluate(arch, &out.weights, &val).unwrap().accuracy;
        assert!(acc > 0.9, "{arch}: validation accuracy {acc}");
        assert_eq!(out.history.len(), epochs);
        rows.extend(curve_rows(arch, &out.history));
    }
    check_curves(&rows);
}

#[test]
fn same_seed_same_numbers_and_other_seed_other_numbers() {
    let (tr, val) = (synthetic(300, 3, false), synthetic(100, 4, false));
    let a = train(&config(Arch::Mlp, 2), &tr, &val, quiet()).unwrap();
    let b = train(&config(Arch::Mlp, 2), &tr, &val, quiet()).unwrap();
    assert_eq!(a.weights, b.weights);
    assert_eq!(without_time(&a.history), without_time(&b.history));
    let c = train(
        &TrainConfig {
            seed: 7,
            ..config(Arch::Mlp, 2)
        },
        &tr,
        &val,
        quiet(),
    )
    .unwrap();
    assert_ne!(a.weights, c.weights);
}

#[test]
fn interrupted_run_resumes_to_the_uninterrupted_result() {
    let (tr, val) = (synthetic(300, 5, false), synthetic(100, 6, false));
    for (arch, conv) in [
        (Arch::Mlp, ConvAlgo::Im2col),
        (Arch::Cnn, ConvAlgo::Im2col),
        (Arch::Cnn, ConvAlgo::Winograd),
    ] {
        let cfg = TrainConfig {
            patience: Some(3),
            conv,
            ..config(arch, 3)
        };
        let whole = train(&cfg, &tr, &val, quiet()).unwrap();

        let dir = tmp(&format!("resume-{arch}-{conv}"));
        let ckpt = dir.join("checkpoint.safetensors");
        let stop_after_two = TrainOptions {
            checkpoint: Some(ckpt.clone()),
            on_epoch: Some(Box::new(|r: &EpochRecord| r.epoch < 2)),
            ..quiet()
        };
        let first = train(&cfg, &tr, &val, stop_after_two).unwrap();
        assert!(!first.completed);
        assert_eq!(first.history.len(), 2);
        let resumed = train(&cfg, &tr, &val, resuming(&ckpt)).unwrap();
        assert!(resumed.completed);
        assert_eq!(
            resumed.weights, whole.weights,
            "{arch}: resumed weights differ"
        );
        assert_eq!(without_time(&resumed.history), without_time(&whole.history));

        // A checkpoint from another configuration (another learning rate, or for the CNN
        // another convolution algorithm) is refused with a one-line reason.
        let other_conv = match conv {
            ConvAlgo::Im2col => ConvAlgo::Winograd,
            ConvAlgo::Winograd => ConvAlgo::Im2col,
        };
        let others = [
            TrainConfig {
                lr: 0.01,
                ..cfg.clone()
            },
            TrainConfig {
                conv: other_conv,
                ..cfg.clone()
            },
        ];
        for other in &others[..if arch == Arch::Cnn { 2 } else { 1 }] {
            let err = train(other, &tr, &val, resuming(&ckpt))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("different configuration") && !err.contains('\n'),
                "{err}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn augmented_runs_resume_exactly_and_never_augment_validation() {
    let (tr, val) = (synthetic(300, 11, false), synthetic(100, 12, false));
    let cfg = TrainConfig {
        augment: Some("strong".parse().unwrap()),
        ..config(Arch::Mlp, 3)
    };
    let whole = train(&cfg, &tr, &val, quiet()).unwrap();
    let plain = train(&config(Arch::Mlp, 3), &tr, &val, quiet()).unwrap();
    assert_ne!(whole.weights, plain.weights, "augmentation changed nothing");
    // The last epoch's validation loss is that of the unaugmented validation set.
    let last = whole.history.last().unwrap();
    let v = evaluate(Arch::Mlp, &whole.weights, &val).unwrap();
    assert!(
        (v.loss - last.val_loss).abs() < 1e-9,
        "{} vs {}",
        v.loss,
        last.val_loss
    );

    let dir = tmp("resume-augmented");
    let ckpt = dir.join("checkpoint.safetensors");
    let stop_after_two = TrainOptions {
        checkpoint: Some(ckpt.clone()),
        on_epoch: Some(Box::new(|r: &EpochRecord| r.epoch < 2)),
        ..quiet()
    };
    assert!(!train(&cfg, &tr, &val, stop_after_two).unwrap().completed);
    let resumed = train(&cfg, &tr, &val, resuming(&ckpt)).unwrap();
    assert_eq!(resumed.weights, whole.weights, "resumed weights differ");
    assert_eq!(without_time(&resumed.history), without_time(&whole.history));
    // Another augmentation is another configuration.
    let other = TrainConfig {
        augment: Some("keras".parse().unwrap()),
        ..cfg.clone()
    };
    let err = train(&other, &tr, &val, resuming(&ckpt))
        .unwrap_err()
        .to_string();
    assert!(err.contains("different configuration"), "{err}");
    // A checkpoint another engine wrote (or one that does not say) would not resume exactly.
    let mut loaded = digits::train::checkpoint::load_safetensors(&ckpt).unwrap();
    for engine in [Some("portable (gemm 0.15)"), None] {
        match engine {
            Some(e) => loaded.metadata.insert("engine".into(), e.into()),
            None => loaded.metadata.remove("engine"),
        };
        let sets: Vec<(&str, &digits::models::Weights)> =
            loaded.sets.iter().map(|(k, w)| (k.as_str(), w)).collect();
        digits::train::checkpoint::save_safetensors(&ckpt, &sets, &loaded.metadata).unwrap();
        let err = train(&cfg, &tr, &val, resuming(&ckpt))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("another engine") && !err.contains('\n'),
            "{err}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn configurations_without_augmentation_read_and_write_as_before() {
    let cfg = config(Arch::Cnn, 3);
    let json = serde_json::to_string(&cfg).unwrap();
    assert!(!json.contains("augment"), "{json}");
    // The convolution algorithm is always written (Winograd is the default), and a record
    // without it reads as im2col, which made every run recorded that way.
    assert_eq!(cfg.conv, ConvAlgo::Winograd);
    assert!(json.contains(r#""conv":"winograd""#), "{json}");
    assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), cfg);
    let unrecorded = json.replace(r#","conv":"winograd""#, "");
    assert!(!unrecorded.contains("conv"), "{unrecorded}");
    assert_eq!(
        serde_json::from_str::<TrainConfig>(&unrecorded).unwrap(),
        TrainConfig {
            conv: ConvAlgo::Im2col,
            ..cfg.clone()
        }
    );
    let augmented = TrainConfig {
        augment: Some("elastic".parse().unwrap()),
        ..cfg
    };
    let json = serde_json::to_string(&augmented).unwrap();
    assert_eq!(
        serde_json::from_str::<TrainConfig>(&json).unwrap(),
        augmented
    );
    let bad = TrainConfig {
        augment: Some(digits::augment::AugmentSpec {
            zoom: 3.0,
            ..Default::default()
        }),
        ..config(Arch::Mlp, 1)
    };
    let (tr, val) = (synthetic(20, 13, false), synthetic(10, 14, false));
    let err = train(&bad, &tr, &val, quiet()).unwrap_err().to_string();
    assert!(err.contains("zoom must be"), "{err}");
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    // Random labels: training fits noise, so the validation loss soon rises and training stops.
    let (tr, val) = (synthetic(300, 7, true), synthetic(200, 8, true));
    let cfg = TrainConfig {
        patience: Some(2),
        lr: 3e-3,
        dropout: 0.0,
        ..config(Arch::Mlp, 30)
    };
    let out = train(&cfg, &tr, &val, quiet()).unwrap();
    assert!(out.stopped_early, "{:?}", out.history);
    assert!(out.history.len() < 30);
    let best = out
        .history
        .iter()
        .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
        .unwrap();
    assert_eq!(out.best_epoch, best.epoch);
    assert_eq!(
        out.history.len(),
        best.epoch + 2,
        "stops `patience` epochs after the best"
    );
    let kept = evaluate(Arch::Mlp, &out.weights, &val).unwrap();
    assert!(
        (kept.loss - best.val_loss).abs() < 1e-9,
        "kept weights give {} not {}",
        kept.loss,
        best.val_loss
    );
}

#[test]
fn a_diverging_loss_is_a_one_line_error() {
    let (tr, val) = (synthetic(200, 9, false), synthetic(50, 10, false));
    let cfg = TrainConfig {
        lr: 1e30,
        ..config(Arch::Mlp, 2)
    };
    let err = train(&cfg, &tr, &val, quiet()).unwrap_err().to_string();
    assert!(
        err.contains("diverged") && err.contains("--lr") && !err.contains('\n'),
        "{err}"
    );
}

#[test]
fn images_of_the_wrong_size_are_refused() {
    let small = Dataset::new("tiny", vec![0.5; 2 * 16 * 16], vec![1, 2], 16, 16, "x").unwrap();
    let err = evaluate(Arch::Mlp, &Arch::Mlp.init(0), &small)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("16x16") && err.contains("mnist-frame"),
        "{err}"
    );
}
