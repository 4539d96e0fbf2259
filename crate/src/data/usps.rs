//! USPS (Hull 1994), 16×16, in its two public renderings, parsed by us.
//!
//! - LIBSVM multiclass (`usps.t.bz2`, 2007 test digits; optional `usps.bz2`, 7291 training
//!   digits): `label idx:val ...` with labels 1..10 meaning digits 0..9 and indices 1..256.
//!   The published files list all 256 features on every line; as the format defines, an
//!   omitted feature is 0 (mid-grey on the [-1, 1] scale).
//! - ESL (`zip.train.gz`, `zip.test.gz`): `label v1 ... v256`, label 0..9 written as a float
//!   (`6.0000`).
//!
//! Both use [-1, 1] with -1 the background and +1 the ink (checked by printing digits as
//! ASCII art), so `(v + 1) / 2` gives MNIST's convention of bright ink in [0, 1].
//! The two renderings hold the same digits in the same order but differ pixel by pixel
//! (the LIBSVM one is smoother).

use std::path::Path;

use super::checksums::combine_hashes;
use super::dataset::{Dataset, Split};
use super::text::{finite_f32, integer_label, line_error, load_text_set, read_text_set, Parse};
use crate::error::{Error, Result};

pub const SIDE: usize = 16;
const PIXELS: usize = SIDE * SIDE;
/// Slack for values printed with a few decimals just past ±1.
const RANGE_SLACK: f32 = 1e-4;

fn to_unit(v: f32) -> f32 {
    ((v + 1.0) / 2.0).clamp(0.0, 1.0)
}

fn check_value(v: f32) -> bool {
    (-1.0 - RANGE_SLACK..=1.0 + RANGE_SLACK).contains(&v)
}

/// One line of a file being parsed: where its errors point and what they advise.
#[derive(Clone, Copy)]
struct Line<'a> {
    path: &'a Path,
    ln: usize,
    fix: &'a str,
}

impl Line<'_> {
    fn error(self, what: String) -> Error {
        line_error(self.path, self.ln, what, self.fix)
    }

    /// The line's label token as a number in `lo..=hi`; `expected` says what that means.
    fn label(self, tok: &str, lo: u8, hi: u8, expected: &str) -> Result<u8> {
        integer_label(tok, lo, hi)
            .ok_or_else(|| self.error(format!("bad label `{tok}`: expected {expected}")))
    }

    /// A pixel token at `place`: a number in [-1, 1], brought to [0, 1].
    fn pixel(self, tok: &str, place: std::fmt::Arguments) -> Result<f32> {
        let v = finite_f32(tok)
            .ok_or_else(|| self.error(format!("unparsable number `{tok}` at {place}")))?;
        if !check_value(v) {
            return Err(self.error(format!("value {v} at {place} is outside [-1, 1]")));
        }
        Ok(to_unit(v))
    }
}

/// Each non-blank line of `text`: where it is, its first token (the label) and the rest.
fn labelled_lines<'a>(
    path: &'a Path,
    text: &'a str,
    fix: &'a str,
) -> impl Iterator<Item = (Line<'a>, &'a str, std::str::SplitWhitespace<'a>)> {
    text.lines().enumerate().filter_map(move |(i, line)| {
        let mut tokens = line.split_whitespace();
        let label = tokens.next()?;
        Some((
            Line {
                path,
                ln: i + 1,
                fix,
            },
            label,
            tokens,
        ))
    })
}

