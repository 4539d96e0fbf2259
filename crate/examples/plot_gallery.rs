//! Writes one of each figure, drawn from synthetic inputs, into the folder given as the only
//! argument, so that a person can look at them:
//!
//! ```text
//! cargo run --example plot_gallery -- /tmp/gallery
//! ```

use std::f32::consts::PI;
use std::path::{Path, PathBuf};

use digits::plot::{self, Figure, Metric};
use digits::train::history::EpochRecord;
use plotters::prelude::*;

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: plot_gallery FOLDER");
        std::process::exit(2);
    };
    if let Err(e) = run(&dir) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(dir: &Path) -> digits::Result<()> {
    training_curve_figures(dir)?;
    save(
        dir,
        "confusion_usps.png",
        plot::confusion_matrix(&confusion(), "CNN on USPS (mnist-frame)")?,
    )?;
    digit_grid_figures(dir)?;
    weight_figures(dir)?;
    accuracy_by_domain_figure(dir)?;
    rotation_figure(dir)?;
    reliability_figure(dir)
}

/// Writes `fig` as `name` in `dir`, and its SVG beside it where it has one, and says so.
fn save(dir: &Path, name: &str, fig: Figure) -> digits::Result<()> {
    let path = dir.join(name);
    fig.save(&path)?;
    if let Some(svg) = &fig.svg {
        digits::io::write_atomic(&path.with_extension("svg"), svg.as_bytes())?;
    }
    println!("{} ({}x{})", path.display(), fig.width, fig.height);
    Ok(())
}

/// Each model's accuracy and loss curves, then both models' accuracy on one figure.
fn training_curve_figures(dir: &Path) -> digits::Result<()> {
    let mlp = history(20, 0.975, 0.9);
    let cnn = history(12, 0.992, 0.6);
    for metric in [Metric::Accuracy, Metric::Loss] {
        save(
            dir,
            &plot::training_curves_file("mlp", metric),
            plot::training_curves(&[("MLP", &mlp)], metric)?,
        )?;
        save(
            dir,
            &plot::training_curves_file("cnn", metric),
            plot::training_curves(&[("CNN", &cnn)], metric)?,
        )?;
    }
    save(
        dir,
        "both_model_accuracy.png",
        plot::training_curves(&[("MLP", &mlp), ("CNN", &cnn)], Metric::Accuracy)?,
    )
}

/// Grids of digits: labelled with their digit, and captioned as mistakes.
fn digit_grid_figures(dir: &Path) -> digits::Result<()> {
    let (images, labels) = glyph_digits()?;
    save(
        dir,
        "digits.png",
        plot::digit_grid(&images, 28, 28, &labels, 10, "Synthetic digits")?,
    )?;
    let mistakes: Vec<String> = (0..10)
        .map(|d| format!("true {d} → {} (0.{})", (d + 3) % 10, 99 - d * 4))
        .collect();
    save(
        dir,
        "mistakes.png",
        plot::digit_grid(&images, 28, 28, &mistakes, 5, "Most confident mistakes")?,
    )
}

/// Weights drawn as images: the MLP's first layer and the CNN's filters.
fn weight_figures(dir: &Path) -> digits::Result<()> {
    save(
        dir,
        "mlp_dense_1_weights.png",
        plot::weight_images(
            &dense_weights(16),
            16,
            28,
            28,
            8,
            "MLP first layer (dense_1)",
        )?,
    )?;
    save(
        dir,
        "cnn_conv2d_filters.png",
        plot::weight_images(&filters(32), 32, 3, 3, 8, "CNN conv2d filters")?,
    )
}

/// A bar chart with error bars: both models' accuracy on each domain.
fn accuracy_by_domain_figure(dir: &Path) -> digits::Result<()> {
    let domains = [
        "MNIST",
        "USPS (mnist-frame)",
        "USPS (resize)",
        "Semeion",
        "Optdigits",
    ];
    let series = [
        ("MLP", vec![0.981, 0.612, 0.498, 0.703, 0.655]),
        ("CNN", vec![0.992, 0.781, 0.640, 0.842, 0.790]),
    ];
    let errors = [
        vec![0.003, 0.010, 0.011, 0.022, 0.015],
        vec![0.002, 0.009, 0.011, 0.018, 0.013],
    ];
    save(
        dir,
        "accuracy_by_domain.png",
        plot::bar_chart(
            &domains,
            &series,
            Some(&errors),
            "Accuracy by domain (95% interval)",
            "accuracy",
        )?,
    )
}

