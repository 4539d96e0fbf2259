//! The study's figures, into `img/` (file names start with `study_`), plus each variant's
//! seed-0 run figures (curves under the original study's names, confusion matrices, mistakes,
//! first layer).

use std::path::{Path, PathBuf};

use crate::engine::kernels::{conv_forward, im2col, ConvDims};
use crate::models::Weights;
use crate::plot::run::export_run_figures;
use crate::plot::{
    bar_chart, bar_chart_with_line, digit_grid, line_chart, stack, weight_images, Figure,
    LineSeriesData,
};
use crate::study::analysis::{framing_name, Tables};
use crate::study::robustness::FAMILIES;
use crate::study::stats::MeanCi;
use crate::study::{variant_named, SetKind, Source, StudyData, StudyView};
use crate::{Error, Result};

/// The domain whose per-class accuracy and reliability are drawn: the original's new domain.
pub const FOCUS_DOMAIN: &str = "usps-test";

/// The variants the comparison figures (accuracy, robustness, per class, reliability) draw:
/// those trained on MNIST alone, the architectures under shift. The USPS-trained and adapted
/// variants answer another question, how much is left, and have their own figure
/// ([`usps_ladder`]); with them, twelve series would crowd each figure and repeat colours.
fn variant_names(t: &Tables) -> Vec<String> {
    t.variant_names()
        .into_iter()
        .filter(|v| variant_named(v).is_none_or(|x| matches!(x.source, Source::Mnist)))
        .map(String::from)
        .collect()
}

/// Bar heights and error-bar half-widths in percent from intervals; a missing cell is a gap
/// (NaN) and an interval of a single seed draws no error bar.
fn bars_of(cells: &[Option<MeanCi>]) -> (Vec<f64>, Vec<f64>) {
    let heights = cells
        .iter()
        .map(|c| c.map_or(f64::NAN, |c| 100.0 * c.mean))
        .collect();
    let errors = cells
        .iter()
        .map(|c| c.map_or(0.0, |c| 100.0 * c.half_width()))
        .map(|e| if e.is_finite() { e } else { 0.0 })
        .collect();
    (heights, errors)
}

/// Mean accuracy per domain, one bar per variant, with 95% intervals over seeds; one figure
/// per framing (MNIST test, `native`, appears in both).
pub fn accuracy_bars(t: &Tables, framing: &str) -> Result<Figure> {
    let variants = variant_names(t);
    let mut domains: Vec<String> = Vec::new();
    for r in &t.accuracy {
        if (r.framing == framing || r.framing == "native") && !domains.contains(&r.domain) {
            domains.push(r.domain.clone());
        }
    }
    let find = |v: &str, d: &str| {
        t.accuracy.iter().find(|r| {
            r.variant == v && r.domain == d && (r.framing == framing || r.framing == "native")
        })
    };
    let mut series = Vec::new();
    let mut errors = Vec::new();
    for v in &variants {
        let cells: Vec<_> = domains.iter().map(|d| find(v, d).map(|r| r.ci)).collect();
        let (heights, bars) = bars_of(&cells);
        series.push((v.as_str(), heights));
        errors.push(bars);
    }
    let groups: Vec<&str> = domains.iter().map(|d| d.as_str()).collect();
    let seeds = t.accuracy.first().map_or(0, |r| r.ci.n);
    bar_chart(
        &groups,
        &series,
        Some(&errors),
        &format!("accuracy per variant, framing `{framing}` (mean of {seeds} seeds, 95% CI)"),
        "accuracy (%)",
    )
}

