//! Small synthetic 28×28 digit sets for tests, benchmarks and quick notebook demonstrations:
//! no files needed, and the task is known to be learnable (or, on request, not).

use rand::{rngs::StdRng, Rng, SeedableRng};

use super::dataset::Dataset;

/// `n` images whose class is drawn as a bright 6×6 block at a class-specific place, on
/// uniform noise in [0, 0.3]. With `random_labels`, the labels are drawn independently of the
/// images: a set nothing can generalise to (used to make validation loss rise on purpose).
pub fn blocks(n: usize, seed: u64, random_labels: bool) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut images = vec![0.0f32; n * 784];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = rng.gen_range(0..10u8);
        let (r0, c0) = (3 + (label as usize / 5) * 12, 1 + (label as usize % 5) * 5);
        for r in 0..6 {
            for c in 0..6 {
                images[i * 784 + (r0 + r) * 28 + c0 + c] = 1.0;
            }
        }
        for p in &mut images[i * 784..(i + 1) * 784] {
            *p = (*p + rng.gen_range(0.0..0.3f32)).min(1.0);
        }
        labels.push(if random_labels {
            rng.gen_range(0..10)
        } else {
            label
        });
    }
    let source = format!("synthetic:blocks(n={n},seed={seed},random_labels={random_labels})");
    Dataset::new(format!("synthetic-{seed}"), images, labels, 28, 28, source)
        .expect("synthetic images are valid")
}

/// A 28×28 "1": a vertical bar with grey edges, centred as MNIST centres digits (the digit the
/// framing and rendering tests draw).
pub fn one() -> Vec<f32> {
    let mut d = vec![0.0f32; 784];
    for y in 4..24 {
        d[y * 28 + 13] = 1.0;
        d[y * 28 + 14] = 1.0;
        d[y * 28 + 12] = 0.4;
        d[y * 28 + 15] = 0.4;
    }
    d
}
