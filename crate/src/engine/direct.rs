//! The 3×3 'same' convolution computed directly, with its ReLU and 2×2 max pooling fused, for
//! layers with few input channels: the CNN's first layer, whose one input channel leaves
//! im2col a product with an inner dimension of 9.
//!
//! Why: such a product runs far below the GEMM's peak, and around it im2col writes a 9-times
//! copy of the images, the convolution a full-size output (128 × 32 × 28 × 28 floats, 13 MB a
//! batch) and the pooling reads it back. Here a row of pooling windows is made at once: the
//! zero-padded input is split into its even and odd columns, so each of a window's four pixels
//! is nine multiply-adds of contiguous runs, one window per vector lane, and the windows are
//! pooled in the registers that hold them: only the pooled values and their winners are
//! written.
//!
//! The backward pass needs only the winners: each pooled gradient goes to the one position
//! that won its window, so the weight gradient is one 3×3 patch per window, not per pixel.
//! Sixteen output channels are summed at once, one per vector lane, each lane choosing its
//! winner's patch by selects: one channel's sum alone would wait on its own previous addition
//! at every window. It sums over a fixed number of image groups in order, so the numbers do
//! not depend on the thread count. Results differ from im2col's by rounding only (the sums run
//! in another order); the tests compare the two.

use rayon::prelude::*;

use super::kernels::{
    self, optional_pieces, pool_values, pool_windows, window_corners, windows, winner_place,
    ConvDims,
};
use super::simd::wide;

/// Width of a padded plane: a zero column on each side of the image.
fn padded_width(d: &ConvDims) -> usize {
    d.w + 2
}

/// Copy image `img`'s `c_in` planes into `padded` (`c_in` planes of `(h + 2) ×`
/// [`padded_width`]), each with its border of zeros.
fn pad_image(x: &[f32], img: usize, d: &ConvDims, padded: &mut [f32]) {
    let (hw, pw, ph) = (d.h * d.w, padded_width(d), d.h + 2);
    padded.fill(0.0);
    for c in 0..d.c_in {
        let plane = &x[(img * d.c_in + c) * hw..][..hw];
        let dst = &mut padded[c * ph * pw..][..ph * pw];
        for y in 0..d.h {
            dst[(y + 1) * pw + 1..][..d.w].copy_from_slice(&plane[y * d.w..][..d.w]);
        }
    }
}

/// Pooling windows computed together in the forward pass: a window row of the CNN's first
/// layer (14 windows) fits one AVX-512 register (two AVX2 ones), and four sums per window, one
/// per pixel, stay in registers across all nine taps.
const WINDOW_LANES: usize = 16;

/// Columns per row of [`split_columns`]' halves: whole blocks of windows, and one more for
/// the taps that reach a column to the right.
fn split_width(d: &ConvDims) -> usize {
    (d.w / 2).next_multiple_of(WINDOW_LANES) + 1
}

/// Image `img` zero-padded by one pixel, its columns split by parity: `even[c][r][j]` is the
/// padded plane's column `2j`, `odd[c][r][j]` column `2j + 1` (`c_in` planes of `(h + 2) ×`
/// [`split_width`], zeros past the border). A window's left pixels (even output columns) and
/// right pixels (odd ones) then read every tap as a contiguous run of windows, so the pooled
/// row is made without ever writing the full-size output or picking its columns apart.
fn split_columns(x: &[f32], img: usize, d: &ConvDims, even: &mut [f32], odd: &mut [f32]) {
    let (hw, sw, ph) = (d.h * d.w, split_width(d), d.h + 2);
    even.fill(0.0);
    odd.fill(0.0);
    for c in 0..d.c_in {
        let plane = &x[(img * d.c_in + c) * hw..][..hw];
        for y in 0..d.h {
            let at = (c * ph + y + 1) * sw;
            for (i, &v) in plane[y * d.w..][..d.w].iter().enumerate() {
                // Image column `i` is padded column `p = i + 1`, column `p / 2` of its half.
                let p = i + 1;
                let half = if p % 2 == 0 { &mut *even } else { &mut *odd };
                half[at + p / 2] = v;
            }
        }
    }
}

/// The input runs that windows `j0 .. j0 + WINDOW_LANES` of window row `py` read, per input
/// channel: rows `2py .. 2py + 4` of the padded plane, each from both halves of
/// [`split_columns`], at the block and one column to its right. Read once per row of windows
/// and kept (in registers, for one input channel) while every output channel uses them.
type WindowInputs = [[[[f32; WINDOW_LANES]; 2]; 2]; 4];

