//! Where one CNN training step's time goes (a quick look; `digits bench` is the real tool).
use std::time::Instant;

use digits::engine::gemm::{matmul, Layout};
use digits::engine::kernels::{self, ConvDims};
use digits::engine::{direct, simd, winograd};

/// The fastest of `reps` calls after a warm-up: on a shared machine the fastest is the one
/// least disturbed by other work.
fn time<T>(what: &str, reps: usize, mut f: impl FnMut() -> T) -> f64 {
    f();
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{what:<40} {:8.2} ms", best * 1e3);
    best
}

/// `len` values spread over `[-1, 1)`, the same on every run: with constant inputs every
/// pooling window would be won by its first pixel, and the branches and selects that depend on
/// the winners would run as they never do in training.
fn noise(len: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn main() {
    if std::env::var_os("GLIBC_DEFAULTS").is_none() {
        digits::runtime::keep_freed_memory();
    }
    let peak = gemm_peak();
    let mut conv2 = Conv2::new();
    conv2_lowered(&mut conv2);
    conv2_winograd(&mut conv2);
    winograd_products(peak);
    fused_products(peak);
    conv2_col2im_and_pool2(&conv2);
    conv1();
    dense();
    training_step();
}

/// The GEMM peak in GFLOP/s, after saying it: what the products below are measured against.
fn gemm_peak() -> f64 {
    let peak = digits::bench::measure_peak();
    println!(
        "GEMM peak {:.1} GFLOP/s ({}x{}) on {}",
        peak.gflops,
        peak.n,
        peak.n,
        digits::engine::gemm::backend_name()
    );
    peak.gflops
}

/// The CNN's second convolution at batch 128 (32 → 192 channels on 14×14), with its inputs,
/// its im2col columns and its gradients.
struct Conv2 {
    d: ConvDims,
    x: Vec<f32>,
    w: Vec<f32>,
    bias: Vec<f32>,
    col: Vec<f32>,
    dy: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
}

impl Conv2 {
    fn new() -> Self {
        let d = ConvDims::new(128, 32, 192, 14, 14);
        let w: Vec<f32> = noise(d.c_out * d.c_in * 9, 1)
            .iter()
            .map(|v| 0.1 * v)
            .collect();
        Conv2 {
            d,
            x: noise(d.batch * d.c_in * 196, 2),
            bias: vec![0.0f32; d.c_out],
            col: vec![0.0f32; d.col_len()],
            dy: noise(d.batch * d.c_out * 196, 3),
            dw: vec![0.0f32; w.len()],
            db: vec![0.0f32; 192],
            w,
        }
    }
}

/// conv2 lowered to GEMM: im2col, then the forward and backward products.
fn conv2_lowered(c: &mut Conv2) {
    let d = c.d;
    time("conv2 im2col", 5, || kernels::im2col(&c.x, d, &mut c.col));
    let s = time("conv2 forward gemm+bias", 5, || {
        kernels::conv_forward(&c.col, &c.w, &c.bias, d, true)
    });
    println!(
        "  = {:.1} GFLOP/s",
        2.0 * (192 * 288 * 196 * 128) as f64 / s / 1e9
    );
    let s = time("conv2 backward (dw, db, dx)", 5, || {
        kernels::conv_backward(&c.col, &c.w, &c.dy, d, &mut c.dw, &mut c.db, true)
    });
    println!(
        "  = {:.1} GFLOP/s",
        4.0 * (192 * 288 * 196 * 128) as f64 / s / 1e9
    );
    time("conv2 backward (dw, db only)", 5, || {
        kernels::conv_backward(&c.col, &c.w, &c.dy, d, &mut c.dw, &mut c.db, false)
    });
}

/// conv2 by Winograd: plain, then with the pooling fused, then the fused passes with our
/// loops at the widest vectors against the baseline build's.
fn conv2_winograd(c: &mut Conv2) {
    let d = c.d;
    let u = winograd::transform_weights(&c.w, d.c_out, d.c_in);
    time("conv2 winograd forward (+bias, ReLU)", 5, || {
        winograd::conv_forward(&c.x, &u, &c.bias, d, true)
    });
    time("conv2 winograd backward (dw, db, dx)", 5, || {
        winograd::conv_backward(&c.x, &u, &c.dy, d, &mut c.dw, &mut c.db, true)
    });
    let (dp, pooled_arg) = winograd::conv_forward_pooled(&c.x, &u, &c.bias, d, true);
    let s = time("conv2 winograd forward, pooled", 5, || {
        winograd::conv_forward_pooled(&c.x, &u, &c.bias, d, true)
    });
    println!(
        "  = {:.1} GFLOP/s of Winograd products",
        WINOGRAD_FLOP_FORWARD / s / 1e9
    );
    // The pooled backward pass from the pooled forward's winners, no window dead.
    let mut backward_pooled = || {
        winograd::conv_backward_pooled(
            &c.x,
            &u,
            &dp,
            &pooled_arg,
            u32::MAX,
            d,
            &mut c.dw,
            &mut c.db,
            true,
        )
    };
    let s = time("conv2 winograd backward, pooled", 5, &mut backward_pooled);
    println!(
        "  = {:.1} GFLOP/s of Winograd products",
        WINOGRAD_FLOP_BACKWARD / s / 1e9
    );
    winograd_steps(
        &mut || winograd::conv_forward_pooled(&c.x, &u, &c.bias, d, true),
        "forward",
    );
    winograd_steps(&mut backward_pooled, "backward");
    let forward_pooled = || winograd::conv_forward_pooled(&c.x, &u, &c.bias, d, true);
    widest_against_baseline(forward_pooled, backward_pooled);
}

/// Where one pooled Winograd pass's time goes, step by step (the engine's own timers, summed
/// over five calls after a warm-up, shown per call).
fn winograd_steps<T>(pass: &mut impl FnMut() -> T, what: &str) {
    use digits::engine::profile;
    pass();
    profile::enable(true);
    profile::step_totals();
    for _ in 0..5 {
        std::hint::black_box(pass());
    }
    let steps = profile::step_totals();
    profile::enable(false);
    println!("  the pooled {what} pass, step by step (ms a call):");
    for (step, s) in steps.into_iter().filter(|(_, s)| *s > 0.0) {
        println!("    {:<40} {:6.2}", step.name(), s * 1e3 / 5.0);
    }
}

/// Our loops (the transforms, the pooling) at the widest vectors against the baseline
/// build's, alternated: the products run on `gemm`'s own kernels either way.
fn widest_against_baseline<F, B>(mut forward: impl FnMut() -> F, mut backward: impl FnMut() -> B) {
    let widest = simd::level();
    for round in 1..=3 {
        for (label, base) in [(widest, false), ("baseline", true)] {
            simd::force_baseline(base);
            let f = time(
                &format!("round {round}, {label}: winograd forward, pooled"),
                5,
                &mut forward,
            );
            let b = time(
                &format!("round {round}, {label}: winograd backward, pooled"),
                5,
                &mut backward,
            );
            println!("  forward + backward {:.2} ms", (f + b) * 1e3);
        }
    }
    simd::force_baseline(false);
}

/// conv2's col2im (the lowered backward's last step) and the pooling after conv2.
fn conv2_col2im_and_pool2(c: &Conv2) {
    let mut dx = vec![0.0f32; c.x.len()];
    time("conv2 col2im", 5, || {
        kernels::col2im_add(&c.col, c.d, &mut dx)
    });
    let pooled = vec![0.3f32; 128 * 192 * 196];
    time("pool2 forward", 5, || {
        kernels::maxpool_forward(&pooled, 128 * 192, 14, 14)
    });
}

/// The CNN's first convolution (1 → 32 channels on 28×28), lowered to GEMM.
fn conv1() {
    let d1 = ConvDims::new(128, 1, 32, 28, 28);
    let x1 = noise(128 * 784, 4);
    let mut col1 = vec![0.0f32; d1.col_len()];
    time("conv1 im2col", 5, || kernels::im2col(&x1, d1, &mut col1));
    time("conv1 forward", 5, || {
        kernels::conv_forward(&col1, &vec![0.01; 288], &[0.0; 32], d1, true)
    });
    // What the CNN runs for its first layer: the direct stencil with pooling fused.
    let w1: Vec<f32> = (0..288).map(|i| (i % 17) as f32 / 17.0 - 0.5).collect();
    time("conv1 direct stencil, pooled", 50, || {
        direct::conv_forward_pooled(&x1, &w1, &[0.01; 32], d1, true)
    });
    time(
        "conv1 direct stencil, pooled values (inference)",
        50,
        || direct::conv_forward_pooled_values(&x1, &w1, &[0.01; 32], d1, true),
    );
    let (pooled, argmax) = direct::conv_forward_pooled(&x1, &w1, &[0.01; 32], d1, true);
    let dp: Vec<f32> = (0..pooled.len()).map(|i| (i % 7) as f32 - 3.0).collect();
    let (mut dw, mut db) = (vec![0.0f32; 288], vec![0.0f32; 32]);
    time("conv1 direct stencil, backward (dw, db)", 20, || {
        direct::conv_backward_pooled(
            &x1,
            &w1,
            &dp,
            &argmax,
            u32::MAX,
            d1,
            &mut dw,
            &mut db,
            false,
        )
    });
}

/// The dense layer after the convolutions: 9,408 inputs to 128 units at batch 128.
fn dense() {
    let (m, k, nn) = (128, 9408, 128);
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * nn];
    let mut c = vec![0.0f32; m * nn];
    time("dense 128x9408x128", 5, || {
        matmul(
            m,
            nn,
            k,
            &a,
            Layout::Normal,
            &b,
            Layout::Transposed,
            &mut c,
            false,
        )
    });
}

