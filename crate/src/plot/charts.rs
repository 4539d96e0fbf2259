//! Charts on axes: training curves, grouped bars, lines with bands.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    draw_legend, finite_range, finite_runs, legend_width, padded, render, series_colour, stroke,
    text_size, text_style, with_title, Figure, OrInvalid, Paint, Swatch, DASH, LABEL_PX, LINE_W,
    TICK_PX,
};
use crate::train::history::EpochRecord;
use crate::{Error, Result};

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 800;
/// Markers on data points, drawn where a series has few enough points to tell them apart.
const MARKER_R: u32 = 5;
const MAX_MARKED: usize = 60;
const GRID: RGBColor = RGBColor(225, 225, 225);

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
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, raster: bool) -> Result<()> {
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
        let plot = plot_area(root, &self.title, &legend, raster)?;

        let records = || self.histories.iter().flat_map(|(_, h)| h.iter());
        let (e_lo, e_hi) =
            finite_range(records().map(|r| r.epoch as f64)).expect("histories are not empty");
        let mut x = Axis::new(padded(e_lo, e_hi, 0.03), 10);
        // Epochs are whole numbers: never a tick between two of them.
        if x.step < 1.0 {
            x = Axis::with_ticks(
                x.range.clone(),
                (e_lo as u64..=e_hi as u64).map(|e| e as f64),
            );
        }

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
        let chart = axes(
            &plot,
            x,
            Axis::new((y_lo, y_hi), 8),
            "epoch",
            self.metric.name(),
        )?;

        for (i, (_, h)) in self.histories.iter().enumerate() {
            let c = series_colour(i);
            let train = h.iter().map(|r| (r.epoch as f64, self.metric.of(r).0));
            let val = h.iter().map(|r| (r.epoch as f64, self.metric.of(r).1));
            for run in finite_runs(train) {
                stroke(root, &pixels(&chart, &run), LINE_W, c, Some(DASH))?;
            }
            for run in finite_runs(val) {
                draw_line(root, &chart, &run, c)?;
            }
        }
        Ok(())
    }
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Axis, Axis>>;

/// Data points in backend pixels.
fn pixels<DB: DrawingBackend>(chart: &Chart<'_, DB>, points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .map(|p| {
            let (x, y) = chart.backend_coord(p);
            (x as f64, y as f64)
        })
        .collect()
}

/// A solid data line, with markers where there are few points.
fn draw_line<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart<'_, DB>,
    run: &[(f64, f64)],
    c: RGBColor,
) -> Result<()> {
    let px = pixels(chart, run);
    stroke(root, &px, LINE_W, c, None)?;
    if run.len() <= MAX_MARKED {
        for &(x, y) in &px {
            let centre = (x.round() as i32, y.round() as i32);
            root.draw(&Circle::new(centre, MARKER_R, c.filled()))
                .or_invalid()?;
        }
    }
    Ok(())
}

/// A linear axis with ticks at "nice" values (1, 2 or 5 × 10^k apart) that we choose, so
/// that labels get exactly the decimals the step needs ("0.90, 0.91", not "0.9, 0.91"), and
/// with no minor grid.
#[derive(Clone, Debug)]
struct Axis {
    range: Range<f64>,
    ticks: Vec<f64>,
    step: f64,
}

