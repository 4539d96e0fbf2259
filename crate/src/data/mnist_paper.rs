//! `mnist-paper`: MNIST's test digits as a user's scans or photos of them would look, made
//! by this crate, so that framing real-world images can be tested on labelled digits.
//!
//! The renderer has its own model of paper, light, ink and camera and shares nothing with
//! the framer ([`frame`](super::frame), [`paper`](super::paper)) that grades it: no
//! constant, no resampling, no ink threshold, and no light or noise model of the same form
//! as the framer's (the framer fits paper as a quadratic surface and estimates noise as if
//! symmetric and light-tailed; here light is rational and piecewise, noise Laplacian and
//! signal-dependent). Each image is drawn as follows.
//!
//! - **Digit.** The 28×28 digit is placed by its own extent (pixels above 0), scaled so its
//!   longer side is a share of the canvas's shorter side, rotated by a small angle, and
//!   sampled with bilinear interpolation written here, 2×2 samples per pixel, anywhere
//!   wholly on a canvas whose width and height are drawn apart.
//! - **Pen.** The stroke is made thinner (a soft erosion) or thicker (one or two soft
//!   dilations), its density saturates like felt-tip ink, and pencil has grain.
//! - **Ink and paper** have colours (reflectance per red, green and blue): black, blue
//!   ballpoint and pencil grey ink (and red in the held-out family) on white, cream or grey
//!   paper (yellow, pale blue, pink or brown kraft in the held-out family), with a faint
//!   low-frequency paper texture and dark specks of dust. The sheet is rendered in colour
//!   and turned into grey as a camera's grey mode would (0.299 R + 0.587 G + 0.114 B), so
//!   the ink's contrast depends on both colours, which a grey tint could not express:
//!   blue ink on pale blue paper is faint in grey, red ink on pink fainter still.
//! - **Light.** An exposure, a lamp's fall-off `1 / (1 + a d²)` from a point possibly off
//!   the sheet, a lens's vignette `1 / (1 + b r²)²`, and a soft-edged shadow: the straight
//!   edge of a book or wall across the sheet (development family), or the round blob of a
//!   hand or phone (held-out family).
//! - **Camera.** Defocus (repeated 3-tap blurs) and motion blur (a short line average in
//!   one of four directions), then sensor noise whose standard deviation grows with the
//!   signal (shot noise, `√(read² + gain·I)`) with Laplacian tails, 8-bit quantisation, and
//!   JPEG compression (encoded and decoded by the `image` crate's codec, as grey).
//!
//! **Two families.** The development family ([`Family::Dev`], spec `mnist-paper-dev`, seed
//! [`DEV_SEED`]) is the one the framer may be tuned on. The held-out family
//! ([`Family::HeldOut`], spec `mnist-paper`, seed [`HELD_OUT_SEED`]) is the study's test
//! domain and is never used to choose anything: besides its seed it has other paper
//! colours, a red ink, another shadow shape, larger canvases, smaller digits, larger
//! angles, stronger motion blur, lower JPEG quality and more specks ([`Looks`] lists both).
//!
//! **Determinism.** Every choice is drawn from a generator seeded by the seed, the family
//! and the image's index alone, so the images are the same bytes whatever the thread count.
//! No library maths function whose last bit could differ between machines is used: sine and
//! cosine of the (small) angle are Taylor polynomials, the logarithm behind the Laplacian
//! noise is a series on the float's mantissa ([`ln`]), the light is made of additions,
//! multiplications and divisions, and the only root is `sqrt`, which IEEE 754 rounds
//! exactly. The JPEG round trip is exact arithmetic too: the `image` crate's encoder uses
//! an integer DCT and IEEE division for quantising, and its decoder (`zune-jpeg`) documents
//! its vector IDCT as bit-identical to its scalar one, so a machine with AVX2 decodes the
//! same bytes as one without. Grey JPEGs only: colour conversion and chroma upsampling
//! would add decoder paths without that guarantee.
//!
//! Each set has MNIST test's 10,000 images and labels, in order. Its `source_sha256` is
//! MNIST test's followed by `+paper(FAMILY,seed=S)`.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder, ImageFormat};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;

use super::dataset::Dataset;
use super::raw::{RawImage, RawSet};
use crate::error::{Error, Result};