/// A line chart with bands: accuracy falling off as digits are rotated.
fn rotation_figure(dir: &Path) -> digits::Result<()> {
    let angles: Vec<f64> = (-6..=6).map(|k| k as f64 * 7.5).collect();
    let curve = |width: f64, top: f64| -> Vec<f64> {
        angles
            .iter()
            .map(|a| 0.1 + (top - 0.1) * (-(a / width).powi(2)).exp())
            .collect()
    };
    let band = |y: &[f64], w: f64| Some(y.iter().map(|v| (v - w, v + w)).collect());
    let (cnn_rot, mlp_rot) = (curve(38.0, 0.99), curve(30.0, 0.98));
    let series = [
        ("CNN", cnn_rot.clone(), band(&cnn_rot, 0.02)),
        ("MLP", mlp_rot.clone(), band(&mlp_rot, 0.03)),
    ];
    save(
        dir,
        "accuracy_vs_rotation.png",
        plot::line_chart(
            &angles,
            &series,
            "Accuracy under rotation (band: min–max over 5 seeds)",
            "rotation (degrees)",
            "accuracy",
        )?,
    )
}

/// A reliability diagram: an over-confident model against perfect calibration.
fn reliability_figure(dir: &Path) -> digits::Result<()> {
    let bins: Vec<f64> = (0..10).map(|b| 0.05 + b as f64 * 0.1).collect();
    let series = [
        ("perfect calibration", bins.clone(), None),
        (
            "CNN on USPS",
            bins.iter().map(|c| c * c * 0.9 + 0.05).collect(),
            None,
        ),
    ];
    save(
        dir,
        "reliability_usps.png",
        plot::line_chart(
            &bins,
            &series,
            "Reliability on USPS",
            "confidence",
            "accuracy",
        )?,
    )
}

/// Curves shaped like Keras logs: fast rise, then a plateau; validation a little noisy.
fn history(epochs: usize, top: f64, speed: f64) -> Vec<EpochRecord> {
    (1..=epochs)
        .map(|e| {
            let t = 1.0 - (-(e as f64) * speed).exp();
            let wobble = 0.002 * ((e * 7) as f64).sin();
            EpochRecord {
                epoch: e,
                train_accuracy: 0.80 + (top - 0.80) * t,
                val_accuracy: 0.85 + (top - 0.85) * t - 0.003 + wobble,
                train_loss: 0.65 * (1.0 - t) + 0.03,
                val_loss: 0.45 * (1.0 - t) + 0.045 + 2.0 * wobble,
                seconds: 10.0,
            }
        })
        .collect()
}

fn confusion() -> [[u32; 10]; 10] {
    let mut m = [[0u32; 10]; 10];
    let sizes = [359, 264, 198, 166, 200, 160, 170, 147, 166, 177];
    for (t, row) in m.iter_mut().enumerate() {
        let wrong = sizes[t] / (3 + t as u32 % 4);
        row[t] = sizes[t] - wrong;
        row[(t + 3) % 10] += wrong * 2 / 3;
        row[(t + 7) % 10] += wrong - wrong * 2 / 3;
    }
    m
}

/// The digits 0–9 drawn with the figure font into 28×28 frames, ink bright as in MNIST.
fn glyph_digits() -> digits::Result<(Vec<f32>, Vec<String>)> {
    plot::font::ensure()?;
    let mut images = Vec::new();
    for d in 0..10 {
        let mut rgb = vec![0u8; 28 * 28 * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (28, 28)).into_drawing_area();
            let style = ("sans-serif", 26).into_font().color(&WHITE).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ),
            );
            // plotters' ab_glyph text sits about 0.22 em above its anchor (see plot::draw_text).
            root.draw(&Text::new(d.to_string(), (14, 20), style))
                .expect("in memory");
            root.present().expect("in memory");
        }
        images.extend(rgb.chunks(3).map(|p| p[0] as f32 / 255.0));
    }
    Ok((images, (0..10).map(|d| d.to_string()).collect()))
}

/// Oriented stripes under a Gaussian envelope, like first-layer weights after training.
fn dense_weights(n: usize) -> Vec<f32> {
    let mut w = Vec::with_capacity(n * 784);
    for k in 0..n {
        let angle = k as f32 * PI / n as f32;
        let (cx, cy) = (10.0 + (k % 4) as f32 * 2.5, 10.0 + (k / 4) as f32 * 2.0);
        let scale = 0.02 + 0.01 * (k % 3) as f32;
        for y in 0..28 {
            for x in 0..28 {
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                let u = dx * angle.cos() + dy * angle.sin();
                let env = (-(dx * dx + dy * dy) / 60.0).exp();
                w.push(scale * env * (u * 0.7).sin());
            }
        }
    }
    w
}

fn filters(n: usize) -> Vec<f32> {
    (0..n * 9)
        .map(|i| (i as f32 * 1.7).sin() * 0.4 + (i as f32 * 0.31).cos() * 0.2)
        .collect()
}
