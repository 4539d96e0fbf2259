//! Winograd F(2×2, 3×3) for the 3×3 'same' convolution, forward and both gradients.
//!
//! Why: the CNN's second convolution is nine tenths of its arithmetic, and im2col lowers it to
//! a product that already runs near this machine's GEMM peak, so only fewer operations can
//! make it faster. Winograd's minimal filtering computes each 2×2 output tile from a 4×4 input
//! tile with 16 multiplications per (input, output) channel pair instead of 36: the products
//! become 16 GEMMs, one per tile position ξ, each 2.25 times smaller than im2col's.
//!
//! The forward map is `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A` per tile (Lavin & Gray, "Fast
//! Algorithms for Convolutional Neural Networks", 2016). Both gradients here are the exact
//! adjoints of that same map (transposed transforms, transposed GEMMs), so the weights are
//! trained on the gradient of the function the forward pass computes; the finite-difference
//! and reference tests check it. Results differ from im2col's only by rounding (a relative
//! 1e-6 or so), but they do differ: a run records which algorithm trained it.
//!
//! When 2×2 max pooling follows, as in the published CNN, each 2×2 output tile is exactly one
//! pooling window: [`conv_forward_pooled`] pools as it untransforms, and
//! [`conv_backward_pooled`] starts from the pooled gradient, so the full-size output and its
//! gradient are never made.
//!
//! Work is split into chunks of a few images whose transformed tiles stay in cache; chunks run
//! in parallel with single-threaded GEMMs. The weight gradient is summed over a fixed number
//! of image groups in order, so the numbers do not depend on the thread count.

use rayon::prelude::*;

use super::gemm::{matmul_strided, Strides};
use super::kernels::{self, ConvDims};

/// Tile positions: a 4×4 input tile gives a 2×2 output tile.
const XI: usize = 16;
/// Images per chunk: their transformed tiles (16 × channels × 49 tiles each at 14×14) fit the
/// per-core cache.
const CHUNK: usize = 2;

/// `G a` for a column of a 3×3 kernel.
#[inline(always)]
fn g(a: [f32; 3]) -> [f32; 4] {
    [
        a[0],
        0.5 * (a[0] + a[1] + a[2]),
        0.5 * (a[0] - a[1] + a[2]),
        a[2],
    ]
}

/// `Gᵀ a`, the adjoint of [`g`].
#[inline(always)]
fn gt(a: [f32; 4]) -> [f32; 3] {
    [
        a[0] + 0.5 * (a[1] + a[2]),
        0.5 * (a[1] - a[2]),
        0.5 * (a[1] + a[2]) + a[3],
    ]
}

/// Apply a 1-D transform along both axes of a row-major `R×R` tile: `f(X)` then transposed, i.e.
/// `M X Mᵀ` for the matrix `M` that `f` multiplies by.
macro_rules! both_axes {
    ($f:ident, $x:expr, $r:literal, $s:literal) => {{
        let x = $x;
        // Columns first: t[i][j] = (M x[·][j])[i].
        let mut t = [[0.0f32; $r]; $s];
        for j in 0..$r {
            let col = $f(std::array::from_fn(|i| x[i][j]));
            for i in 0..$s {
                t[i][j] = col[i];
            }
        }
        // Then rows.
        let out: [[f32; $s]; $s] = std::array::from_fn(|i| $f(t[i]));
        out
    }};
}

/// Transform the weights `(O, C, 3, 3)` into `U`: 16 matrices `O × C`, `U[ξ] = (G g Gᵀ)[ξ]`.
pub fn transform_weights(weight: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    assert_eq!(weight.len(), c_out * c_in * 9);
    let mut u = vec![0.0f32; XI * c_out * c_in];
    for (oc, k) in weight.chunks_exact(9).enumerate() {
        let kern: [[f32; 3]; 3] = std::array::from_fn(|i| std::array::from_fn(|j| k[i * 3 + j]));
        let t = both_axes!(g, kern, 3, 4);
        for (xi, v) in t.iter().flatten().enumerate() {
            u[xi * c_out * c_in + oc] = *v;
        }
    }
    u
}

/// The adjoint of [`transform_weights`]: add `Gᵀ dU[·] G` into the weight gradient `(O, C, 3, 3)`.
fn untransform_weight_grad(du: &[f32], c_out: usize, c_in: usize, dw: &mut [f32]) {
    for (oc, k) in dw.chunks_exact_mut(9).enumerate() {
        let t: [[f32; 4]; 4] =
            std::array::from_fn(|i| std::array::from_fn(|j| du[(i * 4 + j) * c_out * c_in + oc]));
        let back = both_axes!(gt, t, 4, 3);
        for (w, v) in k.iter_mut().zip(back.iter().flatten()) {
            *w += v;
        }
    }
}

/// Tile grid of one image: `(rows, cols)` of 2×2 output tiles (odd sides get a partial tile).
fn tiles(d: &ConvDims) -> (usize, usize) {
    (d.h.div_ceil(2), d.w.div_ceil(2))
}

