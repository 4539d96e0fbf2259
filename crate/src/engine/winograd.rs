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
//! # Layout and threading
//!
//! A pass covers several images at once (see [`PASS_COLS`]): its transformed tiles are
//! matrices whose `T` columns are every tile of every image of the pass, image by image, so
//! each of the 16 products per pass has `T` in the hundreds. Each buffer is laid out so that
//! whoever writes it owns a contiguous part, and the products read the others in place
//! through strides:
//! - the input transform writes `V` channel by channel (`[C][ξ][T]`), one task per channel;
//! - the products write `M`, `dV` and `dU` position by position (`[ξ][·][·]`), one task per ξ,
//!   each product single-threaded;
//! - the output-gradient transform writes `dM` by output channel (`[O][ξ][T]`);
//! - the output transform and the input gradient's untransform write whole images, one task
//!   per group of images.
//!
//! **The pooled forward pass, fused.** Where pooling follows and the CPU has AVX-512 or AVX2,
//! [`conv_forward_pooled`] works in passes of one group of images, one task each, and never
//! writes `M`: the task transforms its images' tiles into a `V` of its own (half a MB), then,
//! block by block of 12 output channels, computes the block's 16 products with our own kernel
//! ([`super::microkernel`]) into a buffer of a few hundred KB, and transforms, pools and writes
//! them out from there while they are in its core's cache. Its products round as `gemm`'s do,
//! and each tile's transforms are the same operations, so the results are the same bits as
//! the path above (which the baseline still takes).
//!
//! Every task writes its own elements and every sum runs in an order fixed by the shapes, so
//! the numbers do not depend on the thread count. The one long sum, the weight gradient's over
//! all tiles, is cut into fixed groups of images (see [`GROUP_COLS`]).

use std::sync::Mutex;

use rayon::prelude::*;

use super::gemm::{matmul_strided, summed_by_vector_width, Strides};
use super::kernels::{
    optional_pieces, pieces, pool_windows, window_corners, winner_place, ConvDims,
};
use super::microkernel::{block_products, pack_weights, padded, BLOCK_ROWS};
use super::profile::{time_step, WinogradStep::*};
use super::simd::{self, wide};

/// Tile positions: a 4×4 input tile gives a 2×2 output tile.
const XI: usize = 16;

/// Most tile columns in one group of images, the unit of the weight gradient's sum. The sum
/// over all tiles of a batch (6,272 at batch 128 and 14×14) must not be handed to `gemm` as one
/// product: `gemm` 0.19 cuts the inner dimension into blocks of `kc` values whose size comes
/// from the CPU's cache sizes, and sums block by block, so a long inner dimension would be
/// summed in an order, and to a float result, that depends on the machine. `kc` is never below
/// `min(k, 512)` (`gemm-common` 0.19, `cache::kernel_params`: `.max(512).min(k)`, and `k.min(512)`
/// for small products), so a product with `k ≤ 512` is one block on every machine. Each group's
/// product is such a product, added onto the running sum in group order: the same float result
/// everywhere. 256 leaves room below that bound and keeps each group's product long enough.
const GROUP_COLS: usize = 256;

/// Most tile columns in one pass: two groups of 14×14 images (10 images, 490 tiles). A pass's
/// buffers then take 7 MB at 32 → 192 channels, and stay in the last-level cache between the
/// transforms and the products. Measured on a 2-core AVX-512 machine, a whole batch of 128 in
/// one pass (6,272 columns) made the products about an eighth faster (60% of the GEMM peak
/// instead of 52%) but the whole convolution about half again slower: its 77 MB `M` goes to
/// memory and back, and the transforms then wait on it.
const PASS_COLS: usize = 512;

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

/// `Bᵀ a`: the input transform ([`transform_tile_row`]) computes it inline; the tests check
/// it against its adjoint and the two transforms against each other.
#[cfg(test)]
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

/// Like [`lanes`], in place: `f` reads the first `N` of the `M` rows and writes all `M` (each
/// block is read whole before any of it is written).
#[inline(always)]
fn lanes_in_place<const N: usize, const M: usize>(
    rows: [&mut [f32]; M],
    len: usize,
    f: impl Fn(&[[f32; LANE]; N]) -> [[f32; LANE]; M],
) {
    let mut rows = rows.map(|r| &mut r[..len]);
    let whole = len - len % LANE;
    let mut t = 0;
    while t < whole {
        let x: [[f32; LANE]; N] =
            std::array::from_fn(|k| rows[k][t..t + LANE].try_into().expect("eight lanes"));
        let y = f(&x);
        for (yk, r) in y.iter().zip(rows.iter_mut()) {
            r[t..t + LANE].copy_from_slice(yk);
        }
        t += LANE;
    }
    if t < len {
        let n = len - t;
        let mut x = [[0.0f32; LANE]; N];
        for (xk, r) in x.iter_mut().zip(&rows) {
            xk[..n].copy_from_slice(&r[t..]);
        }
        let y = f(&x);
        for (yk, r) in y.iter().zip(rows.iter_mut()) {
            r[t..].copy_from_slice(&yk[..n]);
        }
    }
}

/// Take out the rows `first, first + stride, …` (`M` of them, `stride ≥ 1`) of a buffer cut
/// into rows of `len`, as disjoint mutable slices.
#[inline(always)]
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

/// Columns `col..col + cols` of the rows `first, first + stride, …` of a buffer cut into rows
/// of `len`.
#[inline(always)]
fn rows_at<const N: usize>(
    buf: &[f32],
    len: usize,
    first: usize,
    stride: usize,
    (col, cols): (usize, usize),
) -> [&[f32]; N] {
    std::array::from_fn(|k| &buf[(first + k * stride) * len + col..][..cols])
}

/// How a batch is cut: groups of `group` images (the weight gradient's unit of summation and
/// the output transforms' unit of work), passes of `pass` images (a whole number of groups).
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Tiles of one image.
    per_img: usize,
    group: usize,
    pass: usize,
}

impl Plan {
    /// The plan for `d`, passes of at most `pass_cols` tile columns (at least one group).
    fn new(d: &ConvDims, pass_cols: usize) -> Self {
        let (th, tw) = tiles(d);
        let per_img = th * tw;
        let group = (GROUP_COLS / per_img).max(1);
        let pass = group * (pass_cols / (group * per_img)).max(1);
        Plan {
            per_img,
            group,
            pass,
        }
    }

    /// `(first image, images)` of each pass over `batch` images, in order.
    fn passes(&self, batch: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..batch)
            .step_by(self.pass)
            .map(move |first| (first, self.pass.min(batch - first)))
    }

    /// `(first image, images)` of each group of a pass of `n` images, relative to the pass.
    fn groups(&self, n: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..n)
            .step_by(self.group)
            .map(move |first| (first, self.group.min(n - first)))
    }
}

/// Strides of matrix ξ inside a buffer laid out `[rows][ξ][cols]`: row `r` at `r·16·cols`.
fn interleaved(cols: usize) -> Strides {
    Strides::rows(XI * cols)
}

/// The two large buffers of a pass (`V` or `dV`, and `M` or `dM`), kept from call to call
/// rather than allocated and zeroed for each. Every entry is written before it is read, so
/// what a previous call left does not matter. Two calls at once simply make a second pair.
static BUFFERS: Mutex<Option<(Vec<f32>, Vec<f32>)>> = Mutex::new(None);

/// Run `f` on buffers of `v_len` and `m_len` floats.
fn with_buffers<R>(v_len: usize, m_len: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    let lock = || BUFFERS.lock().unwrap_or_else(|e| e.into_inner());
    let (mut v, mut m) = lock().take().unwrap_or_default();
    for (buf, len) in [(&mut v, v_len), (&mut m, m_len)] {
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
    }
    let out = f(&mut v[..v_len], &mut m[..m_len]);
    *lock() = Some((v, m));
    out
}

