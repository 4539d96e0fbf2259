//! Our own loops run at the CPU's widest vectors (`engine::simd`), chosen at run time; the
//! claim that this changes no number is checked here on whole runs: a CNN trained with each
//! convolution algorithm and the MLP, then evaluated, give the same bits at the widest vectors
//! as at the baseline. Its own test binary, because the switch is process-wide.

use digits::engine::simd;
use digits::models::{Arch, ConvAlgo};
use digits::train::fingerprint::{run_on, small_sets};
use digits::train::TrainConfig;

#[test]
fn training_and_evaluation_give_the_same_bits_at_every_vector_width() {
    let sets = small_sets();
    let configs = [
        (Arch::Cnn, ConvAlgo::Winograd, 1),
        (Arch::Cnn, ConvAlgo::Im2col, 1),
        (Arch::Mlp, ConvAlgo::Winograd, 2),
    ];
    for (arch, conv, epochs) in configs {
        let cfg = TrainConfig {
            conv,
            ..TrainConfig::fixed(arch, epochs, 16, 5)
        };
        simd::force_baseline(true);
        assert_eq!(simd::level(), "baseline");
        let base = run_on(2, &cfg, &sets).expect("training");
        simd::force_baseline(false);
        let wide = run_on(2, &cfg, &sets).expect("training");
        assert!(
            wide == base,
            "{arch} ({conv:?}): {} vectors give other numbers than the baseline",
            simd::level()
        );
    }
}