#[inline(always)]
fn window_inputs(
    (even, odd): (&[f32], &[f32]),
    d: &ConvDims,
    py: usize,
    j0: usize,
    inputs: &mut [WindowInputs],
) {
    let (sw, ph) = (split_width(d), d.h + 2);
    for (c, runs) in inputs.iter_mut().enumerate() {
        for (r, row) in runs.iter_mut().enumerate() {
            for (half, pair) in [even, odd].into_iter().zip(row.iter_mut()) {
                for (shift, run) in pair.iter_mut().enumerate() {
                    let at = (c * ph + 2 * py + r) * sw + j0 + shift;
                    run.copy_from_slice(&half[at..][..WINDOW_LANES]);
                }
            }
        }
    }
}

/// The four pixels of a block of windows in channel `o` (`taps`, its `c_in × 9` weights),
/// before bias: top left, top right, bottom left, bottom right (reading order). Each pixel is
/// the sum over input channels, then tap rows, then tap columns, of tap × input, one multiply
/// and one add at a time from zero: the order and operations of the stencil's definition.
#[inline(always)]
fn window_pixels(inputs: &[WindowInputs], taps: &[f32]) -> [[f32; WINDOW_LANES]; 4] {
    const EVEN: usize = 0;
    const ODD: usize = 1;
    let mut acc = [[0.0f32; WINDOW_LANES]; 4];
    for (c, runs) in inputs.iter().enumerate() {
        for ky in 0..3 {
            for kx in 0..3 {
                let t = taps[c * 9 + ky * 3 + kx];
                // Output column 2j reads padded column 2j + kx, output column 2j + 1 reads
                // 2j + 1 + kx: which half, and how far right, for each.
                let (left, right) = match kx {
                    0 => ((EVEN, 0), (ODD, 0)),
                    1 => ((ODD, 0), (EVEN, 1)),
                    _ => ((EVEN, 1), (ODD, 1)),
                };
                for (below, pair) in acc.chunks_exact_mut(2).enumerate() {
                    let row = &runs[below + ky];
                    for (a, (half, shift)) in pair.iter_mut().zip([left, right]) {
                        for (a, s) in a.iter_mut().zip(&row[half][shift]) {
                            *a += t * s;
                        }
                    }
                }
            }
        }
    }
    acc
}

/// Forward 3×3 'same' convolution with bias (and ReLU when `relu`), then 2×2 max pooling (even
/// sides): `(B, C, H, W) → (B, O, H/2, W/2)`, with, for each pooled value, the index into the
/// full-size output of the value that won (the first in reading order on ties), as
/// [`super::kernels::maxpool_forward`] returns it.
pub fn conv_forward_pooled(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    d: ConvDims,
    relu: bool,
) -> (Vec<f32>, Vec<u32>) {
    let (pooled, argmax) = forward_pooled(x, weight, bias, d, relu, true);
    (pooled, argmax.expect("winners were asked for"))
}

/// The pooled values of [`conv_forward_pooled`] alone, the same bits, for a pass that needs no
/// gradient: the winners are found in registers and never written.
pub fn conv_forward_pooled_values(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    d: ConvDims,
    relu: bool,
) -> Vec<f32> {
    forward_pooled(x, weight, bias, d, relu, false).0
}

