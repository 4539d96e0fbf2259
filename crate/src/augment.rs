//! Data augmentation: random rotation, translation, zoom, elastic distortion and stroke
//! thickness, drawn afresh for every training image.
//!
//! # What happens to an image
//! 1. Rotation, shift and zoom compose into one [`Affine`] map, drawn per image.
//! 2. An elastic displacement field (Simard et al. 2003) is drawn on the output grid.
//! 3. Both are applied in a single inverse-mapped bilinear resampling, pixels from outside the
//!    image reading as 0: output pixel `p` takes the source value at `A⁻¹(p + d(p))`. That is
//!    exactly "affine, then elastic", but strokes are interpolated (and blurred) once, not twice.
//! 4. Grey-scale dilation or erosion (equal odds) with a radius drawn from `[0, thickness]`.
//! 5. Values are clamped to [0, 1].
//!
//! A stage whose parameter is 0 is skipped and draws nothing, so an all-zero spec returns the
//! image bit for bit.
//!
//! # Conventions
//! Pixel `(x, y)` is column `x`, row `y`, rows running down, as in [`Dataset`]. Rotation and
//! zoom act about the image centre `((side − 1) / 2, (side − 1) / 2)`; a positive angle turns
//! the digit counter-clockwise on screen (Keras's convention); a scale above 1 enlarges it.
//!
//! # Determinism
//! [`augment_batch`] draws image `i` of a batch from `StdRng::seed_from_u64(mix_seed(seed, i))`,
//! so a batch is a pure function of `(seed, images, spec)` whatever the number of threads.
//! That is what keeps resumed training runs exact.

use std::fmt;
use std::str::FromStr;

use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::models::mix_seed;
use crate::{Error, Result};

/// The presets [`AugmentSpec::from_str`] knows, as the specs they stand for.
///
/// - `none`: no augmentation.
/// - `keras`: our reading of the original study's Keras layers `RandomRotation`,
///   `RandomTranslation(0.1, 0.1)` and `RandomZoom(0.1)` as ±10°, ±10 % of the side in x and y,
///   and a scale in [0.9, 1.1]. Two differences from Keras's defaults: Keras's `RandomRotation`
///   takes a fraction of a full turn (a literal `RandomRotation(0.1)` would be ±36°, which we
///   do not believe the study meant for digits, where 6 and 9 must stay apart), and Keras
///   fills with `reflect` where we fill with 0, which on MNIST's empty borders barely differs.
/// - `elastic`: Simard et al.'s elastic distortion with their MNIST setting α = 34, σ = 4.
/// - `strong`: everything at once, each a little harder than the study's: ±15°, ±10 % shift,
///   ±15 % zoom, elastic 34:4, and strokes thinned or thickened by up to half a pixel. Chosen
///   as the heaviest setting under which MNIST digits stay readable: with a thickness of 1
///   instead, 1.6 % of 2000 MNIST test digits kept under a quarter of their ink (or no pixel
///   above 0.5), erased by erosion; with 0.5, none did.
pub const PRESETS: [(&str, &str); 4] = [
    ("none", ""),
    ("keras", "rotate=10,shift=0.1,zoom=0.1"),
    ("elastic", "elastic=34:4"),
    (
        "strong",
        "rotate=15,shift=0.1,zoom=0.15,elastic=34:4,thickness=0.5",
    ),
];

const VALID: &str = "valid keys: rotate=DEGREES, shift=FRACTION[:FRACTION_Y], zoom=FRACTION, elastic=ALPHA:SIGMA, thickness=RADIUS; presets: none, keras, elastic, strong";

/// How to augment: the largest change of each kind (0 turns a kind off).
///
/// Written and read as a comma-separated spec such as
/// `rotate=10,shift=0.1,zoom=0.1,elastic=34:4,thickness=1`; items may also be the
/// [`PRESETS`], which set the parameters they name, so `keras,thickness=1` adds thickness to
/// the `keras` preset. Later items override earlier ones. [`Display`](fmt::Display) gives the
/// canonical spec, which parses back to the same value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentSpec {
    /// Largest rotation in degrees; the angle is drawn uniformly from ±`rotate`.
    pub rotate: f32,
    /// Largest horizontal shift as a fraction of the side, drawn uniformly from ±`shift_x`.
    pub shift_x: f32,
    /// Largest vertical shift as a fraction of the side, drawn independently of `shift_x`.
    pub shift_y: f32,
    /// The scale is drawn uniformly from [1 − `zoom`, 1 + `zoom`].
    pub zoom: f32,
    /// Elastic strength α in pixels: the smoothed field, uniform in [−1, 1] before smoothing,
    /// is multiplied by it. 0 turns elastic distortion off.
    pub elastic_alpha: f32,
    /// Standard deviation σ in pixels of the Gaussian that smooths the elastic field.
    pub elastic_sigma: f32,
    /// Largest radius in pixels of the dilation or erosion that thickens or thins strokes.
    /// Erosion is the harsher: MNIST's strokes are 2 to 3 pixels wide, and eroding by a radius
    /// of 0.5 keeps two-thirds of a digit's ink on average, by 1 only a third. Up to 0.5 is
    /// safe; 1 erases some thin digits.
    pub thickness: f32,
}

