//! User data sets as a folder of images: `DIR/0/*` … `DIR/9/*`, the folder name being the
//! label (`png:DIR`, or `dir:DIR`). Every PNG or JPEG file in a digit folder is read
//! ([`raw`](super::raw): any size, any channels, under the pixel limit), so images of one
//! folder may differ in size; framing brings them to 28×28 and decides each image's ink
//! polarity from the image itself (dark ink on paper or bright ink on black, mixed freely).
//! Digit folders may be missing or empty, but at least one image is needed.
//!
//! What is not a digit is said, one line each on stderr, and left out: a subfolder not
//! named 0–9 (`DIR/misc/`), and a file that cannot be read as an image (the rest of the
//! folder is still read, and the data set's size shows how many were). Hidden files and
//! other extensions are skipped silently.
//!
//! `source_sha256` is the sha256 of the lines `D/FILE:SHA256\n` (one per image read, in load
//! order: by digit, then by file name), where SHA256 is the image file's hash; so moving a
//! file to another digit folder changes it too.

use std::path::{Path, PathBuf};

use super::checksums::sha256_hex;
use super::dataset::Dataset;
use super::raw::{decode_image, is_image_file, RawSet};
use crate::error::{Error, Result};

/// Image files of one digit folder, sorted by name.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if is_image_file(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Subfolders of `dir` that are not digit folders (hidden ones aside), sorted.
fn stray_folders(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut stray = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let digit = name.len() == 1 && name.as_bytes()[0].is_ascii_digit();
        if path.is_dir() && !digit && !name.starts_with('.') {
            stray.push(path);
        }
    }
    stray.sort();
    Ok(stray)
}

/// Reads `DIR/0..9/*` as a set of images of any sizes named `name`, with the warnings of
/// the module documentation on stderr.
pub fn load_folder(dir: &Path, name: &str) -> Result<RawSet> {
    if !dir.is_dir() {
        return Err(Error::Missing {
            path: dir.to_path_buf(),
            hint: "give a folder holding subfolders 0/ ... 9/ of PNG or JPEG images".to_string(),
        });
    }
    for stray in stray_folders(dir)? {
        eprintln!(
            "warning: {}: not a digit folder (0-9), left out",
            stray.display()
        );
    }
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut manifest = String::new();
    for digit in 0..10u8 {
        let sub = dir.join(digit.to_string());
        if !sub.is_dir() {
            continue;
        }
        for path in image_files(&sub)? {
            let read = std::fs::read(&path)
                .map_err(|e| Error::io(&path, e))
                .and_then(|bytes| Ok((decode_image(&path, &bytes)?, bytes)));
            let (image, bytes) = match read {
                Ok(ok) => ok,
                Err(e) => {
                    eprintln!("warning: {e}; left out");
                    continue;
                }
            };
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            manifest.push_str(&format!("{digit}/{file}:{}\n", sha256_hex(&bytes)));
            images.push(image);
            labels.push(digit);
        }
    }
    if images.is_empty() {
        return Err(Error::invalid(format!(
            "{}: no readable PNG or JPEG images in subfolders 0/ ... 9/; put each digit's images in the folder named after it",
            dir.display()
        )));
    }
    Ok(RawSet {
        name: name.to_string(),
        images,
        labels,
        source_sha256: sha256_hex(manifest.as_bytes()),
    })
}

/// Loads `DIR/0..9/*` at the images' own size with the ink made bright, per image; an
/// error when the images differ in size (frame them instead: [`load_folder`] and
/// [`RawSet::frame`]).
pub fn load_png_dir(dir: &Path, name: &str) -> Result<Dataset> {
    load_folder(dir, name)?.native()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::Framing;
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
            .contains("no readable PNG or JPEG images"));
    }

    #[test]
    fn jpeg_and_mixed_sizes_load_and_frame_alike() {
        use image::{ExtendedColorType, ImageEncoder};
        let dir = temp_dir("mixed");
        std::fs::create_dir_all(dir.join("1")).unwrap();
        std::fs::create_dir_all(dir.join("misc")).unwrap();
        // The same bar, dark on light at 30×40 (PNG) and light on dark at 60×80 (JPEG).
        let bar = |w: usize, h: usize, ink: u8, paper: u8| -> Vec<u8> {
            (0..w * h)
                .map(|i| {
                    let (x, y) = (i % w, i / w);
                    let on =
                        (w * 4 / 10..w * 6 / 10).contains(&x) && (h / 5..h * 4 / 5).contains(&y);
                    if on {
                        ink
                    } else {
                        paper
                    }
                })
                .collect()
        };
        let mut png_bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png_bytes)
            .write_image(&bar(30, 40, 20, 230), 30, 40, ExtendedColorType::L8)
            .unwrap();
        std::fs::write(dir.join("1/a.png"), png_bytes).unwrap();
        let mut jpg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 90)
            .write_image(&bar(60, 80, 240, 10), 60, 80, ExtendedColorType::L8)
            .unwrap();
        std::fs::write(dir.join("1/b.JPG"), jpg).unwrap();
        std::fs::write(dir.join("1/c.png"), b"broken").unwrap();
        let set = load_folder(&dir, "mine").unwrap();
        assert_eq!(set.labels, vec![1, 1], "the broken file is left out");
        assert_eq!(
            set.images
                .iter()
                .map(|i| (i.width, i.height))
                .collect::<Vec<_>>(),
            vec![(30, 40), (60, 80)]
        );
        let d = set.frame(Framing::MnistFrame).unwrap();
        let mad = crate::data::pixels::mean_abs_difference(d.image(0), d.image(1));
        assert!(mad < 0.05, "both polarities frame to the same bar: {mad}");
        assert!(d.image(0).iter().any(|&v| v > 0.9));
        let e = load_png_dir(&dir, "mine").unwrap_err().to_string();
        assert!(e.contains("mixes image sizes"), "{e}");
    }
}
