//! Figures for the study: training curves, confusion matrices, digit and weight grids, bar and
//! line charts.
//!
//! This folder owns every figure: the drawing primitives here and in `charts` and `grids`, the
//! PNG encoding (`encode`), the font (`font`), and the figure sets of a run (`run`), of the
//! search (`search`) and of the study (`study`).
//!
//! Every figure is rendered into memory ([`Figure`]) rather than straight to a file, so the
//! same bytes can be saved atomically into `img/` and shown inline in an evcxr notebook.
//! Charts made of lines and text also carry an SVG rendering; pixel grids do not (one SVG
//! rectangle per image pixel would be larger than the PNG and no sharper).
//!
//! Text needs DejaVu Sans (Debian's `fonts-dejavu-core`) or a font named by
//! [`font::FONT_ENV`]; without one every figure function returns a one-line error saying so.

mod charts;
mod encode;
pub mod font;
mod grids;
pub mod run;
pub mod search;
pub mod study;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{Error, Result};

pub use charts::{
    bar_chart, bar_chart_with_line, line_chart, scatter_chart, training_curves,
    training_curves_file, LineSeriesData, Metric,
};
pub use encode::{compact_png, decode_rgb, encode_png};
pub use grids::{confusion_matrix, digit_grid, weight_images};

/// A rendered figure: PNG bytes (greyscale or indexed colour, as [`encode_png`] picks) and,
/// for line art, the same figure as SVG.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub svg: Option<String>,
}

impl Figure {
    /// A figure saved before, to show again: a committed figure of a study whose runs are not
    /// on this machine.
    pub fn open(path: impl AsRef<Path>) -> Result<Figure> {
        let path = path.as_ref();
        let png = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let header = png::Decoder::new(png.as_slice())
            .read_info()
            .map_err(|e| Error::invalid(format!("{} is not a PNG image: {e}", path.display())))?;
        let (width, height) = (header.info().width, header.info().height);
        drop(header);
        Ok(Figure {
            png,
            width,
            height,
            svg: None,
        })
    }

    /// Write the PNG to `path` atomically (the folder is created if needed).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::write_atomic(path.as_ref(), &self.png)
    }

    /// Write the PNG as `dir/name` and add its path to `written`: how the figure exporters
    /// collect the files they wrote.
    pub fn save_into(
        &self,
        dir: &Path,
        name: impl AsRef<Path>,
        written: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let path = dir.join(name);
        self.save(&path)?;
        written.push(path);
        Ok(())
    }

    /// Write the SVG rendering to `path` atomically; an error for figures that have none.
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        let svg = self.svg.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "{}: this figure is a pixel grid and has no SVG rendering; save it as PNG",
                path.as_ref().display()
            ))
        })?;
        crate::io::write_atomic(path.as_ref(), svg.as_bytes())
    }

    /// The evcxr display protocol's text for this figure as an inline PNG.
    pub fn evcxr_content(&self) -> String {
        format!(
            "EVCXR_BEGIN_CONTENT image/png\n{}\nEVCXR_END_CONTENT\n",
            base64::engine::general_purpose::STANDARD.encode(&self.png)
        )
    }

    /// Show the figure inline in an evcxr (Rust Jupyter) notebook cell. evcxr also calls this
    /// by itself when a cell's value is a `Figure`.
    pub fn evcxr_display(&self) {
        print!("{}", self.evcxr_content());
    }
}

/// Several figures one above the other, on white, as one PNG (no SVG).
///
/// A notebook cell shows one image: evcxr keeps only the last of several displayed in a cell,
/// so a cell that draws several figures stacks them.
pub fn stack(figures: &[Figure]) -> Result<Figure> {
    if figures.is_empty() {
        return Err(Error::invalid("nothing to stack: pass at least one figure"));
    }
    let width = figures.iter().map(|f| f.width).max().expect("not empty");
    let height: u32 = figures.iter().map(|f| f.height).sum();
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    let mut top = 0usize;
    for f in figures {
        let (buf, w, h) = decode_rgb(&f.png)?;
        let row = w as usize * 3;
        for y in 0..h as usize {
            let dst = ((top + y) * width as usize) * 3;
            rgb[dst..dst + row].copy_from_slice(&buf[y * row..(y + 1) * row]);
        }
        top += h as usize;
    }
    Ok(Figure {
        png: encode_png(&rgb, width, height)?,
        width,
        height,
        svg: None,
    })
}

