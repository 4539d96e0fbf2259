//! Every file the project knows, with the checksum of its decompressed content and where it
//! can be fetched, plus the helpers that read and verify such files.
//!
//! Checksums are taken over the *decompressed* bytes because mirrors re-compress: the same
//! MNIST content ships in `.gz` containers that differ byte for byte.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How a file is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
}

impl Compression {
    /// Guessed from the file name, for files the table does not know (user data).
    pub fn from_path(path: &Path) -> Compression {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("gz") => Compression::Gzip,
            Some(e) if e.eq_ignore_ascii_case("bz2") => Compression::Bzip2,
            _ => Compression::None,
        }
    }
}

/// One entry of [`FILES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownFile {
    /// Path under the data directory, `/`-separated.
    pub rel_path: &'static str,
    pub compression: Compression,
    /// sha256 (hex) of the decompressed content. `None`: no published checksum is known,
    /// so the file is parsed but cannot be verified.
    pub sha256: Option<&'static str>,
    /// Other decompressed-content hashes that are the same data (see `mfeat`).
    pub also_accept: &'static [&'static str],
    /// Public copies, tried in order.
    pub urls: &'static [&'static str],
    /// Whether `digits data fetch` must provide it.
    pub required: bool,
    /// Where to write the decompressed content as well, for readers that cannot
    /// decompress (the `mnist` crate reads raw IDX files).
    pub decompressed_to: Option<&'static str>,
}

impl KnownFile {
    pub fn accepts(&self, sha256: &str) -> bool {
        self.sha256 == Some(sha256) || self.also_accept.contains(&sha256)
    }
}

/// The hint every "file not found" error for a fetched file carries.
pub const FETCH_HINT: &str =
    "run `digits data fetch` (set DIGITS_DATA_MIRROR to a folder holding a copy to work offline)";

/// MNIST's two public mirrors of one of its files, in the order they are tried.
macro_rules! mnist_mirrors {
    ($file:literal) => {
        &[
            concat!("https://ossci-datasets.s3.amazonaws.com/mnist/", $file),
            concat!("https://storage.googleapis.com/cvdf-datasets/mnist/", $file),
        ]
    };
}

