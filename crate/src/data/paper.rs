//! Finding the ink in a digit as people have it: written on paper, scanned or photographed.
//!
//! The benchmark sets were cleaned before publication (bright ink on a background of exactly
//! 0), so a fixed threshold finds their ink. A scan or a photo has paper that is light grey,
//! unevenly lit and noisy, specks of dirt, and the digit small somewhere in a larger image:
//! there every pixel passes a fixed threshold and the bounding box is the whole image.
//! [`find_ink`] turns such an image into a clean one, in these steps:
//!
//! 1. **Analysis size.** An image with a side longer than [`ANALYSIS_SIDE`] is first shrunk
//!    (area averaging) so that side fits: the digit ends 20 px high anyway, and the steps
//!    below then cost the same for a 40-megapixel photo as for a small scan.
//! 2. **Paper.** The paper's grey level is fitted as a smooth surface, a quadratic in x and
//!    y (a constant, a lighting gradient and a vignette are all quadratics): first as the
//!    median of the image's outer ring, then three times by least squares over every pixel
//!    within 3 σ of the last fit, σ being the paper's noise (1.4826 × the median absolute
//!    residual of the paper pixels). Ink never enters the fit, whatever its polarity, and a
//!    digit touching the border cannot drag the first, median, level.
//! 3. **Polarity**, per image, when it is not known: the ink is on the side of the paper
//!    with the larger total residual beyond 3 σ (noise is symmetric, ink one-sided).
//! 4. **Ink level.** Residuals on the ink's side, `u`, are split by Otsu's threshold; the
//!    ink's level `c` is the 99th percentile of `u` above it, and the noise floor `f` is
//!    3 σ. Each pixel becomes `(u − f) / (c − f)`, clamped to [0, 1]: paper 0, ink 1 as in
//!    MNIST. When the polarity is known, the image is a loader's data set, whose full ink is
//!    already 1: then `c` is 1 and only paper and noise are taken away. Without ink (`c − f`
//!    below [`MIN_CONTRAST`], or `c` under [`MIN_LEVEL_OVER_FLOOR`] times the floor) there
//!    is nothing to frame, and [`find_ink`] says so with `None`. (Lower percentiles, which
//!    saturate more of each stroke, did worse on the earlier paper renderings with quickly
//!    trained models, and find no ink in more faint images.)
//! 5. **Specks and clutter.** Connected groups (8-neighbour) of pixels above
//!    [`INK_THRESHOLD`] are weighed by their ink; the heaviest
//!    is the digit's main stroke. A group joins the digit when it lies inside the digit's
//!    box, or when it is near it (a gap of at most a fifth of the box's longer side, at
//!    least 2 px) and holds at least [`SPECK`] of the main stroke's ink; the box grows with
//!    each group until none is left to join. Groups left over are dropped when they are
//!    light (under a tenth of the digit's ink) or touch the image's border: dirt, a page
//!    edge, the next digit's stroke.
//!
//! On a benchmark image step 2 fits exactly 0 (its paper is exactly 0, so σ = 0), step 4
//! divides by 1 wherever a hundredth of the ink is at full level, and step 5 finds nothing
//! far from the digit in nearly every image: the image comes back as it went in. How many
//! benchmark images change, and by how much, is in `docs/data.md`.
//!
//! **Tuning.** The constants below may be chosen on the development family of paper
//! renderings (`mnist-paper-dev`, see [`mnist_paper`](super::mnist_paper)) and on the
//! benchmark sets, never on the held-out family (`mnist-paper`), which the study reports.
//! [`SPECK`] and the 99th percentile were chosen on an earlier renderer that shared the
//! framer's model of paper; [`MIN_LEVEL_OVER_FLOOR`] was re-checked on the development
//! family (`cargo run --release --example paper_dev`).
//!
//! Hand-written rather than taken from `imageproc`: the fit, Otsu's threshold and the
//! labelling are a few dozen lines each here, and `imageproc` 0.27 requires `nalgebra`,
//! `num`, a second `rand` and `rand_distr`, which more than doubled the cold build of the
//! image support on a 2-core machine (the notebooks compile this crate in evcxr).

use super::pixels::{resize_image, INK_THRESHOLD};