fn forward_pooled(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    d: ConvDims,
    relu: bool,
    keep_winners: bool,
) -> (Vec<f32>, Option<Vec<u32>>) {
    let hw = d.h * d.w;
    assert_eq!(x.len(), d.batch * d.c_in * hw);
    assert_eq!(weight.len(), d.c_out * d.c_in * 9);
    assert_eq!(bias.len(), d.c_out);
    assert!(
        d.h.is_multiple_of(2) && d.w.is_multiple_of(2),
        "max pooling needs even sides"
    );
    assert!(
        d.batch * d.c_out * hw <= u32::MAX as usize,
        "tensor too large for u32 indices"
    );
    let (ph, pw) = (d.h / 2, d.w / 2);
    let per_img = d.c_out * ph * pw;
    // Each window's left pixel in its pair of rows, for whole blocks of windows.
    let corner: Vec<u32> = (0..pw.next_multiple_of(WINDOW_LANES) as u32)
        .map(|px| 2 * px)
        .collect();
    let mut pooled = vec![0.0f32; d.batch * per_img];
    let mut argmax = keep_winners.then(|| vec![0u32; d.batch * per_img]);
    let half_len = d.c_in * (d.h + 2) * split_width(&d);
    pooled
        .par_chunks_mut(per_img)
        .zip(optional_pieces(
            argmax.as_deref_mut(),
            d.batch,
            1,
            (1, 1),
            per_img,
        ))
        .enumerate()
        .for_each_init(
            || {
                let halves = (vec![0.0f32; half_len], vec![0.0f32; half_len]);
                (halves, vec![[[[[0.0f32; WINDOW_LANES]; 2]; 2]; 4]; d.c_in])
            },
            |((even, odd), inputs), (img, (pooled_i, mut arg_i))| {
                wide(
                    #[inline(always)]
                    || {
                        split_columns(x, img, &d, even, odd);
                        for py in 0..ph {
                            for j0 in (0..pw).step_by(WINDOW_LANES) {
                                window_inputs((even, odd), &d, py, j0, inputs);
                                let len = WINDOW_LANES.min(pw - j0);
                                for (o, &bo) in bias.iter().enumerate() {
                                    let taps = &weight[o * d.c_in * 9..][..d.c_in * 9];
                                    let px = window_pixels(inputs, taps);
                                    let row_plane =
                                        ((img * d.c_out + o) * hw + 2 * py * d.w) as u32;
                                    let at = (o * ph + py) * pw + j0;
                                    let mut best = [0.0f32; WINDOW_LANES];
                                    let value =
                                        |a: f32| if relu { (a + bo).max(0.0) } else { a + bo };
                                    // Pooled across the whole block, so that it stays in vector
                                    // lanes; the windows past the row's end are dropped.
                                    if let Some(arg_i) = arg_i.as_deref_mut() {
                                        let mut winner = [0u32; WINDOW_LANES];
                                        pool_windows(
                                            px.each_ref().map(|p| &p[..]),
                                            value,
                                            (row_plane, &corner[j0..][..WINDOW_LANES], d.w as u32),
                                            &mut best,
                                            &mut winner,
                                        );
                                        arg_i[0][at..][..len].copy_from_slice(&winner[..len]);
                                    } else {
                                        pool_values(
                                            px.each_ref().map(|p| &p[..]),
                                            value,
                                            &mut best,
                                        );
                                    }
                                    pooled_i[at..][..len].copy_from_slice(&best[..len]);
                                }
                            }
                        }
                    },
                )
            },
        );
    (pooled, argmax)
}

/// Gradients of [`conv_forward_pooled`] given `dp`, the pooled output's gradient, and the
/// winners it returned, with `dead` marking windows that pass no gradient (where a fused ReLU
/// left no positive value): adds into `dw` `(O, C, 3, 3)` and `db`, and returns `dx` when
/// asked. The same function as routing each pooled gradient to its winner and running the
/// convolution's backward pass, up to rounding.
#[allow(clippy::too_many_arguments)]
pub fn conv_backward_pooled(
    x: &[f32],
    weight: &[f32],
    dp: &[f32],
    argmax: &[u32],
    dead: u32,
    d: ConvDims,
    dw: &mut [f32],
    db: &mut [f32],
    want_dx: bool,
) -> Option<Vec<f32>> {
    let hw = d.h * d.w;
    let pooled_hw = hw / 4;
    assert_eq!(x.len(), d.batch * d.c_in * hw);
    assert_eq!(dp.len(), d.batch * d.c_out * pooled_hw);
    assert_eq!(argmax.len(), dp.len());
    assert_eq!(dw.len(), d.c_out * d.c_in * 9);
    let mut dx = vec![0.0f32; if want_dx { x.len() } else { 0 }];
    // Each group owns its images' part of dx.
    let (bounds, dx_parts) = kernels::image_groups(d.batch, d.c_in * hw, &mut dx);
    let grads = Grads {
        x,
        weight,
        dp,
        argmax,
        dead,
        d,
    };
    let partials: Vec<(Vec<f32>, Vec<f32>)> = bounds
        .par_iter()
        .zip(dx_parts)
        .map(|(&images, dx_g)| {
            wide(
                #[inline(always)]
                || grads.of_group(images, dx_g, want_dx),
            )
        })
        .collect();
    for (dwp, dbp) in partials {
        dw.iter_mut().zip(dwp).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(dbp).for_each(|(a, b)| *a += b);
    }
    want_dx.then_some(dx)
}

