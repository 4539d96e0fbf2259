//! User data sets as a folder of PNG files: `DIR/0/*.png` … `DIR/9/*.png`, the folder
//! name being the label. Digit folders may be missing or empty, but at least one image is
//! needed, and every image must have the same size.
//!
//! Pixels become grey levels in [0, 1]: RGB by Rec. 601 luma (0.299 R + 0.587 G +
//! 0.114 B), any alpha composited over white paper, 16-bit and palette images reduced to
//! 8-bit grey first.
//!
//! Ink polarity is decided once for the whole folder: scans of paper have dark ink on a
//! light background, so the grey levels are inverted (1 - v) to make ink bright as in
//! MNIST, *unless* the mean grey level over all images is below 0.5, which means the images
//! already show light ink on a dark background and are kept as they are.
//!
//! `source_sha256` is the sha256 of the lines `D/FILE:SHA256\n` (one per image, in load
//! order: by digit, then by file name), where SHA256 is the PNG file's hash; so moving a
//! file to another digit folder changes it too.

use std::path::{Path, PathBuf};

use super::checksums::{read_bytes, sha256_hex};
use super::dataset::Dataset;
use crate::error::{Error, Result};

#[derive(Debug)]
struct Grey {
    width: usize,
    height: usize,
    pixels: Vec<f32>,
}

/// PNG files of one digit folder, sorted by name; hidden files and other extensions are
/// ignored.
fn png_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_png = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if is_png && !name.starts_with('.') && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Grey> {
    let bad = |e: png::DecodingError| {
        Error::format(
            path,
            format!("cannot decode PNG ({e}); re-save it as a PNG image or remove it"),
        )
    };
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(bad)?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let (width, height) = (info.width as usize, info.height as usize);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(Error::format(
                path,
                "palette PNG was not expanded; re-save it as greyscale or RGB",
            ))
        }
    };
    let data = buf.get(..width * height * channels).ok_or_else(|| {
        Error::format(
            path,
            "PNG decoder returned fewer bytes than the image size; re-save the file",
        )
    })?;
    let pixels = data
        .chunks_exact(channels)
        .map(|p| {
            let f = |b: u8| b as f32 / 255.0;
            let (grey, alpha) = match *p {
                [g] => (f(g), 1.0),
                [g, a] => (f(g), f(a)),
                [r, g, b] => (0.299 * f(r) + 0.587 * f(g) + 0.114 * f(b), 1.0),
                [r, g, b, a] => (0.299 * f(r) + 0.587 * f(g) + 0.114 * f(b), f(a)),
                _ => (1.0, 1.0),
            };
            (grey * alpha + (1.0 - alpha)).clamp(0.0, 1.0)
        })
        .collect();
    Ok(Grey {
        width,
        height,
        pixels,
    })
}

