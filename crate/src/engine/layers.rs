//! Convolution, max pooling, flattening and dropout as dfdx ops and modules.
//!
//! dfdx 0.13 keeps its own `Conv2D`/`MaxPool2D`/`Flatten2D` behind the `nightly` feature, which no
//! current compiler builds. Its public tape API is enough to add ops of our own: an op takes its
//! input's tape (`split_tape`), computes the output on plain slices ([`super::kernels`]), records a
//! backward closure that reads the output's gradient and adds into the input's (and the
//! parameters'), and hands the tape on (`put_tape`). Gradients are keyed by tensor id, so the
//! optimiser finds the parameter gradients exactly where dfdx's own `Linear` leaves them.
//!
//! Every op reads and writes its tensors as flat row-major buffers: dfdx's own ops and
//! `tensor_from_vec` always produce contiguous tensors, which is all that reaches these.
//!
//! The ops are generic over [`Dim`] so the typed published models (`Const` sizes, checked at
//! compile time) and the runtime-sized models of the search (`usize`) share them.

use std::time::Instant;

use dfdx::prelude::*;
use dfdx::tensor::{Cpu, CpuError};
use rayon::prelude::*;

use super::gemm::{self, matmul, Layout};
use super::kernels::{self, ConvDims};
use super::params::{tensor_from, values, NamedTensor};
use super::profile::{self, Phase};
use super::{direct, mix_seed, winograd};

// dfdx's `Tensorlike` trait (what `Gradients` keys on) is crate-private, so these helpers are
// macros: the ghost tensor's concrete type is inferred at each use.

/// The gradient flowing into an op's output (a ghost tensor), taken out of `grads` so that
/// another gradient can be borrowed next. Taken, not copied: an output's gradient is whole
/// when its op's backward pass runs (dfdx runs them in reverse order) and nothing reads it
/// after, so moving it out saves a copy of up to 5 MB a layer and a step.
macro_rules! grad_of {
    ($grads:expr, $t:expr) => {
        std::mem::take(&mut **$grads.get_or_alloc_mut($t)?)
    };
}

/// Add a slice into the gradient of a ghost tensor.
macro_rules! add_grad {
    ($grads:expr, $t:expr, $delta:expr) => {{
        let g = $grads.get_or_alloc_mut($t)?;
        g.iter_mut().zip($delta.iter()).for_each(|(g, d)| *g += d);
    }};
}

/// Add the product `a (m × k) · b (k × n)` into a ghost's gradient. Where `gemm` sums `k` in
/// one block ([`gemm::sums_in_one_block`]), the product accumulates straight into the gradient,
/// each output `g + (a·b)`: the same bits as computing the product apart and adding it, without
/// its buffer and the pass that adds it.
macro_rules! add_product {
    ($grads:expr, $t:expr, ($m:expr, $n:expr, $k:expr), ($a:expr, $la:expr), ($b:expr, $lb:expr)) => {{
        let (m, n, k) = ($m, $n, $k);
        if gemm::sums_in_one_block(k) {
            let g = $grads.get_or_alloc_mut($t)?;
            matmul(m, n, k, $a, $la, $b, $lb, g, true);
        } else {
            let mut product = vec![0.0f32; m * n];
            matmul(m, n, k, $a, $la, $b, $lb, &mut product, false);
            add_grad!($grads, $t, product);
        }
    }};
}

/// A convolution's backward pass from `dy` (its output's gradient, ReLU mask applied), added
/// into the gradients of its weight, bias and (when computed) input ghosts.
macro_rules! conv_grads_into {
    ($grads:expr, $saved:expr, $dy:expr, $d:expr, $opts:expr, $wg:expr, $bg:expr, $xg:expr) => {{
        let grads_of_conv = $saved.backward($dy, $d, $opts);
        add_conv_grads!($grads, grads_of_conv, $wg, $bg, $xg);
    }};
}

/// Add a convolution's `(dw, db, dx)` into the gradients of its weight, bias and input ghosts.
macro_rules! add_conv_grads {
    ($grads:expr, $dw_db_dx:expr, $wg:expr, $bg:expr, $xg:expr) => {{
        let (dw, db, dx) = $dw_db_dx;
        add_grad!($grads, &$wg, dw);
        add_grad!($grads, &$bg, db);
        if let Some(dx) = dx {
            add_grad!($grads, &$xg, dx);
        }
    }};
}

