//! `mnist-paper`: MNIST's test digits as a user's scans or photos of them would look, made
//! by this crate, so that framing real-world images can be tested on labelled digits.
//!
//! Each digit is written in dark ink on paper: a canvas of 40–120 px per side (width and
//! height drawn apart, so most are not square), the digit's ink box 30–75% of the shorter
//! side and placed anywhere wholly inside it, paper of grey 0.6–0.95, ink taking 35–85% of
//! the paper's level away (the contrast), lighting with a gradient (up to ±25% across the
//! image) and a vignette (up to 40% darker at the far corner from an off-centre point),
//! noise (per pixel, standard deviation 0.5–4% of full scale), up to two specks of dirt of
//! 1–2 px, and JPEG compression at quality 40–95 (encoded and decoded by the `image`
//! crate's codec). Every choice is drawn from a generator seeded by the seed and the
//! image's index alone, so the images are the same bytes whatever the thread count; noise
//! is a sum of uniforms and the lighting a polynomial, with no library maths function
//! whose last bit could differ between machines. The JPEG round trip is exact arithmetic
//! too: the `image` crate's encoder uses an integer DCT and IEEE division for quantising,
//! and its decoder (`zune-jpeg`) documents its vector IDCT as bit-identical to its scalar
//! one, so a machine with AVX2 decodes the same bytes as one without.
//!
//! The set has MNIST test's 10,000 images and labels, in order. Its `source_sha256` is
//! MNIST test's followed by `+paper(seed=S)`.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder, ImageFormat};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;

use super::dataset::Dataset;
use super::frame::{ink_box, resize_image, BOX, FRAME};
use super::raw::{RawImage, RawSet};
use crate::error::{Error, Result};

/// The seed of the `mnist-paper` domain.
pub const PAPER_SEED: u64 = 0;
/// Side lengths of the canvas, in pixels (inclusive).
pub const CANVAS_SIDES: (usize, usize) = (40, 120);

/// A generator for image `index` of a set drawn with `seed`: a SplitMix64 step mixes the
/// two, so neighbouring indices get unrelated streams.
fn rng_for(seed: u64, index: usize) -> StdRng {
    let mut z = seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

/// Noise of mean 0 and standard deviation `sd`: the sum of four uniforms, rescaled.
fn noise(rng: &mut StdRng, sd: f32) -> f32 {
    let s: f32 = (0..4).map(|_| rng.gen::<f32>()).sum::<f32>() - 2.0;
    // Four uniforms on [0, 1) have variance 4/12; √3 brings it to 1.
    s * 1.732_050_8 * sd
}

/// One 28×28 MNIST digit (ink bright) rendered onto paper (see the module documentation), as
/// the JPEG file the rendering passes through: its width, height and bytes.
pub fn render_jpeg(digit: &[f32], seed: u64, index: usize) -> Result<(usize, usize, Vec<u8>)> {
    let mut rng = rng_for(seed, index);
    let (lo, hi) = CANVAS_SIDES;
    let (w, h) = (rng.gen_range(lo..=hi), rng.gen_range(lo..=hi));
    // The digit's ink box is about BOX px in MNIST's frame: scale the frame so it becomes
    // the drawn share of the shorter side.
    let share = rng.gen_range(0.30..0.75f32);
    let side =
        ((FRAME as f32 * share * w.min(h) as f32 / BOX as f32).round() as usize).clamp(8, w.min(h));
    let scaled = resize_image(digit, FRAME, FRAME, side, side);
    // Keep the whole digit on the canvas: place its ink box, not its frame.
    let (bx0, by0, bx1, by1) = ink_box(&scaled, side).unwrap_or((0, 0, side, side));
    let (bw, bh) = (bx1 - bx0, by1 - by0);
    let (ox, oy) = (rng.gen_range(0..=w - bw), rng.gen_range(0..=h - bh));
    let paper = rng.gen_range(0.60..0.95f32);
    let contrast = rng.gen_range(0.35..0.85f32);
    let (gx, gy) = (rng.gen_range(-0.25..0.25f32), rng.gen_range(-0.25..0.25f32));
    let (vx, vy) = (rng.gen_range(-0.2..0.2f32), rng.gen_range(-0.2..0.2f32));
    let vignette = rng.gen_range(0.0..0.4f32);
    let sd = rng.gen_range(0.005..0.04f32);
    let quality = rng.gen_range(40..=95u8);
    let mut ink = vec![0.0f32; w * h];
    for y in 0..bh {
        for x in 0..bw {
            ink[(oy + y) * w + ox + x] = scaled[(by0 + y) * side + bx0 + x];
        }
    }
    // Specks of dirt, as dark as the ink.
    for _ in 0..rng.gen_range(0..=2usize) {
        let (sx, sy, size) = (
            rng.gen_range(0..w),
            rng.gen_range(0..h),
            rng.gen_range(1..=2usize),
        );
        for y in sy..(sy + size).min(h) {
            for x in sx..(sx + size).min(w) {
                ink[y * w + x] = 1.0;
            }
        }
    }
    let mut bytes = Vec::with_capacity(w * h);
    for (i, &k) in ink.iter().enumerate() {
        let u = (i % w) as f32 / (w - 1) as f32 - 0.5;
        let v = (i / w) as f32 / (h - 1) as f32 - 0.5;
        let r2 = (u - vx) * (u - vx) + (v - vy) * (v - vy);
        // r2 is at most 2 × 0.7², so the vignette darkens by at most `vignette`.
        let light = 1.0 + gx * u + gy * v - vignette * r2 / 0.98;
        let grey = light * paper * (1.0 - contrast * k) + noise(&mut rng, sd);
        bytes.push((grey.clamp(0.0, 1.0) * 255.0).round() as u8);
    }
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, quality)
        .write_image(&bytes, w as u32, h as u32, ExtendedColorType::L8)
        .map_err(|e| {
            Error::invalid(format!(
                "mnist-paper image {index}: JPEG encoding failed ({e})"
            ))
        })?;
    Ok((w, h, jpeg))
}