/// Accuracy against the size of one controlled change, one line per variant with its 95%
/// band over seeds.
pub fn robustness_curve(t: &Tables, family: &str) -> Result<Figure> {
    let variants = variant_names(t);
    let levels: Vec<f64> = FAMILIES
        .iter()
        .find(|(f, _)| *f == family)
        .ok_or_else(|| Error::invalid(format!("no robustness family `{family}`")))?
        .1
        .iter()
        .map(|&l| crate::study::robustness::level_value(l))
        .collect();
    let series: Vec<LineSeriesData> = variants
        .iter()
        .map(|v| {
            let row = |l: f64| {
                t.robustness
                    .iter()
                    .find(|r| r.variant == *v && r.family == family && r.level == l)
            };
            let y = levels
                .iter()
                .map(|&l| row(l).map_or(f64::NAN, |r| 100.0 * r.ci.mean))
                .collect();
            let band = levels
                .iter()
                .map(|&l| {
                    row(l).map_or((f64::NAN, f64::NAN), |r| {
                        (100.0 * r.ci.low, 100.0 * r.ci.high)
                    })
                })
                .collect();
            (v.as_str(), y, Some(band))
        })
        .collect();
    let (x_label, what) = match family {
        "shift" => ("shift (pixels, random direction)", "shifted"),
        "rotate" => ("rotation (degrees, random sign)", "rotated"),
        "scale" => ("scale factor", "scaled"),
        _ => (
            "stroke change (dilation radius, px; negative erodes)",
            "thickened or thinned",
        ),
    };
    let images = t.robustness.first().map_or(0, |r| r.images);
    line_chart(
        &levels,
        &series,
        &format!("MNIST test digits {what} ({images} images; bands: 95% CI over seeds)"),
        x_label,
        "accuracy (%)",
    )
}

/// The gap itself: the accuracy of CNN variant `cnn` minus MLP variant `mlp` on the same
/// images (one of the study's pairs), per domain, in each framing (MNIST test, `native`, in
/// both), with 95% intervals over seeds.
pub fn gap_bars(t: &Tables, mlp: &str, cnn: &str) -> Result<Figure> {
    let rows: Vec<_> = t
        .paired_summary
        .iter()
        .filter(|r| r.mlp == mlp && r.cnn == cnn)
        .collect();
    let mut domains: Vec<&str> = Vec::new();
    for r in &rows {
        if !domains.contains(&r.domain.as_str()) {
            domains.push(&r.domain);
        }
    }
    if domains.is_empty() {
        return Err(Error::invalid(format!(
            "no paired rows of `{mlp}` against `{cnn}`"
        )));
    }
    let cell = |d: &str, f: &str| {
        rows.iter()
            .find(|r| r.domain == d && (r.framing == f || r.framing == "native"))
            .map(|r| r.difference)
    };
    let mut series = Vec::new();
    let mut errors = Vec::new();
    for framing in ["resize", "mnist-frame"] {
        let cells: Vec<_> = domains.iter().map(|d| cell(d, framing)).collect();
        let (heights, bars) = bars_of(&cells);
        series.push((framing, heights));
        errors.push(bars);
    }
    bar_chart(
        &domains,
        &series,
        Some(&errors),
        &format!("{cnn} minus {mlp} on the same images (95% CI over seeds)"),
        "accuracy difference (points)",
    )
}

/// A step of [`usps_ladder`]: (label, MLP variant, CNN variant, framing of USPS test).
pub type LadderStep = (&'static str, &'static str, &'static str, &'static str);

/// The steps of [`usps_ladder`], in order.
#[rustfmt::skip]
pub const LADDER: &[LadderStep] = &[
    ("resized", "mlp", "cnn", "resize"),
    ("resized, augmented", "mlp-keras", "cnn-keras", "resize"),
    ("resized, augmented, adapted", "mlp-keras-adapt-resized", "cnn-keras-adapt-resized", "resize"),
    ("framed", "mlp", "cnn", "mnist-frame"),
    ("framed, augmented", "mlp-keras", "cnn-keras", "mnist-frame"),
    ("framed, augmented, adapted", "mlp-keras-adapt-framed", "cnn-keras-adapt-framed", "mnist-frame"),
    ("trained on USPS", "mlp-usps", "cnn-usps", "mnist-frame"),
];

/// The steps of [`LADDER`] with at least one of their variants in the tables.
fn ladder_steps(t: &Tables) -> Vec<&'static LadderStep> {
    let has = |v: &str, f: &str| t.accuracy_of(v, FOCUS_DOMAIN, f).is_some();
    LADDER
        .iter()
        .filter(|(_, m, c, f)| has(m, f) || has(c, f))
        .collect()
}