/// The seed of the development family (`mnist-paper-dev`), which the framer may be tuned on.
pub const DEV_SEED: u64 = 1;
/// The seed of the held-out family (`mnist-paper`), the study's test domain.
pub const HELD_OUT_SEED: u64 = 2;
/// The side of an MNIST digit, which the renderer starts from.
const DIGIT_SIDE: usize = 28;

/// A family of renderings: its own seed and ranges for every factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `mnist-paper-dev`: the family the framer may be tuned on.
    Dev,
    /// `mnist-paper`: held out, never used to choose anything.
    HeldOut,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Dev, Family::HeldOut];

    /// The data set spec that loads the family.
    pub fn spec(self) -> &'static str {
        match self {
            Family::Dev => "mnist-paper-dev",
            Family::HeldOut => "mnist-paper",
        }
    }

    /// The family of a spec, `None` for any other spec.
    pub fn of_spec(spec: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.spec() == spec)
    }

    /// The family's own seed.
    pub fn seed(self) -> u64 {
        match self {
            Family::Dev => DEV_SEED,
            Family::HeldOut => HELD_OUT_SEED,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::Dev => "dev",
            Family::HeldOut => "held-out",
        }
    }

    /// Mixed into every image's generator with the seed, so two families never share a
    /// stream even under one seed.
    fn id(self) -> u64 {
        match self {
            Family::Dev => 0x0d3e_7a11,
            Family::HeldOut => 0x4e1d_0007,
        }
    }

    /// The family's ranges.
    pub fn looks(self) -> &'static Looks {
        match self {
            Family::Dev => &DEV,
            Family::HeldOut => &HELD_OUT,
        }
    }
}

/// An ink: its reflectance per red, green and blue where it fully covers the paper, and
/// its grain (pencil's uneven cover).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ink {
    pub rgb: [f32; 3],
    pub grain: f32,
}

const BLACK: Ink = Ink {
    rgb: [0.06, 0.06, 0.08],
    grain: 0.0,
};
const BLUE: Ink = Ink {
    rgb: [0.12, 0.18, 0.62],
    grain: 0.0,
};
const PENCIL: Ink = Ink {
    rgb: [0.38, 0.38, 0.40],
    grain: 0.35,
};
const RED: Ink = Ink {
    rgb: [0.80, 0.14, 0.12],
    grain: 0.0,
};

/// The shape of the shadow across the sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shadow {
    /// A straight soft edge (a book or a wall), one side in shadow.
    Edge,
    /// A round soft blob (a hand or a phone held over the sheet).
    Blob,
}

/// A family's ranges (inclusive for integers, half-open for reals).
#[derive(Debug, Clone, PartialEq)]
pub struct Looks {
    /// Canvas side lengths, in pixels.
    pub canvas: (usize, usize),
    /// The digit's longer side as a share of the canvas's shorter side.
    pub share: (f32, f32),
    /// Largest rotation either way, in radians (Taylor polynomials need it small).
    pub max_angle: f32,
    /// Paper reflectances.
    pub papers: &'static [[f32; 3]],
    pub inks: &'static [Ink],
    /// The share of the light a fully covering stroke takes away (towards the ink's colour).
    pub density: (f32, f32),
    /// Pen width steps: −1 thinner, 0 as drawn, 1 or 2 thicker.
    pub pen: (i32, i32),
    pub shadow: Shadow,
    /// How dark a shadow gets (when there is one: in 60% of images).
    pub shadow_depth: (f32, f32),
    pub exposure: (f32, f32),
    /// Motion blur length, in pixels.
    pub motion: (usize, usize),
    /// JPEG quality.
    pub quality: (u8, u8),
    /// Most specks of dust.
    pub specks: usize,
}

/// The development family's ranges.
pub const DEV: Looks = Looks {
    canvas: (40, 120),
    share: (0.30, 0.75),
    max_angle: 0.10,
    papers: &[
        [0.93, 0.93, 0.91], // white
        [0.95, 0.91, 0.80], // cream
        [0.80, 0.79, 0.76], // grey recycled
        [0.88, 0.89, 0.92], // cool white
    ],
    inks: &[BLACK, BLUE, PENCIL],
    density: (0.55, 0.95),
    pen: (-1, 2),
    shadow: Shadow::Edge,
    shadow_depth: (0.10, 0.50),
    exposure: (0.70, 1.05),
    motion: (0, 3),
    quality: (40, 95),
    specks: 2,
};

