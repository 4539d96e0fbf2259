//! `digits bench`: how fast training and inference run here, against this machine's own
//! measured matrix-multiply peak, and where a training step's time goes.
//!
//! Absolute times on shared machines are noisy; the ratios printed beside them (achieved
//! GFLOP/s over the peak measured in the same run, shares of the step) are what to compare.

use std::time::Instant;

use dfdx::tensor::Cpu;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

use crate::data::Dataset;
use crate::eval::predict_probabilities;
use crate::models::gemm::{matmul, Layout};
use crate::models::{Arch, Classifier};
use crate::optim::{Adam, AdamConfig};
use crate::profile::{self, Phase};
use crate::train::{gather_batch, train_step};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub archs: Vec<Arch>,
    /// Training steps timed per model (after one warm-up step).
    pub steps: usize,
    pub batch_size: usize,
    pub inference_batch: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            archs: Arch::ALL.to_vec(),
            steps: 20,
            batch_size: 128,
            inference_batch: 1024,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Peak {
    /// Side of the square matrices that gave the best rate.
    pub n: usize,
    pub gflops: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Share {
    pub part: String,
    pub fraction: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelBench {
    pub model: String,
    pub batch_size: usize,
    /// Median seconds of one training step (forward, backward, Adam, batch assembly).
    pub step_seconds: f64,
    pub train_images_per_second: f64,
    /// Training time for one epoch of 60,000 images at that rate (no validation pass).
    pub seconds_per_epoch_60k: f64,
    /// Floating-point operations of one training step (2 per multiply-add, forward and backward).
    pub step_gflop: f64,
    pub achieved_gflops: f64,
    pub fraction_of_peak: f64,
    pub inference_images_per_second: f64,
    /// Where a training step's time goes.
    pub shares: Vec<Share>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub threads: usize,
    pub peak: Peak,
    pub models: Vec<ModelBench>,
}

/// The best single-precision GEMM rate among square sizes, measured now with the GEMM the
/// models use (the `gemm` crate, on all of rayon's threads).
pub fn measure_peak() -> Peak {
    let mut best = Peak { n: 0, gflops: 0.0 };
    for n in [512, 1024, 2048] {
        let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..n * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0.0f32; n * n];
        let reps = (2048 / n).pow(2).max(2);
        matmul(
            n,
            n,
            n,
            &a,
            Layout::Normal,
            &b,
            Layout::Normal,
            &mut c,
            false,
        );
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..reps {
                matmul(
                    n,
                    n,
                    n,
                    &a,
                    Layout::Normal,
                    &b,
                    Layout::Normal,
                    &mut c,
                    false,
                );
            }
            let gflops = 2.0 * (n * n * n * reps) as f64 / t.elapsed().as_secs_f64() / 1e9;
            if gflops > best.gflops {
                best = Peak { n, gflops };
            }
        }
    }
    best
}

/// Floating-point operations of one training step on `batch` images: each dense and
/// convolution layer does its forward product, the weight-gradient product and, except for the
/// first layer (whose input is the images), the input-gradient product.
pub fn training_flops(arch: Arch, batch: usize) -> f64 {
    let mut flops = 0.0;
    let mut first = true;
    for layer in arch.layers() {
        let Some(w) = layer.params.first() else {
            continue;
        };
        let macs_per_image = match w.shape.as_slice() {
            [o, c, kh, kw] => (o * c * kh * kw * layer.output[0] * layer.output[1]) as f64,
            [o, i] => (o * i) as f64,
            _ => continue,
        };
        let products = if first { 2.0 } else { 3.0 };
        flops += 2.0 * macs_per_image * batch as f64 * products;
        first = false;
    }
    flops
}