/// USPS test step by step, MLP beside CNN with 95% intervals over seeds: MNIST-trained and
/// resized as the original tested, then augmented and adapted to USPS's unlabeled images;
/// the same framed like MNIST; and the in-domain reference (trained on USPS), under the line of
/// human accuracy. Steps whose variants are not in the tables are left out.
pub fn usps_ladder(t: &Tables) -> Result<Figure> {
    let cell = |v: &str, f: &str| t.accuracy_of(v, FOCUS_DOMAIN, f).map(|r| r.ci);
    let steps = ladder_steps(t);
    if steps.is_empty() {
        return Err(Error::invalid(format!(
            "no variant of the ladder has accuracy on {FOCUS_DOMAIN}"
        )));
    }
    let groups: Vec<&str> = steps.iter().map(|s| s.0).collect();
    let (mlp, mlp_err) = bars_of(&steps.iter().map(|s| cell(s.1, s.3)).collect::<Vec<_>>());
    let (cnn, cnn_err) = bars_of(&steps.iter().map(|s| cell(s.2, s.3)).collect::<Vec<_>>());
    let seeds = steps
        .iter()
        .filter_map(|s| cell(s.2, s.3).or(cell(s.1, s.3)))
        .map(|c| c.n)
        .max()
        .unwrap_or(0);
    let human = crate::study::anchors::human_accuracy_pct();
    bar_chart_with_line(
        &groups,
        &[("MLP", mlp), ("CNN", cnn)],
        Some(&[mlp_err, cnn_err]),
        Some((human, &format!("human ({:.1}% error)", 100.0 - human))),
        &format!("{FOCUS_DOMAIN}: from resized to trained on USPS (mean of {seeds} seeds, 95% CI)"),
        "accuracy (%)",
    )
}

/// The file [`write_all`] draws the gap of a pair into: `study_gap_mlp_vs_cnn.png`.
pub fn gap_figure_name(mlp: &str, cnn: &str) -> String {
    format!(
        "study_gap_{}_vs_{}.png",
        mlp.replace('-', "_"),
        cnn.replace('-', "_")
    )
}

/// Error under each framing per variant on one domain: how much the framing explains.
pub fn framing_bars(t: &Tables, domain: &str) -> Result<Figure> {
    let rows: Vec<_> = t.framing.iter().filter(|r| r.domain == domain).collect();
    if rows.is_empty() {
        return Err(Error::invalid(format!("no framing rows for `{domain}`")));
    }
    let groups: Vec<&str> = rows.iter().map(|r| r.variant.as_str()).collect();
    let (resize, resize_bars) = bars_of(
        &rows
            .iter()
            .map(|r| Some(r.error_resize))
            .collect::<Vec<_>>(),
    );
    let (frame, frame_bars) =
        bars_of(&rows.iter().map(|r| Some(r.error_frame)).collect::<Vec<_>>());
    let series = vec![("error, resize", resize), ("error, mnist-frame", frame)];
    let errors = vec![resize_bars, frame_bars];
    bar_chart(
        &groups,
        &series,
        Some(&errors),
        &format!("{domain}: error, resized vs framed like MNIST (95% CI)"),
        "error (%)",
    )
}

/// Reliability diagram: accuracy against confidence per bin, all seeds pooled, with the
/// diagonal of perfect calibration.
pub fn reliability_diagram(t: &Tables, domain: &str, framing: &str) -> Result<Figure> {
    let variants = variant_names(t);
    let bins: Vec<_> = t
        .reliability
        .iter()
        .filter(|r| r.domain == domain && r.framing == framing)
        .collect();
    let Some(first) = bins.first() else {
        return Err(Error::invalid(format!(
            "no reliability rows for {domain} [{framing}]"
        )));
    };
    let centres: Vec<f64> = bins
        .iter()
        .filter(|r| r.variant == first.variant)
        .map(|r| 100.0 * (r.bin_low + r.bin_high) / 2.0)
        .collect();
    let ece = |v: &str| {
        t.calibration
            .iter()
            .find(|c| c.variant == v && c.domain == domain && c.framing == framing)
            .map_or(f64::NAN, |c| 100.0 * c.ece.mean)
    };
    // Legend names carry each model's calibration error; the diagonal comes last so that the
    // models keep the colours they have in every other figure.
    let names: Vec<String> = variants
        .iter()
        .map(|v| format!("{v} (ECE {:.1}%)", ece(v)))
        .collect();
    let mut series: Vec<LineSeriesData> = Vec::new();
    for (v, name) in variants.iter().zip(&names) {
        let y: Vec<f64> = bins
            .iter()
            .filter(|r| r.variant == *v)
            .map(|r| {
                if r.count >= 10 {
                    100.0 * r.accuracy
                } else {
                    f64::NAN
                }
            })
            .collect();
        if y.len() == centres.len() {
            series.push((name.as_str(), y, None));
        }
    }
    series.push(("perfect calibration", centres.clone(), None));
    line_chart(
        &centres,
        &series,
        &format!("reliability on {domain} [{framing}], all seeds pooled"),
        "confidence (%, bin centre; bins under 10 predictions left out)",
        "accuracy (%)",
    )
}