/// Loads `DIR/0..9/*.png` as a data set named `name` (see the module documentation for
/// the conventions).
pub fn load_png_dir(dir: &Path, name: &str) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(Error::Missing {
            path: dir.to_path_buf(),
            hint: "give a folder holding subfolders 0/ ... 9/ of PNG images".to_string(),
        });
    }
    let mut images: Vec<f32> = Vec::new();
    let mut labels = Vec::new();
    let mut size: Option<(usize, usize, PathBuf)> = None;
    let mut manifest = String::new();
    for digit in 0..10u8 {
        let sub = dir.join(digit.to_string());
        if !sub.is_dir() {
            continue;
        }
        for path in png_files(&sub)? {
            let bytes = read_bytes(&path, "the file vanished while reading; retry")?;
            let grey = decode(&path, &bytes)?;
            match &size {
                None => size = Some((grey.width, grey.height, path.clone())),
                Some((w, h, first)) if (*w, *h) != (grey.width, grey.height) => {
                    return Err(Error::format(
                        &path,
                        format!(
                            "image is {}x{} but {} is {w}x{h}; all images in the folder must have one size, so resize them alike",
                            grey.width,
                            grey.height,
                            first.display()
                        ),
                    ));
                }
                Some(_) => {}
            }
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            manifest.push_str(&format!("{digit}/{file}:{}\n", sha256_hex(&bytes)));
            images.extend_from_slice(&grey.pixels);
            labels.push(digit);
        }
    }
    let Some((width, height, _)) = size else {
        return Err(Error::invalid(format!(
            "{}: no PNG images in subfolders 0/ ... 9/; put each digit's images in the folder named after it",
            dir.display()
        )));
    };
    let mean = images.iter().map(|&v| v as f64).sum::<f64>() / images.len() as f64;
    if mean >= 0.5 {
        images.iter_mut().for_each(|v| *v = 1.0 - *v);
    }
    Dataset::new(
        name,
        images,
        labels,
        width,
        height,
        sha256_hex(manifest.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;

    /// Encodes 8-bit pixels as a PNG of the given colour type.
    fn encode(w: u32, h: u32, color: png::ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(color);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().unwrap();
            writer.write_image_data(data).unwrap();
        }
        out
    }

    fn temp_dir(tag: &str) -> TempDir {
        TempDir::new(&format!("png-{tag}"))
    }

    #[test]
    fn decodes_colour_types_to_grey() {
        let p = Path::new("x.png");
        let g = decode(p, &encode(2, 1, png::ColorType::Grayscale, &[0, 255])).unwrap();
        assert_eq!(g.pixels, vec![0.0, 1.0]);
        let rgb = decode(p, &encode(1, 1, png::ColorType::Rgb, &[255, 0, 0])).unwrap();
        assert!((rgb.pixels[0] - 0.299).abs() < 1e-6);
        // Fully transparent black is white paper.
        let rgba = decode(p, &encode(1, 1, png::ColorType::Rgba, &[0, 0, 0, 0])).unwrap();
        assert_eq!(rgba.pixels, vec![1.0]);
        let ga = decode(p, &encode(1, 1, png::ColorType::GrayscaleAlpha, &[0, 255])).unwrap();
        assert_eq!(ga.pixels, vec![0.0]);
        assert!(decode(p, b"not a png")
            .unwrap_err()
            .to_string()
            .contains("cannot decode PNG"));
    }

    #[test]
    fn dark_ink_is_inverted_bright_ink_is_kept() {
        let dir = temp_dir("polarity");
        std::fs::create_dir_all(dir.join("3")).unwrap();
        // Black ink on white paper.
        std::fs::write(
            dir.join("3/a.png"),
            encode(2, 2, png::ColorType::Grayscale, &[255, 0, 255, 255]),
        )
        .unwrap();
        let d = load_png_dir(&dir, "paper").unwrap();
        assert_eq!(d.labels, vec![3]);
        assert_eq!(d.images, vec![0.0, 1.0, 0.0, 0.0]);
        // White ink on black, as MNIST.
        std::fs::write(
            dir.join("3/a.png"),
            encode(2, 2, png::ColorType::Grayscale, &[0, 255, 0, 0]),
        )
        .unwrap();
        let d = load_png_dir(&dir, "screen").unwrap();
        assert_eq!(d.images, vec![0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn orders_by_digit_then_name_and_ignores_other_files() {
        let dir = temp_dir("order");
        for (d, f, v) in [("7", "b.png", 10u8), ("7", "a.PNG", 20), ("2", "z.png", 30)] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
            std::fs::write(
                dir.join(d).join(f),
                encode(1, 1, png::ColorType::Grayscale, &[v]),
            )
            .unwrap();
        }
        std::fs::write(dir.join("7/notes.txt"), b"hello").unwrap();
        std::fs::write(dir.join("7/.hidden.png"), b"junk").unwrap();
        let d = load_png_dir(&dir, "o").unwrap();
        assert_eq!(d.labels, vec![2, 7, 7]);
        let want: Vec<f32> = [30u8, 20, 10].iter().map(|&v| v as f32 / 255.0).collect();
        assert_eq!(d.images, want, "dark mean: kept as is");
    }

    #[test]
    fn empty_and_missing_folders_are_errors() {
        let dir = temp_dir("empty");
        assert!(matches!(
            load_png_dir(&dir.join("absent"), "e").unwrap_err(),
            Error::Missing { .. }
        ));
        std::fs::create_dir_all(dir.join("5")).unwrap();
        assert!(load_png_dir(&dir, "e")
            .unwrap_err()
            .to_string()
            .contains("no PNG images"));
    }
}
