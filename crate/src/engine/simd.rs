//! Our own loops at the widest vectors this CPU has, chosen at run time.
//!
//! Why: the binary is built for baseline x86-64, so without this every loop of ours (the
//! Winograd transforms, the stencil, the pooling) compiles to 4-lane SSE2 while `gemm` picks
//! AVX-512 or AVX2 at run time; on an AVX-512 machine our loops were then the larger part of a
//! convolution's time. [`wide`] runs a closure inside a function compiled for AVX-512 or AVX2,
//! whichever the CPU has, so that the closure and the `#[inline(always)]` helpers it calls are
//! compiled for it; one binary still runs everywhere.
//!
//! **The numbers do not change.** The loops are elementwise or sum in a written order: wider
//! vectors run the same IEEE operations on more lanes at once, and Rust never fuses a multiply
//! and an add on its own (enabling `fma` lets the compiler use FMA only where the code asks for
//! it, which ours never does). `crate/tests/simd.rs` trains with and without [`wide`]
//! ([`force_baseline`]) and compares the weights bit for bit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Set by [`force_baseline`], or by `DIGITS_SIMD=baseline` in the environment: every [`wide`]
/// call then runs at the baseline.
static BASELINE: AtomicBool = AtomicBool::new(false);

/// `DIGITS_SIMD` (read once): `baseline` runs a whole command at the baseline, to compare;
/// `avx2` runs it at AVX2 on an AVX-512 machine, so that one machine can check that both
/// widths give the same bits.
fn from_env() -> &'static str {
    static ENV: OnceLock<String> = OnceLock::new();
    ENV.get_or_init(|| std::env::var("DIGITS_SIMD").unwrap_or_default())
}

fn baseline_from_env() -> bool {
    from_env() == "baseline"
}

/// Whether AVX-512 is both present and not turned off by `DIGITS_SIMD=avx2`.
#[cfg(target_arch = "x86_64")]
fn use_avx512() -> bool {
    from_env() != "avx2" && has_avx512()
}

fn baseline() -> bool {
    BASELINE.load(Ordering::Relaxed) || baseline_from_env()
}

/// Run every later [`wide`] call at the baseline (`true`) or at the widest vectors (`false`,
/// the default), for the whole process: what the test and `profile_conv` compare.
pub fn force_baseline(on: bool) {
    BASELINE.store(on, Ordering::Relaxed);
}

/// The instruction set [`wide`] compiles for on this CPU: `AVX-512`, `AVX2` or `baseline`.
pub fn level() -> &'static str {
    if baseline() {
        return "baseline";
    }
    #[cfg(target_arch = "x86_64")]
    {
        if use_avx512() {
            return "AVX-512";
        }
        if has_avx2_fma() {
            return "AVX2";
        }
    }
    "baseline"
}

/// The f32 lanes of one vector inside [`wide`] on this CPU: 16 (AVX-512), 8 (AVX2), or `None`
/// at the baseline, where code must not count on fused multiply-adds being instructions.
pub fn lanes() -> Option<usize> {
    match level() {
        "AVX-512" => Some(16),
        "AVX2" => Some(8),
        _ => None,
    }
}

/// Run `f` compiled for the widest vectors of this CPU. Mark the closure and the helpers it
/// calls `#[inline(always)]`: code that is not inlined into it keeps the baseline.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if !baseline() {
        if use_avx512() {
            // SAFETY: the CPU has every feature `avx512` is compiled for (checked just above).
            return unsafe { avx512(f) };
        }
        if has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Whether the CPU has every feature [`avx2`] is compiled for.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Whether the CPU has every feature [`avx512`] is compiled for.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    use std::arch::is_x86_feature_detected as has;
    has!("avx512f")
        && has!("avx512vl")
        && has!("avx512bw")
        && has!("avx512dq")
        && has!("avx2")
        && has!("fma")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