/// Accuracy on each digit class of one domain set, per variant, with 95% intervals.
pub fn per_class_bars(t: &Tables, domain: &str, framing: &str) -> Result<Figure> {
    let variants = variant_names(t);
    let groups: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    let mut series = Vec::new();
    let mut errors = Vec::new();
    for v in &variants {
        let row = |c: u8| {
            t.per_class.iter().find(|r| {
                r.variant == *v && r.domain == domain && r.framing == framing && r.class == c
            })
        };
        let cells: Vec<_> = (0..10).map(|c| row(c).map(|r| r.ci)).collect();
        let (heights, bars) = bars_of(&cells);
        series.push((v.as_str(), heights));
        errors.push(bars);
    }
    let g: Vec<&str> = groups.iter().map(|s| s.as_str()).collect();
    bar_chart(
        &g,
        &series,
        Some(&errors),
        &format!("accuracy per digit on {domain} [{framing}] (95% CI over seeds)"),
        "accuracy (%)",
    )
}

/// The 32 feature maps of the CNN's first convolution (after ReLU) for one 28×28 image,
/// computed by the model's own convolution kernel.
pub fn first_layer_maps(weights: &Weights, image: &[f32]) -> Result<Vec<f32>> {
    let (w, b) = (&weights.tensors[0], &weights.tensors[1]);
    if w.shape.len() != 4 || w.shape[1] != 1 || image.len() != 28 * 28 {
        return Err(Error::invalid(
            "feature maps need a CNN's weights and one 28x28 image",
        ));
    }
    let d = ConvDims::new(1, 1, w.shape[0], 28, 28);
    let mut col = vec![0.0f32; d.col_len()];
    im2col(image, d, &mut col);
    Ok(conv_forward(&col, &w.data, &b.data, d, true))
}

/// Digits and what the CNN's first layer makes of each: one row per digit, the input, then
/// its first 15 feature maps (each scaled to its own maximum).
pub fn feature_map_figure(
    weights: &Weights,
    digits: &[(&str, &[f32])],
    title: &str,
) -> Result<Figure> {
    let shown = 15;
    let mut images = Vec::new();
    let mut captions = Vec::new();
    for (name, img) in digits {
        images.extend_from_slice(img);
        captions.push(name.to_string());
        let maps = first_layer_maps(weights, img)?;
        for (k, m) in maps.chunks(28 * 28).take(shown).enumerate() {
            let max = m.iter().cloned().fold(0.0f32, f32::max);
            images.extend(m.iter().map(|&v| if max > 0.0 { v / max } else { 0.0 }));
            captions.push(format!("map {k}"));
        }
    }
    digit_grid(&images, 28, 28, &captions, shown + 1, title)
}

/// A figure that only the runs can draw: drawn by `draw` when `view` has the runs, else the
/// figures the full study committed under the file names `committed` (in `img/`), stacked.
pub fn drawn_or_committed(
    view: &StudyView,
    committed: &[&str],
    draw: impl FnOnce(&StudyData) -> Result<Figure>,
) -> Result<Figure> {
    match (&view.data, &view.committed_img) {
        (Some(data), _) => draw(data),
        (None, Some(dir)) => {
            let figs = committed
                .iter()
                .map(|f| Figure::open(dir.join(f)))
                .collect::<Result<Vec<_>>>()?;
            match figs.len() {
                1 => Ok(figs.into_iter().next().expect("one figure")),
                _ => stack(&figs),
            }
        }
        (None, None) => Err(Error::invalid(format!(
            "neither runs nor committed figures to show {}; run `make study`",
            committed.join(", ")
        ))),
    }
}

