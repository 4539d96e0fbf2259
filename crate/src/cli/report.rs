//! `digits report` and `digits figures`: tables and figures of finished runs.

use std::path::{Path, PathBuf};

use clap::Args;
use digits::study::report;
use digits::Result;

#[derive(Args)]
pub struct ReportArgs {
    /// Run folders, e.g. runs/mlp-seed0 runs/cnn-seed0.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
}

#[derive(Args)]
pub struct FiguresArgs {
    /// Run folders, e.g. runs/mlp-seed0.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Folder for the PNG files. Not img/ by default: that holds the committed figures of the
    /// study, which `--out img` overwrites.
    #[arg(long, default_value = "figures")]
    pub out: PathBuf,
}

pub fn report(data_dir: &Path, a: &ReportArgs) -> Result<()> {
    let rows = report::accuracy_table(&a.runs, data_dir)?;
    print!("{}", report::markdown(&a.runs, &rows));
    Ok(())
}

pub fn figures(data_dir: &Path, a: &FiguresArgs) -> Result<()> {
    for dir in &a.runs {
        for path in digits::plot::run::export_run_figures(dir, data_dir, &a.out)? {
            println!("{}", path.display());
        }
    }
    Ok(())
}
