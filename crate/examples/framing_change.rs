//! How much finding the ink on paper changes `mnist-frame` on the benchmark sets, which were
//! cleaned before publication: per domain, the share of images whose 28×28 framing differs
//! from MNIST's crop alone ([`crop_to_frame`]), the mean absolute difference per pixel over
//! all images and over the changed ones, and the largest.
//!
//! With run folders as arguments, also each run's accuracy on every domain framed both ways.
//!
//! `cargo run --release --example framing_change [RUN...]` (data from `DIGITS_DATA_DIR`, or
//! `data/`).

use std::path::PathBuf;

use digits::data::frame::{crop_to_frame, frame_image, Framing};
use digits::data::pixels::mean_abs_difference;
use digits::data::{load_raw, to_mnist_frame, Dataset};
use digits::eval::evaluate;
use digits::train::run::load_model;

fn main() -> digits::Result<()> {
    let dir = PathBuf::from(std::env::var("DIGITS_DATA_DIR").unwrap_or_else(|_| "data".into()));
    let runs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let models = runs
        .iter()
        .map(|r| load_model(r))
        .collect::<digits::Result<Vec<_>>>()?;
    let mut accuracy = String::new();
    println!(
        "| domain | images | changed | mean abs diff, all | mean abs diff, changed | largest |"
    );
    println!("|---|---|---|---|---|---|");
    for name in ["usps-test", "usps-esl-all", "semeion", "mfeat", "optdigits"] {
        let ds = load_raw(name, &dir)?;
        let (mut changed, mut total, mut total_changed, mut largest) =
            (0usize, 0.0f64, 0.0f64, 0.0f64);
        for i in 0..ds.len() {
            let img = ds.image(i);
            let old = crop_to_frame(img, ds.width);
            let new = frame_image(img, ds.width, ds.height, Framing::MnistFrame);
            let d = f64::from(mean_abs_difference(&old, &new));
            total += d;
            if d > 0.0 {
                changed += 1;
                total_changed += d;
            }
            largest = largest.max(d);
        }
        println!(
            "| {name} | {} | {} ({:.2}%) | {:.2e} | {:.2e} | {:.3} |",
            ds.len(),
            changed,
            100.0 * changed as f64 / ds.len() as f64,
            total / ds.len() as f64,
            if changed > 0 {
                total_changed / changed as f64
            } else {
                0.0
            },
            largest
        );
        if models.is_empty() {
            continue;
        }
        let old: Vec<f32> = (0..ds.len())
            .flat_map(|i| crop_to_frame(ds.image(i), ds.width))
            .collect();
        let old = Dataset::new("old", old, ds.labels.clone(), 28, 28, "")?;
        let new = to_mnist_frame(&ds, Framing::MnistFrame);
        for (run, (arch, weights)) in runs.iter().zip(&models) {
            let (a, b) = (
                evaluate(*arch, weights, &old)?.accuracy,
                evaluate(*arch, weights, &new)?.accuracy,
            );
            accuracy += &format!(
                "| {} | {name} | {:.2}% | {:.2}% |\n",
                run.display(),
                100.0 * a,
                100.0 * b
            );
        }
    }
    if !accuracy.is_empty() {
        println!(
            "\n| run | domain | crop alone | ink found first |\n|---|---|---|---|\n{accuracy}"
        );
    }
    Ok(())
}
