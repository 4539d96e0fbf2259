//! One line per short training run: the sha256 of its weights, losses, accuracies and test
//! probabilities as bits (`digits::train::fingerprint`). Two builds or two machines that print
//! the same lines trained and evaluated to the same bits.
//!
//! `make width-test` runs it twice: as built, and built with `gemm`'s AVX-512 kernels left out
//! (its `x86-v4` feature off, so an AVX-512 machine runs the AVX2 kernels), and compares.
//!
//! The runs, on 1,600 synthetic images and 2 threads: the CNN with each convolution algorithm
//! at batch 16 (100 steps), the CNN at the study's batch of 128 (26 steps), the CNN at batch
//! 123 (its last batch one image), the MLP at batch 32 (100 steps) and at batch 99 (its last
//! batch 16 images). Batches of a few images make products that `gemm` would sum by vector
//! lanes (`engine::gemm`).

use digits::models::{Arch, ConvAlgo};
use digits::train::fingerprint::{run_on, small_sets};
use digits::train::TrainConfig;

fn main() {
    let sets = small_sets();
    let runs = [
        (Arch::Cnn, ConvAlgo::Winograd, 16, 1),
        (Arch::Cnn, ConvAlgo::Im2col, 16, 1),
        (Arch::Cnn, ConvAlgo::Winograd, 128, 2),
        (Arch::Cnn, ConvAlgo::Winograd, 123, 1),
        (Arch::Mlp, ConvAlgo::default(), 32, 2),
        (Arch::Mlp, ConvAlgo::default(), 99, 2),
    ];
    for (arch, conv, batch_size, epochs) in runs {
        let cfg = TrainConfig {
            conv,
            ..TrainConfig::fixed(arch, epochs, batch_size, 3)
        };
        let what = match arch {
            Arch::Mlp => format!("{arch}, batch {batch_size}, {epochs} epochs"),
            _ => format!("{arch} ({conv}), batch {batch_size}, {epochs} epochs"),
        };
        match run_on(2, &cfg, &sets) {
            Ok(f) => println!("{what}: {}", f.digest()),
            Err(e) => {
                eprintln!("{what}: {e}");
                std::process::exit(1);
            }
        }
    }
}
