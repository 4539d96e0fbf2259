//! The 3×3 'same' convolution computed directly, with its ReLU and 2×2 max pooling fused, for
//! layers with few input channels: the CNN's first layer, whose one input channel leaves
//! im2col a product with an inner dimension of 9.
//!
//! Why: such a product runs far below the GEMM's peak, and around it im2col writes a 9-times
//! copy of the images, the convolution a full-size output (128 × 32 × 28 × 28 floats, 13 MB a
//! batch) and the pooling reads it back. Here each output row is nine shifted multiply-adds
//! over a zero-padded input row, which the compiler vectorises along the row, and two rows at
//! a time are pooled as they are made: only the pooled values and their winners are written.
//!
//! The backward pass needs only the winners: each pooled gradient goes to the one position
//! that won its window, so the weight gradient is one 3×3 patch per window, not per pixel.
//! It sums over a fixed number of image groups in order, so the numbers do not depend on the
//! thread count. Results differ from im2col's by rounding only (the sums run in another
//! order); the tests compare the two.

use rayon::prelude::*;

use super::kernels::{self, pool_windows, ConvDims};
use super::simd::wide;

/// Output pixels computed together: eight f32 fill an AVX2 register (two SSE ones), and the
/// sums stay in registers across all nine taps.
const LANES: usize = 8;