/// The held-out family's ranges: other papers, a red ink, another shadow, larger canvases,
/// smaller digits, larger angles, longer motion blur, lower JPEG quality, more specks.
pub const HELD_OUT: Looks = Looks {
    canvas: (48, 140),
    share: (0.25, 0.70),
    max_angle: 0.18,
    papers: &[
        [0.96, 0.92, 0.60], // yellow legal pad
        [0.78, 0.86, 0.93], // pale blue
        [0.96, 0.80, 0.84], // pink note
        [0.74, 0.62, 0.46], // brown kraft
        [0.92, 0.92, 0.92], // white
    ],
    inks: &[BLACK, BLUE, PENCIL, RED],
    density: (0.50, 0.95),
    pen: (-1, 2),
    shadow: Shadow::Blob,
    shadow_depth: (0.10, 0.55),
    exposure: (0.65, 1.05),
    motion: (0, 4),
    quality: (30, 90),
    specks: 3,
};

/// A generator for image `index` of `family` drawn with `seed`: SplitMix64 steps mix the
/// three, so neighbouring indices get unrelated streams.
fn rng_for(seed: u64, family: Family, index: usize) -> StdRng {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let z = mix(seed ^ family.id().wrapping_mul(0x9e37_79b9_7f4a_7c15));
    StdRng::seed_from_u64(mix(z ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

/// The natural logarithm of `x` > 0 (normal floats), from basic arithmetic only: the float
/// is split into mantissa `m` in [√½, √2) and exponent `e`, and ln m = 2 atanh t with
/// t = (m − 1)/(m + 1), |t| ≤ 0.172, summed to t⁹ (error under 1e-7).
pub fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series = t * (1.0 + t2 * (1.0 / 3.0 + t2 * (0.2 + t2 * (1.0 / 7.0 + t2 / 9.0))));
    2.0 * series + e as f32 * std::f32::consts::LN_2
}

/// A Laplacian sample of mean 0 and variance 1: an exponential of scale 1/√2 with a random
/// sign, by the inverse of its distribution.
fn laplace(rng: &mut StdRng) -> f32 {
    // 1 − [0, 1) is in (0, 1] in steps of 2⁻²⁴: never 0, always a normal float.
    let e = -ln(1.0 - rng.gen::<f32>());
    let sign = if rng.gen::<bool>() { 1.0 } else { -1.0 };
    sign * e * std::f32::consts::FRAC_1_SQRT_2
}

/// Sine and cosine of a small angle (|a| ≤ 0.2: errors under 1e-8) by Taylor polynomials.
fn sin_cos_small(a: f32) -> (f32, f32) {
    let a2 = a * a;
    let sin = a * (1.0 - a2 / 6.0 * (1.0 - a2 / 20.0));
    let cos = 1.0 - a2 / 2.0 * (1.0 - a2 / 12.0 * (1.0 - a2 / 30.0));
    (sin, cos)
}

/// A draw from a half-open real range.
fn pick(rng: &mut StdRng, (lo, hi): (f32, f32)) -> f32 {
    lo + (hi - lo) * rng.gen::<f32>()
}

/// Where the digit goes: canvas size, scale, angle and centres.
struct Placement {
    w: usize,
    h: usize,
    /// Canvas pixels per digit pixel.
    scale: f32,
    sin: f32,
    cos: f32,
    /// The digit's extent's centre, in digit pixels, and where it lands on the canvas.
    from: (f32, f32),
    to: (f32, f32),
}

/// The digit's extent: the box of its pixels above 0, `(x0, y0, x1, y1)` with exclusive
/// ends; the whole digit when it has none.
fn extent(digit: &[f32]) -> (usize, usize, usize, usize) {
    let mut b = (DIGIT_SIDE, DIGIT_SIDE, 0, 0);
    for (i, _) in digit.iter().enumerate().filter(|(_, &v)| v > 0.0) {
        let (x, y) = (i % DIGIT_SIDE, i / DIGIT_SIDE);
        b = (b.0.min(x), b.1.min(y), b.2.max(x + 1), b.3.max(y + 1));
    }
    if b.2 == 0 {
        (0, 0, DIGIT_SIDE, DIGIT_SIDE)
    } else {
        b
    }
}

/// Draws the canvas and the digit's scale, angle and position, keeping the rotated digit
/// with `margin` pixels to spare wholly on the canvas.
fn place(digit: &[f32], looks: &Looks, margin: f32, rng: &mut StdRng) -> Placement {
    let (lo, hi) = looks.canvas;
    let (w, h) = (rng.gen_range(lo..=hi), rng.gen_range(lo..=hi));
    let (x0, y0, x1, y1) = extent(digit);
    let (ew, eh) = ((x1 - x0) as f32, (y1 - y0) as f32);
    let scale = pick(rng, looks.share) * w.min(h) as f32 / ew.max(eh);
    let angle = pick(rng, (-looks.max_angle, looks.max_angle));
    let (sin, cos) = sin_cos_small(angle);
    // Half the rotated extent's box, on the canvas.
    let half_w = scale * (cos.abs() * ew + sin.abs() * eh) / 2.0 + margin;
    let half_h = scale * (sin.abs() * ew + cos.abs() * eh) / 2.0 + margin;
    let mut centre = |side: usize, half: f32| {
        let room = side as f32 - 2.0 * half;
        if room > 0.0 {
            half + room * rng.gen::<f32>()
        } else {
            side as f32 / 2.0
        }
    };
    let to = (centre(w, half_w), centre(h, half_h));
    Placement {
        w,
        h,
        scale,
        sin,
        cos,
        from: ((x0 + x1) as f32 / 2.0, (y0 + y1) as f32 / 2.0),
        to,
    }
}

/// The digit's value at (u, v) in digit pixels (pixel i's centre at i + 0.5), by bilinear
/// interpolation; 0 off the digit.
fn bilinear(digit: &[f32], u: f32, v: f32) -> f32 {
    let (x, y) = (u - 0.5, v - 0.5);
    let (fx, fy) = (x.floor(), y.floor());
    let (tx, ty) = (x - fx, y - fy);
    let at = |xi: f32, yi: f32| {
        if xi < 0.0 || yi < 0.0 || xi >= DIGIT_SIDE as f32 || yi >= DIGIT_SIDE as f32 {
            0.0
        } else {
            digit[yi as usize * DIGIT_SIDE + xi as usize]
        }
    };
    let top = at(fx, fy) * (1.0 - tx) + at(fx + 1.0, fy) * tx;
    let bottom = at(fx, fy + 1.0) * (1.0 - tx) + at(fx + 1.0, fy + 1.0) * tx;
    top * (1.0 - ty) + bottom * ty
}

/// How much of each canvas pixel the stroke covers: the mean of 2×2 bilinear samples of
/// the digit, mapped back through the placement's scale and rotation.
fn coverage(digit: &[f32], p: &Placement) -> Vec<f32> {
    let mut out = vec![0.0f32; p.w * p.h];
    for (i, k) in out.iter_mut().enumerate() {
        let (x, y) = ((i % p.w) as f32, (i / p.w) as f32);
        let mut sum = 0.0f32;
        for (ox, oy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
            let (dx, dy) = (x + ox - p.to.0, y + oy - p.to.1);
            let u = (p.cos * dx + p.sin * dy) / p.scale + p.from.0;
            let v = (-p.sin * dx + p.cos * dy) / p.scale + p.from.1;
            sum += bilinear(digit, u, v);
        }
        *k = sum / 4.0;
    }
    out
}

/// One soft step of the pen's width on a `w`-wide coverage map: each pixel moves towards
/// the largest (thicker) or smallest (thinner) of itself and its four neighbours.
fn pen_step(k: &[f32], w: usize, thicker: bool) -> Vec<f32> {
    let h = k.len() / w;
    (0..k.len())
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let mut m = k[i];
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then(|| i + 1),
                (y > 0).then(|| i - w),
                (y + 1 < h).then(|| i + w),
            ];
            for j in neighbours.into_iter().flatten() {
                m = if thicker { m.max(k[j]) } else { m.min(k[j]) };
            }
            // Halfway: a pen a pixel wider would double thin strokes.
            0.5 * (k[i] + m)
        })
        .collect()
}

