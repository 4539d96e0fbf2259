//! The forward-only pass that evaluation and prediction run ([`digits::engine::infer`]) against
//! the taped dfdx forward the models train with: the same logits within the stated tolerance,
//! on the real input shape, for random weights and images and for weights trained a little.

use dfdx::tensor::Cpu;
use rand::{rngs::StdRng, Rng, SeedableRng};

use digits::data::synthetic::blocks;
use digits::engine::infer::{INFER_BATCH, LOGIT_TOLERANCE};
use digits::eval::{argmax, evaluate};
use digits::models::{Arch, ConvAlgo, Weights};
use digits::train::{train, Progress, TrainConfig, TrainOptions};

/// Fresh weights with every bias drawn too (fresh biases are zeros, which would leave the
/// bias additions untested).
fn random_weights(arch: Arch, seed: u64) -> Weights {
    let mut w = arch.init(seed);
    let mut rng = StdRng::seed_from_u64(seed ^ 0xB1A5);
    for t in w.tensors.iter_mut().filter(|t| t.shape.len() == 1) {
        t.data
            .iter_mut()
            .for_each(|v| *v = rng.gen_range(-0.1..0.1));
    }
    w
}

/// The largest `|forward-only − taped| / (1 + |taped|)` over `n` images, after checking that
/// every logit is within [`LOGIT_TOLERANCE`] and both passes predict the same digits.
fn compare(arch: Arch, w: &Weights, conv: ConvAlgo, images: &[f32], n: usize) -> f32 {
    let dev = Cpu::default();
    let mut model = arch.build(&dev, w, 0.0).expect("weights fit");
    model.set_conv(conv);
    let taped = model.logits(&dev, images, n).as_vec();
    let fast = arch
        .inference_net(w, conv)
        .expect("weights fit")
        .logits(images, n);
    assert_eq!(fast.len(), taped.len());
    let worst = fast
        .iter()
        .zip(&taped)
        .map(|(f, t)| (f - t).abs() / (1.0 + t.abs()))
        .fold(0.0f32, f32::max);
    assert!(
        worst <= LOGIT_TOLERANCE,
        "{arch} ({conv}): relative difference {worst:e}"
    );
    let digits = |l: &[f32]| l.chunks(10).map(argmax).collect::<Vec<_>>();
    assert_eq!(digits(&fast), digits(&taped), "{arch} ({conv})");
    worst
}

#[test]
fn forward_only_logits_match_the_taped_forward_for_random_weights() {
    // More images than one forward-only batch: the split is crossed.
    let n = INFER_BATCH + 37;
    let mut rng = StdRng::seed_from_u64(7);
    let images: Vec<f32> = (0..n * 784).map(|_| rng.gen_range(0.0..1.0)).collect();
    for (arch, conv) in [
        (Arch::Cnn, ConvAlgo::Winograd),
        (Arch::Cnn, ConvAlgo::Im2col),
        (Arch::Mlp, ConvAlgo::default()),
        (Arch::MlpWide, ConvAlgo::default()),
        (
            Arch::CnnOf {
                c1: 8,
                c2: None,
                dense: 24,
            },
            ConvAlgo::Winograd,
        ),
        (Arch::MlpOf { h1: 40, h2: 24 }, ConvAlgo::default()),
    ] {
        let worst = compare(arch, &random_weights(arch, 3), conv, &images, n);
        println!("{arch} ({conv}): largest relative logit difference {worst:e}");
    }
}

/// Weights after a few training steps on synthetic digits (what a trained run holds, cheaply):
/// the same logits, and `evaluate` (the forward-only pass) scores the test set as the taped
/// logits do.
#[test]
fn forward_only_logits_match_the_taped_forward_for_trained_weights() {
    let (tr, val, test) = (
        blocks(640, 1, false),
        blocks(100, 2, false),
        blocks(600, 3, false),
    );
    for arch in [Arch::Cnn, Arch::Mlp] {
        let cfg = TrainConfig::fixed(arch, 1, 64, 2);
        let opts = TrainOptions {
            progress: Progress::Quiet,
            ..Default::default()
        };
        let w = train(&cfg, &tr, &val, opts).expect("training").weights;
        compare(arch, &w, ConvAlgo::default(), &test.images, test.len());
        let dev = Cpu::default();
        let taped = arch.build(&dev, &w, 0.0).unwrap();
        let taped = taped.logits(&dev, &test.images, test.len()).as_vec();
        let correct = taped
            .chunks(10)
            .zip(&test.labels)
            .filter(|(l, &y)| argmax(l) == y as usize)
            .count();
        let e = evaluate(arch, &w, &test).expect("evaluation");
        assert_eq!(e.accuracy, correct as f64 / test.len() as f64, "{arch}");
    }
}
