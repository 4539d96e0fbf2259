//! Pixels shared by the framer ([`frame`](super::frame)) and the ink finder
//! ([`paper`](super::paper)): resampling and the ink threshold. Both import them from here,
//! so that neither module imports the other for them; and how far apart two images are.
//!
//! Resampling is separable, per axis: when shrinking, area averaging (each output pixel
//! is the coverage-weighted mean of the input pixels it spans; anti-aliased, like PIL's
//! BOX or OpenCV's INTER_AREA), so e.g. optdigits' 32×32 → 28×28 loses no strokes to
//! aliasing; when enlarging or keeping a size, bilinear with pixel centres at
//! `i + 0.5` and edges clamped. Both are convex combinations, so values stay in [0, 1].

/// The mean absolute difference of two images of the same size, pixel by pixel: how far apart
/// two renderings or framings of one digit are.
pub fn mean_abs_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "images of different sizes");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

/// Pixels above this count as ink for the bounding box. Not 0: the smooth LIBSVM USPS
/// rendering has faint halos (values of 1e-6 to 1e-2 around the strokes) that would
/// otherwise make every box the full image.
pub const INK_THRESHOLD: f32 = 0.05;

/// Per output index, the (input index, weight) pairs that make it.
fn axis_weights(n_in: usize, n_out: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|o| {
            if scale > 1.0 {
                let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
                let first = lo.floor() as usize;
                let last = (hi.ceil() as usize).min(n_in);
                (first..last)
                    .filter_map(|i| {
                        let overlap = hi.min(i as f64 + 1.0) - lo.max(i as f64);
                        (overlap > 1e-12).then_some((i, (overlap / scale) as f32))
                    })
                    .collect()
            } else {
                let x = ((o as f64 + 0.5) * scale - 0.5).clamp(0.0, (n_in - 1) as f64);
                let i0 = x.floor() as usize;
                let i1 = (i0 + 1).min(n_in - 1);
                let t = (x - i0 as f64) as f32;
                if t == 0.0 {
                    vec![(i0, 1.0)]
                } else {
                    vec![(i0, 1.0 - t), (i1, t)]
                }
            }
        })
        .collect()
}

/// Resamples a `w`×`h` image to `new_w`×`new_h` (see the module documentation).
/// Panics if `img.len() != w * h`; returns an empty image if any size is 0.
pub fn resize_image(img: &[f32], w: usize, h: usize, new_w: usize, new_h: usize) -> Vec<f32> {
    assert_eq!(img.len(), w * h, "image buffer does not match its size");
    if w == 0 || h == 0 || new_w == 0 || new_h == 0 {
        return vec![0.0; new_w * new_h];
    }
    let wx = axis_weights(w, new_w);
    let wy = axis_weights(h, new_h);
    let mut rows = vec![0.0f32; h * new_w];
    for y in 0..h {
        let src = &img[y * w..(y + 1) * w];
        for (x, ws) in wx.iter().enumerate() {
            rows[y * new_w + x] = ws.iter().map(|&(i, k)| src[i] * k).sum();
        }
    }
    let mut out = vec![0.0f32; new_w * new_h];
    for (y, ws) in wy.iter().enumerate() {
        for x in 0..new_w {
            let v: f32 = ws.iter().map(|&(i, k)| rows[i * new_w + x] * k).sum();
            out[y * new_w + x] = v.clamp(0.0, 1.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_preserves_constants_and_area() {
        let c = resize_image(&[0.7; 32 * 32], 32, 32, 28, 28);
        assert!(c.iter().all(|v| (v - 0.7).abs() < 1e-5));
        let up = resize_image(&[0.4; 15 * 16], 15, 16, 28, 28);
        assert!(up.iter().all(|v| (v - 0.4).abs() < 1e-5));
        // Area averaging keeps total ink (scaled by the area ratio) when shrinking.
        let img: Vec<f32> = (0..32 * 32)
            .map(|i| ((i * 7919) % 101) as f32 / 100.0)
            .collect();
        let small = resize_image(&img, 32, 32, 28, 28);
        let ratio = (28.0 * 28.0) / (32.0 * 32.0);
        let (a, b) = (img.iter().sum::<f32>() * ratio, small.iter().sum::<f32>());
        assert!((a - b).abs() < 1e-2 * a, "{a} vs {b}");
        // A one-pixel line survives a 32 -> 28 shrink instead of aliasing away.
        let mut line = vec![0.0f32; 32 * 32];
        (0..32).for_each(|y| line[y * 32 + 13] = 1.0);
        let s = resize_image(&line, 32, 32, 28, 28);
        assert!((0..28).all(|y| (0..28).map(|x| s[y * 28 + x]).sum::<f32>() > 0.8));
    }
}
