//! `digits predict`: what trained models say about digits as users have them, one image
//! file at a time.
//!
//! Each file is read as [`data::raw`](crate::data::raw) reads images (PNG or JPEG, any size,
//! any channels, at most [`MAX_PIXELS`](crate::data::raw::MAX_PIXELS)), brought into MNIST's
//! frame with `mnist-frame` (the ink found on the paper, polarity decided per image), and
//! given to every model, which answers with its three most probable digits.
//!
//! - Inputs ([`input_files`]): a file is taken as named; a folder means every PNG or JPEG
//!   file under it, subfolders included (so a `DIR/0/ … DIR/9/` data set folder works too),
//!   sorted by path, hidden files and folders skipped.
//! - Models ([`load_models`]): the run folders or weight files given, or by default the
//!   study's seed-0 runs of `mlp` and `cnn-keras` (the published MLP, and the CNN trained as
//!   the original trained it) in the study's runs folder.
//! - A file that cannot be predicted (unreadable, above the pixel limit, or blank: no ink
//!   found) gets its own one-line error, and every other file is still predicted.
//! - [`figure`] draws, per image, the input and the 28×28 the models saw, captioned with
//!   their answers.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::frame::{resize_image, FRAME};
use crate::data::raw::{is_image_file, read_image, RawImage};
use crate::data::{Dataset, Framing};
use crate::eval::predict_probabilities;
use crate::models::{Arch, ConvAlgo, Weights};
use crate::plot::{digit_grid, Figure};
use crate::study::VARIANTS;
use crate::train::run::load_model;
use crate::{Error, Result};

/// The study variants whose seed-0 runs answer when no weights are given.
pub const DEFAULT_VARIANTS: [&str; 2] = ["mlp", "cnn-keras"];
/// How many of each model's most probable digits are reported.
pub const TOP: usize = 3;

/// A trained model and what to call it.
pub struct Model {
    /// The run folder's (or weights file's) name, e.g. `mlp-seed0`.
    pub name: String,
    pub arch: Arch,
    pub weights: Weights,
}

/// One digit and the probability a model gave it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Guess {
    pub digit: u8,
    pub probability: f32,
}

/// One model's answer: its most probable digits, most probable first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Answer {
    pub model: String,
    pub top: Vec<Guess>,
}

/// Every model's answer on one image, with the input and what the models saw.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    pub file: PathBuf,
    pub width: usize,
    pub height: usize,
    pub answers: Vec<Answer>,
    /// The image as read (grey levels in [0, 1], either polarity).
    #[serde(skip)]
    pub input: RawImage,
    /// The 28×28 framing the models were given.
    #[serde(skip)]
    pub framed: Vec<f32>,
}

/// The run folders used when no weights are given: the study's seed-0 runs of
/// [`DEFAULT_VARIANTS`] under `runs_dir`, named as `digits study` names them.
pub fn default_runs(runs_dir: &Path) -> Vec<PathBuf> {
    DEFAULT_VARIANTS
        .iter()
        .map(|name| {
            VARIANTS
                .iter()
                .find(|v| v.name == *name)
                .expect("default variants are study variants")
                .run_dir(runs_dir, 0)
        })
        .collect()
}

