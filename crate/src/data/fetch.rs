//! `digits data fetch` and `digits data check`: put every known file in the data directory,
//! verified, and re-verify what is there.
//!
//! Files come from a local mirror folder laid out like the data directory (for machines
//! without internet, CI included) or from the public URLs, downloaded in process (the
//! `download` feature; see `download.rs`). Each file lands under a temporary name in its final
//! folder, is verified, and only then renamed into place, so an interrupted or failed fetch
//! never leaves a half-written file under the real name.

use std::fmt;
use std::path::{Path, PathBuf};

use super::checksums::{self, sha256_hex, KnownFile, FILES};
use super::download::download;
use crate::error::{Error, Result};

/// Environment variable naming the mirror folder.
pub const MIRROR_ENV: &str = "DIGITS_DATA_MIRROR";

/// The mirror folder named by `DIGITS_DATA_MIRROR`, if set and non-empty. A relative path
/// is taken relative to the current directory.
pub fn mirror_from_env() -> Option<PathBuf> {
    std::env::var_os(MIRROR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// What [`fetch`] did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Present and matching its checksum; left alone.
    AlreadyValid,
    CopiedFromMirror,
    Downloaded {
        url: String,
    },
    /// Written from the verified compressed file (the raw MNIST IDX files).
    Decompressed,
    /// An optional file that is neither present nor in the mirror.
    SkippedOptional,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    pub rel_path: String,
    pub action: Action,
    /// Content sha256, when the file is in place.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    pub files: Vec<FetchedFile>,
}

impl FetchReport {
    pub fn count(&self, pred: impl Fn(&Action) -> bool) -> usize {
        self.files.iter().filter(|f| pred(&f.action)).count()
    }
}

impl fmt::Display for FetchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files: {} already valid, {} copied from mirror, {} downloaded, {} decompressed, {} optional skipped",
            self.files.len(),
            self.count(|a| *a == Action::AlreadyValid),
            self.count(|a| *a == Action::CopiedFromMirror),
            self.count(|a| matches!(a, Action::Downloaded { .. })),
            self.count(|a| *a == Action::Decompressed),
            self.count(|a| *a == Action::SkippedOptional),
        )
    }
}

