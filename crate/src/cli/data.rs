//! `digits data fetch` and `digits data check`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use digits::data;
use digits::Result;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Copy the data sets from a local mirror (DIGITS_DATA_MIRROR) or download them, verifying each.
    Fetch {
        /// Local folder laid out like the verified copies (overrides DIGITS_DATA_MIRROR).
        #[arg(long)]
        mirror: Option<PathBuf>,
    },
    /// Re-verify every data file present.
    Check,
}

pub fn run(data_dir: &Path, command: &DataCommand) -> Result<()> {
    match command {
        DataCommand::Fetch { mirror } => {
            let mirror = mirror.clone().or_else(data::mirror_from_env);
            let report = data::fetch(data_dir, mirror.as_deref(), true)?;
            println!("{report}");
            Ok(())
        }
        DataCommand::Check => {
            let statuses = data::check(data_dir)?;
            let mut bad = 0;
            for s in &statuses {
                println!("{:<40} {:?}", s.rel_path, s.state);
                bad += (!s.is_ok()) as usize;
            }
            if bad > 0 {
                return Err(digits::Error::invalid(format!(
                    "{bad} data file(s) missing or corrupt; run `digits data fetch`"
                )));
            }
            Ok(())
        }
    }
}