/// What [`conv_backward_pooled`] reads.
struct Grads<'a> {
    x: &'a [f32],
    weight: &'a [f32],
    dp: &'a [f32],
    argmax: &'a [u32],
    dead: u32,
    d: ConvDims,
}

/// Output channels whose weight gradients are summed together, one per vector lane: the sums
/// of different channels are independent, so a block of them advances in one vector operation
/// where one channel's sum would wait on its own previous addition.
const OUT_LANES: usize = 16;

/// One value per output channel of a block (see [`OUT_LANES`]).
type OutLanes = [f32; OUT_LANES];

/// The place that marks a dead window (or a lane past the last output channel) in
/// [`WindowLanes`]: no value is added for it.
const NO_PLACE: f32 = 4.0;

/// One image's pooled gradient and winners, window by window and block by block of output
/// channels: entry `t · blocks + b` holds window `t`'s gradient and winner's place (0..4 in
/// reading order, or [`NO_PLACE`]) for the channels of block `b`, one per lane. The places are
/// floats so that choosing by them is a vector operation on the same lanes as the sums.
#[derive(Default)]
struct WindowLanes {
    g: Vec<OutLanes>,
    place: Vec<OutLanes>,
    /// One channel's places, window by window.
    channel: Vec<f32>,
}

/// The running weight and bias gradients of a group of images, by block of output channels:
/// `taps[(b · c_in + c) · 9 + k]` holds tap `k` of input channel `c` for the channels of block
/// `b`, one per lane, and `bias[b]` their bias gradients.
struct LaneSums {
    taps: Vec<OutLanes>,
    bias: Vec<OutLanes>,
}

