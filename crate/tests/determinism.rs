//! The same seed gives the same numbers whatever the thread count, shown for whole runs: a CNN
//! trained for two hundred steps with each convolution algorithm, the MLP through plain
//! `train()`, and what each then answers on a test set, which the forward-only pass computes
//! (checked alone too, across its batch split). The kernels' own tests check the parts;
//! these check that nothing between them (batching, reductions, the optimiser, evaluation)
//! depends on how many threads there are.

use digits::data::synthetic::blocks;
use digits::engine::infer::INFER_BATCH;
use digits::eval::{evaluate, predict_probabilities};
use digits::models::{Arch, ConvAlgo};
use digits::runtime::with_threads;
use digits::train::fingerprint::{run_on, small_sets, Fingerprint};
use digits::train::TrainConfig;

const THREADS: [usize; 4] = [1, 2, 3, 8];

fn assert_same_on_every_thread_count(what: &str, cfg: &TrainConfig) {
    let sets = small_sets();
    let runs: Vec<Fingerprint> = THREADS
        .iter()
        .map(|&t| run_on(t, cfg, &sets).expect("training"))
        .collect();
    for (t, run) in THREADS.iter().zip(&runs).skip(1) {
        assert!(
            *run == runs[0],
            "{what}: {t} threads give other numbers than 1 thread"
        );
    }
    // The comparison can fail: another seed gives other numbers.
    let other = run_on(
        2,
        &TrainConfig {
            seed: cfg.seed + 1,
            ..cfg.clone()
        },
        &sets,
    )
    .expect("training");
    assert_ne!(
        other.weights, runs[0].weights,
        "{what}: the seed changes nothing"
    );
}

#[test]
fn a_cnn_run_of_two_hundred_steps_is_bit_identical_on_one_two_three_and_eight_threads() {
    for conv in [ConvAlgo::Winograd, ConvAlgo::Im2col] {
        // 1,600 images in batches of 16: 100 steps an epoch, two epochs.
        let cfg = TrainConfig {
            conv,
            ..TrainConfig::fixed(Arch::Cnn, 2, 16, 11)
        };
        assert_same_on_every_thread_count(&format!("cnn ({conv:?})"), &cfg);
    }
}

#[test]
fn an_mlp_trained_by_plain_train_is_bit_identical_on_one_two_three_and_eight_threads() {
    let cfg = TrainConfig::fixed(Arch::Mlp, 3, 32, 5);
    assert_same_on_every_thread_count("mlp", &cfg);
}

/// The forward-only pass that evaluation runs gives the same probabilities, bit for bit, on
/// every thread count: for both published models and both convolution algorithms, on more
/// images than one of its batches holds, so the split between batches is crossed too.
#[test]
fn forward_only_evaluation_is_bit_identical_on_one_two_three_and_eight_threads() {
    let test = blocks(INFER_BATCH + 100, 4, false);
    for (arch, conv) in [
        (Arch::Cnn, ConvAlgo::Winograd),
        (Arch::Cnn, ConvAlgo::Im2col),
        (Arch::Mlp, ConvAlgo::default()),
    ] {
        let weights = arch.init(8);
        let net = arch
            .inference_net(&weights, conv)
            .expect("fresh weights fit");
        let on = |threads: usize| -> Vec<u32> {
            with_threads(threads, || predict_probabilities(&net, &test))
                .iter()
                .map(|p| p.to_bits())
                .collect()
        };
        let one = on(1);
        assert_eq!(one.len(), test.len() * 10);
        for t in &THREADS[1..] {
            assert!(on(*t) == one, "{arch} ({conv}): {t} threads differ");
        }
        // `evaluate` (the default algorithm) is this same pass.
        if conv.is_default() {
            let e = evaluate(arch, &weights, &test).expect("evaluation");
            let bits: Vec<u32> = e.probabilities.iter().map(|p| p.to_bits()).collect();
            assert!(bits == one, "{arch}: evaluate runs another pass");
        }
    }
}