/// A zero-padded copy of one `h × w` plane: one row and column of zeros before, and enough
/// after that every 4×4 tile of the grid lies inside (`(2·th + 2) × (2·tw + 2)`).
#[inline(always)]
fn pad_plane(plane: &[f32], d: &ConvDims, padded: &mut [f32]) {
    let (th, tw) = tiles(d);
    let pw = 2 * tw + 2;
    padded[..(2 * th + 2) * pw].fill(0.0);
    for y in 0..d.h {
        padded[(y + 1) * pw + 1..][..d.w].copy_from_slice(&plane[y * d.w..][..d.w]);
    }
}

/// Transform the input tiles of the `n` images of `x` into `V`, laid out `[C][ξ][T]`:
/// `V[c][ξ][t] = (Bᵀ d B)[ξ]` for the 4×4 input tile `d` of tile `t` in channel `c`, one task
/// per channel.
fn transform_input(x: &[f32], n: usize, d: &ConvDims, v: &mut [f32]) {
    let (th, tw) = tiles(d);
    let cols = n * th * tw;
    v[..d.c_in * XI * cols]
        .par_chunks_mut(XI * cols)
        .enumerate()
        .for_each_init(
            || TransformScratch::new(d),
            |scratch, (c, v_c)| {
                wide(
                    #[inline(always)]
                    || transform_channel(x, n, d, c, v_c, scratch),
                )
            },
        );
}

/// The buffers [`transform_channel`] works in: one zero-padded plane, and a tile row's even
/// and odd halves, for planes of `side`.
#[derive(Default)]
struct TransformScratch {
    side: (usize, usize),
    padded: Vec<f32>,
    halves: Vec<f32>,
}

impl TransformScratch {
    fn new(d: &ConvDims) -> Self {
        let (th, tw) = tiles(d);
        TransformScratch {
            side: (d.h, d.w),
            padded: vec![0.0f32; (2 * th + 2) * (2 * tw + 2)],
            halves: vec![0.0f32; 8 * halves_stride(tw)],
        }
    }
}

/// Channel `c`'s tiles of the `n` images of `x` into `v_c`, its 16 rows of `V` (each
/// `n · tiles` long).
#[inline(always)]
fn transform_channel(
    x: &[f32],
    n: usize,
    d: &ConvDims,
    c: usize,
    v_c: &mut [f32],
    scratch: &mut TransformScratch,
) {
    let (th, tw) = tiles(d);
    let (cols, per_img) = (n * th * tw, th * tw);
    let (hw, pw) = (d.h * d.w, 2 * tw + 2);
    for img in 0..n {
        let plane = &x[(img * d.c_in + c) * hw..][..hw];
        if (d.h, d.w) == (SIDE, SIDE) {
            transform_plane_of_side(plane, v_c, cols, img * per_img);
            continue;
        }
        pad_plane(plane, d, &mut scratch.padded);
        for ty in 0..th {
            let col = img * per_img + ty * tw;
            let rows = &scratch.padded[2 * ty * pw..][..4 * pw];
            transform_tile_row(rows, tw, &mut scratch.halves, v_c, cols, col);
        }
    }
}

/// The plane side the CNN's second convolution has (28 pooled once), for which the input
/// transform has a path with every length known when it is compiled.
const SIDE: usize = 14;

/// [`transform_tile_row`] for every tile row of one `SIDE × SIDE` plane, whose 2×2 tiles start
/// at column `col` of the 16 rows (of `cols`) of `v_c`: each tile row's four padded input rows
/// are built in registers straight from the plane (a zero on either side, zero rows above and
/// below it), so that every row is one 16-lane vector, its column transform four vector
/// operations and its even and odd columns two shuffles. The same operations, in the same
/// order, as [`transform_tile_row`].
#[inline(always)]
fn transform_plane_of_side(plane: &[f32], v_c: &mut [f32], cols: usize, col: usize) {
    const TW: usize = SIDE / 2;
    type Row = [f32; 16];
    let plane: &[f32; SIDE * SIDE] = plane.try_into().expect("one plane");
    // Padded row `y + 1` holds plane row `y`.
    let padded_row = |y: usize| -> Row {
        let mut r = [0.0f32; 16];
        if (1..=SIDE).contains(&y) {
            r[1..=SIDE].copy_from_slice(&plane[(y - 1) * SIDE..][..SIDE]);
        }
        r
    };
    for ty in 0..TW {
        let r: [Row; 4] = std::array::from_fn(|i| padded_row(2 * ty + i));
        let sub = |a: &Row, b: &Row| -> Row { std::array::from_fn(|k| a[k] - b[k]) };
        let add = |a: &Row, b: &Row| -> Row { std::array::from_fn(|k| a[k] + b[k]) };
        let down = [
            sub(&r[0], &r[2]),
            add(&r[1], &r[2]),
            sub(&r[2], &r[1]),
            sub(&r[1], &r[3]),
        ];
        let at = col + ty * TW;
        let whole = at + 8 <= cols;
        for (i, c) in down.iter().enumerate() {
            let even: [f32; 9] = std::array::from_fn(|x| if x < 8 { c[2 * x] } else { 0.0 });
            let odd: [f32; 9] = std::array::from_fn(|x| if x < 8 { c[2 * x + 1] } else { 0.0 });
            let outs: [[f32; 8]; 4] = [
                std::array::from_fn(|l| even[l] - even[l + 1]),
                std::array::from_fn(|l| odd[l] + even[l + 1]),
                std::array::from_fn(|l| even[l + 1] - odd[l]),
                std::array::from_fn(|l| odd[l] - odd[l + 1]),
            ];
            for (j, out) in outs.iter().enumerate() {
                let dst = &mut v_c[(4 * i + j) * cols + at..];
                if whole {
                    dst[..8].copy_from_slice(out);
                } else {
                    dst[..TW].copy_from_slice(&out[..TW]);
                }
            }
        }
    }
}

/// Row length of [`transform_tile_row`]'s even and odd halves: room for every whole block of
/// eight tiles plus the one column past it that a block reads.
fn halves_stride(tw: usize) -> usize {
    tw.next_multiple_of(8) + 8
}

/// `Bᵀ d B` of the `tw` tiles of one tile row, whose four padded rows are `rows`, into
/// columns `col..col + tw` of the 16 rows (of `cols`) of `v_c`. The same operations in the
/// same order as `both_axes_lanes!(bt_l, …)`: first down each column, then along each row,
/// where the row's even and odd columns are taken apart first so that each output is a
/// difference or sum of two contiguous runs, computed eight tiles at a time.
///
/// A block of eight may write up to seven columns past the tile row: only where they lie
/// inside the row of `v_c` and belong to tiles that the caller transforms later (the next
/// tile row, or the next image's first), which then overwrite them.
#[inline(always)]
fn transform_tile_row(
    rows: &[f32],
    tw: usize,
    halves: &mut [f32],
    v_c: &mut [f32],
    cols: usize,
    col: usize,
) {
    let (pw, hs) = (2 * tw + 2, halves_stride(tw));
    let (half, r) = (tw + 1, |i: usize| &rows[i * pw..][..pw]);
    let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
    for x in 0..half {
        let col_of = |k: usize| {
            let (a0, a1, a2, a3) = (r0[k], r1[k], r2[k], r3[k]);
            [a0 - a2, a1 + a2, a2 - a1, a1 - a3]
        };
        let (even, odd) = (col_of(2 * x), col_of(2 * x + 1));
        for i in 0..4 {
            halves[2 * i * hs + x] = even[i];
            halves[(2 * i + 1) * hs + x] = odd[i];
        }
    }
    for t0 in (0..tw).step_by(8) {
        let n = 8.min(tw - t0);
        let whole = col + t0 + 8 <= cols;
        for i in 0..4 {
            let run = |h: usize, from: usize| -> [f32; 8] {
                halves[h * hs + from..][..8]
                    .try_into()
                    .expect("eight lanes")
            };
            let (e0, e1, o0, o1) = (
                run(2 * i, t0),
                run(2 * i, t0 + 1),
                run(2 * i + 1, t0),
                run(2 * i + 1, t0 + 1),
            );
            let outs: [[f32; 8]; 4] = [
                std::array::from_fn(|l| e0[l] - e1[l]),
                std::array::from_fn(|l| o0[l] + e1[l]),
                std::array::from_fn(|l| e1[l] - o0[l]),
                std::array::from_fn(|l| o0[l] - o1[l]),
            ];
            for (j, out) in outs.iter().enumerate() {
                let at = (4 * i + j) * cols + col + t0;
                if whole {
                    v_c[at..][..8].copy_from_slice(out);
                } else {
                    v_c[at..][..n].copy_from_slice(&out[..n]);
                }
            }
        }
    }
}

