//! Digit images as files and renderings have them: any size, either polarity, grey levels
//! as captured. A [`RawSet`] holds them with their labels; framing ([`RawSet::frame`]) turns
//! it into the fixed 28×28 [`Dataset`] the models take, deciding each image's polarity
//! from the image itself.
//!
//! Files are read with the `image` crate (PNG and JPEG, the two codecs this crate enables).
//! Pixels become grey levels in [0, 1]: RGB by Rec. 601 luma (0.299 R + 0.587 G + 0.114 B),
//! any alpha composited over white paper, 16-bit and palette images reduced to 8-bit first.
//! An image above [`MAX_PIXELS`] is refused from its header, before anything is decoded,
//! so a small file claiming a huge size (a decompression bomb) costs nothing; the decoder
//! also runs under the `image` crate's allocation limit as a second guard.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageReader, Limits};
use rayon::prelude::*;

use super::dataset::Dataset;
use super::frame::{frame_any, recipe, Framing, FRAME};
use super::paper::{polarity, Polarity};
use crate::error::{Error, Result};

/// Largest image read, in pixels (40 megapixels: more than a phone photo, far less than
/// what a crafted file can claim).
pub const MAX_PIXELS: u64 = 40_000_000;

/// File name extensions read as images (case does not matter).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// One grey image, row-major, values in [0, 1] as captured (ink may be dark or bright).
#[derive(Debug, Clone, PartialEq)]
pub struct RawImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

impl RawImage {
    /// Checks that the pixels fill the size and lie in [0, 1].
    pub fn new(width: usize, height: usize, pixels: Vec<f32>) -> Result<RawImage> {
        if width.checked_mul(height) != Some(pixels.len()) || pixels.is_empty() {
            return Err(Error::invalid(format!(
                "a {width}x{height} image needs {} pixels but has {}; pass one value per pixel",
                width.saturating_mul(height),
                pixels.len()
            )));
        }
        if let Some(v) = pixels
            .iter()
            .find(|v| !(v.is_finite() && (0.0..=1.0).contains(*v)))
        {
            return Err(Error::invalid(format!(
                "pixel value {v} is outside [0, 1]; scale grey levels to [0, 1]"
            )));
        }
        Ok(RawImage {
            width,
            height,
            pixels,
        })
    }

    /// In the 28×28 frame, polarity decided from the image; `None` when `mnist-frame` finds
    /// no ink (a blank image).
    pub fn frame(&self, framing: Framing) -> Option<Vec<f32>> {
        frame_any(&self.pixels, self.width, self.height, None, framing)
    }

    /// The image with its ink made bright (inverted, `1 − v`, when the ink is dark).
    pub fn ink_bright(&self) -> Vec<f32> {
        match polarity(&self.pixels, self.width, self.height) {
            Polarity::Bright => self.pixels.clone(),
            Polarity::Dark => self.pixels.iter().map(|v| 1.0 - v).collect(),
        }
    }
}

/// Labelled images of any sizes (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct RawSet {
    pub name: String,
    pub images: Vec<RawImage>,
    pub labels: Vec<u8>,
    /// As for [`Dataset`]; framing appends the framing's suffix.
    pub source_sha256: String,
}

impl RawSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The set in MNIST's 28×28 frame, images processed in parallel, each image's polarity
    /// decided from it. A blank image (no ink found) stays in as an all-zero frame, so the
    /// set keeps its size and its labels line up. Named and traced as
    /// [`to_mnist_frame`](super::frame::to_mnist_frame) names them.
    pub fn frame(&self, framing: Framing) -> Result<Dataset> {
        let framed: Vec<Vec<f32>> = self
            .images
            .par_iter()
            .map(|img| {
                img.frame(framing)
                    .unwrap_or_else(|| vec![0.0; FRAME * FRAME])
            })
            .collect();
        Dataset::new(
            format!("{}[{framing}]", self.name),
            framed.concat(),
            self.labels.clone(),
            FRAME,
            FRAME,
            format!("{}{}", self.source_sha256, recipe(framing)),
        )
    }

    /// The set at its own size with the ink made bright, when every image has one size;
    /// otherwise an error saying to frame it.
    pub fn native(&self) -> Result<Dataset> {
        let Some(first) = self.images.first() else {
            return Err(Error::invalid(format!(
                "data set `{}` is empty; add images",
                self.name
            )));
        };
        let (w, h) = (first.width, first.height);
        if let Some(other) = self.images.iter().find(|i| (i.width, i.height) != (w, h)) {
            return Err(Error::invalid(format!(
                "data set `{}` mixes image sizes ({w}x{h}, {}x{}); load it framed (`--framing resize` or `--framing mnist-frame`, or `load_domain`)",
                self.name, other.width, other.height
            )));
        }
        let images: Vec<Vec<f32>> = self.images.par_iter().map(RawImage::ink_bright).collect();
        Dataset::new(
            self.name.clone(),
            images.concat(),
            self.labels.clone(),
            w,
            h,
            self.source_sha256.clone(),
        )
    }
}

/// Whether `path` names a file this crate reads as an image (by extension; hidden files
/// are not).
pub fn is_image_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    let known = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|k| e.eq_ignore_ascii_case(k)));
    known && !hidden && path.is_file()
}