impl Axis {
    /// At most `max_ticks` ticks over `(lo, hi)`.
    fn new((lo, hi): (f64, f64), max_ticks: usize) -> Self {
        let span = hi - lo;
        if !(span > 0.0 && span.is_finite()) || max_ticks == 0 {
            return Axis::with_ticks(lo..lo + 1.0, [lo].into_iter().filter(|v| v.is_finite()));
        }
        let mut step = 10f64.powf(span.log10().floor() - 3.0);
        'search: loop {
            for m in [1.0, 2.0, 5.0] {
                let s = step * m;
                if (hi / s).floor() - (lo / s).ceil() + 1.0 <= max_ticks as f64 {
                    step = s;
                    break 'search;
                }
            }
            step *= 10.0;
        }
        let (first, last) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
        Axis {
            range: lo..hi,
            ticks: (first..=last).map(|k| k as f64 * step).collect(),
            step,
        }
    }

    /// Ticks at given values (bar groups, epochs); labels are formatted by the caller.
    fn with_ticks(range: Range<f64>, ticks: impl IntoIterator<Item = f64>) -> Self {
        Axis {
            range,
            ticks: ticks.into_iter().collect(),
            step: 1.0,
        }
    }

    fn label(&self, v: f64) -> String {
        let decimals = (-(self.step.log10() + 1e-9).floor()).clamp(0.0, 9.0) as usize;
        let s = format!("{v:.decimals$}");
        match s.strip_prefix('-') {
            Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
            _ => s,
        }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (t * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
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
    raster: bool,
) -> Result<DrawingArea<DB, Shift>> {
    let rest = with_title(root, title, raster)?;
    let (w, _) = rest.dim_in_pixel();
    let lw = legend_width(legend)?.min(w / 2);
    let (plot, side) = rest.split_horizontally(w - lw);
    draw_legend(&side, legend, 20, raster)?;
    Ok(plot)
}

/// Axes with grid and labels; epochs and bar groups get whole-number or name labels.
fn axes<'a, DB: DrawingBackend>(
    plot: &'a DrawingArea<DB, Shift>,
    x: Axis,
    y: Axis,
    x_desc: &str,
    y_desc: &str,
) -> Result<Chart<'a, DB>> {
    axes_with(plot, x, y, x_desc, y_desc, None)
}

fn axes_with<'a, DB: DrawingBackend>(
    plot: &'a DrawingArea<DB, Shift>,
    x: Axis,
    y: Axis,
    x_desc: &str,
    y_desc: &str,
    x_names: Option<&[&str]>,
) -> Result<Chart<'a, DB>> {
    let (xa, ya) = (x.clone(), y.clone());
    let mut chart = ChartBuilder::on(plot)
        .margin(20)
        .margin_right(40)
        .x_label_area_size(if x_desc.is_empty() { 60 } else { 90 })
        .y_label_area_size(120)
        .build_cartesian_2d(x, y)
        .or_invalid()?;
    let x_fmt = |v: &f64| match x_names {
        Some(names) => names
            .get(v.floor() as usize)
            .map_or_else(String::new, |s| s.to_string()),
        None => xa.label(*v),
    };
    let y_fmt = |v: &f64| ya.label(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(text_style(LABEL_PX))
        .label_style(text_style(TICK_PX))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .bold_line_style(GRID)
        .axis_style(BLACK.stroke_width(1));
    if x_names.is_some() {
        mesh.disable_x_mesh();
    }
    mesh.draw().or_invalid()?;
    Ok(chart)
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
    bar_chart_with_line(groups, series, errors, None, title, y_label)
}

/// [`bar_chart`] with a dashed horizontal reference line at `line.0`, named `line.1` in the
/// legend (e.g. human accuracy); the y axis then reaches it.
pub fn bar_chart_with_line(
    groups: &[&str],
    series: &[(&str, Vec<f64>)],
    errors: Option<&[Vec<f64>]>,
    line: Option<(f64, &str)>,
    title: &str,
    y_label: &str,
) -> Result<Figure> {
    if let Some((v, _)) = line.filter(|(v, _)| !v.is_finite()) {
        return Err(Error::invalid(format!(
            "a bar chart's reference line needs a finite value, got {v}"
        )));
    }
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
    let mut legend: Vec<(String, Swatch)> = series
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.to_string(), Swatch::Block(series_colour(i))))
        .collect();
    if let Some((_, name)) = line {
        legend.push((name.to_string(), Swatch::Dashed(BLACK)));
    }
    let needed = legend_width(&legend)? + 170 + groups.len() as u32 * (widest + 30);
    let bars = Bars {
        groups,
        series,
        errors,
        line: line.map(|(v, _)| v),
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
    line: Option<f64>,
    title: &'a str,
    y_label: &'a str,
    legend: Vec<(String, Swatch)>,
}

