//! MNIST through the `mnist` crate, after our own validation.
//!
//! The crate reads the four decompressed IDX files (which `digits data fetch` writes next
//! to the `.gz` files) and panics on anything unexpected, so every file is first checked
//! against its published checksum and parsed by [`idx`](super::idx): the crate only ever
//! sees known-good bytes.

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

/// Validates one decompressed file: present, parseable with the expected count and size,
/// matching its published checksum. Returns its content hash.
fn validate(data_dir: &Path, name: &str, count: usize) -> Result<String> {
    let gz_rel = format!("mnist/{name}.gz");
    let path = data_dir.join("mnist").join(name);
    let hint = if data_dir.join(&gz_rel).is_file() {
        "run `digits data fetch` to write the decompressed copy next to the .gz file"
    } else {
        FETCH_HINT
    };
    let bytes = read_bytes(&path, hint)?;
    // Structure first: "truncated, N of M bytes" says more than a checksum mismatch.
    let (n, rows, cols) = if name.contains("images") {
        let img = parse_images(&path, &bytes, FIX_FETCH)?;
        (img.count, img.rows, img.cols)
    } else {
        (parse_labels(&path, &bytes, FIX_FETCH)?.len(), SIDE, SIDE)
    };
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
    Ok(sha)
}

/// Loads MNIST's training (60,000) or test (10,000) set from `data_dir/mnist/`, pixels
/// scaled by 1/255. `source_sha256` combines the images' then the labels' content hashes.
pub fn load_mnist(data_dir: &Path, split: Split) -> Result<Dataset> {
    // The crate always reads all four files, so all four must be sound.
    let counts = [TRAIN_LEN, TRAIN_LEN, TEST_LEN, TEST_LEN];
    let mut hashes = Vec::with_capacity(4);
    for (name, count) in FILE_NAMES.iter().zip(counts) {
        hashes.push(validate(data_dir, name, count)?);
    }
    let base = data_dir.join("mnist");
    let base = base.to_str().ok_or_else(|| {
        Error::invalid(format!(
            "{}: the `mnist` crate needs a UTF-8 path; move the data directory to a plain path",
            base.display()
        ))
    })?;
    let m = ::mnist::MnistBuilder::new()
        .base_path(base)
        .label_format_digit()
        .training_set_length(TRAIN_LEN as u32)
        .validation_set_length(0)
        .test_set_length(TEST_LEN as u32)
        .finalize();
    let (pixels, labels, source) = match split {
        Split::Train => (
            m.trn_img,
            m.trn_lbl,
            combine_hashes(&[&hashes[0], &hashes[1]]),
        ),
        Split::Test => (
            m.tst_img,
            m.tst_lbl,
            combine_hashes(&[&hashes[2], &hashes[3]]),
        ),
    };
    let images = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    Dataset::new(format!("mnist-{split}"), images, labels, SIDE, SIDE, source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;

    #[test]
    fn missing_files_point_to_fetch() {
        let dir = std::env::temp_dir().join(format!("digits-mnist-unit-{}", std::process::id()));
        let e = load_mnist(&dir, Split::Test).unwrap_err();
        assert!(matches!(e, Error::Missing { .. }), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("train-images-idx3-ubyte") && m.contains("digits data fetch"),
            "{m}"
        );
    }

    #[test]
    fn a_wrong_file_is_caught_before_the_crate_sees_it() {
        let dir = TempDir::new("mnist-bad");
        std::fs::create_dir_all(dir.join("mnist")).unwrap();
        // A well-formed but tiny IDX file: the crate would panic on its count.
        let mut bytes = Vec::new();
        for x in [0x0803u32, 1, 28, 28] {
            bytes.extend_from_slice(&x.to_be_bytes());
        }
        bytes.resize(16 + 784, 0);
        std::fs::write(dir.join("mnist/train-images-idx3-ubyte"), &bytes).unwrap();
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
        let mut bytes = Vec::new();
        for x in [0x0801u32, 60_000] {
            bytes.extend_from_slice(&x.to_be_bytes());
        }
        bytes.resize(8 + 60_000, 0);
        std::fs::write(dir.join("mnist/train-labels-idx1-ubyte"), &bytes).unwrap();
        let e = validate(&dir, "train-labels-idx1-ubyte", 60_000).unwrap_err();
        assert!(matches!(e, Error::Checksum { .. }), "{e}");
        assert!(e.to_string().contains("65a50cbbf4e906d7"), "{e}");
    }
}