/// Options of one convolution call.
#[derive(Clone, Copy, Debug)]
pub struct ConvOpts {
    /// Apply ReLU to the output (fused: saves a pass over the largest tensor).
    pub relu: bool,
    /// Compute the input's gradient; the first layer's input is the images and needs none.
    pub input_grad: bool,
    /// How the convolution is computed (see [`ConvAlgo`]).
    pub algo: ConvAlgo,
}

/// How a 3×3 convolution is computed. Both compute the same function; their results differ by
/// rounding, so a run records which one trained it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvAlgo {
    /// Lowered onto one GEMM (im2col): the simplest correct form, which the tests compare
    /// Winograd against.
    Im2col,
    /// The fast form, the default: Winograd F(2×2, 3×3), 2.25 times fewer multiplications
    /// (see [`super::winograd`]), where the input has at least [`WINOGRAD_MIN_CHANNELS`]
    /// channels. With fewer (the one-channel first layer, whose arithmetic is too little to
    /// pay for Winograd's transforms), a direct stencil with the pooling fused (see
    /// [`super::direct`]).
    #[default]
    Winograd,
}

impl ConvAlgo {
    pub fn is_default(&self) -> bool {
        *self == ConvAlgo::default()
    }

    /// What a run record without the field means: records were written without it only
    /// while im2col was the default.
    pub fn unrecorded() -> Self {
        ConvAlgo::Im2col
    }
}

impl std::str::FromStr for ConvAlgo {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "im2col" => Ok(ConvAlgo::Im2col),
            "winograd" => Ok(ConvAlgo::Winograd),
            other => Err(format!(
                "unknown convolution algorithm `{other}`: use `im2col` or `winograd`"
            )),
        }
    }
}

impl std::fmt::Display for ConvAlgo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConvAlgo::Im2col => "im2col",
            ConvAlgo::Winograd => "winograd",
        })
    }
}

/// Fewest input channels for which [`ConvAlgo::Winograd`] is used.
pub const WINOGRAD_MIN_CHANNELS: usize = 4;

/// Which kernel computes a 3×3 convolution: one rule for the taped ops here and the
/// forward-only stages of [`super::infer`], so both give the same numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKernel {
    /// The direct stencil with ReLU and pooling fused ([`super::direct`]); pooled
    /// convolutions only (an unpooled one computes the same function by im2col).
    Direct,
    /// Winograd F(2×2, 3×3), pooling as it untransforms ([`super::winograd`]).
    Winograd,
    /// im2col and one GEMM per image, then 2×2 max pooling ([`super::kernels`]).
    Im2col,
}

impl ConvKernel {
    /// The kernel for `algo` on `c_in` input channels: the fast algorithm is Winograd where
    /// the input has enough channels to pay for its transforms, the direct stencil otherwise.
    pub fn choose(algo: ConvAlgo, c_in: usize) -> ConvKernel {
        match algo {
            ConvAlgo::Im2col => ConvKernel::Im2col,
            ConvAlgo::Winograd if c_in >= WINOGRAD_MIN_CHANNELS => ConvKernel::Winograd,
            ConvAlgo::Winograd => ConvKernel::Direct,
        }
    }
}

/// The shape of `winograd::conv_backward_pooled` and `direct::conv_backward_pooled`.
type PooledBackward = fn(
    &[f32],
    &[f32],
    &[f32],
    &[u32],
    u32,
    ConvDims,
    &mut [f32],
    &mut [f32],
    bool,
) -> Option<Vec<f32>>;

/// What the backward pass of a convolution keeps from its forward pass.
enum ConvSaved {
    /// The im2col matrix and the weights.
    Im2col { col: Vec<f32>, w: Vec<f32> },
    /// The input and the transformed weights.
    Winograd { x: Vec<f32>, u: Vec<f32> },
    /// The input and the weights of a direct stencil (see [`direct`]).
    Direct { x: Vec<f32>, w: Vec<f32> },
}

