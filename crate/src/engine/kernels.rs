//! The convolution and pooling arithmetic on plain slices, NCHW layout.
//!
//! Kept apart from the dfdx glue in [`super::layers`] so that each kernel can be checked
//! against a naive reference, and so the runtime-sized models of the hyperparameter search
//! run the very same code as the typed published ones.
//!
//! The 3×3 'same' convolution is lowered onto GEMM (im2col): the input patches of the whole
//! batch form one matrix `col` of shape `(C·9) × (B·H·W)`, so the weight gradient and the input
//! gradient are each one large product, and the forward pass is one product per image written
//! straight into the NCHW output.

use rayon::prelude::*;

use super::gemm::{matmul_strided, Strides};

/// Kernel side and padding of the published convolutions ('same' padding for 3×3).
pub const K: usize = 3;
const PAD: usize = 1;

/// Image groups for the weight-gradient reduction (see [`conv_backward`]).
const DW_GROUPS: usize = 4;

/// The fixed image groups of a weight-gradient reduction over `batch` images, as `(first,
/// last)` ranges, and `dx` (of `per_image` values an image, or empty) cut into each group's
/// part. The grouping depends on the batch alone, never on the thread count, so partial sums
/// added in group order give the same numbers on any number of threads.
pub(super) fn image_groups(
    batch: usize,
    per_image: usize,
    dx: &mut [f32],
) -> (Vec<(usize, usize)>, Vec<&mut [f32]>) {
    let groups = DW_GROUPS.min(batch).max(1);
    let bounds: Vec<(usize, usize)> = (0..groups)
        .map(|g| (g * batch / groups, (g + 1) * batch / groups))
        .collect();
    let mut parts = Vec::with_capacity(groups);
    let mut rest = dx;
    for &(first, last) in &bounds {
        let len = if rest.is_empty() {
            0
        } else {
            (last - first) * per_image
        };
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        parts.push(head);
        rest = tail;
    }
    (bounds, parts)
}

/// The pooling windows of a plane `h × w` (even sides) as `(row, column)`, in reading order:
/// the order in which pooled values, and their gradients, are laid out.
pub(super) fn windows(h: usize, w: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..h / 2).flat_map(move |py| (0..w / 2).map(move |px| (py, px)))
}

/// The top-left pixel of each pooling window (= Winograd tile) of a plane of `d` (even
/// sides), in reading order: where a winner's place in its window is counted from.
pub(super) fn window_corners(d: &ConvDims) -> Vec<u32> {
    windows(d.h, d.w)
        .map(|(py, px)| (2 * py * d.w + 2 * px) as u32)
        .collect()
}

/// Where a window's winner lies in it, 0..4 in reading order, from the winner's index `win`
/// into the full-size output and the index `corner` of the window's top-left pixel, in a plane
/// `w` wide: its offset from the corner, with no division. Meaningless for an index outside
/// the window (a dead window's mark), which callers test for apart.
#[inline(always)]
pub(super) fn winner_place(win: u32, corner: u32, w: u32) -> u32 {
    let rel = win.wrapping_sub(corner);
    let below = u32::from(rel >= w);
    (2 * below).wrapping_add(rel).wrapping_sub(below * w)
}

/// Sizes of one convolution call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
}

impl ConvDims {
    /// `batch` images of `c_in` planes of `h × w` into `c_out` planes.
    pub const fn new(batch: usize, c_in: usize, c_out: usize, h: usize, w: usize) -> Self {
        ConvDims {
            batch,
            c_in,
            c_out,
            h,
            w,
        }
    }
    fn hw(&self) -> usize {
        self.h * self.w
    }
    fn patch(&self) -> usize {
        self.c_in * K * K
    }
    /// Number of elements of the im2col matrix.
    pub fn col_len(&self) -> usize {
        self.patch() * self.batch * self.hw()
    }
}

