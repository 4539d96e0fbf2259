//! Pixel grids: digit images, signed weights and the confusion matrix.
//!
//! These are laid out in pixels by hand rather than on chart axes: each image cell or matrix
//! cell gets a whole number of pixels, so nothing is resampled and tests can find any cell.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{
    draw_text, render, text_size, text_style, title_style, Figure, OrInvalid, Paint, CAPTION_PX,
    CENTRE, LABEL_PX, TICK_PX, TITLE_PX, TITLE_STRIP,
};
use crate::{Error, Result};

const MARGIN: u32 = 20;
/// Space around each image inside its cell.
const PAD: u32 = 12;
/// Images are enlarged by a whole factor to about this many pixels on their longer side: 28×28
/// digits at 3×, 16×16 at 5×, 3×3 filters at 28×. Large enough to read every pixel in a page
/// or notebook column, small enough to keep grids of 24–80 images compact.
const IMAGE_PX: usize = 84;
const BORDER: RGBColor = RGBColor(170, 170, 170);

/// Digit images in a grid, ink drawn **dark on white** (as on paper: 1.0 = black, 0.0 =
/// white; values are clamped to [0, 1]), each captioned with its label, e.g. `"7"` or
/// `"true 4 → 9 (0.98)"`. `images` holds the images one after another, row-major, as in
/// [`Dataset`](crate::data::Dataset); `labels` has one caption per image, or none at all.
/// The figure's size follows from the images, captions and `cols`. PNG only.
pub fn digit_grid(
    images: &[f32],
    width: usize,
    height: usize,
    labels: &[String],
    cols: usize,
    title: &str,
) -> Result<Figure> {
    let n = image_count(images.len(), width, height, "digit grid")?;
    if !labels.is_empty() && labels.len() != n {
        return Err(Error::invalid(format!(
            "digit grid has {n} images but {} captions; give one per image or none",
            labels.len()
        )));
    }
    let colours = images
        .iter()
        .map(|&v| {
            let ink = if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            };
            let g = (255.0 * (1.0 - ink)).round() as u8;
            RGBColor(g, g, g)
        })
        .collect();
    let layout = GridLayout::new(n, width, height, cols, labels, title, 0)?;
    let grid = Grid {
        layout,
        colours,
        captions: labels.to_vec(),
        title,
        colour_bar: false,
    };
    render(&grid, grid.layout.width, grid.layout.height, false)
}

/// The first `count` of the `width × height` images in `tensors` (e.g. rows of
/// `dense_1.weight` as 28×28, or `conv2d.weight`'s 3×3 filters), drawn with a diverging map:
/// blue for negative, white for zero, red for positive, scaled per image so that its largest
/// |weight| gets the full colour. Each caption gives the image's index and that maximum.
/// PNG only.
pub fn weight_images(
    tensors: &[f32],
    count: usize,
    width: usize,
    height: usize,
    cols: usize,
    title: &str,
) -> Result<Figure> {
    let available = image_count(tensors.len(), width, height, "weight images")?;
    if count == 0 || count > available {
        return Err(Error::invalid(format!(
            "weight images: asked for {count} images of {width}x{height} but the tensor holds {available}"
        )));
    }
    let px = width * height;
    let mut colours = Vec::with_capacity(count * px);
    let mut captions = Vec::with_capacity(count);
    for (i, img) in tensors.chunks(px).take(count).enumerate() {
        let max = img
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f32, |m, v| m.max(v.abs()));
        colours.extend(img.iter().map(|&v| {
            let t = if max > 0.0 && v.is_finite() {
                v / max
            } else {
                0.0
            };
            diverging(t as f64)
        }));
        captions.push(format!("{i}: ±{}", magnitude(max as f64)));
    }
    let layout = GridLayout::new(count, width, height, cols, &captions, title, BAR_STRIP)?;
    let grid = Grid {
        layout,
        colours,
        captions,
        title,
        colour_bar: true,
    };
    render(&grid, grid.layout.width, grid.layout.height, false)
}

