//! The study end to end on the real data, cut down to seconds: two models, two seeds, one
//! epoch on 600 images. Checks the tables against each other and against the runs, that a
//! second run reuses every run and prediction and writes identical files, and that a run
//! folder holding something else is refused. Needs `DIGITS_DATA_MIRROR` (CI sets it);
//! without it the test says so and passes.

mod common;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use digits::search::Shard;
use digits::study::markdown::Csv;
use digits::study::stats::mean_ci;
use digits::study::{run_shard, run_study, StudyConfig, Tables, VARIANTS};
use digits::train::Progress;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What [`csv`] reads: a header and rows of fields.
type Table = (Vec<String>, Vec<Vec<String>>);

/// A CSV file as a header and rows of fields (no field of ours holds a comma, except the
/// quoted `config` and `versions` columns of runs.csv, which this test does not split).
fn csv(path: &Path) -> Table {
    let text = read(path);
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or(f64::NAN)
}

#[test]
fn a_small_study_runs_reuses_and_agrees_with_itself() {
    let Some((root, data)) = common::fresh_root_with_data("study-test") else {
        return;
    };
    let cfg = small_study(&root);
    let study = run_study(&cfg, &data).unwrap();
    digits::plot::study::write_all(&study.data, &study.tables, &data, &cfg.img_dir).unwrap();
    let tables = study.tables;
    let res = &cfg.results_dir;
    let by_seed = check_accuracy_tables(res);
    check_paired_rows(res, &by_seed);
    check_framing_and_robustness(&tables);
    check_confusion_and_calibration(&tables, res);
    check_ink_mechanism(&tables);
    check_figures(&cfg.img_dir);
    let record_stamp = check_second_run_reuses_everything(&cfg, &data);
    check_shards_gather_to_the_same_files(&cfg, &root, &data);
    check_a_different_run_is_refused(&cfg, &data, record_stamp);
    check_partial_study_of_finished_runs(&cfg, &data);
    let _ = std::fs::remove_dir_all(&root);
}

/// Two models, two seeds, one epoch on 600 images, under `root`.
fn small_study(root: &Path) -> StudyConfig {
    StudyConfig {
        variants: vec![VARIANTS[0], VARIANTS[1]],
        seeds: vec![0, 1],
        epochs: 1,
        train_images: Some(600),
        val_images: Some(200),
        test_images: Some(100),
        robustness_images: 50,
        progress: Progress::Quiet,
        ..StudyConfig::full()
    }
    .under(root)
}

/// Accuracy: 2 models × (MNIST test + 7 domains × 2 framings), each over 2 seeds, and
/// each the mean of the per-seed rows. Returns the per-seed table, which the paired rows
/// are checked against.
fn check_accuracy_tables(res: &Path) -> Table {
    let (h, acc) = csv(&res.join("accuracy.csv"));
    assert_eq!(acc.len(), 2 * 15, "{acc:?}");
    let by_seed = csv(&res.join("accuracy_by_seed.csv"));
    assert_eq!(by_seed.1.len(), 2 * 15 * 2);
    for row in &acc {
        check_accuracy_row(&h, row, &by_seed);
    }
    assert!(acc.iter().any(|r| r[column(&h, "framing")] == "native"));
    by_seed
}

/// One row of accuracy.csv: over both seeds, within its interval, and the mean and interval
/// of its two per-seed rows.
fn check_accuracy_row(h: &[String], row: &[String], (hs, by_seed): &Table) {
    let (v, d, f) = (
        &row[column(h, "variant")],
        &row[column(h, "domain")],
        &row[column(h, "framing")],
    );
    assert_eq!(row[column(h, "seeds")], "2");
    let mean = num(&row[column(h, "accuracy_pct")]);
    let (lo, hi) = (
        num(&row[column(h, "accuracy_ci_low_pct")]),
        num(&row[column(h, "accuracy_ci_high_pct")]),
    );
    assert!(lo <= mean && mean <= hi, "{row:?}");
    let seeds: Vec<f64> = by_seed
        .iter()
        .filter(|r| {
            &r[column(hs, "variant")] == v
                && &r[column(hs, "domain")] == d
                && &r[column(hs, "framing")] == f
        })
        .map(|r| num(&r[column(hs, "accuracy_pct")]))
        .collect();
    assert_eq!(seeds.len(), 2);
    let ci = mean_ci(&seeds);
    assert!((ci.mean - mean).abs() < 1e-9 && (ci.low - lo).abs() < 1e-9);
}