/// Lower the input `(B, C, H, W)` into `col`, `(C·9) × (B·H·W)`: row `c·9 + ky·3 + kx`,
/// column `b·H·W + y·W + x` holds `x[b, c, y + ky - 1, x + kx - 1]` (zero outside the image).
pub fn im2col(x: &[f32], d: ConvDims, col: &mut [f32]) {
    let (hw, bhw) = (d.hw(), d.batch * d.hw());
    assert_eq!(x.len(), d.batch * d.c_in * hw);
    assert_eq!(col.len(), d.col_len());
    col.par_chunks_mut(bhw).enumerate().for_each(|(row, dst)| {
        let c = row / (K * K);
        let (ky, kx) = ((row / K) % K, row % K);
        for b in 0..d.batch {
            let plane = &x[(b * d.c_in + c) * hw..][..hw];
            let out = &mut dst[b * hw..][..hw];
            for y in 0..d.h {
                let sy = y + ky;
                let out_row = &mut out[y * d.w..][..d.w];
                if sy < PAD || sy - PAD >= d.h {
                    out_row.fill(0.0);
                    continue;
                }
                let src_row = &plane[(sy - PAD) * d.w..][..d.w];
                for (xx, o) in out_row.iter_mut().enumerate() {
                    let sx = xx + kx;
                    *o = if sx < PAD || sx - PAD >= d.w {
                        0.0
                    } else {
                        src_row[sx - PAD]
                    };
                }
            }
        }
    });
}

/// The adjoint of [`im2col`]: add each patch entry of `col` back onto the pixel it came from.
pub fn col2im_add(col: &[f32], d: ConvDims, dx: &mut [f32]) {
    let (hw, bhw) = (d.hw(), d.batch * d.hw());
    assert_eq!(dx.len(), d.batch * d.c_in * hw);
    assert_eq!(col.len(), d.col_len());
    dx.par_chunks_mut(hw)
        .enumerate()
        .for_each(|(plane_idx, plane)| {
            let (b, c) = (plane_idx / d.c_in, plane_idx % d.c_in);
            for ky in 0..K {
                for kx in 0..K {
                    let row = &col[(c * K * K + ky * K + kx) * bhw + b * hw..][..hw];
                    for y in 0..d.h {
                        let sy = y + ky;
                        if sy < PAD || sy - PAD >= d.h {
                            continue;
                        }
                        let dst_row = &mut plane[(sy - PAD) * d.w..][..d.w];
                        let src_row = &row[y * d.w..][..d.w];
                        for (xx, v) in src_row.iter().enumerate() {
                            let sx = xx + kx;
                            if sx >= PAD && sx - PAD < d.w {
                                dst_row[sx - PAD] += v;
                            }
                        }
                    }
                }
            }
        });
}

/// Forward 3×3 'same' convolution with bias. `weight` is `(O, C, 3, 3)`, `col` must hold
/// [`im2col`] of `x`. Returns `(B, O, H, W)`; with `relu` the output is clamped at zero
/// (fused here to save a pass over the largest tensor of the network).
pub fn conv_forward(
    col: &[f32],
    weight: &[f32],
    bias: &[f32],
    d: ConvDims,
    relu: bool,
) -> Vec<f32> {
    let (hw, bhw, patch) = (d.hw(), d.batch * d.hw(), d.patch());
    assert_eq!(weight.len(), d.c_out * patch);
    assert_eq!(bias.len(), d.c_out);
    let mut out = vec![0.0f32; d.batch * d.c_out * hw];
    out.par_chunks_mut(d.c_out * hw)
        .enumerate()
        .for_each(|(b, out_b)| {
            // out_b (O × HW) = W (O × C·9) · col[:, b·HW .. (b+1)·HW]
            matmul_strided(
                d.c_out,
                hw,
                patch,
                weight,
                Strides::rows(patch),
                &col[b * hw..],
                Strides { rs: bhw, cs: 1 },
                out_b,
                Strides::rows(hw),
                false,
                false,
            );
            for (o, plane) in out_b.chunks_mut(hw).enumerate() {
                let bo = bias[o];
                if relu {
                    plane.iter_mut().for_each(|v| *v = (*v + bo).max(0.0));
                } else {
                    plane.iter_mut().for_each(|v| *v += bo);
                }
            }
        });
    out
}