/// The adjoint of [`transform_input`] for the images of one group: add `B dV Bᵀ` of every
/// tile back onto its pixels in `dx_g`. `dv` is laid out `[ξ][T][C]` (a pass of `cols`
/// tiles, each tile's channels together: the shape in which `gemm` runs the input gradient's
/// products fastest); the group's tiles are `col..col + n·tiles`.
#[inline(always)]
fn untransform_input_grad(
    dv: &[f32],
    cols: usize,
    (col, n): (usize, usize),
    d: &ConvDims,
    dx_g: &mut [f32],
) {
    let (th, tw) = tiles(d);
    let (hw, c) = (d.h * d.w, d.c_in);
    // [padded row][padded column][block of channels]: 32 KB at 32 channels and 14×14.
    let mut padded = vec![[0.0f32; LANE]; (2 * th + 2) * (2 * tw + 2) * c.div_ceil(LANE)];
    for (img, dx_img) in dx_g.chunks_exact_mut(c * hw).take(n).enumerate() {
        padded.fill([0.0; LANE]);
        add_image_tiles(dv, (cols, col + img * th * tw), d, &mut padded);
        add_interior(&padded, d, dx_img);
    }
}

/// `B dV Bᵀ` of each tile of one image (its first tile at column `first` of `dv`, `[ξ][T][C]`
/// with `T = cols`) added onto `padded`, a padded plane kept pixel by pixel with its channels
/// together, eight channels to a vector block.
#[inline(always)]
fn add_image_tiles(
    dv: &[f32],
    (cols, first): (usize, usize),
    d: &ConvDims,
    padded: &mut [[f32; LANE]],
) {
    let (th, tw) = tiles(d);
    let (pw, blocks) = (2 * tw + 2, d.c_in.div_ceil(LANE));
    // Tiles from last to first. A pixel's terms come from up to four tiles, and in a tile
    // below or right of another it lies nearer the tile's first corner, so each pixel then
    // receives its terms in the order of their places in the tile (row first), the order
    // the untransform has always summed them in.
    for ty in (0..th).rev() {
        for tx in (0..tw).rev() {
            let t = first + ty * tw + tx;
            for b in 0..blocks {
                let x = tile_block(dv, (cols, d.c_in), t, b);
                let y = both_axes_lanes!(b_l, &x, 4, 4);
                for (k, yk) in y.iter().enumerate() {
                    let at = ((2 * ty + k / 4) * pw + 2 * tx + k % 4) * blocks + b;
                    padded[at] = add(padded[at], *yk);
                }
            }
        }
    }
}

/// The interior of `padded` (as [`add_image_tiles`] leaves it) added onto the image's planes
/// `dx_img`, channel by channel.
#[inline(always)]
fn add_interior(padded: &[[f32; LANE]], d: &ConvDims, dx_img: &mut [f32]) {
    let (_, tw) = tiles(d);
    let (pw, blocks) = (2 * tw + 2, d.c_in.div_ceil(LANE));
    for (ch, plane) in dx_img.chunks_exact_mut(d.h * d.w).enumerate() {
        for (y, row) in plane.chunks_exact_mut(d.w).enumerate() {
            let src = &padded[((y + 1) * pw + 1) * blocks..];
            for (x, p) in row.iter_mut().enumerate() {
                *p += src[x * blocks + ch / LANE][ch % LANE];
            }
        }
    }
}

/// The 16 values of tile `t` for the channels of block `b` (eight from `8b`, zeros past
/// the last channel), from `dv` laid out `[ξ][T][C]` with `T = cols`.
#[inline(always)]
fn tile_block(dv: &[f32], (cols, c): (usize, usize), t: usize, b: usize) -> [[f32; LANE]; XI] {
    let first = b * LANE;
    std::array::from_fn(|k| {
        let src = &dv[(k * cols + t) * c + first..];
        match src.get(..LANE) {
            Some(whole) if first + LANE <= c => whole.try_into().expect("eight lanes"),
            _ => {
                let mut block = [0.0f32; LANE];
                block[..c - first].copy_from_slice(&src[..c - first]);
                block
            }
        }
    })
}

/// Multiply a pass's `n` transformed images `v` by the weights: `m` then holds the 16
/// matrices `M[ξ] (O × T)`, laid out `[ξ][O][T]`. Returns T.
fn forward_products(n: usize, u: &[f32], d: &ConvDims, v: &[f32], m: &mut [f32]) -> usize {
    let (th, tw) = tiles(d);
    let cols = n * th * tw;
    // M[ξ] (O × T) = U[ξ] (O × C) · V[ξ] (C × T); the inner dimension is C.
    m[..XI * d.c_out * cols]
        .par_chunks_mut(d.c_out * cols)
        .enumerate()
        .for_each(|(xi, m_xi)| {
            matmul_strided(
                d.c_out,
                cols,
                d.c_in,
                &u[xi * d.c_out * d.c_in..],
                Strides::rows(d.c_in),
                &v[xi * cols..],
                interleaved(cols),
                m_xi,
                Strides::rows(cols),
                false,
                false,
            );
        });
    cols
}

/// Output channel `o`'s 2×2 tiles for the columns `col..col + out_tiles.len() / 4` of `m`
/// (`[ξ][O][T]`, T = `cols`) into `out_tiles`: row `k = 2i + j` holds output pixel `(i, j)` of
/// every tile, bias not yet added.
#[inline(always)]
fn output_tiles(m: &[f32], cols: usize, o: usize, c_out: usize, col: usize, out_tiles: &mut [f32]) {
    let g_cols = out_tiles.len() / 4;
    let ins = rows_at::<16>(m, cols, o, c_out, (col, g_cols));
    let outs = rows_mut::<4>(out_tiles, g_cols, 0, 1);
    lanes(
        ins,
        outs,
        g_cols,
        #[inline(always)]
        |m| both_axes_lanes!(at_l, m, 4, 2),
    );
}

/// Run the forward products pass by pass; after each, `emit(first, n, cols, m)` writes out the
/// pass's images `first..first + n` from its `M`.
fn forward_passes(
    x: &[f32],
    u: &[f32],
    d: &ConvDims,
    plan: &Plan,
    mut emit: impl FnMut(usize, usize, usize, &[f32]),
) {
    let m_len = XI * d.c_out * plan.pass.min(d.batch) * plan.per_img;
    transformed_passes(x, d, plan, m_len, |first, n, _, v, m| {
        let cols = forward_products(n, u, d, v, m);
        emit(first, n, cols, m);
    });
}

/// Transform the input pass by pass; after each, `emit(first, n, cols, v, m)` writes out the
/// pass's images `first..first + n` from its transformed input `V` (`[C][ξ][T]`, T = `cols`),
/// with `m`, a buffer of `m_len` values, to work in.
fn transformed_passes(
    x: &[f32],
    d: &ConvDims,
    plan: &Plan,
    m_len: usize,
    mut emit: impl FnMut(usize, usize, usize, &[f32], &mut [f32]),
) {
    let hw = d.h * d.w;
    let cols = plan.pass.min(d.batch) * plan.per_img;
    with_buffers(XI * d.c_in * cols, m_len, |v, m| {
        for (first, n) in plan.passes(d.batch) {
            let x_p = &x[first * d.c_in * hw..][..n * d.c_in * hw];
            time_step(InputTransform, || transform_input(x_p, n, d, v));
            time_step(ForwardOutput, || emit(first, n, n * plan.per_img, v, m));
        }
    });
}