fn image_count(len: usize, width: usize, height: usize, what: &str) -> Result<usize> {
    let px = width.checked_mul(height).unwrap_or(0);
    if px == 0 {
        return Err(Error::invalid(format!(
            "{what}: image size {width}x{height} has no pixels"
        )));
    }
    if len == 0 || !len.is_multiple_of(px) {
        return Err(Error::invalid(format!(
            "{what}: {len} values are not a whole, non-zero number of {width}x{height} images"
        )));
    }
    Ok(len / px)
}

/// Two significant digits, in exponent form below 0.01 so that small weights don't read as 0.
fn magnitude(v: f64) -> String {
    if v == 0.0 || (0.01..1000.0).contains(&v) {
        format!("{v:.2}")
    } else {
        format!("{v:.1e}")
    }
}

/// Blue–white–red (ColorBrewer RdBu's ends) for `t` in [-1, 1].
fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let end = if t < 0.0 {
        (33.0, 102.0, 172.0)
    } else {
        (178.0, 24.0, 43.0)
    };
    let a = t.abs();
    let mix = |e: f64| (255.0 + (e - 255.0) * a).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// Pixel positions of a grid of enlarged images with captions below them.
#[derive(Clone, Debug)]
struct GridLayout {
    n: usize,
    cols: usize,
    img_w: usize,
    img_h: usize,
    scale: u32,
    cell_w: u32,
    cell_h: u32,
    left: u32,
    width: u32,
    height: u32,
}

/// Room under the grid for the weight colour bar and its labels.
const BAR_STRIP: u32 = 120;

impl GridLayout {
    fn new(
        n: usize,
        img_w: usize,
        img_h: usize,
        cols: usize,
        captions: &[String],
        title: &str,
        bottom: u32,
    ) -> Result<Self> {
        if cols == 0 {
            return Err(Error::invalid("a grid needs at least one column"));
        }
        let cols = cols.min(n);
        let rows = n.div_ceil(cols);
        let scale = (IMAGE_PX / img_w.max(img_h)).max(1) as u32;
        let mut caption_w = 0;
        for c in captions {
            caption_w = caption_w.max(text_size(c, CAPTION_PX)?.0);
        }
        let caption_h = if captions.is_empty() {
            0
        } else {
            CAPTION_PX + 10
        };
        let cell_w = (img_w as u32 * scale).max(caption_w) + 2 * PAD;
        let cell_h = img_h as u32 * scale + caption_h + 2 * PAD;
        let grid_w = cols as u32 * cell_w;
        let title_w = text_size(title, TITLE_PX)?.0 + 40;
        let width =
            (grid_w + 2 * MARGIN)
                .max(title_w)
                .max(if bottom > 0 { BAR_MIN_WIDTH } else { 0 });
        let height = TITLE_STRIP + rows as u32 * cell_h + MARGIN + bottom;
        Ok(GridLayout {
            n,
            cols,
            img_w,
            img_h,
            scale,
            cell_w,
            cell_h,
            left: (width - grid_w) / 2,
            width,
            height,
        })
    }

    /// Top-left pixel of image `i`.
    fn image_origin(&self, i: usize) -> (i32, i32) {
        let (r, c) = ((i / self.cols) as u32, (i % self.cols) as u32);
        let img_px = self.img_w as u32 * self.scale;
        let x = self.left + c * self.cell_w + (self.cell_w - img_px) / 2;
        let y = TITLE_STRIP + r * self.cell_h + PAD;
        (x as i32, y as i32)
    }

    fn image_size(&self) -> (i32, i32) {
        (
            (self.img_w as u32 * self.scale) as i32,
            (self.img_h as u32 * self.scale) as i32,
        )
    }

    fn grid_bottom(&self) -> i32 {
        let rows = self.n.div_ceil(self.cols) as u32;
        (TITLE_STRIP + rows * self.cell_h) as i32
    }
}

const BAR_MIN_WIDTH: u32 = 560;

struct Grid<'a> {
    layout: GridLayout,
    /// One colour per image pixel, images one after another.
    colours: Vec<RGBColor>,
    captions: Vec<String>,
    title: &'a str,
    colour_bar: bool,
}

