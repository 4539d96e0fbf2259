//! What every notebook's setup cell reads from its environment: quick or full mode, and where
//! it may write.
//!
//! Running a notebook must not change a tracked file unasked. Figures go to `out/img/` beside
//! the notebooks (git ignores `notebooks/out/`), unless [`EXPORT_ENV`] asks for the committed
//! `img/` (`make notebooks-full` does, to regenerate what is committed). Quick mode writes
//! only into a temporary folder of its own.

use std::path::PathBuf;

/// Set before the kernel starts: every notebook runs on small subsets for an epoch or two.
pub const QUICK_ENV: &str = "DIGITS_QUICK";

/// Set to `1` before the kernel starts: figures go to the repository's `img/`, as committed.
pub const EXPORT_ENV: &str = "DIGITS_EXPORT";

/// Another folder of runs for full mode than the repository's `runs/` (the browser test uses an
/// empty one to see a fresh clone's notebooks).
pub const RUNS_ENV: &str = "DIGITS_RUNS";

/// A notebook's mode and folders, relative to `notebooks/`, where the kernel runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Notebook {
    pub quick: bool,
    /// Whether figures go to the committed `img/`.
    pub export: bool,
    /// The data sets (`make data` fills it).
    pub data: PathBuf,
    /// The study's runs (`make study` fills it); quick mode's are in [`Notebook::scratch`].
    pub runs: PathBuf,
    /// Where the figures a notebook saves go.
    pub img: PathBuf,
    /// A folder of this kernel's own, for quick mode's runs and anything thrown away.
    pub scratch: PathBuf,
}

impl Notebook {
    /// The mode and folders [`QUICK_ENV`] and [`EXPORT_ENV`] choose.
    pub fn from_env() -> Notebook {
        let quick = std::env::var_os(QUICK_ENV).is_some_and(|v| !v.is_empty() && v != "0");
        let export = std::env::var_os(EXPORT_ENV).is_some_and(|v| v == "1");
        let mut nb = Notebook::new(quick, export, std::env::temp_dir());
        if let Some(runs) = std::env::var_os(RUNS_ENV).filter(|v| !v.is_empty() && !quick) {
            nb.runs = PathBuf::from(runs);
        }
        nb
    }

    /// The folders for a mode; `temp` holds quick mode's scratch folder.
    pub fn new(quick: bool, export: bool, temp: PathBuf) -> Notebook {
        let scratch = temp.join(format!("digits-notebook-{}", std::process::id()));
        let img = if quick {
            scratch.join("img")
        } else if export {
            PathBuf::from("../img")
        } else {
            PathBuf::from("out/img")
        };
        let runs = if quick {
            scratch.join("runs")
        } else {
            PathBuf::from("../runs")
        };
        Notebook {
            quick,
            export: export && !quick,
            data: PathBuf::from("../data"),
            runs,
            img,
            scratch,
        }
    }

    /// One line for the top of a notebook: the mode, and where its figures go.
    pub fn describe(&self) -> String {
        let mode = if self.quick {
            format!("quick mode ({QUICK_ENV}): small subsets, an epoch or two; its numbers say nothing about the question")
        } else {
            "full mode: all the data, the study's settings".to_string()
        };
        let img = if self.export {
            format!(
                "{} (the committed figures, as {EXPORT_ENV}=1 asks)",
                self.img.display()
            )
        } else if self.quick {
            format!("{} (a temporary folder)", self.img.display())
        } else {
            format!(
                "{} (git ignores it; {EXPORT_ENV}=1 writes the committed img/ instead)",
                self.img.display()
            )
        };
        format!("{mode}; figures saved to {img}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_export_writes_the_committed_figures() {
        let temp = PathBuf::from("/tmp");
        let full = Notebook::new(false, false, temp.clone());
        assert_eq!(full.img, PathBuf::from("out/img"));
        assert_eq!(full.runs, PathBuf::from("../runs"));
        let export = Notebook::new(false, true, temp.clone());
        assert_eq!(export.img, PathBuf::from("../img"));
        assert!(export.describe().contains("committed"));
        // Quick mode never touches the repository, export or not.
        let quick = Notebook::new(true, true, temp.clone());
        assert!(!quick.export);
        assert!(quick.img.starts_with(&temp) && quick.runs.starts_with(&temp));
        assert!(quick.describe().starts_with("quick mode"));
    }
}
