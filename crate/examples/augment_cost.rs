//! What augmentation adds to a training step: milliseconds to augment one batch of 128
//! images with each preset, on all of rayon's threads and on one.
//!
//! `cargo run --example augment_cost [-- DATA_DIR]` uses MNIST's first training images when
//! DATA_DIR (default `data`, or DIGITS_DATA_DIR) holds them, else synthetic rings; the cost
//! hardly depends on the content.
use std::path::PathBuf;
use std::time::Instant;

use digits::augment::{augment_batch, AugmentSpec, PRESETS};
use digits::data::{load_mnist, Split};

const BATCH: usize = 128;
const SIDE: usize = 28;

fn batch() -> (Vec<f32>, &'static str) {
    let dir = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DIGITS_DATA_DIR").ok())
        .map_or_else(|| PathBuf::from("data"), PathBuf::from);
    match load_mnist(&dir, Split::Train) {
        Ok(ds) => (ds.images[..BATCH * SIDE * SIDE].to_vec(), "MNIST"),
        Err(_) => {
            let ring = (0..SIDE * SIDE).map(|p| {
                let (dx, dy) = ((p % SIDE) as f32 - 14.0, (p / SIDE) as f32 - 14.0);
                (1.5 - ((dx * dx / 25.0 + dy * dy / 49.0).sqrt() - 1.0).abs() * 6.0).clamp(0.0, 1.0)
            });
            (
                ring.cycle().take(BATCH * SIDE * SIDE).collect(),
                "synthetic",
            )
        }
    }
}

/// Milliseconds per batch, the median of `reps` runs with fresh seeds (as training has).
fn ms_per_batch(images: &[f32], spec: &AugmentSpec, reps: usize) -> f64 {
    let mut times: Vec<f64> = (0..reps as u64)
        .map(|seed| {
            let mut b = images.to_vec();
            let t = Instant::now();
            augment_batch(&mut b, SIDE, spec, seed);
            std::hint::black_box(&b);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}

fn main() {
    let (images, source) = batch();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    println!(
        "augment_batch on {BATCH} {source} images ({} rayon threads); for scale, a training step on this machine took ~3.5 ms (MLP) and ~130 ms (CNN)",
        rayon::current_num_threads()
    );
    println!(
        "{:<10} {:<58} {:>9} {:>9}",
        "preset", "spec", "all ms", "1-thr ms"
    );
    for (name, _) in PRESETS {
        let spec = AugmentSpec::preset(name).expect("a preset");
        let all = ms_per_batch(&images, &spec, 41);
        let single = one.install(|| ms_per_batch(&images, &spec, 21));
        println!(
            "{name:<10} {:<58} {all:>9.2} {single:>9.2}",
            spec.to_string()
        );
    }
}
