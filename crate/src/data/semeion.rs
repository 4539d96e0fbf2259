//! Semeion Handwritten Digit (UCI): 1593 binarised 16×16 digits.
//!
//! Each line holds 256 pixel values (`0.0000`/`1.0000`, 1 = ink, row-major), then ten
//! one-hot label columns where column k means digit k. Lines end in CRLF.

use std::path::Path;

use super::dataset::Dataset;
use super::text::{finite_f32, line_error, load_text_set, read_text_set};
use crate::error::{Error, Result};

pub const SIDE: usize = 16;
const PIXELS: usize = SIDE * SIDE;
const REL: &str = "semeion/semeion.data";

/// Parses `semeion.data` content. `path` is only named in errors.
pub fn parse_semeion(path: &Path, text: &str, source: &str, fix: &str) -> Result<Dataset> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != PIXELS + 10 {
            return Err(line_error(
                path,
                ln,
                format!(
                    "expected {} fields (256 pixels + 10 label columns), found {}",
                    PIXELS + 10,
                    fields.len()
                ),
                fix,
            ));
        }
        for (k, tok) in fields[..PIXELS].iter().enumerate() {
            match finite_f32(tok) {
                Some(v) if (0.0..=1.0).contains(&v) => images.push(v),
                _ => {
                    return Err(line_error(
                        path,
                        ln,
                        format!("pixel {} is `{tok}`, expected a value in [0, 1]", k + 1),
                        fix,
                    ))
                }
            }
        }
        let mut digit = None;
        for (k, tok) in fields[PIXELS..].iter().enumerate() {
            match finite_f32(tok) {
                Some(0.0) => {}
                Some(v) if v == 1.0 && digit.is_none() => digit = Some(k as u8),
                _ => {
                    return Err(line_error(
                        path,
                        ln,
                        format!(
                            "label columns {:?} are not one-hot (exactly one 1, the rest 0)",
                            &fields[PIXELS..]
                        ),
                        fix,
                    ))
                }
            }
        }
        let Some(digit) = digit else {
            return Err(line_error(
                path,
                ln,
                "label columns are all 0; exactly one must be 1",
                fix,
            ));
        };
        labels.push(digit);
    }
    if labels.is_empty() {
        return Err(Error::format(path, format!("holds no digits; {fix}")));
    }
    Dataset::new("semeion", images, labels, SIDE, SIDE, source)
}

/// Reads any file in Semeion's layout, unverified.
pub fn read_semeion(path: &Path) -> Result<Dataset> {
    read_text_set(path, parse_semeion)
}

/// The verified `semeion/semeion.data` under `data_dir`, named `semeion`.
pub fn load_semeion(data_dir: &Path) -> Result<Dataset> {
    load_text_set(data_dir, REL, parse_semeion)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(pixel0: &str, label_cols: &str) -> String {
        let mut s = String::from(pixel0);
        for _ in 1..PIXELS {
            s.push_str(" 0.0000");
        }
        format!("{s} {label_cols} \r\n")
    }

    #[test]
    fn parses_one_hot_rows() {
        let text = line("1.0000", "0 0 0 1 0 0 0 0 0 0") + &line("0.0000", "1 0 0 0 0 0 0 0 0 0");
        let d = parse_semeion(Path::new("s"), &text, "h", "x").unwrap();
        assert_eq!(d.labels, vec![3, 0]);
        assert_eq!(d.image(0)[0], 1.0);
        assert_eq!(d.image(1)[0], 0.0);
    }

    #[test]
    fn rejects_bad_records_with_line_numbers() {
        let ok = line("1.0000", "0 0 0 1 0 0 0 0 0 0");
        let cases = [
            (line("1.0000", "0 0 0 1 0 0 0 0 0"), "expected 266 fields"),
            (line("2.0000", "0 0 0 1 0 0 0 0 0 0"), "pixel 1 is `2.0000`"),
            (line("x", "0 0 0 1 0 0 0 0 0 0"), "pixel 1 is `x`"),
            (line("1.0000", "0 1 0 1 0 0 0 0 0 0"), "not one-hot"),
            (line("1.0000", "0 0 0 0 0 0 0 0 0 0"), "all 0"),
        ];
        for (bad, want) in cases {
            let e = parse_semeion(Path::new("s"), &(ok.clone() + &bad), "h", "x")
                .unwrap_err()
                .to_string();
            assert!(e.contains("line 2: ") && e.contains(want), "{want}: {e}");
        }
    }
}
