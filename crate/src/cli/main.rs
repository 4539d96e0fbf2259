//! `digits`: the command-line face of the study, one file per subcommand. Each is a thin call
//! into the library; errors print as one line and exit non-zero.

mod adapt;
mod bench;
mod data;
mod draw;
mod eval;
mod predict;
mod report;
mod search;
mod study;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use digits::models::Arch;
use digits::Result;

#[derive(Parser)]
#[command(
    name = "digits",
    version,
    about = "Why CNNs beat MLPs on handwritten digits, and why the gap widens on USPS"
)]
struct Cli {
    /// Folder holding the data sets (filled by `digits data fetch`).
    #[arg(long, global = true, default_value = "data", env = "DIGITS_DATA_DIR")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch and verify the data sets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Print a model's layers, output shapes and parameter counts (like Keras's summary).
    Summary { model: Arch },
    /// Train a published model on MNIST, then evaluate it on MNIST test and USPS.
    Train(train::TrainArgs),
    /// Adapt a trained run to another domain from its images alone (class-balanced
    /// self-training on its unlabeled images, beside MNIST).
    Adapt(adapt::AdaptArgs),
    /// Evaluate trained weights on a data set.
    Eval(eval::EvalArgs),
    /// Read digits from image files (PNG, JPEG; any size, either polarity) and print each
    /// model's three most probable digits.
    Predict(predict::PredictArgs),
    /// Draw a digit in the browser and watch the MLP and the CNN answer it, resized and
    /// framed (a local web page).
    Draw(draw::DrawArgs),
    /// Search sizes, dropout and learning rate (Hyperband or random search), scored on the
    /// MNIST validation split only.
    Tune(search::TuneArgs),
    /// Measure training and inference speed against this machine's GEMM peak.
    Bench(bench::BenchArgs),
    /// A markdown table of runs' accuracy on every test domain in both framings.
    Report(report::ReportArgs),
    /// The whole domain-shift study: train (or reuse) every model with several seeds, test
    /// them on every domain in both framings and under controlled changes, and write the
    /// tables (results/) and figures (img/).
    Study(study::StudyArgs),
    /// Draw a run's figures (curves, confusion matrices, mistakes, first layer) into a folder.
    Figures(report::FiguresArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_failure(e),
    };
    // Show whole trial tables; set here, before any thread can read the environment.
    digits::runtime::show_whole_tables();
    match dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version print as clap writes them; a bad command line is one line, as every other
/// error: clap's first line (which names the argument and, for a bad value, the valid ones) and
/// where to look for the rest.
fn parse_failure(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("error: {first}; see `digits help` for the commands and their options");
    ExitCode::from(2)
}

fn dispatch(cli: &Cli) -> Result<()> {
    let data = &cli.data;
    match &cli.command {
        Command::Data(command) => data::run(data, command),
        Command::Summary { model } => {
            print!("{}", model.summary());
            Ok(())
        }
        Command::Train(args) => train::run(data, args),
        Command::Adapt(args) => adapt::run(data, args),
        Command::Eval(args) => eval::run(data, args),
        Command::Predict(args) => predict::run(args),
        Command::Draw(args) => draw::run(data, args),
        Command::Tune(args) => search::run(data, args),
        Command::Bench(args) => bench::run(args),
        Command::Report(args) => report::report(data, args),
        Command::Study(args) => study::run(data, args),
        Command::Figures(args) => report::figures(data, args),
    }
}