/// Multiply-adds of conv2's Winograd products, ×2 for FLOP: 16 positions × O × C × tiles.
const WINOGRAD_FLOP_FORWARD: f64 = 2.0 * 16.0 * 192.0 * 32.0 * 49.0 * 128.0;
const WINOGRAD_FLOP_BACKWARD: f64 = 2.0 * WINOGRAD_FLOP_FORWARD;

/// conv2's 16 forward Winograd products (192 × T × 32) at batch 128, as one product per
/// position over the whole batch (T = 6,272, one position per thread) and as 64 chunks of 2
/// images (T = 98, one chunk per thread), the share of the GEMM peak each reaches.
fn winograd_products(peak: f64) {
    use digits::engine::gemm::{matmul_strided, Strides};
    use rayon::prelude::*;
    let (o, c, t) = (192, 32, 49 * 128);
    let u = vec![0.01f32; 16 * o * c];
    let v = vec![0.1f32; 16 * c * t];
    let mut m = vec![0.0f32; 16 * o * t];
    let whole = time("winograd products, T = 6,272", 5, || {
        m.par_chunks_mut(o * t).enumerate().for_each(|(xi, m_xi)| {
            let (a, b) = (&u[xi * o * c..], &v[xi * t..]);
            let sb = Strides::rows(16 * t);
            matmul_strided(
                o,
                t,
                c,
                a,
                Strides::rows(c),
                b,
                sb,
                m_xi,
                Strides::rows(t),
                false,
                false,
            );
        })
    });
    let chunked = time("winograd products, chunks of T = 98", 5, || {
        m.par_chunks_mut(16 * o * 98).for_each(|m_c| {
            for xi in 0..16 {
                let (a, b) = (&u[xi * o * c..], &v[xi * c * 98..]);
                let (sb, sc) = (Strides::rows(98), Strides::rows(98));
                matmul_strided(
                    o,
                    98,
                    c,
                    a,
                    Strides::rows(c),
                    b,
                    sb,
                    &mut m_c[xi * o * 98..],
                    sc,
                    false,
                    false,
                );
            }
        })
    });
    for (what, s) in [("whole batch", whole), ("chunks", chunked)] {
        let gflops = WINOGRAD_FLOP_FORWARD / s / 1e9;
        println!(
            "  {what}: {gflops:.1} GFLOP/s = {:.0}% of the peak",
            100.0 * gflops / peak
        );
    }
}

