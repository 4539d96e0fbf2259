//! Writes the example photos of `notebooks/own-digits/`: `mnist-paper` renderings of MNIST
//! test digits (see [`EXAMPLES`]), as JPEG and PNG files in digit folders, one of them with
//! light ink on dark paper. The same bytes on every machine (`crate/tests/own_digits.rs`
//! checks the committed files against them).
//!
//! `cargo run --release --example own_digits [OUT_DIR]` (default `notebooks/own-digits`;
//! MNIST from `DIGITS_DATA_DIR`, or `data/`).

use std::path::PathBuf;

use digits::data::load_mnist;
use digits::data::mnist_paper::{write_examples, EXAMPLES};
use digits::data::Split;

fn main() -> digits::Result<()> {
    let data = PathBuf::from(std::env::var("DIGITS_DATA_DIR").unwrap_or_else(|_| "data".into()));
    let out = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("notebooks/own-digits"), PathBuf::from);
    let mnist = load_mnist(&data, Split::Test)?;
    let mut total = 0;
    for path in write_examples(&mnist, &out)? {
        let size = std::fs::metadata(&path)
            .map_err(|e| digits::Error::io(&path, e))?
            .len();
        total += size;
        println!("{} ({size} B)", path.display());
    }
    println!("{} files, {total} B", EXAMPLES.len());
    Ok(())
}