/// One-line errors from plotters and the PNG encoder.
trait OrInvalid<T> {
    fn or_invalid(self) -> Result<T>;
}

impl<T, E: std::fmt::Display> OrInvalid<T> for std::result::Result<T, E> {
    fn or_invalid(self) -> Result<T> {
        self.map_err(|e| {
            let msg = e.to_string().replace('\n', " ");
            Error::invalid(format!("cannot draw figure: {msg}"))
        })
    }
}

/// A figure's drawing code, written once for both backends.
trait Paint {
    /// `raster` is true when drawing the PNG's pixels, where ab_glyph text needs a nudge
    /// (see [`draw_text`]); SVG text is placed by the viewer.
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, raster: bool) -> Result<()>;
}

/// Render `p` to PNG, and to SVG too where `svg` is set.
fn render(p: &impl Paint, width: u32, height: u32, svg: bool) -> Result<Figure> {
    font::ensure()?;
    if width == 0 || height == 0 || width > 16_384 || height > 16_384 {
        return Err(Error::invalid(format!(
            "figure size {width}x{height} px is outside 1..=16384 per side; use fewer images or more columns"
        )));
    }
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).or_invalid()?;
        p.paint(&root, true)?;
        root.present().or_invalid()?;
    }
    let png = encode_png(&rgb, width, height)?;
    let svg = if svg {
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, (width, height)).into_drawing_area();
            root.fill(&WHITE).or_invalid()?;
            p.paint(&root, false)?;
            root.present().or_invalid()?;
        }
        Some(text)
    } else {
        None
    };
    Ok(Figure {
        png,
        width,
        height,
        svg,
    })
}

// Sizes in pixels for figures about 1200 px wide: readable when shrunk to a page column.
const TITLE_PX: u32 = 36;
const LABEL_PX: u32 = 28;
const TICK_PX: u32 = 24;
const LEGEND_PX: u32 = 24;
const CAPTION_PX: u32 = 22;
const TITLE_STRIP: u32 = 70;

/// Tableau's ten colours: distinct, and readable by most colour-blind readers.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn series_colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn text_style(px: u32) -> TextStyle<'static> {
    (font::FAMILY, px).into_font().color(&BLACK)
}

fn title_style() -> TextStyle<'static> {
    (font::FAMILY, TITLE_PX, FontStyle::Bold)
        .into_font()
        .color(&BLACK)
}

/// Width and height of `text` at `px` pixels.
fn text_size(text: &str, px: u32) -> Result<(u32, u32)> {
    // Layouts measure text before anything is rendered.
    font::ensure()?;
    (font::FAMILY, px).into_font().box_size(text).or_invalid()
}

/// Draw `text` anchored at `(x, y)`.
///
/// plotters' ab_glyph text puts the baseline half an em below the top of the layout box it
/// anchors, which draws glyphs about 0.22 × size too high (measured with DejaVu Sans). In
/// raster output we move the anchor by that much so that anchored text is centred where asked.
fn draw_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    (x, y): (i32, i32),
    style: &TextStyle,
    (h, v): (HPos, VPos),
    raster: bool,
) -> Result<()> {
    let (dx, dy) = if raster {
        let d = (style.font.get_size() * 0.22).round() as i32;
        match style.font.get_transform() {
            FontTransform::Rotate90 => (-d, 0),
            FontTransform::Rotate180 => (0, -d),
            FontTransform::Rotate270 => (d, 0),
            FontTransform::None => (0, d),
        }
    } else {
        (0, 0)
    };
    area.draw(&Text::new(
        text.to_string(),
        (x + dx, y + dy),
        style.pos(Pos::new(h, v)),
    ))
    .or_invalid()
}

