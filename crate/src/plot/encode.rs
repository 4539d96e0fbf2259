//! PNG encoding that picks the smallest faithful form for a figure's pixels.
//!
//! Figures are mostly white, with black or grey text and a few flat colours, so they rarely
//! need 24 bits a pixel:
//!
//! * every pixel grey → 8-bit greyscale (lossless);
//! * at most 256 distinct colours → an indexed palette, packed to 1, 2 or 4 bits a pixel when
//!   it has at most 2, 4 or 16 entries (lossless);
//! * more colours (antialiased coloured lines, colour maps) → a palette of 256 colours
//!   (lossy): the most frequent colours (background, flat fills, text) are kept exactly and
//!   NeuQuant (the `color_quant` crate) learns the rest, refined by a few k-means steps; each
//!   pixel takes its nearest palette colour, without dithering.
//!
//! Every form is written at the highest zlib level with several row-filter strategies, and the
//! smallest result is kept. Nothing depends on time or randomness: the same pixels always give
//! the same bytes.

use std::collections::HashMap;

use super::OrInvalid;
use crate::{Error, Result};

/// Colours kept exactly when a figure needs a quantised palette: the most frequent ones, so that
/// backgrounds, fills, series colours and text stay exact.
const EXACT: usize = 128;
/// A colour must cover at least this many pixels to be kept exactly.
const EXACT_MIN_PIXELS: u32 = 4;
/// NeuQuant sees each remaining colour at most this many times, so that its entries spread over
/// the colours present (a colour bar's smooth ramp) rather than crowd the most common few.
const SAMPLE_CAP: u32 = 4;
/// k-means steps that refine NeuQuant's learned colours.
const REFINE_STEPS: usize = 3;

/// Encode 8-bit RGB pixels (`width × height × 3` bytes, row-major) as the smallest faithful
/// PNG: greyscale or an exact palette where those hold every pixel (lossless), otherwise a
/// palette quantised to 256 colours. Deterministic.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let n = width as usize * height as usize;
    if width == 0 || height == 0 || rgb.len() != n * 3 {
        return Err(Error::invalid(format!(
            "cannot encode PNG: {} bytes are not {width}x{height} RGB pixels",
            rgb.len()
        )));
    }
    if rgb.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2]) {
        let grey: Vec<u8> = rgb.chunks_exact(3).map(|p| p[0]).collect();
        return smallest(&grey, width, height, png::ColorType::Grayscale, 8, None);
    }
    let (palette, indices) = match exact_palette(rgb) {
        Some(p) => p,
        None => quantise(rgb),
    };
    let depth = match palette.len() {
        0..=2 => 1,
        3..=4 => 2,
        5..=16 => 4,
        _ => 8,
    };
    let packed = pack(&indices, width as usize, depth);
    let plte: Vec<u8> = palette.iter().flat_map(|&c| unpack_rgb(c)).collect();
    smallest(
        &packed,
        width,
        height,
        png::ColorType::Indexed,
        depth,
        Some(&plte),
    )
}

/// Decode a PNG of any colour type and depth into 8-bit RGB pixels: `(rgb, width, height)`.
/// Transparency is composited onto white, as figures are drawn on white.
pub fn decode_rgb(png_bytes: &[u8]) -> Result<(Vec<u8>, u32, u32)> {
    let mut decoder = png::Decoder::new(png_bytes);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().or_invalid()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).or_invalid()?;
    buf.truncate(info.buffer_size());
    let over_white =
        |v: u8, a: u8| ((v as u32 * a as u32 + 255 * (255 - a as u32) + 127) / 255) as u8;
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks_exact(2)
            .flat_map(|p| [over_white(p[0], p[1]); 3])
            .collect(),
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [0, 1, 2].map(|c| over_white(p[c], p[3])))
            .collect(),
        png::ColorType::Indexed => {
            return Err(Error::invalid(
                "cannot draw figure: PNG palette not expanded",
            ))
        }
    };
    Ok((rgb, info.width, info.height))
}

/// Re-encode a PNG with [`encode_png`]: the same pixels (8-bit RGB, composited on white), in
/// the smallest faithful form. Pixel-identical unless the image has more than 256 colours.
pub fn compact_png(png_bytes: &[u8]) -> Result<Vec<u8>> {
    let (rgb, width, height) = decode_rgb(png_bytes)?;
    encode_png(&rgb, width, height)
}

