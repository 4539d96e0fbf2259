//! Our own reader for IDX files (MNIST's format): big-endian header, then raw bytes.
//!
//! Two uses: validating the MNIST files before the `mnist` crate (which panics on anything
//! unexpected) sees them, and reading user data sets `idx:PATH` of any image size.
//!
//! # `idx:` specs
//! `idx:IMAGES` names the image file; its label file is found by replacing
//! `images-idx3` with `labels-idx1` (or `images.idx3` with `labels.idx1`) in the file name,
//! so `foo-images-idx3-ubyte[.gz]` pairs with `foo-labels-idx1-ubyte[.gz]`.
//! `idx:IMAGES,LABELS` names both explicitly (so paths containing a comma cannot be used).
//! Files ending in `.gz` (or starting with the gzip magic bytes) are decompressed.

use std::path::{Path, PathBuf};

use super::checksums::{combine_hashes, decompress, read_bytes, sha256_hex, Compression};
use super::dataset::Dataset;
use crate::error::{Error, Result};

pub const IMAGES_MAGIC: u32 = 0x0000_0803;
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// What to do about a damaged user file.
pub const FIX_USER: &str = "re-export the file or point to an intact copy";
/// What to do about a damaged fetched file.
pub const FIX_FETCH: &str = "delete it and re-run `digits data fetch`";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    /// `count * rows * cols` bytes, row-major.
    pub pixels: Vec<u8>,
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn check_magic(path: &Path, bytes: &[u8], want: u32, fix: &str) -> Result<()> {
    let what = |m: u32| match m {
        IMAGES_MAGIC => "an IDX image file",
        LABELS_MAGIC => "an IDX label file",
        _ => "an IDX file",
    };
    match be_u32(bytes, 0) {
        None => Err(Error::format(
            path,
            format!(
                "too short for {} ({} bytes, the header alone is longer); {fix}",
                what(want),
                bytes.len()
            ),
        )),
        Some(m) if m == want => Ok(()),
        Some(m) => Err(Error::format(
            path,
            format!(
                "not {}: magic number 0x{m:08x}, expected 0x{want:08x}{}; {fix}",
                what(want),
                if m == IMAGES_MAGIC || m == LABELS_MAGIC {
                    format!(" (this is {})", what(m))
                } else {
                    String::new()
                }
            ),
        )),
    }
}

fn check_length(
    path: &Path,
    actual: usize,
    header: usize,
    items: &[usize],
    what: &str,
    fix: &str,
) -> Result<usize> {
    let expected = items
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .and_then(|n| n.checked_add(header));
    match expected {
        Some(e) if e == actual => Ok(e - header),
        Some(e) => Err(Error::format(
            path,
            format!(
                "{} IDX file: the header promises {what} = {e} bytes but the file has {actual} bytes; {fix}",
                if actual < e { "truncated" } else { "oversized" }
            ),
        )),
        None => Err(Error::format(
            path,
            format!("IDX header promises {what}, more bytes than can exist; {fix}"),
        )),
    }
}

/// Parses an IDX image file (`bytes`, already decompressed, read from `path`).
pub fn parse_images(path: &Path, bytes: &[u8], fix: &str) -> Result<IdxImages> {
    check_magic(path, bytes, IMAGES_MAGIC, fix)?;
    let (Some(n), Some(rows), Some(cols)) = (be_u32(bytes, 4), be_u32(bytes, 8), be_u32(bytes, 12))
    else {
        return Err(Error::format(
            path,
            format!(
                "truncated IDX header: {} bytes, an image file needs 16; {fix}",
                bytes.len()
            ),
        ));
    };
    let (n, rows, cols) = (n as usize, rows as usize, cols as usize);
    if rows == 0 || cols == 0 {
        return Err(Error::format(
            path,
            format!("IDX header gives an empty image size {rows}x{cols}; {fix}"),
        ));
    }
    let what = format!("{n} images of {rows}x{cols} after a 16-byte header");
    check_length(path, bytes.len(), 16, &[n, rows, cols], &what, fix)?;
    Ok(IdxImages {
        count: n,
        rows,
        cols,
        pixels: bytes[16..].to_vec(),
    })
}

/// Parses an IDX label file; every label must be a digit 0–9.
pub fn parse_labels(path: &Path, bytes: &[u8], fix: &str) -> Result<Vec<u8>> {
    check_magic(path, bytes, LABELS_MAGIC, fix)?;
    let Some(n) = be_u32(bytes, 4) else {
        return Err(Error::format(
            path,
            format!(
                "truncated IDX header: {} bytes, a label file needs 8; {fix}",
                bytes.len()
            ),
        ));
    };
    let what = format!("{n} labels after an 8-byte header");
    check_length(path, bytes.len(), 8, &[n as usize], &what, fix)?;
    let labels = bytes[8..].to_vec();
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l >= 10) {
        return Err(Error::format(
            path,
            format!("label {l} at index {i} is not a digit 0-9; {fix}"),
        ));
    }
    Ok(labels)
}

/// Reads an IDX file, decompressing it if it is gzip (by name or by content).
pub fn read_idx_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = read_bytes(path, "check the path given after `idx:`")?;
    let gz = Compression::from_path(path) == Compression::Gzip || raw.starts_with(&[0x1f, 0x8b]);
    if gz {
        decompress(path, raw, Compression::Gzip, FIX_USER)
    } else {
        Ok(raw)
    }
}