const CENTRE: (HPos, VPos) = (HPos::Center, VPos::Center);

/// A polyline of even width at any slope (plotters' wide lines thin out on steep segments),
/// solid or dashed (`(on, off)` lengths), with round joins and caps; points in backend pixels.
fn stroke<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[(f64, f64)],
    width: f64,
    colour: RGBColor,
    dash: Option<(f64, f64)>,
) -> Result<()> {
    let pieces = match dash {
        Some((on, off)) => dashes(points, on, off),
        None => vec![points.to_vec()],
    };
    let r = width / 2.0;
    let style = colour.filled();
    let px = |(x, y): (f64, f64)| (x.round() as i32, y.round() as i32);
    for piece in pieces {
        for seg in piece.windows(2) {
            let ((x0, y0), (x1, y1)) = (seg[0], seg[1]);
            let len = (x1 - x0).hypot(y1 - y0);
            if len < 1e-9 {
                continue;
            }
            let (nx, ny) = (-(y1 - y0) / len * r, (x1 - x0) / len * r);
            let quad = [
                (x0 + nx, y0 + ny),
                (x1 + nx, y1 + ny),
                (x1 - nx, y1 - ny),
                (x0 - nx, y0 - ny),
            ];
            area.draw(&Polygon::new(quad.map(px).to_vec(), style))
                .or_invalid()?;
        }
        for &(x, y) in &piece {
            let round: Vec<(i32, i32)> = (0..12)
                .map(|k| {
                    let a = k as f64 * std::f64::consts::PI / 6.0;
                    px((x + r * a.cos(), y + r * a.sin()))
                })
                .collect();
            area.draw(&Polygon::new(round, style)).or_invalid()?;
        }
    }
    Ok(())
}

/// The dashes of a polyline: pieces of length `on` separated by gaps of length `off`,
/// continuing the pattern across vertices.
fn dashes(points: &[(f64, f64)], on: f64, off: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let Some(&first) = points.first() else {
        return out;
    };
    let (mut cur, mut drawing, mut left) = (vec![first], true, on);
    for seg in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (seg[0], seg[1]);
        let len = (x1 - x0).hypot(y1 - y0);
        let mut pos = 0.0;
        while len - pos > left {
            pos += left;
            let t = pos / len;
            let p = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            if drawing {
                cur.push(p);
                out.push(std::mem::take(&mut cur));
            } else {
                cur = vec![p];
            }
            drawing = !drawing;
            left = if drawing { on } else { off };
        }
        left -= len - pos;
        if drawing {
            cur.push((x1, y1));
        }
    }
    if drawing && cur.len() > 1 {
        out.push(cur);
    }
    out
}

/// Split off a strip at the top with the title centred in it; returns the rest.
fn with_title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    raster: bool,
) -> Result<DrawingArea<DB, Shift>> {
    let (strip, rest) = root.split_vertically(TITLE_STRIP);
    let (w, h) = strip.dim_in_pixel();
    let mid = (w as i32 / 2, h as i32 / 2);
    draw_text(&strip, title, mid, &title_style(), CENTRE, raster)?;
    Ok(rest)
}

/// How a legend entry shows its series.
#[derive(Clone, Copy)]
enum Swatch {
    Line(RGBColor),
    Dashed(RGBColor),
    Block(RGBColor),
}

const SWATCH_W: i32 = 56;
/// Width of every data line, and the dash pattern of training curves.
const LINE_W: f64 = 3.5;
const DASH: (f64, f64) = (13.0, 8.0);
const LEGEND_ROW: i32 = 40;

/// Width of a legend column for these labels.
fn legend_width(entries: &[(String, Swatch)]) -> Result<u32> {
    let mut widest = 0;
    for (label, _) in entries {
        widest = widest.max(text_size(label, LEGEND_PX)?.0);
    }
    Ok(widest + SWATCH_W as u32 + 60)
}