/// Forward 3×3 'same' convolution with bias, optionally ReLU: `(B, C, H, W) → (B, O, H, W)`,
/// from `x` and `u = transform_weights(weight)`. The same function as
/// [`super::kernels::conv_forward`] up to rounding.
pub fn conv_forward(x: &[f32], u: &[f32], bias: &[f32], d: ConvDims, relu: bool) -> Vec<f32> {
    conv_forward_with(x, u, bias, d, relu, &Plan::new(&d, PASS_COLS))
}

fn conv_forward_with(
    x: &[f32],
    u: &[f32],
    bias: &[f32],
    d: ConvDims,
    relu: bool,
    plan: &Plan,
) -> Vec<f32> {
    check_forward(x, u, bias, &d);
    let hw = d.h * d.w;
    let mut out = vec![0.0f32; d.batch * d.c_out * hw];
    forward_passes(x, u, &d, plan, |first, n, cols, m| {
        out[first * d.c_out * hw..][..n * d.c_out * hw]
            .par_chunks_mut(plan.group * d.c_out * hw)
            .zip(plan.groups(n).collect::<Vec<_>>())
            .for_each(|(out_g, (g_first, g_n))| {
                let col = g_first * plan.per_img;
                wide(
                    #[inline(always)]
                    || write_group(m, cols, (col, g_n), bias, &d, relu, out_g),
                );
            });
    });
    out
}

/// The full-size output of the `n` images of one group (columns from `col` of `m`, T = `cols`)
/// into `out_g`, bias and the optional ReLU applied.
#[inline(always)]
fn write_group(
    m: &[f32],
    cols: usize,
    (col, n): (usize, usize),
    bias: &[f32],
    d: &ConvDims,
    relu: bool,
    out_g: &mut [f32],
) {
    let (th, tw) = tiles(d);
    let (per_img, hw, pw) = (th * tw, d.h * d.w, 2 * tw);
    let mut out_tiles = vec![0.0f32; 4 * n * per_img];
    let mut plane_buf = vec![0.0f32; 2 * th * pw];
    for (o, &bo) in bias.iter().enumerate() {
        output_tiles(m, cols, o, d.c_out, col, &mut out_tiles);
        let g_cols = n * per_img;
        for img in 0..n {
            // Tiles into a plane of whole tiles, then its top-left h × w onto the output.
            for k in 0..4 {
                let (i, j) = (k / 2, k % 2);
                let row = &out_tiles[k * g_cols + img * per_img..][..per_img];
                for ty in 0..th {
                    let dst = &mut plane_buf[(2 * ty + i) * pw + j..];
                    for (tx, v) in row[ty * tw..][..tw].iter().enumerate() {
                        dst[2 * tx] = *v;
                    }
                }
            }
            let plane = &mut out_g[(img * d.c_out + o) * hw..][..hw];
            for y in 0..d.h {
                let src = &plane_buf[y * pw..][..d.w];
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
    let plan = Plan::new(&d, PASS_COLS);
    let (pooled, argmax) = conv_forward_pooled_with(x, u, bias, d, relu, &plan, true);
    (pooled, argmax.expect("winners were asked for"))
}

/// The pooled values of [`conv_forward_pooled`] alone, the same bits, for a pass that needs no
/// gradient: the winners are found in registers and never written (at 1,024 images they would
/// be 38 MB).
pub fn conv_forward_pooled_values(
    x: &[f32],
    u: &[f32],
    bias: &[f32],
    d: ConvDims,
    relu: bool,
) -> Vec<f32> {
    conv_forward_pooled_with(x, u, bias, d, relu, &Plan::new(&d, PASS_COLS), false).0
}

fn conv_forward_pooled_with(
    x: &[f32],
    u: &[f32],
    bias: &[f32],
    d: ConvDims,
    relu: bool,
    plan: &Plan,
    keep_winners: bool,
) -> (Vec<f32>, Option<Vec<u32>>) {
    check_forward(x, u, bias, &d);
    assert!(
        d.h.is_multiple_of(2) && d.w.is_multiple_of(2),
        "max pooling needs even sides"
    );
    assert!(
        d.batch * d.c_out * d.h * d.w <= u32::MAX as usize,
        "tensor too large for u32 indices"
    );
    let pooled_len = d.batch * d.c_out * plan.per_img;
    let mut pooled = vec![0.0f32; pooled_len];
    let mut argmax = keep_winners.then(|| vec![0u32; pooled_len]);
    let out = Pooled {
        bias,
        relu,
        corner: &window_corners(&d),
    };
    // The pooled values (and winners) of a pass's images `first..first + n`.
    let pass_span = |first: usize, n: usize| {
        first * d.c_out * plan.per_img..(first + n) * d.c_out * plan.per_img
    };
    match fused_lanes(&d, plan) {
        Some(lanes) => {
            let packed = pack_weights(u, d.c_out, d.c_in);
            let winners = argmax.as_deref_mut();
            let fused = FusedForward {
                x,
                packed: &packed,
                d: &d,
                plan,
                lanes,
                out: &out,
            };
            time_step(ForwardOutput, || fused.run(&mut pooled, winners));
        }
        None => forward_passes(x, u, &d, plan, |first, n, cols, m| {
            let span = pass_span(first, n);
            let winners = argmax.as_mut().map(|a| &mut a[span.clone()]);
            pool_groups(
                m,
                cols,
                (first, n),
                &d,
                plan,
                &out,
                &mut pooled[span],
                winners,
            );
        }),
    }
    (pooled, argmax)
}

/// The vector width of the fused forward pass ([`FusedForward`]) for `d`, or `None` where it
/// must take the `gemm` path: at the baseline (its kernels exist for AVX-512 and AVX2 only),
/// and where a pass's product is one that `gemm` would not run on its micro-kernels (a tiny
/// one: [`super::gemm::summed_by_vector_width`]), whose rounding the fused kernels do not copy.
fn fused_lanes(d: &ConvDims, plan: &Plan) -> Option<usize> {
    let fewest = plan.passes(d.batch).map(|(_, n)| n).min().unwrap_or(0);
    let tiny = summed_by_vector_width(d.c_out, fewest * plan.per_img, d.c_in);
    simd::lanes().filter(|_| !tiny)
}

/// Who computes the pooled forward pass's products on this CPU (for a network's description;
/// tiny products go to `gemm` whatever this says).
pub fn pooled_products() -> &'static str {
    match simd::lanes() {
        Some(16) => "products by our AVX-512 kernel",
        Some(_) => "products by our AVX2 kernel",
        None => "products by gemm",
    }
}

/// What turns a channel's output tiles into pooled values: its bias, the ReLU, and each
/// window's top-left pixel in its plane (the winner's index is then a sum, with no division).
struct Pooled<'a> {
    bias: &'a [f32],
    relu: bool,
    corner: &'a [u32],
}

/// The pooled output of a pass of `n` images, from `M` (`[ξ][O][T]`): one task per group.
#[allow(clippy::too_many_arguments)]
fn pool_groups(
    m: &[f32],
    cols: usize,
    (first, n): (usize, usize),
    d: &ConvDims,
    plan: &Plan,
    out: &Pooled,
    pooled: &mut [f32],
    winners: Option<&mut [u32]>,
) {
    let per_img = plan.per_img;
    let dests = pieces(pooled, n, plan.group, (d.c_out, d.c_out), per_img);
    let wins = optional_pieces(winners, n, plan.group, (d.c_out, d.c_out), per_img);
    let groups: Vec<_> = plan.groups(n).collect();
    dests.into_par_iter().zip(wins).zip(groups).for_each(
        |((mut dests, mut wins), (g_first, g_n))| {
            let col = g_first * per_img;
            wide(
                #[inline(always)]
                || {
                    let mut out_tiles = vec![0.0f32; 4 * g_n * per_img];
                    // Where the winners go when nobody asked for them.
                    let mut spare = vec![0u32; per_img];
                    for o in 0..d.c_out {
                        output_tiles(m, cols, o, d.c_out, col, &mut out_tiles);
                        let (at, wins) = ((first + g_first, o), wins.as_deref_mut());
                        pool_channel(&out_tiles, at, d, out, &mut dests, wins, &mut spare);
                    }
                },
            );
        },
    );
}

/// The fused forward pass on this CPU's own kernels: one task per group of images, which
/// transforms its images' tiles, then for each block of [`BLOCK_ROWS`] output channels
/// computes the block's 16 products, their output transform and pooling, all in buffers of
/// the task's. A group's transformed input (half a MB at 5 images of 32 channels) then stays
/// in its core's cache for every block, and no task waits on another until the end.
struct FusedForward<'a> {
    x: &'a [f32],
    /// The weights packed by [`pack_weights`].
    packed: &'a [f32],
    d: &'a ConvDims,
    plan: &'a Plan,
    lanes: usize,
    out: &'a Pooled<'a>,
}

