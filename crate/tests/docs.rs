//! The README and `docs/` against `results/`: every study number in them is regenerated from
//! the committed CSV files and must come out as written, so none can drift from the tables.

use std::fs;
use std::path::{Path, PathBuf};

use digits::study::markdown::{documents, fill, fill_notebook, notebooks, summary, Results};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the repository")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_summary_is_what_the_csv_files_make() {
    let results = root().join("results");
    let r = Results::load(&results).unwrap();
    assert_eq!(
        summary(&r).unwrap(),
        read(&results.join("summary.md")),
        "results/summary.md differs from what results/*.csv make: run `digits study --tables-only`"
    );
}

#[test]
fn every_marked_number_in_the_readme_and_docs_is_what_the_csv_files_make() {
    let root = root();
    let r = Results::load(&root.join("results")).unwrap();
    let docs = documents(&root);
    assert!(docs.len() >= 2, "README.md and docs/*.md: {docs:?}");
    let mut markers = 0;
    for path in &docs {
        let text = read(path);
        markers += text.matches("<!-- digits ").count();
        let filled = fill(&text, &r).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if filled != text {
            let line = text
                .lines()
                .zip(filled.lines())
                .position(|(a, b)| a != b)
                .map_or(0, |i| i + 1);
            panic!(
                "{}:{line}: a study number differs from results/*.csv; run `digits study --tables-only`",
                path.display()
            );
        }
    }
    assert!(markers > 20, "only {markers} marked numbers in {docs:?}");
}

#[test]
fn every_marked_number_in_the_notebooks_is_what_the_csv_files_make() {
    let root = root();
    let r = Results::load(&root.join("results")).unwrap();
    for path in notebooks(&root) {
        let text = read(&path);
        let filled = fill_notebook(&text, &r).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            filled == text,
            "{}: a study number differs from results/*.csv; run `digits study --tables-only`",
            path.display()
        );
    }
}

