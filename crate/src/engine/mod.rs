//! The small neural-network engine the models run on, built over dfdx's tape.
//!
//! dfdx 0.13's own convolution and pooling need its `nightly` feature, so the ops here stand on
//! its public tape API instead: each op computes its forward pass with our kernels and records
//! a backward closure on the tape.
//!
//! - [`layers`]: the ops (dense, 3×3 convolution with its ReLU and 2×2 max pooling fused,
//!   pooling, dropout) as dfdx tape operations, with the convolution algorithm to use.
//! - [`kernels`]: im2col convolution, pooling and their gradients on plain slices.
//! - [`winograd`]: Winograd F(2×2, 3×3) convolution and its exact adjoint.
//! - [`microkernel`]: the Winograd products of a block of output channels, kept in cache for the
//!   pooled forward pass, rounding as `gemm` does.
//! - [`direct`]: the direct 3×3 stencil with ReLU and pooling fused, for few input channels.
//! - [`infer`]: the forward pass alone on plain slices (evaluation and prediction): no tape,
//!   weights prepared once, each layer one fused kernel over a large batch.
//! - [`gemm`]: the matrix products everything above reduces to, and the backend that ran them.
//! - [`params`]: weights as plain data (named tensors), their initialisation and their layout.
//! - [`simd`]: our own loops compiled for the CPU's widest vectors, chosen at run time.
//! - [`profile`]: per-phase timers of a training step, off unless a benchmark turns them on.

pub mod direct;
pub mod gemm;
pub mod infer;
pub mod kernels;
pub mod layers;
pub mod microkernel;
pub mod params;
pub mod profile;
pub mod simd;
pub mod winograd;

/// A 64-bit mix of a seed and a salt (SplitMix64's finaliser), so that each epoch, batch and
/// layer draws from its own stream while staying a pure function of the run's seed.
pub fn mix_seed(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