impl ConvSaved {
    /// The convolution's output (ReLU applied when `opts.relu`) and what its gradients need.
    fn forward(
        x: Vec<f32>,
        w: Vec<f32>,
        bias: &[f32],
        d: ConvDims,
        opts: ConvOpts,
    ) -> (Self, Vec<f32>) {
        profile::time(Phase::Convolution, || {
            if ConvKernel::choose(opts.algo, d.c_in) == ConvKernel::Winograd {
                let u = winograd::transform_weights(&w, d.c_out, d.c_in);
                let out = winograd::conv_forward(&x, &u, bias, d, opts.relu);
                (ConvSaved::Winograd { x, u }, out)
            } else {
                let mut col = vec![0.0f32; d.col_len()];
                kernels::im2col(&x, d, &mut col);
                let out = kernels::conv_forward(&col, &w, bias, d, opts.relu);
                (ConvSaved::Im2col { col, w }, out)
            }
        })
    }

    /// `(dw, db, dx)` from `dy`, the gradient of the output already masked by the ReLU; `dx`
    /// only when `opts.input_grad`.
    fn backward(
        &self,
        dy: &[f32],
        d: ConvDims,
        opts: ConvOpts,
    ) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
        let mut dw = vec![0.0f32; d.c_out * d.c_in * 9];
        let mut db = vec![0.0f32; d.c_out];
        let dx = match self {
            ConvSaved::Im2col { col, w } => {
                kernels::conv_backward(col, w, dy, d, &mut dw, &mut db, opts.input_grad)
            }
            ConvSaved::Winograd { x, u } => {
                winograd::conv_backward(x, u, dy, d, &mut dw, &mut db, opts.input_grad)
            }
            // Only the pooled op makes a direct stencil; from a full-size gradient the
            // im2col form computes the same function.
            ConvSaved::Direct { x, w } => {
                let mut col = vec![0.0f32; d.col_len()];
                kernels::im2col(x, d, &mut col);
                kernels::conv_backward(&col, w, dy, d, &mut dw, &mut db, opts.input_grad)
            }
        };
        (dw, db, dx)
    }

    /// The convolution (ReLU when `opts.relu`) followed by 2×2 max pooling: what the gradients
    /// need, the pooled values, and each one's winner (its index into the full-size output).
    /// With `mark_dead`, a winner whose value is not positive under a fused ReLU is [`DEAD`]:
    /// it passes no gradient. Winograd pools as it untransforms (its 2×2 output tiles are the
    /// pooling windows), so its full-size output is never written and its pooling counts as
    /// convolution.
    fn forward_pooled(
        x: Vec<f32>,
        w: Vec<f32>,
        bias: &[f32],
        d: ConvDims,
        opts: ConvOpts,
        mark_dead: bool,
    ) -> (Self, Vec<f32>, Vec<u32>) {
        let (saved, pooled, mut argmax) = match ConvKernel::choose(opts.algo, d.c_in) {
            ConvKernel::Winograd => profile::time(Phase::Convolution, || {
                let u = winograd::transform_weights(&w, d.c_out, d.c_in);
                let (pooled, argmax) = winograd::conv_forward_pooled(&x, &u, bias, d, opts.relu);
                (ConvSaved::Winograd { x, u }, pooled, argmax)
            }),
            ConvKernel::Direct => profile::time(Phase::Convolution, || {
                let (pooled, argmax) = direct::conv_forward_pooled(&x, &w, bias, d, opts.relu);
                (ConvSaved::Direct { x, w }, pooled, argmax)
            }),
            ConvKernel::Im2col => {
                let (saved, conv_out) = Self::forward(x, w, bias, d, opts);
                let (pooled, argmax) = profile::time(Phase::Pooling, || {
                    kernels::maxpool_forward(&conv_out, d.batch * d.c_out, d.h, d.w)
                });
                (saved, pooled, argmax)
            }
        };
        if opts.relu && mark_dead {
            argmax
                .par_iter_mut()
                .zip(&pooled)
                .for_each(|(a, p)| *a = if *p <= 0.0 { DEAD } else { *a });
        }
        (saved, pooled, argmax)
    }

    /// `(dw, db, dx)` from `dp`, the pooled output's gradient, and the winners
    /// [`Self::forward_pooled`] returned. Winograd starts from the pooled gradient; im2col first
    /// routes each pooled gradient to its winner. The time since `started` (the caller's copy
    /// of `dp`) counts toward the first phase, as the two separate ops counted it.
    fn backward_pooled(
        &self,
        dp: &[f32],
        argmax: &[u32],
        d: ConvDims,
        opts: ConvOpts,
        started: Option<std::time::Instant>,
    ) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
        // Winograd and the direct stencil start from the pooled gradient; both take the
        // input, their form of the weights, and the winners.
        let pooled_backward = match self {
            ConvSaved::Winograd { x, u } => {
                Some((winograd::conv_backward_pooled as PooledBackward, x, u))
            }
            ConvSaved::Direct { x, w } => {
                Some((direct::conv_backward_pooled as PooledBackward, x, w))
            }
            ConvSaved::Im2col { .. } => None,
        };
        if let Some((backward, x, weights)) = pooled_backward {
            let mut dw = vec![0.0f32; d.c_out * d.c_in * 9];
            let mut db = vec![0.0f32; d.c_out];
            let dx = backward(
                x,
                weights,
                dp,
                argmax,
                DEAD,
                d,
                &mut dw,
                &mut db,
                opts.input_grad,
            );
            profile::stop(Phase::Convolution, started);
            return (dw, db, dx);
        }
        // Plane by plane: a pooled plane's winners all lie in its own input plane.
        let (hw, pooled_hw) = (d.h * d.w, d.h * d.w / 4);
        let mut dy = vec![0.0f32; d.batch * d.c_out * hw];
        dy.par_chunks_mut(hw)
            .zip(dp.par_chunks(pooled_hw).zip(argmax.par_chunks(pooled_hw)))
            .enumerate()
            .for_each(|(plane, (dst, (g, at)))| {
                let base = plane * hw;
                for (g, &i) in g.iter().zip(at) {
                    if i != DEAD {
                        dst[i as usize - base] += g;
                    }
                }
            });
        profile::stop(Phase::Pooling, started);
        profile::time(Phase::Convolution, || self.backward(&dy, d, opts))
    }
}