/// Separable 3-tap blur `[a, 1 − 2a, a]` of a `w`×`h` image, edges clamped.
fn blur3(img: &[f32], w: usize, h: usize, a: f32) -> Vec<f32> {
    let mut rows = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (l, r) = (x.saturating_sub(1), (x + 1).min(w - 1));
            let row = &img[y * w..];
            rows[y * w + x] = a * row[l] + (1.0 - 2.0 * a) * row[x] + a * row[r];
        }
    }
    let mut out = vec![0.0f32; w * h];
    for y in 0..h {
        let (u, d) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            out[y * w + x] =
                a * rows[u * w + x] + (1.0 - 2.0 * a) * rows[y * w + x] + a * rows[d * w + x];
        }
    }
    out
}

/// Motion blur: the mean of `len + 1` copies shifted along `(dx, dy)`, centred, edges
/// clamped.
fn motion_blur(img: &[f32], w: usize, h: usize, len: usize, (dx, dy): (isize, isize)) -> Vec<f32> {
    let half = len as isize / 2;
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            let sum: f32 = (0..=len as isize)
                .map(|j| {
                    let s = j - half;
                    img[clamp(y + s * dy, h) * w + clamp(x + s * dx, w)]
                })
                .sum();
            sum / (len + 1) as f32
        })
        .collect()
}