impl FusedForward<'_> {
    /// Every image's pooled values into `pooled`, and its winners into `winners` when given.
    fn run(&self, pooled: &mut [f32], winners: Option<&mut [u32]>) {
        let (d, per_img) = (self.d, self.plan.per_img);
        let shape = (d.c_out, d.c_out);
        let dests = pieces(pooled, d.batch, self.plan.group, shape, per_img);
        let wins = optional_pieces(winners, d.batch, self.plan.group, shape, per_img);
        let groups: Vec<_> = self.plan.groups(d.batch).collect();
        dests
            .into_par_iter()
            .zip(wins)
            .zip(groups)
            .for_each(|((mut dests, mut wins), group)| {
                SCRATCH.with_borrow_mut(|s| {
                    wide(
                        #[inline(always)]
                        || self.group(group, s, &mut dests, wins.as_deref_mut()),
                    )
                })
            });
    }

    /// The `n` images from `first`: their pooled planes into `dests` (one slice per image),
    /// their winners into `wins` likewise.
    #[inline(always)]
    fn group(
        &self,
        (first, n): (usize, usize),
        s: &mut BlockScratch,
        dests: &mut [&mut [f32]],
        mut wins: Option<&mut [&mut [u32]]>,
    ) {
        let (d, per_img) = (self.d, self.plan.per_img);
        let g_cols = n * per_img;
        let stride = s.resize(d, g_cols);
        let hw = d.h * d.w;
        let x_g = &self.x[first * d.c_in * hw..][..n * d.c_in * hw];
        for (c, v_c) in s.v.chunks_exact_mut(XI * g_cols).enumerate() {
            transform_channel(x_g, n, d, c, v_c, &mut s.transform);
        }
        for o0 in (0..d.c_out).step_by(BLOCK_ROWS) {
            let rows = BLOCK_ROWS.min(d.c_out - o0);
            let shape = (d.c_out, d.c_in);
            let (v, at) = (&s.v, (0, g_cols));
            block_products(
                self.packed,
                shape,
                (o0, rows),
                v,
                g_cols,
                at,
                self.lanes,
                &mut s.m,
            );
            pool_rows(
                &s.m,
                (o0, rows),
                stride,
                self.out,
                &mut s.pooled,
                &mut s.won,
            );
            let planes = o0 * per_img..(o0 + rows) * per_img;
            for (img, dest) in dests.iter_mut().enumerate() {
                for i in 0..rows {
                    let src = &s.pooled[i * stride + img * per_img..][..per_img];
                    dest[planes.start + i * per_img..][..per_img].copy_from_slice(src);
                }
            }
            if let Some(wins) = wins.as_deref_mut() {
                let mut block: Vec<&mut [u32]> =
                    wins.iter_mut().map(|w| &mut w[planes.clone()]).collect();
                winner_indices(&s.won, (first, o0, rows), stride, d, self.out, &mut block);
            }
        }
    }
}

thread_local! {
    /// Each thread's [`BlockScratch`], kept from task to task: a new one per task would be
    /// allocated and zeroed, page by page, every time.
    static SCRATCH: std::cell::RefCell<BlockScratch> = std::cell::RefCell::new(BlockScratch::default());
}

/// The buffers of one task of [`FusedForward`]: its group's transformed input `v`
/// (`[C][ξ][T]`), a block's products `m`, pooled values and winners' places (0..4 in reading
/// order, each row `stride` long), and the input transform's own.
#[derive(Default)]
struct BlockScratch {
    v: Vec<f32>,
    m: Vec<f32>,
    pooled: Vec<f32>,
    won: Vec<u8>,
    transform: TransformScratch,
}

impl BlockScratch {
    /// Room for a group of `g_cols` tiles of `d` and a block of [`BLOCK_ROWS`] output
    /// channels; returns the length of a block's rows (`g_cols` padded to whole vectors).
    fn resize(&mut self, d: &ConvDims, g_cols: usize) -> usize {
        if self.transform.side != (d.h, d.w) {
            self.transform = TransformScratch::new(d);
        }
        let stride = padded(g_cols);
        self.v.resize(XI * d.c_in * g_cols, 0.0);
        self.m.resize(XI * BLOCK_ROWS * stride, 0.0);
        self.pooled.resize(BLOCK_ROWS * stride, 0.0);
        self.won.resize(BLOCK_ROWS * stride, 0);
        stride
    }
}

/// Tiles the fused output stage takes at once: one run of [`super::microkernel::at`]'s layout.
const POOL_LANES: usize = 16;

/// The output transform, bias, ReLU and pooling of a block of `rows` output channels from
/// their products `m` (placed by [`super::microkernel::at`]): each tile's pooled value into `pooled`
/// and its winner's place in the window into `won` (both `[rows][stride]`). The same
/// operations in the same order as [`output_tiles`] then [`pool_windows`], so the same bits.
#[inline(always)]
fn pool_rows(
    m: &[f32],
    (o0, rows): (usize, usize),
    stride: usize,
    out: &Pooled,
    pooled: &mut [f32],
    won: &mut [u8],
) {
    for (k, run) in m[..XI * rows * stride]
        .chunks_exact(XI * POOL_LANES)
        .enumerate()
    {
        let (t, i) = ((k / rows) * POOL_LANES, k % rows);
        let pooled: &mut [f32; POOL_LANES] = (&mut pooled[i * stride + t..][..POOL_LANES])
            .try_into()
            .expect("one run");
        let won: &mut [u8; POOL_LANES] = (&mut won[i * stride + t..][..POOL_LANES])
            .try_into()
            .expect("one run");
        let bo = out.bias[o0 + i];
        let value = |v: f32| if out.relu { (v + bo).max(0.0) } else { v + bo };
        let run: &[f32; XI * POOL_LANES] = run.try_into().expect("one run");
        for l in 0..POOL_LANES {
            let x = |xi: usize| run[xi * POOL_LANES + l];
            // Aᵀ down each column of the 4×4 tile, then along each of its two rows.
            let at = |a: [f32; 4]| [(a[0] + a[1]) + a[2], (a[1] - a[2]) - a[3]];
            let c: [[f32; 2]; 4] =
                std::array::from_fn(|j| at([x(j), x(4 + j), x(8 + j), x(12 + j)]));
            let top = at([c[0][0], c[1][0], c[2][0], c[3][0]]);
            let bottom = at([c[0][1], c[1][1], c[2][1], c[3][1]]);
            let mut best = value(top[0]);
            let mut place = 0u8;
            for (k, v) in [(1u8, top[1]), (2, bottom[0]), (3, bottom[1])] {
                let v = value(v);
                if v > best {
                    best = v;
                    place = k;
                }
            }
            pooled[l] = best;
            won[l] = place;
        }
    }
}

