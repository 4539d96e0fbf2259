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
use crate::engine::gemm::{self, matmul, Layout};
use crate::engine::infer::INFER_BATCH;
use crate::engine::profile::{self, Phase, WinogradStep};
use crate::eval::predict_probabilities;
use crate::models::{model_net, Arch, Classifier, ConvAlgo};
use crate::runtime;
use crate::train::optim::{Adam, AdamConfig};
use crate::train::{beside, gather_batch, train_step};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub archs: Vec<Arch>,
    /// Convolution algorithms to measure each model with a convolution under.
    pub convs: Vec<ConvAlgo>,
    /// Fewest training steps timed per model (after one warm-up step); more are timed when
    /// these would take under a second.
    pub steps: usize,
    pub batch_size: usize,
    pub inference_batch: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            archs: Arch::ALL.to_vec(),
            convs: vec![ConvAlgo::Im2col, ConvAlgo::Winograd],
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

/// The best single-precision GEMM rate among square sizes, measured now with `product`
/// (`c = a·b`, square `n`) on all of rayon's threads.
fn measure_peak_of(product: impl Fn(usize, &[f32], &[f32], &mut [f32])) -> Peak {
    let mut best = Peak { n: 0, gflops: 0.0 };
    for n in [512, 1024, 2048] {
        let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..n * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0.0f32; n * n];
        let reps = (2048 / n).pow(2).max(2);
        product(n, &a, &b, &mut c);
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..reps {
                product(n, &a, &b, &mut c);
            }
            let gflops = 2.0 * (n * n * n * reps) as f64 / t.elapsed().as_secs_f64() / 1e9;
            if gflops > best.gflops {
                best = Peak { n, gflops };
            }
        }
    }
    best
}

/// The peak of the GEMM the models use, measured now.
pub fn measure_peak() -> Peak {
    measure_peak_of(|n, a, b, c| matmul(n, n, n, a, Layout::Normal, b, Layout::Normal, c, false))
}