/// Paired rows: counts add up to the set, and the difference is the accuracies'.
fn check_paired_rows(res: &Path, by_seed: &Table) {
    let (hp, paired) = csv(&res.join("paired.csv"));
    assert_eq!(paired.len(), 15 * 2);
    for r in &paired {
        let n = num(&r[column(&hp, "images")]);
        let parts: f64 = [
            "both_right",
            "mlp_only_right",
            "cnn_only_right",
            "both_wrong",
        ]
        .iter()
        .map(|c| num(&r[column(&hp, c)]))
        .sum();
        assert_eq!(parts, n);
        let acc_of = |v: &str| seed_accuracy_of(by_seed, v, &hp, r);
        let diff = num(&r[column(&hp, "cnn_minus_mlp_pct")]);
        assert!(
            (diff - (acc_of("cnn") - acc_of("mlp"))).abs() < 1e-9,
            "{r:?}"
        );
        let p = num(&r[column(&hp, "mcnemar_p")]);
        assert!((0.0..=1.0).contains(&p));
        let (lo, hi) = (
            num(&r[column(&hp, "bootstrap_low_pct")]),
            num(&r[column(&hp, "bootstrap_high_pct")]),
        );
        assert!(lo <= diff + 1e-9 && diff <= hi + 1e-9, "{r:?}");
    }
}

/// The per-seed accuracy of variant `v` on the seed, domain and framing of paired row `r`.
fn seed_accuracy_of((hs, by_seed): &Table, v: &str, hp: &[String], r: &[String]) -> f64 {
    by_seed
        .iter()
        .find(|s| {
            s[column(hs, "variant")] == v
                && s[column(hs, "seed")] == r[column(hp, "seed")]
                && s[column(hs, "domain")] == r[column(hp, "domain")]
                && s[column(hs, "framing")] == r[column(hp, "framing")]
        })
        .map(|s| num(&s[column(hs, "accuracy_pct")]))
        .unwrap()
}

/// The framing and robustness tables agree with themselves.
fn check_framing_and_robustness(tables: &Tables) {
    // Framing rows: error difference is resize minus mnist-frame.
    for f in &tables.framing {
        assert!((f.explained.mean - (f.error_resize.mean - f.error_frame.mean)).abs() < 1e-12);
    }
    // Robustness: every level of every family for both models; level 0 of a shift is the
    // unchanged images, so both no-change levels (shift 0, rotate 0) agree exactly.
    assert_eq!(tables.robustness.len(), 2 * 31);
    for v in ["mlp", "cnn"] {
        let at = |family: &str, level: f64| {
            tables
                .robustness
                .iter()
                .find(|r| r.variant == v && r.family == family && r.level == level)
                .unwrap()
                .ci
                .mean
        };
        assert_eq!(at("shift", 0.0), at("rotate", 0.0));
        assert_eq!(at("shift", 0.0), at("scale", 1.0));
        assert_eq!(at("shift", 0.0), at("thickness", 0.0));
    }
    // Levels are the decimals they were written as (0.7, not 0.699999988).
    assert!(tables.robustness.iter().any(|r| r.level == 0.7));
}

