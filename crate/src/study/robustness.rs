//! Controlled changes to MNIST test digits: the measurements behind "why the CNN transfers
//! better". Each family moves one thing USPS also changes (where the digit sits, its slant, its
//! size, its stroke width) by a known amount, so a model's accuracy can be read against it.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::augment::{dilate, erode, Affine};
use crate::data::Dataset;
use crate::engine::mix_seed;
use crate::Result;

/// One controlled change, applied to every image of a set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Perturbation {
    /// Move the digit this many pixels, each image in its own random direction.
    Shift(f32),
    /// Turn the digit this many degrees, each image clockwise or anticlockwise at random.
    Rotate(f32),
    /// Scale about the centre (below 1 shrinks).
    Scale(f32),
    /// Stroke width: dilate by this radius in pixels when positive, erode when negative.
    Thickness(f32),
}

/// The families and their levels, from no change to a large one.
pub const FAMILIES: &[(&str, &[f32])] = &[
    ("shift", &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ("rotate", &[0.0, 7.5, 15.0, 22.5, 30.0, 37.5, 45.0]),
    ("scale", &[0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4]),
    ("thickness", &[-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]),
];

/// A level of [`FAMILIES`] as the tables hold it (see [`Perturbation::level_value`]).
pub fn level_value(level: f32) -> f64 {
    (level as f64 * 1e4).round() / 1e4
}

impl Perturbation {
    /// The perturbation of family `family` at `level` (a name from [`FAMILIES`]).
    pub fn of(family: &str, level: f32) -> Option<Perturbation> {
        match family {
            "shift" => Some(Perturbation::Shift(level)),
            "rotate" => Some(Perturbation::Rotate(level)),
            "scale" => Some(Perturbation::Scale(level)),
            "thickness" => Some(Perturbation::Thickness(level)),
            _ => None,
        }
    }

    pub fn family(&self) -> &'static str {
        match self {
            Perturbation::Shift(_) => "shift",
            Perturbation::Rotate(_) => "rotate",
            Perturbation::Scale(_) => "scale",
            Perturbation::Thickness(_) => "thickness",
        }
    }

    /// The level as the tables hold it: the `f32` read back as the decimal it was written as
    /// (0.7, not 0.699999988), so tables, figures and CSV files agree on it.
    pub fn level_value(&self) -> f64 {
        level_value(self.level())
    }

    pub fn level(&self) -> f32 {
        match *self {
            Perturbation::Shift(v)
            | Perturbation::Rotate(v)
            | Perturbation::Scale(v)
            | Perturbation::Thickness(v) => v,
        }
    }

    /// `shift=3`, `rotate=22.5`: the tag in data set names.
    pub fn tag(&self) -> String {
        format!("{}={}", self.family(), self.level())
    }

    /// Image `index` of a set changed by this perturbation. The random direction (or sign)
    /// depends only on `seed` and `index`, so every model sees the same changed images.
    pub fn apply(&self, img: &[f32], side: usize, seed: u64, index: usize) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(mix_seed(seed, index as u64));
        let affine = match *self {
            Perturbation::Shift(px) => {
                let angle: f32 = rng.gen_range(0.0..std::f32::consts::TAU);
                Affine {
                    shift_x: px * angle.cos(),
                    shift_y: px * angle.sin(),
                    ..Affine::IDENTITY
                }
            }
            Perturbation::Rotate(deg) => {
                let sign = if rng.gen::<bool>() { 1.0 } else { -1.0 };
                Affine {
                    rotate_deg: sign * deg,
                    ..Affine::IDENTITY
                }
            }
            Perturbation::Scale(s) => Affine {
                scale: s,
                ..Affine::IDENTITY
            },
            Perturbation::Thickness(r) if r > 0.0 => return dilate(img, side, r),
            Perturbation::Thickness(r) if r < 0.0 => return erode(img, side, -r),
            Perturbation::Thickness(_) => return img.to_vec(),
        };
        // Bilinear resampling can overshoot [0, 1] by rounding only; keep the data set valid.
        let mut out = affine.apply(img, side);
        for v in &mut out {
            *v = v.clamp(0.0, 1.0);
        }
        out
    }

    /// Every image of `ds` (square) changed; named `<name>[<tag>]`.
    pub fn apply_to(&self, ds: &Dataset, seed: u64) -> Result<Dataset> {
        let side = ds.width;
        let mut images = Vec::with_capacity(ds.images.len());
        for i in 0..ds.len() {
            images.extend(self.apply(ds.image(i), side, seed, i));
        }
        Dataset::new(
            format!("{}[{}]", ds.name, self.tag()),
            images,
            ds.labels.clone(),
            ds.width,
            ds.height,
            format!("{}+perturb({},seed={seed})", ds.source_sha256, self.tag()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::centre_of_mass;

    fn blob() -> Vec<f32> {
        let mut img = vec![0.0f32; 28 * 28];
        for y in 10..18 {
            for x in 12..16 {
                img[y * 28 + x] = 1.0;
            }
        }
        img
    }

    #[test]
    fn no_change_at_level_zero() {
        let img = blob();
        for p in [
            Perturbation::Shift(0.0),
            Perturbation::Rotate(0.0),
            Perturbation::Scale(1.0),
            Perturbation::Thickness(0.0),
        ] {
            assert_eq!(p.apply(&img, 28, 3, 5), img, "{p:?}");
        }
    }

    #[test]
    fn shift_moves_the_centre_of_mass_by_its_distance() {
        let img = blob();
        let (x0, y0) = centre_of_mass(&img, 28).unwrap();
        for i in 0..20 {
            let moved = Perturbation::Shift(4.0).apply(&img, 28, 1, i);
            let (x, y) = centre_of_mass(&moved, 28).unwrap();
            let d = ((x - x0).powi(2) + (y - y0).powi(2)).sqrt();
            assert!((d - 4.0).abs() < 0.2, "image {i}: moved {d}");
        }
        // Directions differ between images but not between calls.
        let a = Perturbation::Shift(4.0).apply(&img, 28, 1, 0);
        assert_eq!(a, Perturbation::Shift(4.0).apply(&img, 28, 1, 0));
        assert_ne!(a, Perturbation::Shift(4.0).apply(&img, 28, 1, 1));
    }

    #[test]
    fn scale_and_thickness_change_the_ink_the_right_way() {
        let img = blob();
        let ink = |v: &[f32]| v.iter().sum::<f32>();
        let base = ink(&img);
        assert!(ink(&Perturbation::Scale(1.4).apply(&img, 28, 0, 0)) > 1.5 * base);
        assert!(ink(&Perturbation::Scale(0.6).apply(&img, 28, 0, 0)) < 0.6 * base);
        assert!(ink(&Perturbation::Thickness(1.0).apply(&img, 28, 0, 0)) > 1.5 * base);
        assert!(ink(&Perturbation::Thickness(-1.0).apply(&img, 28, 0, 0)) < 0.5 * base);
        // Rotation keeps the ink (the blob stays inside the frame).
        let turned = Perturbation::Rotate(45.0).apply(&img, 28, 0, 0);
        assert!((ink(&turned) - base).abs() < 0.05 * base);
    }

    #[test]
    fn a_changed_set_keeps_labels_and_names_its_change() {
        let ds = Dataset::new("d", [blob(), blob()].concat(), vec![3, 7], 28, 28, "h").unwrap();
        let out = Perturbation::Rotate(30.0).apply_to(&ds, 9).unwrap();
        assert_eq!(out.labels, ds.labels);
        assert_eq!(out.name, "d[rotate=30]");
        assert_eq!(out.source_sha256, "h+perturb(rotate=30,seed=9)");
        assert!(FAMILIES
            .iter()
            .all(|(f, levels)| levels.iter().all(|&l| Perturbation::of(f, l).is_some())));
    }
}