/// Fetches every required file that is not already present and valid (and copies optional
/// files that the mirror happens to hold; they are never downloaded). With `mirror`, files
/// come only from there; without, from the public URLs in turn.
///
/// It goes through every file even after a failure, so one bad source does not hold back
/// the others, then returns the first error.
pub fn fetch(data_dir: &Path, mirror: Option<&Path>, progress: bool) -> Result<FetchReport> {
    let mut report = FetchReport::default();
    let mut first_err = None;
    for file in FILES {
        match fetch_file(data_dir, file, mirror, progress) {
            Ok(done) => report.files.extend(done),
            Err(e) => {
                if progress {
                    eprintln!("fetch: {e}");
                }
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Fetches one file of the table (and writes its decompressed copy where the table asks).
/// Returns one entry per file written or checked.
pub fn fetch_file(
    data_dir: &Path,
    file: &KnownFile,
    mirror: Option<&Path>,
    progress: bool,
) -> Result<Vec<FetchedFile>> {
    let dest = data_dir.join(file.rel_path);
    let mut out = Vec::new();
    let (content, sha, action) = match present_content(&dest, file) {
        Some((content, sha)) => (content, sha, Action::AlreadyValid),
        None => {
            let Some((content, sha, action)) = obtain(data_dir, file, mirror, progress)? else {
                out.push(FetchedFile {
                    rel_path: file.rel_path.to_string(),
                    action: Action::SkippedOptional,
                    sha256: None,
                });
                return Ok(out);
            };
            (content, sha, action)
        }
    };
    if progress && action == Action::AlreadyValid {
        eprintln!("fetch: {} already present and valid", file.rel_path);
    }
    out.push(FetchedFile {
        rel_path: file.rel_path.to_string(),
        action,
        sha256: Some(sha.clone()),
    });
    if let Some(rel) = file.decompressed_to {
        let path = data_dir.join(rel);
        let action = if present_content(&path, &raw_twin(file)).is_some() {
            Action::AlreadyValid
        } else {
            write_atomically(&path, |tmp| {
                std::fs::write(tmp, &content).map_err(|e| Error::io(tmp, e))
            })?;
            if progress {
                eprintln!("fetch: wrote {rel}");
            }
            Action::Decompressed
        };
        out.push(FetchedFile {
            rel_path: rel.to_string(),
            action,
            sha256: Some(sha),
        });
    }
    Ok(out)
}

/// The table entry describing a file's decompressed twin (same content, no compression).
fn raw_twin(file: &KnownFile) -> KnownFile {
    KnownFile {
        rel_path: file.decompressed_to.unwrap_or(file.rel_path),
        compression: checksums::Compression::None,
        decompressed_to: None,
        ..*file
    }
}

/// Content and hash of `path` if it is there, readable and matches the table. A file with
/// no known checksum counts as valid when it decompresses.
fn present_content(path: &Path, file: &KnownFile) -> Option<(Vec<u8>, String)> {
    let raw = std::fs::read(path).ok()?;
    let content = checksums::decompress(path, raw, file.compression, "").ok()?;
    let sha = sha256_hex(&content);
    (file.sha256.is_none() || file.accepts(&sha)).then_some((content, sha))
}

type Obtained = Option<(Vec<u8>, String, Action)>;

fn obtain(
    data_dir: &Path,
    file: &KnownFile,
    mirror: Option<&Path>,
    progress: bool,
) -> Result<Obtained> {
    let dest = data_dir.join(file.rel_path);
    if let Some(mirror) = mirror {
        let src = mirror.join(file.rel_path);
        if !src.is_file() {
            if !file.required {
                return Ok(None);
            }
            return Err(Error::Missing {
                path: src,
                hint: format!(
                    "the mirror {} lacks {}; put a verified copy there (public copy: {}) or unset {MIRROR_ENV} to download",
                    mirror.display(),
                    file.rel_path,
                    file.urls.first().copied().unwrap_or("none known")
                ),
            }
            );
        }
        if progress {
            eprintln!("fetch: {} <- {}", file.rel_path, src.display());
        }
        let (content, sha) = write_atomically(&dest, |tmp| {
            std::fs::copy(&src, tmp).map_err(|e| Error::io(&src, e))?;
            verify_tmp(tmp, &src, file)
        })?;
        return Ok(Some((content, sha, Action::CopiedFromMirror)));
    }
    if !file.required {
        return Ok(None);
    }
    if !cfg!(feature = "download") {
        return Err(Error::Missing {
            path: dest,
            hint: super::download::NO_DOWNLOAD.to_string(),
        });
    }
    download_first(&dest, file, progress).map(Some)
}

/// Downloads `file` to `dest` from its URLs in turn, until one gives the verified content.
fn download_first(
    dest: &Path,
    file: &KnownFile,
    progress: bool,
) -> Result<(Vec<u8>, String, Action)> {
    let mut failures = Vec::new();
    let mut mismatch = None;
    for url in file.urls {
        if progress {
            eprintln!("fetch: {} <- {url}", file.rel_path);
        }
        let got = write_atomically(dest, |tmp| {
            download(url, tmp).map_err(Error::Invalid)?;
            verify_tmp(tmp, dest, file)
        });
        match got {
            Ok((content, sha)) => {
                let url = url.to_string();
                return Ok((content, sha, Action::Downloaded { url }));
            }
            Err(e @ Error::Checksum { .. }) => {
                failures.push(format!("{url}: checksum mismatch"));
                mismatch.get_or_insert(e);
            }
            Err(e) => failures.push(format!("{url}: {}", one_line(&e.to_string()))),
        }
    }
    if let Some(e) = mismatch {
        return Err(e);
    }
    Err(Error::io(
        dest,
        std::io::Error::other(format!(
            "download failed ({}); check the network, or set {MIRROR_ENV} to a folder holding the files",
            failures.join("; ")
        )),
    ))
}

/// Decompresses and hashes the temporary copy; `named` is the path errors should mention.
fn verify_tmp(tmp: &Path, named: &Path, file: &KnownFile) -> Result<(Vec<u8>, String)> {
    let raw = checksums::read_bytes(
        tmp,
        "the temporary copy vanished; re-run `digits data fetch`",
    )?;
    let content = checksums::decompress(
        named,
        raw,
        file.compression,
        "replace it with an intact copy",
    )?;
    let sha = sha256_hex(&content);
    checksums::verify(named, file, &sha)?;
    Ok((content, sha))
}

/// Runs `produce` on a temporary path next to `dest`, then renames it into place; the
/// temporary file is removed if anything fails.
fn write_atomically<T>(dest: &Path, produce: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = produce(&tmp).and_then(|v| {
        // Flush to disk before the rename so a crash cannot leave an empty file in place.
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
        Ok(v)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The state of one file as [`check`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Present and matching its checksum.
    Valid,
    /// Present and readable, but no checksum is known for it.
    Unverified,
    Absent,
    Mismatch {
        expected: String,
        actual: String,
    },
    /// Present but cannot be read or decompressed.
    Unreadable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    pub rel_path: String,
    pub required: bool,
    pub state: FileState,
    pub sha256: Option<String>,
}

impl FileStatus {
    /// Whether this file is fine for use (an absent optional file is fine).
    pub fn is_ok(&self) -> bool {
        match self.state {
            FileState::Valid | FileState::Unverified => true,
            FileState::Absent => !self.required,
            _ => false,
        }
    }
}

impl fmt::Display for FileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.rel_path;
        match &self.state {
            FileState::Valid => write!(f, "ok          {p}"),
            FileState::Unverified => write!(f, "unverified  {p} (no published checksum)"),
            FileState::Absent if self.required => {
                write!(f, "MISSING     {p}; run `digits data fetch`")
            }
            FileState::Absent => write!(f, "absent      {p} (optional)"),
            FileState::Mismatch { expected, actual } => write!(
                f,
                "BAD         {p}: sha256 {actual}, expected {expected}; delete it and run `digits data fetch`"
            ),
            FileState::Unreadable(why) => write!(f, "BAD         {p}: {why}"),
        }
    }
}

/// Re-verifies every known file under `data_dir` (and the decompressed MNIST copies),
/// reporting absent ones too. Problems are reported in the statuses, not as errors.
pub fn check(data_dir: &Path) -> Result<Vec<FileStatus>> {
    let mut out = Vec::new();
    for file in FILES {
        out.push(status_of(data_dir, file));
        if file.decompressed_to.is_some() {
            out.push(status_of(data_dir, &raw_twin(file)));
        }
    }
    Ok(out)
}

fn status_of(data_dir: &Path, file: &KnownFile) -> FileStatus {
    let path = data_dir.join(file.rel_path);
    let mut status = FileStatus {
        rel_path: file.rel_path.to_string(),
        required: file.required,
        state: FileState::Absent,
        sha256: None,
    };
    let raw = match std::fs::read(&path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return status,
        Err(e) => {
            status.state = FileState::Unreadable(e.to_string());
            return status;
        }
    };
    let content = match checksums::decompress(
        &path,
        raw,
        file.compression,
        "delete it and run `digits data fetch`",
    ) {
        Ok(c) => c,
        Err(e) => {
            status.state = FileState::Unreadable(e.to_string());
            return status;
        }
    };
    let sha = sha256_hex(&content);
    status.state = match file.sha256 {
        None => FileState::Unverified,
        Some(_) if file.accepts(&sha) => FileState::Valid,
        Some(expected) => FileState::Mismatch {
            expected: expected.to_string(),
            actual: sha.clone(),
        },
    };
    status.sha256 = Some(sha);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;
    use std::io::Write;

    fn temp_dir(tag: &str) -> TempDir {
        TempDir::new(&format!("fetch-{tag}"))
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// A table entry for test content; leaks a few bytes per test, which is fine.
    fn entry(rel: &str, content: &[u8], urls: Vec<String>, twin: Option<&str>) -> KnownFile {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let urls: Vec<&'static str> = urls.into_iter().map(leak).collect();
        KnownFile {
            rel_path: leak(rel.to_string()),
            compression: checksums::Compression::from_path(Path::new(rel)),
            sha256: Some(leak(sha256_hex(content))),
            also_accept: &[],
            urls: Box::leak(urls.into_boxed_slice()),
            required: true,
            decompressed_to: twin.map(|t| leak(t.to_string())),
        }
    }

    #[test]
    fn mirror_copy_writes_twin_then_is_idempotent() {
        let mirror = temp_dir("mirror-src");
        let data = temp_dir("mirror-dst");
        std::fs::create_dir_all(mirror.join("set")).unwrap();
        std::fs::write(mirror.join("set/a.gz"), gz(b"content A")).unwrap();
        let f = entry("set/a.gz", b"content A", vec![], Some("set/a"));

        let done = fetch_file(&data, &f, Some(&*mirror), false).unwrap();
        assert_eq!(done[0].action, Action::CopiedFromMirror);
        assert_eq!(done[1].action, Action::Decompressed);
        assert_eq!(std::fs::read(data.join("set/a")).unwrap(), b"content A");
        let leftovers: Vec<_> = std::fs::read_dir(data.join("set"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let again = fetch_file(&data, &f, Some(&*mirror), false).unwrap();
        assert!(
            again.iter().all(|d| d.action == Action::AlreadyValid),
            "{again:?}"
        );

        // A damaged twin is rewritten from the valid compressed file.
        std::fs::write(data.join("set/a"), b"junk").unwrap();
        let fixed = fetch_file(&data, &f, Some(&*mirror), false).unwrap();
        assert_eq!(fixed[1].action, Action::Decompressed);
        assert_eq!(std::fs::read(data.join("set/a")).unwrap(), b"content A");
    }

    #[test]
    fn bad_mirror_copy_is_not_installed() {
        let mirror = temp_dir("bad-src");
        let data = temp_dir("bad-dst");
        std::fs::write(mirror.join("b.txt"), b"tampered").unwrap();
        let f = entry("b.txt", b"original", vec![], None);
        let e = fetch_file(&data, &f, Some(&*mirror), false).unwrap_err();
        assert!(matches!(e, Error::Checksum { .. }), "{e}");
        assert!(!data.join("b.txt").exists());
        assert_eq!(
            std::fs::read_dir(&data).unwrap().count(),
            0,
            "no temporary left"
        );
    }

    /// What a download left in the data folder: nothing but `expect`, no temporary file.
    fn assert_only(data: &Path, expect: &[&str]) {
        let mut names: Vec<String> = std::fs::read_dir(data)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        assert_eq!(names, expect, "files left in {}", data.display());
    }

    #[cfg(feature = "download")]
    fn server() -> super::super::download::test_server::Server {
        use super::super::download::test_server::{Reply, Server};
        let ok = |path, body: &'static [u8]| Reply {
            path,
            status: "200 OK",
            claimed_len: body.len(),
            body,
        };
        Server::start(vec![
            ok("/good.txt", b"payload"),
            ok("/evil.txt", b"not the payload"),
            // The connection closes after 7 of the 100 bytes promised.
            Reply {
                path: "/short.txt",
                status: "200 OK",
                claimed_len: 100,
                body: b"payload",
            },
        ])
    }

    #[cfg(feature = "download")]
    #[test]
    fn downloads_over_http_trying_urls_in_turn() {
        let srv = server();
        let data = temp_dir("dl-dst");
        let f = entry(
            "d/x.txt",
            b"payload",
            vec![srv.url("/absent.txt"), srv.url("/good.txt")],
            None,
        );
        let done = fetch_file(&data, &f, None, false).unwrap();
        let url = srv.url("/good.txt");
        assert_eq!(done[0].action, Action::Downloaded { url });
        assert_eq!(done[0].sha256.as_deref(), Some(&*sha256_hex(b"payload")));
        assert_eq!(std::fs::read(data.join("d/x.txt")).unwrap(), b"payload");
        assert_only(&data.join("d"), &["x.txt"]);
    }

    #[cfg(feature = "download")]
    #[test]
    fn a_bad_download_is_one_line_and_leaves_nothing() {
        let srv = server();
        let data = temp_dir("dl-bad");
        let fail = |rel: &str, path: &str| {
            let f = entry(rel, b"payload", vec![srv.url(path)], None);
            let e = fetch_file(&data, &f, None, false).unwrap_err();
            assert!(!e.to_string().contains('\n'), "{e}");
            e
        };
        let e = fail("d/short.txt", "/short.txt").to_string();
        let want = format!("{}: truncated: 7 of 100 bytes", srv.url("/short.txt"));
        assert!(e.contains(&want) && e.contains(MIRROR_ENV), "{e}");

        let e = fail("d/evil.txt", "/evil.txt");
        let Error::Checksum {
            path,
            expected,
            actual,
        } = &e
        else {
            panic!("{e}");
        };
        assert_eq!(path, &data.join("d/evil.txt"));
        assert_eq!(expected, &sha256_hex(b"payload"));
        assert_eq!(actual, &sha256_hex(b"not the payload"));

        let e = fail("d/absent.txt", "/absent.txt").to_string();
        let want = format!("{}: HTTP status 404 Not Found", srv.url("/absent.txt"));
        assert!(e.contains(&want), "{e}");
        assert!(
            e.starts_with(&data.join("d/absent.txt").display().to_string()),
            "{e}"
        );
        assert_only(&data.join("d"), &[]);
    }

    #[cfg(not(feature = "download"))]
    #[test]
    fn without_the_download_feature_a_url_says_where_data_come_from() {
        let data = temp_dir("dl-off");
        let f = entry(
            "d/x.txt",
            b"payload",
            vec!["http://127.0.0.1:9/x".into()],
            None,
        );
        let e = fetch_file(&data, &f, None, false).unwrap_err().to_string();
        assert!(
            e.contains("digits data fetch") && e.contains(MIRROR_ENV),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        assert_only(&data, &[]);
    }

    #[test]
    fn check_reports_each_state() {
        let data = temp_dir("check");
        std::fs::create_dir_all(data.join("semeion")).unwrap();
        std::fs::write(data.join("semeion/semeion.data"), b"junk").unwrap();
        std::fs::create_dir_all(data.join("mnist")).unwrap();
        std::fs::write(data.join("mnist/train-images-idx3-ubyte.gz"), b"not gzip").unwrap();
        let st = check(&data).unwrap();
        assert_eq!(st.len(), FILES.len() + 4);
        let get = |p: &str| st.iter().find(|s| s.rel_path == p).unwrap();
        assert!(matches!(
            get("semeion/semeion.data").state,
            FileState::Mismatch { .. }
        ));
        assert!(matches!(
            get("mnist/train-images-idx3-ubyte.gz").state,
            FileState::Unreadable(_)
        ));
        assert_eq!(
            get("mnist/train-images-idx3-ubyte").state,
            FileState::Absent
        );
        assert!(!get("mnist/train-images-idx3-ubyte").is_ok());
        assert!(get("usps/usps.bz2").is_ok(), "optional and absent is fine");
        assert!(get("semeion/semeion.data")
            .to_string()
            .contains("expected f43228ae"));
    }
}