impl AugmentSpec {
    /// The spec of a named preset (see [`PRESETS`]).
    pub fn preset(name: &str) -> Option<AugmentSpec> {
        PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, _)| n.parse().expect("presets are valid specs"))
    }

    /// Whether this spec leaves every image as it is.
    pub fn is_identity(&self) -> bool {
        [
            self.rotate,
            self.shift_x,
            self.shift_y,
            self.zoom,
            self.elastic_alpha,
            self.thickness,
        ]
        .iter()
        .all(|&v| v == 0.0)
    }

    /// Checks every parameter's range. The limits keep each transformation meaningful for a
    /// digit (a zoom of 1 could scale it to nothing) and the work per image bounded (σ sets
    /// the smoothing kernel's size, the thickness radius the structuring element's).
    pub fn validate(&self) -> Result<()> {
        let checks: [(&str, f32, bool, &str); 7] = [
            (
                "rotate",
                self.rotate,
                self.rotate <= 180.0,
                "between 0 and 180 degrees",
            ),
            (
                "shift",
                self.shift_x,
                self.shift_x <= 1.0,
                "a fraction between 0 and 1",
            ),
            (
                "shift (y)",
                self.shift_y,
                self.shift_y <= 1.0,
                "a fraction between 0 and 1",
            ),
            ("zoom", self.zoom, self.zoom < 1.0, "at least 0 and below 1"),
            ("elastic ALPHA", self.elastic_alpha, true, "at least 0"),
            (
                "elastic SIGMA",
                self.elastic_sigma,
                self.elastic_sigma <= 50.0
                    && (self.elastic_alpha == 0.0 || self.elastic_sigma > 0.0),
                "above 0 and at most 50 pixels",
            ),
            (
                "thickness",
                self.thickness,
                self.thickness <= 5.0,
                "between 0 and 5 pixels",
            ),
        ];
        for (key, value, ok, range) in checks {
            if !(value.is_finite() && value >= 0.0 && ok) {
                return Err(Error::invalid(format!(
                    "augmentation `{self}`: {key} must be {range}, got {value}; {VALID}"
                )));
            }
        }
        Ok(())
    }

    /// One image's rotation, shift (in pixels) and scale.
    fn draw_affine(&self, side: usize, rng: &mut impl Rng) -> Affine {
        let mut sym = |r: f32| if r > 0.0 { rng.gen_range(-r..=r) } else { 0.0 };
        Affine {
            rotate_deg: sym(self.rotate),
            shift_x: sym(self.shift_x) * side as f32,
            shift_y: sym(self.shift_y) * side as f32,
            scale: 1.0 + sym(self.zoom),
        }
    }
}

impl fmt::Display for AugmentSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.rotate != 0.0 {
            parts.push(format!("rotate={}", self.rotate));
        }
        if self.shift_x == self.shift_y && self.shift_x != 0.0 {
            parts.push(format!("shift={}", self.shift_x));
        } else if self.shift_x != self.shift_y {
            parts.push(format!("shift={}:{}", self.shift_x, self.shift_y));
        }
        if self.zoom != 0.0 {
            parts.push(format!("zoom={}", self.zoom));
        }
        // σ alone does nothing, but is kept so that every spec round-trips.
        if self.elastic_alpha != 0.0 || self.elastic_sigma != 0.0 {
            parts.push(format!(
                "elastic={}:{}",
                self.elastic_alpha, self.elastic_sigma
            ));
        }
        if self.thickness != 0.0 {
            parts.push(format!("thickness={}", self.thickness));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

impl FromStr for AugmentSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut spec = AugmentSpec::default();
        for part in s.split(',').map(str::trim) {
            let bad = |why: String| {
                Error::invalid(format!("augmentation `{s}`: {why} in `{part}`; {VALID}"))
            };
            match part.split_once('=') {
                Some((key, value)) => set_key(&mut spec, key.trim(), value).map_err(bad)?,
                None => match PRESETS.iter().find(|(name, _)| *name == part) {
                    Some((_, items)) => {
                        for item in items.split(',').filter(|i| !i.is_empty()) {
                            let (key, value) = item.split_once('=').expect("preset items");
                            set_key(&mut spec, key, value).expect("presets are valid specs");
                        }
                    }
                    None if KEYS.contains(&part) => {
                        return Err(bad(format!("`{part}` needs a value")))
                    }
                    None if part.is_empty() => return Err(bad("an empty item".into())),
                    None => return Err(bad(format!("unknown preset `{part}`"))),
                },
            }
        }
        spec.validate()?;
        Ok(spec)
    }
}

const KEYS: [&str; 5] = ["rotate", "shift", "zoom", "elastic", "thickness"];

/// Applies one `key=value` item; the error says what is wrong with it.
fn set_key(spec: &mut AugmentSpec, key: &str, value: &str) -> std::result::Result<(), String> {
    if !KEYS.contains(&key) {
        return Err(format!("unknown key `{key}`"));
    }
    let nums = value
        .split(':')
        .map(|v| {
            v.trim()
                .parse::<f32>()
                .map_err(|_| format!("`{}` is not a number", v.trim()))
        })
        .collect::<std::result::Result<Vec<f32>, String>>()?;
    match (key, nums.as_slice()) {
        ("rotate", &[d]) => spec.rotate = d,
        ("shift", &[s]) => (spec.shift_x, spec.shift_y) = (s, s),
        ("shift", &[x, y]) => (spec.shift_x, spec.shift_y) = (x, y),
        ("zoom", &[z]) => spec.zoom = z,
        ("elastic", &[a, s]) => (spec.elastic_alpha, spec.elastic_sigma) = (a, s),
        ("thickness", &[r]) => spec.thickness = r,
        ("shift", _) => return Err("`shift` takes FRACTION or FRACTION_X:FRACTION_Y".into()),
        ("elastic", _) => return Err("`elastic` takes ALPHA:SIGMA".into()),
        _ => return Err(format!("`{key}` takes one number")),
    }
    Ok(())
}

