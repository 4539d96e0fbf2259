//! Re-encodes the committed figures with the library's own PNG encoder
//! ([`digits::plot::compact_png`]): every `img/*.png` and every base64 `image/png` output in
//! `notebooks/*.ipynb`. The pixels stay the same (exactly, unless a figure has more than 256
//! colours, which are then quantised to a 256-colour palette); the figures are not redrawn, so
//! their layout and scale are whatever made them.
//!
//! ```text
//! cargo run --release --example compact_figures            # the repository's img/ and notebooks/
//! cargo run --release --example compact_figures -- ROOT    # another checkout
//! cargo run --release --example compact_figures -- --check # report only, write nothing
//! ```
//!
//! Notebooks are edited as text: only the base64 payloads are replaced, so the JSON keeps the
//! formatting nbformat gave it.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use digits::plot::{compact_png, decode_rgb};
use digits::{Error, Result};

fn main() {
    let mut check = false;
    let mut root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for arg in std::env::args_os().skip(1) {
        if arg == "--check" {
            check = true;
        } else {
            root = PathBuf::from(arg);
        }
    }
    if let Err(e) = run(&root, check) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// How a re-encoded image compares with the original.
struct Outcome {
    before: usize,
    after: usize,
    /// Largest difference in any channel of any pixel (0: pixel-identical).
    max_error: u8,
    /// Mean absolute difference per channel.
    mean_error: f64,
}

fn compact(png: &[u8]) -> Result<(Vec<u8>, Outcome)> {
    let out = compact_png(png)?;
    let (a, _, _) = decode_rgb(png)?;
    let (b, _, _) = decode_rgb(&out)?;
    let (mut max_error, mut sum) = (0u8, 0u64);
    for (x, y) in a.iter().zip(&b) {
        let d = x.abs_diff(*y);
        max_error = max_error.max(d);
        sum += d as u64;
    }
    let outcome = Outcome {
        before: png.len(),
        after: out.len(),
        max_error,
        mean_error: sum as f64 / a.len().max(1) as f64,
    };
    Ok((out, outcome))
}

fn report(name: &str, o: &Outcome) {
    let form = if o.max_error == 0 {
        "lossless".to_string()
    } else {
        format!(
            "quantised (max error {}, mean {:.3})",
            o.max_error, o.mean_error
        )
    };
    println!("{:>9} → {:>8}  {form}  {name}", o.before, o.after);
}

fn sorted_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    Ok(files)
}

fn run(root: &Path, check: bool) -> Result<()> {
    let (mut before, mut after) = (0usize, 0usize);
    for path in sorted_files(&root.join("img"), "png")? {
        let png = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (out, o) = compact(&png)?;
        report(&path.display().to_string(), &o);
        before += o.before;
        after += o.after;
        if !check && out != png {
            digits::io::write_atomic(&path, &out)?;
        }
    }
    println!("img/: {before} → {after} bytes of PNG");

    let (mut before, mut after) = (0usize, 0usize);
    let b64 = base64::engine::general_purpose::STANDARD;
    for path in sorted_files(&root.join("notebooks"), "ipynb")? {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let nb: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
        let mut payloads = Vec::new();
        for (c, cell) in nb["cells"].as_array().into_iter().flatten().enumerate() {
            for output in cell["outputs"].as_array().into_iter().flatten() {
                if let Some(s) = output["data"]["image/png"].as_str() {
                    payloads.push((c, s.to_string()));
                }
            }
        }
        let mut new_text = text.clone();
        for (c, old) in payloads {
            let png = b64
                .decode(old.trim())
                .map_err(|e| Error::invalid(format!("{}: cell {c}: {e}", path.display())))?;
            let (out, o) = compact(&png)?;
            report(&format!("{} cell {c}", path.display()), &o);
            before += o.before;
            after += o.after;
            // Base64 needs no JSON escaping, so the payload appears verbatim in the file.
            let (from, to) = (
                format!("\"image/png\": \"{old}\""),
                format!("\"image/png\": \"{}\"", b64.encode(&out)),
            );
            if new_text.matches(&from).count() == 0 {
                return Err(Error::invalid(format!(
                    "{}: cell {c}: image payload not found verbatim in the file",
                    path.display()
                )));
            }
            new_text = new_text.replace(&from, &to);
        }
        if !check && new_text != text {
            digits::io::write_atomic(&path, new_text.as_bytes())?;
        }
    }
    println!("notebooks/: {before} → {after} bytes of PNG");
    Ok(())
}