/// A legend drawn in its own column beside the plot, so it never hides data.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Swatch)],
    top: i32,
    raster: bool,
) -> Result<()> {
    let style = text_style(LEGEND_PX);
    for (i, (label, swatch)) in entries.iter().enumerate() {
        let y = top + LEGEND_ROW / 2 + i as i32 * LEGEND_ROW;
        let (x0, x1) = (14, 14 + SWATCH_W);
        let line = [(x0 as f64, y as f64), (x1 as f64, y as f64)];
        match *swatch {
            Swatch::Line(c) => stroke(area, &line, LINE_W, c, None)?,
            Swatch::Dashed(c) => stroke(area, &line, LINE_W, c, Some(DASH))?,
            Swatch::Block(c) => area
                .draw(&Rectangle::new(
                    [(x0 + 8, y - 12), (x1 - 8, y + 12)],
                    c.filled(),
                ))
                .or_invalid()?,
        }
        let anchor = (HPos::Left, VPos::Center);
        draw_text(area, label, (x1 + 14, y), &style, anchor, raster)?;
    }
    Ok(())
}

/// `[lo, hi]` widened so that data never touch the frame (and a flat series still has height).
fn padded(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let d = if lo == 0.0 { 0.5 } else { lo.abs() * 0.1 };
        return (lo - d, hi + d);
    }
    (lo - span * frac, hi + span * frac)
}

