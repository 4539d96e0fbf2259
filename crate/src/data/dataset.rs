//! The in-memory data set every loader returns and every model consumes.
//!
//! # Provenance (`source_sha256`)
//! `source_sha256` records where the pixels came from so a result can be traced to exact
//! bytes:
//! - for a data set read from one file, the hex sha256 of that file's *decompressed* bytes;
//! - for one read from several files (MNIST's images + labels, USPS ESL train + test), the
//!   sha256 of the files' hex hashes concatenated as ASCII, without separators, in the order
//!   the loader documents (see [`combine_hashes`](super::checksums::combine_hashes));
//! - every derived data set appends a suffix naming the operation, so the string stays a
//!   recipe: `+subset(N,seed=S)`, `+split(F,seed=S).first` / `.second`,
//!   `+select(K,idx=H)` (H: the first 16 hex digits of the sha256 of the indices as
//!   little-endian u64), `+resize` / `+mnist-frame(ink)`; [`Dataset::concat`] gives
//!   `concat(A,B,...)` of the parts' strings.

use std::fmt;

use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use sha2::{Digest, Sha256};

use super::checksums::hex;
use crate::error::{Error, Result};

/// Which half of a data set with an official train/test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Greyscale digit images with labels 0–9.
///
/// Images are stored row-major, one after another; pixel values lie in [0, 1] with the ink
/// bright (1.0 = full ink, 0.0 = background), as in MNIST. Loaders convert every source to
/// that convention so that models never see a different polarity.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
    pub width: usize,
    pub height: usize,
    /// See the module documentation for how this is built.
    pub source_sha256: String,
}