/// Each pooled value's winner as an index into the full-size output, from its place in the
/// window: the images from `first` on, channels `o0..o0 + rows`. The place `k` (0..4 in
/// reading order) is `k % 2` columns and `k / 2` rows from the corner: arithmetic the
/// compiler runs in vector lanes, where a table of the four offsets would be a lookup per
/// value.
#[inline(always)]
fn winner_indices(
    won: &[u8],
    (first, o0, rows): (usize, usize, usize),
    stride: usize,
    d: &ConvDims,
    out: &Pooled,
    wins: &mut [&mut [u32]],
) {
    let per_img = out.corner.len();
    let w = d.w as u32;
    for (img, dest) in wins.iter_mut().enumerate() {
        for i in 0..rows {
            let plane = (((first + img) * d.c_out + o0 + i) * d.h * d.w) as u32;
            let src = &won[i * stride + img * per_img..][..per_img];
            let dst = &mut dest[i * per_img..][..per_img];
            for ((a, &k), &c) in dst.iter_mut().zip(src).zip(out.corner) {
                let k = u32::from(k);
                *a = plane + c + (k & 1) + (k >> 1) * w;
            }
        }
    }
}

/// Pool one output channel's tiles for every image of a group: `out_tiles` holds the group's
/// 2×2 tiles (row `k = 2i + j` pixel `(i, j)` of every tile), `first` is the group's first
/// image in the batch, and image `img`'s pooled plane goes to plane `o` of `dests[img]`, its
/// winners likewise when `wins` is given, else to `spare` (a plane's worth).
#[inline(always)]
fn pool_channel(
    out_tiles: &[f32],
    (first, o): (usize, usize),
    d: &ConvDims,
    out: &Pooled,
    dests: &mut [&mut [f32]],
    mut wins: Option<&mut [&mut [u32]]>,
    spare: &mut [u32],
) {
    let per_img = out.corner.len();
    let g_cols = out_tiles.len() / 4;
    let bo = out.bias[o];
    let value = |v: f32| if out.relu { (v + bo).max(0.0) } else { v + bo };
    for (img, dest) in dests.iter_mut().enumerate() {
        let window: [&[f32]; 4] =
            std::array::from_fn(|k| &out_tiles[k * g_cols + img * per_img..][..per_img]);
        let plane = ((first + img) * d.c_out + o) * d.h * d.w;
        let arg = match wins.as_deref_mut() {
            Some(w) => &mut w[img][o * per_img..][..per_img],
            None => &mut spare[..per_img],
        };
        pool_windows(
            window,
            value,
            (plane as u32, out.corner, d.w as u32),
            &mut dest[o * per_img..][..per_img],
            arg,
        );
    }
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

/// Scratch of one output-gradient task.
#[derive(Default)]
struct GradScratch {
    /// One plane of whole tiles.
    padded: Vec<f32>,
    /// Each tile's gradient at its winner, for every tile of the pass.
    g: Vec<f32>,
    /// Each tile's winner's place in its window (see [`winners_of_plane`]), likewise.
    place: Vec<f32>,
}

/// `dM`, laid out `[O][ξ][T]`: the adjoint of the output transform applied to the output
/// gradient of the `n` images from `first` on, one task per output channel; also adds each
/// channel's gradient sum into `db`, image by image.
fn transform_output_grad(
    grad: &OutputGrad,
    (first, n): (usize, usize),
    d: &ConvDims,
    dm: &mut [f32],
    db: &mut [f32],
) {
    let (th, tw) = tiles(d);
    let cols = n * th * tw;
    let corner = match grad {
        OutputGrad::Pooled { .. } => window_corners(d),
        OutputGrad::Full(_) => Vec::new(),
    };
    dm[..d.c_out * XI * cols]
        .par_chunks_mut(XI * cols)
        .zip(db.par_iter_mut())
        .enumerate()
        .for_each_init(GradScratch::default, |s, (o, (dm_o, db_o))| {
            let planes = (first * d.c_out + o, n);
            wide(
                #[inline(always)]
                || match *grad {
                    OutputGrad::Full(dy) => full_grad_tiles(dy, planes, d, dm_o, db_o, s),
                    OutputGrad::Pooled { dp, argmax, dead } => {
                        let pooled = (dp, argmax, dead, &corner[..]);
                        pooled_grad_tiles(pooled, planes, d, dm_o, db_o, s)
                    }
                },
            )
        });
}

/// One output channel's `dM` rows (`[ξ][T]`) from its full-size gradient: the `n` planes from
/// `plane` on (a stride of `d.c_out`) as 2×2 tiles, then `A · Aᵀ` across tiles; each plane's
/// sum is added into `db_o`.
#[inline(always)]
fn full_grad_tiles(
    dy: &[f32],
    (plane, n): (usize, usize),
    d: &ConvDims,
    dm_o: &mut [f32],
    db_o: &mut f32,
    s: &mut GradScratch,
) {
    let (th, tw) = tiles(d);
    let cols = n * th * tw;
    for img in 0..n {
        let plane = &dy[(plane + img * d.c_out) * d.h * d.w..][..d.h * d.w];
        *db_o += tiles_of_plane(plane, img, d, cols, dm_o, s);
    }
    let rows = rows_mut::<16>(dm_o, cols, 0, 1);
    lanes_in_place::<4, 16>(
        rows,
        cols,
        #[inline(always)]
        |g| both_axes_lanes!(a_l, g, 2, 4),
    );
}

/// One full-size gradient plane as 2×2 tiles: row `k = 2i + j` of `rows` (rows of `cols`)
/// gets pixel `(i, j)` of every tile, at the columns of the pass's image `img`. Returns the
/// plane's gradient sum.
#[inline(always)]
fn tiles_of_plane(
    plane: &[f32],
    img: usize,
    d: &ConvDims,
    cols: usize,
    rows: &mut [f32],
    s: &mut GradScratch,
) -> f32 {
    let (th, tw) = tiles(d);
    let (per_img, pw) = (th * tw, 2 * tw);
    // The plane into one of whole tiles (zeros past an odd side), then gathered.
    s.padded.clear();
    s.padded.resize(2 * th * pw, 0.0);
    for y in 0..d.h {
        s.padded[y * pw..][..d.w].copy_from_slice(&plane[y * d.w..][..d.w]);
    }
    for k in 0..4 {
        let (i, j) = (k / 2, k % 2);
        let row = &mut rows[k * cols + img * per_img..][..per_img];
        for ty in 0..th {
            let src = &s.padded[(2 * ty + i) * pw + j..];
            for (tx, dst) in row[ty * tw..][..tw].iter_mut().enumerate() {
                *dst = src[2 * tx];
            }
        }
    }
    plane.iter().sum::<f32>()
}

/// The pooled gradient, the winners' indices, the index that marks a dead window, and each
/// window's top-left pixel in its plane.
type PooledGrad<'a> = (&'a [f32], &'a [u32], u32, &'a [u32]);

/// One output channel's `dM` rows (`[ξ][T]`) from its pooled gradient: each tile is zero but
/// at its window's winner, so its 2×2 pixels are chosen in registers from the tile's gradient
/// and winner's place, then `A · Aᵀ` across tiles: the same values, in the same operations,
/// as [`full_grad_tiles`] on the full-size gradient that pooling's backward pass would build.
/// Each plane's sum is added into `db_o`.
#[inline(always)]
fn pooled_grad_tiles(
    (dp, argmax, dead, corner): PooledGrad,
    (plane, n): (usize, usize),
    d: &ConvDims,
    dm_o: &mut [f32],
    db_o: &mut f32,
    s: &mut GradScratch,
) {
    let (th, tw) = tiles(d);
    let per_img = th * tw;
    let cols = n * per_img;
    s.g.resize(cols, 0.0);
    s.place.resize(cols, 0.0);
    for img in 0..n {
        let p = plane + img * d.c_out;
        let at = img * per_img;
        *db_o += winners_of_plane(
            (
                &dp[p * per_img..][..per_img],
                &argmax[p * per_img..][..per_img],
            ),
            (dead, (p * d.h * d.w) as u32, corner),
            (tw, d.w as u32),
            &mut s.g[at..at + per_img],
            &mut s.place[at..at + per_img],
        );
    }
    lanes::<2, 16>(
        [&s.g, &s.place],
        rows_mut::<16>(dm_o, cols, 0, 1),
        cols,
        #[inline(always)]
        |x| {
            let [g, place] = x;
            let pixels: [[f32; LANE]; 4] = std::array::from_fn(|k| {
                std::array::from_fn(|l| if place[l] == k as f32 { g[l] } else { 0.0 })
            });
            both_axes_lanes!(a_l, &pixels, 2, 4)
        },
    );
}

