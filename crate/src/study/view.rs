//! The study as a notebook shows it, without writing anything tracked: computed from the runs
//! when the runs are here, else read from the committed `results/` tables and `img/` figures.
//!
//! A fresh clone has the study's tables and figures but not its sixty trained networks (about
//! five hours on two cores). Notebook 5 must still run from top to bottom there, and must
//! never rewrite the project's published numbers from a partial study: only `make study`
//! (through [`super::run_study`]) writes `results/` and the marked numbers of the documents.

use std::path::{Path, PathBuf};

use super::analysis::{analyse, Tables};
use super::committed::load_tables;
use super::{collect, StudyConfig, StudyData};
use crate::train::run::{model_path, record_path};
use crate::Result;

/// The study's tables, the runs' answers when they were computed here, and one line saying
/// which of the two a reader is looking at.
pub struct StudyView {
    pub tables: Tables,
    /// The runs, sets and predictions, when the tables were computed from runs here.
    pub data: Option<StudyData>,
    /// Where the tables came from, and how to reproduce the rest, in one line.
    pub source: String,
    /// The folder of the committed figures, for what only the runs can draw.
    pub committed_img: Option<PathBuf>,
}

/// A summary only: the data behind a study are millions of numbers.
impl std::fmt::Debug for StudyView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

impl StudyView {
    /// Train (or reuse) every run of `cfg`, predict every set and analyse; nothing is written
    /// but the runs and their cached predictions in `cfg.runs_dir`.
    pub fn compute(cfg: &StudyConfig, data_dir: &Path) -> Result<StudyView> {
        let data = collect(cfg, data_dir)?;
        let tables = analyse(&data);
        let source = format!(
            "computed here from {} runs in {} ({} seeds, {} epochs at most)",
            data.runs.len(),
            cfg.runs_dir.display(),
            cfg.seeds.len(),
            cfg.epochs
        );
        Ok(StudyView {
            tables,
            data: Some(data),
            source,
            committed_img: None,
        })
    }

    /// The tables committed in `results_dir`, with the figures committed in `img_dir` for what
    /// needs the runs.
    pub fn committed(results_dir: &Path, img_dir: &Path, why: &str) -> Result<StudyView> {
        let tables = load_tables(results_dir)?;
        let runs = tables.runs.len();
        Ok(StudyView {
            tables,
            data: None,
            source: format!(
                "{why}: showing the committed tables of {} ({runs} runs) and figures of {}; `make study` trains the runs and reproduces them",
                results_dir.display(),
                img_dir.display()
            ),
            committed_img: Some(img_dir.to_path_buf()),
        })
    }

    /// The complete study of `cfg` from its runs when every one of them has finished in
    /// `cfg.runs_dir` (checked in full as they are read), else the committed tables and
    /// figures ([`StudyView::committed`]). Never trains: `cfg` is read as `only_finished`.
    pub fn open(
        cfg: &StudyConfig,
        data_dir: &Path,
        results_dir: &Path,
        img_dir: &Path,
    ) -> Result<StudyView> {
        let (finished, total) = finished_runs(cfg);
        if finished < total {
            let why = format!(
                "{finished} of the study's {total} runs are finished in {}",
                cfg.runs_dir.display()
            );
            return StudyView::committed(results_dir, img_dir, &why);
        }
        let cfg = StudyConfig {
            only_finished: true,
            ..cfg.clone()
        };
        StudyView::compute(&cfg, data_dir)
    }
}

/// How many of the study's (variant, seed) run folders hold a finished run's files, and how
/// many runs the study has. Only the files' presence: reading a run checks the rest.
pub fn finished_runs(cfg: &StudyConfig) -> (usize, usize) {
    let dirs: Vec<PathBuf> = cfg
        .variants
        .iter()
        .flat_map(|v| cfg.seeds.iter().map(|&s| v.run_dir(&cfg.runs_dir, s)))
        .collect();
    let finished = dirs
        .iter()
        .filter(|d| record_path(d).is_file() && model_path(d).is_file())
        .count();
    (finished, dirs.len())
}
