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

mod elastic;
mod geometry;
mod morphology;
mod spec;

use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;

use crate::data::Dataset;
use crate::engine::mix_seed;
use crate::{Error, Result};

use elastic::displacement_field;
pub use elastic::elastic;
use geometry::warp;
pub use geometry::Affine;
pub use morphology::{dilate, erode};
pub use spec::{AugmentSpec, PRESETS};

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
    use super::elastic::gaussian_kernel;
    use super::geometry::{bilinear, floor_small};
    use super::*;
    use crate::data::pixels::mean_abs_difference;

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
            mean_abs_difference(&once, &img) > 0.05,
            "a quarter turn changed nothing"
        );
        let mut out = img.clone();
        for _ in 0..4 {
            out = quarter.apply(&out, SIDE);
        }
        let mad = mean_abs_difference(&out, &img);
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
            assert_eq!(
                bits(&crate::runtime::with_threads(threads, || run(7))),
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
        let mad = mean_abs_difference(&out, &img);
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