impl Paint for Bars<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, raster: bool) -> Result<()> {
        let plot = plot_area(root, self.title, &self.legend, raster)?;
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
        ends.extend(self.line);
        let (lo, hi) = finite_range(ends).unwrap_or((0.0, 1.0));
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let (p_lo, p_hi) = padded(lo, hi, 0.08);
        let y = (if lo < 0.0 { p_lo } else { 0.0 }, p_hi);

        let n = self.groups.len();
        let x = Axis::with_ticks(0.0..n as f64, (0..n).map(|g| g as f64 + 0.5));
        let chart = axes_with(
            &plot,
            x,
            Axis::new(y, 8),
            "",
            self.y_label,
            Some(self.groups),
        )?;

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
                    .plotting_area()
                    .draw(&Rectangle::new([(a, 0.0), (b, v)], c.filled()))
                    .or_invalid()?;
                let e = err(s, g);
                if e > 0.0 && e.is_finite() {
                    let (mid, cap) = ((a + b) / 2.0, (b - a) * 0.22);
                    for path in [
                        [(mid, v - e), (mid, v + e)],
                        [(mid - cap, v - e), (mid + cap, v - e)],
                        [(mid - cap, v + e), (mid + cap, v + e)],
                    ] {
                        stroke(root, &pixels(&chart, &path), 2.5, BLACK, None)?;
                    }
                }
            }
        }
        if let Some(v) = self.line {
            let path = [(0.0, v), (n as f64, v)];
            stroke(root, &pixels(&chart, &path), LINE_W, BLACK, Some(DASH))?;
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
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, raster: bool) -> Result<()> {
        let plot = plot_area(root, self.title, &self.legend, raster)?;
        let (x_lo, x_hi) = finite_range(self.x.iter().copied()).expect("checked by line_chart");
        let ys = self.series.iter().flat_map(|(_, y, band)| {
            let b = band.iter().flatten().flat_map(|&(l, h)| [l, h]);
            y.iter().copied().chain(b)
        });
        let (lo, hi) = finite_range(ys).unwrap_or((0.0, 1.0));
        let x = Axis::new(padded(x_lo, x_hi, 0.03), 10);
        let y = Axis::new(padded(lo, hi, 0.06), 8);
        let chart = axes(&plot, x, y, self.x_label, self.y_label)?;

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
                    .plotting_area()
                    .draw(&Polygon::new(poly, c.mix(0.2).filled()))
                    .or_invalid()?;
            }
        }
        for (i, (_, y, _)) in self.series.iter().enumerate() {
            let c = series_colour(i);
            for run in finite_runs(self.x.iter().copied().zip(y.iter().copied())) {
                draw_line(root, &chart, &run, c)?;
            }
        }
        Ok(())
    }
}

/// A set of points for [`scatter_chart`]: name and `(x, y)` pairs.
pub type ScatterSeries<'a> = (&'a str, Vec<(f64, f64)>);

/// Unconnected points, one colour per named set (e.g. a search's score against each
/// hyperparameter). Non-finite points are left out. 1200×800 px, with SVG.
pub fn scatter_chart(
    series: &[ScatterSeries<'_>],
    title: &str,
    x_label: &str,
    y_label: &str,
) -> Result<Figure> {
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    if !series.iter().any(|(_, pts)| pts.iter().any(finite)) {
        return Err(Error::invalid(
            "a scatter chart needs at least one finite point",
        ));
    }
    let legend = series
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.to_string(), Swatch::Line(series_colour(i))))
        .collect();
    let points = Points {
        series,
        title,
        x_label,
        y_label,
        legend,
    };
    render(&points, WIDTH, HEIGHT, true)
}

struct Points<'a> {
    series: &'a [ScatterSeries<'a>],
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    legend: Vec<(String, Swatch)>,
}

