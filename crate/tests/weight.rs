//! The committed pictures stay light: `img/` and `notebooks/` (figures and notebooks with their
//! image outputs) under fixed budgets. Re-encode with
//! `cargo run --release --example compact_figures` when a figure grows.

use std::path::{Path, PathBuf};

const IMG_BUDGET: u64 = 5_000_000;
const NOTEBOOKS_BUDGET: u64 = 4_000_000;

/// What running the notebooks leaves beside them and git ignores: JupyterLab's checkpoints and
/// the figures and screenshots of `notebooks/out/`. Not committed, so not weighed.
const NOT_COMMITTED: [&str; 2] = [".ipynb_checkpoints", "out"];

/// Every committed file under `dir` with its size, largest first.
fn files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let (path, meta) = (e.path(), e.metadata().unwrap());
            if meta.is_dir() {
                if !NOT_COMMITTED
                    .iter()
                    .any(|n| path.file_name() == Some((*n).as_ref()))
                {
                    todo.push(path);
                }
            } else {
                out.push((meta.len(), path));
            }
        }
    }
    out.sort_by(|a, b| b.cmp(a));
    out
}

fn check(folder: &str, budget: u64) -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let all = files(&root.join(folder));
    let total: u64 = all.iter().map(|(n, _)| n).sum();
    if total <= budget {
        return None;
    }
    let largest: Vec<String> = all
        .iter()
        .take(3)
        .map(|(n, p)| format!("{} ({n} B)", p.strip_prefix(&root).unwrap_or(p).display()))
        .collect();
    Some(format!(
        "{folder}/ holds {total} bytes, over its budget of {budget}; largest: {}",
        largest.join(", ")
    ))
}

#[test]
fn img_and_notebooks_stay_within_their_size_budgets() {
    let over: Vec<String> = [("img", IMG_BUDGET), ("notebooks", NOTEBOOKS_BUDGET)]
        .into_iter()
        .filter_map(|(folder, budget)| check(folder, budget))
        .collect();
    assert!(over.is_empty(), "{}", over.join("; "));
}