#[derive(Clone, Debug, Serialize)]
pub struct Share {
    pub part: String,
    pub fraction: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepTime {
    pub step: String,
    pub ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelBench {
    pub model: String,
    /// The convolution algorithm, for a model with convolutions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conv: Option<ConvAlgo>,
    pub batch_size: usize,
    /// Median seconds of one training step (forward, backward, Adam, batch assembly).
    pub step_seconds: f64,
    pub train_images_per_second: f64,
    /// Training time for one epoch of 60,000 images at that rate (no validation pass).
    pub seconds_per_epoch_60k: f64,
    /// Floating-point operations of one training step (2 per multiply-add, forward and backward),
    /// counted as the direct convolution does them: Winograd does fewer, so its achieved rate
    /// is an effective one, comparable across algorithms.
    pub step_gflop: f64,
    pub achieved_gflops: f64,
    pub fraction_of_peak: f64,
    /// Images per second of the forward-only pass (no tape), [`INFER_BATCH`] images a call.
    pub inference_images_per_second: f64,
    /// Each layer of the forward-only pass and the kernel that computes it.
    pub inference_kernels: Vec<String>,
    /// Where a training step's time goes.
    pub shares: Vec<Share>,
    /// Milliseconds a training step spends in each step of its Winograd convolutions (none
    /// when it has none): the part of the convolution share the engine times step by step.
    pub winograd_step_ms: Vec<StepTime>,
    /// Median seconds of a training step whose batches are augmented with the original's
    /// preset (`keras`), each prepared beside the previous step, as training does.
    pub keras_augmented_step_seconds: f64,
    /// What augmenting adds, as a share of such a step: (augmented − plain) / augmented.
    pub keras_augmentation_share: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub threads: usize,
    /// The GEMM and the kernels the models ran on (see [`gemm::backend_name`]).
    pub engine: String,
    /// The GEMM's peak measured in the same run: what each model's achieved rate is a
    /// fraction of.
    pub peak: Peak,
    /// Median seconds to augment one batch with the `keras` preset (rotation, shift, zoom).
    pub keras_augmentation_seconds: f64,
    pub models: Vec<ModelBench>,
    /// The most memory the run held resident at once, in megabytes (10⁶ bytes), where the
    /// system reports it: training, inference and the GEMM peak's matrices together.
    pub peak_resident_mb: Option<f64>,
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

/// Median seconds to augment a batch of `batch` images with the original's preset.
pub fn keras_augmentation_seconds(batch: usize) -> f64 {
    let spec = crate::augment::AugmentSpec::preset("keras").expect("the keras preset exists");
    let images = random_batch(batch, 3).images;
    let times: Vec<f64> = (0..15u64)
        .map(|seed| {
            let mut b = images.clone();
            let t = Instant::now();
            crate::augment::augment_batch(&mut b, 28, &spec, seed);
            std::hint::black_box(&b);
            t.elapsed().as_secs_f64()
        })
        .collect();
    median(times)
}

/// What a timed run of training steps gives: each step's seconds, the run's total seconds, and
/// the profiled phases' seconds.
struct TimedSteps {
    times: Vec<f64>,
    total: f64,
    phases: Vec<(Phase, f64)>,
    winograd_steps: Vec<(WinogradStep, f64)>,
}

/// A model being benchmarked, with its optimiser and the random data its batches come from.
struct Bench<'a> {
    cfg: &'a BenchConfig,
    dev: Cpu,
    model: Box<dyn Classifier>,
    adam: Adam,
    data: Dataset,
}

impl<'a> Bench<'a> {
    /// `arch` with fresh weights, its convolutions computed with `conv`.
    fn new(arch: Arch, conv: ConvAlgo, cfg: &'a BenchConfig) -> Self {
        let dev = Cpu::default();
        let weights = arch.init(0);
        let mut model = arch
            .build(&dev, &weights, arch.default_dropout())
            .expect("fresh weights fit");
        model.set_conv(conv);
        Bench {
            cfg,
            dev,
            model,
            adam: Adam::new(AdamConfig::keras(1e-3), &weights),
            data: random_batch(cfg.batch_size * 4, 1),
        }
    }

    /// Batch `s` into `buf`: its one-hot targets and labels.
    fn batch(&self, s: usize, buf: &mut [f32]) -> (Vec<f32>, Vec<u8>) {
        batch_of(self.cfg, &self.data, s, buf)
    }

    /// One training step on `images` (batch `s`'s targets given).
    fn step(&mut self, s: usize, images: &[f32], onehot: Vec<f32>, labels: &[u8]) {
        train_step(
            self.model.as_mut(),
            &self.dev,
            &mut self.adam,
            images,
            onehot,
            labels,
            s as u64,
        );
    }

    fn image_buffer(&self) -> Vec<f32> {
        vec![0.0f32; self.cfg.batch_size * self.data.pixels()]
    }

    /// One warm-up step, then at least `cfg.steps` timed steps and at least about a second of
    /// them (a millisecond-long MLP step needs hundreds for a median that the machine's noise
    /// does not move), profiled.
    fn time_steps(&mut self) -> TimedSteps {
        let mut images = self.image_buffer();
        let mut run = |bench: &mut Self, s: usize| {
            let (onehot, labels) = bench.batch(s, &mut images);
            bench.step(s, &images, onehot, &labels);
        };
        let warm_up = Instant::now();
        run(self, 0);
        let steps = self
            .cfg
            .steps
            .max((1.0 / warm_up.elapsed().as_secs_f64().max(1e-4)).ceil() as usize)
            .min(2000);
        profile::enable(true);
        profile::step_totals();
        let mut times = Vec::with_capacity(steps);
        let total = Instant::now();
        for s in 1..=steps {
            let t = Instant::now();
            run(self, s);
            times.push(t.elapsed().as_secs_f64());
        }
        let total = total.elapsed().as_secs_f64();
        let phases = profile::totals();
        let winograd_steps = profile::step_totals();
        profile::enable(false);
        TimedSteps {
            times,
            total,
            phases,
            winograd_steps,
        }
    }

    /// Median seconds of `steps` steps whose batches are augmented by the original's preset,
    /// each batch prepared beside the previous step, as `train` does:
    /// what augmenting really adds to a step, rather than its time alone.
    fn median_augmented_step(&mut self, steps: usize) -> f64 {
        let spec = crate::augment::AugmentSpec::preset("keras").expect("the keras preset exists");
        let prepare = |cfg: &BenchConfig, data: &Dataset, s: usize, buf: &mut [f32]| {
            let targets = batch_of(cfg, data, s, buf);
            crate::augment::augment_batch(buf, 28, &spec, s as u64);
            targets
        };
        let (mut images, mut next_images) = (self.image_buffer(), self.image_buffer());
        let mut current = prepare(self.cfg, &self.data, 0, &mut images);
        let mut times = Vec::with_capacity(steps);
        // The step borrows the model and optimiser, the preparation the data: apart.
        let Bench {
            cfg,
            dev,
            model,
            adam,
            data,
        } = self;
        for s in 1..=steps {
            let t = Instant::now();
            let (onehot, labels) = current;
            let buf = &mut next_images;
            (_, current) = beside(
                || {
                    train_step(
                        model.as_mut(),
                        dev,
                        adam,
                        &images,
                        onehot,
                        &labels,
                        s as u64,
                    )
                },
                || prepare(cfg, data, s, buf),
            );
            std::mem::swap(&mut images, &mut next_images);
            times.push(t.elapsed().as_secs_f64());
        }
        median(times)
    }
}

/// Batch `s` of `data` (batches of `cfg.batch_size`, wrapping around) into `buf`: its one-hot
/// targets and labels.
fn batch_of(cfg: &BenchConfig, data: &Dataset, s: usize, buf: &mut [f32]) -> (Vec<f32>, Vec<u8>) {
    let idx: Vec<usize> = (0..cfg.batch_size)
        .map(|j| (s * cfg.batch_size + j) % data.len())
        .collect();
    let onehot = gather_batch(data, &idx, buf);
    let labels: Vec<u8> = idx.iter().map(|&i| data.labels[i]).collect();
    (onehot, labels)
}

/// Each profiled phase's share of `run`'s total time, and the rest (what no phase counted).
fn step_shares(run: &TimedSteps) -> Vec<Share> {
    let counted: f64 = run.phases.iter().map(|(_, s)| s).sum();
    let mut shares: Vec<Share> = run
        .phases
        .iter()
        .filter(|(p, s)| *s > 0.0 || *p == Phase::Augmentation)
        .map(|(p, s)| Share {
            part: p.name().into(),
            fraction: s / run.total,
        })
        .collect();
    shares.push(Share {
        part: "loss and the rest (dfdx, bookkeeping)".into(),
        fraction: ((run.total - counted) / run.total).max(0.0),
    });
    shares
}

/// Milliseconds a step of `run` spent in each Winograd step that it ran.
fn winograd_step_ms(run: &TimedSteps) -> Vec<StepTime> {
    let steps = run.times.len() as f64;
    run.winograd_steps
        .iter()
        .filter(|(_, s)| *s > 0.0)
        .map(|(step, s)| StepTime {
            step: step.name().into(),
            ms: s / steps * 1e3,
        })
        .collect()
}

/// Images per second of the forward-only pass ([`crate::engine::infer`]) of `model` over
/// `images` random images, after one warm-up pass; and the kernels each layer ran on.
fn time_inference(
    arch: Arch,
    model: &dyn Classifier,
    conv: ConvAlgo,
    images: usize,
) -> (f64, Vec<String>) {
    let net = model_net(arch, model, conv).expect("a built model's weights fit its layout");
    let infer = random_batch(images, 2);
    predict_probabilities(&net, &infer);
    let reps = 3;
    let t = Instant::now();
    for _ in 0..reps {
        predict_probabilities(&net, &infer);
    }
    let rate = (reps * infer.len()) as f64 / t.elapsed().as_secs_f64();
    (rate, net.kernels())
}

/// Time training steps and inference of one model on random images.
pub fn bench_model(arch: Arch, conv: ConvAlgo, cfg: &BenchConfig, peak: &Peak) -> ModelBench {
    // Where training and inference run their steps (see `runtime::on_pool`).
    crate::runtime::on_pool(|| measure_model(arch, conv, cfg, peak))
}

fn measure_model(arch: Arch, conv: ConvAlgo, cfg: &BenchConfig, peak: &Peak) -> ModelBench {
    crate::runtime::keep_freed_memory();
    let mut bench = Bench::new(arch, conv, cfg);
    let run = bench.time_steps();
    let augmented_step_seconds = bench.median_augmented_step(run.times.len());
    let shares = step_shares(&run);
    let winograd_step_ms = winograd_step_ms(&run);
    let step_seconds = median(run.times);
    let step_gflop = training_flops(arch, cfg.batch_size) / 1e9;
    let achieved = step_gflop / step_seconds;
    let (inference_images_per_second, inference_kernels) =
        time_inference(arch, bench.model.as_ref(), conv, cfg.inference_batch);
    ModelBench {
        model: arch.to_string(),
        conv: arch.has_convolutions().then_some(conv),
        batch_size: cfg.batch_size,
        step_seconds,
        train_images_per_second: cfg.batch_size as f64 / step_seconds,
        seconds_per_epoch_60k: 60_000.0 / cfg.batch_size as f64 * step_seconds,
        step_gflop,
        achieved_gflops: achieved,
        fraction_of_peak: achieved / peak.gflops,
        inference_images_per_second,
        inference_kernels,
        shares,
        winograd_step_ms,
        keras_augmented_step_seconds: augmented_step_seconds,
        keras_augmentation_share: ((augmented_step_seconds - step_seconds)
            / augmented_step_seconds)
            .max(0.0),
    }
}

pub fn run(cfg: &BenchConfig) -> BenchReport {
    let peak = measure_peak();
    let augment = keras_augmentation_seconds(cfg.batch_size);
    let mut models = Vec::new();
    for &arch in &cfg.archs {
        if arch.has_convolutions() {
            for &conv in &cfg.convs {
                models.push(bench_model(arch, conv, cfg, &peak));
            }
        } else {
            models.push(bench_model(arch, ConvAlgo::default(), cfg, &peak));
        }
    }
    BenchReport {
        threads: rayon::current_num_threads(),
        engine: gemm::backend_name(),
        peak,
        keras_augmentation_seconds: augment,
        models,
        peak_resident_mb: runtime::peak_resident_bytes().map(|b| b as f64 / 1e6),
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} threads; models ran on {}", self.threads, self.engine)?;
        writeln!(
            f,
            "single-precision GEMM peak measured now: {:.1} GFLOP/s ({}x{} matrices)",
            self.peak.gflops, self.peak.n, self.peak.n
        )?;
        for m in &self.models {
            let name = match m.conv {
                Some(conv) => format!("{} ({conv})", m.model),
                None => m.model.clone(),
            };
            writeln!(
                f,
                "\n{}: training step (batch {}) {:.1} ms = {:.0} images/s = {:.1} s per epoch of 60,000",
                name,
                m.batch_size,
                m.step_seconds * 1e3,
                m.train_images_per_second,
                m.seconds_per_epoch_60k
            )?;
            writeln!(
                f,
                "  {:.2} GFLOP per step, {:.1} GFLOP/s achieved = {:.0}% of the peak",
                m.step_gflop,
                m.achieved_gflops,
                100.0 * m.fraction_of_peak
            )?;
            writeln!(
                f,
                "  inference (forward only, {INFER_BATCH} images a call): {:.0} images/s, on",
                m.inference_images_per_second
            )?;
            for k in &m.inference_kernels {
                writeln!(f, "    {k}")?;
            }
            writeln!(f, "  where a training step's time goes:")?;
            for s in &m.shares {
                writeln!(f, "    {:<30} {:5.1}%", s.part, 100.0 * s.fraction)?;
            }
            if !m.winograd_step_ms.is_empty() {
                writeln!(f, "  its Winograd convolution, step by step (ms a step):")?;
                for s in &m.winograd_step_ms {
                    writeln!(f, "    {:<40} {:6.2}", s.step, s.ms)?;
                }
            }
            writeln!(
                f,
                "  with the keras augmentation (prepared beside the step, as training does): {:.2} ms a step, {:.1}% of it augmenting ({:.2} ms a batch alone)",
                m.keras_augmented_step_seconds * 1e3,
                100.0 * m.keras_augmentation_share,
                self.keras_augmentation_seconds * 1e3,
            )?;
        }
        if let Some(mb) = self.peak_resident_mb {
            writeln!(f, "\npeak memory held by this run: {mb:.0} MB resident")?;
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