/// Renders one 28×28 MNIST digit (ink bright) onto paper (see the module documentation):
/// the decoded JPEG of [`render_jpeg`].
pub fn render(digit: &[f32], seed: u64, index: usize) -> Result<RawImage> {
    let (w, h, jpeg) = render_jpeg(digit, seed, index)?;
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

/// Every image of `mnist` (28×28, ink bright) rendered on paper with `seed`, in parallel.
pub fn render_set(mnist: &Dataset, seed: u64, name: &str) -> Result<RawSet> {
    if (mnist.width, mnist.height) != (FRAME, FRAME) {
        return Err(Error::invalid(format!(
            "data set `{}` is {}x{}; paper renderings start from MNIST's 28x28 digits",
            mnist.name, mnist.width, mnist.height
        )));
    }
    let images = (0..mnist.len())
        .into_par_iter()
        .map(|i| render(mnist.image(i), seed, i))
        .collect::<Result<Vec<_>>>()?;
    Ok(RawSet {
        name: name.to_string(),
        images,
        labels: mnist.labels.clone(),
        source_sha256: format!("{}+paper(seed={seed})", mnist.source_sha256),
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

/// The example photos of `notebooks/own-digits/`: `mnist-paper` images (seed
/// [`PAPER_SEED`]) of the first MNIST test digit of each class, by MNIST test index, and
/// how each is stored.
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
            let (w, h, jpeg) = render_jpeg(mnist_test.image(index), PAPER_SEED, index)?;
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
    use crate::data::frame::Framing;

    /// A 28×28 "1": a vertical bar with grey edges, centred as MNIST centres digits.
    fn one() -> Vec<f32> {
        let mut d = vec![0.0f32; 784];
        for y in 4..24 {
            d[y * 28 + 13] = 1.0;
            d[y * 28 + 14] = 1.0;
            d[y * 28 + 12] = 0.4;
            d[y * 28 + 15] = 0.4;
        }
        d
    }

    #[test]
    fn renderings_are_deterministic_and_vary_in_size() {
        let digit = one();
        let a: Vec<RawImage> = (0..12).map(|i| render(&digit, 7, i).unwrap()).collect();
        let b: Vec<RawImage> = (0..12)
            .rev()
            .map(|i| render(&digit, 7, i).unwrap())
            .collect();
        assert!(a.iter().eq(b.iter().rev()), "the same whatever the order");
        assert_ne!(render(&digit, 8, 0).unwrap(), a[0]);
        let sizes: std::collections::BTreeSet<_> = a.iter().map(|r| (r.width, r.height)).collect();
        assert!(sizes.len() > 6, "{sizes:?}");
        assert!(a.iter().any(|r| r.width != r.height));
        for r in &a {
            assert!((40..=120).contains(&r.width) && (40..=120).contains(&r.height));
            // Paper: most pixels are light.
            let light = r.pixels.iter().filter(|&&v| v > 0.3).count();
            assert!(light * 2 > r.pixels.len());
        }
    }

    #[test]
    fn framing_recovers_the_digit() {
        let digit = one();
        for i in 0..8 {
            let raw = render(&digit, 1, i).unwrap();
            let framed = raw.frame(Framing::MnistFrame).unwrap();
            // The bar's ink falls in the middle columns of the frame, as in the original.
            let middle: f32 = (0..28)
                .flat_map(|y| (12..16).map(move |x| (x, y)))
                .map(|(x, y)| framed[y * 28 + x])
                .sum();
            let total: f32 = framed.iter().sum();
            assert!(middle > 0.8 * total, "image {i}: {middle} of {total}");
            let resized = raw.frame(Framing::Resize).unwrap();
            assert_ne!(resized, framed);
        }
    }

    #[test]
    fn the_same_bytes_whatever_the_thread_count() {
        let mnist = crate::data::synthetic::blocks(24, 3, false);
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| render_set(&mnist, 5, "p").unwrap())
        };
        let one = on(1);
        assert_eq!(one, on(3));
        assert_eq!(one.labels, mnist.labels);
        assert!(one.source_sha256.ends_with("+paper(seed=5)"));
    }
}