/// Minimum and maximum of the finite values (None when there are none).
fn finite_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Maximal runs of consecutive finite points, so a NaN breaks a line instead of a figure.
fn finite_runs(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![Vec::new()];
    for (x, y) in points {
        if x.is_finite() && y.is_finite() {
            runs.last_mut().expect("never empty").push((x, y));
        } else if !runs.last().expect("never empty").is_empty() {
            runs.push(Vec::new());
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Decoding figures back into pixels, to check what was drawn.

    use super::Figure;

    pub struct Pixels {
        pub width: u32,
        pub height: u32,
        pub rgb: Vec<u8>,
    }

    impl Pixels {
        pub fn at(&self, x: u32, y: u32) -> [u8; 3] {
            assert!(x < self.width && y < self.height, "({x}, {y}) is outside");
            let i = (y as usize * self.width as usize + x as usize) * 3;
            [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
        }

        pub fn distinct_colours(&self) -> usize {
            let mut set = std::collections::HashSet::new();
            for p in self.rgb.chunks(3) {
                set.insert([p[0], p[1], p[2]]);
            }
            set.len()
        }

        /// Pixels of exactly this colour.
        pub fn count(&self, c: [u8; 3]) -> usize {
            self.rgb.chunks(3).filter(|p| *p == c).count()
        }

        /// Pixels within `tolerance` of this colour in every channel.
        pub fn count_near(&self, c: [u8; 3], tolerance: u8) -> usize {
            self.rgb
                .chunks(3)
                .filter(|p| p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= tolerance))
                .count()
        }
    }

    /// Decode a figure's PNG, checking that its header agrees with the figure's size.
    pub fn decode(fig: &Figure) -> Pixels {
        let (rgb, width, height) = super::decode_rgb(&fig.png).expect("PNG");
        assert_eq!((width, height), (fig.width, fig.height));
        Pixels { width, height, rgb }
    }

    /// Rendered, decodable, of the stated size and not blank.
    pub fn check_basic(fig: &Figure, width: u32, height: u32) -> Pixels {
        assert_eq!((fig.width, fig.height), (width, height));
        let px = decode(fig);
        assert!(
            px.distinct_colours() >= 5,
            "only {} colours",
            px.distinct_colours()
        );
        px
    }

    /// A fresh folder under the system's temporary one.
    #[test]
    fn stacked_figures_keep_their_pixels() {
        let a = crate::plot::bar_chart(&["x"], &[("s", vec![1.0])], None, "a", "y").unwrap();
        let b = crate::plot::line_chart(&[0.0, 1.0], &[("l", vec![0.0, 1.0], None)], "b", "x", "y")
            .unwrap();
        let s = super::stack(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(s.width, a.width.max(b.width));
        assert_eq!(s.height, a.height + b.height);
        let (pa, pb, ps) = (decode(&a), decode(&b), decode(&s));
        for (x, y) in [
            (0, 0),
            (a.width / 2, a.height / 2),
            (a.width - 1, a.height - 1),
        ] {
            assert_eq!(ps.at(x, y), pa.at(x, y));
        }
        for (x, y) in [(0, 0), (b.width / 3, b.height / 2)] {
            assert_eq!(ps.at(x, a.height + y), pb.at(x, y));
        }
        assert!(super::stack(&[]).is_err());
    }

    pub fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("digits-plot-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    struct Disc;
    impl Paint for Disc {
        fn paint<DB: DrawingBackend>(
            &self,
            root: &DrawingArea<DB, Shift>,
            raster: bool,
        ) -> Result<()> {
            root.draw(&Circle::new((50, 40), 20, RED.filled()))
                .or_invalid()?;
            draw_text(root, "digits", (50, 70), &text_style(14), CENTRE, raster)
        }
    }

    #[test]
    fn render_gives_a_png_of_the_stated_size_and_an_svg() {
        let fig = render(&Disc, 100, 80, true).unwrap();
        let px = decode(&fig);
        assert_eq!(px.at(50, 40), [255, 0, 0]);
        assert_eq!(px.at(2, 2), [255, 255, 255]);
        let svg = fig.svg.unwrap();
        assert!(svg.contains("<svg") && svg.contains("digits"), "{svg}");
    }

    #[test]
    fn save_writes_a_png_that_decodes_and_leaves_no_temporary() {
        let fig = render(&Disc, 100, 80, false).unwrap();
        let dir = temp_dir("save");
        let path = dir.join("img").join("disc.png");
        fig.save(&path).unwrap();
        let back = Figure {
            png: std::fs::read(&path).unwrap(),
            ..fig.clone()
        };
        assert_eq!(decode(&back).at(50, 40), [255, 0, 0]);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        let err = fig.save_svg(dir.join("disc.svg")).unwrap_err().to_string();
        assert!(err.contains("no SVG"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn evcxr_content_is_the_display_protocol_with_base64_png() {
        let fig = Figure {
            png: b"\x89PNG\r\n".to_vec(),
            width: 1,
            height: 1,
            svg: None,
        };
        assert_eq!(
            fig.evcxr_content(),
            "EVCXR_BEGIN_CONTENT image/png\niVBORw0K\nEVCXR_END_CONTENT\n"
        );
    }

    #[test]
    fn a_zero_sized_figure_is_a_one_line_error() {
        let err = render(&Disc, 0, 10, false).unwrap_err().to_string();
        assert!(err.contains("0x10") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn dashes_follow_the_pattern_across_vertices() {
        let d = dashes(&[(0.0, 0.0), (10.0, 0.0), (10.0, 20.0)], 6.0, 2.0);
        assert_eq!(
            d,
            vec![
                vec![(0.0, 0.0), (6.0, 0.0)],
                vec![(8.0, 0.0), (10.0, 0.0), (10.0, 4.0)],
                vec![(10.0, 6.0), (10.0, 12.0)],
                vec![(10.0, 14.0), (10.0, 20.0)],
            ]
        );
    }

    #[test]
    fn nan_breaks_a_line_into_runs() {
        let runs = finite_runs([(0.0, 1.0), (1.0, f64::NAN), (2.0, 2.0), (3.0, 3.0)]);
        assert_eq!(runs, vec![vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, 3.0)]]);
        assert_eq!(padded(0.5, 0.5, 0.05), (0.45, 0.55));
        assert_eq!(finite_range([f64::NAN, 2.0, -1.0]), Some((-1.0, 2.0)));
    }
}
