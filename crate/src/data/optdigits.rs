//! UCI optdigits, original 32×32 binary bitmaps (`optdigits-orig.*`).
//!
//! A 21-line header (`entwidth = 32`, `ntot = N`, ...), then per digit 32 lines of 32
//! characters `0`/`1` (1 = ink) and one label line such as ` 7`. Some copies end with a
//! literal `EOF` line, which is skipped.

use std::path::Path;

use super::dataset::Dataset;
use super::text::{line_error, load_text_set, read_text_set};
use crate::error::{Error, Result};

pub const SIDE: usize = 32;
const HEADER_LINES: usize = 21;

/// Which `optdigits-orig` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptdigitsPart {
    /// `optdigits-orig.windep`: 1797 digits by 13 writers found in no training file.
    WriterIndependent,
    /// `optdigits-orig.tra`: 1934 training digits by 30 other writers.
    Train,
}

impl OptdigitsPart {
    fn rel_path(self) -> &'static str {
        match self {
            OptdigitsPart::WriterIndependent => "optdigits/optdigits-orig.windep",
            OptdigitsPart::Train => "optdigits/optdigits-orig.tra",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OptdigitsPart::WriterIndependent => "optdigits",
            OptdigitsPart::Train => "optdigits-train",
        }
    }
}

