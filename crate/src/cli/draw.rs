//! `digits draw`: a local web page to draw a digit and watch the models answer it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use digits::draw::{bind, load_models, serve, train_missing, Server};
use digits::Result;

#[derive(Args)]
pub struct DrawArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on. Only this machine can open the page unless another address is
    /// given (0.0.0.0: every network this machine is on).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The study's runs folder, where the seed-0 runs of mlp and cnn-keras are.
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Train the missing runs first (as `digits study` trains them; MNIST must be fetched).
    #[arg(long)]
    pub train: bool,
}

/// Takes the port, loads the models (training them first with --train), then serves until
/// Ctrl-C.
pub fn run(data_dir: &Path, a: &DrawArgs) -> Result<()> {
    // The port first: a busy one is known before minutes of training.
    let listener = bind(a.host, a.port)?;
    if a.train {
        train_missing(data_dir, &a.runs)?;
    }
    let server = Server::new(listener, load_models(&a.runs)?);
    let addr = server.addr()?;
    if !a.host.is_loopback() {
        eprintln!(
            "warning: listening on {addr}, not only this machine: anyone who can reach it can use the page"
        );
    }
    println!("digits draw: open http://{addr}/ in a browser (Ctrl-C stops it)");
    serve(server)
}