/// A fixed rotation, shift and zoom; [`augment_image`] draws one of these per image.
///
/// The forward map scales by `scale` and rotates by `rotate_deg` about the image centre, then
/// shifts by (`shift_x`, `shift_y`) pixels; [`apply`](Affine::apply) samples through its
/// inverse.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    /// Counter-clockwise on screen, in degrees.
    pub rotate_deg: f32,
    /// Pixels to the right.
    pub shift_x: f32,
    /// Pixels down.
    pub shift_y: f32,
    /// Above 1 enlarges.
    pub scale: f32,
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        rotate_deg: 0.0,
        shift_x: 0.0,
        shift_y: 0.0,
        scale: 1.0,
    };

    pub fn is_identity(&self) -> bool {
        *self == Affine::IDENTITY
    }

    /// The transformed `side`×`side` image (bilinear; what comes from outside reads as 0).
    /// The identity returns the image unchanged.
    pub fn apply(&self, img: &[f32], side: usize) -> Vec<f32> {
        assert_eq!(img.len(), side * side, "an image of side {side}");
        if self.is_identity() {
            return img.to_vec();
        }
        warp(img, side, self, None)
    }

    /// The map from an output point back to the source point it shows.
    fn inverse(&self, side: usize) -> InverseMap {
        // With rows running down, turning counter-clockwise on screen sends (x, y) to
        // (x cos + y sin, −x sin + y cos) about the centre; this is that map undone.
        let (sin, cos) = self.rotate_deg.to_radians().sin_cos();
        InverseMap {
            c: (side as f32 - 1.0) / 2.0,
            a: cos / self.scale,
            b: sin / self.scale,
            tx: self.shift_x,
            ty: self.shift_y,
        }
    }
}

struct InverseMap {
    c: f32,
    a: f32,
    b: f32,
    tx: f32,
    ty: f32,
}

impl InverseMap {
    fn map(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = (x - self.c - self.tx, y - self.c - self.ty);
        (
            self.c + self.a * dx - self.b * dy,
            self.c + self.b * dx + self.a * dy,
        )
    }
}

/// Resample `img` at `A⁻¹(p + d(p))` for every output pixel `p`.
///
/// Four pixels of a row at a time, each step written as an array operation that the compiler
/// turns into vector instructions, with the four neighbours read from a zero-bordered copy of
/// the image. Every pixel gets the same arithmetic as [`bilinear`] gives it (a test checks
/// it bit for bit); this is only a faster order, since augmenting is a fifth of the MLP's
/// training step. It measured a fifth faster than the pixel-by-pixel loop.
fn warp(img: &[f32], side: usize, affine: &Affine, field: Option<&[Vec<f32>; 2]>) -> Vec<f32> {
    // Four lanes: one SSE register, which every x86-64 has; MNIST's side of 28 has no tail.
    const L: usize = 4;
    let inv = affine.inverse(side);
    let n = side as f32;
    // The image with a border of one zero pixel all round: every neighbour of a sampling point
    // inside (-1, side) lies in it.
    let ps = side + 2;
    let mut padded = vec![0.0f32; ps * ps];
    for y in 0..side {
        padded[(y + 1) * ps + 1..][..side].copy_from_slice(&img[y * side..][..side]);
    }
    let mut out = vec![0.0f32; side * side];
    for y in 0..side {
        let whole = side - side % L;
        for x0 in (0..whole).step_by(L) {
            let p0 = y * side + x0;
            let mut u: [f32; L] = std::array::from_fn(|l| (x0 + l) as f32);
            let mut v = [y as f32; L];
            if let Some([dx, dy]) = field {
                for l in 0..L {
                    u[l] += dx[p0 + l];
                    v[l] += dy[p0 + l];
                }
            }
            let (mut sx, mut sy) = ([0.0f32; L], [0.0f32; L]);
            for l in 0..L {
                (sx[l], sy[l]) = inv.map(u[l], v[l]);
            }
            let inside: [bool; L] =
                std::array::from_fn(|l| sx[l] > -1.0 && sy[l] > -1.0 && sx[l] < n && sy[l] < n);
            let x0f = sx.map(floor_small);
            let y0f = sy.map(floor_small);
            let fx: [f32; L] = std::array::from_fn(|l| sx[l] - x0f[l]);
            let fy: [f32; L] = std::array::from_fn(|l| sy[l] - y0f[l]);
            // Index of the top-left neighbour in the bordered image (0 for points outside,
            // whose value is discarded below).
            let at: [usize; L] = std::array::from_fn(|l| {
                if inside[l] {
                    (y0f[l] as isize + 1) as usize * ps + (x0f[l] as isize + 1) as usize
                } else {
                    0
                }
            });
            let a: [f32; L] = std::array::from_fn(|l| padded[at[l]]);
            let b: [f32; L] = std::array::from_fn(|l| padded[at[l] + 1]);
            let c: [f32; L] = std::array::from_fn(|l| padded[at[l] + ps]);
            let d: [f32; L] = std::array::from_fn(|l| padded[at[l] + ps + 1]);
            for l in 0..L {
                let top = a[l] + fx[l] * (b[l] - a[l]);
                let bottom = c[l] + fx[l] * (d[l] - c[l]);
                let value = top + fy[l] * (bottom - top);
                out[p0 + l] = if inside[l] { value } else { 0.0 };
            }
        }
        for x in whole..side {
            let p = y * side + x;
            let (mut u, mut v) = (x as f32, y as f32);
            if let Some([dx, dy]) = field {
                u += dx[p];
                v += dy[p];
            }
            let (sx, sy) = inv.map(u, v);
            out[p] = bilinear(img, side, sx, sy);
        }
    }
    out
}