/// Gradients of [`conv_forward`] given `dy`, the gradient of its output (already masked by the
/// ReLU where one was fused). Adds into `dw` and `db`; returns `dx` only when asked, since the
/// first layer's input (the images) needs none.
pub fn conv_backward(
    col: &[f32],
    weight: &[f32],
    dy: &[f32],
    d: ConvDims,
    dw: &mut [f32],
    db: &mut [f32],
    want_dx: bool,
) -> Option<Vec<f32>> {
    let (hw, bhw, patch) = (d.hw(), d.batch * d.hw(), d.patch());
    assert_eq!(dy.len(), d.batch * d.c_out * hw);
    // dyT (O × B·HW): the output gradient with channels outermost, so both products below are
    // single large GEMMs.
    let mut dyt = vec![0.0f32; d.c_out * bhw];
    dyt.par_chunks_mut(bhw).enumerate().for_each(|(o, row)| {
        for b in 0..d.batch {
            row[b * hw..][..hw].copy_from_slice(&dy[(b * d.c_out + o) * hw..][..hw]);
        }
    });
    for (o, g) in db.iter_mut().enumerate() {
        *g += dyt[o * bhw..][..bhw].iter().sum::<f32>();
    }
    // dW (O × C·9) += dyT (O × B·HW) · colᵀ (B·HW × C·9). The reduction over B·HW is long and
    // the output small, which one GEMM parallelises poorly; so each of a fixed number of image
    // groups gets its own single-threaded product, summed in group order afterwards. The
    // grouping depends on the batch alone, never on the thread count: same numbers anywhere.
    let groups = DW_GROUPS.min(d.batch);
    let partials: Vec<Vec<f32>> = (0..groups)
        .into_par_iter()
        .map(|g| {
            let (first, last) = (g * d.batch / groups, (g + 1) * d.batch / groups);
            let mut part = vec![0.0f32; d.c_out * patch];
            matmul_strided(
                d.c_out,
                patch,
                (last - first) * hw,
                &dyt[first * hw..],
                Strides::rows(bhw),
                &col[first * hw..],
                Strides::transposed(bhw),
                &mut part,
                Strides::rows(patch),
                false,
                false,
            );
            part
        })
        .collect();
    for part in partials {
        dw.iter_mut().zip(part).for_each(|(w, p)| *w += p);
    }
    if !want_dx {
        return None;
    }
    // dcol (C·9 × B·HW) = Wᵀ (C·9 × O) · dyT (O × B·HW)
    let mut dcol = vec![0.0f32; d.col_len()];
    matmul_strided(
        patch,
        bhw,
        d.c_out,
        weight,
        Strides::transposed(patch),
        &dyt,
        Strides::rows(bhw),
        &mut dcol,
        Strides::rows(bhw),
        false,
        true,
    );
    let mut dx = vec![0.0f32; d.batch * d.c_in * hw];
    col2im_add(&dcol, d, &mut dx);
    Some(dx)
}

/// Max-pool 2×2 windows whose four values are `value(window[k][t])`, `k` in reading order:
/// each window's largest value, the first on ties (as [`maxpool_forward`] picks it), and its
/// index in the full-size output, `plane + corner[t]` plus the pixel's offset in its window
/// (0, 1, `width`, `width + 1` in a plane `width` wide). Written without branches,
/// so that it runs across windows in vector lanes; the convolutions with pooling fused call it
/// with their bias and ReLU as `value`.
#[inline(always)]
pub fn pool_windows(
    window: [&[f32]; 4],
    value: impl Fn(f32) -> f32,
    (plane, corner, width): (u32, &[u32], u32),
    pooled: &mut [f32],
    arg: &mut [u32],
) {
    let offsets = [0, 1, width, width + 1];
    let len = pooled.len();
    let [r0, r1, r2, r3] = window.map(|r| &r[..len]);
    let (corner, arg) = (&corner[..len], &mut arg[..len]);
    for t in 0..len {
        let mut best = value(r0[t]);
        let mut off = offsets[0];
        for (v, o) in [
            (r1[t], offsets[1]),
            (r2[t], offsets[2]),
            (r3[t], offsets[3]),
        ] {
            let v = value(v);
            if v > best {
                best = v;
                off = o;
            }
        }
        pooled[t] = best;
        arg[t] = plane + corner[t] + off;
    }
}