/// The value of a `key = value` header line.
fn header_value(lines: &[&str], key: &str) -> Option<usize> {
    lines.iter().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Refuses a header whose bitmaps are not 32×32, the only size the format's files use.
fn check_sizes(path: &Path, header: &[&str], fix: &str) -> Result<()> {
    for key in ["entwidth", "entheight"] {
        if let Some(v) = header_value(header, key) {
            if v != SIDE {
                return Err(Error::format(
                    path,
                    format!("header says {key} = {v}, only 32 is supported; {fix}"),
                ));
            }
        }
    }
    Ok(())
}

/// Reads the digit whose 32 bitmap rows start at line index `i` into `images` and returns the
/// label on the line after them.
fn read_digit(
    path: &Path,
    lines: &[&str],
    i: usize,
    fix: &str,
    images: &mut Vec<f32>,
) -> Result<u8> {
    for row in 0..SIDE {
        let ln = i + row + 1;
        let Some(line) = lines.get(i + row) else {
            return Err(line_error(
                path,
                ln,
                format!("file ends inside a digit after {row} of 32 bitmap rows"),
                fix,
            ));
        };
        let line = line.trim_end();
        if line.len() != SIDE || !line.bytes().all(|b| b == b'0' || b == b'1') {
            return Err(line_error(
                path,
                ln,
                format!(
                    "bitmap row {} of a digit is `{line}`, expected 32 characters 0/1",
                    row + 1
                ),
                fix,
            ));
        }
        images.extend(line.bytes().map(|b| if b == b'1' { 1.0f32 } else { 0.0 }));
    }
    let ln = i + SIDE + 1;
    let label = lines
        .get(i + SIDE)
        .ok_or_else(|| line_error(path, ln, "file ends before the digit's label line", fix))?
        .trim();
    match label.parse::<u8>() {
        Ok(d) if d < 10 && label.len() == 1 => Ok(d),
        _ => Err(line_error(
            path,
            ln,
            format!("label line is `{label}`, expected a digit 0..9"),
            fix,
        )),
    }
}

/// Parses an `optdigits-orig` file into a data set named `optdigits`. `path` is only named in
/// errors.
pub fn parse_optdigits(path: &Path, text: &str, source: &str, fix: &str) -> Result<Dataset> {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() < HEADER_LINES {
        return Err(Error::format(
            path,
            format!(
                "only {} lines, shorter than the 21-line header; {fix}",
                lines.len()
            ),
        ));
    }
    let header = &lines[..HEADER_LINES];
    check_sizes(path, header, fix)?;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut i = HEADER_LINES;
    while i < lines.len() {
        let first = lines[i].trim();
        if first.is_empty() {
            i += 1;
            continue;
        }
        if first == "EOF" {
            if let Some(extra) = lines[i + 1..].iter().position(|l| !l.trim().is_empty()) {
                return Err(line_error(
                    path,
                    i + extra + 2,
                    "text after the closing `EOF`",
                    fix,
                ));
            }
            break;
        }
        labels.push(read_digit(path, &lines, i, fix, &mut images)?);
        i += SIDE + 1;
    }
    if labels.is_empty() {
        return Err(Error::format(
            path,
            format!("holds no digits after the header; {fix}"),
        ));
    }
    if let Some(n) = header_value(header, "ntot") {
        if n != labels.len() {
            return Err(Error::format(
                path,
                format!(
                    "header says ntot = {n} but {} digits were read; {fix}",
                    labels.len()
                ),
            ));
        }
    }
    Dataset::new("optdigits", images, labels, SIDE, SIDE, source)
}

/// Reads any file in the `optdigits-orig` layout, unverified.
pub fn read_optdigits(path: &Path, name: &str) -> Result<Dataset> {
    Ok(read_text_set(path, parse_optdigits)?.renamed(name))
}

/// A verified `optdigits-orig` file under `data_dir`, named `optdigits` (writer-independent
/// test file) or `optdigits-train`.
pub fn load_optdigits(data_dir: &Path, part: OptdigitsPart) -> Result<Dataset> {
    Ok(load_text_set(data_dir, part.rel_path(), parse_optdigits)?.renamed(part.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(ntot: usize) -> String {
        let mut s = String::from("BU handwritten digit database: E Alpaydin C Kaynak 1995\nTest file\n\nentwidth = 32\nentheight = 32\n");
        s.push_str(&format!("ntot = {ntot}\n"));
        for k in 0..15 {
            s.push_str(&format!("key{k} = 0\n"));
        }
        s
    }

    fn digit(label: &str, ink_row: usize) -> String {
        let mut s = String::new();
        for r in 0..SIDE {
            s.push_str(if r == ink_row {
                "11110000000000000000000000000000\n"
            } else {
                "00000000000000000000000000000000\n"
            });
        }
        format!("{s}{label}\n")
    }

    #[test]
    fn parses_digits_and_skips_eof() {
        let text = header(2) + &digit(" 7", 0) + &digit(" 0", 31) + "EOF";
        let d = parse_optdigits(Path::new("o"), &text, "h", "x").unwrap();
        assert_eq!(d.labels, vec![7, 0]);
        assert_eq!(&d.image(0)[..5], &[1.0, 1.0, 1.0, 1.0, 0.0]);
        assert_eq!(d.image(1)[31 * 32], 1.0);
    }

    #[test]
    fn rejects_bad_records_with_line_numbers() {
        let p = Path::new("o");
        let bad_row = digit(" 1", 0).replace(
            "11110000000000000000000000000000",
            "1111000000000000000000000000000x",
        );
        let e = parse_optdigits(p, &(header(1) + &bad_row), "h", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 22: bitmap row 1"), "{e}");
        let e = parse_optdigits(
            p,
            &(header(2) + &digit(" 1", 0) + &digit(" 12", 0)),
            "h",
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 87: label line is `12`"), "{e}");
        let truncated: String = digit(" 1", 0)
            .lines()
            .take(10)
            .map(|l| format!("{l}\n"))
            .collect();
        let e = parse_optdigits(p, &(header(1) + &truncated), "h", "x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 32: file ends inside a digit after 10 of 32"),
            "{e}"
        );
        let e = parse_optdigits(p, &(header(3) + &digit(" 1", 0)), "h", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ntot = 3 but 1"), "{e}");
        let e = parse_optdigits(p, &(header(1) + &digit(" 1", 0) + "EOF\n 3\n"), "h", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 56: text after the closing `EOF`"), "{e}");
        assert!(parse_optdigits(p, "short", "h", "x").is_err());
    }
}