impl Paint for Grid<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, raster: bool) -> Result<()> {
        let l = &self.layout;
        draw_text(
            root,
            self.title,
            (l.width as i32 / 2, TITLE_STRIP as i32 / 2),
            &title_style(),
            CENTRE,
            raster,
        )?;
        let s = l.scale as i32;
        let (iw, ih) = l.image_size();
        let caption = text_style(CAPTION_PX);
        for i in 0..l.n {
            let (ox, oy) = l.image_origin(i);
            let pixels = &self.colours[i * l.img_w * l.img_h..(i + 1) * l.img_w * l.img_h];
            for (k, c) in pixels.iter().enumerate() {
                let (px, py) = ((k % l.img_w) as i32, (k / l.img_w) as i32);
                let (x, y) = (ox + px * s, oy + py * s);
                // Filled rectangles exclude their bottom-right corner: exactly s × s pixels.
                root.draw(&Rectangle::new([(x, y), (x + s, y + s)], c.filled()))
                    .or_invalid()?;
            }
            root.draw(&Rectangle::new(
                [(ox - 1, oy - 1), (ox + iw, oy + ih)],
                BORDER.stroke_width(1),
            ))
            .or_invalid()?;
            if let Some(text) = self.captions.get(i) {
                draw_text(
                    root,
                    text,
                    (ox + iw / 2, oy + ih + 8),
                    &caption,
                    (HPos::Center, VPos::Top),
                    raster,
                )?;
            }
        }
        if self.colour_bar {
            self.draw_colour_bar(root, raster)?;
        }
        Ok(())
    }
}

impl Grid<'_> {
    fn draw_colour_bar<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        raster: bool,
    ) -> Result<()> {
        let l = &self.layout;
        let (bar_w, bar_h) = (360, 24);
        let x0 = l.width as i32 / 2 - bar_w / 2;
        let y0 = l.grid_bottom() + 16;
        for k in 0..bar_w {
            let t = 2.0 * k as f64 / (bar_w - 1) as f64 - 1.0;
            root.draw(&Rectangle::new(
                [(x0 + k, y0), (x0 + k + 1, y0 + bar_h)],
                diverging(t).filled(),
            ))
            .or_invalid()?;
        }
        root.draw(&Rectangle::new(
            [(x0 - 1, y0 - 1), (x0 + bar_w, y0 + bar_h + 1)],
            BORDER.stroke_width(1),
        ))
        .or_invalid()?;
        let style = text_style(CAPTION_PX);
        let y = y0 + bar_h + 6;
        for (x, text) in [(x0, "−max"), (x0 + bar_w / 2, "0"), (x0 + bar_w, "+max")] {
            draw_text(
                root,
                text,
                (x, y),
                &style,
                (HPos::Center, VPos::Top),
                raster,
            )?;
        }
        draw_text(
            root,
            "each image scaled to its own max |w| (in its caption)",
            (l.width as i32 / 2, y + CAPTION_PX as i32 + 10),
            &style,
            (HPos::Center, VPos::Top),
            raster,
        )
    }
}

const CM_WIDTH: u32 = 1100;
const CM_HEIGHT: u32 = 960;

/// Left, top and side of a confusion matrix's cells.
fn confusion_layout() -> (i32, i32, i32) {
    let (left, right, top, bottom) = (130, 200, TITLE_STRIP + 10, 100);
    let side = (CM_WIDTH - left - right).min(CM_HEIGHT - top - bottom) / 10;
    let x0 = left + (CM_WIDTH - left - right - side * 10) / 2;
    (x0 as i32, top as i32, side as i32)
}