/// Parses the LIBSVM rendering into a data set named `usps`. `path` is only named in errors.
pub fn parse_libsvm(path: &Path, text: &str, source: &str, fix: &str) -> Result<Dataset> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (at, label, tokens) in labelled_lines(path, text, fix) {
        let digit = at.label(label, 1, 10, "1..10 (digit + 1)")?;
        // An omitted feature is 0, mid-grey.
        let mut img = [to_unit(0.0); PIXELS];
        let mut last = 0usize;
        for tok in tokens {
            let (idx, val) = tok
                .split_once(':')
                .ok_or_else(|| at.error(format!("feature `{tok}` is not index:value")))?;
            let idx: usize = idx
                .parse()
                .ok()
                .filter(|&k| (1..=PIXELS).contains(&k))
                .ok_or_else(|| {
                    at.error(format!("feature index `{idx}` is not within 1..{PIXELS}"))
                })?;
            if idx <= last {
                return Err(at.error(format!(
                    "feature index {idx} after {last}: indices must increase"
                )));
            }
            last = idx;
            img[idx - 1] = at.pixel(val, format_args!("feature {idx}"))?;
        }
        images.extend(img);
        labels.push(digit - 1);
    }
    finish(path, images, labels, source, fix)
}

/// Parses the ESL rendering into a data set named `usps`. `path` is only named in errors.
pub fn parse_esl(path: &Path, text: &str, source: &str, fix: &str) -> Result<Dataset> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (at, label, tokens) in labelled_lines(path, text, fix) {
        let digit = at.label(label, 0, 9, "a digit 0..9")?;
        let start = images.len();
        for (k, tok) in tokens.enumerate() {
            images.push(at.pixel(tok, format_args!("position {}", k + 1))?);
        }
        let count = images.len() - start;
        if count != PIXELS {
            return Err(at.error(format!(
                "expected {PIXELS} pixel values after the label, found {count}"
            )));
        }
        labels.push(digit);
    }
    finish(path, images, labels, source, fix)
}

fn finish(
    path: &Path,
    images: Vec<f32>,
    labels: Vec<u8>,
    source: &str,
    fix: &str,
) -> Result<Dataset> {
    if labels.is_empty() {
        return Err(Error::format(path, format!("holds no digits; {fix}")));
    }
    Dataset::new("usps", images, labels, SIDE, SIDE, source)
}

/// Reads any file in the LIBSVM rendering (`.bz2`/`.gz` decompressed), unverified.
pub fn read_usps_libsvm(path: &Path, name: &str) -> Result<Dataset> {
    Ok(read_text_set(path, parse_libsvm)?.renamed(name))
}

/// Reads any file in the ESL rendering (`.gz`/`.bz2` decompressed), unverified.
pub fn read_usps_esl(path: &Path, name: &str) -> Result<Dataset> {
    Ok(read_text_set(path, parse_esl)?.renamed(name))
}

fn load_known(data_dir: &Path, rel: &str, name: &str, parse: Parse) -> Result<Dataset> {
    Ok(load_text_set(data_dir, rel, parse)?.renamed(name))
}

/// The 2007 LIBSVM test digits, `usps-test` (the file torchvision uses).
pub fn load_usps_libsvm_test(data_dir: &Path) -> Result<Dataset> {
    load_known(data_dir, "usps/usps.t.bz2", "usps-test", parse_libsvm)
}

/// The 7291 LIBSVM training digits, `usps-train`, from the optional, unverified `usps.bz2`.
pub fn load_usps_libsvm_train(data_dir: &Path) -> Result<Dataset> {
    load_known(data_dir, "usps/usps.bz2", "usps-train", parse_libsvm)
}

/// The ESL rendering's training (7291) or test (2007) digits, `usps-esl-train`/`-test`.
pub fn load_usps_esl(data_dir: &Path, split: Split) -> Result<Dataset> {
    let (rel, name) = match split {
        Split::Train => ("usps/zip.train.gz", "usps-esl-train"),
        Split::Test => ("usps/zip.test.gz", "usps-esl-test"),
    };
    load_known(data_dir, rel, name, parse_esl)
}