/// Longer side, in pixels, at which paper and ink are analysed (larger images are shrunk).
pub const ANALYSIS_SIDE: usize = 512;
/// Groups of ink lighter than this share of the main stroke's ink join the digit only when
/// they lie within its box: a speck beside a digit would otherwise widen its box, and the
/// digit would be framed smaller. (On the earlier paper renderings, 0.03–0.2 all did about
/// equally well; 0.1 and above start to drop detached pieces of Semeion's digits.)
pub const SPECK: f64 = 0.05;
/// Least ink contrast over the noise floor (in grey levels of [0, 1]) for an image to count
/// as holding a digit.
pub const MIN_CONTRAST: f32 = 0.08;
/// Least ratio of the ink's level to the noise floor for an image to count as holding a
/// digit. 1.5 rather than 2: on `mnist-paper-dev`, shadows that the quadratic paper does not
/// fit inflate the noise floor, and at 2 the framer found ink in 86.5% of the images against
/// 90.2% at 1.5 (1.2 gave 91.1%), with the framed digits no further from the originals.
pub const MIN_LEVEL_OVER_FLOOR: f32 = 1.5;

/// Which way the ink goes against the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// Ink brighter than paper, as in MNIST (and every loader's `Dataset`).
    Bright,
    /// Ink darker than paper, as on a scan.
    Dark,
}

/// An image with its ink found: paper 0, ink in (0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct InkImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
    /// The polarity the ink was found in.
    pub polarity: Polarity,
}

/// Shrinks an image so its longer side is at most [`ANALYSIS_SIDE`].
fn analysis_size(img: &[f32], w: usize, h: usize) -> (Vec<f32>, usize, usize) {
    let longer = w.max(h);
    if longer <= ANALYSIS_SIDE {
        return (img.to_vec(), w, h);
    }
    let scale = ANALYSIS_SIDE as f64 / longer as f64;
    let nw = ((w as f64 * scale).round() as usize).max(1);
    let nh = ((h as f64 * scale).round() as usize).max(1);
    (resize_image(img, w, h, nw, nh), nw, nh)
}

/// The quadratic basis at pixel (x, y), coordinates scaled to [-0.5, 0.5] so the normal
/// equations stay well conditioned at any size.
fn basis(x: usize, y: usize, w: usize, h: usize) -> [f64; 6] {
    let u = (x as f64 + 0.5) / w as f64 - 0.5;
    let v = (y as f64 + 0.5) / h as f64 - 0.5;
    [1.0, u, v, u * u, v * v, u * v]
}

/// Solves the 6×6 system by Gaussian elimination with partial pivoting; `None` when it is
/// (nearly) singular, as when the paper pixels all lie on one line.
fn solve6(mut a: [[f64; 6]; 6], mut b: [f64; 6]) -> Option<[f64; 6]> {
    let scale = (0..6).map(|i| a[i][i].abs()).fold(0.0, f64::max);
    if scale == 0.0 {
        return None;
    }
    for col in 0..6 {
        let pivot = (col..6).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-9 * scale {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..6 {
            let k = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *x -= k * p;
            }
            b[row] -= k * b[col];
        }
    }
    let mut x = [0.0; 6];
    for row in (0..6).rev() {
        let s: f64 = (row + 1..6).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mid = values.len() / 2;
    *values.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// The paper's level at every pixel and its noise σ (see the module documentation). With
/// the polarity known, the first level is the lower of the ring's median and the image's
/// 5th percentile for bright ink (the higher of the ring's median and the 95th percentile
/// for dark), and σ is taken from the residuals on the side away from the ink, which no ink
/// reaches: a digit may cover most of its ring (Semeion's touch every edge) or most of its
/// image (mfeat's thick strokes).
fn fit_paper(img: &[f32], w: usize, h: usize, known: Option<Polarity>) -> (Vec<f32>, f32) {
    let mut paper: Vec<bool> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            x == 0 || y == 0 || x + 1 == w || y + 1 == h
        })
        .collect();
    let mut bg = vec![0.0f32; w * h];
    let mut sigma = 0.0f32;
    for round in 0..4 {
        let count = paper.iter().filter(|&&p| p).count();
        // The first round is a flat paper at the ring's median, which ink touching the
        // border cannot drag (a least-squares fit can); so is any round with too few paper
        // pixels for six coefficients.
        let coef = if round > 0 && count >= 24 {
            let (mut a, mut b) = ([[0.0f64; 6]; 6], [0.0f64; 6]);
            for (i, _) in paper.iter().enumerate().filter(|(_, &p)| p) {
                let f = basis(i % w, i / w, w, h);
                for r in 0..6 {
                    for c in 0..6 {
                        a[r][c] += f[r] * f[c];
                    }
                    b[r] += f[r] * img[i] as f64;
                }
            }
            solve6(a, b)
        } else {
            None
        };
        match coef {
            Some(k) => {
                for (i, v) in bg.iter_mut().enumerate() {
                    let f = basis(i % w, i / w, w, h);
                    *v = (0..6).map(|j| k[j] * f[j]).sum::<f64>() as f32;
                }
            }
            None => {
                let mut levels: Vec<f32> =
                    (0..w * h).filter(|&i| paper[i]).map(|i| img[i]).collect();
                if levels.is_empty() {
                    levels = img.to_vec();
                }
                let mut level = median(&mut levels);
                if round == 0 && known.is_some() {
                    let mut all = img.to_vec();
                    all.sort_unstable_by(f32::total_cmp);
                    let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
                    level = match known {
                        Some(Polarity::Bright) => level.min(at(0.05)),
                        _ => level.max(at(0.95)),
                    };
                }
                bg.iter_mut().for_each(|v| *v = level);
            }
        }
        let away = |r: f32| match known {
            Some(Polarity::Bright) => r <= 0.0,
            Some(Polarity::Dark) => r >= 0.0,
            None => true,
        };
        let mut residuals: Vec<f32> = (0..w * h)
            .filter(|&i| known.is_some() || paper[i])
            .map(|i| img[i] - bg[i])
            .filter(|&r| away(r))
            .map(f32::abs)
            .collect();
        sigma = 1.4826 * median(&mut residuals);
        for (i, p) in paper.iter_mut().enumerate() {
            *p = (img[i] - bg[i]).abs() <= 3.0 * sigma;
        }
    }
    (bg, sigma)
}