/// The confusion and calibration tables agree with the accuracies, and the README names the
/// paired table.
fn check_confusion_and_calibration(tables: &Tables, res: &Path) {
    // Confusion counts: every image of every seed once, the diagonal the right ones.
    for c in &tables.confusion {
        let total: u32 = c.counts.iter().flatten().sum();
        let right: u32 = (0..10).map(|k| c.counts[k][k]).sum();
        let acc = tables
            .accuracy_of(&c.variant, &c.domain, &c.framing)
            .unwrap();
        assert_eq!(total as usize, acc.images * 2);
        assert!((right as f64 / total as f64 - acc.ci.mean).abs() < 1e-9);
    }
    // Calibration: ECE within [0, 1] and one reliability row per bin.
    for c in &tables.calibration {
        assert!((0.0..=1.0).contains(&c.ece.mean), "{c:?}");
    }
    assert_eq!(
        tables.reliability.len(),
        tables.calibration.len() * digits::study::stats::CALIBRATION_BINS
    );
    assert!(read(&res.join("README.md")).contains("paired.csv"));
}

/// The mechanism: MNIST test digits sit where training digits do; resized USPS digits
/// spread over pixels training digits rarely ink, and framing pulls them back. Every MLP
/// weight on a never-inked pixel is exactly as initialised.
fn check_ink_mechanism(tables: &Tables) {
    let ink = |d: &str, f: &str| {
        tables
            .ink
            .iter()
            .find(|r| r.domain == d && r.framing == f)
            .unwrap()
            .ink_on_rare
    };
    assert_eq!(tables.ink.len(), 15);
    assert!(ink("mnist-test", "native") < 0.01);
    assert!(ink("usps-test", "resize") > 5.0 * ink("usps-test", "mnist-frame"));
    for r in &tables.runs {
        match r.variant.as_str() {
            "mlp" => {
                let (unchanged, total) = r.unchanged_weights.unwrap();
                assert!(total > 0 && unchanged == total, "{r:?}");
            }
            _ => assert!(r.unchanged_weights.is_none()),
        }
    }
}

