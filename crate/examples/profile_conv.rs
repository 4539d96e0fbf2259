//! Where one CNN training step's time goes (a quick look; `digits bench` is the real tool).
use std::time::Instant;

use digits::engine::gemm::{matmul, Layout};
use digits::engine::kernels::{self, ConvDims};
use digits::engine::{simd, winograd};

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

fn main() {
    if std::env::var_os("GLIBC_DEFAULTS").is_none() {
        digits::runtime::keep_freed_memory();
    }
    let peak = digits::bench::measure_peak();
    println!(
        "GEMM peak {:.1} GFLOP/s ({}x{}) on {}",
        peak.gflops,
        peak.n,
        peak.n,
        digits::engine::gemm::backend_name()
    );

    let d = ConvDims::new(128, 32, 192, 14, 14);
    let x = vec![0.1f32; d.batch * d.c_in * 196];
    let w = vec![0.01f32; d.c_out * d.c_in * 9];
    let bias = vec![0.0f32; d.c_out];
    let mut col = vec![0.0f32; d.col_len()];
    time("conv2 im2col", 5, || kernels::im2col(&x, d, &mut col));
    let s = time("conv2 forward gemm+bias", 5, || {
        kernels::conv_forward(&col, &w, &bias, d, true)
    });
    println!(
        "  = {:.1} GFLOP/s",
        2.0 * (192 * 288 * 196 * 128) as f64 / s / 1e9
    );
    let dy = vec![0.001f32; d.batch * d.c_out * 196];
    let mut dw = vec![0.0f32; w.len()];
    let mut db = vec![0.0f32; 192];
    let s = time("conv2 backward (dw, db, dx)", 5, || {
        kernels::conv_backward(&col, &w, &dy, d, &mut dw, &mut db, true)
    });
    println!(
        "  = {:.1} GFLOP/s",
        4.0 * (192 * 288 * 196 * 128) as f64 / s / 1e9
    );
    time("conv2 backward (dw, db only)", 5, || {
        kernels::conv_backward(&col, &w, &dy, d, &mut dw, &mut db, false)
    });
    let u = winograd::transform_weights(&w, d.c_out, d.c_in);
    time("conv2 winograd forward (+bias, ReLU)", 5, || {
        winograd::conv_forward(&x, &u, &bias, d, true)
    });
    time("conv2 winograd backward (dw, db, dx)", 5, || {
        winograd::conv_backward(&x, &u, &dy, d, &mut dw, &mut db, true)
    });
    let (dp, pooled_arg) = winograd::conv_forward_pooled(&x, &u, &bias, d, true);
    let s = time("conv2 winograd forward, pooled", 5, || {
        winograd::conv_forward_pooled(&x, &u, &bias, d, true)
    });
    println!(
        "  = {:.1} GFLOP/s of Winograd products",
        WINOGRAD_FLOP_FORWARD / s / 1e9
    );
    // The pooled backward pass from the pooled forward's winners, no window dead.
    let mut backward_pooled = || {
        winograd::conv_backward_pooled(
            &x,
            &u,
            &dp,
            &pooled_arg,
            u32::MAX,
            d,
            &mut dw,
            &mut db,
            true,
        )
    };
    let s = time("conv2 winograd backward, pooled", 5, &mut backward_pooled);
    println!(
        "  = {:.1} GFLOP/s of Winograd products",
        WINOGRAD_FLOP_BACKWARD / s / 1e9
    );
    // Our loops (the transforms, the pooling) at the widest vectors against the baseline
    // build's, alternated: the products run on `gemm`'s own kernels either way.
    let widest = simd::level();
    for round in 1..=3 {
        for (label, base) in [(widest, false), ("baseline", true)] {
            simd::force_baseline(base);
            let f = time(
                &format!("round {round}, {label}: winograd forward, pooled"),
                5,
                || winograd::conv_forward_pooled(&x, &u, &bias, d, true),
            );
            let b = time(
                &format!("round {round}, {label}: winograd backward, pooled"),
                5,
                &mut backward_pooled,
            );
            println!("  forward + backward {:.2} ms", (f + b) * 1e3);
        }
    }
    simd::force_baseline(false);
    winograd_products(peak.gflops);
    let mut dx = vec![0.0f32; x.len()];
    time("conv2 col2im", 5, || kernels::col2im_add(&col, d, &mut dx));
    let pooled = vec![0.3f32; 128 * 192 * 196];
    time("pool2 forward", 5, || {
        kernels::maxpool_forward(&pooled, 128 * 192, 14, 14)
    });
    let d1 = ConvDims::new(128, 1, 32, 28, 28);
    let x1 = vec![0.1f32; 128 * 784];
    let mut col1 = vec![0.0f32; d1.col_len()];
    time("conv1 im2col", 5, || kernels::im2col(&x1, d1, &mut col1));
    time("conv1 forward", 5, || {
        kernels::conv_forward(&col1, &vec![0.01; 288], &[0.0; 32], d1, true)
    });
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
    training_step();
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
