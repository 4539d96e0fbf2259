//! The command-line tool as a user meets it: summaries, and one-line errors (never a panic)
//! for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "common/command.rs"]
mod command;
use command::{digits, fresh_dir};

/// A failure that prints exactly one line, starting with `error:`, and no panic.
fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure, got success");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    err
}

fn tmp(name: &str) -> PathBuf {
    fresh_dir("cli", name)
}

/// The one-line error of `digits --data DATA train mlp FLAG VALUE --out RUN`.
fn train_mlp_error(data: &str, run: &Path, flag: &str, value: &str) -> String {
    let run = run.to_str().unwrap();
    one_line_error(&digits(&[
        "--data", data, "train", "mlp", flag, value, "--out", run,
    ]))
}

#[test]
fn summaries_match_the_original_tables() {
    let out = digits(&["summary", "cnn"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Total params: 1,261,450",
        "(14, 14, 192)",
        "55,488",
        "1,204,352",
        "(9408,)",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let text = String::from_utf8(digits(&["summary", "mlp"]).stdout).unwrap();
    for needle in ["Total params: 243,530", "175,840", "64,800", "2,890"] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn missing_data_says_how_to_get_it() {
    let dir = tmp("nodata");
    let out = digits(&[
        "--data",
        dir.to_str().unwrap(),
        "train",
        "mlp",
        "--epochs",
        "1",
        "--out",
        dir.join("run").to_str().unwrap(),
    ]);
    let err = one_line_error(&out);
    assert!(err.contains("digits data fetch"), "{err}");
}

#[test]
fn bad_names_and_missing_weights_are_one_line_errors() {
    let dir = tmp("bad");
    let err = one_line_error(&digits(&[
        "eval",
        "--weights",
        dir.join("none").to_str().unwrap(),
    ]));
    assert!(err.contains("file not found"), "{err}");
    let w = dir.join("w.safetensors");
    std::fs::write(&w, b"\x08\0\0\0\0\0\0\0{}garbage").unwrap();
    let err = one_line_error(&digits(&["eval", "--weights", w.to_str().unwrap()]));
    assert!(err.contains("not a readable digits weights file"), "{err}");
    let err = train_mlp_error(dir.to_str().unwrap(), &dir.join("r"), "--dropout", "1.5");
    assert!(err.contains("--dropout"), "{err}");
}

#[test]
fn tune_and_sized_train_refuse_bad_settings_in_one_line() {
    let dir = tmp("tune");
    let data = dir.to_str().unwrap();
    let err = one_line_error(&digits(&["--data", data, "tune", "mlp-96-160"]));
    assert!(err.contains("`mlp` or `cnn`"), "{err}");
    let err = one_line_error(&digits(&["--data", data, "tune", "cnn", "--trials", "0"]));
    assert!(err.contains("--trials"), "{err}");
    let err = one_line_error(&digits(&["--data", data, "tune", "mlp", "--name", "../x"]));
    assert!(err.contains("--name"), "{err}");
    // Settings are checked before the data is read; then missing data says how to get it.
    let err = one_line_error(&digits(&[
        "--data", data, "tune", "mlp", "--name", "cli-test",
    ]));
    assert!(err.contains("digits data fetch"), "{err}");
    let err = train_mlp_error(data, &dir.join("r"), "--arch", "cnn-16-none-64");
    assert!(err.contains("not of the model kind `mlp`"), "{err}");
    // Bad values for the search's own types are refused by the parser, naming the option.
    for (flag, value) in [("--shard", "2/2"), ("--algorithm", "grid")] {
        let out = digits(&["--data", data, "tune", "mlp", flag, value]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains(flag) && !err.contains("panicked"), "{err}");
    }
    let text = String::from_utf8(digits(&["summary", "cnn-16-none-64"]).stdout).unwrap();
    assert!(text.contains("(3136,)"), "{text}");
}

#[test]
fn report_and_figures_refuse_a_folder_that_is_not_a_run() {
    let dir = tmp("notarun");
    let err = one_line_error(&digits(&["report", dir.to_str().unwrap()]));
    assert!(err.contains("file not found"), "{err}");
    let err = one_line_error(&digits(&[
        "figures",
        dir.to_str().unwrap(),
        "--out",
        dir.join("img").to_str().unwrap(),
    ]));
    assert!(
        err.contains("run.json") && err.contains("digits train"),
        "{err}"
    );
}

#[test]
fn figures_go_to_a_folder_of_their_own_unless_told_otherwise() {
    if digits::plot::font::ensure().is_err() {
        let why = "no font for figures (install fonts-dejavu-core)";
        return digits::runtime::skip_unless_required("font", why);
    }
    let dir = tmp("figures-default");
    let run = dir.join("runs/mlp-seed0");
    let cfg = digits::train::TrainConfig {
        epochs: 1,
        batch_size: 32,
        ..digits::train::TrainConfig::new(digits::models::Arch::Mlp)
    };
    let blocks = digits::data::synthetic::blocks;
    let quiet = digits::train::Progress::Quiet;
    digits::train::run::train_run(
        &cfg,
        &blocks(100, 1, false),
        &blocks(30, 2, false),
        0.1,
        &run,
        false,
        quiet,
    )
    .unwrap();
    // Run where the repository's committed img/ would be: the default must leave it alone.
    let out = Command::new(env!("CARGO_BIN_EXE_digits"))
        .current_dir(&dir)
        .args(["--data", "no-data", "figures", "runs/mlp-seed0"])
        .output()
        .expect("run digits");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.lines().count() >= 3, "{listed}");
    for line in listed.lines() {
        assert!(
            line.starts_with("figures/") && dir.join(line).is_file(),
            "{line}"
        );
    }
    assert!(!dir.join("img").exists(), "the default wrote into img/");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The memory budget the docs give for training the published CNN (docs/performance.md):
/// `digits bench cnn` reports its own peak, training steps and inference at 1,024 images a
/// call included. The same run checks the step-by-step account the docs quote: the CNN's
/// Winograd convolution in its six steps, and nothing of the kind for the MLP.
#[cfg(target_os = "linux")]
#[test]
fn the_published_cnn_trains_and_infers_within_300_mb_and_times_its_winograd_steps() {
    let out = digits(&[
        "bench", "cnn", "mlp", "--conv", "winograd", "--steps", "1", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mb = report["peak_resident_mb"]
        .as_f64()
        .expect("Linux reports its peak");
    assert!(mb > 10.0 && mb <= 300.0, "peak {mb} MB resident");
    let steps = |model: &str| -> Vec<(String, f64)> {
        let m = report["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["model"] == model)
            .unwrap_or_else(|| panic!("no {model} in the report"));
        m["winograd_step_ms"]
            .as_array()
            .expect("a list of steps")
            .iter()
            .map(|s| {
                (
                    s["step"].as_str().unwrap().to_string(),
                    s["ms"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let cnn = steps("cnn");
    let names: Vec<&str> = cnn.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "input transform",
            "forward products, untransform, pooling",
            "output-gradient transform",
            "weight-gradient products",
            "input-gradient products",
            "input-gradient untransform",
        ]
    );
    assert!(cnn.iter().all(|(_, ms)| *ms > 0.0), "{cnn:?}");
    assert!(steps("mlp").is_empty());
}

#[test]
fn bench_refuses_unknown_models_and_algorithms_in_one_line_naming_the_valid_ones() {
    let err = one_line_error(&digits(&["bench", "--model", "resnet"]));
    assert!(err.contains("resnet") && err.contains("`cnn`"), "{err}");
    let err = one_line_error(&digits(&["bench", "resnet"]));
    assert!(err.contains("`mlp`"), "{err}");
    let err = one_line_error(&digits(&["bench", "--conv", "nonsense"]));
    assert!(
        err.contains("nonsense") && err.contains("`im2col`") && err.contains("`winograd`"),
        "{err}"
    );
    let err = one_line_error(&digits(&["bench", "--no-such-flag"]));
    assert!(err.contains("--no-such-flag"), "{err}");
}

/// On a pool of one thread (`RAYON_NUM_THREADS=1`, as a Slurm task given one CPU runs), steps
/// with augmentation finish: the next batch is prepared while a step trains, and neither may
/// wait for a thread that waits for it. The benchmark's augmented steps run the same code as
/// training's. A run that works takes seconds; one that waits forever is stopped and fails.
#[test]
fn augmented_steps_finish_on_a_pool_of_one_thread() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_digits"))
        .args(["bench", "mlp", "--steps", "1", "--json"])
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run digits");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for digits") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`digits bench mlp` on one thread had not finished after 5 minutes: stuck");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "digits bench failed on one thread");
}
