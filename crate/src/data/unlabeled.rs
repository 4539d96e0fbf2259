//! Images without labels: the target of unsupervised adaptation.
//!
//! [`Unlabeled`] holds no labels at all, not even privately, so code that receives one cannot
//! read the answers of the set it adapts to, whatever it does. It is made from a [`Dataset`] by
//! [`Unlabeled::from_dataset`], which drops the labels, or from bare images by
//! [`Unlabeled::new`]. Its provenance string ends in `+unlabeled` so that a record says the
//! labels were never part of it.

use super::dataset::Dataset;
use crate::error::{Error, Result};

/// Greyscale images in [0, 1] (ink bright), stored one after another, with no labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Unlabeled {
    pub name: String,
    pub images: Vec<f32>,
    pub width: usize,
    pub height: usize,
    /// The images' provenance (see [`dataset`](super::dataset)), ending in `+unlabeled`.
    pub source_sha256: String,
}

/// The suffix that marks a provenance string as images only.
const LABEL_FREE: &str = "+unlabeled";

impl Unlabeled {
    /// Images without labels, after the checks [`Dataset::new`] makes on pixels and sizes.
    pub fn new(
        name: impl Into<String>,
        images: Vec<f32>,
        width: usize,
        height: usize,
        source_sha256: impl Into<String>,
    ) -> Result<Self> {
        let name = name.into();
        let pixels = width * height;
        if pixels == 0 || !images.len().is_multiple_of(pixels) {
            return Err(Error::invalid(format!(
                "data set `{name}`: {} pixel values are not whole {width}x{height} images; pass width*height values per image",
                images.len()
            )));
        }
        // Validate through Dataset with placeholder labels that are dropped at once.
        let n = images.len() / pixels;
        let ds = Dataset::new(name, images, vec![0; n], width, height, source_sha256)?;
        Ok(Unlabeled::from_dataset(ds))
    }

    /// The images of `ds`; its labels are dropped here and go no further.
    pub fn from_dataset(ds: Dataset) -> Self {
        let Dataset {
            name,
            images,
            labels: _,
            width,
            height,
            source_sha256,
        } = ds;
        let source_sha256 = if source_sha256.ends_with(LABEL_FREE) {
            source_sha256
        } else {
            format!("{source_sha256}{LABEL_FREE}")
        };
        Unlabeled {
            name,
            images,
            width,
            height,
            source_sha256,
        }
    }

    pub fn len(&self) -> usize {
        self.images.len() / self.pixels().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// The images at `indices` with labels a model gave them (pseudo-labels), as a data set to
    /// train on. Its name and provenance say the labels are a model's, not the set's.
    pub fn pseudo_labelled(&self, indices: &[usize], labels: &[u8], tag: &str) -> Result<Dataset> {
        if indices.len() != labels.len() {
            return Err(Error::invalid(format!(
                "data set `{}`: {} images but {} pseudo-labels; pass one label per image",
                self.name,
                indices.len(),
                labels.len()
            )));
        }
        let mut images = Vec::with_capacity(indices.len() * self.pixels());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset::new(
            format!("{}[pseudo]", self.name),
            images,
            labels.to_vec(),
            self.width,
            self.height,
            format!("{}+pseudo({tag})", self.source_sha256),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_dropped_and_the_provenance_says_so() {
        let ds = Dataset::new("t", vec![0.5; 8], vec![3, 7], 2, 2, "abc").unwrap();
        let u = Unlabeled::from_dataset(ds.clone());
        assert_eq!((u.len(), u.pixels()), (2, 4));
        assert_eq!(u.source_sha256, "abc+unlabeled");
        assert_eq!(u.images, ds.images);
        // Other labels, same unlabeled set.
        let relabelled = Dataset {
            labels: vec![1, 1],
            ..ds
        };
        assert_eq!(Unlabeled::from_dataset(relabelled), u);
        let p = u.pseudo_labelled(&[1], &[4], "r1").unwrap();
        assert_eq!(p.labels, vec![4]);
        assert_eq!(p.source_sha256, "abc+unlabeled+pseudo(r1)");
        assert!(u.pseudo_labelled(&[1, 0], &[4], "r1").is_err());
    }

    #[test]
    fn new_checks_sizes_and_pixels() {
        assert!(Unlabeled::new("x", vec![0.0; 7], 2, 2, "h").is_err());
        let e = Unlabeled::new("x", vec![0.0, 2.0, 0.0, 0.0], 2, 2, "h").unwrap_err();
        assert!(e.to_string().contains("outside [0, 1]"), "{e}");
        let u = Unlabeled::new("x", vec![0.0; 8], 2, 2, "h").unwrap();
        assert_eq!((u.len(), u.source_sha256.as_str()), (2, "h+unlabeled"));
    }
}
