//! Where each domain puts its ink, measured against where MNIST's training digits put theirs.
//!
//! An MLP's first layer gives every pixel its own weights, learned only from the training
//! images that ink that pixel. A pixel no training image inks gets no gradient at all, so its
//! weights keep their random initial values; a pixel few images ink is barely learned. A test
//! digit that puts ink there feeds the network noise. A convolution shares one small filter
//! across every position, so no position is unlearned. This module measures both halves:
//! how much of each domain's ink lands on rarely inked pixels, and how many MLP weights never
//! moved.

use crate::data::frame::{centre_of_mass, ink_box};
use crate::data::Dataset;
use crate::models::Weights;

/// A pixel counts as rarely inked when under this share of training images ink it.
pub const RARE_SHARE: f64 = 0.01;

/// How often each pixel of MNIST's training images carries ink.
#[derive(Clone, Debug, PartialEq)]
pub struct InkMap {
    pub images: usize,
    /// Share of training images with ink (> 0) on each of the 784 pixels.
    pub frequency: Vec<f64>,
}

impl InkMap {
    pub fn of(train: &Dataset) -> InkMap {
        let px = train.pixels();
        let mut counts = vec![0usize; px];
        for i in 0..train.len() {
            for (c, &v) in counts.iter_mut().zip(train.image(i)) {
                *c += (v > 0.0) as usize;
            }
        }
        InkMap {
            images: train.len(),
            frequency: counts
                .iter()
                .map(|&c| c as f64 / train.len() as f64)
                .collect(),
        }
    }

    /// Pixels no training image inks.
    pub fn never(&self) -> Vec<usize> {
        (0..self.frequency.len())
            .filter(|&p| self.frequency[p] == 0.0)
            .collect()
    }

    /// Pixels under [`RARE_SHARE`] of training images ink (the never-inked included).
    pub fn rare(&self) -> Vec<usize> {
        (0..self.frequency.len())
            .filter(|&p| self.frequency[p] < RARE_SHARE)
            .collect()
    }
}

/// Where one set's digits sit in the 28×28 frame.
#[derive(Clone, Debug, PartialEq)]
pub struct InkRow {
    pub domain: String,
    pub framing: String,
    pub images: usize,
    /// Mean share of a digit's ink on pixels MNIST training digits rarely ink.
    pub ink_on_rare: f64,
    /// Mean share on pixels they never ink.
    pub ink_on_never: f64,
    /// Mean height and width of the ink's bounding box, in pixels (MNIST: at most 20).
    pub box_height: f64,
    pub box_width: f64,
    /// Mean distance of the centre of mass from the frame's centre (14, 14), in pixels.
    pub centre_offset: f64,
}

/// Measure one set against the training ink map.
pub fn ink_row(map: &InkMap, domain: &str, framing: &str, ds: &Dataset) -> InkRow {
    let (rare, never) = (map.rare(), map.never());
    let w = ds.width;
    let (mut on_rare, mut on_never, mut h, mut wd, mut off) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut inked = 0usize;
    for i in 0..ds.len() {
        let img = ds.image(i);
        let total: f64 = img.iter().map(|&v| v as f64).sum();
        if total <= 0.0 {
            continue;
        }
        inked += 1;
        on_rare += rare.iter().map(|&p| img[p] as f64).sum::<f64>() / total;
        on_never += never.iter().map(|&p| img[p] as f64).sum::<f64>() / total;
        if let Some((x0, y0, x1, y1)) = ink_box(img, w) {
            h += (y1 - y0) as f64;
            wd += (x1 - x0) as f64;
        }
        if let Some((cx, cy)) = centre_of_mass(img, w) {
            off += ((cx - 14.0).powi(2) + (cy - 14.0).powi(2)).sqrt();
        }
    }
    let n = inked.max(1) as f64;
    InkRow {
        domain: domain.into(),
        framing: framing.into(),
        images: ds.len(),
        ink_on_rare: on_rare / n,
        ink_on_never: on_never / n,
        box_height: h / n,
        box_width: wd / n,
        centre_offset: off / n,
    }
}

/// How many first-layer weights on the never-inked pixels are exactly as initialised, out of
/// how many weights those pixels have (an MLP's first layer is `units × 784`).
pub fn unchanged_first_layer(
    initial: &Weights,
    trained: &Weights,
    never: &[usize],
) -> (usize, usize) {
    let (w0, w1) = (&initial.tensors[0], &trained.tensors[0]);
    if w1.shape.len() != 2 || w0.shape != w1.shape {
        return (0, 0);
    }
    let (units, px) = (w1.shape[0], w1.shape[1]);
    let unchanged = never
        .iter()
        .flat_map(|&p| (0..units).map(move |u| u * px + p))
        .filter(|&i| w0.data[i] == w1.data[i])
        .count();
    (unchanged, never.len() * units)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(images: Vec<Vec<f32>>) -> Dataset {
        let n = images.len();
        Dataset::new("s", images.concat(), vec![0; n], 28, 28, "h").unwrap()
    }

    #[test]
    fn ink_on_pixels_training_never_touches_is_measured() {
        // Training ink only in the top-left 10×10 square.
        let mut a = vec![0.0f32; 784];
        for y in 0..10 {
            for x in 0..10 {
                a[y * 28 + x] = 1.0;
            }
        }
        let map = InkMap::of(&set(vec![a.clone(), a.clone()]));
        assert_eq!(map.never().len(), 784 - 100);
        assert_eq!(map.rare(), map.never());
        // A test digit half inside, half outside.
        let mut b = vec![0.0f32; 784];
        for x in 5..15 {
            b[2 * 28 + x] = 1.0;
        }
        let row = ink_row(&map, "d", "resize", &set(vec![b]));
        assert!((row.ink_on_never - 0.5).abs() < 1e-12);
        assert_eq!((row.box_height, row.box_width), (1.0, 10.0));
        let inside = ink_row(&map, "d", "resize", &set(vec![a]));
        assert_eq!(inside.ink_on_never, 0.0);
    }
}