/// The pooled forward pass's own products (`engine::microkernel`) on one thread: 16 products
/// of a block of 12 output channels over one group of five images (245 tiles, 32 input
/// channels), against one thread's share of the GEMM peak.
fn fused_products(peak: f64) {
    use digits::engine::microkernel::{block_products, pack_weights, padded};
    let Some(lanes) = simd::lanes() else {
        println!("fused Winograd products: not on this CPU (the pooled pass uses gemm)");
        return;
    };
    let (c_out, c_in, cols, n) = (192, 32, 490, 245);
    let u: Vec<f32> = (0..16 * c_out * c_in)
        .map(|i| (i % 7) as f32 * 0.1)
        .collect();
    let v: Vec<f32> = (0..16 * c_in * cols)
        .map(|i| (i % 5) as f32 * 0.1)
        .collect();
    let packed = pack_weights(&u, c_out, c_in);
    let mut m = vec![0.0f32; 16 * 12 * padded(n)];
    let blocks = c_out / 12;
    let s = time("fused Winograd products, one thread", 5, || {
        for b in 0..blocks {
            block_products(
                &packed,
                (c_out, c_in),
                (b * 12, 12),
                &v,
                cols,
                (0, n),
                lanes,
                &mut m,
            );
        }
    });
    let gflops = 2.0 * 16.0 * (c_out * n * c_in) as f64 / s / 1e9;
    let share = peak / rayon::current_num_threads() as f64;
    println!(
        "  {gflops:.1} GFLOP/s = {:.0}% of one thread's share of the peak ({lanes} lanes)",
        100.0 * gflops / share
    );
}

