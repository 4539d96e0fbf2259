//! Charts on axes: training curves, grouped bars, lines with bands.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    draw_legend, finite_range, finite_runs, legend_width, padded, render, series_colour, text_size,
    text_style, with_title, Figure, OrInvalid, Paint, Swatch, LABEL_PX, TICK_PX,
};
use crate::history::EpochRecord;
use crate::{Error, Result};

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 800;
const LINE_W: u32 = 3;

/// Which measurement a training-curve figure shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Accuracy,
    Loss,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::Loss => "loss",
        }
    }

    fn of(self, r: &EpochRecord) -> (f64, f64) {
        match self {
            Metric::Accuracy => (r.train_accuracy, r.val_accuracy),
            Metric::Loss => (r.train_loss, r.val_loss),
        }
    }
}

/// The original study's file name for a model's curves, e.g. `mlp_model_accuracy.png`.
pub fn training_curves_file(model: &str, metric: Metric) -> String {
    format!("{}_model_{}.png", model.to_lowercase(), metric.name())
}

/// Training (dashed) and validation (solid) accuracy or loss per epoch, one colour per named
/// history. 1200×800 px, with SVG.
pub fn training_curves(histories: &[(&str, &[EpochRecord])], metric: Metric) -> Result<Figure> {
    if histories.is_empty() || histories.iter().any(|(_, h)| h.is_empty()) {
        return Err(Error::invalid(
            "training curves need at least one history and at least one epoch in each",
        ));
    }
    let title = match histories {
        [(name, _)] if !name.is_empty() => format!("{name} model {}", metric.name()),
        _ => format!("Model {}", metric.name()),
    };
    render(
        &Curves {
            histories,
            metric,
            title,
        },
        WIDTH,
        HEIGHT,
        true,
    )
}

struct Curves<'a> {
    histories: &'a [(&'a str, &'a [EpochRecord])],
    metric: Metric,
    title: String,
}

impl Paint for Curves<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let mut legend = Vec::new();
        for (i, (name, _)) in self.histories.iter().enumerate() {
            let c = series_colour(i);
            let prefix = if name.is_empty() {
                String::new()
            } else {
                format!("{name} ")
            };
            legend.push((format!("{prefix}training"), Swatch::Dashed(c)));
            legend.push((format!("{prefix}validation"), Swatch::Line(c)));
        }
        let plot = plot_area(root, &self.title, &legend)?;

        let records = || self.histories.iter().flat_map(|(_, h)| h.iter());
        let (e_lo, e_hi) =
            finite_range(records().map(|r| r.epoch as f64)).expect("histories are not empty");
        let x = if e_hi > e_lo {
            (e_lo, e_hi)
        } else {
            (e_lo - 0.5, e_hi + 0.5)
        };
        let step = ((e_hi - e_lo) / 10.0).ceil().max(1.0) as usize;
        let ticks: Vec<f64> = (e_lo as usize..=e_hi as usize)
            .step_by(step)
            .map(|e| e as f64)
            .collect();

        let values = records().flat_map(|r| {
            let (t, v) = self.metric.of(r);
            [t, v]
        });
        let (lo, hi) = finite_range(values).unwrap_or((0.0, 1.0));
        let (mut y_lo, mut y_hi) = padded(lo, hi, 0.06);
        if lo >= 0.0 {
            y_lo = y_lo.max(0.0);
        }
        if self.metric == Metric::Accuracy && hi <= 1.0 {
            y_hi = y_hi.min(1.0).max(hi);
        }

        let mut chart = ChartBuilder::on(&plot)
            .margin(20)
            .margin_right(30)
            .x_label_area_size(80)
            .y_label_area_size(110)
            .build_cartesian_2d(KeyedAxis::new(x.0..x.1, ticks), y_lo..y_hi)
            .or_invalid()?;
        configure_mesh(&mut chart, "epoch", self.metric.name(), &|v| {
            format!("{}", v.round() as i64)
        })?;

        for (i, (_, h)) in self.histories.iter().enumerate() {
            let c = series_colour(i);
            let train = h.iter().map(|r| (r.epoch as f64, self.metric.of(r).0));
            let val = h.iter().map(|r| (r.epoch as f64, self.metric.of(r).1));
            for run in finite_runs(train) {
                chart
                    .draw_series(DashedLineSeries::new(run, 14, 9, c.stroke_width(LINE_W)))
                    .or_invalid()?;
            }
            for run in finite_runs(val) {
                chart
                    .draw_series(LineSeries::new(run.clone(), c.stroke_width(LINE_W)))
                    .or_invalid()?;
                if run.len() <= 60 {
                    chart
                        .draw_series(run.iter().map(|&p| Circle::new(p, 4, c.filled())))
                        .or_invalid()?;
                }
            }
        }
        Ok(())
    }
}