/// Otsu's threshold over values in [0, `max`]: the level that best splits them into two
/// classes (largest between-class variance), on a 256-bin histogram.
pub fn otsu_threshold(values: &[f32], max: f32) -> f32 {
    const BINS: usize = 256;
    if max <= 0.0 || values.is_empty() {
        return 0.0;
    }
    let mut hist = [0u64; BINS];
    for &v in values {
        let b = ((v / max) * (BINS - 1) as f32)
            .round()
            .clamp(0.0, (BINS - 1) as f32) as usize;
        hist[b] += 1;
    }
    let total = values.len() as f64;
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &n)| i as f64 * n as f64)
        .sum();
    let (mut w0, mut sum0) = (0.0f64, 0.0f64);
    let (mut best, mut best_var) = (0usize, -1.0f64);
    for (t, &n) in hist.iter().enumerate().take(BINS - 1) {
        w0 += n as f64;
        sum0 += t as f64 * n as f64;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum_all - sum0) / w1);
        let var = w0 * w1 * (m0 - m1) * (m0 - m1);
        if var > best_var {
            best_var = var;
            best = t;
        }
    }
    (best as f32 + 0.5) / (BINS - 1) as f32 * max
}

/// Connected groups (8-neighbour) of `mask`: a label per pixel (`usize::MAX` off the mask)
/// and the number of groups.
pub fn label_components(mask: &[bool], w: usize, h: usize) -> (Vec<usize>, usize) {
    let mut label = vec![usize::MAX; w * h];
    let mut n = 0;
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || label[start] != usize::MAX {
            continue;
        }
        label[start] = n;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] && label[j] == usize::MAX {
                        label[j] = n;
                        stack.push(j);
                    }
                }
            }
        }
        n += 1;
    }
    (label, n)
}

#[derive(Clone, Copy)]
struct Group {
    mass: f64,
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
    border: bool,
}

/// Gap in pixels between two boxes (exclusive ends); 0 when they touch or overlap.
fn gap(a: (usize, usize, usize, usize), b: (usize, usize, usize, usize)) -> usize {
    let dx = b.0.saturating_sub(a.2).max(a.0.saturating_sub(b.2));
    let dy = b.1.saturating_sub(a.3).max(a.1.saturating_sub(b.3));
    dx.max(dy)
}

