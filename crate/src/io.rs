//! Writing files so that nothing half-written is ever left behind.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// Write `bytes` to `path` atomically: into a temporary file beside it, flushed to disk, then
/// renamed over the target. A crash leaves either the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{}: not a file path", path.display())))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Write `record` to `path` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, record: &T) -> Result<()> {
    let json = serde_json::to_string_pretty(record).expect("record serialises");
    write_atomic(path, json.as_bytes())
}

/// Read the JSON record at `path`. A missing file is [`Error::Missing`] with `missing_hint`;
/// one that does not parse is a one-line format error saying `unreadable` of the parser's
/// message.
pub fn read_json<T: DeserializeOwned>(
    path: &Path,
    missing_hint: &str,
    unreadable: impl FnOnce(serde_json::Error) -> String,
) -> Result<T> {
    let text = fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Missing {
            path: path.to_path_buf(),
            hint: missing_hint.into(),
        },
        _ => Error::io(path, e),
    })?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, unreadable(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("digits-io-{}", std::process::id()));
        let path = dir.join("sub").join("x.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(dir).unwrap();
    }
}