/// The winners of one plane of the pooled gradient: each tile's gradient into `g`, and the
/// place of its window's winner into `place` (0..4 in reading order, 4 where the window is
/// dead), as a float so that it shares `g`'s lanes. The place is the winner's offset from the
/// window's corner, with no division and no branch. Returns the plane's gradient sum, which
/// runs over the winners in the full plane's reading order as the full-size sum does (its
/// other terms are zeros); each other tile adds `-0.0` here, which changes no sum, so that
/// no branch depends on where the winners are.
#[inline(always)]
fn winners_of_plane(
    (dp, argmax): (&[f32], &[u32]),
    (dead, base, corner): (u32, u32, &[u32]),
    (tw, w): (usize, u32),
    g: &mut [f32],
    place: &mut [f32],
) -> f32 {
    for ((p, &a), &c) in place.iter_mut().zip(argmax).zip(corner) {
        let k = winner_place(a, base.wrapping_add(c), w);
        *p = if a == dead { 4.0 } else { k as f32 };
    }
    g.copy_from_slice(dp);
    // The empty sum, -0.0, as `Iterator::sum` starts from.
    let mut sum = -0.0f32;
    for (g_row, p_row) in g.chunks_exact(tw).zip(place.chunks_exact(tw)) {
        for (lo, hi) in [(0.0, 2.0), (2.0, 4.0)] {
            for (&v, &p) in g_row.iter().zip(p_row) {
                sum += if p >= lo && p < hi { v } else { -0.0 };
            }
        }
    }
    sum
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
    let plan = Plan::new(&d, PASS_COLS);
    backward(x, u, &OutputGrad::Full(dy), d, (dw, db), want_dx, &plan)
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
    let grad = OutputGrad::Pooled { dp, argmax, dead };
    let plan = Plan::new(&d, PASS_COLS);
    backward(x, u, &grad, d, (dw, db), want_dx, &plan)
}

fn backward(
    x: &[f32],
    u: &[f32],
    grad: &OutputGrad,
    d: ConvDims,
    (dw, db): (&mut [f32], &mut [f32]),
    want_dx: bool,
    plan: &Plan,
) -> Option<Vec<f32>> {
    let hw = d.h * d.w;
    assert_eq!(x.len(), d.batch * d.c_in * hw);
    assert_eq!(dw.len(), d.c_out * d.c_in * 9);
    let mut dx = vec![0.0f32; if want_dx { x.len() } else { 0 }];
    let mut du = vec![0.0f32; XI * d.c_out * d.c_in];
    let mut db_sum = vec![0.0f32; d.c_out];
    let cols = plan.pass.min(d.batch) * plan.per_img;
    with_buffers(XI * d.c_in * cols, XI * d.c_out * cols, |v, dm| {
        for (first, n) in plan.passes(d.batch) {
            let cols = n * plan.per_img;
            let x_p = &x[first * d.c_in * hw..][..n * d.c_in * hw];
            time_step(InputTransform, || transform_input(x_p, n, &d, v));
            time_step(OutputGradTransform, || {
                transform_output_grad(grad, (first, n), &d, dm, &mut db_sum)
            });
            time_step(WeightGradProducts, || {
                weight_grad_products(plan, n, &d, dm, v, &mut du)
            });
            if want_dx {
                time_step(InputGradProducts, || {
                    input_grad_products(cols, u, &d, dm, v)
                });
                let dx_p = &mut dx[first * d.c_in * hw..][..n * d.c_in * hw];
                time_step(InputGradUntransform, || {
                    dx_p.par_chunks_mut(plan.group * d.c_in * hw)
                        .zip(plan.groups(n).collect::<Vec<_>>())
                        .for_each(|(dx_g, (g_first, g_n))| {
                            let group = (g_first * plan.per_img, g_n);
                            wide(
                                #[inline(always)]
                                || untransform_input_grad(v, cols, group, &d, dx_g),
                            );
                        })
                });
            }
        }
    });
    db.iter_mut().zip(db_sum).for_each(|(s, p)| *s += p);
    untransform_weight_grad(&du, d.c_out, d.c_in, dw);
    want_dx.then_some(dx)
}

/// `dV[ξ] (C × T) = U[ξ]ᵀ (C × O) · dM[ξ] (O × T)` for a pass of `cols` tiles, into `v`
/// laid out `[ξ][T][C]`, one task per ξ; the inner dimension is O. `gemm` runs a product in
/// the shape its output is stored in: with the channels together, as 32 rows by 490 columns
/// at the CNN's shapes, which it runs about a sixth faster than 490 rows by 32 columns, and
/// to the same bits (each output is one sum over O either way).
fn input_grad_products(cols: usize, u: &[f32], d: &ConvDims, dm: &[f32], v: &mut [f32]) {
    v[..XI * d.c_in * cols]
        .par_chunks_mut(d.c_in * cols)
        .enumerate()
        .for_each(|(xi, dv_xi)| {
            matmul_strided(
                d.c_in,
                cols,
                d.c_out,
                &u[xi * d.c_out * d.c_in..],
                Strides::transposed(d.c_in),
                &dm[xi * cols..],
                interleaved(cols),
                dv_xi,
                Strides::transposed(d.c_in),
                false,
                false,
            );
        });
}