/// `t` in [0, 1] eased: 3t² − 2t³.
fn smoothstep(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A unit vector in a random direction (normalised by `sqrt`, exact in IEEE 754).
fn direction(rng: &mut StdRng) -> (f32, f32) {
    loop {
        let (a, b) = (rng.gen_range(-1.0..1.0f32), rng.gen_range(-1.0..1.0f32));
        let n = (a * a + b * b).sqrt();
        if (0.2..=1.0).contains(&n) {
            return (a / n, b / n);
        }
    }
}

/// The light falling on the sheet at each pixel, in coordinates scaled to [0, 1] across
/// the longer side: a lamp's fall-off, the lens's vignette and a soft shadow, scaled so the
/// brightest pixel gets the exposure.
fn light(w: usize, h: usize, looks: &Looks, rng: &mut StdRng) -> Vec<f32> {
    let exposure = pick(rng, looks.exposure);
    let (lx, ly) = (pick(rng, (-0.5, 1.5)), pick(rng, (-0.5, 1.5)));
    let falloff = pick(rng, (0.0, 0.6));
    let vignette = pick(rng, (0.0, 0.5));
    let depth = if rng.gen_bool(0.6) {
        pick(rng, looks.shadow_depth)
    } else {
        0.0
    };
    let (sx, sy) = (pick(rng, (0.0, 1.0)), pick(rng, (0.0, 1.0)));
    let soft = pick(rng, (0.03, 0.25));
    let (nx, ny) = direction(rng);
    let (rx, ry) = (pick(rng, (0.25, 0.7)), pick(rng, (0.25, 0.7)));
    let longer = w.max(h) as f32;
    let (cx, cy) = (w as f32 / longer / 2.0, h as f32 / longer / 2.0);
    let field: Vec<f32> = (0..w * h)
        .map(|i| {
            let u = ((i % w) as f32 + 0.5) / longer;
            let v = ((i / w) as f32 + 0.5) / longer;
            let lamp = 1.0 / (1.0 + falloff * ((u - lx) * (u - lx) + (v - ly) * (v - ly)));
            let r2 = (u - cx) * (u - cx) + (v - cy) * (v - cy);
            let lens = 1.0 / ((1.0 + vignette * r2) * (1.0 + vignette * r2));
            let shade = match looks.shadow {
                Shadow::Edge => smoothstep(((u - sx) * nx + (v - sy) * ny) / soft + 0.5),
                Shadow::Blob => {
                    let (du, dv) = ((u - sx) / rx, (v - sy) / ry);
                    let q = (du * du + dv * dv).sqrt();
                    1.0 - smoothstep((q - 1.0) / (2.0 * soft) + 0.5)
                }
            };
            lamp * lens * (1.0 - depth * shade)
        })
        .collect();
    // The camera exposes for the brightest part of the sheet.
    let top = field.iter().copied().fold(0.0f32, f32::max);
    field.iter().map(|l| exposure * l / top).collect()
}

/// The sheet's reflectance in grey, as the camera's grey mode sees it: paper with its
/// texture, the stroke in its ink, specks of dust.
fn sheet(cover: &[f32], w: usize, looks: &Looks, rng: &mut StdRng) -> Vec<f32> {
    let h = cover.len() / w;
    let paper = looks.papers[rng.gen_range(0..looks.papers.len())];
    let ink = looks.inks[rng.gen_range(0..looks.inks.len())];
    let density = pick(rng, looks.density);
    // Paper texture: random levels on a coarse grid, interpolated.
    let cell = rng.gen_range(6..=16usize);
    let texture = pick(rng, (0.0, 0.03));
    let (gw, gh) = (w / cell + 2, h / cell + 2);
    let grid: Vec<f32> = (0..gw * gh).map(|_| rng.gen::<f32>() - 0.5).collect();
    let mut grey = Vec::with_capacity(w * h);
    for (i, &k) in cover.iter().enumerate() {
        let (x, y) = (i % w, i / w);
        let (gx, gy) = (x / cell, y / cell);
        let (tx, ty) = (
            (x % cell) as f32 / cell as f32,
            (y % cell) as f32 / cell as f32,
        );
        let g = |a: usize, b: usize| grid[b * gw + a];
        let n = (g(gx, gy) * (1.0 - tx) + g(gx + 1, gy) * tx) * (1.0 - ty)
            + (g(gx, gy + 1) * (1.0 - tx) + g(gx + 1, gy + 1) * tx) * ty;
        let grain = if ink.grain > 0.0 {
            1.0 - ink.grain * rng.gen::<f32>()
        } else {
            1.0
        };
        let k = (density * k * grain).min(1.0);
        let rgb: [f32; 3] = std::array::from_fn(|c| {
            paper[c] * (1.0 + texture * n) * (1.0 - k * (1.0 - ink.rgb[c]))
        });
        grey.push(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]);
    }
    for _ in 0..rng.gen_range(0..=looks.specks) {
        let (sx, sy, size) = (
            rng.gen_range(0..w),
            rng.gen_range(0..h),
            rng.gen_range(1..=2usize),
        );
        let dark = pick(rng, (0.2, 0.6));
        for y in sy..(sy + size).min(h) {
            for x in sx..(sx + size).min(w) {
                grey[y * w + x] *= dark;
            }
        }
    }
    grey
}

