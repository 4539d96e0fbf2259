//! A cheap, opt-in account of where a training step's time goes, by kind of work.
//!
//! Our ops add the nanoseconds they spend to one counter per [`Phase`] while profiling is on;
//! dfdx's own ops (the loss) are measured as what remains of a step. The
//! counters are process-wide atomics, so they cost nothing measurable when off and are summed
//! correctly across rayon's threads (each op is timed once, on the thread that calls it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Kinds of work in a training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Convolution,
    Dense,
    Pooling,
    /// Dropout. The flatten is in no phase: it shares its input's buffer and costs nothing.
    Dropout,
    Optimiser,
    /// Gathering a batch and its one-hot labels.
    DataPreparation,
    Augmentation,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Convolution,
        Phase::Dense,
        Phase::Pooling,
        Phase::Dropout,
        Phase::Optimiser,
        Phase::DataPreparation,
        Phase::Augmentation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Convolution => "convolution",
            Phase::Dense => "dense",
            Phase::Pooling => "pooling",
            Phase::Dropout => "dropout",
            Phase::Optimiser => "optimiser",
            Phase::DataPreparation => "data preparation",
            Phase::Augmentation => "augmentation",
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];

/// Turn the counters on (and zero them) or off.
pub fn enable(on: bool) {
    reset();
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn reset() {
    NANOS.iter().for_each(|n| n.store(0, Ordering::Relaxed));
}

/// Seconds counted for each phase since the last reset.
pub fn totals() -> Vec<(Phase, f64)> {
    Phase::ALL
        .iter()
        .map(|&p| (p, NANOS[p as usize].load(Ordering::Relaxed) as f64 * 1e-9))
        .collect()
}

/// The start of a timed section (`None` when profiling is off), for code that cannot be
/// wrapped in a closure, such as a backward op that returns early with `?`.
#[inline]
pub fn start() -> Option<Instant> {
    ENABLED.load(Ordering::Relaxed).then(Instant::now)
}

/// Add the time since `started` to `phase`.
#[inline]
pub fn stop(phase: Phase, started: Option<Instant>) {
    if let Some(t) = started {
        NANOS[phase as usize].fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Run `f`, adding its wall time to `phase` when profiling is on.
#[inline]
pub fn time<T>(phase: Phase, f: impl FnOnce() -> T) -> T {
    timed(&NANOS[phase as usize], f)
}

/// Run `f`, adding its wall time to `counter` when profiling is on.
#[inline]
fn timed<T>(counter: &AtomicU64, f: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    let start = Instant::now();
    let out = f();
    counter.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    out
}

/// The steps of a Winograd convolution, timed apart for `profile_conv` (inside the
/// convolution phase above; the same switch turns them on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinogradStep {
    /// The input's tiles into `V`: in the backward pass, and in the forward pass where its
    /// products go to `gemm` (the fused pass transforms inside [`WinogradStep::ForwardOutput`]).
    InputTransform,
    /// The forward products, untransform and pooling (fused with the input transform, or
    /// `gemm` then the untransform).
    ForwardOutput,
    /// The output gradient's tiles into `dM`, with the bias gradient.
    OutputGradTransform,
    /// `dU += dM · Vᵀ`, group by group.
    WeightGradProducts,
    /// `dV = Uᵀ · dM`.
    InputGradProducts,
    /// `dV`'s tiles added back onto the input gradient's pixels.
    InputGradUntransform,
}

impl WinogradStep {
    pub const ALL: [WinogradStep; 6] = [
        WinogradStep::InputTransform,
        WinogradStep::ForwardOutput,
        WinogradStep::OutputGradTransform,
        WinogradStep::WeightGradProducts,
        WinogradStep::InputGradProducts,
        WinogradStep::InputGradUntransform,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WinogradStep::InputTransform => "input transform",
            WinogradStep::ForwardOutput => "forward products, untransform, pooling",
            WinogradStep::OutputGradTransform => "output-gradient transform",
            WinogradStep::WeightGradProducts => "weight-gradient products",
            WinogradStep::InputGradProducts => "input-gradient products",
            WinogradStep::InputGradUntransform => "input-gradient untransform",
        }
    }
}

static STEP_NANOS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];

/// Run `f`, adding its wall time to `step` when profiling is on.
#[inline]
pub fn time_step<T>(step: WinogradStep, f: impl FnOnce() -> T) -> T {
    timed(&STEP_NANOS[step as usize], f)
}

/// Seconds counted for each Winograd step since the last [`step_totals`] (which zeroes them).
pub fn step_totals() -> Vec<(WinogradStep, f64)> {
    WinogradStep::ALL
        .iter()
        .map(|&s| {
            (
                s,
                STEP_NANOS[s as usize].swap(0, Ordering::Relaxed) as f64 * 1e-9,
            )
        })
        .collect()
}