/// Decodes an image file's bytes into grey levels (see the module documentation); `path`
/// only names the file in errors.
pub fn decode_image(path: &Path, bytes: &[u8]) -> Result<RawImage> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::format(
            path,
            format!("cannot read it as an image ({e}); re-save it as PNG or JPEG, or remove it"),
        )
    };
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| unreadable(&e))
    };
    let (w, h) = reader()?.into_dimensions().map_err(|e| unreadable(&e))?;
    let pixels = w as u64 * h as u64;
    if pixels > MAX_PIXELS {
        return Err(Error::format(
            path,
            format!(
                "image is {w}x{h} ({:.0} megapixels), above the {} megapixel limit; shrink it first",
                pixels as f64 / 1e6,
                MAX_PIXELS / 1_000_000
            ),
        ));
    }
    if pixels == 0 {
        return Err(Error::format(path, "image has no pixels; remove it"));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    // Room for the largest decoded layout, 16-bit RGBA, and nothing more.
    limits.max_alloc = Some(MAX_PIXELS * 8);
    let mut r = reader()?;
    r.limits(limits);
    let img = r.decode().map_err(|e| unreadable(&e))?;
    Ok(grey(&img))
}

/// Reads and decodes one image file.
pub fn read_image(path: &Path) -> Result<RawImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_image(path, &bytes)
}

fn grey(img: &DynamicImage) -> RawImage {
    let f = |b: u8| b as f32 / 255.0;
    let luma = |r: u8, g: u8, b: u8| 0.299 * f(r) + 0.587 * f(g) + 0.114 * f(b);
    let over_white = |v: f32, a: u8| (v * f(a) + (1.0 - f(a))).clamp(0.0, 1.0);
    let (width, height) = (img.width() as usize, img.height() as usize);
    let pixels: Vec<f32> = match img {
        DynamicImage::ImageLuma8(b) => b.as_raw().iter().map(|&g| f(g)).collect(),
        DynamicImage::ImageLumaA8(b) => b
            .as_raw()
            .chunks_exact(2)
            .map(|p| over_white(f(p[0]), p[1]))
            .collect(),
        DynamicImage::ImageRgb8(b) => b
            .as_raw()
            .chunks_exact(3)
            .map(|p| luma(p[0], p[1], p[2]).clamp(0.0, 1.0))
            .collect(),
        other => other
            .to_rgba8()
            .as_raw()
            .chunks_exact(4)
            .map(|p| over_white(luma(p[0], p[1], p[2]), p[3]))
            .collect(),
    };
    RawImage {
        width,
        height,
        pixels,
    }
}

/// The test PNGs the command's tests use too.
#[cfg(test)]
#[path = "../../tests/common/png.rs"]
mod test_png;

#[cfg(test)]
mod tests {
    use super::test_png::claimed_png;
    use super::*;
    use image::{ExtendedColorType, ImageEncoder};

    fn png(w: u32, h: u32, color: ExtendedColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(data, w, h, color)
            .unwrap();
        out
    }

    #[test]
    fn decodes_colour_types_to_grey() {
        let p = Path::new("x.png");
        let g = decode_image(p, &png(2, 1, ExtendedColorType::L8, &[0, 255])).unwrap();
        assert_eq!(g.pixels, vec![0.0, 1.0]);
        let rgb = decode_image(p, &png(1, 1, ExtendedColorType::Rgb8, &[255, 0, 0])).unwrap();
        assert!((rgb.pixels[0] - 0.299).abs() < 1e-6);
        // Fully transparent black is white paper.
        let rgba = decode_image(p, &png(1, 1, ExtendedColorType::Rgba8, &[0, 0, 0, 0])).unwrap();
        assert_eq!(rgba.pixels, vec![1.0]);
        let ga = decode_image(p, &png(1, 1, ExtendedColorType::La8, &[0, 255])).unwrap();
        assert_eq!(ga.pixels, vec![0.0]);
        let e = decode_image(p, b"not an image").unwrap_err().to_string();
        assert!(
            e.contains("cannot read it as an image") && !e.contains('\n'),
            "{e}"
        );
    }

    #[test]
    fn huge_images_are_refused_from_the_header() {
        let e = decode_image(Path::new("bomb.png"), &claimed_png(100_000, 100_000))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("10000 megapixels") && e.contains("40 megapixel limit"),
            "{e}"
        );
        // Under the limit, the same kind of file fails only for its missing data.
        let e = decode_image(Path::new("cut.png"), &claimed_png(100, 100))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read it as an image"), "{e}");
    }

    #[test]
    fn mixed_sizes_frame_but_have_no_native_size() {
        let dot = |w: usize, h: usize| {
            let mut p = vec![0.9f32; w * h];
            for y in h / 3..h / 2 {
                for x in w / 3..w / 2 {
                    p[y * w + x] = 0.1;
                }
            }
            RawImage::new(w, h, p).unwrap()
        };
        let set = RawSet {
            name: "mine".into(),
            images: vec![
                dot(40, 30),
                dot(20, 60),
                RawImage::new(4, 4, vec![0.5; 16]).unwrap(),
            ],
            labels: vec![1, 2, 3],
            source_sha256: "h".into(),
        };
        let d = set.frame(Framing::MnistFrame).unwrap();
        assert_eq!((d.len(), d.width, d.height), (3, 28, 28));
        assert_eq!(d.name, "mine[mnist-frame]");
        assert!(d.image(0).iter().any(|&v| v > 0.5), "dark ink made bright");
        assert!(d.image(2).iter().all(|&v| v == 0.0), "blank stays blank");
        let e = set.native().unwrap_err().to_string();
        assert!(e.contains("mixes image sizes"), "{e}");
        assert!(RawImage::new(2, 2, vec![0.0; 3]).is_err());
        assert!(RawImage::new(1, 1, vec![1.5]).is_err());
    }
}