/// The camera: defocus and motion blur, then signal-dependent Laplacian noise and 8-bit
/// quantisation.
fn camera(img: Vec<f32>, w: usize, h: usize, looks: &Looks, rng: &mut StdRng) -> Vec<u8> {
    let mut img = img;
    for _ in 0..rng.gen_range(0..=2usize) {
        img = blur3(&img, w, h, pick(rng, (0.1, 0.3)));
    }
    let len = rng.gen_range(looks.motion.0..=looks.motion.1);
    if len > 0 {
        let dirs = [(1, 0), (0, 1), (1, 1), (1, -1)];
        img = motion_blur(&img, w, h, len, dirs[rng.gen_range(0..4)]);
    }
    let read = pick(rng, (0.003, 0.02));
    let gain = pick(rng, (0.0, 0.0008));
    img.iter()
        .map(|&v| {
            let sd = (read * read + gain * v.max(0.0)).sqrt();
            let grey = v + sd * laplace(rng);
            (grey.clamp(0.0, 1.0) * 255.0).round() as u8
        })
        .collect()
}

/// One 28×28 MNIST digit (ink bright) rendered onto paper (see the module documentation)
/// with `family`'s looks, as the JPEG file the rendering passes through: its width, height
/// and bytes.
pub fn render_jpeg(
    digit: &[f32],
    family: Family,
    seed: u64,
    index: usize,
) -> Result<(usize, usize, Vec<u8>)> {
    let looks = family.looks();
    let mut rng = rng_for(seed, family, index);
    let pen = rng.gen_range(looks.pen.0..=looks.pen.1);
    let p = place(digit, looks, 2.0 + pen.max(0) as f32, &mut rng);
    let mut cover = coverage(digit, &p);
    for _ in 0..pen.unsigned_abs() {
        cover = pen_step(&cover, p.w, pen > 0);
    }
    // Felt-tip and heavy ballpoint saturate: the middle of a stroke is as dark as its ink.
    let saturation = pick(&mut rng, (1.0, 1.8));
    cover
        .iter_mut()
        .for_each(|k| *k = (*k * saturation).min(1.0));
    let grey = sheet(&cover, p.w, looks, &mut rng);
    let lit: Vec<f32> = grey
        .iter()
        .zip(light(p.w, p.h, looks, &mut rng))
        .map(|(r, l)| r * l)
        .collect();
    let bytes = camera(lit, p.w, p.h, looks, &mut rng);
    let quality = rng.gen_range(looks.quality.0..=looks.quality.1);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, quality)
        .write_image(&bytes, p.w as u32, p.h as u32, ExtendedColorType::L8)
        .map_err(|e| {
            Error::invalid(format!(
                "mnist-paper image {index}: JPEG encoding failed ({e})"
            ))
        })?;
    Ok((p.w, p.h, jpeg))
}

