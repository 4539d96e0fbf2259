//! Every backward pass of our own ops against central finite differences, on random shapes
//! and values, and the whole published models' gradients likewise.

use dfdx::prelude::*;
use dfdx::tensor::Cpu;
use digits::engine::layers::{
    conv2d_3x3, conv2d_3x3_pooled, dense, dropout, maxpool2x2, reshape, ConvOpts, DenseOpts,
    WINOGRAD_MIN_CHANNELS,
};
use digits::models::{Arch, ConvAlgo};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Step for the op-level checks: large enough for f32, small next to the gaps of the inputs.
const EPS: f32 = 1e-2;
/// Step for the whole models, where a bias moves hundreds of ReLU and pooling inputs at once and
/// a large step would cross their kinks.
const MODEL_EPS: f32 = 1e-3;

fn random(n: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Compare `analytic[i]` with the central difference of `f` at coordinate `i` for a sample of
/// coordinates; `f(i, delta)` evaluates the scalar loss with coordinate `i` moved by `delta`.
fn check(
    what: &str,
    analytic: &[f32],
    coords: impl Iterator<Item = usize>,
    mut f: impl FnMut(usize, f32) -> f64,
) {
    let mut checked = 0;
    for i in coords {
        let numeric = (f(i, EPS) - f(i, -EPS)) / (2.0 * EPS as f64);
        let a = analytic[i] as f64;
        let tol = 2e-3 + 2e-2 * a.abs().max(numeric.abs());
        assert!(
            (a - numeric).abs() <= tol,
            "{what}[{i}]: analytic {a:.6} vs numeric {numeric:.6}"
        );
        checked += 1;
    }
    assert!(checked > 0, "{what}: no coordinate checked");
}

fn sample(n: usize, k: usize, rng: &mut StdRng) -> Vec<usize> {
    (0..k.min(n)).map(|_| rng.gen_range(0..n)).collect()
}

/// Check a layer's gradients of its input, weights and bias (`analytic`) against central
/// differences of `eval`, the loss as a function of those three values (`at`): a sample of the
/// input's and the weights' coordinates, every bias.
fn check_layer(
    layer: &str,
    analytic: &[Vec<f32>; 3],
    at: [&[f32]; 3],
    eval: impl Fn(&[f32], &[f32], &[f32]) -> f64,
    rng: &mut StdRng,
) {
    for (k, part) in ["dx", "dw", "db"].into_iter().enumerate() {
        let coords = match k {
            2 => (0..at[k].len()).collect(),
            _ => sample(at[k].len(), 20, rng),
        };
        check(
            &format!("{layer} {part}"),
            &analytic[k],
            coords.into_iter(),
            |i, d| {
                let mut moved = at.map(<[f32]>::to_vec);
                moved[k][i] += d;
                eval(&moved[0], &moved[1], &moved[2])
            },
        );
    }
}

/// The outputs of an op run with its ReLU fused (`fused`) or followed by dfdx's own ReLU, and
/// the gradients of its input, weight and bias under the loss Σ y·r.
fn outputs_and_grads<S, X: Shape, W: Shape, B: Shape>(
    y: Tensor<S, f32, Cpu, OwnedTape<f32, Cpu>>,
    fused: bool,
    r: &Tensor<S, f32, Cpu>,
    x: &Tensor<X, f32, Cpu>,
    wt: &Tensor<W, f32, Cpu>,
    bt: &Tensor<B, f32, Cpu>,
) -> Fused
where
    S: Shape + ReduceShapeTo<(), S::AllAxes>,
{
    let y = if fused { y } else { y.relu() };
    let out = y.as_vec();
    let g = (y * r.clone()).sum::<(), _>().backward();
    (
        out,
        g.get(x).as_vec(),
        g.get(wt).as_vec(),
        g.get(bt).as_vec(),
    )
}

/// A layer with its ReLU fused (output, input, weight and bias gradients) against the plain
/// layer followed by dfdx's ReLU: the same output, the same gradients up to rounding.
fn assert_fused_matches(fused: Fused, reference: Fused) {
    assert_eq!(fused.0, reference.0);
    for (a, e) in [
        (&fused.1, &reference.1),
        (&fused.2, &reference.2),
        (&fused.3, &reference.3),
    ] {
        for (x, y) in a.iter().zip(e.iter()) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }
}

type Fused = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

#[test]
fn conv2d_backward_matches_finite_differences() {
    conv2d_check(ConvAlgo::Im2col, 1..4);
}

#[test]
fn winograd_conv2d_backward_matches_finite_differences() {
    // Enough input channels that the Winograd path is the one taken.
    conv2d_check(
        ConvAlgo::Winograd,
        WINOGRAD_MIN_CHANNELS..WINOGRAD_MIN_CHANNELS + 3,
    );
}

fn conv2d_check(algo: ConvAlgo, channels: std::ops::Range<usize>) {
    let dev = Cpu::default();
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..4 {
        let (b, c, o) = (
            rng.gen_range(1..3),
            rng.gen_range(channels.clone()),
            rng.gen_range(1..5),
        );
        let (h, w) = (rng.gen_range(2..7), rng.gen_range(2..7));
        let xv = random(b * c * h * w, &mut rng);
        let wv = random(o * c * 9, &mut rng);
        let bv = random(o, &mut rng);
        let r = random(b * o * h * w, &mut rng);
        let opts = ConvOpts {
            relu: false,
            input_grad: true,
            algo,
        };
        let eval = |xv: &[f32], wv: &[f32], bv: &[f32]| -> f64 {
            let x = dev.tensor_from_vec(xv.to_vec(), (b, c, h, w));
            let wt = dev.tensor_from_vec(wv.to_vec(), (o, c, Const::<3>, Const::<3>));
            let bt = dev.tensor_from_vec(bv.to_vec(), (o,));
            dot(&conv2d_3x3(x, &wt, &bt, opts).as_vec(), &r)
        };
        let x = dev.tensor_from_vec(xv.clone(), (b, c, h, w));
        let wt = dev.tensor_from_vec(wv.clone(), (o, c, Const::<3>, Const::<3>));
        let bt = dev.tensor_from_vec(bv.clone(), (o,));
        let out = conv2d_3x3(x.leaky_trace(), &wt, &bt, opts);
        let rt = dev.tensor_from_vec(r.clone(), (b, o, h, w));
        let grads = (out * rt).sum().backward();
        let grads = [
            grads.get(&x).as_vec(),
            grads.get(&wt).as_vec(),
            grads.get(&bt).as_vec(),
        ];
        check_layer("conv", &grads, [&xv, &wv, &bv], eval, &mut rng);
    }
}

#[test]
fn dense_backward_matches_finite_differences_and_dfdx_linear() {
    let dev = Cpu::default();
    let mut rng = StdRng::seed_from_u64(6);
    for _ in 0..4 {
        let (b, i, o) = (
            rng.gen_range(1..6),
            rng.gen_range(1..40),
            rng.gen_range(1..20),
        );
        let xv = random(b * i, &mut rng);
        let wv = random(o * i, &mut rng);
        let bv = random(o, &mut rng);
        let r = random(b * o, &mut rng);
        let opts = DenseOpts {
            relu: false,
            input_grad: true,
        };
        let eval = |xv: &[f32], wv: &[f32], bv: &[f32]| -> f64 {
            let x = dev.tensor_from_vec(xv.to_vec(), (b, i));
            let wt = dev.tensor_from_vec(wv.to_vec(), (o, i));
            let bt = dev.tensor_from_vec(bv.to_vec(), (o,));
            dot(&dense(x, &wt, &bt, opts).as_vec(), &r)
        };
        let x = dev.tensor_from_vec(xv.clone(), (b, i));
        let wt = dev.tensor_from_vec(wv.clone(), (o, i));
        let bt = dev.tensor_from_vec(bv.clone(), (o,));
        // Forward against dfdx's own product and broadcast add.
        let reference = x
            .clone()
            .matmul(wt.clone().permute::<(usize, usize), Axes2<1, 0>>())
            + bt.clone()
                .broadcast_like::<(usize, usize), Axis<0>>(&(b, o));
        for (g, e) in dense(x.clone(), &wt, &bt, opts)
            .as_vec()
            .iter()
            .zip(reference.as_vec())
        {
            assert!((g - e).abs() < 1e-4, "{g} vs {e}");
        }
        let out = dense(x.leaky_trace(), &wt, &bt, opts);
        let rt = dev.tensor_from_vec(r.clone(), (b, o));
        let grads = (out * rt).sum().backward();
        let grads = [
            grads.get(&x).as_vec(),
            grads.get(&wt).as_vec(),
            grads.get(&bt).as_vec(),
        ];
        check_layer("dense", &grads, [&xv, &wv, &bv], eval, &mut rng);
    }
}

#[test]
fn fused_relu_backward_equals_dfdx_relu_after_plain_dense() {
    let dev = Cpu::default();
    let mut rng = StdRng::seed_from_u64(8);
    let (b, i, o) = (4, 30, 12);
    let xv = random(b * i, &mut rng);
    let wt = dev.tensor_from_vec(random(o * i, &mut rng), (o, i));
    let bt = dev.tensor_from_vec(random(o, &mut rng), (o,));
    let r = dev.tensor_from_vec(random(b * o, &mut rng), (b, o));
    let run = |fused: bool| {
        let x = dev.tensor_from_vec(xv.clone(), (b, i));
        let y = dense(
            x.leaky_trace(),
            &wt,
            &bt,
            DenseOpts {
                relu: fused,
                input_grad: true,
            },
        );
        outputs_and_grads(y, fused, &r, &x, &wt, &bt)
    };
    assert_fused_matches(run(true), run(false));
}

#[test]
fn fused_relu_backward_equals_dfdx_relu_after_plain_conv() {
    for algo in [ConvAlgo::Im2col, ConvAlgo::Winograd] {
        fused_relu_check(algo);
    }
}

fn fused_relu_check(algo: ConvAlgo) {
    let dev = Cpu::default();
    let mut rng = StdRng::seed_from_u64(2);
    // Five input channels: enough for the Winograd path.
    let (b, c, o, h, w) = (2, 5, 4, 5, 6);
    let xv = random(b * c * h * w, &mut rng);
    let wt = dev.tensor_from_vec(random(o * c * 9, &mut rng), (o, c, Const::<3>, Const::<3>));
    let bt = dev.tensor_from_vec(random(o, &mut rng), (o,));
    let r = dev.tensor_from_vec(random(b * o * h * w, &mut rng), (b, o, h, w));
    let run = |fused: bool| {
        let x = dev.tensor_from_vec(xv.clone(), (b, c, h, w));
        let y = conv2d_3x3(
            x.leaky_trace(),
            &wt,
            &bt,
            ConvOpts {
                relu: fused,
                input_grad: true,
                algo,
            },
        );
        outputs_and_grads(y, fused, &r, &x, &wt, &bt)
    };
    assert_fused_matches(run(true), run(false));
}

#[test]
fn maxpool_backward_matches_finite_differences() {
    let dev = Cpu::default();
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..3 {
        let (b, c) = (rng.gen_range(1..3), rng.gen_range(1..4));
        let (h, w) = (2 * rng.gen_range(1..4), 2 * rng.gen_range(1..4));
        let n = b * c * h * w;
        // Values at least 0.1 apart, so a step of EPS never changes which one is the maximum.
        let mut xv: Vec<f32> = (0..n).map(|i| i as f32 * 0.1).collect();
        for i in (1..n).rev() {
            xv.swap(i, rng.gen_range(0..=i));
        }
        let r = random(n / 4, &mut rng);
        let eval = |xv: &[f32]| {
            let x = dev.tensor_from_vec(xv.to_vec(), (b, c, h, w));
            dot(&maxpool2x2(x, h / 2, w / 2).as_vec(), &r)
        };
        let x = dev.tensor_from_vec(xv.clone(), (b, c, h, w));
        let out = maxpool2x2(x.leaky_trace(), h / 2, w / 2);
        let rt = dev.tensor_from_vec(r.clone(), (b, c, h / 2, w / 2));
        let grads = (out * rt).sum().backward();
        check("maxpool dx", &grads.get(&x).as_vec(), 0..n, |i, d| {
            let mut v = xv.clone();
            v[i] += d;
            eval(&v)
        });
    }
}

#[test]
fn reshape_and_dropout_backward_match_finite_differences() {
    let dev = Cpu::default();
    let mut rng = StdRng::seed_from_u64(4);
    let xv = random(2 * 3 * 4 * 2, &mut rng);
    let r = random(xv.len(), &mut rng);
    let x = dev.tensor_from_vec(xv.clone(), (2usize, 3usize, 4usize, 2usize));
    let out = reshape(x.leaky_trace(), (2usize, 24usize));
    assert_eq!(out.as_vec(), xv, "reshape keeps row-major order");
    let rt = dev.tensor_from_vec(r.clone(), (2usize, 24usize));
    let grads = (out * rt).sum().backward();
    assert_eq!(grads.get(&x).as_vec(), r);

    // Dropout: the same seed gives the same mask; the gradient is the mask times the upstream
    // gradient; about p of the entries are dropped.
    let n = 4000;
    let xv = random(n, &mut rng);
    let x = dev.tensor_from_vec(xv.clone(), (n,));
    let a = dropout(x.leaky_trace(), 0.3, 99);
    let b = dropout(x.leaky_trace(), 0.3, 99).as_vec();
    let av = a.as_vec();
    assert_eq!(av, b);
    let dropped = av.iter().filter(|v| **v == 0.0).count() as f64 / n as f64;
    assert!((dropped - 0.3).abs() < 0.03, "dropped {dropped}");
    let grads = a.sum().backward();
    let g = grads.get(&x).as_vec();
    for i in 0..n {
        let expect = if av[i] == 0.0 { 0.0 } else { 1.0 / 0.7 };
        assert!((g[i] - expect).abs() < 1e-5);
        if av[i] != 0.0 {
            assert!((av[i] - xv[i] / 0.7).abs() < 1e-5);
        }
    }
    // Without a tape (inference) dropout is the identity.
    assert_eq!(dropout(x.clone(), 0.3, 99).as_vec(), xv);
}

/// The whole model's cross-entropy gradient against finite differences, for a sample of every
/// parameter tensor.
///
/// Each op is checked coordinate by coordinate above. Here the loss is an f32 sum over
/// thousands of ReLU and pooling units: a step in an early weight moves so many of them that
/// some cross a kink, and a small gradient sits near the loss's f32 resolution. So each tensor
/// is judged by the cosine between its sampled analytic and numeric gradients: rounding and
/// kinks leave it near 1 (and the norms' ratio near 1), a wrong layer does not.
fn check_model(arch: Arch) {
    check_model_with(arch, ConvAlgo::Im2col)
}

fn check_model_with(arch: Arch, conv: ConvAlgo) {
    let dev = Cpu::default();
    let mut rng = StdRng::seed_from_u64(5);
    let n = 3;
    let images: Vec<f32> = (0..n * 784).map(|_| rng.gen_range(0.0..1.0)).collect();
    let mut onehot = vec![0.0f32; n * 10];
    for i in 0..n {
        onehot[i * 10 + (i * 3) % 10] = 1.0;
    }
    let weights = arch.init(7);
    let mut model = arch.build(&dev, &weights, 0.0).unwrap();
    model.set_conv(conv);
    let targets = dev.tensor_from_vec(onehot, (n, Const::<10>));
    let mut grads = Gradients::leaky();
    for p in model.params() {
        p.alloc_grad(&mut grads);
    }
    let logits = model.train_logits(&dev, &images, n, 0, grads);
    let mut grads = cross_entropy_with_logits_loss(logits, targets.clone()).backward();
    let analytic: Vec<Vec<f32>> = model
        .params()
        .iter()
        .map(|p| p.grad(&mut grads).to_vec())
        .collect();
    let loss_at = |w: &digits::models::Weights| {
        let mut m = arch.build(&dev, w, 0.0).unwrap();
        m.set_conv(conv);
        cross_entropy_with_logits_loss(m.logits(&dev, &images, n), targets.clone()).array() as f64
    };
    let layout = arch.layout();
    let mut checked = Vec::new();
    for (t, spec) in layout.iter().enumerate() {
        let coords = model_coords(&analytic[t], 12, &mut rng);
        let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
        for &i in &coords {
            let mut w = weights.clone();
            w.tensors[t].data[i] += MODEL_EPS;
            let plus = loss_at(&w);
            w.tensors[t].data[i] -= 2.0 * MODEL_EPS;
            let numeric = (plus - loss_at(&w)) / (2.0 * MODEL_EPS as f64);
            let a = analytic[t][i] as f64;
            ab += a * numeric;
            aa += a * a;
            bb += numeric * numeric;
        }
        if aa < 1e-12 && bb < 1e-12 {
            continue; // nothing to compare: the layer stays out of `checked`, and fails below
        }
        let cosine = ab / (aa.sqrt() * bb.sqrt()).max(1e-12);
        let scale = (aa / bb.max(1e-24)).sqrt();
        assert!(
            cosine > 0.95 && (0.8..1.25).contains(&scale),
            "{arch} {}: analytic vs numeric gradients: cosine {cosine:.3}, norm ratio {scale:.3}",
            spec.name
        );
        checked.push(spec.name.clone());
    }
    let all: Vec<_> = layout.iter().map(|spec| spec.name.clone()).collect();
    assert_eq!(
        checked, all,
        "{arch}: gradients compared for {checked:?} only, of {all:?}"
    );
}

/// `k` coordinates of a parameter tensor for the model check: two thirds where the analytic
/// gradient is nonzero, so that dead ReLU units cannot leave a layer with nothing to compare,
/// and a third anywhere, so that a gradient wrongly zero is sampled too.
fn model_coords(grad: &[f32], k: usize, rng: &mut StdRng) -> Vec<usize> {
    let live: Vec<usize> = (0..grad.len()).filter(|&i| grad[i] != 0.0).collect();
    let mut coords = sample(grad.len(), k / 3, rng);
    if !live.is_empty() {
        coords.extend((0..k - k / 3).map(|_| live[rng.gen_range(0..live.len())]));
    }
    coords
}

#[test]
fn mlp_gradients_match_finite_differences() {
    check_model(Arch::Mlp);
}

#[test]
fn wide_mlp_gradients_match_finite_differences() {
    check_model(Arch::MlpWide);
}

#[test]
fn cnn_gradients_match_finite_differences() {
    check_model(Arch::Cnn);
}

#[test]
fn winograd_cnn_gradients_match_finite_differences() {
    check_model_with(Arch::Cnn, ConvAlgo::Winograd);
}

#[test]
fn sized_variants_gradients_match_finite_differences() {
    check_model(Arch::MlpOf { h1: 40, h2: 24 });
    check_model(Arch::CnnOf {
        c1: 6,
        c2: None,
        dense: 16,
    });
    check_model(Arch::CnnOf {
        c1: 4,
        c2: Some(8),
        dense: 12,
    });
}

#[test]
fn fused_conv_and_pooling_equal_the_two_ops_bit_for_bit() {
    let dev = Cpu::default();
    let mut rng = StdRng::seed_from_u64(4);
    for algo in [ConvAlgo::Im2col, ConvAlgo::Winograd] {
        for relu in [true, false] {
            let (b, c, o, h, w) = (2, 5, 3, 6, 4);
            let xv = random(b * c * h * w, &mut rng);
            let wt =
                dev.tensor_from_vec(random(o * c * 9, &mut rng), (o, c, Const::<3>, Const::<3>));
            // Negative biases leave whole pooling windows without a positive value.
            let bt = dev.tensor_from_vec(vec![-0.8; o], (o,));
            let r = dev.tensor_from_vec(random(b * o * h * w / 4, &mut rng), (b, o, h / 2, w / 2));
            let opts = ConvOpts {
                relu,
                input_grad: true,
                algo,
            };
            let run = |fused: bool| {
                let x = dev.tensor_from_vec(xv.clone(), (b, c, h, w));
                let y = if fused {
                    conv2d_3x3_pooled(x.leaky_trace(), &wt, &bt, opts, h / 2, w / 2)
                } else {
                    maxpool2x2(conv2d_3x3(x.leaky_trace(), &wt, &bt, opts), h / 2, w / 2)
                };
                let out = y.as_vec();
                let g = (y * r.clone()).sum().backward();
                (
                    out,
                    g.get(&x).as_vec(),
                    g.get(&wt).as_vec(),
                    g.get(&bt).as_vec(),
                )
            };
            let (fused, separate) = (run(true), run(false));
            assert!(
                fused.0.contains(&0.0) || !relu,
                "the data should leave some windows dead"
            );
            assert_eq!(fused, separate, "{algo:?}, relu {relu}");
        }
    }
}
