//! What to augment: [`AugmentSpec`] (the largest change of each kind), its text form and the
//! named presets.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::geometry::Affine;

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

pub(super) const VALID: &str = "valid keys: rotate=DEGREES, shift=FRACTION[:FRACTION_Y], zoom=FRACTION, elastic=ALPHA:SIGMA, thickness=RADIUS; presets: none, keras, elastic, strong";

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
    pub(super) fn draw_affine(&self, side: usize, rng: &mut impl Rng) -> Affine {
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

pub(super) const KEYS: [&str; 5] = ["rotate", "shift", "zoom", "elastic", "thickness"];

/// Applies one `key=value` item; the error says what is wrong with it.
pub(super) fn set_key(
    spec: &mut AugmentSpec,
    key: &str,
    value: &str,
) -> std::result::Result<(), String> {
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