impl Dataset {
    /// The same data set under another name (parsers name what they read after its format;
    /// the loaders name it after the file).
    pub fn renamed(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Builds a data set after checking every invariant the rest of the crate relies on:
    /// non-zero image size, `images.len() == labels.len() * width * height`, labels < 10
    /// and pixel values finite and within [0, 1].
    pub fn new(
        name: impl Into<String>,
        images: Vec<f32>,
        labels: Vec<u8>,
        width: usize,
        height: usize,
        source_sha256: impl Into<String>,
    ) -> Result<Self> {
        let name = name.into();
        if width == 0 || height == 0 {
            return Err(Error::invalid(format!(
                "data set `{name}`: image size {width}x{height} is empty; images need at least one pixel"
            )));
        }
        let expected = width
            .checked_mul(height)
            .and_then(|p| p.checked_mul(labels.len()));
        if expected != Some(images.len()) {
            return Err(Error::invalid(format!(
                "data set `{name}`: {} labels of {width}x{height} images need {} pixel values but {} were given; pass one image per label",
                labels.len(),
                expected.map_or_else(|| "more than usize::MAX".to_string(), |e| e.to_string()),
                images.len()
            )));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= 10) {
            return Err(Error::invalid(format!(
                "data set `{name}`: label {l} at index {i} is not a digit 0-9; fix the labels"
            )));
        }
        let pixels = width * height;
        if let Some((p, v)) = images
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && (0.0..=1.0).contains(*v)))
        {
            return Err(Error::invalid(format!(
                "data set `{name}`: image {} pixel {} has value {v}, outside [0, 1]; scale pixels to [0, 1] with ink = 1",
                p / pixels,
                p % pixels
            )));
        }
        Ok(Dataset {
            name,
            images,
            labels,
            width,
            height,
            source_sha256: source_sha256.into(),
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image (`width * height`).
    pub fn pixels(&self) -> usize {
        self.width * self.height
    }

    /// Image `i` as a row-major slice. Panics if `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[f32] {
        let p = self.pixels();
        &self.images[i * p..(i + 1) * p]
    }

    pub fn label_counts(&self) -> [usize; 10] {
        let mut counts = [0usize; 10];
        for &l in &self.labels {
            // Fields are public, so tolerate a label a caller broke after construction.
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// `n` images drawn at random without replacement (all of them if `n >= len()`),
    /// kept in their original order. The same `seed` always gives the same subset.
    pub fn subset(&self, n: usize, seed: u64) -> Dataset {
        let n = n.min(self.len());
        let mut rng = StdRng::seed_from_u64(seed);
        let mut idx = rand::seq::index::sample(&mut rng, self.len(), n).into_vec();
        idx.sort_unstable();
        self.gather(&idx, &format!("+subset({n},seed={seed})"))
    }

    /// Shuffles with `seed`, then puts `round(frac_second * len())` images in the second
    /// part and the rest in the first; each part keeps the original order. `frac_second`
    /// is clamped to [0, 1] (NaN counts as 0). Used to hold a validation split out of
    /// MNIST's training set.
    pub fn split(&self, frac_second: f64, seed: u64) -> (Dataset, Dataset) {
        let frac = if frac_second.is_nan() {
            0.0
        } else {
            frac_second.clamp(0.0, 1.0)
        };
        let n_second = ((frac * self.len() as f64).round() as usize).min(self.len());
        let mut perm: Vec<usize> = (0..self.len()).collect();
        perm.shuffle(&mut StdRng::seed_from_u64(seed));
        let (second, first) = perm.split_at_mut(n_second);
        second.sort_unstable();
        first.sort_unstable();
        let tag = format!("+split({frac},seed={seed})");
        (
            self.gather(first, &format!("{tag}.first")),
            self.gather(second, &format!("{tag}.second")),
        )
    }

    /// The images at `indices`, in that order (repeats allowed).
    /// Panics if an index is `>= len()`, like slice indexing.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let mut h = Sha256::new();
        for &i in indices {
            h.update((i as u64).to_le_bytes());
        }
        let digest = hex(&h.finalize());
        self.gather(
            indices,
            &format!("+select({},idx={})", indices.len(), &digest[..16]),
        )
    }

    /// All images of `parts`, one part after the other, under a new name. Every part must
    /// have the same image size.
    pub fn concat(name: impl Into<String>, parts: &[&Dataset]) -> Result<Dataset> {
        let name = name.into();
        let Some(first) = parts.first() else {
            return Err(Error::invalid(format!(
                "data set `{name}`: nothing to concatenate; pass at least one data set"
            )));
        };
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for p in parts {
            if (p.width, p.height) != (first.width, first.height) {
                return Err(Error::invalid(format!(
                    "data set `{name}`: cannot concatenate `{}` ({}x{}) with `{}` ({}x{}); bring them to one size first",
                    first.name, first.width, first.height, p.name, p.width, p.height
                )));
            }
            images.extend_from_slice(&p.images);
            labels.extend_from_slice(&p.labels);
        }
        let sources: Vec<&str> = parts.iter().map(|p| p.source_sha256.as_str()).collect();
        let source = format!("concat({})", sources.join(","));
        Dataset::new(name, images, labels, first.width, first.height, source)
    }

    fn gather(&self, indices: &[usize], suffix: &str) -> Dataset {
        let mut images = Vec::with_capacity(indices.len() * self.pixels());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Dataset {
            name: self.name.clone(),
            images,
            labels,
            width: self.width,
            height: self.height,
            source_sha256: format!("{}{suffix}", self.source_sha256),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2x1 images whose first pixel encodes the index, so reordering is visible.
    fn toy(n: usize) -> Dataset {
        let images = (0..n)
            .flat_map(|i| [i as f32 / n as f32, 0.5])
            .collect::<Vec<_>>();
        let labels = (0..n).map(|i| (i % 10) as u8).collect();
        Dataset::new("toy", images, labels, 2, 1, "abc").unwrap()
    }

    fn first_pixels(d: &Dataset) -> Vec<f32> {
        (0..d.len()).map(|i| d.image(i)[0]).collect()
    }

    #[test]
    fn new_rejects_bad_labels_lengths_and_values() {
        let e = Dataset::new("x", vec![0.0; 4], vec![1, 12], 2, 1, "h").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("label 12 at index 1"), "{m}");
        let e = Dataset::new("x", vec![0.0; 3], vec![1, 2], 2, 1, "h").unwrap_err();
        assert!(e.to_string().contains("need 4 pixel values but 3"), "{e}");
        let e = Dataset::new("x", vec![0.0, f32::NAN], vec![1], 2, 1, "h").unwrap_err();
        assert!(e.to_string().contains("image 0 pixel 1"), "{e}");
        let e = Dataset::new("x", vec![0.0, 1.5], vec![1], 2, 1, "h").unwrap_err();
        assert!(e.to_string().contains("outside [0, 1]"), "{e}");
        assert!(Dataset::new("x", vec![], vec![], 0, 1, "h").is_err());
        assert!(Dataset::new("x", vec![], vec![], 2, 2, "h")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn label_counts_and_image_access() {
        let d = toy(23);
        assert_eq!(d.len(), 23);
        assert_eq!(d.label_counts(), [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]);
        assert_eq!(d.image(5), &[5.0 / 23.0, 0.5]);
    }

    #[test]
    fn subset_is_seeded_without_replacement_and_ordered() {
        let d = toy(100);
        let a = d.subset(30, 7);
        let b = d.subset(30, 7);
        let c = d.subset(30, 8);
        assert_eq!(a, b);
        assert_ne!(a.images, c.images);
        let px = first_pixels(&a);
        assert!(px.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
        assert_eq!(a.len(), 30);
        assert_eq!(a.source_sha256, "abc+subset(30,seed=7)");
        assert_eq!(d.subset(1000, 1).len(), 100);
    }

    #[test]
    fn split_partitions_everything_once() {
        let d = toy(101);
        let (a, b) = d.split(0.2, 3);
        assert_eq!((a.len(), b.len()), (81, 20));
        let mut all = first_pixels(&a);
        all.extend(first_pixels(&b));
        all.sort_by(f32::total_cmp);
        assert_eq!(all, first_pixels(&d));
        assert_eq!(d.split(0.2, 3), (a.clone(), b.clone()));
        assert_ne!(d.split(0.2, 4).1.images, b.images);
        assert!(b.source_sha256.ends_with("+split(0.2,seed=3).second"));
        assert_eq!(d.split(f64::NAN, 1).1.len(), 0);
        assert_eq!(d.split(7.0, 1).0.len(), 0);
    }

    #[test]
    fn select_keeps_order_and_records_indices() {
        let d = toy(10);
        let s = d.select(&[3, 1, 3]);
        assert_eq!(s.labels, vec![3, 1, 3]);
        assert_eq!(s.image(0), d.image(3));
        assert!(s.source_sha256.starts_with("abc+select(3,idx="));
        assert_ne!(s.source_sha256, d.select(&[1, 3, 3]).source_sha256);
    }

    #[test]
    fn concat_checks_sizes() {
        let d = toy(4);
        let c = Dataset::concat("both", &[&d, &d]).unwrap();
        assert_eq!(c.len(), 8);
        assert_eq!(c.image(4), d.image(0));
        let other = Dataset::new("o", vec![0.0; 4], vec![1], 2, 2, "h").unwrap();
        let e = Dataset::concat("bad", &[&d, &other]).unwrap_err();
        assert!(e.to_string().contains("2x1") && e.to_string().contains("2x2"));
    }
}