impl Grads<'_> {
    /// The partial `(dw, db)` of the images `first..last`, their `dx` written into `dx_g`
    /// when `want_dx`.
    #[inline(always)]
    fn of_group(
        &self,
        (first, last): (usize, usize),
        dx_g: &mut [f32],
        want_dx: bool,
    ) -> (Vec<f32>, Vec<f32>) {
        let d = &self.d;
        let (hw, plane_len) = (d.h * d.w, (d.h + 2) * padded_width(d));
        let blocks = d.c_out.div_ceil(OUT_LANES);
        let mut sums = LaneSums {
            taps: vec![[0.0; OUT_LANES]; blocks * d.c_in * 9],
            bias: vec![[0.0; OUT_LANES]; blocks],
        };
        let mut by_window = WindowLanes::default();
        let corners = window_corners(d);
        let mut padded = vec![0.0f32; d.c_in * plane_len];
        let mut dpad = vec![0.0f32; if want_dx { d.c_in * plane_len } else { 0 }];
        for img in first..last {
            pad_image(self.x, img, d, &mut padded);
            self.window_lanes(img, &corners, &mut by_window);
            self.add_weight_grads(&by_window, &padded, &mut sums);
            if want_dx {
                dpad.fill(0.0);
                for o in 0..d.c_out {
                    self.add_input_grad(img, o, &mut dpad);
                }
                for c in 0..d.c_in {
                    let dst = &mut dx_g[((img - first) * d.c_in + c) * hw..][..hw];
                    for y in 0..d.h {
                        let pw = padded_width(d);
                        let src = &dpad[c * plane_len + (y + 1) * pw + 1..][..d.w];
                        dst[y * d.w..][..d.w].copy_from_slice(src);
                    }
                }
            }
        }
        sums.into_gradients(d)
    }

    /// Image `img`'s pooled gradient and winners' places into `out`, by window and block of
    /// output channels. Each winner's place is its offset from its window's corner (`corners`,
    /// relative to the plane), with no division per window; a channel's places are found
    /// first, all its windows in one loop the compiler runs in vector lanes, and only then
    /// spread over the blocks' lanes.
    #[inline(always)]
    fn window_lanes(&self, img: usize, corners: &[u32], out: &mut WindowLanes) {
        let d = &self.d;
        let hw = d.h * d.w;
        let (count, blocks) = (hw / 4, d.c_out.div_ceil(OUT_LANES));
        out.g.clear();
        out.g.resize(count * blocks, [0.0; OUT_LANES]);
        out.place.clear();
        out.place.resize(count * blocks, [NO_PLACE; OUT_LANES]);
        out.channel.resize(count, 0.0);
        for o in 0..d.c_out {
            let (b, l) = (o / OUT_LANES, o % OUT_LANES);
            let (plane, at) = ((img * d.c_out + o) * hw, (img * d.c_out + o) * count);
            let wins = &self.argmax[at..][..count];
            for ((place, &win), &corner) in out.channel.iter_mut().zip(wins).zip(corners) {
                let p = winner_place(win, plane as u32 + corner, d.w as u32);
                *place = if win == self.dead { NO_PLACE } else { p as f32 };
            }
            let dp = &self.dp[at..][..count];
            for (t, (&g, &place)) in dp.iter().zip(&out.channel).enumerate() {
                out.g[t * blocks + b][l] = g;
                out.place[t * blocks + b][l] = place;
            }
        }
    }

    /// Add one image's weight and bias gradients into `sums`: window by window in reading
    /// order, each tap gets gradient × the input under it at the winner, by a multiply and then
    /// an add, and the bias gets the gradient: per channel, the order and operations of
    /// routing each pooled gradient to its winner and summing over the plane.
    #[inline(always)]
    fn add_weight_grads(&self, by_window: &WindowLanes, padded: &[f32], sums: &mut LaneSums) {
        let d = &self.d;
        let pw = padded_width(d);
        let plane_len = (d.h + 2) * pw;
        let blocks = d.c_out.div_ceil(OUT_LANES);
        let count = d.h * d.w / 4;
        for b in 0..blocks {
            let lanes = |t: usize| {
                (
                    &by_window.g[t * blocks + b],
                    &by_window.place[t * blocks + b],
                )
            };
            let bias = &mut sums.bias[b];
            for t in 0..count {
                let (g, place) = lanes(t);
                for l in 0..OUT_LANES {
                    let sum = bias[l] + g[l];
                    bias[l] = if place[l] < NO_PLACE { sum } else { bias[l] };
                }
            }
            for c in 0..d.c_in {
                let taps: &mut [OutLanes; 9] = (&mut sums.taps[(b * d.c_in + c) * 9..][..9])
                    .try_into()
                    .expect("nine taps");
                let mut acc = *taps;
                for (t, (py, px)) in windows(d.h, d.w).enumerate() {
                    let (g, place) = lanes(t);
                    let corner = c * plane_len + 2 * py * pw + 2 * px;
                    let region: [[f32; 4]; 4] = std::array::from_fn(|r| {
                        padded[corner + r * pw..][..4].try_into().expect("four")
                    });
                    add_taps(&mut acc, g, place, &region);
                }
                *taps = acc;
            }
        }
    }

    /// Add the input gradient of output plane `o` of image `img` into `dpad` (the padded
    /// input's gradient): window by window in reading order, each winner's gradient × each
    /// tap's weight onto the input under that tap.
    #[inline(always)]
    fn add_input_grad(&self, img: usize, o: usize, dpad: &mut [f32]) {
        let d = &self.d;
        let (hw, pw) = (d.h * d.w, padded_width(d));
        let plane_len = (d.h + 2) * pw;
        let (plane, at) = ((img * d.c_out + o) * hw, (img * d.c_out + o) * hw / 4);
        for (t, (py, px)) in windows(d.h, d.w).enumerate() {
            let (g, win) = (self.dp[at + t], self.argmax[at + t]);
            if win == self.dead {
                continue;
            }
            let corner = (plane + 2 * py * d.w + 2 * px) as u32;
            let place = winner_place(win, corner, d.w as u32) as usize;
            let (y, xx) = (2 * py + place / 2, 2 * px + place % 2);
            for c in 0..d.c_in {
                let src = c * plane_len + y * pw + xx;
                let wk = (o * d.c_in + c) * 9;
                for (ky, kx) in (0..3).flat_map(|ky| (0..3).map(move |kx| (ky, kx))) {
                    dpad[src + ky * pw + kx] += g * self.weight[wk + ky * 3 + kx];
                }
            }
        }
    }
}