/// A linear f64 axis with ticks exactly at `keys` (epochs, bar groups), and no light grid.
/// plotters' `with_key_points` does the same but loses the f64 axis' label formatter.
struct KeyedAxis {
    range: Range<f64>,
    keys: Vec<f64>,
}

impl KeyedAxis {
    fn new(range: Range<f64>, keys: Vec<f64>) -> Self {
        KeyedAxis { range, keys }
    }
}

impl Ranged for KeyedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (t * (limit.1 - limit.0) as f64 + 1e-3).floor() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Title strip on top, legend column on the right; returns the area left for the axes.
fn plot_area<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    legend: &[(String, Swatch)],
) -> Result<DrawingArea<DB, Shift>> {
    let rest = with_title(root, title)?;
    let (w, _) = rest.dim_in_pixel();
    let lw = legend_width(legend)?.min(w / 2);
    let (plot, side) = rest.split_horizontally(w - lw);
    draw_legend(&side, legend, 20)?;
    Ok(plot)
}

fn configure_mesh<DB: DrawingBackend, X: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, RangedCoordf64>>,
    x_desc: &str,
    y_desc: &str,
    x_fmt: &dyn Fn(&f64) -> String,
) -> Result<()> {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(text_style(LABEL_PX))
        .label_style(text_style(TICK_PX))
        .x_label_formatter(x_fmt)
        .y_labels(8)
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .axis_style(BLACK.stroke_width(1))
        .draw()
        .or_invalid()
}

/// Grouped bars: one cluster per group, one colour per series, with optional symmetric error
/// bars (`errors[s][g]` is the half-width for series `s` in group `g`, e.g. a 95% interval's).
/// At least 1200×800 px, wider when group names need the room; with SVG.
pub fn bar_chart(
    groups: &[&str],
    series: &[(&str, Vec<f64>)],
    errors: Option<&[Vec<f64>]>,
    title: &str,
    y_label: &str,
) -> Result<Figure> {
    if groups.is_empty() || series.is_empty() {
        return Err(Error::invalid(
            "a bar chart needs at least one group and one series",
        ));
    }
    for (name, values) in series {
        if values.len() != groups.len() {
            return Err(Error::invalid(format!(
                "bar chart series `{name}` has {} values for {} groups",
                values.len(),
                groups.len()
            )));
        }
    }
    if let Some(errors) = errors {
        if errors.len() != series.len() || errors.iter().any(|e| e.len() != groups.len()) {
            return Err(Error::invalid(format!(
                "bar chart error bars must be {} series × {} groups, like the values",
                series.len(),
                groups.len()
            )));
        }
        if errors.iter().flatten().any(|e| *e < 0.0) {
            return Err(Error::invalid(
                "bar chart error bars are half-widths and cannot be negative",
            ));
        }
    }
    let mut widest = 0;
    for g in groups {
        widest = widest.max(text_size(g, TICK_PX)?.0);
    }
    let legend: Vec<(String, Swatch)> = series
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.to_string(), Swatch::Block(series_colour(i))))
        .collect();
    let needed = legend_width(&legend)? + 170 + groups.len() as u32 * (widest + 30);
    let bars = Bars {
        groups,
        series,
        errors,
        title,
        y_label,
        legend,
    };
    render(&bars, WIDTH.max(needed), HEIGHT, true)
}

struct Bars<'a> {
    groups: &'a [&'a str],
    series: &'a [(&'a str, Vec<f64>)],
    errors: Option<&'a [Vec<f64>]>,
    title: &'a str,
    y_label: &'a str,
    legend: Vec<(String, Swatch)>,
}