/// All 9298 ESL digits, training then test, `usps-esl-all`; `source_sha256` combines the
/// training file's then the test file's content hashes.
pub fn load_usps_esl_all(data_dir: &Path) -> Result<Dataset> {
    let train = load_usps_esl(data_dir, Split::Train)?;
    let test = load_usps_esl(data_dir, Split::Test)?;
    let mut all = Dataset::concat("usps-esl-all", &[&train, &test])?;
    all.source_sha256 = combine_hashes(&[&train.source_sha256, &test.source_sha256]);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn libsvm_line(label: u8, first: f32) -> String {
        let mut s = label.to_string();
        for k in 1..=PIXELS {
            let v = if k == 1 { first } else { -1.0 };
            s.push_str(&format!(" {k}:{v:.6}"));
        }
        s
    }

    fn esl_line(label: &str, n: usize) -> String {
        let mut s = label.to_string();
        for k in 0..n {
            s.push_str(if k == 0 { " 1.0000" } else { " -1.0000" });
        }
        s
    }

    #[test]
    fn libsvm_maps_labels_and_values() {
        let text = format!("{}\n\n{}\n", libsvm_line(1, 1.0), libsvm_line(10, 0.0));
        let d = parse_libsvm(Path::new("u"), &text, "h", "fix").unwrap();
        assert_eq!(d.labels, vec![0, 9]);
        assert_eq!((d.width, d.height), (16, 16));
        assert_eq!(d.image(0)[0], 1.0);
        assert_eq!(d.image(0)[1], 0.0);
        assert_eq!(d.image(1)[0], 0.5);
        // Omitted features are 0 on [-1, 1], i.e. 0.5.
        let sparse = parse_libsvm(Path::new("u"), "3 2:1\n", "h", "fix").unwrap();
        assert_eq!(sparse.labels, vec![2]);
        assert_eq!(&sparse.image(0)[..3], &[0.5, 1.0, 0.5]);
    }

    #[test]
    fn libsvm_errors_name_the_line() {
        let p = Path::new("u");
        let cases = [
            ("0 1:0.5", "line 2: bad label `0`"),
            ("11 1:0.5", "bad label `11`"),
            ("3 1-0.5", "not index:value"),
            ("3 257:0.5", "not within 1..256"),
            ("3 5:0.5 4:0.1", "indices must increase"),
            ("3 1:abc", "unparsable number `abc`"),
            ("3 1:1.5", "outside [-1, 1]"),
        ];
        for (bad, want) in cases {
            let text = format!("{}\n{bad}\n", libsvm_line(1, 0.0));
            let e = parse_libsvm(p, &text, "h", "FIX").unwrap_err().to_string();
            assert!(
                e.contains("line 2: ") && e.contains(want) && e.ends_with("FIX"),
                "{bad}: {e}"
            );
        }
        assert!(parse_libsvm(p, "\n \n", "h", "x")
            .unwrap_err()
            .to_string()
            .contains("no digits"));
    }

    #[test]
    fn esl_parses_and_rejects() {
        let p = Path::new("z");
        let d = parse_esl(p, &format!("{}\n", esl_line("6.0000", 256)), "h", "x").unwrap();
        assert_eq!(d.labels, vec![6]);
        assert_eq!(d.image(0)[0], 1.0);
        assert_eq!(d.image(0)[255], 0.0);
        let cases = [
            (esl_line("6.5", 256), "bad label `6.5`"),
            (esl_line("10", 256), "bad label `10`"),
            (
                esl_line("1", 255),
                "expected 256 pixel values after the label, found 255",
            ),
            (esl_line("1", 257), "found 257"),
            (
                format!("{} x", esl_line("1", 255)),
                "unparsable number `x` at position 256",
            ),
            (esl_line("1", 255) + " -1.2", "outside [-1, 1]"),
        ];
        for (bad, want) in cases {
            let text = format!("{}\n{}\n{bad}", esl_line("1", 256), esl_line("2", 256));
            let e = parse_esl(p, &text, "h", "x").unwrap_err().to_string();
            assert!(e.contains("line 3: ") && e.contains(want), "{want}: {e}");
        }
    }
}
