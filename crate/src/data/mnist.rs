//! MNIST from the decompressed IDX files that `digits data fetch` writes next to the `.gz`
//! files: each file is parsed once, by [`idx`](super::idx), and checked against its published
//! checksum before its pixels are used.

use std::path::Path;

use super::checksums::{combine_hashes, known_file, read_bytes, sha256_hex, verify, FETCH_HINT};
use super::dataset::{Dataset, Split};
use super::idx::{parse_images, parse_labels, FIX_FETCH};
use crate::error::{Error, Result};

const TRAIN_LEN: usize = 60_000;
const TEST_LEN: usize = 10_000;
const SIDE: usize = 28;

const FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// One decompressed file, parsed by `parse` and checked: present, of the expected count and
/// size, matching its published checksum. `parse` returns the file's content with its item
/// count and item size. Returns the content and the file's hash.
fn read_checked<T>(
    data_dir: &Path,
    name: &str,
    count: usize,
    parse: impl Fn(&Path, &[u8]) -> Result<(T, usize, usize, usize)>,
) -> Result<(T, String)> {
    let gz_rel = format!("mnist/{name}.gz");
    let path = data_dir.join("mnist").join(name);
    let hint = if data_dir.join(&gz_rel).is_file() {
        "run `digits data fetch` to write the decompressed copy next to the .gz file"
    } else {
        FETCH_HINT
    };
    let bytes = read_bytes(&path, hint)?;
    // Structure first: "truncated, N of M bytes" says more than a checksum mismatch.
    let (parsed, n, rows, cols) = parse(&path, &bytes)?;
    if (n, rows, cols) != (count, SIDE, SIDE) {
        return Err(Error::format(
            &path,
            format!(
                "holds {n} items of {rows}x{cols}, expected {count} of {SIDE}x{SIDE}; {FIX_FETCH}"
            ),
        ));
    }
    let sha = sha256_hex(&bytes);
    let entry = known_file(&gz_rel).ok_or_else(|| {
        Error::invalid(format!(
            "internal: no checksum table entry for {gz_rel}; report this bug"
        ))
    })?;
    verify(&path, entry, &sha)?;
    Ok((parsed, sha))
}

fn parse_image_file(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, usize, usize, usize)> {
    let img = parse_images(path, bytes, FIX_FETCH)?;
    Ok((img.pixels, img.count, img.rows, img.cols))
}

fn parse_label_file(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, usize, usize, usize)> {
    let labels = parse_labels(path, bytes, FIX_FETCH)?;
    let n = labels.len();
    Ok((labels, n, SIDE, SIDE))
}

/// Loads MNIST's training (60,000) or test (10,000) set from `data_dir/mnist/`, pixels
/// scaled by 1/255. `source_sha256` combines the images' then the labels' content hashes.
pub fn load_mnist(data_dir: &Path, split: Split) -> Result<Dataset> {
    let (image_name, label_name, count) = match split {
        Split::Train => (FILE_NAMES[0], FILE_NAMES[1], TRAIN_LEN),
        Split::Test => (FILE_NAMES[2], FILE_NAMES[3], TEST_LEN),
    };
    let (pixels, image_sha) = read_checked(data_dir, image_name, count, parse_image_file)?;
    let (labels, label_sha) = read_checked(data_dir, label_name, count, parse_label_file)?;
    let images = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let source = combine_hashes(&[&image_sha, &label_sha]);
    Dataset::new(format!("mnist-{split}"), images, labels, SIDE, SIDE, source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::tests::{images_file, labels_file};
    use crate::data::testutil::TempDir;

    #[test]
    fn missing_files_point_to_fetch() {
        let dir = std::env::temp_dir().join(format!("digits-mnist-unit-{}", std::process::id()));
        let e = load_mnist(&dir, Split::Test).unwrap_err();
        assert!(matches!(e, Error::Missing { .. }), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("t10k-images-idx3-ubyte") && m.contains("digits data fetch"),
            "{m}"
        );
    }

    #[test]
    fn a_file_of_the_wrong_size_says_so() {
        let dir = TempDir::new("mnist-bad");
        std::fs::create_dir_all(dir.join("mnist")).unwrap();
        // A well-formed but tiny IDX file.
        let bytes = images_file(1, 28, 28, &[0; 784]);
        std::fs::write(dir.join("mnist/train-images-idx3-ubyte"), bytes).unwrap();
        let e = load_mnist(&dir, Split::Train).unwrap_err();
        assert!(
            e.to_string()
                .contains("holds 1 items of 28x28, expected 60000"),
            "{e}"
        );
    }

    #[test]
    fn a_well_formed_but_different_file_fails_its_checksum() {
        let dir = TempDir::new("mnist-sum");
        std::fs::create_dir_all(dir.join("mnist")).unwrap();
        let bytes = labels_file(&[0; 60_000]);
        std::fs::write(dir.join("mnist/train-labels-idx1-ubyte"), bytes).unwrap();
        let e =
            read_checked(&dir, "train-labels-idx1-ubyte", 60_000, parse_label_file).unwrap_err();
        assert!(matches!(e, Error::Checksum { .. }), "{e}");
        assert!(e.to_string().contains("65a50cbbf4e906d7"), "{e}");
    }
}