/// Lanes per block of [`lanes`]: eight f32 fill one AVX2 register.
const LANE: usize = 8;

/// Apply `f` (N values in, M out) to every position `t < len` of the `ins` rows, writing the
/// `outs` rows: the transforms run across tiles, so each of their additions is one vector
/// instruction over eight tiles instead of a scalar one per tile.
#[inline(always)]
fn lanes<const N: usize, const M: usize>(
    ins: [&[f32]; N],
    outs: [&mut [f32]; M],
    len: usize,
    f: impl Fn(&[[f32; LANE]; N]) -> [[f32; LANE]; M],
) {
    let ins = ins.map(|r| &r[..len]);
    let mut outs = outs.map(|r| &mut r[..len]);
    // Whole blocks copy a fixed eight lanes, which compile to vector moves; only the last,
    // partial block copies a variable length (a call to memcpy per row).
    let whole = len - len % LANE;
    let mut t = 0;
    while t < whole {
        let x: [[f32; LANE]; N] =
            std::array::from_fn(|k| ins[k][t..t + LANE].try_into().expect("eight lanes"));
        let y = f(&x);
        for (yk, r) in y.iter().zip(outs.iter_mut()) {
            r[t..t + LANE].copy_from_slice(yk);
        }
        t += LANE;
    }
    if t < len {
        let n = len - t;
        let mut x = [[0.0f32; LANE]; N];
        for (xk, r) in x.iter_mut().zip(&ins) {
            xk[..n].copy_from_slice(&r[t..]);
        }
        let y = f(&x);
        for (yk, r) in y.iter().zip(outs.iter_mut()) {
            r[t..].copy_from_slice(&yk[..n]);
        }
    }
}

/// Elementwise `a ± b` over a block of lanes.
#[inline(always)]
fn add(a: [f32; LANE], b: [f32; LANE]) -> [f32; LANE] {
    std::array::from_fn(|l| a[l] + b[l])
}
#[inline(always)]
fn sub(a: [f32; LANE], b: [f32; LANE]) -> [f32; LANE] {
    std::array::from_fn(|l| a[l] - b[l])
}
/// Apply a 1-D transform of lane blocks along both axes of a tile
/// whose entries are blocks of lanes (row-major, `R×R` in, `S×S` out).
macro_rules! both_axes_lanes {
    ($f:expr, $x:expr, $r:literal, $s:literal) => {{
        let x: &[[f32; LANE]] = $x;
        let mut t = [[[0.0f32; LANE]; $r]; $s];
        for j in 0..$r {
            let col = $f(std::array::from_fn(|i| x[i * $r + j]));
            for i in 0..$s {
                t[i][j] = col[i];
            }
        }
        let mut out = [[0.0f32; LANE]; $s * $s];
        for i in 0..$s {
            let row = $f(t[i]);
            out[i * $s..(i + 1) * $s].copy_from_slice(&row);
        }
        out
    }};
}

// The 1-D transforms, each on a column of lane blocks: `Bᵀ a`, its adjoint `B a`, `Aᵀ a` and
// its adjoint `A a`, with
//     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],   Aᵀ = [1 1 1 0; 0 1 −1 −1].

#[inline(always)]
fn bt_l(a: [[f32; LANE]; 4]) -> [[f32; LANE]; 4] {
    [
        sub(a[0], a[2]),
        add(a[1], a[2]),
        sub(a[2], a[1]),
        sub(a[1], a[3]),
    ]
}
#[inline(always)]
fn b_l(a: [[f32; LANE]; 4]) -> [[f32; LANE]; 4] {
    [
        a[0],
        add(sub(a[1], a[2]), a[3]),
        sub(add(a[1], a[2]), a[0]),
        a[3].map(|v| -v),
    ]
}
#[inline(always)]
fn at_l(a: [[f32; LANE]; 4]) -> [[f32; LANE]; 2] {
    [add(add(a[0], a[1]), a[2]), sub(sub(a[1], a[2]), a[3])]
}
#[inline(always)]
fn a_l(v: [[f32; LANE]; 2]) -> [[f32; LANE]; 4] {
    [v[0], add(v[0], v[1]), sub(v[0], v[1]), v[1].map(|x| -x)]
}

