//! `digits predict` as a user meets it: digits drawn as PNG and JPEG, at two sizes, in both
//! polarities, give the same answers; an unreadable file, a blank image and a file claiming
//! a huge size each get one line and the rest are still predicted; missing default runs say
//! how to make them; `--json` parses and `--show` draws. Also the folder domain's warning
//! about a stray subfolder, through `digits eval`.
//!
//! The model is an MLP trained here, in seconds, on framed drawings of three digits (0, 1
//! and 7, drawn with random proportions and stroke widths): enough to read a clear 7 as 7,
//! whatever the file it comes in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use digits::data::frame::{frame_any, Framing};
use digits::data::Dataset;
use digits::models::{Arch, Weights};
use digits::train::checkpoint::save_safetensors;
use digits::train::{train, Progress, TrainConfig, TrainOptions};
use image::{ExtendedColorType, ImageEncoder};

#[path = "common/command.rs"]
mod command;
use command::{digits, fresh_dir};
#[path = "common/png.rs"]
mod png_files;
use png_files::claimed_png;
use rand::{rngs::StdRng, Rng, SeedableRng};

fn tmp(name: &str) -> PathBuf {
    fresh_dir("predict", name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The trained model's weights as a model file in `dir`.
fn weights(dir: &Path) -> PathBuf {
    static TRAINED: OnceLock<Weights> = OnceLock::new();
    let w = TRAINED.get_or_init(train_three_digits);
    let path = dir.join("three-digits.safetensors");
    save_safetensors(&path, &[("", w)], &BTreeMap::new()).unwrap();
    path
}

/// Distance from (`px`, `py`) to the segment from `a` to `b`.
fn segment(px: f32, py: f32, (ax, ay): (f32, f32), (bx, by): (f32, f32)) -> f32 {
    let (dx, dy) = (bx - ax, by - ay);
    let t = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    ((px - ax - t * dx).powi(2) + (py - ay - t * dy).powi(2)).sqrt()
}

/// Digit `class` (0, 1 or 7) drawn `w`×`h` with anti-aliased strokes, ink level in [0, 1];
/// `shape` nudges its proportions (zeros give the plain digit) and `thick` is the stroke's
/// half-width as a share of the shorter side.
fn draw(class: u8, w: usize, h: usize, shape: [f32; 2], thick: f32) -> Vec<f32> {
    let m = w.min(h) as f32;
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let p = |u: f32, v: f32| (cx + u * m, cy + v * m);
    (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
            let d = match class {
                0 => {
                    let (rx, ry) = ((0.17 + shape[0]) * m, (0.27 + shape[1]) * m);
                    let (u, v) = ((x - cx) / rx, (y - cy) / ry);
                    ((u * u + v * v).sqrt() - 1.0).abs() * rx.min(ry)
                }
                1 => segment(x, y, p(shape[0], -0.28), p(-shape[0], 0.28 + shape[1])),
                _ => segment(x, y, p(-0.2 - shape[0], -0.25), p(0.2, -0.25)).min(segment(
                    x,
                    y,
                    p(0.2, -0.25),
                    p(-0.05 + shape[1], 0.3),
                )),
            };
            (thick * m + 0.5 - d).clamp(0.0, 1.0)
        })
        .collect()
}

/// A "7" as the tests' files show it.
fn seven(w: usize, h: usize) -> Vec<f32> {
    draw(7, w, h, [0.0, 0.0], 0.06)
}

/// An MLP trained for a few epochs on 600 framed drawings of 0, 1 and 7.
fn train_three_digits() -> Weights {
    let mut rng = StdRng::seed_from_u64(0);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for i in 0..600 {
        let class = [0u8, 1, 7][i % 3];
        let (w, h) = (rng.gen_range(30..60), rng.gen_range(30..60));
        let shape = [rng.gen_range(-0.06..0.06), rng.gen_range(-0.06..0.06)];
        let ink = draw(class, w, h, shape, rng.gen_range(0.03..0.08));
        images.extend(frame_any(&ink, w, h, None, Framing::MnistFrame).unwrap());
        labels.push(class);
    }
    let all = Dataset::new("three", images, labels, 28, 28, "drawn").unwrap();
    let (train_set, val) = all.split(0.2, 0);
    let cfg = TrainConfig {
        epochs: 5,
        ..TrainConfig::new(Arch::Mlp)
    };
    let opts = TrainOptions {
        progress: Progress::Quiet,
        ..TrainOptions::default()
    };
    train(&cfg, &train_set, &val, opts).unwrap().weights
}

/// Grey bytes: dark ink on light paper lit unevenly, or light ink on black.
fn render(ink: &[f32], w: usize, dark_on_light: bool) -> Vec<u8> {
    ink.iter()
        .enumerate()
        .map(|(i, &k)| {
            let v = if dark_on_light {
                let light = 0.85 + 0.1 * (i % w) as f32 / w as f32;
                light * (1.0 - 0.7 * k)
            } else {
                k
            };
            (v.clamp(0.0, 1.0) * 255.0).round() as u8
        })
        .collect()
}

fn write_png(path: &Path, w: usize, h: usize, grey: &[u8]) {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(grey, w as u32, h as u32, ExtendedColorType::L8)
        .unwrap();
    std::fs::write(path, out).unwrap();
}

fn write_rgb_jpeg(path: &Path, w: usize, h: usize, grey: &[u8]) {
    let rgb: Vec<u8> = grey.iter().flat_map(|&g| [g, g, g]).collect();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(&rgb, w as u32, h as u32, ExtendedColorType::Rgb8)
        .unwrap();
    std::fs::write(path, out).unwrap();
}

/// The same digit as a small dark-on-light PNG and a larger light-on-dark RGB JPEG.
fn two_sevens(dir: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.join("seven.png"), dir.join("seven-big.jpg"));
    write_png(&a, 48, 64, &render(&seven(48, 64), 48, true));
    write_rgb_jpeg(&b, 150, 200, &render(&seven(150, 200), 150, false));
    (a, b)
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn the_same_digit_in_any_file_gets_the_same_answers() {
    let dir = tmp("same");
    let (a, b) = two_sevens(&dir);
    let w = weights(&dir);
    // The same model twice: --weights repeats, and each answers under its own name.
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::copy(&w, run.join("model.safetensors")).unwrap();
    let out = digits(&[
        "predict",
        s(&a),
        s(&b),
        "--weights",
        s(&w),
        "--weights",
        s(&run),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let preds = v["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 2);
    assert_eq!(v["failed"].as_array().unwrap().len(), 0);
    assert_eq!(preds[1]["width"], 150);
    assert_eq!(preds[1]["height"], 200);
    for m in ["three-digits", "run"] {
        let top = |p: &serde_json::Value| {
            let answers = p["answers"].as_array().unwrap();
            let a = answers.iter().find(|a| a["model"] == m).unwrap();
            a["top"].as_array().unwrap().clone()
        };
        let (ta, tb) = (top(&preds[0]), top(&preds[1]));
        assert_eq!(ta.len(), 3);
        let probs: Vec<f64> = ta
            .iter()
            .map(|g| g["probability"].as_f64().unwrap())
            .collect();
        assert!(probs.windows(2).all(|p| p[0] >= p[1]), "{probs:?}");
        assert_eq!(ta[0]["digit"], 7, "model {m}: {ta:?}");
        assert_eq!(tb[0]["digit"], 7, "model {m}: {tb:?}");
        assert!(probs[0] > 0.8, "{probs:?}");
    }
    let names: Vec<&str> = preds[0]["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["model"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["three-digits", "run"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_inputs_get_one_line_each_and_the_rest_run() {
    let dir = tmp("bad");
    let (a, b) = two_sevens(&dir);
    let w = weights(&dir);
    let broken = dir.join("broken.png");
    std::fs::write(&broken, b"not an image at all").unwrap();
    let blank = dir.join("blank.png");
    write_png(&blank, 40, 30, &[200; 40 * 30]);
    let huge = dir.join("huge.png");
    std::fs::write(&huge, claimed_png(200_000, 200_000)).unwrap();
    let missing = dir.join("missing.jpg");
    let show = dir.join("show.png");
    let out = digits(&[
        "predict",
        s(&a),
        s(&broken),
        s(&blank),
        s(&huge),
        s(&missing),
        s(&b),
        "--weights",
        s(&w),
        "--show",
        s(&show),
    ]);
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with(s(&a)) && lines[0].contains("(48x64)"));
    assert!(lines[1].starts_with(s(&b)));
    assert!(lines.iter().all(|l| l.contains(": 7 ")), "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 5, "{stderr}");
    for (line, (file, why)) in errors.iter().zip([
        (&broken, "cannot read it as an image"),
        (&blank, "no ink found"),
        (&huge, "40 megapixel limit"),
        (&missing, "No such file"),
    ]) {
        assert!(line.contains(s(file)) && line.contains(why), "{line}");
    }
    assert!(errors[4].contains("4 of 6 inputs"), "{}", errors[4]);
    // The figure: a PNG with a row per predicted image.
    let png = std::fs::read(&show).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let img = image::load_from_memory(&png).unwrap();
    assert!(img.height() > 2 * 56 && img.width() > 2 * 56, "{img:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn folders_and_missing_default_runs() {
    let dir = tmp("folders");
    let (a, b) = two_sevens(&dir);
    let inputs = dir.join("in");
    std::fs::create_dir_all(inputs.join("sub")).unwrap();
    std::fs::rename(&a, inputs.join("sub/seven.png")).unwrap();
    std::fs::rename(&b, inputs.join("seven-big.jpg")).unwrap();
    let w = weights(&dir);
    let out = digits(&["predict", s(&inputs), "--weights", s(&w)]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.lines().next().unwrap().contains("seven-big.jpg"));

    let out = digits(&["predict", s(&inputs), "--runs", s(&dir.join("no-runs"))]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("mlp-seed0")
            && stderr.contains("digits study")
            && stderr.contains("--weights"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_folder_domain_warns_about_stray_folders_and_reads_mixed_files() {
    let dir = tmp("domain");
    let set = dir.join("set");
    for d in ["7", "1", "misc"] {
        std::fs::create_dir_all(set.join(d)).unwrap();
    }
    let (a, b) = two_sevens(&dir);
    std::fs::rename(&a, set.join("7/a.png")).unwrap();
    std::fs::rename(&b, set.join("7/b.jpg")).unwrap();
    write_png(&set.join("misc/x.png"), 4, 4, &[0; 16]);
    let bar: Vec<u8> = (0..30 * 50)
        .map(|i| {
            if (13..17).contains(&(i % 30)) && (10..40).contains(&(i / 30)) {
                30
            } else {
                220
            }
        })
        .collect();
    write_png(&set.join("1/bar.png"), 30, 50, &bar);
    let w = weights(&dir);
    // `--frame`, the option's older spelling, still means `--framing`.
    for (spec, flag) in [
        (format!("dir:{}", s(&set)), "--framing"),
        (format!("png:{}", s(&set)), "--frame"),
    ] {
        let out = digits(&[
            "eval",
            "--weights",
            s(&w),
            "--on",
            &spec,
            flag,
            "mnist-frame",
            "--json",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let warnings: Vec<&str> = stderr.lines().collect();
        assert_eq!(warnings.len(), 1, "{stderr}");
        assert!(
            warnings[0].starts_with("warning: ")
                && warnings[0].contains(s(&set.join("misc")))
                && warnings[0].contains("not a digit folder"),
            "{stderr}"
        );
        let v = json(&out);
        assert_eq!(v["n"], 3, "{v}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