/// ColorBrewer's sequential Blues, white (0) to dark blue (1).
fn blues(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (247.0, 251.0, 255.0),
        (198.0, 219.0, 239.0),
        (107.0, 174.0, 214.0),
        (33.0, 113.0, 181.0),
        (8.0, 48.0, 107.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let f = t * (STOPS.len() - 1) as f64;
    let i = (f.floor() as usize).min(STOPS.len() - 2);
    let (a, b, u) = (STOPS[i], STOPS[i + 1], f - i as f64);
    let mix = |x: f64, y: f64| (x + (y - x) * u).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

const EMPTY_ROW: RGBColor = RGBColor(225, 225, 225);

/// A 10×10 heat map of `confusion[true][predicted]`, each row normalised by its total (so
/// colour shows how a true digit's images are spread), with the counts written in the cells.
/// Rows with no image are grey. 1100×960 px, with SVG.
pub fn confusion_matrix(confusion: &[[u32; 10]; 10], title: &str) -> Result<Figure> {
    render(&Confusion { confusion, title }, CM_WIDTH, CM_HEIGHT, true)
}

struct Confusion<'a> {
    confusion: &'a [[u32; 10]; 10],
    title: &'a str,
}

impl Paint for Confusion<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, raster: bool) -> Result<()> {
        draw_text(
            root,
            self.title,
            (CM_WIDTH as i32 / 2, TITLE_STRIP as i32 / 2),
            &title_style(),
            CENTRE,
            raster,
        )?;
        let (x0, y0, cell) = confusion_layout();
        let widest = self.confusion.iter().flatten().max().copied().unwrap_or(0);
        let count_px = fitting_size(&widest.to_string(), TICK_PX, cell as u32 - 10)?;
        for (t, row) in self.confusion.iter().enumerate() {
            let total: u64 = row.iter().map(|&c| c as u64).sum();
            for (p, &count) in row.iter().enumerate() {
                let (x, y) = (x0 + p as i32 * cell, y0 + t as i32 * cell);
                let frac = if total > 0 {
                    count as f64 / total as f64
                } else {
                    f64::NAN
                };
                let fill = if total > 0 { blues(frac) } else { EMPTY_ROW };
                // One pixel short of the next cell: a thin white rule between cells.
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell - 1, y + cell - 1)],
                    fill.filled(),
                ))
                .or_invalid()?;
                let ink = if frac > 0.5 { WHITE } else { BLACK };
                draw_text(
                    root,
                    &count.to_string(),
                    (x + cell / 2, y + cell / 2),
                    &text_style(count_px).color(&ink),
                    CENTRE,
                    raster,
                )?;
            }
        }
        let side = 10 * cell;
        root.draw(&Rectangle::new(
            [(x0 - 1, y0 - 1), (x0 + side, y0 + side)],
            BLACK.stroke_width(1),
        ))
        .or_invalid()?;

        let ticks = text_style(TICK_PX);
        for d in 0..10 {
            let mid = d * cell + cell / 2;
            let label = d.to_string();
            draw_text(
                root,
                &label,
                (x0 + mid, y0 + side + 10),
                &ticks,
                (HPos::Center, VPos::Top),
                raster,
            )?;
            draw_text(
                root,
                &label,
                (x0 - 14, y0 + mid),
                &ticks,
                (HPos::Right, VPos::Center),
                raster,
            )?;
        }
        let desc = text_style(LABEL_PX);
        draw_text(
            root,
            "predicted",
            (x0 + side / 2, y0 + side + 60),
            &desc,
            CENTRE,
            raster,
        )?;
        draw_text(
            root,
            "true",
            (x0 - 75, y0 + side / 2),
            &desc.transform(FontTransform::Rotate270),
            CENTRE,
            raster,
        )?;
        self.draw_colour_bar(root, (x0 + side + 36, y0, side), raster)
    }
}