fn random_batch(n: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let images = (0..n * 784).map(|_| rng.gen_range(0.0..1.0)).collect();
    let labels = (0..n).map(|_| rng.gen_range(0..10)).collect();
    Dataset::new("bench", images, labels, 28, 28, "random").expect("valid synthetic data")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Time training steps and inference of one published model on random images.
pub fn bench_model(arch: Arch, cfg: &BenchConfig, peak: &Peak) -> ModelBench {
    crate::runtime::keep_freed_memory();
    let dev = Cpu::default();
    let weights = arch.init(0);
    let mut model = arch
        .build(&dev, &weights, arch.default_dropout())
        .expect("fresh weights fit");
    let mut adam = Adam::new(AdamConfig::keras(1e-3), &weights);
    let data = random_batch(cfg.batch_size * 4, 1);
    let px = data.pixels();
    let mut images = vec![0.0f32; cfg.batch_size * px];
    let mut step = |s: usize, model: &mut Box<dyn Classifier>| {
        let idx: Vec<usize> = (0..cfg.batch_size)
            .map(|j| (s * cfg.batch_size + j) % data.len())
            .collect();
        let onehot = gather_batch(&data, &idx, &mut images);
        let labels: Vec<u8> = idx.iter().map(|&i| data.labels[i]).collect();
        train_step(
            model.as_mut(),
            &dev,
            &mut adam,
            &images,
            onehot,
            &labels,
            s as u64,
        );
    };
    step(0, &mut model);
    profile::enable(true);
    let mut times = Vec::with_capacity(cfg.steps);
    let total = Instant::now();
    for s in 1..=cfg.steps {
        let t = Instant::now();
        step(s, &mut model);
        times.push(t.elapsed().as_secs_f64());
    }
    let total = total.elapsed().as_secs_f64();
    let phases = profile::totals();
    profile::enable(false);

    let counted: f64 = phases.iter().map(|(_, s)| s).sum();
    let mut shares: Vec<Share> = phases
        .iter()
        .filter(|(p, s)| *s > 0.0 || *p == Phase::Augmentation)
        .map(|(p, s)| Share {
            part: p.name().into(),
            fraction: s / total,
        })
        .collect();
    shares.push(Share {
        part: "loss and the rest (dfdx, bookkeeping)".into(),
        fraction: ((total - counted) / total).max(0.0),
    });

    let step_seconds = median(times);
    let step_gflop = training_flops(arch, cfg.batch_size) / 1e9;
    let achieved = step_gflop / step_seconds;

    let infer = random_batch(cfg.inference_batch, 2);
    predict_probabilities(model.as_ref(), &dev, &infer);
    let reps = 3;
    let t = Instant::now();
    for _ in 0..reps {
        predict_probabilities(model.as_ref(), &dev, &infer);
    }
    let inference_images_per_second = (reps * infer.len()) as f64 / t.elapsed().as_secs_f64();

    ModelBench {
        model: arch.to_string(),
        batch_size: cfg.batch_size,
        step_seconds,
        train_images_per_second: cfg.batch_size as f64 / step_seconds,
        seconds_per_epoch_60k: 60_000.0 / cfg.batch_size as f64 * step_seconds,
        step_gflop,
        achieved_gflops: achieved,
        fraction_of_peak: achieved / peak.gflops,
        inference_images_per_second,
        shares,
    }
}

pub fn run(cfg: &BenchConfig) -> BenchReport {
    let peak = measure_peak();
    let models = cfg
        .archs
        .iter()
        .map(|&a| bench_model(a, cfg, &peak))
        .collect();
    BenchReport {
        threads: rayon::current_num_threads(),
        peak,
        models,
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} threads; single-precision GEMM peak measured now: {:.1} GFLOP/s ({}x{} matrices)",
            self.threads, self.peak.gflops, self.peak.n, self.peak.n
        )?;
        for m in &self.models {
            writeln!(
                f,
                "\n{}: training step (batch {}) {:.1} ms = {:.0} images/s = {:.1} s per epoch of 60,000",
                m.model,
                m.batch_size,
                m.step_seconds * 1e3,
                m.train_images_per_second,
                m.seconds_per_epoch_60k
            )?;
            writeln!(
                f,
                "  {:.2} GFLOP per step, {:.1} GFLOP/s achieved = {:.0}% of peak",
                m.step_gflop,
                m.achieved_gflops,
                100.0 * m.fraction_of_peak
            )?;
            writeln!(
                f,
                "  inference: {:.0} images/s",
                m.inference_images_per_second
            )?;
            writeln!(f, "  where a training step's time goes:")?;
            for s in &m.shares {
                writeln!(f, "    {:<30} {:5.1}%", s.part, 100.0 * s.fraction)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_flops_count_each_product_of_each_layer() {
        // MLP: 784·224 + 224·288 + 288·10 multiply-adds per image forward; the first layer has
        // no input gradient.
        let fwd = (784 * 224 + 224 * 288 + 288 * 10) as f64;
        let want = 2.0 * (3.0 * fwd - 784.0 * 224.0);
        assert_eq!(training_flops(Arch::Mlp, 1), want);
        // CNN conv 2: 192·32·9·14·14 multiply-adds per image, three products.
        let conv2 = (192 * 32 * 9 * 14 * 14) as f64;
        assert!(training_flops(Arch::Cnn, 1) > 2.0 * 3.0 * conv2);
    }
}
