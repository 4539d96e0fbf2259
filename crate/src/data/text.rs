//! Shared helpers for the line-oriented text formats (USPS, Semeion, mfeat, optdigits).

use std::fmt::Display;
use std::path::Path;

use super::checksums::{decompress, known_file, read_bytes, read_known, sha256_hex, Compression};
use super::dataset::Dataset;
use super::idx::{FIX_FETCH, FIX_USER};
use crate::error::{Error, Result};

/// A parser of one text format: it takes the path (named only in errors), the text, the
/// sha256 of the (decompressed) content and the fix its errors suggest.
pub(crate) type Parse = fn(&Path, &str, &str, &str) -> Result<Dataset>;

/// Any file in a text format (`.gz`/`.bz2` decompressed), read and parsed, unverified.
pub(crate) fn read_text_set(path: &Path, parse: Parse) -> Result<Dataset> {
    let raw = read_bytes(path, "check the path")?;
    let bytes = decompress(path, raw, Compression::from_path(path), FIX_USER)?;
    parse(
        path,
        as_text(path, &bytes, FIX_USER)?,
        &sha256_hex(&bytes),
        FIX_USER,
    )
}

/// The file `rel` under `data_dir` (one of the fetched files, verified where it has a
/// checksum), parsed as by [`read_text_set`].
pub(crate) fn load_text_set(data_dir: &Path, rel: &str, parse: Parse) -> Result<Dataset> {
    let file = known_file(rel).ok_or_else(|| {
        Error::invalid(format!(
            "internal: {rel} is not in the file table; report this bug"
        ))
    })?;
    let (content, sha) = read_known(data_dir, file)?;
    let path = data_dir.join(rel);
    // Unverifiable files can be damaged in ways only the parser sees; say how to replace them.
    let fix = if file.sha256.is_some() {
        FIX_FETCH.to_string()
    } else {
        format!(
            "download a fresh copy from {}",
            file.urls.first().copied().unwrap_or("its source")
        )
    };
    parse(&path, as_text(&path, &content, &fix)?, &sha, &fix)
}

/// The decompressed bytes as text; all these formats are ASCII.
pub(crate) fn as_text<'a>(path: &Path, bytes: &'a [u8], fix: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        Error::format(
            path,
            format!(
                "not a text file (invalid UTF-8 at byte {}); {fix}",
                e.valid_up_to()
            ),
        )
    })
}

/// A format error pointing at a 1-based line number.
pub(crate) fn line_error(path: &Path, line: usize, msg: impl Display, fix: &str) -> Error {
    Error::format(path, format!("line {line}: {msg}; {fix}"))
}

/// A finite number, or `None` for anything else (including `inf` and `NaN`).
pub(crate) fn finite_f32(token: &str) -> Option<f32> {
    token.parse::<f32>().ok().filter(|v| v.is_finite())
}

/// A label written as an integer-valued number (`6`, `6.0000`) within `lo..=hi`.
pub(crate) fn integer_label(token: &str, lo: u8, hi: u8) -> Option<u8> {
    let v = token.parse::<f64>().ok()?;
    (v.fract() == 0.0 && v >= lo as f64 && v <= hi as f64).then_some(v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(integer_label("6.0000", 0, 9), Some(6));
        assert_eq!(integer_label("10", 1, 10), Some(10));
        assert_eq!(integer_label("6.5", 0, 9), None);
        assert_eq!(integer_label("11", 1, 10), None);
        assert_eq!(integer_label("x", 0, 9), None);
        assert_eq!(finite_f32("-0.5"), Some(-0.5));
        assert_eq!(finite_f32("NaN"), None);
        assert_eq!(finite_f32("inf"), None);
        let e = line_error(Path::new("f"), 3, "bad", "fix");
        assert_eq!(e.to_string(), "f: line 3: bad; fix");
        assert!(as_text(Path::new("f"), &[b'a', 0xff], "fix").is_err());
    }
}