fn pack_rgb(p: &[u8]) -> u32 {
    (p[0] as u32) << 16 | (p[1] as u32) << 8 | p[2] as u32
}

fn unpack_rgb(c: u32) -> [u8; 3] {
    [(c >> 16) as u8, (c >> 8) as u8, c as u8]
}

/// Rec. 601 luma ×1000, to order palettes from dark to light.
fn luma(c: u32) -> u32 {
    let [r, g, b] = unpack_rgb(c);
    299 * r as u32 + 587 * g as u32 + 114 * b as u32
}

/// The palette (ordered by luma, then colour) and each pixel's index, when the pixels have at
/// most 256 colours.
fn exact_palette(rgb: &[u8]) -> Option<(Vec<u32>, Vec<u8>)> {
    let mut seen: HashMap<u32, u8> = HashMap::new();
    for p in rgb.chunks_exact(3) {
        if !seen.contains_key(&pack_rgb(p)) {
            if seen.len() == 256 {
                return None;
            }
            seen.insert(pack_rgb(p), 0);
        }
    }
    let mut palette: Vec<u32> = seen.keys().copied().collect();
    palette.sort_by_key(|&c| (luma(c), c));
    for (i, c) in palette.iter().enumerate() {
        seen.insert(*c, i as u8);
    }
    let indices = rgb.chunks_exact(3).map(|p| seen[&pack_rgb(p)]).collect();
    Some((palette, indices))
}

fn distance(a: u32, b: u32) -> u32 {
    let (a, b) = (unpack_rgb(a), unpack_rgb(b));
    (0..3)
        .map(|c| (a[c] as i32 - b[c] as i32).pow(2) as u32)
        .sum()
}

fn nearest(palette: &[u32], c: u32) -> usize {
    let mut best = (u32::MAX, 0);
    for (i, &p) in palette.iter().enumerate() {
        let d = distance(p, c);
        if d < best.0 {
            best = (d, i);
        }
    }
    best.1
}

/// A 256-colour palette for pixels with more colours: the most frequent colours exactly, the
/// rest learned by NeuQuant and refined by k-means; pixels map to their nearest entry.
fn quantise(rgb: &[u8]) -> (Vec<u32>, Vec<u8>) {
    let mut counts: HashMap<u32, u32> = HashMap::new();
    for p in rgb.chunks_exact(3) {
        *counts.entry(pack_rgb(p)).or_insert(0) += 1;
    }
    // Most frequent first; ties by colour, so the order never depends on the hash map's.
    let mut colours: Vec<(u32, u32)> = counts.into_iter().collect();
    colours.sort_by_key(|&(c, n)| (std::cmp::Reverse(n), c));
    let exact = colours
        .iter()
        .take(EXACT)
        .take_while(|&&(_, n)| n >= EXACT_MIN_PIXELS)
        .count();
    let (kept, rest) = colours.split_at(exact);
    let mut palette: Vec<u32> = kept.iter().map(|&(c, _)| c).collect();

    // NeuQuant learns the remaining colours from the pixels not already exact, each colour
    // repeated as often as it occurs up to [`SAMPLE_CAP`].
    let free = 256 - palette.len();
    let mut sample = Vec::new();
    for &(c, n) in rest {
        let [r, g, b] = unpack_rgb(c);
        for _ in 0..n.min(SAMPLE_CAP) {
            sample.extend_from_slice(&[r, g, b, 255]);
        }
    }
    let learned = color_quant::NeuQuant::new(3, free.max(64), &sample).color_map_rgb();
    let mut extra: Vec<u32> = learned.chunks_exact(3).map(pack_rgb).collect();
    extra.sort_unstable();
    extra.dedup();
    extra.retain(|c| !palette.contains(c));
    extra.truncate(free);

    // k-means on the learned entries only; the exact ones never move.
    for _ in 0..REFINE_STEPS {
        let mut sums = vec![[0u64; 4]; extra.len()];
        let all: Vec<u32> = palette.iter().chain(&extra).copied().collect();
        for &(c, n) in rest {
            let i = nearest(&all, c);
            if i >= palette.len() {
                // Weighted as in NeuQuant's sample: the entries keep covering every colour.
                let n = n.min(SAMPLE_CAP);
                let s = &mut sums[i - palette.len()];
                let [r, g, b] = unpack_rgb(c);
                s[0] += r as u64 * n as u64;
                s[1] += g as u64 * n as u64;
                s[2] += b as u64 * n as u64;
                s[3] += n as u64;
            }
        }
        for (e, s) in extra.iter_mut().zip(&sums) {
            if s[3] > 0 {
                let mean = |v: u64| ((v + s[3] / 2) / s[3]) as u8;
                *e = pack_rgb(&[mean(s[0]), mean(s[1]), mean(s[2])]);
            }
        }
        extra.sort_unstable();
        extra.dedup();
        extra.retain(|c| !palette.contains(c));
    }
    palette.extend(extra);
    palette.sort_by_key(|&c| (luma(c), c));

    let mut index: HashMap<u32, u8> = HashMap::new();
    let indices = rgb
        .chunks_exact(3)
        .map(|p| {
            let c = pack_rgb(p);
            *index.entry(c).or_insert_with(|| nearest(&palette, c) as u8)
        })
        .collect();
    (palette, indices)
}