/// Loads an image/label pair as a data set named `name`. Pixels are scaled by 1/255 and
/// taken as bright ink, as in MNIST. `source_sha256` combines the images' then the labels'
/// content hashes.
pub fn load_idx_pair(images: &Path, labels: &Path, name: &str) -> Result<Dataset> {
    let img_bytes = read_idx_bytes(images)?;
    let lbl_bytes = read_idx_bytes(labels)?;
    let img = parse_images(images, &img_bytes, FIX_USER)?;
    let lbl = parse_labels(labels, &lbl_bytes, FIX_USER)?;
    if img.count != lbl.len() {
        return Err(Error::format(
            labels,
            format!(
                "holds {} labels but {} holds {} images; give the label file that belongs to these images",
                lbl.len(),
                images.display(),
                img.count
            ),
        ));
    }
    if img.count == 0 {
        return Err(Error::format(
            images,
            format!("holds no images; {FIX_USER}"),
        ));
    }
    let source = combine_hashes(&[&sha256_hex(&img_bytes), &sha256_hex(&lbl_bytes)]);
    let pixels = img.pixels.iter().map(|&p| p as f32 / 255.0).collect();
    Dataset::new(name, pixels, lbl, img.cols, img.rows, source)
}

/// The image and label paths an `idx:` spec (without the prefix) names; see the module
/// documentation.
pub fn resolve_spec(spec: &str) -> Result<(PathBuf, PathBuf)> {
    if let Some((images, labels)) = spec.split_once(',') {
        if images.is_empty() || labels.is_empty() || labels.contains(',') {
            return Err(Error::invalid(format!(
                "idx:{spec}: expected idx:IMAGES or idx:IMAGES,LABELS with two non-empty paths"
            )));
        }
        return Ok((PathBuf::from(images), PathBuf::from(labels)));
    }
    let images = PathBuf::from(spec);
    let name = images
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (from, to) in [
        ("images-idx3", "labels-idx1"),
        ("images.idx3", "labels.idx1"),
    ] {
        if let Some(at) = name.rfind(from) {
            let label_name = format!("{}{to}{}", &name[..at], &name[at + from.len()..]);
            return Ok((images.clone(), images.with_file_name(label_name)));
        }
    }
    Err(Error::invalid(format!(
        "idx:{spec}: cannot tell the label file from this name; name the pair *-images-idx3-ubyte / *-labels-idx1-ubyte or pass idx:IMAGES,LABELS"
    )))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An IDX image file of `n` images of `rows`×`cols` holding `pixels`.
    pub(crate) fn images_file(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [IMAGES_MAGIC, n, rows, cols] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(pixels);
        v
    }

    /// An IDX label file holding `labels`.
    pub(crate) fn labels_file(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [LABELS_MAGIC, labels.len() as u32] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(labels);
        v
    }

    #[test]
    fn parses_good_files() {
        let p = Path::new("f");
        let img = parse_images(
            p,
            &images_file(2, 2, 3, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]),
            "x",
        )
        .unwrap();
        assert_eq!((img.count, img.rows, img.cols), (2, 2, 3));
        assert_eq!(img.pixels[11], 255);
        assert_eq!(
            parse_labels(p, &labels_file(&[3, 9]), "x").unwrap(),
            vec![3, 9]
        );
    }

    #[test]
    fn rejects_truncated_oversized_and_wrong_magic() {
        let p = Path::new("f");
        let good = images_file(2, 2, 2, &[0; 8]);
        let e = parse_images(p, &good[..20], "FIX").unwrap_err().to_string();
        assert!(
            e.contains("truncated IDX file") && e.contains("24 bytes") && e.contains("has 20"),
            "{e}"
        );
        assert!(e.ends_with("FIX"), "{e}");
        let mut big = good.clone();
        big.push(0);
        assert!(parse_images(p, &big, "x")
            .unwrap_err()
            .to_string()
            .contains("oversized"));
        let e = parse_images(p, &labels_file(&[1]), "x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("magic number 0x00000801, expected 0x00000803 (this is an IDX label file)"),
            "{e}"
        );
        assert!(parse_images(p, &good[..10], "x")
            .unwrap_err()
            .to_string()
            .contains("truncated IDX header"));
        assert!(parse_images(p, &[], "x")
            .unwrap_err()
            .to_string()
            .contains("too short"));
        assert!(parse_images(p, &images_file(1, 0, 5, &[]), "x").is_err());
        let huge = images_file(u32::MAX, u32::MAX, u32::MAX, &[]);
        assert!(parse_images(p, &huge, "x").is_err());
    }

    #[test]
    fn rejects_label_out_of_range() {
        let e = parse_labels(Path::new("l"), &labels_file(&[1, 2, 10]), "x").unwrap_err();
        assert!(e.to_string().contains("label 10 at index 2"), "{e}");
    }

    #[test]
    fn resolves_specs() {
        let (i, l) = resolve_spec("/d/emnist-train-images-idx3-ubyte.gz").unwrap();
        assert_eq!(i, PathBuf::from("/d/emnist-train-images-idx3-ubyte.gz"));
        assert_eq!(l, PathBuf::from("/d/emnist-train-labels-idx1-ubyte.gz"));
        let (_, l) = resolve_spec("t10k-images.idx3-ubyte").unwrap();
        assert_eq!(l, PathBuf::from("t10k-labels.idx1-ubyte"));
        // Only the file name is rewritten, never the folder.
        let (_, l) = resolve_spec("images-idx3/x-images-idx3-ubyte").unwrap();
        assert_eq!(l, PathBuf::from("images-idx3/x-labels-idx1-ubyte"));
        let (i, l) = resolve_spec("a.bin,b.bin").unwrap();
        assert_eq!((i, l), (PathBuf::from("a.bin"), PathBuf::from("b.bin")));
        assert!(resolve_spec("pictures.bin")
            .unwrap_err()
            .to_string()
            .contains("IMAGES,LABELS"));
        assert!(resolve_spec("a,").is_err());
    }
}
