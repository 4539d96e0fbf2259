//! mfeat-pix (UCI Multiple Features): 2000 digits from Dutch utility maps, 15 wide × 16
//! high, values 0..6 (the mean of 2×3 windows of a lost binary original; higher = more
//! ink). There is no label column: rows 200k..200k+199 are digit k.

use std::path::Path;

use super::dataset::Dataset;
use super::text::{line_error, load_text_set, read_text_set};
use crate::error::{Error, Result};

pub const WIDTH: usize = 15;
pub const HEIGHT: usize = 16;
const VALUES: usize = WIDTH * HEIGHT;
const PER_DIGIT: usize = 200;
const REL: &str = "mfeat/mfeat-pix.txt";

/// Parses mfeat-pix content. `path` is only named in errors.
pub fn parse_mfeat(path: &Path, text: &str, source: &str, fix: &str) -> Result<Dataset> {
    let mut images = Vec::with_capacity(10 * PER_DIGIT * VALUES);
    let mut rows = 0usize;
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let start = images.len();
        for (k, tok) in line.split_whitespace().enumerate() {
            match tok.parse::<u8>() {
                Ok(v) if v <= 6 => images.push(v as f32 / 6.0),
                _ => {
                    return Err(line_error(
                        path,
                        ln,
                        format!("value {} is `{tok}`, expected an integer 0..6", k + 1),
                        fix,
                    ))
                }
            }
        }
        let n = images.len() - start;
        if n != VALUES {
            return Err(line_error(
                path,
                ln,
                format!("expected {VALUES} values (15x16 image), found {n}"),
                fix,
            ));
        }
        rows += 1;
    }
    // Labels come from row order alone, so any other row count would mislabel digits.
    if rows != 10 * PER_DIGIT {
        return Err(Error::format(
            path,
            format!("holds {rows} rows, expected 2000 (200 per digit, in order, which is where the labels come from); {fix}"),
        ));
    }
    let labels = (0..rows).map(|r| (r / PER_DIGIT) as u8).collect();
    Dataset::new("mfeat", images, labels, WIDTH, HEIGHT, source)
}

/// Reads any file in mfeat-pix's layout, unverified.
pub fn read_mfeat(path: &Path) -> Result<Dataset> {
    read_text_set(path, parse_mfeat)
}

/// The verified `mfeat/mfeat-pix.txt` under `data_dir`, named `mfeat`.
pub fn load_mfeat(data_dir: &Path) -> Result<Dataset> {
    load_text_set(data_dir, REL, parse_mfeat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(rows: usize, bad: Option<(usize, &str)>) -> String {
        let mut s = String::new();
        for r in 0..rows {
            let mut vals: Vec<String> = (0..VALUES).map(|k| format!("{:3}", (r + k) % 7)).collect();
            if let Some((row, tok)) = bad {
                if row == r {
                    vals[3] = tok.to_string();
                }
            }
            s.push_str(&vals.concat());
            if r + 1 < rows {
                s.push('\n');
            }
        }
        s
    }

    #[test]
    fn labels_follow_row_blocks() {
        let d = parse_mfeat(Path::new("m"), &file(2000, None), "h", "x").unwrap();
        assert_eq!(d.len(), 2000);
        assert_eq!(d.label_counts(), [200; 10]);
        assert_eq!((d.labels[199], d.labels[200], d.labels[1999]), (0, 1, 9));
        assert_eq!((d.width, d.height), (15, 16));
        assert_eq!(d.image(0)[6], 1.0);
        assert_eq!(d.image(0)[3], 0.5);
    }

    #[test]
    fn rejects_bad_values_counts_and_rows() {
        let p = Path::new("m");
        let e = parse_mfeat(p, &file(2000, Some((41, "  7"))), "h", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 42: value 4 is `7`"), "{e}");
        let e = parse_mfeat(p, &file(2000, Some((9, " -1"))), "h", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 10: value 4 is `-1`"), "{e}");
        let e = parse_mfeat(p, &file(3, Some((2, "  1  2"))), "h", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3: expected 240 values"), "{e}");
        let e = parse_mfeat(p, &file(1999, None), "h", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds 1999 rows"), "{e}");
    }
}