/// Rows of palette indices packed to `depth` bits a pixel, each row starting on a byte.
fn pack(indices: &[u8], width: usize, depth: u8) -> Vec<u8> {
    if depth == 8 {
        return indices.to_vec();
    }
    let per_byte = 8 / depth as usize;
    let mut out = Vec::with_capacity(indices.len() / per_byte + indices.len() / width + 1);
    for row in indices.chunks(width) {
        for group in row.chunks(per_byte) {
            let mut byte = 0u8;
            for (k, &v) in group.iter().enumerate() {
                byte |= v << (8 - depth as usize * (k + 1));
            }
            out.push(byte);
        }
    }
    out
}

/// The smallest of the encodings with each filter strategy, at the best compression.
fn smallest(
    data: &[u8],
    width: u32,
    height: u32,
    colour: png::ColorType,
    depth: u8,
    palette: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let depth = match depth {
        1 => png::BitDepth::One,
        2 => png::BitDepth::Two,
        4 => png::BitDepth::Four,
        _ => png::BitDepth::Eight,
    };
    let strategies = [
        (
            png::FilterType::NoFilter,
            png::AdaptiveFilterType::NonAdaptive,
        ),
        (png::FilterType::Up, png::AdaptiveFilterType::NonAdaptive),
        (png::FilterType::Sub, png::AdaptiveFilterType::Adaptive),
    ];
    let mut best: Option<Vec<u8>> = None;
    for (filter, adaptive) in strategies {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, width, height);
            enc.set_color(colour);
            enc.set_depth(depth);
            if let Some(p) = palette {
                enc.set_palette(p);
            }
            enc.set_compression(png::Compression::Best);
            enc.set_filter(filter);
            enc.set_adaptive_filter(adaptive);
            let mut w = enc.write_header().or_invalid()?;
            w.write_image_data(data).or_invalid()?;
            w.finish().or_invalid()?;
        }
        if best.as_ref().is_none_or(|b| out.len() < b.len()) {
            best = Some(out);
        }
    }
    Ok(best.expect("at least one strategy"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Colour type, bit depth and pixels of an encoded PNG.
    fn read(png_bytes: &[u8]) -> (png::ColorType, png::BitDepth, Vec<u8>) {
        let reader = png::Decoder::new(png_bytes).read_info().unwrap();
        let (colour, depth) = (reader.info().color_type, reader.info().bit_depth);
        (colour, depth, decode_rgb(png_bytes).unwrap().0)
    }

    /// A deterministic pseudo-random byte stream.
    fn noise(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn grey_pixels_are_greyscale_and_exact() {
        let (w, h) = (37, 23);
        let rgb: Vec<u8> = noise(w * h, 1).iter().flat_map(|&g| [g; 3]).collect();
        let png_bytes = encode_png(&rgb, w as u32, h as u32).unwrap();
        let (colour, depth, back) = read(&png_bytes);
        assert_eq!(
            (colour, depth),
            (png::ColorType::Grayscale, png::BitDepth::Eight)
        );
        assert_eq!(back, rgb);
    }

    #[test]
    fn up_to_256_colours_are_an_exact_palette() {
        let (w, h) = (64, 40);
        let colours: Vec<[u8; 3]> = noise(256 * 3, 2)
            .chunks(3)
            .map(|c| [c[0], c[1], c[2] | 1])
            .collect();
        let rgb: Vec<u8> = (0..w * h).flat_map(|i| colours[(i * 7) % 256]).collect();
        let png_bytes = encode_png(&rgb, w as u32, h as u32).unwrap();
        let (colour, _, back) = read(&png_bytes);
        assert_eq!(colour, png::ColorType::Indexed);
        assert_eq!(back, rgb);

        // Few colours pack to fewer bits a pixel, rows of odd widths included.
        for (k, bits) in [
            (2, png::BitDepth::One),
            (3, png::BitDepth::Two),
            (9, png::BitDepth::Four),
        ] {
            let rgb: Vec<u8> = (0..13 * 5).flat_map(|i| colours[i % k]).collect();
            let png_bytes = encode_png(&rgb, 13, 5).unwrap();
            let (colour, depth, back) = read(&png_bytes);
            assert_eq!(
                (colour, depth),
                (png::ColorType::Indexed, bits),
                "{k} colours"
            );
            assert_eq!(back, rgb, "{k} colours");
        }
    }

    #[test]
    fn many_colours_quantise_closely_and_keep_frequent_colours_exact() {
        // White with a blue-white-red ramp (512 colours, like a weight figure's colour bar)
        // and a black frame.
        let (w, h) = (512usize, 64usize);
        let mut rgb = vec![255u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let t = x as f64 / (w - 1) as f64 * 2.0 - 1.0;
                let end = if t < 0.0 {
                    [33.0, 102.0, 172.0]
                } else {
                    [178.0, 24.0, 43.0]
                };
                let c = end.map(|e: f64| (255.0 + (e - 255.0) * t.abs()).round() as u8);
                let c = if y < 2 || y >= h - 2 {
                    [0, 0, 0]
                } else if y < 20 {
                    c
                } else {
                    [255; 3]
                };
                rgb[(y * w + x) * 3..][..3].copy_from_slice(&c);
            }
        }
        let png_bytes = encode_png(&rgb, w as u32, h as u32).unwrap();
        let (colour, _, back) = read(&png_bytes);
        assert_eq!(colour, png::ColorType::Indexed);
        let diffs: Vec<u8> = rgb.iter().zip(&back).map(|(a, b)| a.abs_diff(*b)).collect();
        let max = diffs.iter().copied().max().unwrap();
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        assert!(max <= 12 && mean < 1.0, "max error {max}, mean {mean}");
        // Background and frame exactly.
        let px = |x: usize, y: usize| &back[(y * w + x) * 3..][..3];
        assert_eq!(px(5, 40), [255, 255, 255]);
        assert_eq!(px(100, 0), [0, 0, 0]);
    }

    #[test]
    fn encoding_is_deterministic_and_compact_png_keeps_pixels() {
        let (w, h) = (200, 120);
        let rgb = noise(w * h * 3, 3);
        let a = encode_png(&rgb, w as u32, h as u32).unwrap();
        let b = encode_png(&rgb, w as u32, h as u32).unwrap();
        assert_eq!(a, b);

        // An 8-bit RGB PNG as the old encoder wrote it, with few colours: compacted exactly.
        let few: Vec<u8> = rgb.iter().map(|v| v & 0xC0).collect();
        let mut plain = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut plain, w as u32, h as u32);
            enc.set_color(png::ColorType::Rgb);
            let mut writer = enc.write_header().unwrap();
            writer.write_image_data(&few).unwrap();
        }
        let compact = compact_png(&plain).unwrap();
        assert!(compact.len() < plain.len());
        assert_eq!(decode_rgb(&compact).unwrap(), (few, w as u32, h as u32));
        assert_eq!(compact_png(&compact).unwrap(), compact);
    }

    #[test]
    fn wrong_sizes_are_one_line_errors() {
        let err = encode_png(&[0; 10], 2, 2).unwrap_err().to_string();
        assert!(err.contains("2x2") && !err.contains('\n'), "{err}");
        assert!(compact_png(b"not a png").is_err());
    }
}
