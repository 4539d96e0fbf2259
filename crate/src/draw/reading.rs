//! What the page shows for one drawing or photo: the 28×28 each model is given when the
//! image is only resized and when it is framed as MNIST framed its digits, every model's most
//! probable digits under both, and one sentence that says what the difference did.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::frame::{frame_any, ink_box, Framing, BOX, FRAME};
use crate::data::paper::{find_ink, Polarity};
use crate::data::raw::decode_image;
use crate::data::RawImage;
use crate::models::Arch;
use crate::predict::{answer_frames, Guess, Model};
use crate::{Error, Result};

/// Sides of the square drawings taken: MNIST's, and the page's canvas (ten times it).
pub const DRAWING_SIDES: [usize; 2] = [FRAME, 10 * FRAME];

/// A drawing as the page sends it: ink levels in [0, 1] (0 paper, 1 ink), row-major, a
/// square of one of [`DRAWING_SIDES`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drawing {
    pub pixels: Vec<f32>,
}

/// One model's answer under one preparation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelAnswer {
    /// `MLP` or `CNN`.
    pub kind: &'static str,
    /// The run's name, e.g. `mlp-seed0`.
    pub model: String,
    pub top: Vec<Guess>,
}

/// One preparation of the image: its name, the 28×28 the models were given, their answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preparation {
    /// `resize` or `mnist-frame`, as everywhere in the study.
    pub framing: &'static str,
    /// `resized` or `framed`: how the page and the sentence say it.
    pub name: &'static str,
    /// Ink levels, row-major, rounded to 3 decimals (what the page draws).
    pub image: Vec<f32>,
    pub answers: Vec<ModelAnswer>,
}

/// Everything the page shows for one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    /// Resized first, then framed.
    pub preparations: Vec<Preparation>,
    /// How much of the resized 28×28 the digit spans (see `span`), in [0, 1].
    pub span: f32,
    pub sentence: String,
}

/// The page's drawing read by every model; a drawing of the wrong size, a value outside
/// [0, 1] or a blank one is an error that says so.
pub fn read_drawing(drawing: &Drawing, models: &[Model]) -> Result<Reading> {
    let n = drawing.pixels.len();
    let Some(side) = DRAWING_SIDES.into_iter().find(|s| s * s == n) else {
        return Err(Error::invalid(format!(
            "a drawing has {} or {} pixel values (28x28 or 280x280), got {n}; send one ink level per pixel",
            FRAME * FRAME,
            100 * FRAME * FRAME
        )));
    };
    let img = RawImage::new(side, side, drawing.pixels.clone())?;
    read_image(&img, Some(Polarity::Bright), models)
}

/// A PNG or JPEG file's bytes read by every model, the ink's polarity decided from the image
/// as `digits predict` decides it.
pub fn read_photo(bytes: &[u8], models: &[Model]) -> Result<Reading> {
    let img = decode_image(Path::new("the photo"), bytes)?;
    read_image(&img, None, models)
}

fn read_image(img: &RawImage, polarity: Option<Polarity>, models: &[Model]) -> Result<Reading> {
    let prepare = |framing| frame_any(&img.pixels, img.width, img.height, polarity, framing);
    let blank = || {
        Error::invalid(
            "no ink found: the image looks blank; draw a digit, or use a photo with more contrast",
        )
    };
    let resized = prepare(Framing::Resize).ok_or_else(blank)?;
    let framed = prepare(Framing::MnistFrame).ok_or_else(blank)?;
    let span = span(img, polarity);
    let answers = answer_frames([resized.clone(), framed.clone()].concat(), models)?;
    let kinds: Vec<&'static str> = models.iter().map(|m| kind(m.arch)).collect();
    let preparation = |framing: Framing, name, image: Vec<f32>, answers: &Vec<_>| Preparation {
        framing: framing.name(),
        name,
        image: image
            .iter()
            .map(|v| (v * 1000.0).round() / 1000.0)
            .collect(),
        answers: answers
            .iter()
            .zip(&kinds)
            .map(|(a, &kind): (&crate::predict::Answer, _)| ModelAnswer {
                kind,
                model: a.model.clone(),
                top: a.top.clone(),
            })
            .collect(),
    };
    let best = |k: usize| -> Vec<u8> { answers[k].iter().map(|a| a.top[0].digit).collect() };
    let sentence = sentence(&kinds, &best(0), &best(1), span);
    Ok(Reading {
        preparations: vec![
            preparation(Framing::Resize, "resized", resized, &answers[0]),
            preparation(Framing::MnistFrame, "framed", framed, &answers[1]),
        ],
        span,
        sentence,
    })
}