fn training_step() {
    use dfdx::prelude::*;
    let dev = dfdx::tensor::Cpu::default();
    let arch = digits::models::Arch::Cnn;
    let mut model = arch.build(&dev, &arch.init(0), 0.2).unwrap();
    let images = vec![0.2f32; 128 * 784];
    let mut onehot = vec![0.0f32; 1280];
    for i in 0..128 {
        onehot[i * 10 + i % 10] = 1.0;
    }
    let mut adam = digits::train::optim::Adam::new(
        digits::train::optim::AdamConfig::keras(1e-3),
        &arch.init(0),
    );
    time("forward with tape", 3, || {
        let mut grads = Gradients::leaky();
        for p in model.params() {
            p.alloc_grad(&mut grads);
        }
        model.train_logits(&dev, &images, 128, 1, grads).as_vec()
    });
    time("forward+backward", 3, || {
        let mut grads = Gradients::leaky();
        for p in model.params() {
            p.alloc_grad(&mut grads);
        }
        let logits = model.train_logits(&dev, &images, 128, 1, grads);
        cross_entropy_with_logits_loss(
            logits,
            dev.tensor_from_vec(onehot.clone(), (128usize, Const::<10>)),
        )
        .backward()
    });
    let mut grads = Gradients::leaky();
    for p in model.params() {
        p.alloc_grad(&mut grads);
    }
    let logits = model.train_logits(&dev, &images, 128, 1, grads);
    let mut grads = cross_entropy_with_logits_loss(
        logits,
        dev.tensor_from_vec(onehot.clone(), (128usize, Const::<10>)),
    )
    .backward();
    time("adam update", 3, || {
        digits::train::adam_step(model.as_mut(), &mut adam, &mut grads)
    });
}
