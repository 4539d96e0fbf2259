//! Stroke thickness: grey-scale dilation and erosion over a disk of fractional radius.

/// Grey-scale dilation (each pixel becomes the maximum over a disk of `radius` pixels around
/// it): thickens bright strokes. Never lowers a pixel.
///
/// A fractional radius interpolates between the disks of the integer radii either side, so
/// the effect grows smoothly from 0 (unchanged) instead of jumping at whole pixels.
pub fn dilate(img: &[f32], side: usize, radius: f32) -> Vec<f32> {
    morph(img, side, radius, f32::max)
}

/// Grey-scale erosion (the minimum over the disk): thins bright strokes. Never raises a pixel.
/// Pixels outside the image are left out of the minimum rather than counted as background.
pub fn erode(img: &[f32], side: usize, radius: f32) -> Vec<f32> {
    morph(img, side, radius, f32::min)
}

pub(super) fn morph(img: &[f32], side: usize, radius: f32, pick: fn(f32, f32) -> f32) -> Vec<f32> {
    assert_eq!(img.len(), side * side, "an image of side {side}");
    if radius.is_nan() || radius <= 0.0 {
        return img.to_vec();
    }
    let k = radius.floor() as usize;
    let frac = radius - k as f32;
    let inner = flat_morph(img, side, k, pick);
    if frac == 0.0 {
        return inner;
    }
    let outer = flat_morph(img, side, k + 1, pick);
    // `a + f (b − a)` stays on a's side of the original when b = a, so the never-lowers and
    // never-raises guarantees survive rounding.
    inner
        .iter()
        .zip(&outer)
        .map(|(&a, &b)| a + frac * (b - a))
        .collect()
}

/// Morphology with the flat disk of integer radius `k` (radius 1 is the 4-neighbour cross).
pub(super) fn flat_morph(
    img: &[f32],
    side: usize,
    k: usize,
    pick: fn(f32, f32) -> f32,
) -> Vec<f32> {
    if k == 0 {
        return img.to_vec();
    }
    let k = k as isize;
    let disk: Vec<(isize, isize)> = (-k..=k)
        .flat_map(|dy| (-k..=k).map(move |dx| (dx, dy)))
        .filter(|(dx, dy)| dx * dx + dy * dy <= k * k)
        .collect();
    let n = side as isize;
    let mut out = img.to_vec();
    for y in 0..n {
        for x in 0..n {
            let o = &mut out[(y * n + x) as usize];
            for &(dx, dy) in &disk {
                let (xx, yy) = (x + dx, y + dy);
                if (0..n).contains(&xx) && (0..n).contains(&yy) {
                    *o = pick(*o, img[(yy * n + xx) as usize]);
                }
            }
        }
    }
    out
}