/// How much of the resized frame the digit spans: its ink's box (the ink found on the paper,
/// as `mnist-frame` finds it, so a photo's grey paper does not count) over the image's size,
/// the larger of the two sides' shares, since resizing stretches each side on its own.
fn span(img: &RawImage, polarity: Option<Polarity>) -> f32 {
    find_ink(&img.pixels, img.width, img.height, polarity)
        .and_then(|ink| {
            let (x0, y0, x1, y1) = ink_box(&ink.pixels, ink.width)?;
            Some(((x1 - x0) as f32 / ink.width as f32).max((y1 - y0) as f32 / ink.height as f32))
        })
        .unwrap_or(0.0)
}

/// `MLP` or `CNN`.
fn kind(arch: Arch) -> &'static str {
    match arch.family() {
        Arch::Mlp => "MLP",
        _ => "CNN",
    }
}

/// What the models read under one preparation: `both models read 7`, or `the MLP reads 1
/// and the CNN reads 7`. With `before` (the framed answers), a model that reads the same
/// `still reads` it.
fn what_they_read(kinds: &[&str], digits: &[u8], before: Option<&[u8]>) -> String {
    if digits.len() > 1 && digits.iter().all(|&d| d == digits[0]) {
        let who = if digits.len() == 2 {
            "both models".to_string()
        } else {
            format!("all {} models", digits.len())
        };
        return format!("{who} read {}", digits[0]);
    }
    let each: Vec<String> = kinds
        .iter()
        .zip(digits)
        .enumerate()
        .map(|(i, (kind, d))| {
            let verb = match before {
                Some(b) if b[i] == *d => "still reads",
                _ => "reads",
            };
            format!("the {kind} {verb} {d}")
        })
        .collect();
    each.join(" and ")
}

/// One sentence on the models' best digits, resized and framed, e.g. "Framed, both models
/// read 7; resized, the MLP reads 1 and the CNN still reads 7 (the digit spans 18% of the
/// frame; framing makes it 71%)."
pub fn sentence(kinds: &[&str], resized: &[u8], framed: &[u8], span: f32) -> String {
    if resized == framed {
        return format!(
            "Resized or framed, {}.",
            what_they_read(kinds, framed, None)
        );
    }
    format!(
        "Framed, {}; resized, {} (the digit spans {:.0}% of the frame; framing makes it {:.0}%).",
        what_they_read(kinds, framed, None),
        what_they_read(kinds, resized, Some(framed)),
        100.0 * span,
        100.0 * BOX as f32 / FRAME as f32
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [&str; 2] = ["MLP", "CNN"];

    #[test]
    fn the_sentence_names_what_changed() {
        assert_eq!(
            sentence(&KINDS, &[7, 7], &[7, 7], 0.7),
            "Resized or framed, both models read 7."
        );
        assert_eq!(
            sentence(&KINDS, &[1, 7], &[7, 7], 0.18),
            "Framed, both models read 7; resized, the MLP reads 1 and the CNN still reads 7 (the digit spans 18% of the frame; framing makes it 71%)."
        );
        assert_eq!(
            sentence(&KINDS, &[1, 1], &[7, 4], 0.5),
            "Framed, the MLP reads 7 and the CNN reads 4; resized, both models read 1 (the digit spans 50% of the frame; framing makes it 71%)."
        );
    }

    #[test]
    fn drawings_of_the_wrong_size_or_values_are_refused() {
        let refusal = |pixels: Vec<f32>| read_drawing(&Drawing { pixels }, &[]).unwrap_err();
        let e = refusal(vec![0.0; 100]);
        assert!(e.to_string().contains("got 100"), "{e}");
        let mut pixels = vec![0.0; 784];
        pixels[3] = f32::INFINITY;
        let e = refusal(pixels);
        assert!(e.to_string().contains("outside [0, 1]"), "{e}");
        let e = refusal(vec![0.0; 784]);
        assert!(e.to_string().contains("no ink found"), "{e}");
    }
}
