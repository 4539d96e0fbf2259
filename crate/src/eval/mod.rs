//! What a trained model does on a data set: accuracy, per-class accuracy, confusion matrix,
//! confidence, and the mistakes themselves.

use serde::Serialize;

use crate::data::Dataset;
use crate::engine::infer::Net;
use crate::models::{Arch, ConvAlgo, Weights};
use crate::{Error, Result};

/// Check that a data set is in the models' 28×28 input frame.
pub fn require_mnist_frame(ds: &Dataset) -> Result<()> {
    if ds.width != 28 || ds.height != 28 {
        return Err(Error::invalid(format!(
            "data set `{}` has {}x{} images; the models take 28x28: bring it into MNIST's frame first (`--framing resize` or `--framing mnist-frame`)",
            ds.name, ds.width, ds.height
        )));
    }
    if ds.is_empty() {
        return Err(Error::invalid(format!("data set `{}` is empty", ds.name)));
    }
    Ok(())
}

/// Class probabilities (softmax of the logits), `n × 10`, by the forward-only pass.
pub fn predict_probabilities(net: &Net, ds: &Dataset) -> Vec<f32> {
    predict_images(net, &ds.images, ds.pixels())
}

/// Class probabilities of 28×28 images stored one after another (`px` values each), `n × 10`:
/// what [`predict_probabilities`] computes, for images that come without labels.
pub fn predict_images(net: &Net, images: &[f32], px: usize) -> Vec<f32> {
    crate::runtime::keep_freed_memory();
    let logits = crate::runtime::on_pool(|| net.logits(images, images.len() / px));
    logits.chunks(10).flat_map(softmax).collect()
}

/// Softmax computed in f64 with the maximum subtracted, so large logits cannot overflow.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

/// Index of the largest value (the first on ties).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

/// A misclassified image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mistake {
    /// Position in the evaluated data set.
    pub index: usize,
    pub label: u8,
    pub predicted: u8,
    /// The probability the model gave its (wrong) answer.
    pub confidence: f32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub dataset: String,
    pub source_sha256: String,
    pub n: usize,
    pub accuracy: f64,
    /// Mean cross-entropy (negative log-probability of the true class).
    pub loss: f64,
    /// Accuracy on the images of each true class (NaN where a class has no image).
    pub per_class_accuracy: [f64; 10],
    /// `confusion[true][predicted]` counts.
    pub confusion: [[u32; 10]; 10],
    /// Mean probability of the predicted class.
    pub mean_confidence: f64,
    /// Every mistake, most confident first.
    pub mistakes: Vec<Mistake>,
    /// `n × 10` class probabilities, for calibration and further analysis.
    #[serde(skip)]
    pub probabilities: Vec<f32>,
}

impl Evaluation {
    /// The evaluation as `digits eval` prints it: accuracy, per-class accuracy, the confusion
    /// matrix and the `mistakes` most confident mistakes.
    pub fn text(&self, arch: Arch, mistakes: usize) -> String {
        use std::fmt::Write;
        let e = self;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{arch} on {} ({} images): accuracy {:.2}%, mean confidence {:.3}, loss {:.4}",
            e.dataset,
            e.n,
            100.0 * e.accuracy,
            e.mean_confidence,
            e.loss
        );
        let _ = writeln!(
            out,
            "per class: {}",
            (0..10)
                .map(|c| format!("{c}:{:.1}%", 100.0 * e.per_class_accuracy[c]))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = writeln!(out, "confusion (rows: true digit, columns: predicted)");
        let _ = writeln!(
            out,
            "     {}",
            (0..10).map(|c| format!("{c:>5}")).collect::<String>()
        );
        for (t, row) in e.confusion.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {t}: {}",
                row.iter().map(|v| format!("{v:>5}")).collect::<String>()
            );
        }
        let _ = writeln!(out, "{} mistakes; most confident:", e.mistakes.len());
        for m in e.mistakes.iter().take(mistakes) {
            let _ = writeln!(
                out,
                "  #{:<6} true {} predicted {} with p={:.3}",
                m.index, m.label, m.predicted, m.confidence
            );
        }
        out
    }
}

