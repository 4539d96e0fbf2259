//! The command-line tool as a user meets it: summaries, and one-line errors (never a panic)
//! for bad input.

use std::process::{Command, Output};

fn digits(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_digits"))
        .args(args)
        .output()
        .expect("run digits")
}

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

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("digits-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    let err = one_line_error(&digits(&[
        "--data",
        dir.to_str().unwrap(),
        "train",
        "mlp",
        "--dropout",
        "1.5",
        "--out",
        dir.join("r").to_str().unwrap(),
    ]));
    assert!(err.contains("--dropout"), "{err}");
}