/// Take out the rows `first, first + stride, …` (`M` of them, `stride ≥ 1`) of a buffer cut
/// into rows of `len`, as disjoint mutable slices.
fn rows_mut<const M: usize>(
    buf: &mut [f32],
    len: usize,
    first: usize,
    stride: usize,
) -> [&mut [f32]; M] {
    let mut rest = &mut buf[first * len..];
    std::array::from_fn(|k| {
        if k > 0 {
            let r = std::mem::take(&mut rest);
            rest = &mut r[(stride - 1) * len..];
        }
        let (row, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        row
    })
}

/// Rows `first, first + stride, …` of a buffer cut into rows of `len`.
fn rows<const N: usize>(buf: &[f32], len: usize, first: usize, stride: usize) -> [&[f32]; N] {
    std::array::from_fn(|k| &buf[(first + k * stride) * len..][..len])
}

/// A zero-padded copy of one `h × w` plane: one row and column of zeros before, and enough
/// after that every 4×4 tile of the grid lies inside (`(2·th + 2) × (2·tw + 2)`).
fn pad_plane(plane: &[f32], d: &ConvDims, padded: &mut [f32]) {
    let (th, tw) = tiles(d);
    let pw = 2 * tw + 2;
    padded[..(2 * th + 2) * pw].fill(0.0);
    for y in 0..d.h {
        padded[(y + 1) * pw + 1..][..d.w].copy_from_slice(&plane[y * d.w..][..d.w]);
    }
}

/// Transform the input tiles of `n` images into `V`: 16 matrices `C × T` (T = n × tiles),
/// `V[ξ][c][t] = (Bᵀ d B)[ξ]` for the 4×4 input tile `d` of tile `t` in channel `c`.
/// `gathered` is scratch of 16 × T, `padded` of one padded plane.
fn transform_input(
    x: &[f32],
    n: usize,
    d: &ConvDims,
    v: &mut [f32],
    gathered: &mut [f32],
    padded: &mut [f32],
) {
    let (th, tw) = tiles(d);
    let (t_all, per_img) = (n * th * tw, th * tw);
    let (hw, pw) = (d.h * d.w, 2 * tw + 2);
    for c in 0..d.c_in {
        // Gather the 16 entries of every tile of channel c, one row per entry.
        for img in 0..n {
            pad_plane(&x[(img * d.c_in + c) * hw..][..hw], d, padded);
            for k in 0..XI {
                let (i, j) = (k / 4, k % 4);
                let row = &mut gathered[k * t_all + img * per_img..][..per_img];
                for ty in 0..th {
                    let src = &padded[(2 * ty + i) * pw + j..];
                    for (tx, dst) in row[ty * tw..][..tw].iter_mut().enumerate() {
                        *dst = src[2 * tx];
                    }
                }
            }
        }
        let ins = rows::<16>(gathered, t_all, 0, 1);
        let outs = rows_mut::<16>(v, t_all, c, d.c_in);
        lanes(ins, outs, t_all, |x| both_axes_lanes!(bt_l, x, 4, 4));
    }
}

/// The adjoint of [`transform_input`]: add `B dV Bᵀ` of every tile back onto its pixels.
fn untransform_input_grad(
    dv: &[f32],
    n: usize,
    d: &ConvDims,
    dx: &mut [f32],
    gathered: &mut [f32],
    padded: &mut [f32],
) {
    let (th, tw) = tiles(d);
    let (t_all, per_img) = (n * th * tw, th * tw);
    let (hw, pw) = (d.h * d.w, 2 * tw + 2);
    for c in 0..d.c_in {
        let ins = rows::<16>(dv, t_all, c, d.c_in);
        let outs = rows_mut::<16>(gathered, t_all, 0, 1);
        lanes(ins, outs, t_all, |x| both_axes_lanes!(b_l, x, 4, 4));
        for img in 0..n {
            padded[..(2 * th + 2) * pw].fill(0.0);
            for k in 0..XI {
                let (i, j) = (k / 4, k % 4);
                let row = &gathered[k * t_all + img * per_img..][..per_img];
                for ty in 0..th {
                    let dst = &mut padded[(2 * ty + i) * pw + j..];
                    for (tx, v) in row[ty * tw..][..tw].iter().enumerate() {
                        dst[2 * tx] += v;
                    }
                }
            }
            let plane = &mut dx[(img * d.c_in + c) * hw..][..hw];
            for y in 0..d.h {
                let src = &padded[(y + 1) * pw + 1..][..d.w];
                plane[y * d.w..][..d.w]
                    .iter_mut()
                    .zip(src)
                    .for_each(|(p, s)| *p += s);
            }
        }
    }
}

/// The 16 products of one step, one per tile position ξ: `c[ξ] (m×n) = a[ξ] · b[ξ]` (or `+=`),
/// each single-threaded (the chunks already run in parallel). Matrix ξ of each operand starts
/// `ξ` matrices into its buffer.
#[allow(clippy::too_many_arguments)]
fn per_position(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    sa: Strides,
    b: &[f32],
    sb: Strides,
    c: &mut [f32],
    sc: Strides,
    accumulate: bool,
) {
    for xi in 0..XI {
        matmul_strided(
            m,
            n,
            k,
            &a[xi * m * k..],
            sa,
            &b[xi * k * n..],
            sb,
            &mut c[xi * m * n..],
            sc,
            accumulate,
            false,
        );
    }
}

/// Buffers of one chunk of `n` images, reused across its steps.
struct Scratch {
    /// Transformed input tiles, 16 × C × T (or their gradient).
    v: Vec<f32>,
    /// Transformed output tiles, 16 × O × T (or their gradient).
    m: Vec<f32>,
    /// One channel's gathered tiles, 16 × T.
    gathered: Vec<f32>,
    /// One channel's zero-padded plane.
    padded: Vec<f32>,
    /// One output channel's 2×2 tiles, 4 × T.
    out_tiles: Vec<f32>,
}

impl Scratch {
    fn new(n: usize, d: &ConvDims) -> Self {
        let (th, tw) = tiles(d);
        let t_all = n * th * tw;
        Scratch {
            v: vec![0.0; XI * d.c_in * t_all],
            m: vec![0.0; XI * d.c_out * t_all],
            gathered: vec![0.0; XI * t_all],
            padded: vec![0.0; (2 * th + 2) * (2 * tw + 2)],
            out_tiles: vec![0.0; 4 * t_all],
        }
    }
}

thread_local! {
    /// Each thread's last forward scratch, kept for the next call of the same sizes: rayon
    /// makes a fresh `for_each_init` state for every piece of work it splits off, and zeroing
    /// a megabyte and more each time cost a tenth of a forward pass.
    static FORWARD_SCRATCH: std::cell::RefCell<Option<(usize, ConvDims, Scratch)>> =
        const { std::cell::RefCell::new(None) };
}

/// Run `f` with a scratch for chunks of `n` images of sizes `d`, reusing this thread's last one
/// when it has those sizes. Every entry of a scratch is written before it is read, so what
/// a previous call left in it does not matter.
fn with_forward_scratch<R>(n: usize, d: &ConvDims, f: impl FnOnce(&mut Scratch) -> R) -> R {
    let key = ConvDims { batch: 0, ..*d };
    let cached = FORWARD_SCRATCH.with(|c| c.borrow_mut().take());
    let mut s = match cached {
        Some((cn, cd, s)) if cn == n && cd == key => s,
        _ => Scratch::new(n, d),
    };
    let out = f(&mut s);
    FORWARD_SCRATCH.with(|c| *c.borrow_mut() = Some((n, key, s)));
    out
}

/// Transform a chunk's input tiles and multiply them by the weights: `s.m` then holds the
/// 16 matrices `M[ξ] (O × T)`. Returns T.
fn chunk_products(x_c: &[f32], u: &[f32], d: &ConvDims, s: &mut Scratch) -> usize {
    let n = x_c.len() / (d.c_in * d.h * d.w);
    let (th, tw) = tiles(d);
    let t_all = n * th * tw;
    transform_input(x_c, n, d, &mut s.v, &mut s.gathered, &mut s.padded);
    // M[ξ] (O × T) = U[ξ] (O × C) · V[ξ] (C × T)
    per_position(
        d.c_out,
        t_all,
        d.c_in,
        u,
        Strides::rows(d.c_in),
        &s.v,
        Strides::rows(t_all),
        &mut s.m,
        Strides::rows(t_all),
        false,
    );
    t_all
}

/// Output channel `o`'s 2×2 tiles from `s.m` into `s.out_tiles`: row `k = 2i + j` holds output
/// pixel `(i, j)` of every tile, bias not yet added.
fn output_tiles(s: &mut Scratch, o: usize, c_out: usize, t_all: usize) {
    let ins = rows::<16>(&s.m, t_all, o, c_out);
    let outs = rows_mut::<4>(&mut s.out_tiles, t_all, 0, 1);
    lanes(ins, outs, t_all, |m| both_axes_lanes!(at_l, m, 4, 2));
}

/// Forward 3×3 'same' convolution with bias, optionally ReLU: `(B, C, H, W) → (B, O, H, W)`,
/// from `x` and `u = transform_weights(weight)`. The same function as
/// [`super::kernels::conv_forward`] up to rounding.
pub fn conv_forward(x: &[f32], u: &[f32], bias: &[f32], d: ConvDims, relu: bool) -> Vec<f32> {
    let hw = d.h * d.w;
    check_forward(x, u, bias, &d);
    let (th, tw) = tiles(&d);
    let per_img = th * tw;
    let mut out = vec![0.0f32; d.batch * d.c_out * hw];
    out.par_chunks_mut(CHUNK * d.c_out * hw)
        .zip(x.par_chunks(CHUNK * d.c_in * hw))
        .for_each(|(out_c, x_c)| {
            with_forward_scratch(CHUNK, &d, |s| {
                let n = x_c.len() / (d.c_in * hw);
                let t_all = chunk_products(x_c, u, &d, s);
                for o in 0..d.c_out {
                    output_tiles(s, o, d.c_out, t_all);
                    let bo = bias[o];
                    let pw = 2 * tw;
                    for img in 0..n {
                        // Tiles into a plane of whole tiles, then its top-left h × w onto the output.
                        for k in 0..4 {
                            let (i, j) = (k / 2, k % 2);
                            let row = &s.out_tiles[k * t_all + img * per_img..][..per_img];
                            for ty in 0..th {
                                let dst = &mut s.padded[(2 * ty + i) * pw + j..];
                                for (tx, v) in row[ty * tw..][..tw].iter().enumerate() {
                                    dst[2 * tx] = *v;
                                }
                            }
                        }
                        let plane = &mut out_c[(img * d.c_out + o) * hw..][..hw];
                        for y in 0..d.h {
                            let src = &s.padded[y * pw..][..d.w];
                            let dst = &mut plane[y * d.w..][..d.w];
                            if relu {
                                dst.iter_mut()
                                    .zip(src)
                                    .for_each(|(p, v)| *p = (v + bo).max(0.0));
                            } else {
                                dst.iter_mut().zip(src).for_each(|(p, v)| *p = v + bo);
                            }
                        }
                    }
                }
            })
        });
    out
}

fn check_forward(x: &[f32], u: &[f32], bias: &[f32], d: &ConvDims) {
    assert_eq!(x.len(), d.batch * d.c_in * d.h * d.w);
    assert_eq!(u.len(), XI * d.c_out * d.c_in);
    assert_eq!(bias.len(), d.c_out);
}

/// [`conv_forward`] then 2×2 max pooling (even sides), without the full-size output: each 2×2
/// output tile is exactly one pooling window. Returns the pooled `(B, O, H/2, W/2)` values and,
/// for each, the index into the full-size output of the value that won (the first in reading
/// order on ties), which is what [`super::kernels::maxpool_forward`] returns for that output:
/// the same numbers, bit for bit.
pub fn conv_forward_pooled(
    x: &[f32],
    u: &[f32],
    bias: &[f32],
    d: ConvDims,
    relu: bool,
) -> (Vec<f32>, Vec<u32>) {
    check_forward(x, u, bias, &d);
    assert!(
        d.h.is_multiple_of(2) && d.w.is_multiple_of(2),
        "max pooling needs even sides"
    );
    let hw = d.h * d.w;
    assert!(
        d.batch * d.c_out * hw <= u32::MAX as usize,
        "tensor too large for u32 indices"
    );
    let (th, tw) = tiles(&d);
    let per_img = th * tw;
    let pooled_len = d.batch * d.c_out * per_img;
    let (mut pooled, mut argmax) = (vec![0.0f32; pooled_len], vec![0u32; pooled_len]);
    pooled
        .par_chunks_mut(CHUNK * d.c_out * per_img)
        .zip(argmax.par_chunks_mut(CHUNK * d.c_out * per_img))
        .zip(x.par_chunks(CHUNK * d.c_in * hw))
        .enumerate()
        .for_each(|(chunk, ((pooled_c, arg_c), x_c))| {
            with_forward_scratch(CHUNK, &d, |s| {
                let n = x_c.len() / (d.c_in * hw);
                let t_all = chunk_products(x_c, u, &d, s);
                for (o, &bo) in bias.iter().enumerate() {
                    output_tiles(s, o, d.c_out, t_all);
                    let r: [&[f32]; 4] =
                        std::array::from_fn(|k| &s.out_tiles[k * t_all..][..t_all]);
                    for img in 0..n {
                        let plane = (chunk * CHUNK + img) * d.c_out + o;
                        let dst = (img * d.c_out + o) * per_img;
                        // Tiles row by row: no division per tile to find its place.
                        for ty in 0..th {
                            for tx in 0..tw {
                                let t = ty * tw + tx;
                                let tile = img * per_img + t;
                                // The window in reading order, as maxpool_forward reads it.
                                let mut best = f32::NEG_INFINITY;
                                let mut at = 0;
                                for (k, row) in r.iter().enumerate() {
                                    let v = row[tile] + bo;
                                    let v = if relu { v.max(0.0) } else { v };
                                    if k == 0 || v > best {
                                        best = v;
                                        at = k;
                                    }
                                }
                                pooled_c[dst + t] = best;
                                arg_c[dst + t] =
                                    (plane * hw + (2 * ty + at / 2) * d.w + 2 * tx + at % 2) as u32;
                            }
                        }
                    }
                }
            })
        });
    (pooled, argmax)
}

/// Where the gradient of a convolution's output comes from.
enum OutputGrad<'a> {
    /// The full-size gradient `(B, O, H, W)`.
    Full(&'a [f32]),
    /// The gradient of the pooled output and, for each pooled value, the index into the
    /// full-size output of the value that won its window; `dead` marks a window that passes
    /// no gradient.
    Pooled {
        dp: &'a [f32],
        argmax: &'a [u32],
        dead: u32,
    },
}

/// `dM`: the adjoint of the output transform applied to the output gradient of the `n` images
/// from `first` on, 16 matrices `O × T`; also adds each output channel's gradient sum into
/// `db`. `out_tiles` is scratch of 4 × T, `padded` of one plane of whole tiles.
#[allow(clippy::too_many_arguments)]
fn transform_output_grad(
    grad: &OutputGrad,
    first: usize,
    n: usize,
    d: &ConvDims,
    dm: &mut [f32],
    db: &mut [f32],
    out_tiles: &mut [f32],
    padded: &mut [f32],
) {
    let (th, tw) = tiles(d);
    let (t_all, per_img) = (n * th * tw, th * tw);
    let hw = d.h * d.w;
    let pw = 2 * tw;
    let (mut window, mut sum_rows) = (Vec::with_capacity(per_img), Vec::with_capacity(per_img));
    for (o, db_o) in db.iter_mut().enumerate() {
        for img in 0..n {
            let plane_index = (first + img) * d.c_out + o;
            match *grad {
                OutputGrad::Full(dy) => {
                    let plane = &dy[plane_index * hw..][..hw];
                    *db_o += plane.iter().sum::<f32>();
                    // The plane into one of whole tiles (zeros past an odd side), then gathered.
                    if d.h % 2 == 1 || d.w % 2 == 1 {
                        padded.fill(0.0);
                    }
                    for y in 0..d.h {
                        padded[y * pw..][..d.w].copy_from_slice(&plane[y * d.w..][..d.w]);
                    }
                    for k in 0..4 {
                        let (i, j) = (k / 2, k % 2);
                        let row = &mut out_tiles[k * t_all + img * per_img..][..per_img];
                        for ty in 0..th {
                            let src = &padded[(2 * ty + i) * pw + j..];
                            for (tx, dst) in row[ty * tw..][..tw].iter_mut().enumerate() {
                                *dst = src[2 * tx];
                            }
                        }
                    }
                }
                OutputGrad::Pooled { dp, argmax, dead } => {
                    let (dp, argmax) = (
                        &dp[plane_index * per_img..][..per_img],
                        &argmax[plane_index * per_img..][..per_img],
                    );
                    // Each tile's gradient is zero but at its window's winner, found as its
                    // offset from the window's corner (no division per tile). `window[t]` is
                    // the winner's place in the window, 0..4 in reading order, or 4 for none.
                    let base = plane_index * hw;
                    window.clear();
                    for ty in 0..th {
                        for tx in 0..tw {
                            let a = argmax[ty * tw + tx];
                            window.push(if a == dead {
                                4
                            } else {
                                let rel = a as usize - base - (2 * ty * d.w + 2 * tx);
                                let below = usize::from(rel >= d.w);
                                (2 * below + rel - below * d.w) as u8
                            });
                        }
                    }
                    // The channel's sum runs over the winners in the full plane's reading
                    // order, as the full-size sum does (its other terms are zeros).
                    sum_rows.clear();
                    for ty in 0..th {
                        for i in 0..2u8 {
                            for tx in 0..tw {
                                let t = ty * tw + tx;
                                if window[t] < 4 && window[t] / 2 == i {
                                    sum_rows.push(dp[t]);
                                }
                            }
                        }
                    }
                    *db_o += sum_rows.iter().sum::<f32>();
                    for t in 0..per_img {
                        let tile = img * per_img + t;
                        for k in 0..4 {
                            out_tiles[k * t_all + tile] = 0.0;
                        }
                        let k = usize::from(window[t]);
                        if k < 4 {
                            out_tiles[k * t_all + tile] = dp[t];
                        }
                    }
                }
            }
        }
        let ins = rows::<4>(out_tiles, t_all, 0, 1);
        let outs = rows_mut::<16>(dm, t_all, o, d.c_out);
        lanes(ins, outs, t_all, |g| both_axes_lanes!(a_l, g, 2, 4));
    }
}

/// Gradients of [`conv_forward`] given `dy` (already masked by the ReLU where one was fused):
/// adds into `dw` `(O, C, 3, 3)` and `db`, and returns `dx` when asked.
pub fn conv_backward(
    x: &[f32],
    u: &[f32],
    dy: &[f32],
    d: ConvDims,
    dw: &mut [f32],
    db: &mut [f32],
    want_dx: bool,
) -> Option<Vec<f32>> {
    assert_eq!(dy.len(), d.batch * d.c_out * d.h * d.w);
    backward(x, u, &OutputGrad::Full(dy), d, dw, db, want_dx)
}

/// Gradients of [`conv_forward_pooled`] given `dp`, the pooled output's gradient, and the
/// winners it returned, with `dead` marking windows that pass no gradient (where a fused ReLU
/// left no positive value): the same numbers as [`conv_backward`] given the full-size gradient
/// that pooling's backward pass would build, without building it.
#[allow(clippy::too_many_arguments)]
pub fn conv_backward_pooled(
    x: &[f32],
    u: &[f32],
    dp: &[f32],
    argmax: &[u32],
    dead: u32,
    d: ConvDims,
    dw: &mut [f32],
    db: &mut [f32],
    want_dx: bool,
) -> Option<Vec<f32>> {
    assert_eq!(dp.len(), d.batch * d.c_out * d.h * d.w / 4);
    assert_eq!(argmax.len(), dp.len());
    backward(
        x,
        u,
        &OutputGrad::Pooled { dp, argmax, dead },
        d,
        dw,
        db,
        want_dx,
    )
}

fn backward(
    x: &[f32],
    u: &[f32],
    grad: &OutputGrad,
    d: ConvDims,
    dw: &mut [f32],
    db: &mut [f32],
    want_dx: bool,
) -> Option<Vec<f32>> {
    let hw = d.h * d.w;
    assert_eq!(x.len(), d.batch * d.c_in * hw);
    assert_eq!(dw.len(), d.c_out * d.c_in * 9);
    let (th, tw) = tiles(&d);
    let mut dx = vec![0.0f32; if want_dx { x.len() } else { 0 }];
    // Each group owns a fixed range of images (and so of dx) and its own dU and db partials.
    // Each group owns its images' part of dx.
    let (bounds, dx_parts) = kernels::image_groups(d.batch, d.c_in * hw, &mut dx);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = bounds
        .par_iter()
        .zip(dx_parts)
        .map(|(&(first, last), dx_g)| {
            let mut du = vec![0.0f32; XI * d.c_out * d.c_in];
            let mut dbp = vec![0.0f32; d.c_out];
            let mut s = Scratch::new(CHUNK, &d);
            for start in (first..last).step_by(CHUNK) {
                let n = CHUNK.min(last - start);
                let t_all = n * th * tw;
                let x_c = &x[start * d.c_in * hw..][..n * d.c_in * hw];
                transform_input(x_c, n, &d, &mut s.v, &mut s.gathered, &mut s.padded);
                transform_output_grad(
                    grad,
                    start,
                    n,
                    &d,
                    &mut s.m,
                    &mut dbp,
                    &mut s.out_tiles,
                    &mut s.padded,
                );
                // dU[ξ] (O × C) += dM[ξ] (O × T) · V[ξ]ᵀ (T × C)
                per_position(
                    d.c_out,
                    d.c_in,
                    t_all,
                    &s.m,
                    Strides::rows(t_all),
                    &s.v,
                    Strides::transposed(t_all),
                    &mut du,
                    Strides::rows(d.c_in),
                    true,
                );
                if want_dx {
                    // dV[ξ] (C × T) = U[ξ]ᵀ (C × O) · dM[ξ] (O × T); reuse `v` for it.
                    per_position(
                        d.c_in,
                        t_all,
                        d.c_out,
                        u,
                        Strides::transposed(d.c_in),
                        &s.m,
                        Strides::rows(t_all),
                        &mut s.v,
                        Strides::rows(t_all),
                        false,
                    );
                    let local = (start - first) * d.c_in * hw;
                    untransform_input_grad(
                        &s.v,
                        n,
                        &d,
                        &mut dx_g[local..][..n * d.c_in * hw],
                        &mut s.gathered,
                        &mut s.padded,
                    );
                }
            }
            (du, dbp)
        })
        .collect();
    let mut du = vec![0.0f32; XI * d.c_out * d.c_in];
    for (part, dbp) in partials {
        du.iter_mut().zip(part).for_each(|(s, p)| *s += p);
        db.iter_mut().zip(dbp).for_each(|(s, p)| *s += p);
    }
    untransform_weight_grad(&du, d.c_out, d.c_in, dw);
    want_dx.then_some(dx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kernels;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random(n: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    fn dims(rng: &mut StdRng) -> ConvDims {
        ConvDims {
            batch: rng.gen_range(1..8),
            c_in: rng.gen_range(1..5),
            c_out: rng.gen_range(1..7),
            h: rng.gen_range(1..10),
            w: rng.gen_range(1..10),
        }
    }

    fn im2col_of(x: &[f32], d: ConvDims) -> Vec<f32> {
        let mut col = vec![0.0; d.col_len()];
        kernels::im2col(x, d, &mut col);
        col
    }

    fn close(a: &[f32], b: &[f32], what: &str, d: ConvDims) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() < 1e-4 * (1.0 + y.abs()),
                "{what} {d:?}: {x} vs {y}"
            );
        }
    }

    #[test]
    fn every_transform_pair_is_adjoint() {
        // <f(x), y> == <x, f*(y)> for each transform and its adjoint, lane by lane.
        let mut rng = StdRng::seed_from_u64(2);
        let mut block = || -> [f32; LANE] { std::array::from_fn(|_| rng.gen_range(-1.0..1.0)) };
        let dot = |p: &[[f32; LANE]], q: &[[f32; LANE]], l: usize| {
            p.iter().zip(q).map(|(a, b)| a[l] * b[l]).sum::<f32>()
        };
        let x4: [[f32; LANE]; 4] = std::array::from_fn(|_| block());
        let y4: [[f32; LANE]; 4] = std::array::from_fn(|_| block());
        let y2: [[f32; LANE]; 2] = std::array::from_fn(|_| block());
        for l in 0..LANE {
            assert!((dot(&bt_l(x4), &y4, l) - dot(&x4, &b_l(y4), l)).abs() < 1e-5);
            assert!((dot(&at_l(x4), &y2, l) - dot(&x4, &a_l(y2), l)).abs() < 1e-5);
            let x3: [f32; 3] = std::array::from_fn(|k| x4[k][l]);
            let y: [f32; 4] = std::array::from_fn(|k| y4[k][l]);
            let (gx, gty) = (g(x3), gt(y));
            let lhs: f32 = gx.iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f32 = x3.iter().zip(&gty).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-5);
        }
    }

    #[test]
    fn forward_matches_im2col_on_random_shapes_including_odd_sides() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..12 {
            let d = dims(&mut rng);
            let x = random(d.batch * d.c_in * d.h * d.w, &mut rng);
            let w = random(d.c_out * d.c_in * 9, &mut rng);
            let bias = random(d.c_out, &mut rng);
            let u = transform_weights(&w, d.c_out, d.c_in);
            for relu in [false, true] {
                let want = kernels::conv_forward(&im2col_of(&x, d), &w, &bias, d, relu);
                let got = conv_forward(&x, &u, &bias, d, relu);
                close(&got, &want, "forward", d);
            }
        }
    }

    #[test]
    fn gradients_match_im2col_on_random_shapes() {
        let mut rng = StdRng::seed_from_u64(8);
        for _ in 0..12 {
            let d = dims(&mut rng);
            let x = random(d.batch * d.c_in * d.h * d.w, &mut rng);
            let w = random(d.c_out * d.c_in * 9, &mut rng);
            let dy = random(d.batch * d.c_out * d.h * d.w, &mut rng);
            let (mut dw_ref, mut db_ref) = (vec![0.5; w.len()], vec![0.25; d.c_out]);
            let dx_ref = kernels::conv_backward(
                &im2col_of(&x, d),
                &w,
                &dy,
                d,
                &mut dw_ref,
                &mut db_ref,
                true,
            )
            .unwrap();
            // Start from the same non-zero values: the kernels add into dw and db.
            let (mut dw, mut db) = (vec![0.5; w.len()], vec![0.25; d.c_out]);
            let u = transform_weights(&w, d.c_out, d.c_in);
            let dx = conv_backward(&x, &u, &dy, d, &mut dw, &mut db, true).unwrap();
            close(&dx, &dx_ref, "dx", d);
            close(&dw, &dw_ref, "dw", d);
            close(&db, &db_ref, "db", d);
            let (mut dw2, mut db2) = (vec![0.5; w.len()], vec![0.25; d.c_out]);
            assert!(conv_backward(&x, &u, &dy, d, &mut dw2, &mut db2, false).is_none());
            assert_eq!(dw2, dw, "the weight gradient must not depend on want_dx");
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let mut rng = StdRng::seed_from_u64(9);
        let d = ConvDims {
            batch: 9,
            c_in: 5,
            c_out: 6,
            h: 14,
            w: 14,
        };
        let x = random(d.batch * d.c_in * 196, &mut rng);
        let w = random(d.c_out * d.c_in * 9, &mut rng);
        let dy = random(d.batch * d.c_out * 196, &mut rng);
        let u = transform_weights(&w, d.c_out, d.c_in);
        let run = |threads: usize| {
            crate::engine::with_threads(threads, || {
                let y = conv_forward(&x, &u, &w[..d.c_out], d, true);
                let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; d.c_out]);
                let dx = conv_backward(&x, &u, &dy, d, &mut dw, &mut db, true).unwrap();
                (y, dw, db, dx)
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn pooled_forward_and_backward_equal_the_full_size_ones_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(10);
        for _ in 0..6 {
            let d = ConvDims {
                batch: rng.gen_range(1..6),
                c_in: rng.gen_range(1..5),
                c_out: rng.gen_range(1..6),
                h: 2 * rng.gen_range(1..5),
                w: 2 * rng.gen_range(1..5),
            };
            let x = random(d.batch * d.c_in * d.h * d.w, &mut rng);
            let w = random(d.c_out * d.c_in * 9, &mut rng);
            // Negative biases leave some windows without a positive value.
            let bias: Vec<f32> = (0..d.c_out).map(|_| rng.gen_range(-1.5..0.5)).collect();
            let u = transform_weights(&w, d.c_out, d.c_in);
            for relu in [true, false] {
                let full = conv_forward(&x, &u, &bias, d, relu);
                let (want, want_arg) = kernels::maxpool_forward(&full, d.batch * d.c_out, d.h, d.w);
                let (got, mut arg) = conv_forward_pooled(&x, &u, &bias, d, relu);
                assert_eq!(got, want, "{d:?}");
                assert_eq!(arg, want_arg, "{d:?}");
                // Windows whose maximum is not positive pass nothing under a ReLU.
                const DEAD: u32 = u32::MAX;
                if relu {
                    for (a, p) in arg.iter_mut().zip(&got) {
                        if *p <= 0.0 {
                            *a = DEAD;
                        }
                    }
                }
                let dp = random(got.len(), &mut rng);
                let mut dy = vec![0.0f32; full.len()];
                for (g, &a) in dp.iter().zip(&arg) {
                    if a != DEAD {
                        dy[a as usize] += g;
                    }
                }
                let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; d.c_out]);
                let dx = conv_backward(&x, &u, &dy, d, &mut dw, &mut db, true);
                let (mut dw2, mut db2) = (vec![0.0; w.len()], vec![0.0; d.c_out]);
                let dx2 =
                    conv_backward_pooled(&x, &u, &dp, &arg, DEAD, d, &mut dw2, &mut db2, true);
                assert_eq!((dx2, dw2, db2), (dx, dw, db), "{d:?}, relu {relu}");
            }
        }
    }
}