/// Width of a padded plane: a zero column on the left, the image, zeros up to a whole number
/// of lane blocks, and a zero column on the right, so every block reads inside the plane.
fn padded_width(d: &ConvDims) -> usize {
    d.w.next_multiple_of(LANES) + 2
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

/// Output row `y` of channel `o` (bias added, ReLU when asked) into `row` (whole lane blocks:
/// `w` rounded up to [`LANES`]; the pixels past `w` are not meaningful), from a padded image.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn conv_row(
    padded: &[f32],
    w: &[f32],
    bias: f32,
    o: usize,
    y: usize,
    d: &ConvDims,
    relu: bool,
    row: &mut [f32],
) {
    let (pw, ph) = (padded_width(d), d.h + 2);
    for (x0, out) in row.chunks_exact_mut(LANES).enumerate() {
        let x0 = x0 * LANES;
        let mut acc = [0.0f32; LANES];
        for c in 0..d.c_in {
            let plane = &padded[c * ph * pw..][..ph * pw];
            let taps = &w[(o * d.c_in + c) * 9..][..9];
            for ky in 0..3 {
                for kx in 0..3 {
                    let t = taps[ky * 3 + kx];
                    let src: &[f32; LANES] = plane[(y + ky) * pw + x0 + kx..][..LANES]
                        .try_into()
                        .expect("a lane block");
                    for (a, s) in acc.iter_mut().zip(src) {
                        *a += t * s;
                    }
                }
            }
        }
        for (r, a) in out.iter_mut().zip(acc) {
            let v = a + bias;
            *r = if relu { v.max(0.0) } else { v };
        }
    }
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
    // Each window's left pixel in its pair of rows.
    let corner: Vec<u32> = (0..pw as u32).map(|px| 2 * px).collect();
    let mut pooled = vec![0.0f32; d.batch * per_img];
    let mut argmax = vec![0u32; d.batch * per_img];
    pooled
        .par_chunks_mut(per_img)
        .zip(argmax.par_chunks_mut(per_img))
        .enumerate()
        .for_each_init(
            || {
                (
                    vec![0.0f32; d.c_in * (d.h + 2) * padded_width(&d)],
                    vec![0.0f32; d.w.next_multiple_of(LANES)],
                    vec![0.0f32; d.w.next_multiple_of(LANES)],
                    vec![0.0f32; 4 * pw],
                )
            },
            |(padded, top, bottom, quads), (img, (pooled_i, arg_i))| {
                wide(
                    #[inline(always)]
                    || {
                        pad_image(x, img, &d, padded);
                        for (o, &bo) in bias.iter().enumerate() {
                            let plane = (img * d.c_out + o) * hw;
                            for py in 0..ph {
                                conv_row(padded, weight, bo, o, 2 * py, &d, relu, top);
                                conv_row(padded, weight, bo, o, 2 * py + 1, &d, relu, bottom);
                                let at = (o * ph + py) * pw;
                                // The windows' four pixels apart, each a contiguous row.
                                for px in 0..pw {
                                    quads[px] = top[2 * px];
                                    quads[pw + px] = top[2 * px + 1];
                                    quads[2 * pw + px] = bottom[2 * px];
                                    quads[3 * pw + px] = bottom[2 * px + 1];
                                }
                                let window = std::array::from_fn(|k| &quads[k * pw..][..pw]);
                                let row_plane = (plane + 2 * py * d.w) as u32;
                                pool_windows(
                                    window,
                                    |v| v,
                                    (row_plane, &corner, d.w as u32),
                                    &mut pooled_i[at..][..pw],
                                    &mut arg_i[at..][..pw],
                                );
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
    let (ph, pw) = (d.h + 2, padded_width(&d));
    let mut dx = vec![0.0f32; if want_dx { x.len() } else { 0 }];
    // Each group owns its images' part of dx.
    let (bounds, dx_parts) = kernels::image_groups(d.batch, d.c_in * hw, &mut dx);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = bounds
        .par_iter()
        .zip(dx_parts)
        .map(|(&(first, last), dx_g)| {
            let mut dwp = vec![0.0f32; dw.len()];
            let mut dbp = vec![0.0f32; d.c_out];
            let mut padded = vec![0.0f32; d.c_in * ph * pw];
            let mut dpad = vec![0.0f32; if want_dx { d.c_in * ph * pw } else { 0 }];
            for img in first..last {
                pad_image(x, img, &d, &mut padded);
                dpad.fill(0.0);
                for (o, db_o) in dbp.iter_mut().enumerate() {
                    let plane = (img * d.c_out + o) * hw;
                    let at = (img * d.c_out + o) * pooled_hw;
                    // Windows row by row: each winner's offset from its window's corner
                    // gives its place, with no division per window.
                    let half_w = d.w / 2;
                    for (py, px) in (0..d.h / 2).flat_map(|py| (0..half_w).map(move |px| (py, px)))
                    {
                        let t = py * half_w + px;
                        let (g, win) = (dp[at + t], argmax[at + t]);
                        if win == dead {
                            continue;
                        }
                        let corner = 2 * py * d.w + 2 * px;
                        let rel = win as usize - plane - corner;
                        let below = usize::from(rel >= d.w);
                        let (y, xx) = (2 * py + below, 2 * px + rel - below * d.w);
                        *db_o += g;
                        for c in 0..d.c_in {
                            let base = c * ph * pw;
                            let wk = (o * d.c_in + c) * 9;
                            for ky in 0..3 {
                                let src = base + (y + ky) * pw + xx;
                                for kx in 0..3 {
                                    dwp[wk + ky * 3 + kx] += g * padded[src + kx];
                                    if want_dx {
                                        dpad[src + kx] += g * weight[wk + ky * 3 + kx];
                                    }
                                }
                            }
                        }
                    }
                }
                if want_dx {
                    for c in 0..d.c_in {
                        let dst = &mut dx_g[((img - first) * d.c_in + c) * hw..][..hw];
                        for y in 0..d.h {
                            let src = &dpad[c * ph * pw + (y + 1) * pw + 1..][..d.w];
                            dst[y * d.w..][..d.w].copy_from_slice(src);
                        }
                    }
                }
            }
            (dwp, dbp)
        })
        .collect();
    for (dwp, dbp) in partials {
        dw.iter_mut().zip(dwp).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(dbp).for_each(|(a, b)| *a += b);
    }
    want_dx.then_some(dx)
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