impl Paint for Points<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, raster: bool) -> Result<()> {
        let plot = plot_area(root, self.title, &self.legend, raster)?;
        let all = || self.series.iter().flat_map(|(_, p)| p.iter().copied());
        let (x_lo, x_hi) = finite_range(all().filter(|p| p.1.is_finite()).map(|p| p.0))
            .expect("checked by scatter_chart");
        let (y_lo, y_hi) = finite_range(all().filter(|p| p.0.is_finite()).map(|p| p.1))
            .expect("checked by scatter_chart");
        let x = Axis::new(padded(x_lo, x_hi, 0.05), 10);
        let y = Axis::new(padded(y_lo, y_hi, 0.06), 8);
        let chart = axes(&plot, x, y, self.x_label, self.y_label)?;
        for (i, (_, pts)) in self.series.iter().enumerate() {
            let c = series_colour(i);
            let shown: Vec<(f64, f64)> = pts
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            for (px, py) in pixels(&chart, &shown) {
                let centre = (px.round() as i32, py.round() as i32);
                root.draw(&Circle::new(centre, MARKER_R + 2, c.mix(0.75).filled()))
                    .or_invalid()?;
            }
        }
        Ok(())
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
    fn scatter_chart_draws_points_and_refuses_empty_input() {
        let pts = vec![(0.1, 0.9), (0.2, 0.95), (0.3, f64::NAN), (0.4, 0.97)];
        let fig = scatter_chart(&[("trials", pts)], "score", "dropout", "val acc").unwrap();
        let px = check_basic(&fig, 1200, 800);
        // Points are the series colour at 75% over white.
        let c = series_colour(0);
        let blend = |v: u8| (0.75 * v as f64 + 0.25 * 255.0).round() as u8;
        assert!(
            px.count_near([blend(c.0), blend(c.1), blend(c.2)], 12) > 100,
            "points drawn"
        );
        let err = scatter_chart(&[("none", vec![(f64::NAN, 1.0)])], "t", "x", "y").unwrap_err();
        assert!(err.to_string().contains("finite point"));
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
    fn a_reference_line_is_drawn_and_the_axis_reaches_it() {
        let series = [("mlp", vec![40.0, 90.0]), ("cnn", vec![80.0, 95.0])];
        let groups = ["resized", "framed"];
        let plain = bar_chart(&groups, &series, None, "t", "accuracy").unwrap();
        let lined = bar_chart_with_line(
            &groups,
            &series,
            None,
            Some((120.0, "human")),
            "t",
            "accuracy",
        )
        .unwrap();
        let (p, l) = (
            check_basic(&plain, plain.width, 800),
            check_basic(&lined, lined.width, 800),
        );
        // The axis now reaches 120, so the same bars are shorter (95 of about 103 before, of
        // about 130 now),
        let (before, after) = (colour_count(&p, 0), colour_count(&l, 0));
        assert!((after as f64) < before as f64 * 0.85, "{before} {after}");
        // and the dashed line adds black across the plot.
        assert!(l.count_near([0, 0, 0], 30) > p.count_near([0, 0, 0], 30) + 500);
        let err = bar_chart_with_line(&groups, &series, None, Some((f64::NAN, "x")), "t", "y")
            .unwrap_err();
        assert!(err.to_string().contains("finite value"), "{err}");
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
    fn axis_ticks_are_nice_and_labelled_with_the_decimals_their_step_needs() {
        let a = Axis::new((0.895, 0.981), 8);
        assert_eq!(a.step, 0.02);
        let labels: Vec<String> = a.ticks.iter().map(|&v| a.label(v)).collect();
        assert_eq!(labels, ["0.90", "0.92", "0.94", "0.96", "0.98"]);
        let a = Axis::new((-45.0, 45.0), 10);
        assert_eq!(
            (a.ticks.len(), a.label(-40.0), a.label(0.0)),
            (9, "-40".into(), "0".into())
        );
        let a = Axis::new((0.0, 1.0), 8);
        assert_eq!(
            (a.label(1.0), a.label(-1e-12)),
            ("1.0".into(), "0.0".into())
        );
        assert_eq!(Axis::new((2.0, 2.0), 8).ticks, [2.0]);
    }
}