/// The pooled values of [`pool_windows`] alone, by the same comparisons in the same order (so
/// the same bits), for a pass that needs no winners.
#[inline(always)]
pub fn pool_values(window: [&[f32]; 4], value: impl Fn(f32) -> f32, pooled: &mut [f32]) {
    let len = pooled.len();
    let [r0, r1, r2, r3] = window.map(|r| &r[..len]);
    for t in 0..len {
        let mut best = value(r0[t]);
        for v in [r1[t], r2[t], r3[t]] {
            let v = value(v);
            if v > best {
                best = v;
            }
        }
        pooled[t] = best;
    }
}

/// Cut an output laid out `[image][O][per_img]` (`n` images) into the pieces each task of a
/// parallel loop writes: tasks are groups of `group` images times blocks of `block` output
/// channels (group-major), and each task gets one slice per image of its group, its block's
/// planes.
pub fn pieces<T>(
    buf: &mut [T],
    n: usize,
    group: usize,
    (c_out, block): (usize, usize),
    per_img: usize,
) -> Vec<Vec<&mut [T]>> {
    let blocks = c_out.div_ceil(block);
    let mut tasks: Vec<Vec<&mut [T]>> = (0..n.div_ceil(group) * blocks)
        .map(|_| Vec::new())
        .collect();
    for (img, planes) in buf.chunks_mut(c_out * per_img).take(n).enumerate() {
        for (b, piece) in planes.chunks_mut(block * per_img).enumerate() {
            tasks[img / group * blocks + b].push(piece);
        }
    }
    tasks
}

/// [`pieces`] of a pooled output's winners when they are kept, else `None` for every task:
/// what a pooling kernel zips with its tasks whether or not the backward pass needs winners.
pub fn optional_pieces(
    buf: Option<&mut [u32]>,
    n: usize,
    group: usize,
    shape: (usize, usize),
    per_img: usize,
) -> Vec<Option<Vec<&mut [u32]>>> {
    let tasks = n.div_ceil(group) * shape.0.div_ceil(shape.1);
    match buf {
        Some(b) => pieces(b, n, group, shape, per_img)
            .into_iter()
            .map(Some)
            .collect(),
        None => (0..tasks).map(|_| None).collect(),
    }
}

/// 2×2 max pooling with stride 2 over `planes` planes of `h × w` (both even). Returns the
/// pooled values and, for each, the index into `x` of the maximum it took (the first one on
/// ties), which is all the backward pass needs.
pub fn maxpool_forward(x: &[f32], planes: usize, h: usize, w: usize) -> (Vec<f32>, Vec<u32>) {
    assert!(
        h.is_multiple_of(2) && w.is_multiple_of(2),
        "max pooling needs even sides"
    );
    assert_eq!(x.len(), planes * h * w);
    assert!(
        x.len() <= u32::MAX as usize,
        "tensor too large for u32 indices"
    );
    let (ho, wo) = (h / 2, w / 2);
    let mut out = vec![0.0f32; planes * ho * wo];
    let mut arg = vec![0u32; planes * ho * wo];
    out.par_chunks_mut(ho * wo)
        .zip(arg.par_chunks_mut(ho * wo))
        .enumerate()
        .for_each(|(p, (o, a))| {
            let base = p * h * w;
            let plane = &x[base..][..h * w];
            for y in 0..ho {
                let (top, bottom) = (&plane[2 * y * w..][..w], &plane[(2 * y + 1) * w..][..w]);
                let (o, a) = (&mut o[y * wo..][..wo], &mut a[y * wo..][..wo]);
                for xx in 0..wo {
                    // The window in reading order; the first maximum wins ties. Selects rather
                    // than branches: on real activations the winner is unpredictable, and the
                    // mispredictions cost more than the comparisons.
                    let v = [
                        top[2 * xx],
                        top[2 * xx + 1],
                        bottom[2 * xx],
                        bottom[2 * xx + 1],
                    ];
                    let offsets = [0, 1, w, w + 1];
                    let (mut best, mut at) = (v[0], 0);
                    for (k, &vk) in v.iter().enumerate().skip(1) {
                        let better = vk > best;
                        best = if better { vk } else { best };
                        at = if better { k } else { at };
                    }
                    o[xx] = best;
                    a[xx] = (base + 2 * y * w + 2 * xx + offsets[at]) as u32;
                }
            }
        });
    (out, arg)
}