/// A sample of the study's figures were written, as PNG files.
fn check_figures(img_dir: &Path) {
    for fig in [
        "study_accuracy_resize.png",
        "study_accuracy_mnist_frame.png",
        "study_robustness_shift.png",
        "study_framing_usps_test.png",
        "study_reliability_usps_test_resize.png",
        "study_feature_maps_usps.png",
        "study_ink.png",
        "study_gap_mlp_vs_cnn.png",
        "mlp_model_accuracy.png",
        "cnn_model_loss.png",
    ] {
        let bytes = std::fs::read(img_dir.join(fig)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{fig}");
    }
}

/// When `p` was last written.
fn modified(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

/// The run record of cnn seed 1, whose time stamp shows whether a run was rewritten.
fn cnn_seed1_record(cfg: &StudyConfig) -> PathBuf {
    cfg.runs_dir.join("cnn-seed1/run.json")
}

/// A second run trains nothing, predicts nothing, and writes the same tables. Returns the
/// time stamp of cnn seed 1's run record, for later runs to leave alone.
fn check_second_run_reuses_everything(cfg: &StudyConfig, data: &Path) -> SystemTime {
    let res = &cfg.results_dir;
    let record = cnn_seed1_record(cfg);
    let cache = cfg.runs_dir.join("cnn-seed1/predictions.json");
    let (r0, c0) = (modified(&record), modified(&cache));
    let tables_text = || -> Vec<String> {
        [
            "accuracy.csv",
            "paired.csv",
            "robustness.csv",
            "calibration.csv",
        ]
        .iter()
        .map(|f| read(&res.join(f)))
        .collect()
    };
    let before = tables_text();
    run_study(cfg, data).unwrap();
    assert_eq!((modified(&record), modified(&cache)), (r0, c0));
    assert_eq!(before, tables_text());
    r0
}

/// The same study spread over two shards trained side by side into one runs folder, then
/// gathered, writes what the single process wrote (but for the training times).
fn check_shards_gather_to_the_same_files(cfg: &StudyConfig, root: &Path, data: &Path) {
    let spread = cfg.clone().under(&root.join("spread"));
    train_two_shards_side_by_side(&spread, data);
    let e = run_study(
        &StudyConfig {
            shard: Shard { index: 1, count: 2 },
            ..spread.clone()
        },
        data,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("holds only part of the runs"), "{e}");
    let gathered = StudyConfig {
        only_finished: true,
        ..spread.clone()
    };
    let g = run_study(&gathered, data).unwrap();
    assert_eq!(g.data.runs.len(), 4);
    check_same_results(&cfg.results_dir, &spread.results_dir);
}

/// Both shards of `spread` trained at once into its one runs folder, which then holds every
/// run's predictions.
fn train_two_shards_side_by_side(spread: &StudyConfig, data: &Path) {
    std::thread::scope(|scope| {
        for index in 0..2 {
            let shard = StudyConfig {
                shard: Shard { index, count: 2 },
                ..spread.clone()
            };
            scope.spawn(move || run_shard(&shard, data).unwrap());
        }
    });
    for v in &spread.variants {
        for &seed in &spread.seeds {
            let dir = v.run_dir(&spread.runs_dir, seed);
            assert!(dir.join("predictions.json").is_file(), "{}", dir.display());
        }
    }
}

/// Every file of results folder `res` is in `other` with the same text, but for times.
fn check_same_results(res: &Path, other: &Path) {
    for entry in std::fs::read_dir(res).unwrap() {
        let name = entry.unwrap().file_name();
        let (one, two) = (read(&res.join(&name)), read(&other.join(&name)));
        if name == "runs.csv" {
            assert_eq!(untimed_runs(&one), untimed_runs(&two));
        } else {
            assert_eq!(one, two, "{name:?}");
        }
    }
}

/// The rows of runs.csv without its two time columns: training and prediction times differ
/// from run to run; everything else must not.
fn untimed_runs(t: &str) -> Vec<Vec<String>> {
    let csv = Csv::parse("runs", t).unwrap();
    let timed = |h: &String| h == "train_seconds" || h == "predict_seconds";
    let keep: Vec<usize> = (0..csv.header.len())
        .filter(|&i| !timed(&csv.header[i]))
        .collect();
    assert_eq!(keep.len() + 2, csv.header.len(), "{:?}", csv.header);
    csv.rows
        .iter()
        .map(|r| keep.iter().map(|&i| r[i].clone()).collect())
        .collect()
}

/// A run folder trained differently is refused with one line, not overwritten: cnn seed 1's
/// record keeps `record_stamp`, its time stamp before the second run.
fn check_a_different_run_is_refused(cfg: &StudyConfig, data: &Path, record_stamp: SystemTime) {
    let other = StudyConfig {
        epochs: 2,
        ..cfg.clone()
    };
    let e = run_study(&other, data).unwrap_err().to_string();
    assert!(
        e.contains("holds a different run") && !e.contains('\n'),
        "{e}"
    );
    assert_eq!(modified(&cnn_seed1_record(cfg)), record_stamp);
}

/// Looking at finished runs only: a missing seed is left out, nothing is trained.
fn check_partial_study_of_finished_runs(cfg: &StudyConfig, data: &Path) {
    std::fs::remove_dir_all(cfg.runs_dir.join("cnn-seed1")).unwrap();
    let partial = StudyConfig {
        only_finished: true,
        ..cfg.clone()
    };
    let t = run_study(&partial, data).unwrap().tables;
    assert!(!cfg.runs_dir.join("cnn-seed1").exists());
    let cnn = t.accuracy_of("cnn", "mnist-test", "native").unwrap();
    let mlp = t.accuracy_of("mlp", "mnist-test", "native").unwrap();
    assert_eq!((cnn.ci.n, mlp.ci.n), (1, 2));
    assert_eq!(t.paired.len(), 15, "only seed 0 has both models");
}

#[test]
fn each_variant_trains_on_its_own_digits_and_pairs_are_the_named_ones() {
    let Some((root, data)) = common::fresh_root_with_data("variants-test") else {
        return;
    };
    let named = |n: &str| digits::study::variant_named(n).unwrap();
    let cfg = StudyConfig {
        variants: vec![
            named("mlp-1586"),
            named("cnn"),
            named("mlp-usps"),
            named("mlp-keras-adapt-framed"),
        ],
        seeds: vec![0],
        epochs: 1,
        train_images: Some(300),
        val_images: Some(100),
        test_images: Some(50),
        robustness_images: 20,
        target_images: Some(200),
        progress: Progress::Quiet,
        ..StudyConfig::quick()
    }
    .under(&root);
    let study = run_study(&cfg, &data).unwrap();
    let runs = &study.data.runs;
    let dir_of = |v: &str| {
        let r = runs.iter().find(|r| r.variant.name == v).unwrap();
        (r.dir.file_name().unwrap().to_string_lossy().to_string(), r)
    };
    let (wide_dir, wide) = dir_of("mlp-1586");
    let (usps_dir, usps) = dir_of("mlp-usps");
    assert_eq!(wide_dir, "mlp-1586-seed0");
    assert_eq!(usps_dir, "mlp-usps-esl-train-seed0");
    assert_eq!(wide.record.config.arch.num_params(), 1_260_880);
    // The USPS variant learned from USPS's training digits framed like MNIST, not from MNIST.
    assert_ne!(usps.record.train_data, wide.record.train_data);
    assert!(
        usps.record.train_data.contains("mnist-frame"),
        "{}",
        usps.record.train_data
    );
    let t = &study.tables;
    let trained_on = |v: &str| &t.accuracy_of(v, "mnist-test", "native").unwrap().trained_on;
    assert_eq!(trained_on("mlp-usps"), "usps-esl-train");
    assert_eq!(trained_on("mlp-1586"), "mnist");
    assert_eq!(
        trained_on("mlp-keras-adapt-framed"),
        "mnist+usps-esl-train-images(mnist-frame)"
    );
    // The adapted variant: its source run was trained first, in its own folder (the list did
    // not hold it), and adapted into `digits adapt`'s default folder beside it, from USPS's
    // training images framed, without their labels.
    let (adapted_dir, adapted) = dir_of("mlp-keras-adapt-framed");
    assert_eq!(
        adapted_dir,
        "mlp-keras-seed0-adapt-usps-esl-train-mnist-frame"
    );
    let source_dir = cfg.runs_dir.join("mlp-keras-seed0");
    let source = digits::train::run::load_record(&source_dir).unwrap();
    assert_eq!(adapted.record, source);
    let adaptation = adapted.adaptation.as_ref().unwrap();
    assert_eq!(adaptation.source, source);
    assert_eq!(adaptation.rounds.len(), cfg.adaptation.portions.len());
    assert!(adaptation.target.starts_with("usps-esl-train"));
    assert!(
        adaptation.target_data.contains("mnist-frame")
            && adaptation.target_data.ends_with("+unlabeled")
    );
    let (_, before) = digits::train::run::load_model(&source_dir).unwrap();
    let (_, after) = digits::train::run::load_model(&adapted.dir).unwrap();
    assert_ne!(
        digits::adapt::weights_sha256(&before),
        digits::adapt::weights_sha256(&after)
    );
    let row = t
        .runs
        .iter()
        .find(|r| r.variant == "mlp-keras-adapt-framed")
        .unwrap();
    assert!(row.adapt_seconds.unwrap() > 0.0);
    assert!(t.runs.iter().filter(|r| r.adapted_to.is_some()).count() == 1);
    // A second study reuses the adaptation rather than redoing it.
    let again = run_study(&cfg, &data).unwrap();
    let second = again
        .data
        .runs
        .iter()
        .find(|r| r.variant.name == "mlp-keras-adapt-framed")
        .unwrap();
    assert_eq!(second.adaptation, adapted.adaptation);
    // Only the pair whose two variants both ran: the wide MLP against the plain CNN.
    assert!(!t.paired.is_empty());
    assert!(t
        .paired
        .iter()
        .all(|r| (r.mlp.as_str(), r.cnn.as_str()) == ("mlp-1586", "cnn")));
    let _ = std::fs::remove_dir_all(&root);
}