/// Where the ink is: how often MNIST's training digits ink each pixel, then the mean digit of
/// each domain set in each framing (white: no digit ever inks it).
pub fn ink_figure(data: &StudyData) -> Result<Figure> {
    let top = data
        .ink_map
        .frequency
        .iter()
        .cloned()
        .fold(0.0f64, f64::max);
    let mut images: Vec<f32> = data
        .ink_map
        .frequency
        .iter()
        .map(|&f| if top > 0.0 { (f / top) as f32 } else { 0.0 })
        .collect();
    let mut captions = vec!["MNIST train: inked how often".to_string()];
    for set in &data.sets {
        if !matches!(set.kind, SetKind::Domain { .. }) {
            continue;
        }
        let n = set.data.len().max(1) as f32;
        let mut mean = vec![0.0f32; 28 * 28];
        for i in 0..set.data.len() {
            for (m, &v) in mean.iter_mut().zip(set.data.image(i)) {
                *m += v / n;
            }
        }
        let max = mean.iter().cloned().fold(0.0f32, f32::max);
        images.extend(mean.iter().map(|&v| if max > 0.0 { v / max } else { 0.0 }));
        captions.push(format!(
            "{} [{}]",
            set.domain,
            framing_name(&set.domain, &set.kind)
        ));
    }
    digit_grid(
        &images,
        28,
        28,
        &captions,
        5,
        "where the ink is: MNIST's training digits, then each test set's mean digit",
    )
}

/// The MLP's first-layer weights as 28×28 images beside the CNN's 3×3 filters.
pub fn first_layers_figure(mlp: &Weights, cnn: &Weights) -> Result<(Figure, Figure)> {
    let m = &mlp.tensors[0];
    let c = &cnn.tensors[0];
    Ok((
        weight_images(
            &m.data,
            24,
            28,
            28,
            8,
            "MLP: what 24 first-layer units weigh, pixel by pixel (red +, blue −)",
        )?,
        weight_images(
            &c.data,
            32,
            3,
            3,
            8,
            "CNN: the 32 first-layer 3×3 filters, slid over every position",
        )?,
    ))
}

