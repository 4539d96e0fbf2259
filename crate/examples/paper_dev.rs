//! How well the framer recovers MNIST's digits from the development family of paper
//! renderings (`mnist-paper-dev`), the only family it may be tuned on: the share of images
//! in which ink is found, and the mean absolute difference per pixel between each framed
//! rendering and the original digit framed the same way (the answer key), with the share of
//! images within 0.05 and 0.10 of it. The held-out family (`mnist-paper`) is never measured
//! against its answer key.
//! A model's accuracy on either family is `digits eval --weights RUN --on SPEC --framing F`.
//!
//! `cargo run --release --example paper_dev [RUN...]` (MNIST from `DIGITS_DATA_DIR`, or
//! `data/`).

use std::path::PathBuf;

use digits::data::frame::{frame_image, Framing};
use digits::data::load_raw_set;
use digits::data::pixels::mean_abs_difference;

fn main() -> digits::Result<()> {
    let dir = PathBuf::from(std::env::var("DIGITS_DATA_DIR").unwrap_or_else(|_| "data".into()));
    let spec = "mnist-paper-dev";
    let raw = load_raw_set(spec, &dir)?;
    let mnist = digits::data::load_mnist(&dir, digits::data::Split::Test)?;
    let (mut found, mut total, mut within_05, mut within_10) = (0usize, 0.0f64, 0usize, 0usize);
    for (i, image) in raw.images.iter().enumerate() {
        let original = frame_image(mnist.image(i), 28, 28, Framing::MnistFrame);
        let framed = image.frame(Framing::MnistFrame);
        found += usize::from(framed.is_some());
        let framed = framed.unwrap_or_else(|| vec![0.0; 784]);
        let diff = f64::from(mean_abs_difference(&framed, &original));
        total += diff;
        within_05 += usize::from(diff < 0.05);
        within_10 += usize::from(diff < 0.10);
    }
    let n = raw.len() as f64;
    println!("{spec}: {} images", raw.len());
    println!("ink found: {:.2}%", 100.0 * found as f64 / n);
    println!(
        "mean |framed - original framed| per pixel: {:.4}",
        total / n
    );
    println!("within 0.05: {:.2}%", 100.0 * within_05 as f64 / n);
    println!("within 0.10: {:.2}%", 100.0 * within_10 as f64 / n);
    Ok(())
}
