//! How much finding the ink on paper changes `mnist-frame` on the benchmark sets, which were
//! cleaned before publication: per domain, the share of images whose 28×28 framing differs
//! from MNIST's crop alone ([`crop_to_frame`]), the mean absolute difference per pixel over
//! all images and over the changed ones, and the largest.
//!
//! `cargo run --release --example framing_change` (data from `DIGITS_DATA_DIR`, or `data/`).

use std::path::PathBuf;

use digits::data::frame::{crop_to_frame, frame_image, Framing};
use digits::data::load_raw;

fn main() -> digits::Result<()> {
    let dir = PathBuf::from(std::env::var("DIGITS_DATA_DIR").unwrap_or_else(|_| "data".into()));
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
            let d = old
                .iter()
                .zip(&new)
                .map(|(a, b)| (a - b).abs() as f64)
                .sum::<f64>()
                / 784.0;
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
    }
    Ok(())
}
