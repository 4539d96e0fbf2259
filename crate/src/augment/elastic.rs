//! Elastic distortion (Simard et al. 2003): smoothed random displacement fields.

use rand::Rng;

use super::geometry::{warp, Affine};

/// Elastic distortion alone (Simard et al. 2003): displacement fields uniform in [−1, 1],
/// smoothed by a Gaussian of standard deviation `sigma` and scaled by `alpha`, all in pixels.
pub fn elastic(img: &[f32], side: usize, alpha: f32, sigma: f32, rng: &mut impl Rng) -> Vec<f32> {
    assert_eq!(img.len(), side * side, "an image of side {side}");
    if alpha == 0.0 {
        return img.to_vec();
    }
    let field = displacement_field(side, alpha, sigma, rng);
    warp(img, side, &Affine::IDENTITY, Some(&field))
}

/// The x and y displacements of every pixel.
pub(super) fn displacement_field(
    side: usize,
    alpha: f32,
    sigma: f32,
    rng: &mut impl Rng,
) -> [Vec<f32>; 2] {
    let kernel = gaussian_kernel(sigma);
    let mut draw = || {
        let mut f: Vec<f32> = (0..side * side)
            .map(|_| rng.gen::<f32>() * 2.0 - 1.0)
            .collect();
        smooth(&mut f, side, &kernel);
        f.iter_mut().for_each(|v| *v *= alpha);
        f
    };
    let dx = draw();
    [dx, draw()]
}

/// A normalised Gaussian truncated at 4σ (as scipy's `gaussian_filter`, which the usual
/// implementations of Simard's method call); σ ≤ 0 gives no smoothing.
pub(super) fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let r = (4.0 * sigma).ceil() as usize;
    let mut k: Vec<f32> = (0..=2 * r)
        .map(|i| {
            let d = i as f32 - r as f32;
            (-0.5 * d * d / (sigma * sigma)).exp()
        })
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|w| *w /= sum);
    k
}

/// Separable convolution with zero padding, as whole-row multiply-adds the compiler vectorises;
/// taps that would only read padding are skipped.
pub(super) fn smooth(field: &mut [f32], side: usize, kernel: &[f32]) {
    let r = kernel.len() / 2;
    let src = field.to_vec();
    field.fill(0.0);
    for (out, row) in field.chunks_mut(side).zip(src.chunks(side)) {
        for (t, &w) in kernel.iter().enumerate() {
            // Output x reads x + d, which must lie in the row.
            let d = t as isize - r as isize;
            let lo = (-d).max(0) as usize;
            let hi = (side as isize - d).clamp(0, side as isize) as usize;
            if lo < hi {
                let from = (lo as isize + d) as usize;
                for (o, &p) in out[lo..hi].iter_mut().zip(&row[from..]) {
                    *o += w * p;
                }
            }
        }
    }
    let src = field.to_vec();
    field.fill(0.0);
    for (y, out) in field.chunks_mut(side).enumerate() {
        for j in y.saturating_sub(r)..(y + r + 1).min(side) {
            let w = kernel[j + r - y];
            for (o, &p) in out.iter_mut().zip(&src[j * side..(j + 1) * side]) {
                *o += w * p;
            }
        }
    }
}