/// Loads the models at `weights`, or the default runs under `runs_dir` when `weights` is
/// empty (an error saying how to make them when one is missing).
pub fn load_models(weights: &[PathBuf], runs_dir: &Path) -> Result<Vec<Model>> {
    let defaults = weights.is_empty();
    let paths = if defaults {
        default_runs(runs_dir)
    } else {
        weights.to_vec()
    };
    paths
        .iter()
        .map(|path| {
            if defaults && !path.exists() {
                return Err(Error::Missing {
                    path: path.clone(),
                    hint: format!(
                        "no trained {} to predict with; run `digits study` (or `digits train mlp` and `digits train cnn --augment keras`), or pass --weights RUN",
                        DEFAULT_VARIANTS.join(" and ")
                    ),
                });
            }
            let (arch, weights) = load_model(path)?;
            let name = path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            // A bare weights file is named after its folder: `model` says nothing.
            let name = match (name.as_str(), path.is_file()) {
                ("model", true) => path
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or(name),
                _ => name,
            };
            Ok(Model {
                name,
                arch,
                weights,
            })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_image_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// The files to predict, in order: each path as given when it is not a folder, every image
/// file under it, sorted, when it is. A folder without images, or one that cannot be
/// listed, is an error of its own, in its place.
pub fn input_files(paths: &[PathBuf]) -> Vec<Result<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            out.push(Ok(path.clone()));
            continue;
        }
        let mut files = Vec::new();
        match walk(path, &mut files) {
            Err(e) => out.push(Err(e)),
            Ok(()) if files.is_empty() => out.push(Err(Error::invalid(format!(
                "{}: no PNG or JPEG files in this folder; name image files or a folder holding them",
                path.display()
            )))),
            Ok(()) => {
                files.sort();
                out.extend(files.into_iter().map(Ok));
            }
        }
    }
    out
}

/// One file read and framed, or its one-line error.
fn read_and_frame(path: &Path, framing: Framing) -> Result<(RawImage, Vec<f32>)> {
    let input = read_image(path)?;
    let framed = input.frame(framing).ok_or_else(|| {
        Error::format(
            path,
            "no ink found: the image looks blank; photograph or scan the digit with more contrast",
        )
    })?;
    Ok((input, framed))
}

/// The [`TOP`] most probable digits of a probability row, most probable first (the lower
/// digit first on ties).
pub fn top_digits(probabilities: &[f32]) -> Vec<Guess> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then(a.cmp(&b))
    });
    order
        .into_iter()
        .take(TOP)
        .map(|d| Guess {
            digit: d as u8,
            probability: probabilities[d],
        })
        .collect()
}

/// Every model's answer on 28×28 images stored one after another: per image, one
/// [`Answer`] per model, in model order. Each model answers all the images in one batch.
pub fn answer_frames(frames: Vec<f32>, models: &[Model]) -> Result<Vec<Vec<Answer>>> {
    let n = frames.len() / (FRAME * FRAME);
    if n == 0 {
        return Ok(Vec::new());
    }
    let ds = Dataset::new("inputs", frames, vec![0; n], FRAME, FRAME, "")?;
    let mut per_model = Vec::with_capacity(models.len());
    for m in models {
        let net = m.arch.inference_net(&m.weights, ConvAlgo::default())?;
        per_model.push(predict_probabilities(&net, &ds));
    }
    Ok((0..n)
        .map(|k| {
            models
                .iter()
                .zip(&per_model)
                .map(|(m, probs)| Answer {
                    model: m.name.clone(),
                    top: top_digits(&probs[k * 10..(k + 1) * 10]),
                })
                .collect()
        })
        .collect())
}

/// Every input's prediction by every model, or its error, in input order. Readable images
/// are framed first (`mnist-frame`) and each model then answers all of them in one batch.
pub fn predict_all(
    inputs: Vec<Result<PathBuf>>,
    models: &[Model],
) -> Result<Vec<Result<Prediction>>> {
    predict_framed(inputs, models, Framing::MnistFrame)
}

/// [`predict_all`] with the images brought to 28×28 by `framing`: `resize` shows what the
/// models answer without the ink found and framed (dark ink is still made bright).
pub fn predict_framed(
    inputs: Vec<Result<PathBuf>>,
    models: &[Model],
    framing: Framing,
) -> Result<Vec<Result<Prediction>>> {
    let read: Vec<Result<(PathBuf, RawImage, Vec<f32>)>> = inputs
        .into_iter()
        .map(|p| {
            let p = p?;
            let (input, framed) = read_and_frame(&p, framing)?;
            Ok((p, input, framed))
        })
        .collect();
    let framed: Vec<f32> = read
        .iter()
        .flatten()
        .flat_map(|(_, _, f)| f.iter().copied())
        .collect();
    let mut answers = answer_frames(framed, models)?.into_iter();
    Ok(read
        .into_iter()
        .map(|r| {
            let (file, input, framed) = r?;
            let answers = answers.next().expect("one answer per framed image");
            Ok(Prediction {
                file,
                width: input.width,
                height: input.height,
                answers,
                input,
                framed,
            })
        })
        .collect())
}