/// Write every study figure into `dir`; returns the files written. `data_dir` is read for the
/// runs' own figures (see [`export_run_figures`]).
pub fn write_all(
    data: &StudyData,
    t: &Tables,
    data_dir: &Path,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut save = |fig: Figure, name: String| fig.save_into(dir, name, &mut written);
    for framing in ["resize", "mnist-frame"] {
        save(
            accuracy_bars(t, framing)?,
            format!("study_accuracy_{}.png", framing.replace('-', "_")),
        )?;
    }
    for (mlp, cnn) in crate::study::PAIRS {
        if t.paired_summary
            .iter()
            .any(|r| r.mlp == *mlp && r.cnn == *cnn)
        {
            save(gap_bars(t, mlp, cnn)?, gap_figure_name(mlp, cnn))?;
        }
    }
    for (family, _) in FAMILIES {
        save(
            robustness_curve(t, family)?,
            format!("study_robustness_{family}.png"),
        )?;
    }
    if !ladder_steps(t).is_empty() {
        save(usps_ladder(t)?, "study_usps_ladder.png".into())?;
    }
    if t.framing.iter().any(|r| r.domain == FOCUS_DOMAIN) {
        save(
            framing_bars(t, FOCUS_DOMAIN)?,
            "study_framing_usps_test.png".into(),
        )?;
    }
    for framing in ["resize", "mnist-frame"] {
        if data.domain_set(FOCUS_DOMAIN, framing).is_err() {
            continue;
        }
        let tag = framing.replace('-', "_");
        save(
            reliability_diagram(t, FOCUS_DOMAIN, framing)?,
            format!("study_reliability_usps_test_{tag}.png"),
        )?;
        save(
            per_class_bars(t, FOCUS_DOMAIN, framing)?,
            format!("study_per_class_usps_test_{tag}.png"),
        )?;
    }
    save(ink_figure(data)?, "study_ink.png".into())?;
    // The seed-0 (else first) run of each variant: curves, confusion matrices, mistakes.
    let mut first_runs = Vec::new();
    for r in &data.runs {
        if !first_runs
            .iter()
            .any(|f: &&crate::study::RunInfo| f.variant == r.variant)
        {
            first_runs.push(r);
        }
    }
    for r in &first_runs {
        written.extend(export_run_figures(&r.dir, data_dir, dir)?);
    }
    // First layers side by side, and the CNN's feature maps of one USPS digit in both framings.
    let weights_of = |name: &str| -> Result<Option<Weights>> {
        match data.first_run(name) {
            Ok(r) => Ok(Some(crate::train::run::load_model(&r.dir)?.1)),
            Err(_) => Ok(None),
        }
    };
    if let (Some(mlp), Some(cnn)) = (weights_of("mlp")?, weights_of("cnn")?) {
        let (m, c) = first_layers_figure(&mlp, &cnn)?;
        let mut save = |fig: Figure, name: &str| fig.save_into(dir, name, &mut written);
        save(m, "study_first_layer_mlp.png")?;
        save(c, "study_first_layer_cnn.png")?;
        if let (Ok(resized), Ok(framed)) = (
            data.domain_set(FOCUS_DOMAIN, "resize"),
            data.domain_set(FOCUS_DOMAIN, "mnist-frame"),
        ) {
            let fig = feature_map_figure(
                &cnn,
                &[("resized", resized.image(0)), ("framed", framed.image(0))],
                "CNN first layer: one USPS digit resized (top) and framed like MNIST (bottom), and its feature maps",
            )?;
            save(fig, "study_feature_maps_usps.png")?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::accuracy::AccuracyRow;

    #[test]
    fn comparison_figures_draw_the_mnist_trained_variants_only() {
        let names = [
            "mlp",
            "cnn-keras",
            "mlp-1586",
            "cnn-usps",
            "cnn-keras-adapt-framed",
        ];
        let t = Tables {
            accuracy: names
                .iter()
                .map(|v| AccuracyRow::usps_test(v, "resize", &[0.9, 0.92]))
                .collect(),
            ..Tables::default()
        };
        assert_eq!(variant_names(&t), ["mlp", "cnn-keras", "mlp-1586"]);
        // The ladder is where the others are drawn.
        assert!(ladder_steps(&t).len() >= 2);
    }

    /// What a fresh clone's notebook 5 shows: the committed tables, read back, draw exactly the
    /// committed figures (so a table and its figure cannot drift apart unnoticed).
    #[test]
    fn the_committed_tables_draw_the_committed_figures() {
        if let Err(e) = crate::plot::font::ensure() {
            crate::runtime::skip_unless_required("font", &e.to_string());
            return;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let t = crate::study::committed::load_tables(&root.join("results")).unwrap();
        let figures = [
            (
                accuracy_bars(&t, "resize").unwrap(),
                "study_accuracy_resize.png",
            ),
            (
                robustness_curve(&t, "shift").unwrap(),
                "study_robustness_shift.png",
            ),
            (usps_ladder(&t).unwrap(), "study_usps_ladder.png"),
            (
                framing_bars(&t, FOCUS_DOMAIN).unwrap(),
                "study_framing_usps_test.png",
            ),
            (
                reliability_diagram(&t, FOCUS_DOMAIN, "resize").unwrap(),
                "study_reliability_usps_test_resize.png",
            ),
            (
                per_class_bars(&t, FOCUS_DOMAIN, "mnist-frame").unwrap(),
                "study_per_class_usps_test_mnist_frame.png",
            ),
            (
                gap_bars(&t, "mlp", "cnn").unwrap(),
                "study_gap_mlp_vs_cnn.png",
            ),
        ];
        for (fig, file) in figures {
            let committed = std::fs::read(root.join("img").join(file)).unwrap();
            assert!(
                fig.png == committed,
                "img/{file} is not what results/ draws"
            );
        }
    }
}