/// Every known file. Checksums come from the provenance notes of the verified data copies
/// (`docs/data.md` lists them); for the uncompressed files the content hash is the file hash.
///
/// Caveats worth knowing before trusting a download over the mirror:
/// - `usps/zip.*.gz`: the verified copies were re-written from `usps.h5` in the ESL layout;
///   whether the files at the ESL site hash the same is unknown, so a download from there
///   may fail verification (the error names both hashes). Use the mirror where you can.
/// - `usps/usps.bz2` (LIBSVM training digits) has no known checksum; it is optional, never
///   fetched, and parsed unverified when present.
/// - `mfeat`, `optdigits`: the verified bytes come from the GitHub commits named in their
///   PROVENANCE.md, so those raw URLs come first. The mfeat copy lacks a final newline that
///   the UCI original may have, so that variant's hash is accepted too. The UCI optdigits
///   files are `.Z`-compressed and may lack the trailing `EOF`, so they are not listed.
pub const FILES: &[KnownFile] = &[
    KnownFile {
        rel_path: "mnist/train-images-idx3-ubyte.gz",
        compression: Compression::Gzip,
        sha256: Some("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        also_accept: &[],
        urls: mnist_mirrors!("train-images-idx3-ubyte.gz"),
        required: true,
        decompressed_to: Some("mnist/train-images-idx3-ubyte"),
    },
    KnownFile {
        rel_path: "mnist/train-labels-idx1-ubyte.gz",
        compression: Compression::Gzip,
        sha256: Some("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        also_accept: &[],
        urls: mnist_mirrors!("train-labels-idx1-ubyte.gz"),
        required: true,
        decompressed_to: Some("mnist/train-labels-idx1-ubyte"),
    },
    KnownFile {
        rel_path: "mnist/t10k-images-idx3-ubyte.gz",
        compression: Compression::Gzip,
        sha256: Some("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        also_accept: &[],
        urls: mnist_mirrors!("t10k-images-idx3-ubyte.gz"),
        required: true,
        decompressed_to: Some("mnist/t10k-images-idx3-ubyte"),
    },
    KnownFile {
        rel_path: "mnist/t10k-labels-idx1-ubyte.gz",
        compression: Compression::Gzip,
        sha256: Some("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        also_accept: &[],
        urls: mnist_mirrors!("t10k-labels-idx1-ubyte.gz"),
        required: true,
        decompressed_to: Some("mnist/t10k-labels-idx1-ubyte"),
    },
    KnownFile {
        rel_path: "usps/usps.t.bz2",
        compression: Compression::Bzip2,
        sha256: Some("3839faa29aa5f6bfa0516cdd599fae8ad59b7a3777d09f7ca971d9f1cd8b6c6b"),
        also_accept: &[],
        urls: &["https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/usps.t.bz2"],
        required: true,
        decompressed_to: None,
    },
    KnownFile {
        rel_path: "usps/usps.bz2",
        compression: Compression::Bzip2,
        sha256: None,
        also_accept: &[],
        urls: &["https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/usps.bz2"],
        required: false,
        decompressed_to: None,
    },
    KnownFile {
        rel_path: "usps/zip.train.gz",
        compression: Compression::Gzip,
        sha256: Some("cffe3715cf1d92aa5881a14674dbbf6343f59ca12dae90a73c1b6c7500f643aa"),
        also_accept: &[],
        urls: &["https://hastie.su.domains/ElemStatLearn/datasets/zip.train.gz"],
        required: true,
        decompressed_to: None,
    },
    KnownFile {
        rel_path: "usps/zip.test.gz",
        compression: Compression::Gzip,
        sha256: Some("99a533840801264c6352c7987e5a4ee5fd8cc30ae722acc85a5d20a3d833c732"),
        also_accept: &[],
        urls: &["https://hastie.su.domains/ElemStatLearn/datasets/zip.test.gz"],
        required: true,
        decompressed_to: None,
    },
    KnownFile {
        rel_path: "semeion/semeion.data",
        compression: Compression::None,
        sha256: Some("f43228ae3da5ea6a3c95069d53450b86166770e3b719dcc333182128fe08d4b1"),
        also_accept: &[],
        urls: &["https://archive.ics.uci.edu/ml/machine-learning-databases/semeion/semeion.data"],
        required: true,
        decompressed_to: None,
    },
    KnownFile {
        rel_path: "mfeat/mfeat-pix.txt",
        compression: Compression::None,
        sha256: Some("18aba069947f58f64d4cd7095593149bad1e3b8a6288d9bb2e8461d79f5f2123"),
        // The same bytes followed by one "\n".
        also_accept: &["70a1cd033add46614464a8740ddc23c3693765985bde52ccb6b702bff23b64f1"],
        urls: &[
            "https://raw.githubusercontent.com/sundios/Classification/a04177b8e31be2ac308347cd1a3b804a93b01c18/mfeat-pix.txt",
            "https://archive.ics.uci.edu/ml/machine-learning-databases/mfeat/mfeat-pix",
        ],
        required: true,
        decompressed_to: None,
    },
    KnownFile {
        rel_path: "optdigits/optdigits-orig.windep",
        compression: Compression::None,
        sha256: Some("c09ab8735d588fdf980724f10a5072c0b757037dc80b448b2f6a10392751c9d6"),
        also_accept: &[],
        urls: &["https://raw.githubusercontent.com/sukeshsangam/pattern-recognition-neural-networks/3b06ae726302dfcf384c1eec5ac6f2b71ae7ff53/optdigits-orig.windep"],
        required: true,
        decompressed_to: None,
    },
    KnownFile {
        rel_path: "optdigits/optdigits-orig.tra",
        compression: Compression::None,
        sha256: Some("a4eff709680076cae40420343de292b5960fc2b0da439b8a57c3d14124113bda"),
        also_accept: &[],
        urls: &["https://raw.githubusercontent.com/zikunrain/csmath/59bdf597024ebd8a51bd554a8a77334a82293e79/optdigits-orig.tra"],
        required: true,
        decompressed_to: None,
    },
];

pub fn known_file(rel_path: &str) -> Option<&'static KnownFile> {
    FILES.iter().find(|f| f.rel_path == rel_path)
}

/// Bytes as lowercase hexadecimal, two digits a byte (how sha256 digests are written).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The provenance hash of a data set read from several files: the sha256 of their hex
/// hashes concatenated in the given order.
pub fn combine_hashes(hashes: &[&str]) -> String {
    sha256_hex(hashes.concat().as_bytes())
}

/// Reads a whole file; a missing file becomes [`Error::Missing`] carrying `hint`.
pub fn read_bytes(path: &Path, hint: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Missing {
                path: path.to_path_buf(),
                hint: hint.to_string(),
            }
        } else {
            Error::io(path, e)
        }
    })
}