/// `x.floor()` for `|x|` well inside `i32`'s range, exactly. The baseline x86-64 target has no
/// rounding instruction, so `f32::floor` is a call into libm, and it was a tenth of the time
/// augmentation takes; truncating toward zero and stepping down when that rounded up is the
/// same value, inline.
#[inline(always)]
fn floor_small(x: f32) -> f32 {
    let t = x as i32 as f32;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// Bilinear interpolation with pixels outside the image reading as 0. Written as
/// `a + f (b − a)` so that an integer position returns the pixel exactly.
fn bilinear(img: &[f32], side: usize, x: f32, y: f32) -> f32 {
    // Rejecting far points (and NaN) before any integer arithmetic keeps a huge elastic
    // displacement from overflowing the index computations below.
    let n = side as f32;
    if !(x > -1.0 && y > -1.0 && x < n && y < n) {
        return 0.0;
    }
    let (x0, y0) = (floor_small(x), floor_small(y));
    let (fx, fy) = (x - x0, y - y0);
    let n = side as isize;
    let (xi, yi) = (x0 as isize, y0 as isize);
    if xi >= 0 && yi >= 0 && xi + 1 < n && yi + 1 < n {
        // Inside: the same arithmetic as below without the bounds checks.
        let i = (yi * n + xi) as usize;
        let (a, b, c, d) = (img[i], img[i + 1], img[i + side], img[i + side + 1]);
        let top = a + fx * (b - a);
        let bottom = c + fx * (d - c);
        return top + fy * (bottom - top);
    }
    let at = |xx: isize, yy: isize| {
        if (0..n).contains(&xx) && (0..n).contains(&yy) {
            img[(yy * n + xx) as usize]
        } else {
            0.0
        }
    };
    let top = at(xi, yi) + fx * (at(xi + 1, yi) - at(xi, yi));
    let bottom = at(xi, yi + 1) + fx * (at(xi + 1, yi + 1) - at(xi, yi + 1));
    top + fy * (bottom - top)
}

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
fn displacement_field(side: usize, alpha: f32, sigma: f32, rng: &mut impl Rng) -> [Vec<f32>; 2] {
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
fn gaussian_kernel(sigma: f32) -> Vec<f32> {
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
fn smooth(field: &mut [f32], side: usize, kernel: &[f32]) {
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

fn morph(img: &[f32], side: usize, radius: f32, pick: fn(f32, f32) -> f32) -> Vec<f32> {
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
fn flat_morph(img: &[f32], side: usize, k: usize, pick: fn(f32, f32) -> f32) -> Vec<f32> {
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

/// One randomly augmented copy of a `side`×`side` image (see the module documentation for the
/// stages and their order). `spec` should be valid ([`AugmentSpec::validate`]; parsing and
/// training check it). Panics if `img.len() != side * side`.
pub fn augment_image(img: &[f32], side: usize, spec: &AugmentSpec, rng: &mut impl Rng) -> Vec<f32> {
    assert_eq!(img.len(), side * side, "an image of side {side}");
    if spec.is_identity() {
        return img.to_vec();
    }
    let affine = spec.draw_affine(side, rng);
    let field = (spec.elastic_alpha > 0.0)
        .then(|| displacement_field(side, spec.elastic_alpha, spec.elastic_sigma, rng));
    let mut out = if affine.is_identity() && field.is_none() {
        img.to_vec()
    } else {
        warp(img, side, &affine, field.as_ref())
    };
    if spec.thickness > 0.0 {
        let radius = rng.gen_range(0.0..=spec.thickness);
        out = if rng.gen_bool(0.5) {
            dilate(&out, side, radius)
        } else {
            erode(&out, side, radius)
        };
    }
    for v in &mut out {
        *v = v.clamp(0.0, 1.0);
    }
    out
}

/// Augments `side`×`side` images stored one after another, in place and in parallel; image
/// `i` draws from `mix_seed(seed, i)`, so the result does not depend on the thread count.
/// Panics if `images.len()` is not a multiple of `side * side`.
pub fn augment_batch(images: &mut [f32], side: usize, spec: &AugmentSpec, seed: u64) {
    let px = side * side;
    assert!(
        px > 0 && images.len().is_multiple_of(px),
        "{} values are not whole images of side {side}",
        images.len()
    );
    if spec.is_identity() {
        return;
    }
    images.par_chunks_mut(px).enumerate().for_each(|(i, img)| {
        let mut rng = StdRng::seed_from_u64(mix_seed(seed, i as u64));
        let out = augment_image(img, side, spec, &mut rng);
        img.copy_from_slice(&out);
    });
}

/// An augmented copy of a data set (for figures; training augments batch by batch), with
/// provenance suffix `+augment(SPEC;seed=S)`. Needs square images.
pub fn augment_dataset(ds: &Dataset, spec: &AugmentSpec, seed: u64) -> Result<Dataset> {
    let side = square_side(ds, spec)?;
    let mut out = ds.clone();
    augment_batch(&mut out.images, side, spec, seed);
    out.source_sha256 = format!("{}+augment({spec};seed={seed})", ds.source_sha256);
    Ok(out)
}

/// `n` images picked at random with `seed` (all if `n >= len`, kept in data set order) and
/// augmented copies of them, as (originals, augmented), each image after another.
pub fn examples(
    ds: &Dataset,
    spec: &AugmentSpec,
    n: usize,
    seed: u64,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let side = square_side(ds, spec)?;
    let originals = ds.subset(n, seed).images;
    let mut augmented = originals.clone();
    augment_batch(&mut augmented, side, spec, seed);
    Ok((originals, augmented))
}

fn square_side(ds: &Dataset, spec: &AugmentSpec) -> Result<usize> {
    spec.validate()?;
    if ds.width != ds.height {
        return Err(Error::invalid(format!(
            "data set `{}`: augmentation needs square images, not {}x{}; bring it to 28x28 first (resize or mnist-frame)",
            ds.name, ds.width, ds.height
        )));
    }
    Ok(ds.width)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIDE: usize = 28;

    /// A digit-like "0": an anti-aliased elliptic ring about 2 pixels thick, off-centre,
    /// and 5 or more pixels from every border.
    fn ring() -> Vec<f32> {
        let mut img = vec![0.0f32; SIDE * SIDE];
        for y in 0..SIDE {
            for x in 0..SIDE {
                let (dx, dy) = ((x as f32 - 14.5) / 5.0, (y as f32 - 13.0) / 7.0);
                let r = (dx * dx + dy * dy).sqrt();
                let d = (r - 1.0) * 6.0; // roughly pixels from the ring's centre line
                img[y * SIDE + x] = (1.0 - (d.abs() - 0.8).max(0.0)).clamp(0.0, 1.0);
            }
        }
        img
    }

    /// A Gaussian spot of standard deviation 1.5 pixels at (x, y).
    fn spot(x: f32, y: f32) -> Vec<f32> {
        (0..SIDE * SIDE)
            .map(|p| {
                let (dx, dy) = ((p % SIDE) as f32 - x, (p / SIDE) as f32 - y);
                (-(dx * dx + dy * dy) / (2.0 * 1.5 * 1.5)).exp()
            })
            .collect()
    }

    fn centre_of_mass(img: &[f32]) -> (f32, f32) {
        let (mut m, mut sx, mut sy) = (0.0f64, 0.0f64, 0.0f64);
        for (p, &v) in img.iter().enumerate() {
            m += v as f64;
            sx += v as f64 * (p % SIDE) as f64;
            sy += v as f64 * (p / SIDE) as f64;
        }
        ((sx / m) as f32, (sy / m) as f32)
    }

    /// Root-mean-square distance of the ink from its centre of mass.
    fn spread(img: &[f32]) -> f32 {
        let (cx, cy) = centre_of_mass(img);
        let (mut m, mut s) = (0.0f32, 0.0f32);
        for (p, &v) in img.iter().enumerate() {
            let (dx, dy) = ((p % SIDE) as f32 - cx, (p / SIDE) as f32 - cy);
            m += v;
            s += v * (dx * dx + dy * dy);
        }
        (s / m).sqrt()
    }

    fn mean_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
    }

    fn bits(img: &[f32]) -> Vec<u32> {
        img.iter().map(|v| v.to_bits()).collect()
    }

    fn random_images(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n * SIDE * SIDE).map(|_| rng.gen::<f32>()).collect()
    }

    fn spec(s: &str) -> AugmentSpec {
        s.parse().unwrap()
    }

    #[test]
    fn identity_parameters_return_the_image_bit_for_bit() {
        let img = ring();
        let mut rng = StdRng::seed_from_u64(1);
        for s in ["none", "rotate=0,shift=0,zoom=0,elastic=0:4,thickness=0"] {
            let out = augment_image(&img, SIDE, &spec(s), &mut rng);
            assert_eq!(bits(&out), bits(&img), "{s}");
        }
        assert_eq!(bits(&Affine::IDENTITY.apply(&img, SIDE)), bits(&img));
        let mut batch = random_images(4, 2);
        let before = batch.clone();
        augment_batch(&mut batch, SIDE, &AugmentSpec::default(), 3);
        assert_eq!(bits(&batch), bits(&before));
        // Affine parts off, thickness on: the warp is skipped, only morphology acts.
        let t = augment_image(&img, SIDE, &spec("thickness=1"), &mut rng);
        assert_ne!(bits(&t), bits(&img));
    }

    #[test]
    fn a_translation_moves_the_centre_of_mass_by_the_shift() {
        let img = ring();
        let (cx, cy) = centre_of_mass(&img);
        for (sx, sy) in [(3.0, -2.0), (2.5, 1.25), (-4.3, 0.7)] {
            let a = Affine {
                shift_x: sx,
                shift_y: sy,
                ..Affine::IDENTITY
            };
            let (mx, my) = centre_of_mass(&a.apply(&img, SIDE));
            assert!(
                (mx - cx - sx).abs() < 0.5 && (my - cy - sy).abs() < 0.5,
                "shift ({sx}, {sy}) moved the centre by ({}, {})",
                mx - cx,
                my - cy
            );
        }
        // A whole-pixel shift moves pixels exactly.
        let a = Affine {
            shift_x: 3.0,
            shift_y: -2.0,
            ..Affine::IDENTITY
        };
        let out = a.apply(&img, SIDE);
        for y in 0..SIDE - 2 {
            for x in 3..SIDE {
                assert_eq!(out[y * SIDE + x], img[(y + 2) * SIDE + x - 3], "({x}, {y})");
            }
        }
    }

    #[test]
    fn random_shifts_stay_within_the_spec_and_vary() {
        let img = ring();
        let (cx, cy) = centre_of_mass(&img);
        let s = spec("shift=0.1:0.05");
        let mut moves = Vec::new();
        for seed in 0..40 {
            let out = augment_image(&img, SIDE, &s, &mut StdRng::seed_from_u64(seed));
            let (mx, my) = centre_of_mass(&out);
            let (dx, dy) = (mx - cx, my - cy);
            assert!(
                dx.abs() <= 2.8 + 0.1 && dy.abs() <= 1.4 + 0.1,
                "({dx}, {dy})"
            );
            moves.push((dx, dy));
        }
        let max_x = moves.iter().map(|m| m.0.abs()).fold(0.0, f32::max);
        let max_y = moves.iter().map(|m| m.1.abs()).fold(0.0, f32::max);
        assert!(max_x > 1.5 && max_y > 0.7, "shifts too small: {moves:?}");
    }

    #[test]
    fn four_quarter_turns_return_the_image() {
        let img = ring();
        let quarter = Affine {
            rotate_deg: 90.0,
            ..Affine::IDENTITY
        };
        let once = quarter.apply(&img, SIDE);
        assert!(
            mean_abs_diff(&once, &img) > 0.05,
            "a quarter turn changed nothing"
        );
        let mut out = img.clone();
        for _ in 0..4 {
            out = quarter.apply(&out, SIDE);
        }
        let mad = mean_abs_diff(&out, &img);
        assert!(mad < 1e-3, "mean absolute difference {mad}");
    }

    #[test]
    fn positive_angles_turn_counter_clockwise_and_zoom_scales_about_the_centre() {
        // A spot right of the centre goes above it (rows run down).
        let quarter = Affine {
            rotate_deg: 90.0,
            ..Affine::IDENTITY
        };
        let (x, y) = centre_of_mass(&quarter.apply(&spot(20.5, 13.5), SIDE));
        assert!(
            (x - 13.5).abs() < 0.1 && (y - 6.5).abs() < 0.1,
            "({x}, {y})"
        );

        let img = ring();
        for scale in [0.8f32, 1.25] {
            let a = Affine {
                scale,
                ..Affine::IDENTITY
            };
            let ratio = spread(&a.apply(&img, SIDE)) / spread(&img);
            assert!(
                (ratio - scale).abs() < 0.05,
                "scale {scale}: spread x{ratio}"
            );
        }
        let (x, y) = centre_of_mass(
            &Affine {
                scale: 2.0,
                ..Affine::IDENTITY
            }
            .apply(&spot(15.5, 13.5), SIDE),
        );
        assert!(
            (x - 17.5).abs() < 0.1 && (y - 13.5).abs() < 0.1,
            "({x}, {y})"
        );
    }

    #[test]
    fn every_preset_keeps_values_in_the_unit_range() {
        let mut images = random_images(8, 4);
        images.extend(vec![1.0; SIDE * SIDE]);
        images.extend(ring());
        for (name, _) in PRESETS {
            for seed in 0..3 {
                let mut batch = images.clone();
                augment_batch(&mut batch, SIDE, &spec(name), seed);
                assert!(
                    batch.iter().all(|v| (0.0..=1.0).contains(v)),
                    "{name}: {:?}",
                    batch.iter().find(|v| !(0.0..=1.0).contains(*v))
                );
                if name != "none" {
                    assert_ne!(batch, images, "{name} changed nothing");
                }
            }
        }
    }

    #[test]
    fn batches_depend_on_the_seed_but_not_the_thread_count() {
        let images: Vec<f32> = (0..16).flat_map(|_| ring()).collect();
        let s = AugmentSpec::preset("strong").unwrap();
        let run = |seed| {
            let mut b = images.clone();
            augment_batch(&mut b, SIDE, &s, seed);
            b
        };
        let a = run(7);
        assert_eq!(bits(&a), bits(&run(7)));
        assert_ne!(a, run(8));
        // Identical inputs, different outputs: each image has its own stream.
        assert_ne!(a[..SIDE * SIDE], a[SIDE * SIDE..2 * SIDE * SIDE]);
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert_eq!(
                bits(&pool.install(|| run(7))),
                bits(&a),
                "{threads} threads"
            );
        }
        // The documented derivation: image i from mix_seed(seed, i).
        let third = augment_image(
            &images[..SIDE * SIDE],
            SIDE,
            &s,
            &mut StdRng::seed_from_u64(mix_seed(7, 2)),
        );
        assert_eq!(bits(&third), bits(&a[2 * SIDE * SIDE..3 * SIDE * SIDE]));
    }

    #[test]
    fn elastic_distortion_is_off_at_alpha_zero_and_local_otherwise() {
        let img = ring();
        let mut rng = StdRng::seed_from_u64(5);
        assert_eq!(bits(&elastic(&img, SIDE, 0.0, 4.0, &mut rng)), bits(&img));
        // Absurd strengths send most samples off the image, without panicking.
        let wild = elastic(&img, SIDE, 1e30, 4.0, &mut rng);
        assert!(wild.iter().all(|v| v.is_finite()));
        let out = elastic(&img, SIDE, 34.0, 4.0, &mut rng);
        let mad = mean_abs_diff(&out, &img);
        assert!(mad > 0.01, "elastic 34:4 barely changed the image ({mad})");
        // Smooth displacements of a pixel or two: the ink stays where it was, roughly.
        let ink = |v: &[f32]| v.iter().sum::<f32>();
        assert!((ink(&out) / ink(&img) - 1.0).abs() < 0.2);
        let ((ax, ay), (bx, by)) = (centre_of_mass(&img), centre_of_mass(&out));
        assert!((ax - bx).abs() < 1.5 && (ay - by).abs() < 1.5);
    }

    #[test]
    fn elastic_fields_have_the_strength_and_smoothness_of_simards() {
        // Smoothing uniform [-1, 1] noise (variance 1/3) with a normalised kernel k leaves a
        // standard deviation of sqrt(1/3 * sum k^2), where the 2-D sum is the 1-D sum squared.
        let (alpha, sigma) = (34.0f32, 4.0f32);
        let k1: f32 = gaussian_kernel(sigma).iter().map(|w| w * w).sum();
        let expected = alpha * k1 / 3f32.sqrt();
        let mut rng = StdRng::seed_from_u64(11);
        let (mut sq, mut n, mut step) = (0.0f64, 0usize, 0.0f64);
        for _ in 0..100 {
            for f in displacement_field(SIDE, alpha, sigma, &mut rng) {
                // Far enough from the border that the zero padding barely matters.
                for y in 10..18 {
                    for x in 10..18 {
                        let v = f[y * SIDE + x] as f64;
                        sq += v * v;
                        step += (f[y * SIDE + x + 1] as f64 - v).abs();
                        n += 1;
                    }
                }
            }
        }
        let rms = (sq / n as f64).sqrt() as f32;
        assert!(
            (rms / expected - 1.0).abs() < 0.1,
            "rms {rms}, expected {expected}"
        );
        assert!(
            expected > 1.0 && expected < 2.0,
            "34:4 moves pixels by ~1.4 px"
        );
        // Neighbours move together: a smooth field, not noise.
        let mean_step = (step / n as f64) as f32;
        assert!(
            mean_step < 0.3 * rms,
            "neighbour difference {mean_step} vs rms {rms}"
        );
    }

    #[test]
    fn dilation_never_lowers_and_erosion_never_raises() {
        let mut images = vec![ring()];
        images.extend(random_images(3, 6).chunks(SIDE * SIDE).map(<[f32]>::to_vec));
        for img in &images {
            for radius in [0.3f32, 1.0, 1.5, 2.7] {
                let (d, e) = (dilate(img, SIDE, radius), erode(img, SIDE, radius));
                assert!(d.iter().zip(img).all(|(a, b)| a >= b), "dilate {radius}");
                assert!(e.iter().zip(img).all(|(a, b)| a <= b), "erode {radius}");
                assert_ne!(d, *img);
                assert_ne!(e, *img);
            }
            assert_eq!(bits(&dilate(img, SIDE, 0.0)), bits(img));
        }
        // Thicker radius, thicker stroke, and the effect grows smoothly with the radius.
        let ink = |v: Vec<f32>| v.iter().sum::<f32>();
        let r = ring();
        let (i0, i05, i1, i2) = (
            ink(r.clone()),
            ink(dilate(&r, SIDE, 0.5)),
            ink(dilate(&r, SIDE, 1.0)),
            ink(dilate(&r, SIDE, 2.0)),
        );
        assert!(i0 < i05 && i05 < i1 && i1 < i2, "{i0} {i05} {i1} {i2}");
        assert!(ink(erode(&r, SIDE, 1.0)) < i0);
    }

    #[test]
    fn random_thickness_either_dilates_or_erodes_with_equal_odds() {
        let img = ring();
        let s = spec("thickness=1");
        let (mut thicker, mut thinner) = (0, 0);
        for seed in 0..100 {
            let out = augment_image(&img, SIDE, &s, &mut StdRng::seed_from_u64(seed));
            let up = out.iter().zip(&img).all(|(a, b)| a >= b);
            let down = out.iter().zip(&img).all(|(a, b)| a <= b);
            assert!(up || down, "seed {seed} both raised and lowered pixels");
            thicker += (up && !down) as usize;
            thinner += (down && !up) as usize;
        }
        assert!((30..=70).contains(&thicker) && (30..=70).contains(&thinner));
    }

    #[test]
    fn specs_round_trip_through_text_and_json() {
        let keras = AugmentSpec::preset("keras").unwrap();
        assert_eq!(keras.to_string(), "rotate=10,shift=0.1,zoom=0.1");
        assert_eq!(
            keras,
            AugmentSpec {
                rotate: 10.0,
                shift_x: 0.1,
                shift_y: 0.1,
                zoom: 0.1,
                ..Default::default()
            }
        );
        assert_eq!(spec("elastic").to_string(), "elastic=34:4");
        assert_eq!(AugmentSpec::default().to_string(), "none");
        assert_eq!(
            spec(" keras , thickness=1, rotate=12.5").to_string(),
            "rotate=12.5,shift=0.1,zoom=0.1,thickness=1"
        );
        assert_eq!(
            spec("keras,elastic"),
            spec("rotate=10,shift=0.1,zoom=0.1,elastic=34:4")
        );
        for s in [
            "none",
            "keras",
            "elastic",
            "strong",
            "rotate=7.5",
            "shift=0.1:0.05",
            "shift=0:0.2",
            "zoom=0.333",
            "elastic=0:4",
            "elastic=8:1.5,thickness=0.5",
            "rotate=0.1,shift=0.3,zoom=0.01,elastic=34:4,thickness=1",
        ] {
            let a = spec(s);
            assert_eq!(spec(&a.to_string()), a, "{s} -> {a}");
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<AugmentSpec>(&json).unwrap(), a);
        }
        assert_eq!(
            serde_json::from_str::<AugmentSpec>(r#"{"rotate": 5}"#).unwrap(),
            spec("rotate=5")
        );
    }

    #[test]
    fn bad_specs_are_one_line_errors_naming_the_bad_part() {
        for (s, expect) in [
            ("rotate=10,foo=1", "unknown key `foo`"),
            ("keras,strongest", "unknown preset `strongest`"),
            ("rotate", "`rotate` needs a value"),
            ("zoom=abc", "`abc` is not a number"),
            ("elastic=34", "ALPHA:SIGMA"),
            ("shift=0.1:0.1:0.1", "FRACTION_X:FRACTION_Y"),
            ("rotate=1:2", "`rotate` takes one number"),
            ("keras,", "an empty item"),
            ("", "an empty item"),
            ("zoom=1.5", "zoom must be at least 0 and below 1, got 1.5"),
            ("rotate=-5", "rotate must be"),
            ("rotate=NaN", "rotate must be"),
            ("elastic=34:0", "elastic SIGMA must be above 0"),
            ("thickness=9", "thickness must be"),
            ("shift=0.1:2", "shift (y) must be"),
        ] {
            let e = s.parse::<AugmentSpec>().unwrap_err().to_string();
            assert!(e.contains(expect), "`{s}`: {e}");
            assert!(
                e.contains("valid keys: rotate=") && e.contains("presets:"),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn augmented_data_sets_keep_labels_and_record_provenance() {
        let images: Vec<f32> = (0..5).flat_map(|_| ring()).collect();
        let ds = Dataset::new("rings", images, vec![0, 1, 2, 3, 4], SIDE, SIDE, "h").unwrap();
        let aug = augment_dataset(&ds, &spec("keras"), 9).unwrap();
        assert_eq!((aug.labels.clone(), aug.len()), (ds.labels.clone(), 5));
        assert_eq!(
            aug.source_sha256,
            "h+augment(rotate=10,shift=0.1,zoom=0.1;seed=9)"
        );
        assert_ne!(aug.images, ds.images);
        let (orig, augd) = examples(&ds, &spec("keras"), 3, 9).unwrap();
        assert_eq!((orig.len(), augd.len()), (3 * SIDE * SIDE, 3 * SIDE * SIDE));
        assert_ne!(orig, augd);

        let wide = Dataset::new("wide", vec![0.0; 2 * 15 * 16], vec![1, 2], 15, 16, "w").unwrap();
        let e = augment_dataset(&wide, &spec("keras"), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("15x16") && e.contains("square"), "{e}");
        let bad = AugmentSpec {
            zoom: 2.0,
            ..Default::default()
        };
        assert!(examples(&ds, &bad, 2, 0).is_err());
    }

    #[test]
    fn floor_small_is_floor() {
        // Every sampling position bilinear can see: (-1, side) in steps finer than a pixel,
        // plus values next to whole numbers.
        let mut xs: Vec<f32> = (-1000..30_000).map(|k| k as f32 / 997.0).collect();
        xs.extend([-0.99, -1e-7, 0.0, 1e-7, 0.999_999_9, 1.0, 26.999_998, 27.0]);
        for x in xs {
            assert_eq!(floor_small(x), x.floor(), "{x}");
        }
    }

    /// The per-pixel definition `warp` must equal bit for bit.
    fn warp_by_pixel(
        img: &[f32],
        side: usize,
        affine: &Affine,
        field: Option<&[Vec<f32>; 2]>,
    ) -> Vec<f32> {
        let inv = affine.inverse(side);
        (0..side * side)
            .map(|p| {
                let (mut u, mut v) = ((p % side) as f32, (p / side) as f32);
                if let Some([dx, dy]) = field {
                    u += dx[p];
                    v += dy[p];
                }
                let (sx, sy) = inv.map(u, v);
                bilinear(img, side, sx, sy)
            })
            .collect()
    }

    #[test]
    fn warp_equals_the_per_pixel_definition_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(21);
        for side in [28, 16, 5, 9] {
            let img: Vec<f32> = (0..side * side).map(|_| rng.gen_range(0.0..1.0)).collect();
            for _ in 0..50 {
                let affine = Affine {
                    rotate_deg: rng.gen_range(-60.0..60.0),
                    shift_x: rng.gen_range(-8.0..8.0),
                    shift_y: rng.gen_range(-8.0..8.0),
                    scale: rng.gen_range(0.5..1.6),
                };
                let field = displacement_field(side, 20.0, 3.0, &mut rng);
                for f in [None, Some(&field)] {
                    let got = warp(&img, side, &affine, f);
                    let want = warp_by_pixel(&img, side, &affine, f);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "side {side}, {affine:?}, field {}", f.is_some());
                }
            }
        }
    }
}