/// One window's terms for a block of output channels: tap `(ky, kx)` of lane `l` adds
/// `g[l] ×` the input at the lane's winner `(dy, dx)` shifted by the tap, `region[ky + dy][kx +
/// dx]` of the window's 4×4 input region; a lane with no place adds nothing.
#[inline(always)]
fn add_taps(acc: &mut [OutLanes; 9], g: &OutLanes, place: &OutLanes, region: &[[f32; 4]; 4]) {
    for (k, acc_k) in acc.iter_mut().enumerate() {
        let (ky, kx) = (k / 3, k % 3);
        let at = [
            region[ky][kx],
            region[ky][kx + 1],
            region[ky + 1][kx],
            region[ky + 1][kx + 1],
        ];
        for l in 0..OUT_LANES {
            // Selects, not branches: the places are random, and each select is one
            // vector blend across the lanes.
            let p = place[l];
            let mut v = at[0];
            v = if p == 1.0 { at[1] } else { v };
            v = if p == 2.0 { at[2] } else { v };
            v = if p == 3.0 { at[3] } else { v };
            let sum = acc_k[l] + g[l] * v;
            acc_k[l] = if p < NO_PLACE { sum } else { acc_k[l] };
        }
    }
}

impl LaneSums {
    /// The sums as `(dw (O, C, 3, 3), db)`.
    fn into_gradients(self, d: &ConvDims) -> (Vec<f32>, Vec<f32>) {
        let mut dw = vec![0.0f32; d.c_out * d.c_in * 9];
        let mut db = vec![0.0f32; d.c_out];
        for o in 0..d.c_out {
            let (b, l) = (o / OUT_LANES, o % OUT_LANES);
            db[o] = self.bias[b][l];
            for c in 0..d.c_in {
                for k in 0..9 {
                    dw[(o * d.c_in + c) * 9 + k] = self.taps[(b * d.c_in + c) * 9 + k][l];
                }
            }
        }
        (dw, db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kernels;

    fn data(len: usize, salt: u64) -> Vec<f32> {
        let mut s = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// The pooled backward pass written out window by window: the batch cut into
    /// [`kernels::image_groups`], each group's partial `(dw, db)` summed from zero over its
    /// images, output channels, windows (in reading order, dead ones skipped), input channels
    /// and taps, by separate multiplies and adds; `dx` summed in that same order; the partials
    /// then added into `dw` and `db` in group order.
    #[allow(clippy::too_many_arguments)]
    fn backward_by_windows(
        (x, w): (&[f32], &[f32]),
        (dp, argmax, dead): (&[f32], &[u32], u32),
        d: ConvDims,
        dw: &mut [f32],
        db: &mut [f32],
    ) -> Vec<f32> {
        let (hw, pw) = (d.h * d.w, d.w + 2);
        let pix = |img: usize, c: usize, y: usize, xx: usize| -> f32 {
            // (y, xx) in the zero-padded plane.
            if y == 0 || xx == 0 || y > d.h || xx > d.w {
                0.0
            } else {
                x[(img * d.c_in + c) * hw + (y - 1) * d.w + xx - 1]
            }
        };
        let mut dx = vec![0.0f32; x.len()];
        let mut scratch = vec![];
        let (bounds, _) = kernels::image_groups(d.batch, 0, &mut scratch);
        for (first, last) in bounds {
            let (mut dwp, mut dbp) = (vec![0.0f32; dw.len()], vec![0.0f32; d.c_out]);
            for img in first..last {
                let mut dpad = vec![0.0f32; d.c_in * (d.h + 2) * pw];
                for (o, db_o) in dbp.iter_mut().enumerate() {
                    for t in 0..hw / 4 {
                        let at = (img * d.c_out + o) * hw / 4 + t;
                        if argmax[at] == dead {
                            continue;
                        }
                        let (g, win) = (dp[at], argmax[at] as usize - (img * d.c_out + o) * hw);
                        let (y, xx) = (win / d.w, win % d.w);
                        *db_o += g;
                        for c in 0..d.c_in {
                            for (ky, kx) in (0..3).flat_map(|ky| (0..3).map(move |kx| (ky, kx))) {
                                let k = (o * d.c_in + c) * 9 + ky * 3 + kx;
                                dwp[k] += g * pix(img, c, y + ky, xx + kx);
                                dpad[(c * (d.h + 2) + y + ky) * pw + xx + kx] += g * w[k];
                            }
                        }
                    }
                }
                for c in 0..d.c_in {
                    for y in 0..d.h {
                        for xx in 0..d.w {
                            dx[(img * d.c_in + c) * hw + y * d.w + xx] =
                                dpad[(c * (d.h + 2) + y + 1) * pw + xx + 1];
                        }
                    }
                }
            }
            dw.iter_mut().zip(dwp).for_each(|(a, b)| *a += b);
            db.iter_mut().zip(dbp).for_each(|(a, b)| *a += b);
        }
        dx
    }

    /// The vectorised backward pass is its window-by-window definition, bit for bit: on a batch
    /// cut into several groups, with dead windows, over more output channels than one block of
    /// lanes, and adding into gradients already there.
    #[test]
    fn the_backward_pass_is_its_definition_bit_for_bit() {
        // 19 output channels: a whole block of lanes and a partial one.
        let shapes = [
            (7, 1, 5, 6, 8, true),
            (5, 3, 4, 4, 10, false),
            (3, 2, 19, 6, 6, true),
        ];
        for (batch, c_in, c_out, h, w, relu) in shapes {
            let d = ConvDims::new(batch, c_in, c_out, h, w);
            let x = data(batch * c_in * h * w, 11);
            let wt = data(c_out * c_in * 9, 12);
            let bias = data(c_out, 13);
            let (pooled, mut argmax) = conv_forward_pooled(&x, &wt, &bias, d, relu);
            const DEAD: u32 = u32::MAX;
            for (a, p) in argmax.iter_mut().zip(&pooled) {
                if relu && *p <= 0.0 {
                    *a = DEAD;
                }
            }
            assert!(!relu || argmax.contains(&DEAD), "some windows are dead");
            let dp = data(pooled.len(), 14);
            let start = (data(wt.len(), 15), data(c_out, 16));
            let (mut dw, mut db) = start.clone();
            let dx = conv_backward_pooled(&x, &wt, &dp, &argmax, DEAD, d, &mut dw, &mut db, true);
            let (mut want_dw, mut want_db) = start;
            let want_dx = backward_by_windows(
                (&x, &wt),
                (&dp, &argmax, DEAD),
                d,
                &mut want_dw,
                &mut want_db,
            );
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&dw), bits(&want_dw), "dw, {d:?}");
            assert_eq!(bits(&db), bits(&want_db), "db, {d:?}");
            assert_eq!(
                bits(&dx.expect("dx was asked for")),
                bits(&want_dx),
                "dx, {d:?}"
            );
        }
    }

    /// Pooled values, winners, and the gradients of the weights, bias and input.
    type Both = (Vec<f32>, Vec<u32>, Vec<f32>, Vec<f32>, Vec<f32>);

    /// im2col's convolution, its pooling and their backward passes: the reference.
    fn reference(x: &[f32], w: &[f32], b: &[f32], dp: &[f32], d: ConvDims, relu: bool) -> Both {
        let mut col = vec![0.0; d.col_len()];
        kernels::im2col(x, d, &mut col);
        let out = kernels::conv_forward(&col, w, b, d, relu);
        let (pooled, argmax) = kernels::maxpool_forward(&out, d.batch * d.c_out, d.h, d.w);
        let mut dy = vec![0.0; out.len()];
        for ((g, &a), p) in dp.iter().zip(&argmax).zip(&pooled) {
            if !relu || *p > 0.0 {
                dy[a as usize] += g;
            }
        }
        let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; b.len()]);
        let dx = kernels::conv_backward(&col, w, &dy, d, &mut dw, &mut db, true).unwrap();
        (pooled, argmax, dw, db, dx)
    }

    #[test]
    fn matches_im2col_convolution_and_pooling_both_ways() {
        for (c_in, relu) in [(1, true), (1, false), (3, true)] {
            let d = ConvDims {
                batch: 5,
                c_in,
                c_out: 7,
                h: 10,
                w: 12,
            };
            let x = data(d.batch * c_in * d.h * d.w, 1);
            let w = data(d.c_out * c_in * 9, 2);
            let b = data(d.c_out, 3);
            let dp = data(d.batch * d.c_out * d.h * d.w / 4, 4);
            let (pooled_r, argmax_r, dw_r, db_r, dx_r) = reference(&x, &w, &b, &dp, d, relu);
            let (pooled, argmax) = conv_forward_pooled(&x, &w, &b, d, relu);
            close(&pooled, &pooled_r, "pooled");
            // Winners agree except where two candidates tie to rounding.
            let same = argmax.iter().zip(&argmax_r).filter(|(a, b)| a == b).count();
            assert!(
                same * 100 >= argmax.len() * 99,
                "{same} of {}",
                argmax.len()
            );
            let dead = u32::MAX;
            let marked: Vec<u32> = argmax_r
                .iter()
                .zip(&pooled_r)
                .map(|(&a, &p)| if relu && p <= 0.0 { dead } else { a })
                .collect();
            let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; b.len()]);
            let dx = conv_backward_pooled(&x, &w, &dp, &marked, dead, d, &mut dw, &mut db, true)
                .unwrap();
            close(&dw, &dw_r, "dw");
            close(&db, &db_r, "db");
            close(&dx, &dx_r, "dx");
        }
    }

    /// The forward pass pixel by pixel as its documentation defines it: each pixel summed over
    /// input channels, tap rows, tap columns, from zero, then bias and ReLU; each window's first
    /// largest pixel in reading order.
    fn forward_by_definition(x: &[f32], w: &[f32], b: &[f32], d: ConvDims) -> (Vec<f32>, Vec<u32>) {
        let (hw, mut pooled, mut argmax) = (d.h * d.w, Vec::new(), Vec::new());
        let at = |img: usize, c: usize, y: isize, xx: isize| -> f32 {
            let inside = (0..d.h as isize).contains(&y) && (0..d.w as isize).contains(&xx);
            let i = (img * d.c_in + c) * hw + (y.max(0) as usize) * d.w + xx.max(0) as usize;
            if inside {
                x[i]
            } else {
                0.0
            }
        };
        for img in 0..d.batch {
            for o in 0..d.c_out {
                let pixel = |y: usize, xx: usize| {
                    let mut acc = 0.0f32;
                    for c in 0..d.c_in {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let t = w[(o * d.c_in + c) * 9 + ky * 3 + kx];
                                acc +=
                                    t * at(img, c, (y + ky) as isize - 1, (xx + kx) as isize - 1);
                            }
                        }
                    }
                    (acc + b[o]).max(0.0)
                };
                for (py, px) in (0..d.h / 2).flat_map(|py| (0..d.w / 2).map(move |px| (py, px))) {
                    let mut best = (pixel(2 * py, 2 * px), 2 * py * d.w + 2 * px);
                    for (y, xx) in [(0, 1), (1, 0), (1, 1)].map(|(a, c)| (2 * py + a, 2 * px + c)) {
                        if pixel(y, xx) > best.0 {
                            best = (pixel(y, xx), y * d.w + xx);
                        }
                    }
                    pooled.push(best.0);
                    argmax.push(((img * d.c_out + o) * hw + best.1) as u32);
                }
            }
        }
        (pooled, argmax)
    }

    #[test]
    fn the_forward_pass_is_its_definition_bit_for_bit() {
        // Rows of 18 windows: a whole block of vector lanes and part of another.
        for c_in in [1, 3] {
            let d = ConvDims::new(3, c_in, 5, 6, 36);
            let x = data(d.batch * c_in * d.h * d.w, 11);
            let w = data(d.c_out * c_in * 9, 12);
            let b = data(d.c_out, 13);
            let (pooled, argmax) = conv_forward_pooled(&x, &w, &b, d, true);
            let (pooled_r, argmax_r) = forward_by_definition(&x, &w, &b, d);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&pooled), bits(&pooled_r), "c_in {c_in}");
            assert_eq!(argmax, argmax_r, "c_in {c_in}");
            let values = conv_forward_pooled_values(&x, &w, &b, d, true);
            assert_eq!(bits(&values), bits(&pooled_r), "c_in {c_in}");
        }
    }

    #[test]
    fn numbers_do_not_depend_on_the_thread_count() {
        let d = ConvDims::new(9, 1, 6, 8, 8);
        let x = data(d.batch * 64, 5);
        let w = data(54, 6);
        let b = data(6, 7);
        let dp = data(d.batch * 6 * 16, 8);
        let run = |threads: usize| {
            crate::runtime::with_threads(threads, || {
                let (pooled, argmax) = conv_forward_pooled(&x, &w, &b, d, true);
                let (mut dw, mut db) = (vec![0.0; 54], vec![0.0; 6]);
                conv_backward_pooled(&x, &w, &dp, &argmax, u32::MAX, d, &mut dw, &mut db, false);
                (pooled, argmax, dw, db)
            })
        };
        assert_eq!(run(1), run(3));
    }
}