/// Decompresses `raw`, read from `path` (named in errors). `fix` says what to do about a
/// damaged file.
pub fn decompress(
    path: &Path,
    raw: Vec<u8>,
    compression: Compression,
    fix: &str,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let (result, kind) = match compression {
        Compression::None => return Ok(raw),
        Compression::Gzip => (
            flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out),
            "gzip",
        ),
        Compression::Bzip2 => (
            bzip2::read::MultiBzDecoder::new(&raw[..]).read_to_end(&mut out),
            "bzip2",
        ),
    };
    match result {
        Ok(_) => Ok(out),
        Err(e) => Err(Error::format(
            path,
            format!("cannot decompress {kind} data ({e}); the file is damaged or truncated: {fix}"),
        )),
    }
}

/// Reads and decompresses a file of the table from `data_dir`, verifying its checksum
/// where one is known. Returns the content and its sha256.
pub fn read_known(data_dir: &Path, file: &KnownFile) -> Result<(Vec<u8>, String)> {
    let path = data_dir.join(file.rel_path);
    let hint = if file.required {
        FETCH_HINT.to_string()
    } else {
        let dir = path.parent().unwrap_or(data_dir);
        format!(
            "this optional file is not fetched; download {} into {} (it has no published checksum and is read unverified)",
            file.urls.first().copied().unwrap_or("it"),
            dir.display()
        )
    };
    let raw = read_bytes(&path, &hint)?;
    let content = decompress(
        &path,
        raw,
        file.compression,
        "delete it and re-run `digits data fetch`",
    )?;
    let actual = sha256_hex(&content);
    verify(&path, file, &actual)?;
    Ok((content, actual))
}

/// Checks a content hash against the table entry (a no-op where no checksum is known).
pub fn verify(path: &Path, file: &KnownFile, actual: &str) -> Result<()> {
    match file.sha256 {
        Some(expected) if !file.accepts(actual) => Err(Error::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn table_is_consistent() {
        for f in FILES {
            assert!(!f.urls.is_empty(), "{}", f.rel_path);
            assert_eq!(f.compression, Compression::from_path(Path::new(f.rel_path)));
            if let Some(h) = f.sha256 {
                assert_eq!(h.len(), 64);
                assert!(h
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            }
            assert_eq!(
                f.required,
                f.sha256.is_some(),
                "only unverifiable files are optional"
            );
            assert_eq!(known_file(f.rel_path), Some(f));
        }
        assert_eq!(
            FILES.iter().filter(|f| f.decompressed_to.is_some()).count(),
            4
        );
        assert!(known_file("nope").is_none());
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(combine_hashes(&["ab", "c"]), sha256_hex(b"abc"));
    }

    #[test]
    fn decompress_roundtrip_and_damage() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello digits").unwrap();
        let gz = gz.finish().unwrap();
        let p = Path::new("x.gz");
        assert_eq!(
            decompress(p, gz.clone(), Compression::Gzip, "fix it").unwrap(),
            b"hello digits"
        );
        let e =
            decompress(p, gz[..gz.len() - 6].to_vec(), Compression::Gzip, "fix it").unwrap_err();
        assert!(e.to_string().contains("cannot decompress gzip"), "{e}");
        assert!(e.to_string().ends_with("fix it"), "{e}");

        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(b"hello usps").unwrap();
        let bz = bz.finish().unwrap();
        assert_eq!(
            decompress(p, bz, Compression::Bzip2, "").unwrap(),
            b"hello usps"
        );
        assert!(decompress(p, b"not bz".to_vec(), Compression::Bzip2, "").is_err());
    }

    #[test]
    fn missing_file_carries_hint() {
        let e = read_bytes(Path::new("/no/such/file"), "do X").unwrap_err();
        assert!(matches!(e, Error::Missing { .. }));
        assert_eq!(e.to_string(), "/no/such/file: file not found; do X");
    }

    #[test]
    fn verify_accepts_alternates_only() {
        let f = known_file("mfeat/mfeat-pix.txt").unwrap();
        assert!(verify(Path::new("m"), f, f.sha256.unwrap()).is_ok());
        assert!(verify(Path::new("m"), f, f.also_accept[0]).is_ok());
        let e = verify(Path::new("m"), f, "00").unwrap_err();
        assert!(matches!(e, Error::Checksum { .. }));
        let opt = known_file("usps/usps.bz2").unwrap();
        assert!(verify(Path::new("u"), opt, "anything").is_ok());
    }
}