/// `dy` with zeros where a fused ReLU's output `y` was not positive: the gradient through the
/// ReLU (with no ReLU fused, `dy` as it is).
fn relu_masked(mut dy: Vec<f32>, y: Option<&[f32]>) -> Vec<f32> {
    if let Some(y) = y {
        for (g, &y) in dy.iter_mut().zip(y) {
            if y <= 0.0 {
                *g = 0.0;
            }
        }
    }
    dy
}

/// Register the backward pass of an op whose output is `out`, with a ReLU fused when `relu`:
/// `backward` gets the gradients, the output's gradient with the ReLU's mask applied, and the
/// time the backward pass started (for the profile).
fn on_masked_grad<S: Shape, T: Tape<f32, Cpu>>(
    tape: &mut T,
    out: &Tensor<S, f32, Cpu>,
    relu: bool,
    backward: impl 'static
        + FnOnce(&mut Gradients<f32, Cpu>, Vec<f32>, Option<Instant>) -> Result<(), CpuError>,
) {
    let og = out.ghost();
    let relu_out = relu.then(|| out.clone());
    tape.add_backward_op(move |grads| {
        let started = profile::start();
        let dy = relu_masked(
            grad_of!(grads, &og),
            relu_out.as_ref().map(values).as_deref(),
        );
        backward(grads, dy, started)
    });
}

fn conv_dims<B: Dim, C: Dim, O: Dim, H: Dim, W: Dim>(x: &(B, C, H, W), o: O) -> ConvDims {
    ConvDims::new(x.0.size(), x.1.size(), o.size(), x.2.size(), x.3.size())
}