impl Prediction {
    /// One line: the file, its size, and each model's answers with percentages.
    pub fn line(&self) -> String {
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|a| {
                let top: Vec<String> = a
                    .top
                    .iter()
                    .map(|g| format!("{} {:.1}%", g.digit, 100.0 * g.probability))
                    .collect();
                format!("{}: {}", a.model, top.join(", "))
            })
            .collect();
        format!(
            "{} ({}x{}): {}",
            self.file.display(),
            self.width,
            self.height,
            answers.join(" | ")
        )
    }
}

/// Side of the square cells of [`figure`]: twice MNIST's, so the framed digit is drawn at
/// a whole 2× and an input of any shape fits, letterboxed, beside it.
const CELL: usize = 2 * FRAME;

/// The input letterboxed into a `CELL`×`CELL` square, ink dark as on paper whatever its
/// polarity in the file.
fn input_cell(input: &RawImage) -> Vec<f32> {
    cell(&input.ink_bright(), input.width, input.height)
}

/// Per prediction, two cells: the input (captioned with its file name) and the 28×28 the
/// models saw, drawn at 2× (captioned with each model's best digit and probability).
pub fn figure(predictions: &[Prediction]) -> Result<Figure> {
    if predictions.is_empty() {
        return Err(Error::invalid(
            "nothing to draw: no image could be predicted",
        ));
    }
    let mut images = Vec::with_capacity(predictions.len() * 2 * CELL * CELL);
    let mut captions = Vec::with_capacity(predictions.len() * 2);
    for p in predictions {
        images.extend(input_cell(&p.input));
        images.extend(enlarged(&p.framed));
        let name = p
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        captions.push(name);
        let best: Vec<String> = p
            .answers
            .iter()
            .map(|a| {
                let g = &a.top[0];
                format!("{} {} ({:.0}%)", a.model, g.digit, 100.0 * g.probability)
            })
            .collect();
        captions.push(best.join(", "));
    }
    digit_grid(&images, CELL, CELL, &captions, 2, "input | 28x28 seen")
}

/// A 28×28 frame drawn at a whole 2× into a `CELL`×`CELL` cell.
fn enlarged(framed: &[f32]) -> Vec<f32> {
    (0..CELL * CELL)
        .map(|i| framed[(i / CELL / 2) * FRAME + (i % CELL) / 2])
        .collect()
}

/// A `w`×`h` image letterboxed into a `CELL`×`CELL` square (0 around it).
fn cell(img: &[f32], w: usize, h: usize) -> Vec<f32> {
    let side = w.max(h);
    let (ox, oy) = ((side - w) / 2, (side - h) / 2);
    let mut square = vec![0.0f32; side * side];
    for y in 0..h {
        square[(oy + y) * side + ox..(oy + y) * side + ox + w]
            .copy_from_slice(&img[y * w..(y + 1) * w]);
    }
    resize_image(&square, side, side, CELL, CELL)
}