/// Zeroes the groups of ink that are not the digit (see the module documentation).
fn drop_specks(img: &mut [f32], w: usize, h: usize) {
    let mask: Vec<bool> = img.iter().map(|&v| v > INK_THRESHOLD).collect();
    let (label, n) = label_components(&mask, w, h);
    if n < 2 {
        return;
    }
    let mut groups = vec![
        Group {
            mass: 0.0,
            x0: usize::MAX,
            y0: usize::MAX,
            x1: 0,
            y1: 0,
            border: false,
        };
        n
    ];
    for (i, &l) in label.iter().enumerate().filter(|(_, &l)| l != usize::MAX) {
        let (x, y) = (i % w, i / w);
        let g = &mut groups[l];
        g.mass += img[i] as f64;
        g.x0 = g.x0.min(x);
        g.y0 = g.y0.min(y);
        g.x1 = g.x1.max(x + 1);
        g.y1 = g.y1.max(y + 1);
        g.border |= x == 0 || y == 0 || x + 1 == w || y + 1 == h;
    }
    let main = (0..n)
        .max_by(|&a, &b| groups[a].mass.total_cmp(&groups[b].mass))
        .expect("n >= 2");
    let mut keep = vec![false; n];
    keep[main] = true;
    let g = groups[main];
    let (mut bx, mut mass) = ((g.x0, g.y0, g.x1, g.y1), g.mass);
    // Grow the digit by every group near it, until none is left near.
    loop {
        let near = (bx.2 - bx.0).max(bx.3 - bx.1) / 5;
        let near = near.max(2);
        let mut grew = false;
        for (k, g) in groups.iter().enumerate() {
            let inside = g.x0 >= bx.0 && g.y0 >= bx.1 && g.x1 <= bx.2 && g.y1 <= bx.3;
            if !keep[k]
                && (inside
                    || gap(bx, (g.x0, g.y0, g.x1, g.y1)) <= near
                        && g.mass >= SPECK * groups[main].mass)
            {
                keep[k] = true;
                bx = (
                    bx.0.min(g.x0),
                    bx.1.min(g.y0),
                    bx.2.max(g.x1),
                    bx.3.max(g.y1),
                );
                mass += g.mass;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    for (k, g) in groups.iter().enumerate() {
        if !keep[k] && !g.border && g.mass >= 0.1 * mass {
            keep[k] = true;
        }
    }
    for (v, &l) in img.iter_mut().zip(&label) {
        if l != usize::MAX && !keep[l] {
            *v = 0.0;
        }
    }
}

/// Which way the ink of a `w`×`h` grey image goes: step 3 of the module documentation.
/// Panics if `img.len() != w * h`.
pub fn polarity(img: &[f32], w: usize, h: usize) -> Polarity {
    assert_eq!(img.len(), w * h, "image buffer does not match its size");
    if w == 0 || h == 0 {
        return Polarity::Bright;
    }
    let (img, w, h) = analysis_size(img, w, h);
    let (bg, sigma) = fit_paper(&img, w, h, None);
    decide_polarity(&img, &bg, 3.0 * sigma)
}

/// Ink is on the side of the paper with the larger total residual beyond the noise floor.
fn decide_polarity(img: &[f32], bg: &[f32], floor: f32) -> Polarity {
    let (mut above, mut below) = (0.0f64, 0.0f64);
    for (v, b) in img.iter().zip(bg) {
        let r = v - b;
        above += (r - floor).max(0.0) as f64;
        below += (-r - floor).max(0.0) as f64;
    }
    if below > above {
        Polarity::Dark
    } else {
        Polarity::Bright
    }
}

/// The ink of a `w`×`h` grey image (any scale within [0, 1]): paper 0, ink bright. `known`
/// gives the polarity when it is known (a loader's `Dataset` is always [`Polarity::Bright`]);
/// `None` decides it from the image. Returns `None` when no ink stands out of the paper.
/// Panics if `img.len() != w * h`.
pub fn find_ink(img: &[f32], w: usize, h: usize, known: Option<Polarity>) -> Option<InkImage> {
    let s = ink_stages(img, w, h, known)?;
    Some(InkImage {
        width: s.width,
        height: s.height,
        pixels: s.clean,
        polarity: s.polarity,
    })
}

/// What each step of [`find_ink`] makes of one image, all at the analysis size, for showing
/// the steps (the notebooks draw them).
#[derive(Debug, Clone, PartialEq)]
pub struct InkStages {
    pub width: usize,
    pub height: usize,
    pub polarity: Polarity,
    /// The image at the analysis size with its ink made bright (`1 − v` for dark ink).
    pub bright: Vec<f32>,
    /// The paper taken away: how far each pixel stands out of the fitted paper on the ink's
    /// side (0 where it does not), in grey levels.
    pub no_paper: Vec<f32>,
    /// Noise floor and ink level applied: `(u − f) / (c − f)` clamped to [0, 1].
    pub ink: Vec<f32>,
    /// Specks and clutter dropped: what [`find_ink`] returns.
    pub clean: Vec<f32>,
}

/// [`find_ink`], keeping what each step makes (see [`InkStages`]); `None` when no ink
/// stands out of the paper. Panics if `img.len() != w * h`.
pub fn ink_stages(img: &[f32], w: usize, h: usize, known: Option<Polarity>) -> Option<InkStages> {
    assert_eq!(img.len(), w * h, "image buffer does not match its size");
    if w == 0 || h == 0 {
        return None;
    }
    let (img, w, h) = analysis_size(img, w, h);
    let (bg, sigma) = fit_paper(&img, w, h, known);
    let floor = 3.0 * sigma;
    let polarity = known.unwrap_or_else(|| decide_polarity(&img, &bg, floor));
    let sign = if polarity == Polarity::Bright {
        1.0
    } else {
        -1.0
    };
    let ink: Vec<f32> = img
        .iter()
        .zip(&bg)
        .map(|(v, b)| (sign * (v - b)).max(0.0))
        .collect();
    let max = ink.iter().copied().fold(0.0f32, f32::max);
    let t = otsu_threshold(&ink, max);
    let mut strokes: Vec<f32> = ink.iter().copied().filter(|&u| u > t).collect();
    if strokes.is_empty() {
        return None;
    }
    let k = ((strokes.len() - 1) as f64 * 0.99).round() as usize;
    let level = *strokes.select_nth_unstable_by(k, f32::total_cmp).1;
    // A loader's data set already has full ink at 1: its scale is kept, only its paper and
    // noise are taken away. (USPS's LIBSVM rendering peaks near 0.93; stretching it would
    // change the benchmark images for nothing.)
    let full = if known.is_some() { 1.0 } else { level };
    if level - floor < MIN_CONTRAST || level < MIN_LEVEL_OVER_FLOOR * floor {
        return None;
    }
    let scaled: Vec<f32> = ink
        .iter()
        .map(|&u| ((u - floor) / (full - floor)).clamp(0.0, 1.0))
        .collect();
    let mut clean = scaled.clone();
    drop_specks(&mut clean, w, h);
    if !clean.iter().any(|&v| v > INK_THRESHOLD) {
        return None;
    }
    let bright = match polarity {
        Polarity::Bright => img,
        Polarity::Dark => img.iter().map(|v| 1.0 - v).collect(),
    };
    Some(InkStages {
        width: w,
        height: h,
        polarity,
        bright,
        no_paper: ink,
        ink: scaled,
        clean,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clean 20×24 digit-like pattern, bright ink on 0: a ring with a tail.
    fn clean_digit() -> (Vec<f32>, usize, usize) {
        let (w, h) = (20, 24);
        let mut img = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - 10.0, y as f32 - 9.0);
                let r = (dx * dx + dy * dy).sqrt();
                let ring = (1.5 - (r - 6.0).abs()).clamp(0.0, 1.0);
                let tail = if (13..22).contains(&y) && (14..16).contains(&x) {
                    1.0
                } else {
                    0.0
                };
                img[y * w + x] = f32::max(ring, tail);
            }
        }
        (img, w, h)
    }

    #[test]
    fn clean_images_come_back_unchanged() {
        let (img, w, h) = clean_digit();
        let out = find_ink(&img, w, h, Some(Polarity::Bright)).unwrap();
        assert_eq!(out.pixels, img);
        let out = find_ink(&img, w, h, None).unwrap();
        assert_eq!((out.polarity, out.pixels), (Polarity::Bright, img));
    }

    #[test]
    fn dark_ink_on_lit_paper_becomes_the_clean_digit() {
        let (img, w, h) = clean_digit();
        // Grey paper lit from one side, a vignette, ink at 60% contrast, a little noise.
        let paper: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 / w as f32, (i / w) as f32 / h as f32);
                let noise = (((i * 7919) % 13) as f32 / 12.0 - 0.5) * 0.02;
                0.8 + 0.15 * x - 0.2 * ((x - 0.5).powi(2) + (y - 0.5).powi(2)) + noise
                    - 0.6 * img[i]
            })
            .collect();
        let out = find_ink(&paper, w, h, None).unwrap();
        assert_eq!(out.polarity, Polarity::Dark);
        let mad = out
            .pixels
            .iter()
            .zip(&img)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / img.len() as f32;
        assert!(mad < 0.05, "mean |difference| {mad}");
    }

    #[test]
    fn stages_show_each_step_and_end_in_find_ink() {
        let (digit, w, h) = clean_digit();
        // Dark ink on a lit grey sheet, with a speck far from the digit.
        let mut photo: Vec<f32> = (0..w * h)
            .map(|i| 0.7 + 0.1 * (i % w) as f32 / w as f32 - 0.5 * digit[i])
            .collect();
        photo[w * (h - 2) + 1] = 0.1;
        let s = ink_stages(&photo, w, h, None).unwrap();
        assert_eq!((s.width, s.height, s.polarity), (w, h, Polarity::Dark));
        assert!(s.bright.iter().zip(&photo).all(|(b, p)| *b == 1.0 - p));
        // Off the ink, the paper is gone: what is left of it is the speck alone.
        let paper_left = (0..w * h)
            .filter(|&i| digit[i] == 0.0 && s.no_paper[i] > 0.05)
            .count();
        assert_eq!(paper_left, 1);
        assert!(
            s.ink[w * (h - 2) + 1] > 0.5,
            "the speck is ink before cleaning"
        );
        assert_eq!(s.clean[w * (h - 2) + 1], 0.0, "and dropped after");
        assert_eq!(s.clean, find_ink(&photo, w, h, None).unwrap().pixels);
    }

    #[test]
    fn blank_paper_has_no_ink() {
        let noisy: Vec<f32> = (0..40 * 30)
            .map(|i| 0.7 + (((i * 7919) % 17) as f32 / 16.0 - 0.5) * 0.04)
            .collect();
        assert_eq!(find_ink(&noisy, 40, 30, None), None);
        assert_eq!(find_ink(&[0.9; 64], 8, 8, None), None);
        assert_eq!(find_ink(&[0.0; 64], 8, 8, Some(Polarity::Bright)), None);
    }

    #[test]
    fn specks_far_away_are_dropped_and_near_strokes_kept() {
        let (w, h) = (40, 40);
        let mut img = vec![0.0f32; w * h];
        // The digit: a bar, and a second bar 2 px below it (a broken stroke).
        for x in 10..25 {
            img[10 * w + x] = 1.0;
            img[11 * w + x] = 1.0;
            img[14 * w + x] = 1.0;
        }
        for y in 11..28 {
            img[y * w + 24] = 1.0;
        }
        img[35 * w + 3] = 1.0; // a speck far away
        for y in 0..40 {
            img[y * w + 39] = 0.8; // a page edge along the border
        }
        let out = find_ink(&img, w, h, Some(Polarity::Bright)).unwrap();
        assert_eq!(out.pixels[35 * w + 3], 0.0);
        assert!((0..40).all(|y| out.pixels[y * w + 39] == 0.0));
        assert_eq!(out.pixels[14 * w + 12], 1.0, "near stroke kept");
        assert_eq!(out.pixels[20 * w + 24], 1.0);
    }

    #[test]
    fn otsu_splits_two_levels_and_labels_count_groups() {
        let v: Vec<f32> = (0..100).map(|i| if i < 70 { 0.1 } else { 0.9 }).collect();
        let t = otsu_threshold(&v, 0.9);
        assert!((0.1..0.9).contains(&t), "{t}");
        let mask = [true, false, true, false, false, false, true, true, false];
        let (labels, n) = label_components(&mask, 3, 3);
        // (0,0) and (2,0) are apart; (0,2) and (1,2) join; (2,0) is diagonal to nothing.
        assert_eq!(n, 3, "{labels:?}");
    }

    #[test]
    fn large_images_are_analysed_small() {
        let (w, h) = (2000, 1000);
        let mut img = vec![0.9f32; w * h];
        for y in 300..700 {
            for x in 900..1000 {
                img[y * w + x] = 0.1;
            }
        }
        let out = find_ink(&img, w, h, None).unwrap();
        assert_eq!((out.width, out.height), (ANALYSIS_SIDE, ANALYSIS_SIDE / 2));
        assert_eq!(out.polarity, Polarity::Dark);
    }
}