/// Route each pooled gradient back to the input position that won the maximum.
pub fn maxpool_backward_add(dy: &[f32], argmax: &[u32], dx: &mut [f32]) {
    assert_eq!(dy.len(), argmax.len());
    for (g, &i) in dy.iter().zip(argmax) {
        dx[i as usize] += g;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random(n: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// Direct 3×3 'same' convolution, the definition itself.
    fn naive_conv(x: &[f32], w: &[f32], bias: &[f32], d: ConvDims) -> Vec<f32> {
        let mut out = vec![0.0; d.batch * d.c_out * d.h * d.w];
        for b in 0..d.batch {
            for o in 0..d.c_out {
                for y in 0..d.h as isize {
                    for xx in 0..d.w as isize {
                        let mut s = bias[o];
                        for c in 0..d.c_in {
                            for ky in 0..3isize {
                                for kx in 0..3isize {
                                    let (sy, sx) = (y + ky - 1, xx + kx - 1);
                                    if sy < 0 || sx < 0 || sy >= d.h as isize || sx >= d.w as isize
                                    {
                                        continue;
                                    }
                                    let xi =
                                        ((b * d.c_in + c) * d.h + sy as usize) * d.w + sx as usize;
                                    let wi = ((o * d.c_in + c) * 3 + ky as usize) * 3 + kx as usize;
                                    s += x[xi] * w[wi];
                                }
                            }
                        }
                        out[((b * d.c_out + o) * d.h + y as usize) * d.w + xx as usize] = s;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn conv_forward_matches_the_definition_on_random_shapes() {
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..6 {
            let d = ConvDims::new(
                rng.gen_range(1..4),
                rng.gen_range(1..5),
                rng.gen_range(1..7),
                rng.gen_range(1..9),
                rng.gen_range(1..9),
            );
            let x = random(d.batch * d.c_in * d.h * d.w, &mut rng);
            let w = random(d.c_out * d.c_in * 9, &mut rng);
            let bias = random(d.c_out, &mut rng);
            let mut col = vec![0.0; d.col_len()];
            im2col(&x, d, &mut col);
            let got = conv_forward(&col, &w, &bias, d, false);
            let want = naive_conv(&x, &w, &bias, d);
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-4, "{d:?}: {g} vs {e}");
            }
            let relu = conv_forward(&col, &w, &bias, d, true);
            for (r, g) in relu.iter().zip(&got) {
                assert_eq!(*r, g.max(0.0));
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), c> == <x, col2im(c)> for any x and c.
        let mut rng = StdRng::seed_from_u64(5);
        let d = ConvDims::new(2, 3, 1, 5, 4);
        let x = random(d.batch * d.c_in * d.h * d.w, &mut rng);
        let c = random(d.col_len(), &mut rng);
        let mut col = vec![0.0; d.col_len()];
        im2col(&x, d, &mut col);
        let lhs: f32 = col.iter().zip(&c).map(|(a, b)| a * b).sum();
        let mut back = vec![0.0; x.len()];
        col2im_add(&c, d, &mut back);
        let rhs: f32 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-3, "{lhs} vs {rhs}");
    }

    #[test]
    fn maxpool_takes_the_maximum_of_each_window() {
        let mut rng = StdRng::seed_from_u64(3);
        let (planes, h, w) = (3, 6, 4);
        let x = random(planes * h * w, &mut rng);
        let (out, arg) = maxpool_forward(&x, planes, h, w);
        for p in 0..planes {
            for y in 0..h / 2 {
                for xx in 0..w / 2 {
                    let win = [(0, 0), (0, 1), (1, 0), (1, 1)]
                        .map(|(dy, dx)| x[p * h * w + (2 * y + dy) * w + 2 * xx + dx]);
                    let m = win.iter().cloned().fold(f32::MIN, f32::max);
                    let i = p * (h / 2) * (w / 2) + y * (w / 2) + xx;
                    assert_eq!(out[i], m);
                    assert_eq!(x[arg[i] as usize], m);
                }
            }
        }
        let dy = vec![1.0; out.len()];
        let mut dx = vec![0.0; x.len()];
        maxpool_backward_add(&dy, &arg, &mut dx);
        assert_eq!(dx.iter().sum::<f32>(), out.len() as f32);
        assert_eq!(dx.iter().filter(|v| **v == 1.0).count(), out.len());
    }
}