/// Renders one 28×28 MNIST digit (ink bright) onto paper (see the module documentation):
/// the decoded JPEG of [`render_jpeg`].
pub fn render(digit: &[f32], family: Family, seed: u64, index: usize) -> Result<RawImage> {
    let (w, h, jpeg) = render_jpeg(digit, family, seed, index)?;
    decode_jpeg(w, h, &jpeg, index)
}

/// The grey levels of image `index`'s JPEG of [`render_jpeg`] (`w`×`h`).
fn decode_jpeg(w: usize, h: usize, jpeg: &[u8], index: usize) -> Result<RawImage> {
    let decoded = image::load(Cursor::new(jpeg), ImageFormat::Jpeg)
        .map_err(|e| {
            Error::invalid(format!(
                "mnist-paper image {index}: JPEG decoding failed ({e})"
            ))
        })?
        .into_luma8();
    let pixels = decoded.as_raw().iter().map(|&b| b as f32 / 255.0).collect();
    RawImage::new(w, h, pixels)
}

/// Every image of `mnist` (28×28, ink bright) rendered on paper with `family`'s looks and
/// `seed`, in parallel.
pub fn render_set(mnist: &Dataset, family: Family, seed: u64, name: &str) -> Result<RawSet> {
    if (mnist.width, mnist.height) != (DIGIT_SIDE, DIGIT_SIDE) {
        return Err(Error::invalid(format!(
            "data set `{}` is {}x{}; paper renderings start from MNIST's 28x28 digits",
            mnist.name, mnist.width, mnist.height
        )));
    }
    let images = (0..mnist.len())
        .into_par_iter()
        .map(|i| render(mnist.image(i), family, seed, i))
        .collect::<Result<Vec<_>>>()?;
    Ok(RawSet {
        name: name.to_string(),
        images,
        labels: mnist.labels.clone(),
        source_sha256: format!(
            "{}+paper({},seed={seed})",
            mnist.source_sha256,
            family.name()
        ),
    })
}

/// How an example photo is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExampleKind {
    /// The rendering's own JPEG file, byte for byte.
    Jpeg,
    /// The decoded rendering as an 8-bit grey PNG.
    Png,
    /// The decoded rendering with its grey levels inverted (light ink on dark paper, as
    /// chalk on a blackboard), as an 8-bit grey PNG.
    InvertedPng,
}

/// The example photos of `notebooks/own-digits/`: `mnist-paper` images (the held-out family,
/// seed [`HELD_OUT_SEED`]) of the first MNIST test digit of each class, by MNIST test index,
/// and how each is stored.
pub const EXAMPLES: [(usize, ExampleKind); 8] = [
    (3, ExampleKind::Jpeg),        // 0
    (2, ExampleKind::Jpeg),        // 1
    (1, ExampleKind::Png),         // 2
    (18, ExampleKind::Jpeg),       // 3
    (4, ExampleKind::InvertedPng), // 4
    (8, ExampleKind::Jpeg),        // 5
    (0, ExampleKind::Jpeg),        // 7
    (7, ExampleKind::Jpeg),        // 9
];

/// The example photos as files: per entry of [`EXAMPLES`], its path relative to the
/// examples folder (`D/D-INDEX.jpg` or `.png`: the folder is the label, as the folder domain
/// `png:DIR` reads it) and its bytes. `mnist_test` is MNIST's test set.
pub fn example_files(mnist_test: &Dataset) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    EXAMPLES
        .iter()
        .map(|&(index, kind)| {
            if index >= mnist_test.len() {
                return Err(Error::invalid(format!(
                    "data set `{}` has {} images, not MNIST test's; load it with load_mnist",
                    mnist_test.name,
                    mnist_test.len()
                )));
            }
            let label = mnist_test.labels[index];
            let (w, h, jpeg) = render_jpeg(
                mnist_test.image(index),
                Family::HeldOut,
                HELD_OUT_SEED,
                index,
            )?;
            let name = format!("{label}/{label}-{index}");
            if kind == ExampleKind::Jpeg {
                return Ok((format!("{name}.jpg").into(), jpeg));
            }
            let grey = decode_jpeg(w, h, &jpeg, index)?;
            let bytes: Vec<u8> = grey
                .pixels
                .iter()
                .map(|&v| {
                    let b = (v * 255.0).round() as u8;
                    if kind == ExampleKind::InvertedPng {
                        255 - b
                    } else {
                        b
                    }
                })
                .collect();
            let mut png = Vec::new();
            image::codecs::png::PngEncoder::new(&mut png)
                .write_image(&bytes, w as u32, h as u32, ExtendedColorType::L8)
                .map_err(|e| {
                    Error::invalid(format!("example {name}: PNG encoding failed ({e})"))
                })?;
            Ok((format!("{name}.png").into(), png))
        })
        .collect()
}

