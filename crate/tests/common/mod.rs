//! What the integration tests that read real data share: where the verified data is.

use std::path::{Path, PathBuf};

use digits::data::fetch::MIRROR_ENV;

/// The mirror named by `DIGITS_DATA_MIRROR`: a relative path is tried from the current
/// directory, then from the repository root (CI gives it relative to the root; cargo runs
/// tests in `crate/`). `None` when unset.
pub fn mirror() -> Option<PathBuf> {
    let raw = PathBuf::from(std::env::var_os(MIRROR_ENV).filter(|v| !v.is_empty())?);
    if raw.is_absolute() || raw.is_dir() {
        return Some(raw);
    }
    Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(raw))
}

/// A fresh temporary folder `digits-{name}-{pid}` whose `data/` holds the verified data fetched
/// from [`mirror`]; `None` after saying the test is skipped (see [`mirror_or_skip`]).
#[allow(dead_code)] // not every test file fetches data
pub fn fresh_root_with_data(name: &str) -> Option<(PathBuf, PathBuf)> {
    let mirror = mirror_or_skip()?;
    let root = std::env::temp_dir().join(format!("digits-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let data = root.join("data");
    digits::data::fetch::fetch(&data, Some(&mirror), false).unwrap();
    Some((root, data))
}

/// [`mirror`], or `None` after saying the test is skipped (a failure where
/// `DIGITS_TESTS_REQUIRE` names `data`).
#[allow(dead_code)] // not every test file skips this way
fn mirror_or_skip() -> Option<PathBuf> {
    let found = mirror();
    if found.is_none() {
        digits::runtime::skip_unless_required(
            "data",
            &format!("set {MIRROR_ENV} to the folder of verified data to run it"),
        );
    }
    found
}
