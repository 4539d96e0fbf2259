//! The import structure of `crate/src`: imports run one way. No two source files import each
//! other, and a lower part of the library never imports a higher one.
//!
//! The check reads the source, not the compiler: it follows every `use` path and every
//! `crate::`/`super::`/`self::` path written in code to the file that defines the named item.
//! A path through a re-export (`pub use dataset::Dataset` in `data/mod.rs`, `pub use
//! error::Result` in `lib.rs`) is followed to the file the item is defined in, so importing
//! `crate::data::Dataset` depends on `data/dataset.rs`, not on the folder's `mod.rs`; a
//! re-export itself is a facade, not a use, and `mod child;` is a declaration, not an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The parts of the library from the bottom up. A file may import files of its own part and of
/// parts ranked lower, never higher; parts on one rank do not import each other. `lib` (the
/// crate root) and `cli` (the command, a crate of its own) are on top: every path through the
/// root's re-exports is followed to the file that defines the item.
const RANKS: &[&[&str]] = &[
    &["error"],
    &["io", "runtime", "lock"],
    &["data", "engine"],
    &["models", "augment"],
    &["eval"],
    &["train"],
    &["adapt", "search"],
    &["study"],
    &["plot"],
    &["predict", "notebook", "bench"],
    &["draw"],
    &["cli", "lib"],
];

/// A source file: its path under `src/` and its module path (`digits::data::frame`; the
/// command's own modules start at `cli`).
struct SourceFile {
    rel: String,
    module: Vec<String>,
    code: String,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `data/frame.rs` → `digits::data::frame`; `data/mod.rs` → `digits::data`; the binary's files
/// under `cli/` form the crate `cli`.
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    let root = if parts[0] == "cli" {
        parts.remove(0);
        "cli"
    } else {
        "digits"
    };
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    std::iter::once(root.to_string()).chain(parts).collect()
}

fn load_sources() -> Vec<SourceFile> {
    let root = src_dir();
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            SourceFile {
                module: module_path(&rel),
                code: strip_comments_and_literals(&std::fs::read_to_string(p).unwrap()),
                rel,
            }
        })
        .collect()
}

/// The source with comments, string and character literals blanked, so that only code is left
/// (a doc link or a message naming `crate::x` is not an import).
fn strip_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && matches!(next, Some('"' | '#'))
            && !ident_char(&c, i.wrapping_sub(1))
        {
            // Raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            while j < c.len()
                && !(c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')))
            {
                blank(&mut out, c[j]);
                j += 1;
            }
            i = j + 1 + hashes;
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                blank(&mut out, c[i.min(c.len() - 1)]);
                i += 1;
            }
            i += 1;
        } else if c[i] == '\'' && (next == Some('\\') || c.get(i + 2) == Some(&'\'')) {
            // A character literal ('a', '\n', '\u{..}'); a lifetime has no closing quote.
            i += 1;
            while i < c.len() && c[i] != '\'' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn ident_char(c: &[char], i: usize) -> bool {
    c.get(i)
        .is_some_and(|ch| ch.is_alphanumeric() || *ch == '_')
}

fn tokens(code: &str) -> Vec<String> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if ident_char(&c, i) {
            let start = i;
            while ident_char(&c, i) {
                i += 1;
            }
            out.push(c[start..i].iter().collect());
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else {
            if !c[i].is_whitespace() {
                out.push(c[i].to_string());
            }
            i += 1;
        }
    }
    out
}

/// One path a file names: the module it is written in (inline `mod tests` included), the
/// segments as written, and whether it is a re-export (`pub use`).
struct Reference {
    scope: Vec<String>,
    segments: Vec<String>,
    reexport: bool,
}

/// A `use` item: the name it brings into `scope` and the path it stands for.
struct UseItem {
    scope: Vec<String>,
    name: String,
    segments: Vec<String>,
}

