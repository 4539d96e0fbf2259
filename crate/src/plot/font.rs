//! The one font every figure uses, read from a file once per process.
//!
//! plotters' `ab_glyph` text needs font bytes registered at run time. We read DejaVu Sans
//! (Debian's `fonts-dejavu-core`) rather than asking fontconfig, so building needs no C
//! libraries and every machine lays text out with the same metrics.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::{register_font, FontStyle};

use crate::{Error, Result};

/// A `.ttf`/`.otf` file to use instead of the system's DejaVu Sans.
pub const FONT_ENV: &str = "DIGITS_FONT";

/// The family name figures ask for; plotters' own defaults ask for it too.
pub const FAMILY: &str = "sans-serif";

/// Where distributions put DejaVu Sans, Debian's first (package `fonts-dejavu-core`).
const DIRS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/share/fonts/dejavu-sans-fonts",
    "/usr/share/fonts/dejavu",
    "/usr/local/share/fonts",
];

static REGISTERED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

/// Register the figure font (once; later calls return the first outcome).
/// Returns the file the regular face came from.
pub fn ensure() -> Result<PathBuf> {
    REGISTERED
        .get_or_init(register)
        .clone()
        .map_err(Error::invalid)
}

fn register() -> std::result::Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(FONT_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        load(&path, FontStyle::Normal).map_err(|e| format!("{FONT_ENV}={e}"))?;
        return Ok(path);
    }
    let regular = find_regular(DIRS)?;
    load(&regular, FontStyle::Normal)?;
    // Titles fall back to the regular face where the bold file is missing.
    let bold = regular.with_file_name("DejaVuSans-Bold.ttf");
    if bold.is_file() {
        load(&bold, FontStyle::Bold)?;
    }
    Ok(regular)
}

fn find_regular(dirs: &[&str]) -> std::result::Result<PathBuf, String> {
    dirs.iter()
        .map(|d| Path::new(d).join("DejaVuSans.ttf"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no font for figures: install Debian's `fonts-dejavu-core` (apt-get install fonts-dejavu-core) or set {FONT_ENV} to a .ttf file"
            )
        })
}

fn load(path: &Path, style: FontStyle) -> std::result::Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // plotters keeps `&'static` font data; this runs at most twice per process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font(FAMILY, style, bytes)
        .map_err(|_| format!("{}: not a TrueType/OpenType font", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_font_names_the_package_to_install() {
        let err = find_regular(&["/nonexistent/fonts"]).unwrap_err();
        assert!(err.contains("apt-get install fonts-dejavu-core") && err.contains(FONT_ENV));
        assert!(!err.contains('\n'));
    }

    #[test]
    fn a_file_that_is_not_a_font_is_refused() {
        let dir = crate::plot::testutil::temp_dir("font");
        let path = dir.join("not-a-font.ttf");
        std::fs::write(&path, b"hello").unwrap();
        let err = load(&path, FontStyle::Normal).unwrap_err();
        assert!(err.contains("not a TrueType/OpenType font"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