/// 3×3 convolution, stride 1, 'same' padding, with bias: `(B, C, H, W) → (B, O, H, W)`.
pub fn conv2d_3x3<B: Dim, C: Dim, O: Dim, H: Dim, W: Dim, T: Tape<f32, Cpu>>(
    x: Tensor<(B, C, H, W), f32, Cpu, T>,
    weight: &Tensor<(O, C, Const<3>, Const<3>), f32, Cpu>,
    bias: &Tensor<(O,), f32, Cpu>,
    opts: ConvOpts,
) -> Tensor<(B, O, H, W), f32, Cpu, T> {
    let (b, _, h, w) = *x.shape();
    let o = weight.shape().0;
    let d = conv_dims(x.shape(), o);
    let (x, mut tape) = x.split_tape();
    let (saved, out_vals) = ConvSaved::forward(values(&x), values(weight), &values(bias), d, opts);
    let out = x.device().tensor_from_vec(out_vals, (b, o, h, w));
    if T::OWNS_TAPE {
        let (xg, wg, bg) = (x.ghost(), weight.ghost(), bias.ghost());
        on_masked_grad(&mut tape, &out, opts.relu, move |grads, dy, started| {
            conv_grads_into!(grads, saved, &dy, d, opts, wg, bg, xg);
            profile::stop(Phase::Convolution, started);
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// 2×2 pooling halves each side: the output's sides must be exactly half the input's.
fn check_halves(input: (usize, usize), output: (usize, usize)) {
    assert!(
        output.0 * 2 == input.0 && output.1 * 2 == input.1,
        "max pooling 2×2 needs even sides"
    );
}

/// A pooled position whose maximum was not positive: with the ReLU fused, its gradient is zero.
const DEAD: u32 = u32::MAX;

/// [`conv2d_3x3`] then 2×2 max pooling, as one op: `(B, C, H, W) → (B, O, H/2, W/2)`.
///
/// The same numbers as the two ops one after the other, bit for bit (a test checks it), with
/// the convolution's full-size output never made a tensor: it is the largest tensor of the
/// CNN, and as an op's output it costs a gradient buffer to zero, fill, copy and mask in every
/// step. Here its gradient is built straight from the pooled one: each pooled gradient goes to
/// the position that won the maximum, unless that maximum was not positive, where the fused
/// ReLU passes no gradient (this is exactly what pooling's backward pass followed by the
/// ReLU's mask computes).
pub fn conv2d_3x3_pooled<
    B: Dim,
    C: Dim,
    O: Dim,
    H: Dim,
    W: Dim,
    Ho: Dim,
    Wo: Dim,
    T: Tape<f32, Cpu>,
>(
    x: Tensor<(B, C, H, W), f32, Cpu, T>,
    weight: &Tensor<(O, C, Const<3>, Const<3>), f32, Cpu>,
    bias: &Tensor<(O,), f32, Cpu>,
    opts: ConvOpts,
    out_h: Ho,
    out_w: Wo,
) -> Tensor<(B, O, Ho, Wo), f32, Cpu, T> {
    let (b, _, h, w) = *x.shape();
    check_halves((h.size(), w.size()), (out_h.size(), out_w.size()));
    let o = weight.shape().0;
    let d = conv_dims(x.shape(), o);
    let (x, mut tape) = x.split_tape();
    let (saved, pooled, argmax) = ConvSaved::forward_pooled(
        values(&x),
        values(weight),
        &values(bias),
        d,
        opts,
        T::OWNS_TAPE,
    );
    let out = x.device().tensor_from_vec(pooled, (b, o, out_h, out_w));
    if T::OWNS_TAPE {
        let (xg, og, wg, bg) = (x.ghost(), out.ghost(), weight.ghost(), bias.ghost());
        tape.add_backward_op(move |grads| {
            let started = profile::start();
            let dp = grad_of!(grads, &og);
            let grads_of_conv = saved.backward_pooled(&dp, &argmax, d, opts, started);
            profile::time(Phase::Convolution, || {
                add_conv_grads!(grads, grads_of_conv, wg, bg, xg);
                Ok::<(), CpuError>(())
            })
        });
    }
    out.put_tape(tape)
}

/// Options of one dense (fully connected) call.
#[derive(Clone, Copy, Debug)]
pub struct DenseOpts {
    /// Apply ReLU to the output (fused into the pass that adds the bias).
    pub relu: bool,
    /// Compute the input's gradient; the first layer's input is the images and needs none.
    pub input_grad: bool,
}

/// Fully connected layer `y = x·Wᵀ + b` on a batch: `(B, I) → (B, O)`, `weight` is `O × I`.
///
/// dfdx's `Linear` runs the product, the broadcast bias and the ReLU as three ops, each with
/// its own buffers and backward pass; fused here they cost one GEMM per product and one pass
/// over the output, which is most of the MLP's step.
pub fn dense<B: Dim, I: Dim, O: Dim, T: Tape<f32, Cpu>>(
    x: Tensor<(B, I), f32, Cpu, T>,
    weight: &Tensor<(O, I), f32, Cpu>,
    bias: &Tensor<(O,), f32, Cpu>,
    opts: DenseOpts,
) -> Tensor<(B, O), f32, Cpu, T> {
    let (b, i) = *x.shape();
    let o = weight.shape().0;
    let (nb, ni, no) = (b.size(), i.size(), o.size());
    let (x, mut tape) = x.split_tape();
    let x_vals = values(&x);
    let w_vals = values(weight);
    let y = profile::time(Phase::Dense, || {
        let mut y = vec![0.0f32; nb * no];
        matmul(
            nb,
            no,
            ni,
            &x_vals,
            Layout::Normal,
            &w_vals,
            Layout::Transposed,
            &mut y,
            false,
        );
        let b_vals = values(bias);
        for row in y.chunks_mut(no) {
            for (v, bo) in row.iter_mut().zip(&b_vals) {
                *v += bo;
                if opts.relu && *v < 0.0 {
                    *v = 0.0;
                }
            }
        }
        y
    });
    let out = x.device().tensor_from_vec(y, (b, o));
    if T::OWNS_TAPE {
        let (xg, wg, bg) = (x.ghost(), weight.ghost(), bias.ghost());
        on_masked_grad(&mut tape, &out, opts.relu, move |grads, dy, started| {
            // dW (O × I) += dyᵀ (O × B) · x (B × I); db = column sums of dy.
            add_product!(
                grads,
                &wg,
                (no, ni, nb),
                (&dy, Layout::Transposed),
                (&x_vals, Layout::Normal)
            );
            let mut db = vec![0.0f32; no];
            for row in dy.chunks(no) {
                db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
            }
            add_grad!(grads, &bg, db);
            if opts.input_grad {
                // dx (B × I) += dy (B × O) · W (O × I)
                add_product!(
                    grads,
                    &xg,
                    (nb, ni, no),
                    (&dy, Layout::Normal),
                    (&w_vals, Layout::Normal)
                );
            }
            profile::stop(Phase::Dense, started);
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// 2×2 max pooling with stride 2 on runtime sizes: `(B, C, H, W) → (B, C, H/2, W/2)`.
pub fn maxpool2x2<B: Dim, C: Dim, H: Dim, W: Dim, Ho: Dim, Wo: Dim, T: Tape<f32, Cpu>>(
    x: Tensor<(B, C, H, W), f32, Cpu, T>,
    out_h: Ho,
    out_w: Wo,
) -> Tensor<(B, C, Ho, Wo), f32, Cpu, T> {
    let (b, c, h, w) = *x.shape();
    check_halves((h.size(), w.size()), (out_h.size(), out_w.size()));
    let (x, mut tape) = x.split_tape();
    let (vals, argmax) =
        kernels::maxpool_forward(&values(&x), b.size() * c.size(), h.size(), w.size());
    let out = x.device().tensor_from_vec(vals, (b, c, out_h, out_w));
    if T::OWNS_TAPE {
        let (xg, og) = (x.ghost(), out.ghost());
        let n_in = x.shape().num_elements();
        tape.add_backward_op(move |grads| {
            let started = profile::start();
            let dy = grad_of!(grads, &og);
            let mut dx = vec![0.0f32; n_in];
            kernels::maxpool_backward_add(&dy, &argmax, &mut dx);
            add_grad!(grads, &xg, dx);
            profile::stop(Phase::Pooling, started);
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// Reinterpret a tensor under another shape with the same number of elements (row-major order
/// kept), as Keras's `Flatten` does. Panics on a size mismatch, which typed callers rule out at
/// compile time (see [`Flatten2D`]).
///
/// Our ops make contiguous tensors, which dfdx reshapes without a copy: the output shares the
/// input's buffer and its gradient slot, so neither pass moves the flattened values (the CNN's
/// largest activation after the first layer). The gradient is the same sum either way: the
/// next layer's backward pass adds into the slot both shapes share.
pub fn reshape<S1: Shape, S2: Shape, T: Tape<f32, Cpu>>(
    x: Tensor<S1, f32, Cpu, T>,
    shape: S2,
) -> Tensor<S2, f32, Cpu, T> {
    assert_eq!(
        x.shape().num_elements(),
        shape.num_elements(),
        "reshape changes the size"
    );
    x.reshape_like(&shape)
}

/// Inverted dropout with a mask drawn from `seed`: each element is zeroed with probability `p`
/// and the survivors scaled by `1/(1-p)`, so inference needs no rescaling.
///
/// dfdx's own dropout draws from the device's RNG, whose state cannot be saved; a mask that is
/// a pure function of (run seed, epoch, batch) is what lets an interrupted run resume to the
/// same weights as an uninterrupted one.
pub fn dropout<S: Shape, T: Tape<f32, Cpu>>(
    x: Tensor<S, f32, Cpu, T>,
    p: f32,
    seed: u64,
) -> Tensor<S, f32, Cpu, T> {
    if p <= 0.0 || !T::OWNS_TAPE {
        return x;
    }
    assert!(p < 1.0, "dropout rate must be below 1");
    let (x, mut tape) = x.split_tape();
    let (mask, out) = profile::time(Phase::Dropout, || {
        let keep = 1.0 / (1.0 - p);
        // Element k is dropped when a hash of (seed, k) falls below p: a counter-based draw,
        // as cheap as a multiply, and the same on any machine and crate version.
        let threshold = (p as f64 * (1u64 << 53) as f64) as u64;
        // Serial on purpose: at these models' sizes (tens of thousands of units) handing the
        // draws to rayon's threads measured no faster (docs/performance.md).
        let mask: Vec<f32> = (0..x.shape().num_elements() as u64)
            .map(|k| {
                if mix_seed(seed, k) >> 11 < threshold {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        let vals: Vec<f32> = values(&x).iter().zip(&mask).map(|(v, m)| v * m).collect();
        (mask, x.device().tensor_from_vec(vals, *x.shape()))
    });
    let (xg, og) = (x.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let started = profile::start();
        let mut dy = grad_of!(grads, &og);
        dy.iter_mut().zip(&mask).for_each(|(g, m)| *g *= m);
        add_grad!(grads, &xg, dy);
        profile::stop(Phase::Dropout, started);
        Ok(())
    });
    out.put_tape(tape)
}

/// Sizes that 2×2 pooling can halve, as types: `<Const<28> as Halve>::Half` is `Const<14>`, so a
/// typed pooling layer's output shape is known, and checked, at compile time.
pub trait Halve: ConstDim {
    type Half: ConstDim;
}

macro_rules! halve {
    ($($n:literal),*) => { $(impl Halve for Const<$n> { type Half = Const<{ $n / 2 }>; })* };
}
halve!(
    2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42, 44, 46, 48, 56,
    64
);

/// Typed fully connected layer from `I` to `O` units (+ fused ReLU). It holds the same tensors
/// as dfdx's `Linear<I, O>` (weight `O × I`, bias `O`) and runs them through [`dense`].
#[derive(Clone, Debug)]
pub struct Dense<const I: usize, const O: usize> {
    pub weight: Tensor<Rank2<O, I>, f32, Cpu>,
    pub bias: Tensor<Rank1<O>, f32, Cpu>,
    pub opts: DenseOpts,
}

impl<const I: usize, const O: usize> Dense<I, O> {
    /// The layer from its stored weight and bias, already checked against the layout.
    pub fn from_named(
        dev: &Cpu,
        weight: &NamedTensor,
        bias: &NamedTensor,
        relu: bool,
        input_grad: bool,
    ) -> Self {
        Dense {
            weight: tensor_from(dev, weight),
            bias: tensor_from(dev, bias),
            opts: DenseOpts { relu, input_grad },
        }
    }
}

impl<const I: usize, const O: usize, B: Dim, T: Tape<f32, Cpu>>
    Module<Tensor<(B, Const<I>), f32, Cpu, T>> for Dense<I, O>
{
    type Output = Tensor<(B, Const<O>), f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward(&self, x: Tensor<(B, Const<I>), f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        Ok(dense(x, &self.weight, &self.bias, self.opts))
    }
}

/// Typed 3×3 'same' convolution layer with `I` input and `O` output channels (+ fused ReLU).
#[derive(Clone, Debug)]
pub struct Conv2D<const I: usize, const O: usize> {
    pub weight: Tensor<Rank4<O, I, 3, 3>, f32, Cpu>,
    pub bias: Tensor<Rank1<O>, f32, Cpu>,
    pub opts: ConvOpts,
}

impl<const I: usize, const O: usize, B: Dim, const H: usize, const W: usize, T: Tape<f32, Cpu>>
    Module<Tensor<(B, Const<I>, Const<H>, Const<W>), f32, Cpu, T>> for Conv2D<I, O>
{
    type Output = Tensor<(B, Const<O>, Const<H>, Const<W>), f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward(
        &self,
        x: Tensor<(B, Const<I>, Const<H>, Const<W>), f32, Cpu, T>,
    ) -> Result<Self::Output, CpuError> {
        Ok(conv2d_3x3(x, &self.weight, &self.bias, self.opts))
    }
}

impl<const I: usize, const O: usize> Conv2D<I, O> {
    /// The layer from its stored weight and bias, its ReLU fused, on the default algorithm;
    /// `input_grad` as in [`ConvOpts`].
    pub fn from_named(
        dev: &Cpu,
        weight: &NamedTensor,
        bias: &NamedTensor,
        input_grad: bool,
    ) -> Self {
        let opts = ConvOpts {
            relu: true,
            input_grad,
            algo: ConvAlgo::default(),
        };
        let (weight, bias) = (tensor_from(dev, weight), tensor_from(dev, bias));
        Conv2D { weight, bias, opts }
    }

    /// This convolution then 2×2 max pooling, as one op ([`conv2d_3x3_pooled`]): what
    /// `MaxPool2D.forward(conv.forward(x))` computes, with typed output sides `H/2 × W/2`.
    #[allow(clippy::type_complexity)]
    pub fn forward_pooled<B: Dim, H: Halve, W: Halve, T: Tape<f32, Cpu>>(
        &self,
        x: Tensor<(B, Const<I>, H, W), f32, Cpu, T>,
    ) -> Tensor<(B, Const<O>, H::Half, W::Half), f32, Cpu, T> {
        conv2d_3x3_pooled(
            x,
            &self.weight,
            &self.bias,
            self.opts,
            Default::default(),
            Default::default(),
        )
    }
}

/// Typed 2×2 max pooling with stride 2.
#[derive(Clone, Copy, Debug, Default)]
pub struct MaxPool2D;

impl<B: Dim, C: Dim, H: Halve, W: Halve, T: Tape<f32, Cpu>>
    Module<Tensor<(B, C, H, W), f32, Cpu, T>> for MaxPool2D
{
    type Output = Tensor<(B, C, H::Half, W::Half), f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward(&self, x: Tensor<(B, C, H, W), f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        Ok(maxpool2x2(x, Default::default(), Default::default()))
    }
}

/// Typed flatten of `(B, C, H, W)` into `(B, N)`. `N == C·H·W` is checked when the model is
/// compiled: a wrong `N` is a build error, not a runtime one.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flatten2D<const N: usize>;

impl<const N: usize, B: Dim, const C: usize, const H: usize, const W: usize, T: Tape<f32, Cpu>>
    Module<Tensor<(B, Const<C>, Const<H>, Const<W>), f32, Cpu, T>> for Flatten2D<N>
{
    type Output = Tensor<(B, Const<N>), f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward(
        &self,
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), f32, Cpu, T>,
    ) -> Result<Self::Output, CpuError> {
        const {
            assert!(
                C * H * W == N,
                "Flatten2D<N>: N must equal C*H*W of its input"
            )
        };
        let b = x.shape().0;
        Ok(reshape(x, (b, Const::<N>)))
    }
}