/// Writes [`example_files`] under `dir` (made when missing) and returns their paths.
pub fn write_examples(
    mnist_test: &Dataset,
    dir: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>> {
    example_files(mnist_test)?
        .into_iter()
        .map(|(rel, bytes)| {
            let path = dir.join(rel);
            let parent = path.parent().expect("a file under a digit folder");
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::one;

    #[test]
    fn the_logarithm_and_the_angle_polynomials_are_close_to_the_library() {
        for i in 1..=2000 {
            let x = i as f32 / 2000.0;
            assert!(
                (ln(x) - x.ln()).abs() < 2e-6,
                "{x}: {} vs {}",
                ln(x),
                x.ln()
            );
        }
        assert!((ln(2f32.powi(-24)) - 2f32.powi(-24).ln()).abs() < 1e-5);
        for i in -20..=20 {
            let a = i as f32 / 100.0;
            let (s, c) = sin_cos_small(a);
            assert!(
                (s - a.sin()).abs() < 1e-6 && (c - a.cos()).abs() < 1e-6,
                "{a}"
            );
        }
    }

    #[test]
    fn laplacian_noise_has_unit_variance_and_heavy_tails() {
        let mut rng = rng_for(3, Family::Dev, 0);
        let x: Vec<f64> = (0..200_000).map(|_| laplace(&mut rng) as f64).collect();
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let kurtosis = x.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n / (var * var);
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
        // A Laplacian's kurtosis is 6 (a Gaussian's 3, a sum of four uniforms' 2.7).
        assert!((5.0..7.0).contains(&kurtosis), "{kurtosis}");
    }

    #[test]
    fn renderings_are_deterministic_and_in_their_familys_ranges() {
        let digit = one();
        for family in Family::ALL {
            let looks = family.looks();
            let a: Vec<RawImage> = (0..12)
                .map(|i| render(&digit, family, 7, i).unwrap())
                .collect();
            let b: Vec<RawImage> = (0..12)
                .rev()
                .map(|i| render(&digit, family, 7, i).unwrap())
                .collect();
            assert!(a.iter().eq(b.iter().rev()), "the same whatever the order");
            assert_ne!(render(&digit, family, 8, 0).unwrap(), a[0]);
            let sizes: std::collections::BTreeSet<_> =
                a.iter().map(|r| (r.width, r.height)).collect();
            assert!(sizes.len() > 6, "{sizes:?}");
            let (lo, hi) = looks.canvas;
            for r in &a {
                assert!((lo..=hi).contains(&r.width) && (lo..=hi).contains(&r.height));
                // Paper: most pixels are lighter than the darkest ones by far.
                let mut px = r.pixels.clone();
                px.sort_by(f32::total_cmp);
                let (dark, median) = (px[px.len() / 200], px[px.len() / 2]);
                assert!(median - dark > 0.08, "{family:?}: {dark} {median}");
            }
        }
    }

    #[test]
    fn the_families_differ() {
        let digit = one();
        for i in 0..8 {
            let dev = render(&digit, Family::Dev, 5, i).unwrap();
            let held_out = render(&digit, Family::HeldOut, 5, i).unwrap();
            assert_ne!(dev, held_out, "image {i}");
        }
        assert_ne!(DEV_SEED, HELD_OUT_SEED);
        assert_ne!(DEV, HELD_OUT);
        assert_eq!(Family::of_spec("mnist-paper"), Some(Family::HeldOut));
        assert_eq!(Family::of_spec("mnist-paper-dev"), Some(Family::Dev));
    }

    #[test]
    fn the_same_bytes_whatever_the_thread_count() {
        let mnist = crate::data::synthetic::blocks(24, 3, false);
        for family in Family::ALL {
            let on = |threads: usize| {
                crate::runtime::with_threads(threads, || {
                    render_set(&mnist, family, 5, "p").unwrap()
                })
            };
            let one = on(1);
            assert_eq!(one, on(3));
            assert_eq!(one.labels, mnist.labels);
            let tail = format!("+paper({},seed=5)", family.name());
            assert!(one.source_sha256.ends_with(&tail), "{}", one.source_sha256);
        }
    }
}