/// Expands a use tree (`a::{b, c::{self, d}}`) starting at `toks[*i]` into full paths with the
/// name each binds (`None` for a glob).
fn parse_use_tree(
    toks: &[String],
    i: &mut usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix.to_vec();
    loop {
        match toks[*i].as_str() {
            "{" => {
                *i += 1;
                while toks[*i] != "}" {
                    parse_use_tree(toks, i, &path, out);
                    if toks[*i] == "," {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            "*" => {
                *i += 1;
                out.push((path, None));
                return;
            }
            "::" => *i += 1,
            seg => {
                *i += 1;
                if seg == "self" && !path.is_empty() {
                    let name = path.last().cloned();
                    let mut name = name;
                    if toks[*i] == "as" {
                        name = Some(toks[*i + 1].clone());
                        *i += 2;
                    }
                    out.push((path, name));
                    return;
                }
                path.push(seg.to_string());
                if toks[*i] == "as" {
                    let alias = toks[*i + 1].clone();
                    *i += 2;
                    out.push((path, Some(alias)));
                    return;
                }
                if toks[*i] != "::" {
                    let name = path.last().cloned();
                    out.push((path, name));
                    return;
                }
            }
        }
    }
}

/// Every `use` item and every written `crate::`/`super::`/`self::` path of a file.
fn scan(file: &SourceFile, uses: &mut Vec<UseItem>, refs: &mut Vec<Reference>) {
    let toks = tokens(&file.code);
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let scope = |inline: &[(String, usize)]| -> Vec<String> {
        file.module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(m, _)| m.clone()))
            .collect()
    };
    while i < toks.len() {
        let t = toks[i].as_str();
        match t {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if toks.get(i + 2).is_some_and(|t| t == "{") => {
                inline.push((toks[i + 1].clone(), depth));
                depth += 1;
                i += 3;
                continue;
            }
            "use" => {
                let reexport = i > 0 && (toks[i - 1] == "pub" || toks[i - 1] == ")");
                i += 1;
                let mut items = Vec::new();
                parse_use_tree(&toks, &mut i, &[], &mut items);
                let here = scope(&inline);
                for (segments, name) in items {
                    refs.push(Reference {
                        scope: here.clone(),
                        segments: segments.clone(),
                        reexport,
                    });
                    if let Some(name) = name {
                        uses.push(UseItem {
                            scope: here.clone(),
                            name,
                            segments,
                        });
                    }
                }
                continue;
            }
            "crate" | "super" | "self" | "digits" if toks.get(i + 1).is_some_and(|t| t == "::") => {
                let prev_is_path = i > 0 && toks[i - 1] == "::";
                let start = i;
                while toks.get(i + 1).is_some_and(|t| t == "::")
                    && toks
                        .get(i + 2)
                        .is_some_and(|t| ident_char(&t.chars().collect::<Vec<_>>(), 0))
                {
                    i += 2;
                }
                if !prev_is_path && (t != "digits" || file.module[0] == "cli") {
                    let segments = toks[start..=i]
                        .iter()
                        .filter(|t| *t != "::")
                        .cloned()
                        .collect();
                    refs.push(Reference {
                        scope: scope(&inline),
                        segments,
                        reexport: false,
                    });
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// The crate's modules and the names brought into each by `use`.
struct Index {
    /// module path → the file defining it (inline modules map to their file).
    modules: BTreeMap<Vec<String>, String>,
    /// (module path, name) → the path the name stands for.
    names: BTreeMap<(Vec<String>, String), Vec<String>>,
}

impl Index {
    /// The absolute module path a written path starts from, and the rest of its segments.
    fn absolute(&self, scope: &[String], segments: &[String]) -> Option<Vec<String>> {
        let mut base = scope.to_vec();
        let mut rest = segments;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.truncate(1);
                rest = &rest[1..];
            }
            Some("digits") if scope[0] == "cli" => {
                base = vec!["digits".into()];
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
            }
            Some(first) => {
                // A relative path starts at a child module or a name this scope imports;
                // anything else (std, dfdx, …) is outside the crate.
                let mut child = scope.to_vec();
                child.push(first.to_string());
                if !self.modules.contains_key(&child)
                    && !self
                        .names
                        .contains_key(&(scope.to_vec(), first.to_string()))
                {
                    return None;
                }
            }
            None => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file that defines what an absolute path names, through re-exports and imports.
    fn defining_file(&self, path: &[String], hops: usize) -> Option<String> {
        assert!(hops < 32, "re-exports loop at {}", path.join("::"));
        let mut module = vec![path[0].clone()];
        for (k, seg) in path.iter().enumerate().skip(1) {
            let mut child = module.clone();
            child.push(seg.clone());
            if self.modules.contains_key(&child) {
                module = child;
                continue;
            }
            if let Some(target) = self.names.get(&(module.clone(), seg.clone())) {
                let scope = module.clone();
                let mut next = self.absolute(&scope, target)?;
                next.extend(path[k + 1..].iter().cloned());
                return self.defining_file(&next, hops + 1);
            }
            break;
        }
        self.modules.get(&module).cloned()
    }
}

/// The files each file imports from (not counting itself), as (importer, imported, re-export).
fn edges() -> Vec<(String, String, bool)> {
    let files = load_sources();
    let mut uses = Vec::new();
    let mut refs = Vec::new();
    let mut modules = BTreeMap::new();
    for f in &files {
        modules.insert(f.module.clone(), f.rel.clone());
    }
    for f in &files {
        let first = refs.len();
        scan(f, &mut uses, &mut refs);
        for r in &refs[first..] {
            for len in f.module.len() + 1..=r.scope.len() {
                modules.insert(r.scope[..len].to_vec(), f.rel.clone());
            }
        }
    }
    let file_of_scope = |scope: &[String]| modules.get(scope).cloned();
    let names = uses
        .into_iter()
        .map(|u| ((u.scope, u.name), u.segments))
        .collect();
    let index = Index {
        modules: modules.clone(),
        names,
    };
    let mut out = BTreeSet::new();
    for r in &refs {
        let from = file_of_scope(&r.scope).unwrap();
        let Some(abs) = index.absolute(&r.scope, &r.segments) else {
            continue;
        };
        if let Some(to) = index.defining_file(&abs, 0) {
            if to != from {
                out.insert((from, to, r.reexport));
            }
        }
    }
    out.into_iter().collect()
}

/// The `mod.rs` (or crate root) that declares a file: `plot/charts.rs` → `plot/mod.rs`,
/// `plot/mod.rs` → `lib.rs`, `cli/adapt.rs` → `cli/main.rs`.
fn parent_file(rel: &str) -> Option<String> {
    let dir = rel.trim_end_matches("/mod.rs").trim_end_matches(".rs");
    let parent = dir.rsplit_once('/').map_or("", |(p, _)| p);
    match (parent, rel) {
        (_, "lib.rs" | "cli/main.rs") => None,
        ("", _) => Some("lib.rs".into()),
        ("cli", _) => Some("cli/main.rs".into()),
        (p, _) => Some(format!("{p}/mod.rs")),
    }
}

/// The part of the library a file belongs to: its top folder, or the file's name at the top.
fn part(rel: &str) -> &str {
    rel.split('/').next().unwrap().trim_end_matches(".rs")
}

fn rank(part: &str) -> usize {
    RANKS
        .iter()
        .position(|r| r.contains(&part))
        .unwrap_or_else(|| panic!("part `{part}` has no rank: add it to RANKS"))
}

#[test]
fn no_two_source_files_import_each_other() {
    let uses: BTreeSet<(String, String)> = edges()
        .into_iter()
        .filter(|(_, _, reexport)| !reexport)
        .map(|(a, b, _)| (a, b))
        .collect();
    let cycles: Vec<String> = uses
        .iter()
        .filter(|(a, b)| a < b && uses.contains(&(b.clone(), a.clone())))
        // A folder's `mod.rs` is its front: it declares and re-exports its children and holds
        // what they share, so it and its own children are one unit, not a cycle.
        .filter(|(a, b)| parent_file(a).as_ref() != Some(b) && parent_file(b).as_ref() != Some(a))
        .map(|(a, b)| format!("{a} <-> {b}"))
        .collect();
    assert!(
        cycles.is_empty(),
        "source files that import each other:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn lower_parts_never_import_higher_ones() {
    let upward: Vec<String> = edges()
        .into_iter()
        .filter(|(a, b, _)| part(a) != part(b) && rank(part(a)) <= rank(part(b)))
        .map(|(a, b, _)| format!("{a} -> {b}"))
        .collect();
    assert!(
        upward.is_empty(),
        "imports against the layering {RANKS:?}:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_checker_sees_imports_through_reexports_and_groups() {
    let e = edges();
    let has = |a: &str, b: &str| e.iter().any(|(x, y, _)| x == a && y == b);
    // `use crate::{Error, Result}` goes through lib.rs's re-export to the defining file.
    assert!(has("data/idx.rs", "error.rs"));
    // `use crate::data::Dataset` goes through data/mod.rs to data/dataset.rs.
    assert!(has("eval/mod.rs", "data/dataset.rs"));
    assert!(!has("eval/mod.rs", "data/mod.rs"));
    // The command's `digits::` paths reach the library's files.
    assert!(e
        .iter()
        .any(|(x, y, _)| x.starts_with("cli/") && y.starts_with("train/")));
    // A folder's front and its children are told apart from siblings.
    assert_eq!(
        parent_file("plot/charts.rs").as_deref(),
        Some("plot/mod.rs")
    );
    assert_eq!(parent_file("plot/mod.rs").as_deref(), Some("lib.rs"));
    assert_eq!(parent_file("error.rs").as_deref(), Some("lib.rs"));
    assert_eq!(parent_file("cli/adapt.rs").as_deref(), Some("cli/main.rs"));
    // Every source file is seen.
    let files: BTreeSet<&str> = e.iter().map(|(a, _, _)| a.as_str()).collect();
    assert!(files.contains("engine/layers.rs") && files.contains("study/mod.rs"));
}