/// `dU[ξ] (O × C) += dM[ξ] (O × T) · V[ξ]ᵀ (T × C)` for a pass of `n` images, one task per ξ.
/// The sum over T runs group by group in order, each group one product (see [`GROUP_COLS`]),
/// so its order is fixed by the shapes alone: the same on any thread count and any CPU.
fn weight_grad_products(
    plan: &Plan,
    n: usize,
    d: &ConvDims,
    dm: &[f32],
    v: &[f32],
    du: &mut [f32],
) {
    let cols = n * plan.per_img;
    du.par_chunks_mut(d.c_out * d.c_in)
        .enumerate()
        .for_each(|(xi, du_xi)| {
            for (g_first, g_n) in plan.groups(n) {
                let col = xi * cols + g_first * plan.per_img;
                matmul_strided(
                    d.c_out,
                    d.c_in,
                    g_n * plan.per_img,
                    &dm[col..],
                    interleaved(cols),
                    &v[col..],
                    Strides {
                        rs: 1,
                        cs: XI * cols,
                    },
                    du_xi,
                    Strides::rows(d.c_in),
                    true,
                    false,
                );
            }
        });
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
        ConvDims::new(
            rng.gen_range(1..8),
            rng.gen_range(1..5),
            rng.gen_range(1..7),
            rng.gen_range(1..10),
            rng.gen_range(1..10),
        )
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

    /// At the CNN's plane side, the input transform and the input gradient's scatter take
    /// paths of their own; each gives the general path's bits, on planes of random values of
    /// many magnitudes with some exact zeros (whose signs the sums must keep).
    #[test]
    fn the_fixed_side_paths_give_the_general_paths_bits() {
        let mut rng = StdRng::seed_from_u64(14);
        let d = ConvDims::new(3, 1, 1, SIDE, SIDE);
        let (th, tw) = tiles(&d);
        let per_img = th * tw;
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        // Magnitudes over four decades, so that sums in another order round differently.
        let with_zeros = |n: usize, rng: &mut StdRng| -> Vec<f32> {
            let mut v = random(n, rng);
            v.iter_mut()
                .for_each(|x| *x *= rng.gen_range(0.01f32..100.0));
            v.iter_mut()
                .step_by(7)
                .for_each(|x| *x = if rng.gen() { 0.0 } else { -0.0 });
            v
        };
        // The input transform: image 1 of 3, so that whole blocks of eight write past it.
        let cols = 3 * per_img;
        let plane = with_zeros(SIDE * SIDE, &mut rng);
        let (mut fast, mut general) = (vec![f32::NAN; 16 * cols], vec![f32::NAN; 16 * cols]);
        for img in [1, 2] {
            transform_plane_of_side(&plane, &mut fast, cols, img * per_img);
        }
        let mut padded = vec![0.0f32; (2 * th + 2) * (2 * tw + 2)];
        let mut halves = vec![0.0f32; 8 * halves_stride(tw)];
        pad_plane(&plane, &d, &mut padded);
        for img in [1, 2] {
            for ty in 0..th {
                let rows = &padded[2 * ty * (2 * tw + 2)..][..4 * (2 * tw + 2)];
                let col = img * per_img + ty * tw;
                transform_tile_row(rows, tw, &mut halves, &mut general, cols, col);
            }
        }
        assert_eq!(bits(&fast), bits(&general), "input transform");
    }

    #[test]
    fn the_row_input_transform_is_bt_on_both_axes_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(3);
        // A tile row alone in its rows of V, and one with room after it (where whole blocks
        // of eight are written); row lengths below, at and past a block.
        for (tw, room) in [(5, 0), (7, 0), (7, 9), (8, 0), (13, 4), (16, 20)] {
            let pw = 2 * tw + 2;
            let rows = random(4 * pw, &mut rng);
            let mut halves = vec![0.0; 8 * halves_stride(tw)];
            let cols = tw + room;
            let mut v = vec![f32::NAN; 16 * cols];
            transform_tile_row(&rows, tw, &mut halves, &mut v, cols, 0);
            for tx in 0..tw {
                // Tile tx in lane 0 of each block.
                let tile: [[f32; LANE]; 16] = std::array::from_fn(|k| {
                    let mut b = [0.0; LANE];
                    b[0] = rows[(k / 4) * pw + 2 * tx + k % 4];
                    b
                });
                let want = both_axes_lanes!(bt_l, &tile, 4, 4);
                for k in 0..16 {
                    assert_eq!(
                        v[k * cols + tx].to_bits(),
                        want[k][0].to_bits(),
                        "tile {tx}, {k}"
                    );
                }
            }
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
        let d = ConvDims::new(9, 5, 6, 14, 14);
        let x = random(d.batch * d.c_in * 196, &mut rng);
        let w = random(d.c_out * d.c_in * 9, &mut rng);
        let dy = random(d.batch * d.c_out * 196, &mut rng);
        let u = transform_weights(&w, d.c_out, d.c_in);
        let run = |threads: usize| {
            crate::runtime::with_threads(threads, || {
                let y = conv_forward(&x, &u, &w[..d.c_out], d, true);
                let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; d.c_out]);
                let dx = conv_backward(&x, &u, &dy, d, &mut dw, &mut db, true).unwrap();
                (y, dw, db, dx)
            })
        };
        let one = run(1);
        for threads in [2, 3, 8] {
            assert!(run(threads) == one, "{threads} threads differ from 1");
        }
    }

    #[test]
    fn results_do_not_depend_on_how_a_batch_is_cut_into_passes() {
        // Passes of one group, of two, and the whole batch: the groups, and with them every
        // sum's order, stay the same, so every number does.
        let mut rng = StdRng::seed_from_u64(11);
        let d = ConvDims::new(13, 3, 4, 14, 14);
        let x = random(d.batch * d.c_in * 196, &mut rng);
        let w = random(d.c_out * d.c_in * 9, &mut rng);
        let bias = random(d.c_out, &mut rng);
        let dy = random(d.batch * d.c_out * 196, &mut rng);
        let dp = random(d.batch * d.c_out * 49, &mut rng);
        let u = transform_weights(&w, d.c_out, d.c_in);
        let run = |pass_cols: usize| {
            let plan = Plan::new(&d, pass_cols);
            let y = conv_forward_with(&x, &u, &bias, d, true, &plan);
            let (p, arg) = conv_forward_pooled_with(&x, &u, &bias, d, true, &plan, true);
            let arg = arg.unwrap();
            let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; d.c_out]);
            let full = OutputGrad::Full(&dy);
            let dx = backward(&x, &u, &full, d, (&mut dw, &mut db), true, &plan);
            let pooled = OutputGrad::Pooled {
                dp: &dp,
                argmax: &arg,
                dead: u32::MAX,
            };
            let (mut dw2, mut db2) = (vec![0.0; w.len()], vec![0.0; d.c_out]);
            let dx2 = backward(&x, &u, &pooled, d, (&mut dw2, &mut db2), true, &plan);
            (plan.pass, (y, p, arg), (dw, db, dx), (dw2, db2, dx2))
        };
        let whole = run(1 << 20);
        assert!(whole.0 >= d.batch, "the whole batch in one pass");
        for pass_cols in [1, 2 * GROUP_COLS] {
            let other = run(pass_cols);
            assert!(other.0 < d.batch, "{pass_cols}: {} images a pass", other.0);
            assert!(other.1 == whole.1, "forward, passes of {} images", other.0);
            assert!(other.2 == whole.2, "backward, passes of {} images", other.0);
            assert!(
                other.3 == whole.3,
                "pooled backward, passes of {} images",
                other.0
            );
        }
    }

    #[test]
    fn no_weight_gradient_product_sums_more_than_one_block_of_gemm() {
        // gemm 0.19 never cuts an inner dimension of at most 512 (see GROUP_COLS).
        for side in 1..40 {
            let d = ConvDims::new(300, 1, 1, side, side);
            let plan = Plan::new(&d, PASS_COLS);
            let per_img = side.div_ceil(2).pow(2);
            assert!(
                plan.group * per_img <= GROUP_COLS.max(per_img),
                "side {side}"
            );
            assert!(
                plan.group * per_img <= 512 || plan.group == 1,
                "side {side}"
            );
        }
    }

    /// The fused pooled pass (our kernels, blocks of 12 channels, cache-sized buffers) gives the
    /// `gemm` path's bits at the CNN's shapes: 32 input channels on 14×14 (MNIST) and on 8×8
    /// (the CNN trained on USPS), a partial block of output channels and a partial last pass
    /// and group.
    #[test]
    fn the_fused_forward_pass_gives_the_gemm_paths_bits() {
        let mut rng = StdRng::seed_from_u64(12);
        for d in [
            ConvDims::new(13, 32, 40, 14, 14),
            ConvDims::new(2, 32, 192, 14, 14),
            ConvDims::new(20, 32, 30, 8, 8),
        ] {
            let plan = Plan::new(&d, PASS_COLS);
            assert_eq!(
                fused_lanes(&d, &plan),
                simd::lanes(),
                "{d:?} takes the fused path"
            );
            let x = random(d.batch * d.c_in * d.h * d.w, &mut rng);
            let w = random(d.c_out * d.c_in * 9, &mut rng);
            let bias = random(d.c_out, &mut rng);
            let u = transform_weights(&w, d.c_out, d.c_in);
            let full = conv_forward(&x, &u, &bias, d, true);
            let (want, want_arg) = kernels::maxpool_forward(&full, d.batch * d.c_out, d.h, d.w);
            let (got, arg) = conv_forward_pooled(&x, &u, &bias, d, true);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{d:?}");
            assert_eq!(arg, want_arg, "{d:?}");
        }
    }

    #[test]
    fn pooled_forward_and_backward_equal_the_full_size_ones_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(10);
        for _ in 0..6 {
            let d = ConvDims::new(
                rng.gen_range(1..6),
                rng.gen_range(1..5),
                rng.gen_range(1..6),
                2 * rng.gen_range(1..5),
                2 * rng.gen_range(1..5),
            );
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
                let values = conv_forward_pooled_values(&x, &u, &bias, d, relu);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&values), bits(&got), "{d:?}");
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
                let (dx, dx2) = (dx.expect("asked for"), dx2.expect("asked for"));
                for (got, want) in [(dx2, dx), (dw2, dw), (db2, db)] {
                    assert_eq!(bits(&got), bits(&want), "{d:?}, relu {relu}");
                }
            }
        }
    }
}
