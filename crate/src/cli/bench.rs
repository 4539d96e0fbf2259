//! `digits bench`: training and inference speed against this machine's GEMM peak.

use clap::Args;
use digits::models::{Arch, ConvAlgo};
use digits::Result;

#[derive(Args)]
pub struct BenchArgs {
    /// Models to measure (default: both): `mlp`, `cnn`, `mlp-1586`, `mlp-H1-H2` or
    /// `cnn-C1-C2-DENSE`.
    pub models: Vec<Arch>,
    /// More models to measure, as with the positional names.
    #[arg(long = "model", value_delimiter = ',')]
    pub model: Vec<Arch>,
    /// Fewest training steps timed per model (more when they take under a second).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Convolution algorithms to measure the CNN with: `im2col`, `winograd` (default: both).
    #[arg(long, value_delimiter = ',')]
    pub conv: Vec<ConvAlgo>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let mut cfg = digits::bench::BenchConfig {
        steps: args.steps.max(1),
        ..Default::default()
    };
    let archs: Vec<Arch> = args.models.iter().chain(&args.model).copied().collect();
    if !archs.is_empty() {
        cfg.archs = archs;
    }
    if !args.conv.is_empty() {
        cfg.convs = args.conv.clone();
    }
    let report = digits::bench::run(&cfg);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        print!("{report}");
    }
    Ok(())
}