impl Paint for Bars<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let plot = plot_area(root, self.title, &self.legend)?;
        let err = |s: usize, g: usize| self.errors.map_or(0.0, |e| e[s][g]);
        let mut ends = Vec::new();
        for (s, (_, values)) in self.series.iter().enumerate() {
            for (g, &v) in values.iter().enumerate() {
                let e = if err(s, g).is_finite() {
                    err(s, g)
                } else {
                    0.0
                };
                ends.extend([v - e, v + e]);
            }
        }
        let (lo, hi) = finite_range(ends).unwrap_or((0.0, 1.0));
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let (p_lo, p_hi) = padded(lo, hi, 0.08);
        let y = (if lo < 0.0 { p_lo } else { 0.0 }, p_hi);

        let n = self.groups.len();
        let centres: Vec<f64> = (0..n).map(|g| g as f64 + 0.5).collect();
        let mut chart = ChartBuilder::on(&plot)
            .margin(20)
            .margin_right(30)
            .x_label_area_size(60)
            .y_label_area_size(110)
            .build_cartesian_2d(KeyedAxis::new(0.0..n as f64, centres), y.0..y.1)
            .or_invalid()?;
        let groups = self.groups;
        chart
            .configure_mesh()
            .y_desc(self.y_label)
            .axis_desc_style(text_style(LABEL_PX))
            .label_style(text_style(TICK_PX))
            .x_label_formatter(&|v| {
                let g = v.floor() as usize;
                groups.get(g).map_or_else(String::new, |s| s.to_string())
            })
            .disable_x_mesh()
            .y_labels(8)
            .bold_line_style(RGBColor(215, 215, 215))
            .light_line_style(RGBColor(240, 240, 240))
            .axis_style(BLACK.stroke_width(1))
            .draw()
            .or_invalid()?;

        let ns = self.series.len();
        let slot = 0.8 / ns as f64;
        for (s, (_, values)) in self.series.iter().enumerate() {
            let c = series_colour(s);
            for (g, &v) in values.iter().enumerate() {
                if !v.is_finite() {
                    continue;
                }
                let x0 = g as f64 + 0.1 + s as f64 * slot;
                let (a, b) = (x0 + slot * 0.06, x0 + slot * 0.94);
                chart
                    .draw_series([Rectangle::new([(a, 0.0), (b, v)], c.filled())])
                    .or_invalid()?;
                let e = err(s, g);
                if e > 0.0 && e.is_finite() {
                    let (mid, cap) = ((a + b) / 2.0, (b - a) * 0.22);
                    let style = BLACK.stroke_width(2);
                    for path in [
                        vec![(mid, v - e), (mid, v + e)],
                        vec![(mid - cap, v - e), (mid + cap, v - e)],
                        vec![(mid - cap, v + e), (mid + cap, v + e)],
                    ] {
                        chart
                            .draw_series([PathElement::new(path, style)])
                            .or_invalid()?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A series for [`line_chart`]: name, y values (one per x) and an optional band of
/// `(low, high)` per x, drawn shaded behind the line.
pub type LineSeriesData<'a> = (&'a str, Vec<f64>, Option<Vec<(f64, f64)>>);

/// Lines with markers over a shared x, each with an optional shaded band (e.g. the spread over
/// seeds). Non-finite values leave gaps. 1200×800 px, with SVG.
pub fn line_chart(
    x: &[f64],
    series: &[LineSeriesData<'_>],
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<Figure> {
    if x.is_empty() || series.is_empty() {
        return Err(Error::invalid(
            "a line chart needs at least one x value and one series",
        ));
    }
    for (name, y, band) in series {
        if y.len() != x.len() || band.as_ref().is_some_and(|b| b.len() != x.len()) {
            return Err(Error::invalid(format!(
                "line chart series `{name}` needs one value (and one band entry) per x value ({})",
                x.len()
            )));
        }
    }
    if finite_range(x.iter().copied()).is_none() {
        return Err(Error::invalid(
            "line chart x values are all NaN or infinite",
        ));
    }
    let legend = series
        .iter()
        .enumerate()
        .map(|(i, (name, _, _))| (name.to_string(), Swatch::Line(series_colour(i))))
        .collect();
    let lines = Lines {
        x,
        series,
        title,
        x_label,
        y_label,
        legend,
    };
    render(&lines, WIDTH, HEIGHT, true)
}

struct Lines<'a> {
    x: &'a [f64],
    series: &'a [LineSeriesData<'a>],
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    legend: Vec<(String, Swatch)>,
}

impl Paint for Lines<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let plot = plot_area(root, self.title, &self.legend)?;
        let (x_lo, x_hi) = finite_range(self.x.iter().copied()).expect("checked by line_chart");
        let x = if x_hi > x_lo {
            (x_lo, x_hi)
        } else {
            padded(x_lo, x_hi, 0.0)
        };
        let ys = self.series.iter().flat_map(|(_, y, band)| {
            let b = band.iter().flatten().flat_map(|&(l, h)| [l, h]);
            y.iter().copied().chain(b)
        });
        let (lo, hi) = finite_range(ys).unwrap_or((0.0, 1.0));
        let y = padded(lo, hi, 0.06);

        let mut chart = ChartBuilder::on(&plot)
            .margin(20)
            .margin_right(40)
            .x_label_area_size(80)
            .y_label_area_size(110)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .or_invalid()?;
        configure_mesh(&mut chart, self.x_label, self.y_label, &|v| {
            format_tick(*v, x.1 - x.0)
        })?;

        // Bands first, so that every line stays visible on top of every band.
        for (i, (_, _, band)) in self.series.iter().enumerate() {
            let Some(band) = band else { continue };
            let c = series_colour(i);
            let lows = self.x.iter().zip(band).map(|(&x, &(l, _))| (x, l));
            let highs = self.x.iter().zip(band).map(|(&x, &(_, h))| (x, h));
            for (low, high) in finite_runs(lows).into_iter().zip(finite_runs(highs)) {
                let mut poly = low;
                poly.extend(high.into_iter().rev());
                chart
                    .draw_series([Polygon::new(poly, c.mix(0.2).filled())])
                    .or_invalid()?;
            }
        }
        for (i, (_, y, _)) in self.series.iter().enumerate() {
            let c = series_colour(i);
            for run in finite_runs(self.x.iter().copied().zip(y.iter().copied())) {
                chart
                    .draw_series(LineSeries::new(run.clone(), c.stroke_width(LINE_W)))
                    .or_invalid()?;
                if run.len() <= 60 {
                    chart
                        .draw_series(run.iter().map(|&p| Circle::new(p, 5, c.filled())))
                        .or_invalid()?;
                }
            }
        }
        Ok(())
    }
}

/// A tick label with as many decimals as the axis span calls for.
fn format_tick(v: f64, span: f64) -> String {
    let decimals = if span >= 10.0 {
        0
    } else {
        (1.0 - span.log10().floor()).clamp(0.0, 6.0) as usize
    };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn history(n: usize, offset: f64) -> Vec<EpochRecord> {
        (1..=n)
            .map(|e| {
                let t = e as f64 / n as f64;
                EpochRecord {
                    epoch: e,
                    train_loss: 1.0 - 0.8 * t + offset,
                    train_accuracy: 0.7 + 0.25 * t - offset,
                    val_loss: 1.1 - 0.8 * t + offset,
                    val_accuracy: 0.68 + 0.25 * t - offset,
                    seconds: 1.0,
                }
            })
            .collect()
    }

    /// How many pixels have exactly this series' colour.
    fn colour_count(px: &Pixels, i: usize) -> usize {
        let c = series_colour(i);
        px.count([c.0, c.1, c.2])
    }

    #[test]
    fn training_curves_draw_each_history_in_its_colour() {
        let (a, b) = (history(12, 0.0), history(12, 0.05));
        for metric in [Metric::Accuracy, Metric::Loss] {
            let fig = training_curves(&[("mlp", &a), ("cnn", &b)], metric).unwrap();
            let px = check_basic(&fig, 1200, 800);
            assert!(colour_count(&px, 0) > 500 && colour_count(&px, 1) > 500);
            assert_eq!(colour_count(&px, 2), 0, "a third history's colour appeared");
            assert!(fig.svg.unwrap().contains("validation"));
        }
    }

    #[test]
    fn training_curves_take_one_epoch_and_nan_losses() {
        let mut h = history(1, 0.0);
        let fig = training_curves(&[("mlp", &h)], Metric::Loss).unwrap();
        check_basic(&fig, 1200, 800);
        h = history(5, 0.0);
        h[2].val_loss = f64::NAN;
        training_curves(&[("mlp", &h)], Metric::Loss).unwrap();
        let err = training_curves(&[("mlp", &[])], Metric::Loss).unwrap_err();
        assert!(err.to_string().contains("at least one epoch"));
        assert_eq!(
            training_curves_file("MLP", Metric::Accuracy),
            "mlp_model_accuracy.png"
        );
    }

    #[test]
    fn bar_chart_bars_grow_with_their_values() {
        let series = [("mlp", vec![0.9, 0.3]), ("cnn", vec![0.95, 0.6])];
        let errors = [vec![0.01, 0.05], vec![0.01, 0.04]];
        let fig = bar_chart(
            &["MNIST", "USPS"],
            &series,
            Some(&errors),
            "Accuracy by domain",
            "accuracy",
        )
        .unwrap();
        let px = check_basic(&fig, 1200, 800);
        // Bars are solid blocks of their colour: the CNN's (0.95 + 0.6) outweighs the MLP's
        // (0.9 + 0.3) in area, beyond the equal legend swatches.
        let (mlp, cnn) = (colour_count(&px, 0), colour_count(&px, 1));
        assert!(
            mlp > 10_000 && cnn as f64 > mlp as f64 * 1.15,
            "{mlp} {cnn}"
        );
        let err = bar_chart(&["a"], &[("s", vec![1.0, 2.0])], None, "t", "y").unwrap_err();
        assert!(err.to_string().contains("2 values for 1 groups"), "{err}");
    }

    #[test]
    fn bar_chart_widens_for_long_group_names() {
        let groups = [
            "MNIST test",
            "USPS (mnist-frame)",
            "USPS (resize)",
            "Semeion",
            "Optdigits",
            "MFEAT",
        ];
        let series = [("mlp", vec![0.9; 6]), ("cnn", vec![0.95; 6])];
        let fig = bar_chart(&groups, &series, None, "t", "accuracy").unwrap();
        assert!(fig.width > 1200);
        check_basic(&fig, fig.width, 800);
    }

    #[test]
    fn line_chart_shades_bands_in_a_light_tint_of_the_line() {
        let x = [0.0, 5.0, 10.0, 15.0];
        let band = Some(x.iter().map(|v| (0.8 - v / 50.0, 0.9 - v / 60.0)).collect());
        let series = [
            ("cnn", vec![0.85, 0.8, 0.75, 0.7], band),
            ("mlp", vec![0.7, 0.6, f64::NAN, 0.4], None),
        ];
        let fig = line_chart(&x, &series, "Rotation", "degrees", "accuracy").unwrap();
        let px = check_basic(&fig, 1200, 800);
        let c = series_colour(0);
        let tint = |v: u8| (255.0 - 0.2 * (255.0 - v as f64)).round() as i32;
        let tinted = px
            .rgb
            .chunks(3)
            .filter(|p| {
                (p[0] as i32 - tint(c.0)).abs() <= 2
                    && (p[1] as i32 - tint(c.1)).abs() <= 2
                    && (p[2] as i32 - tint(c.2)).abs() <= 2
            })
            .count();
        assert!(tinted > 5_000, "band area {tinted}");
        assert!(colour_count(&px, 1) > 300);
        let err = line_chart(&x, &[("s", vec![1.0], None)], "t", "x", "y").unwrap_err();
        assert!(err.to_string().contains("one value"), "{err}");
    }

    #[test]
    fn tick_labels_have_the_decimals_the_span_needs() {
        assert_eq!(format_tick(0.3, 1.0), "0.3");
        assert_eq!(format_tick(0.126, 0.1), "0.13");
        assert_eq!(format_tick(30.0, 90.0), "30");
        assert_eq!(format_tick(-0.0001, 1.0), "0.0");
    }
}