/// The steps of `mnist-frame` on each image, one row per image (see
/// [`paper::ink_stages`](crate::data::paper::ink_stages)): the file as it looks, its ink
/// made bright (drawn dark, as every digit figure draws ink), the paper taken away (scaled to
/// its largest value to be seen), the ink levels after the noise floor, the specks dropped,
/// the 28×28 frame, and beside it the plain `resize` for comparison. An image without ink
/// gets blank cells and says so.
pub fn framing_figure(files: &[PathBuf], images: &[RawImage]) -> Result<Figure> {
    const COLUMNS: usize = 7;
    if files.len() != images.len() || images.is_empty() {
        return Err(Error::invalid(format!(
            "framing figure: {} files and {} images; give one image per file, at least one",
            files.len(),
            images.len()
        )));
    }
    let mut cells = Vec::with_capacity(images.len() * COLUMNS * CELL * CELL);
    let mut captions = Vec::with_capacity(images.len() * COLUMNS);
    for (file, img) in files.iter().zip(images) {
        let (w, h) = (img.width, img.height);
        let looks: Vec<f32> = img.pixels.iter().map(|v| 1.0 - v).collect();
        cells.extend(cell(&looks, w, h));
        captions.push(
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let resized = img
            .frame(Framing::Resize)
            .unwrap_or_else(|| vec![0.0; FRAME * FRAME]);
        match crate::data::paper::ink_stages(&img.pixels, w, h, None) {
            Some(s) => {
                let top = s.no_paper.iter().copied().fold(f32::MIN_POSITIVE, f32::max);
                let no_paper: Vec<f32> = s.no_paper.iter().map(|v| v / top).collect();
                let framed = crate::data::frame::crop_to_frame(&s.clean, s.width);
                for stage in [&s.bright, &no_paper, &s.ink, &s.clean] {
                    cells.extend(cell(stage, s.width, s.height));
                }
                cells.extend(enlarged(&framed));
                let polarity = match s.polarity {
                    crate::data::paper::Polarity::Dark => "1 dark ink",
                    crate::data::paper::Polarity::Bright => "1 light ink",
                };
                captions.extend(
                    [
                        polarity,
                        "2 paper off",
                        "3 ink levels",
                        "3 specks off",
                        "4 framed",
                    ]
                    .map(String::from),
                );
            }
            None => {
                cells.extend(vec![0.0; 5 * CELL * CELL]);
                captions.extend(["no ink found", "", "", "", ""].map(String::from));
            }
        }
        cells.extend(enlarged(&resized));
        captions.push("resize".into());
    }
    digit_grid(
        &cells,
        CELL,
        CELL,
        &captions,
        COLUMNS,
        "the four steps of mnist-frame, and plain resize",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_digits_are_ordered_and_ties_take_the_lower_digit() {
        let p = [0.1, 0.3, 0.0, 0.3, 0.05, 0.05, 0.1, 0.05, 0.05, 0.0];
        let top = top_digits(&p);
        let digits: Vec<u8> = top.iter().map(|g| g.digit).collect();
        assert_eq!(digits, vec![1, 3, 0]);
        assert_eq!(top[0].probability, 0.3);
    }

    #[test]
    fn default_runs_are_the_study_seed0_runs() {
        let runs = default_runs(Path::new("runs"));
        assert_eq!(
            runs,
            vec![
                PathBuf::from("runs/mlp-seed0"),
                PathBuf::from("runs/cnn-keras-seed0")
            ]
        );
        let e = load_models(&[], Path::new("/nonexistent-runs"))
            .err()
            .expect("no runs there")
            .to_string();
        assert!(e.contains("digits study") && e.contains("--weights"), "{e}");
    }

    #[test]
    fn inputs_walk_folders_in_order() {
        let dir = std::env::temp_dir().join(format!("digits-predict-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("b/.hidden")).unwrap();
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        for f in [
            "b/2.png",
            "a.JPG",
            "b/.hidden/x.png",
            "notes.txt",
            "b/1.jpeg",
        ] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        let got: Vec<String> = input_files(std::slice::from_ref(&dir))
            .into_iter()
            .map(|r| r.unwrap().strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(got, vec!["a.JPG", "b/1.jpeg", "b/2.png"]);
        let e = input_files(&[dir.join("empty")]).remove(0).unwrap_err();
        assert!(e.to_string().contains("no PNG or JPEG files"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