/// A study number typed in by hand: "12.34% ± 0.56" or "± 1.2 points" outside a marker.
#[test]
fn no_study_number_is_typed_in_by_hand() {
    let root = root();
    let mut texts: Vec<(PathBuf, String)> = documents(&root)
        .into_iter()
        .map(|p| {
            let t = read(&p);
            (p, t)
        })
        .collect();
    // A notebook's prose is its markdown cells; its outputs are printed by the code.
    for path in notebooks(&root) {
        let nb: serde_json::Value = serde_json::from_str(&read(&path)).unwrap();
        let prose: Vec<String> = nb["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .filter(|c| c["cell_type"] == "markdown")
            .map(|c| match &c["source"] {
                serde_json::Value::Array(lines) => {
                    lines.iter().filter_map(|l| l.as_str()).collect::<String>()
                }
                other => other.as_str().unwrap_or_default().to_string(),
            })
            .collect();
        texts.push((path, prose.join("\n")));
    }
    for (path, text) in texts {
        let mut outside = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("<!-- digits ") {
            outside += &rest[..at];
            let end = rest[at..]
                .find("<!-- /digits -->")
                .map_or(rest.len(), |i| at + i + "<!-- /digits -->".len());
            rest = &rest[end..];
        }
        outside += rest;
        for (i, line) in outside.lines().enumerate() {
            let bytes = line.as_bytes();
            for (j, _) in line.match_indices(" ± ") {
                let before = line[..j].trim_end_matches('%');
                // " ± " is four bytes: the plus-minus sign takes two.
                let after = j + " ± ".len();
                let typed = before.ends_with(|c: char| c.is_ascii_digit())
                    && after < bytes.len()
                    && bytes[after].is_ascii_digit();
                assert!(
                    !typed,
                    "{}: `{line}` (line {} outside markers) has a study number typed in; mark it (see study::markdown)",
                    path.display(),
                    i + 1
                );
            }
        }
    }
}

/// Words that speak of the project's development (or of paths outside it) rather than of it.
const HISTORY: [&str; 4] = ["issue ", "engineer", "session", "../shared"];

#[test]
fn the_readme_is_short_and_speaks_of_the_project_only() {
    let root = root();
    let readme = read(&root.join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= 150,
        "README.md has {lines} lines; keep it to 150 and move the rest to docs/"
    );
    let mut files = documents(&root);
    files.push(root.join("notebooks/README.md"));
    for path in files {
        let text = read(&path).to_lowercase();
        for (i, line) in text.lines().enumerate() {
            for word in HISTORY {
                let hit = match word {
                    // "issue 6" and the like: development history, not the project.
                    "issue " => line.match_indices(word).any(|(k, _)| {
                        line[k + word.len()..].starts_with(|c: char| c.is_ascii_digit())
                    }),
                    _ => line.contains(word),
                };
                assert!(
                    !hit,
                    "{}:{}: `{word}` speaks of the project's history or of paths outside it",
                    path.display(),
                    i + 1
                );
            }
        }
    }
}

#[test]
fn the_scheduler_files_run_a_shard_each() {
    let root = root();
    let slurm = root.join("docs/cluster/slurm-array.sh");
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(&slurm)
        .status()
        .expect("bash");
    assert!(status.success(), "{}: not valid bash", slurm.display());
    let slurm = read(&slurm);
    assert!(
        slurm.contains("#SBATCH --array=") && slurm.contains("study --shard \"$index/$count\"")
    );
    let k8s = read(&root.join("docs/cluster/k8s-indexed-job.yaml"));
    assert!(k8s.contains("completionMode: Indexed"));
    assert!(k8s.contains("--shard \"${JOB_COMPLETION_INDEX}/${SHARDS}\""));
    // The shard count is stated twice in the Job; the two must agree.
    let completions = k8s
        .lines()
        .find_map(|l| l.trim().strip_prefix("completions:"))
        .and_then(|v| v.split('#').next())
        .map(|v| v.trim().to_string());
    let shards = k8s
        .lines()
        .skip_while(|l| !l.contains("name: SHARDS"))
        .nth(1)
        .and_then(|l| l.split('"').nth(1))
        .map(String::from);
    assert_eq!(completions, shards, "completions and SHARDS differ");
    for doc in [&slurm, &k8s] {
        assert!(
            doc.contains("gather"),
            "each file says how to gather the shards"
        );
    }
}

/// Every notebook is listed where a reader looks for it, and is committed executed: each code
/// cell has run, and none ended in an error.
#[test]
fn every_notebook_is_listed_and_committed_with_its_outputs() {
    let root = root();
    let notebooks = notebooks(&root);
    assert!(notebooks.len() >= 6, "{notebooks:?}");
    let listings = [
        (
            "notebooks/README.md",
            read(&root.join("notebooks/README.md")),
        ),
        ("README.md", read(&root.join("README.md"))),
        ("docs/notebooks.md", read(&root.join("docs/notebooks.md"))),
    ];
    for path in &notebooks {
        let stem = path.file_stem().unwrap().to_string_lossy();
        for (name, text) in &listings {
            assert!(
                text.contains(&format!("`{stem}")),
                "{name} does not list notebooks/{stem}.ipynb"
            );
        }
        let nb: serde_json::Value = serde_json::from_str(&read(path)).unwrap();
        let cells = nb["cells"].as_array().expect("cells");
        for (i, cell) in cells.iter().enumerate() {
            if cell["cell_type"] != "code" {
                continue;
            }
            assert!(
                cell["execution_count"].is_number(),
                "{stem}.ipynb cell {i} has not run; commit the notebook executed (make notebooks-full)"
            );
            let failed = cell["outputs"]
                .as_array()
                .is_some_and(|o| o.iter().any(|out| out["output_type"] == "error"));
            assert!(!failed, "{stem}.ipynb cell {i} ended in an error");
        }
    }
}

/// Whether a line of output shows a Rust `Debug` struct (`Name { field: …`), which a reader
/// should never have to decode.
fn shows_a_debug_struct(line: &str) -> bool {
    line.match_indices(" { ").any(|(at, _)| {
        let before = line[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric());
        let field: String = line[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        before && !field.is_empty() && line[at + 3 + field.len()..].starts_with(": ")
    })
}

/// What the committed notebooks show a reader: tables and sentences, never a `Debug` struct,
/// a panic, or a path of the machine that ran them.
#[test]
fn no_committed_notebook_output_is_a_debug_struct_a_panic_or_a_machine_path() {
    assert!(shows_a_debug_struct(
        "PlannedBracket { index: 0, rungs: [] }"
    ));
    assert!(!shows_a_debug_struct("if x { y } else { z }"));
    for path in notebooks(&root()) {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let nb: serde_json::Value = serde_json::from_str(&read(&path)).unwrap();
        for (i, cell) in nb["cells"].as_array().expect("cells").iter().enumerate() {
            for out in cell["outputs"].as_array().into_iter().flatten() {
                let text = match (&out["text"], &out["data"]["text/plain"]) {
                    (serde_json::Value::Array(t), _) | (_, serde_json::Value::Array(t)) => {
                        t.iter().filter_map(|l| l.as_str()).collect::<String>()
                    }
                    _ => String::new(),
                };
                for line in text.lines() {
                    assert!(
                        !shows_a_debug_struct(line)
                            && !line.contains("panicked")
                            && !["/tmp/", "/root/", "/home/", "/work/"]
                                .iter()
                                .any(|p| line.contains(p)),
                        "{stem}.ipynb cell {i} shows: {line}"
                    );
                }
            }
        }
    }
}

/// Every relative link of the README and the manuals (figures included) names a file or folder
/// of the repository, so no figure or page is missing.
#[test]
fn every_relative_link_in_the_docs_exists() {
    let root = root();
    let mut files = documents(&root);
    files.push(root.join("notebooks/README.md"));
    files.push(root.join("results/README.md"));
    let mut links = 0;
    for path in files {
        let text = read(&path);
        let dir = path.parent().unwrap();
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split('#').next().unwrap_or_default();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            links += 1;
            assert!(
                dir.join(target).exists(),
                "{}: the link `{target}` names nothing in the repository",
                path.display()
            );
        }
    }
    assert!(links > 20, "only {links} relative links found");
}