/// Summarise probabilities against the labels.
pub fn summarise(ds: &Dataset, probabilities: Vec<f32>) -> Evaluation {
    let mut confusion = [[0u32; 10]; 10];
    let mut mistakes = Vec::new();
    let (mut loss, mut confidence) = (0.0f64, 0.0f64);
    for (i, (row, &label)) in probabilities.chunks(10).zip(&ds.labels).enumerate() {
        let pred = argmax(row);
        confusion[label as usize][pred] += 1;
        loss -= (row[label as usize] as f64).max(1e-30).ln();
        confidence += row[pred] as f64;
        if pred != label as usize {
            mistakes.push(Mistake {
                index: i,
                label,
                predicted: pred as u8,
                confidence: row[pred],
            });
        }
    }
    mistakes.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.index.cmp(&b.index))
    });
    let n = ds.len();
    let correct: u32 = (0..10).map(|c| confusion[c][c]).sum();
    let mut per_class_accuracy = [f64::NAN; 10];
    for (c, acc) in per_class_accuracy.iter_mut().enumerate() {
        let total: u32 = confusion[c].iter().sum();
        if total > 0 {
            *acc = confusion[c][c] as f64 / total as f64;
        }
    }
    Evaluation {
        dataset: ds.name.clone(),
        source_sha256: ds.source_sha256.clone(),
        n,
        accuracy: correct as f64 / n as f64,
        loss: loss / n as f64,
        per_class_accuracy,
        confusion,
        mean_confidence: confidence / n as f64,
        mistakes,
        probabilities,
    }
}

/// Evaluate a forward-only network (see [`crate::models::model_net`] for a built model).
pub fn evaluate_net(net: &Net, ds: &Dataset) -> Result<Evaluation> {
    require_mnist_frame(ds)?;
    Ok(summarise(ds, predict_probabilities(net, ds)))
}

/// Evaluate weights of an architecture, its convolutions computed by the default algorithm.
pub fn evaluate(arch: Arch, weights: &Weights, ds: &Dataset) -> Result<Evaluation> {
    evaluate_net(&arch.inference_net(weights, ConvAlgo::default())?, ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_agree_with_hand_computed_values() {
        let ds = Dataset::new("t", vec![0.0; 3 * 4], vec![1, 2, 2], 2, 2, "x").unwrap();
        let mut probs = vec![0.0f32; 30];
        probs[1] = 0.9; // image 0: right (1), confidence 0.9
        probs[10] = 0.1;
        probs[10 + 2] = 0.8; // image 1: right (2)
        probs[20 + 7] = 0.6; // image 2: wrong (7 for 2)
        probs[20 + 2] = 0.3;
        let e = summarise(&ds, probs);
        assert!((e.accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(e.confusion[2][7], 1);
        assert_eq!(e.confusion[1][1], 1);
        assert_eq!(e.per_class_accuracy[2], 0.5);
        assert!(e.per_class_accuracy[0].is_nan());
        assert_eq!(
            e.mistakes,
            vec![Mistake {
                index: 2,
                label: 2,
                predicted: 7,
                confidence: 0.6
            }]
        );
        assert!((e.mean_confidence - (0.9 + 0.8 + 0.6) / 3.0).abs() < 1e-6);
        let want_loss = -(0.9f64.ln() + 0.8f64.ln() + 0.3f64.ln()) / 3.0;
        assert!((e.loss - want_loss).abs() < 1e-6);
    }

    #[test]
    fn softmax_is_stable_for_large_logits() {
        let p = softmax(&[1000.0, 1000.0, -1000.0]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6 && p[2] == 0.0);
    }
}
