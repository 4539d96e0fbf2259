//! The figures of one training run, exported to a folder (`img/` in the study): training
//! curves under the original study's file names, confusion matrices, the most confident
//! mistakes, and what the first layer learned.

use std::path::{Path, PathBuf};

use crate::adapt::run::{is_adapt_record, load_adapt_record};
use crate::data::{Dataset, Framing};
use crate::eval::evaluate;
use crate::models::Weights;
use crate::plot::{
    confusion_matrix, digit_grid, training_curves, training_curves_file, weight_images, Figure,
    Metric,
};
use crate::train::run::{load_history, load_model, load_record, try_domain};
use crate::Result;

/// The domains whose confusion matrices and mistakes are drawn.
const DOMAINS: &[(&str, Framing)] = &[
    ("mnist-test", Framing::Resize),
    ("usps-test", Framing::Resize),
    ("usps-test", Framing::MnistFrame),
];

/// The stem of a run's figure files: the run folder's name without its `-seed<N>` and with
/// `_` for `-` (`runs/mlp-seed0` → `mlp`, `runs/cnn-keras-seed0` → `cnn_keras`, an adapted
/// `runs/cnn-keras-seed0-adapt-usps-esl-train-resize` → `cnn_keras_adapt_usps_esl_train_resize`),
/// so the default runs get the original study's names.
pub fn figure_stem(run_dir: &Path, seed: u64) -> String {
    let name = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tag = format!("-seed{seed}");
    let name = match name.strip_suffix(&tag) {
        Some(stem) => stem.to_string(),
        None => name.replacen(&format!("{tag}-"), "-", 1),
    };
    name.replace('-', "_")
}

/// Write every figure of the run in `run_dir` into `out`; returns the files written. An
/// adapted run (made by `digits adapt`) has no epochs to draw curves of; the rest is drawn.
pub fn export_run_figures(run_dir: &Path, data_dir: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let (seed, history) = if is_adapt_record(run_dir) {
        (load_adapt_record(run_dir)?.source.config.seed, None)
    } else {
        let record = load_record(run_dir)?;
        (record.config.seed, Some(load_history(run_dir)?))
    };
    let (arch, weights) = load_model(run_dir)?;
    let stem = figure_stem(run_dir, seed);
    let mut written = Vec::new();
    let mut save = |fig: Figure, file: String| fig.save_into(out, file, &mut written);
    if let Some(history) = history {
        for metric in [Metric::Accuracy, Metric::Loss] {
            let fig = training_curves(&[(stem.as_str(), history.as_slice())], metric)?;
            save(fig, training_curves_file(&stem, metric))?;
        }
    }
    for &(spec, framing) in DOMAINS {
        let Some(ds) = try_domain(spec, data_dir, framing)? else {
            continue;
        };
        let e = evaluate(arch, &weights, &ds)?;
        let tag = e.dataset.replace(['[', '-'], "_").replace(']', "");
        let title = format!("{stem} on {}: {:.2}% right", e.dataset, 100.0 * e.accuracy);
        save(
            confusion_matrix(&e.confusion, &title)?,
            format!("{stem}_confusion_{tag}.png"),
        )?;
        save(
            mistakes_grid(&ds, &e.mistakes, &title)?,
            format!("{stem}_mistakes_{tag}.png"),
        )?;
    }
    save(first_layer(&weights)?, format!("{stem}_first_layer.png"))?;
    Ok(written)
}

/// The 24 most confident mistakes, captioned `true → predicted (confidence)`.
fn mistakes_grid(ds: &Dataset, mistakes: &[crate::eval::Mistake], title: &str) -> Result<Figure> {
    let shown = &mistakes[..mistakes.len().min(24)];
    let mut images = Vec::with_capacity(shown.len() * ds.pixels());
    let mut captions = Vec::with_capacity(shown.len());
    for m in shown {
        images.extend_from_slice(ds.image(m.index));
        captions.push(format!(
            "{} → {} ({:.2})",
            m.label, m.predicted, m.confidence
        ));
    }
    let title = format!("most confident mistakes, {title}");
    digit_grid(&images, ds.width, ds.height, &captions, 8, &title)
}

/// What the first layer learned: a dense layer's first 32 units as 28×28 weight images, or a
/// convolution's first 32 3×3 filters.
fn first_layer(weights: &Weights) -> Result<Figure> {
    let w = &weights.tensors[0];
    let count = w.shape[0].min(32);
    if w.shape.len() == 4 {
        let title = format!("first layer: {count} of the {} 3×3 filters", w.shape[0]);
        weight_images(&w.data, count, w.shape[3], w.shape[2], 8, &title)
    } else {
        let title = format!(
            "first layer: weights of {count} of the {} units",
            w.shape[0]
        );
        weight_images(&w.data, count, 28, 28, 8, &title)
    }
}

#[cfg(test)]
mod stem_tests {
    use super::figure_stem;
    use std::path::Path;

    #[test]
    fn figure_stems_drop_the_seed_wherever_the_folder_name_has_it() {
        let stem = |dir: &str, seed| figure_stem(Path::new(dir), seed);
        assert_eq!(stem("runs/mlp-seed0", 0), "mlp");
        assert_eq!(stem("runs/cnn-keras-seed3", 3), "cnn_keras");
        assert_eq!(
            stem("runs/mlp-usps-esl-train-seed1", 1),
            "mlp_usps_esl_train"
        );
        assert_eq!(
            stem("runs/cnn-keras-seed0-adapt-usps-esl-train-mnist-frame", 0),
            "cnn_keras_adapt_usps_esl_train_mnist_frame"
        );
        // A folder named otherwise keeps its name.
        assert_eq!(stem("out/my-run", 2), "my_run");
    }
}
