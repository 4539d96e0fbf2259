//! Our own loops run at the CPU's widest vectors (`engine::simd`), chosen at run time; the
//! claim that this changes no number is checked here on whole runs: a CNN trained with each
//! convolution algorithm and the MLP, then evaluated, give the same bits at the widest vectors
//! as at the baseline. Its own test binary, because the switch is process-wide.

mod common;

use common::runs::{run_on, sets};
use digits::engine::simd;
use digits::models::{Arch, ConvAlgo};
use digits::train::TrainConfig;

#[test]
fn training_and_evaluation_give_the_same_bits_at_every_vector_width() {
    let sets = sets();
    let configs = [
        (Arch::Cnn, ConvAlgo::Winograd, 1),
        (Arch::Cnn, ConvAlgo::Im2col, 1),
        (Arch::Mlp, ConvAlgo::Winograd, 2),
    ];
    for (arch, conv, epochs) in configs {
        let cfg = TrainConfig {
            epochs,
            batch_size: 16,
            patience: None,
            seed: 5,
            conv,
            ..TrainConfig::new(arch)
        };
        simd::force_baseline(true);
        assert_eq!(simd::level(), "baseline");
        let base = run_on(2, &cfg, &sets);
        simd::force_baseline(false);
        let wide = run_on(2, &cfg, &sets);
        assert!(
            wide == base,
            "{arch} ({conv:?}): {} vectors give other numbers than the baseline",
            simd::level()
        );
    }
}