impl Confusion<'_> {
    fn draw_colour_bar<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        (x, y0, h): (i32, i32, i32),
        raster: bool,
    ) -> Result<()> {
        let w = 28;
        for k in 0..h {
            let t = 1.0 - k as f64 / (h - 1) as f64;
            root.draw(&Rectangle::new(
                [(x, y0 + k), (x + w, y0 + k + 1)],
                blues(t).filled(),
            ))
            .or_invalid()?;
        }
        root.draw(&Rectangle::new(
            [(x - 1, y0 - 1), (x + w, y0 + h)],
            BORDER.stroke_width(1),
        ))
        .or_invalid()?;
        let ticks = text_style(CAPTION_PX);
        for (t, label) in [
            (0.0, "0"),
            (0.25, "0.25"),
            (0.5, "0.5"),
            (0.75, "0.75"),
            (1.0, "1"),
        ] {
            let y = y0 + ((1.0 - t) * (h - 1) as f64).round() as i32;
            root.draw(&PathElement::new(vec![(x + w, y), (x + w + 6, y)], BLACK))
                .or_invalid()?;
            draw_text(
                root,
                label,
                (x + w + 10, y),
                &ticks,
                (HPos::Left, VPos::Center),
                raster,
            )?;
        }
        draw_text(
            root,
            "fraction of the true digit's images",
            (x + w + 100, y0 + h / 2),
            &text_style(CAPTION_PX).transform(FontTransform::Rotate270),
            CENTRE,
            raster,
        )
    }
}

/// The largest font size up to `px` at which `text` fits in `room` pixels.
fn fitting_size(text: &str, px: u32, room: u32) -> Result<u32> {
    let mut size = px;
    while size > 10 && text_size(text, size)?.0 > room {
        size -= 1;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn luminance(p: [u8; 3]) -> u32 {
        299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32
    }

    #[test]
    fn confusion_diagonal_of_an_identity_is_the_darkest_colour() {
        let mut m = [[0u32; 10]; 10];
        for (d, row) in m.iter_mut().enumerate() {
            row[d] = 7 + d as u32 * 100;
        }
        let fig = confusion_matrix(&m, "identity").unwrap();
        let px = check_basic(&fig, CM_WIDTH, CM_HEIGHT);
        let (x0, y0, cell) = confusion_layout();
        // A corner of each cell, away from the count written in its middle.
        let at = |t: i32, p: i32| px.at((x0 + p * cell + 4) as u32, (y0 + t * cell + 4) as u32);
        let darkest = blues(1.0);
        for t in 0..10 {
            for p in 0..10 {
                let want = if t == p { darkest } else { blues(0.0) };
                assert_eq!(at(t, p), [want.0, want.1, want.2], "cell ({t}, {p})");
            }
        }
        // The colour bar runs from the darkest colour at its top to white at its bottom.
        let bar_x = (x0 + 10 * cell + 36 + 14) as u32;
        assert_eq!(px.at(bar_x, y0 as u32), [darkest.0, darkest.1, darkest.2]);
        let white = blues(0.0);
        let bottom = (y0 + 10 * cell - 1) as u32;
        assert_eq!(px.at(bar_x, bottom), [white.0, white.1, white.2]);
        let min_lum = px
            .rgb
            .chunks(3)
            .map(|c| luminance([c[0], c[1], c[2]]))
            .min();
        assert!(min_lum.unwrap() <= luminance([darkest.0, darkest.1, darkest.2]));
        assert!(fig.svg.unwrap().contains("predicted"));
    }

    #[test]
    fn confusion_rows_are_normalised_and_empty_rows_grey() {
        let mut m = [[0u32; 10]; 10];
        m[3][3] = 1;
        m[3][5] = 1; // row 3 split in halves
        m[0][0] = 1000;
        let fig = confusion_matrix(&m, "halves").unwrap();
        let px = decode(&fig);
        let (x0, y0, cell) = confusion_layout();
        let at = |t: i32, p: i32| px.at((x0 + p * cell + 4) as u32, (y0 + t * cell + 4) as u32);
        let half = blues(0.5);
        assert_eq!(at(3, 3), [half.0, half.1, half.2]);
        assert_eq!(at(3, 5), at(3, 3));
        assert_eq!(at(7, 7), [EMPTY_ROW.0, EMPTY_ROW.1, EMPTY_ROW.2]);
    }

    #[test]
    fn digit_grid_draws_ink_dark_on_white() {
        let (w, h) = (28, 28);
        let mut images = vec![1.0f32; w * h]; // all ink
        images.extend(vec![0.0f32; w * h]); // blank
        images.extend((0..w * h).map(|i| (i % w) as f32 / (w - 1) as f32)); // ramp
        let labels: Vec<String> = ["8", "true 4 → 9 (0.98)", "ramp"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let fig = digit_grid(&images, w, h, &labels, 2, "Digits").unwrap();
        let layout = GridLayout::new(3, w, h, 2, &labels, "Digits", 0).unwrap();
        let px = check_basic(&fig, layout.width, layout.height);
        let (iw, ih) = layout.image_size();
        let centre = |i: usize| {
            let (x, y) = layout.image_origin(i);
            px.at((x + iw / 2) as u32, (y + ih / 2) as u32)
        };
        assert_eq!(centre(0), [0, 0, 0]);
        assert_eq!(centre(1), [255, 255, 255]);
        let (x, y) = layout.image_origin(2);
        let left = px.at(x as u32 + 1, (y + ih / 2) as u32);
        let right = px.at((x + iw - 2) as u32, (y + ih / 2) as u32);
        assert!(left[0] > 240 && right[0] < 15, "{left:?} {right:?}");
        assert_eq!(
            layout.image_origin(2).1,
            layout.image_origin(0).1 + layout.cell_h as i32
        );
    }

    #[test]
    fn digit_grid_rejects_mismatched_inputs_in_one_line() {
        let err = digit_grid(&[0.0; 10], 3, 3, &[], 2, "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("3x3") && !err.contains('\n'), "{err}");
        let err = digit_grid(&[0.0; 9], 3, 3, &["a".into(), "b".into()], 2, "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 captions"), "{err}");
        assert!(digit_grid(&[0.0; 9], 3, 3, &[], 0, "t").is_err());
    }

    #[test]
    fn weight_images_are_blue_below_zero_and_red_above() {
        // Two 3×3 filters: the first a left-to-right ramp from -1 to 1, the second all zero.
        let mut w = vec![-1.0f32, 0.0, 1.0, -1.0, 0.0, 1.0, -1.0, 0.0, 1.0];
        w.extend([0.0f32; 9]);
        let fig = weight_images(&w, 2, 3, 3, 2, "Filters").unwrap();
        let captions = vec!["0: ±1.00".to_string(), "1: ±0.00".to_string()];
        let layout = GridLayout::new(2, 3, 3, 2, &captions, "Filters", BAR_STRIP).unwrap();
        let px = check_basic(&fig, layout.width, layout.height);
        let s = layout.scale as i32;
        let sample = |i: usize, cx: i32, cy: i32| {
            let (x, y) = layout.image_origin(i);
            px.at((x + cx * s + s / 2) as u32, (y + cy * s + s / 2) as u32)
        };
        let (blue, white, red) = (diverging(-1.0), diverging(0.0), diverging(1.0));
        assert_eq!(sample(0, 0, 1), [blue.0, blue.1, blue.2]);
        assert_eq!(sample(0, 1, 1), [white.0, white.1, white.2]);
        assert_eq!(sample(0, 2, 1), [red.0, red.1, red.2]);
        assert_eq!(sample(1, 2, 2), [255, 255, 255]);
        assert!(blue.2 > blue.0 && red.0 > red.2);
    }

    #[test]
    fn weight_images_take_the_first_rows_of_a_matrix() {
        let w: Vec<f32> = (0..5 * 784)
            .map(|i| (i as f32 * 0.37).sin() * 0.05)
            .collect();
        let fig = weight_images(&w, 4, 28, 28, 4, "dense_1").unwrap();
        assert!(fig.width >= 4 * 84 && fig.svg.is_none());
        let err = weight_images(&w, 6, 28, 28, 4, "dense_1").unwrap_err();
        assert!(err.to_string().contains("holds 5"), "{err}");
        let err = weight_images(&w, 1, 27, 28, 4, "dense_1").unwrap_err();
        assert!(err.to_string().contains("27x28"), "{err}");
        assert_eq!(magnitude(0.004), "4.0e-3");
        assert_eq!(magnitude(0.25), "0.25");
    }
}
