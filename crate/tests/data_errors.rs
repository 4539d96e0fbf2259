//! Every kind of bad input, built as a real file in a temporary folder, must give a
//! one-line error that names the file and says what is wrong.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use digits::data::checksums::{known_file, sha256_hex};
use digits::data::fetch::{fetch, fetch_file};
use digits::data::{load_domain, load_raw, Framing, Split};
use digits::data::{mfeat, optdigits, semeion, usps};
use digits::Error;

/// A fresh, empty folder unique to this process and call, removed when dropped.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!(
        "digits-data-errors-{}-{n}-{tag}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn bz2(bytes: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The error's message, checked to be a single line.
fn msg(e: Error) -> String {
    let m = e.to_string();
    assert!(!m.contains('\n'), "error spans lines: {m}");
    m
}

fn idx_images(n: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x0803u32, n, rows, cols] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.resize(16 + pixels, 7);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [0x0801u32, labels.len() as u32] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(labels);
    v
}

fn esl_line(label: &str, values: usize) -> String {
    let mut s = label.to_string();
    for k in 0..values {
        s.push_str(if k % 3 == 0 { " 0.5000" } else { " -1.0000" });
    }
    s + "\n"
}

fn libsvm_line(label: &str) -> String {
    let mut s = label.to_string();
    for k in 1..=256 {
        s.push_str(&format!(" {k}:-0.999"));
    }
    s + "\n"
}

#[test]
fn missing_files_name_the_file_and_the_fetch_command() {
    let dir = temp_dir("missing");
    for (name, file) in [
        ("usps-test", "usps/usps.t.bz2"),
        ("usps-esl-all", "usps/zip.train.gz"),
        ("semeion", "semeion/semeion.data"),
        ("mfeat", "mfeat/mfeat-pix.txt"),
        ("optdigits", "optdigits/optdigits-orig.windep"),
        ("mnist-test", "mnist/t10k-images-idx3-ubyte"),
    ] {
        let e = load_domain(name, &dir, Framing::MnistFrame).unwrap_err();
        assert!(matches!(e, Error::Missing { .. }), "{name}: {e}");
        let m = msg(e);
        assert!(
            m.contains(file) && m.contains("digits data fetch"),
            "{name}: {m}"
        );
    }
    // The optional file says where to get it instead.
    let m = msg(load_raw("usps-train", &dir).unwrap_err());
    assert!(
        m.contains("usps/usps.bz2") && m.contains("https://www.csie.ntu.edu.tw"),
        "{m}"
    );
}

#[test]
fn checksum_mismatch_in_data_dir_names_file_and_both_hashes() {
    let dir = temp_dir("sum");
    // Well-formed Semeion content that is not the published file.
    let mut line = String::new();
    for k in 0..256 {
        line.push_str(if k % 2 == 0 { "1.0000 " } else { "0.0000 " });
    }
    line.push_str("0 0 1 0 0 0 0 0 0 0\r\n");
    write(&dir.join("semeion/semeion.data"), line.as_bytes());
    let e = load_raw("semeion", &dir).unwrap_err();
    assert!(matches!(e, Error::Checksum { .. }), "{e}");
    let m = msg(e);
    let expected = known_file("semeion/semeion.data").unwrap().sha256.unwrap();
    assert!(m.contains("semeion/semeion.data"), "{m}");
    assert!(
        m.contains(expected) && m.contains(&sha256_hex(line.as_bytes())),
        "{m}"
    );
    assert!(m.contains("digits data fetch"), "{m}");
    // The same content read as a user file is accepted: only known files are verified.
    assert_eq!(
        semeion::read_semeion(&dir.join("semeion/semeion.data"))
            .unwrap()
            .labels,
        vec![2]
    );
}

#[test]
fn mirror_problems_name_the_file() {
    let data = temp_dir("mirror-data");
    let mirror = temp_dir("mirror-src");
    // A mirror without the files: the first required one is named, with what to do.
    let m = msg(fetch(&data, Some(&*mirror), false).unwrap_err());
    assert!(
        m.contains("mnist/train-images-idx3-ubyte.gz") && m.contains("lacks"),
        "{m}"
    );
    assert!(m.contains("DIGITS_DATA_MIRROR"), "{m}");

    // A tampered copy in the mirror is refused and never installed.
    let tampered = gz(b"not the USPS test set\n");
    write(&mirror.join("usps/zip.test.gz"), &tampered);
    let file = known_file("usps/zip.test.gz").unwrap();
    let e = fetch_file(&data, file, Some(&*mirror), false).unwrap_err();
    assert!(matches!(e, Error::Checksum { .. }), "{e}");
    let m = msg(e);
    assert!(m.contains("usps/zip.test.gz"), "{m}");
    assert!(m.contains(file.sha256.unwrap()), "{m}");
    assert!(m.contains(&sha256_hex(b"not the USPS test set\n")), "{m}");
    assert!(!data.join("usps/zip.test.gz").exists());
}

#[test]
fn truncated_idx_says_expected_and_actual_bytes() {
    let dir = temp_dir("trunc");
    let images = dir.join("x-images-idx3-ubyte");
    write(&images, &idx_images(3, 5, 4, 3 * 20)[..50]);
    write(&dir.join("x-labels-idx1-ubyte"), &idx_labels(&[1, 2, 3]));
    let spec = format!("idx:{}", images.display());
    let m = msg(load_raw(&spec, &dir).unwrap_err());
    assert!(
        m.contains("x-images-idx3-ubyte") && m.contains("truncated"),
        "{m}"
    );
    assert!(
        m.contains("= 76 bytes") && m.contains("has 50 bytes"),
        "{m}"
    );

    // A truncated MNIST file points to the fetch command.
    let data = temp_dir("trunc-mnist");
    write(
        &data.join("mnist/train-images-idx3-ubyte"),
        &idx_images(60_000, 28, 28, 1000),
    );
    let m = msg(load_domain("mnist-train", &data, Framing::Resize).unwrap_err());
    assert!(
        m.contains("truncated") && m.contains("47040016 bytes") && m.contains("has 1016"),
        "{m}"
    );
    assert!(m.contains("re-run `digits data fetch`"), "{m}");
}

#[test]
fn wrong_magic_idx_is_named() {
    let dir = temp_dir("magic");
    let images = dir.join("a.idx");
    let labels = dir.join("b.idx");
    write(&images, &idx_labels(&[1, 2]));
    write(&labels, &idx_labels(&[1, 2]));
    let m = msg(load_raw(
        &format!("idx:{},{}", images.display(), labels.display()),
        &dir,
    )
    .unwrap_err());
    assert!(
        m.contains("a.idx") && m.contains("magic number 0x00000801, expected 0x00000803"),
        "{m}"
    );
    // Gzip'd user files are read too, and checked the same way.
    let gzipped = dir.join("c-images-idx3-ubyte.gz");
    let mut junk = idx_images(1, 2, 2, 4);
    junk[3] = 0x99;
    write(&gzipped, &gz(&junk));
    write(&dir.join("c-labels-idx1-ubyte.gz"), &gz(&idx_labels(&[4])));
    let m = msg(load_raw(&format!("idx:{}", gzipped.display()), &dir).unwrap_err());
    assert!(m.contains("magic number 0x00000899"), "{m}");
}

#[test]
fn idx_count_mismatch_and_label_range() {
    let dir = temp_dir("count");
    let images = dir.join("d-images-idx3-ubyte");
    write(&images, &idx_images(3, 10, 10, 300));
    write(&dir.join("d-labels-idx1-ubyte"), &idx_labels(&[1, 2]));
    let spec = format!("idx:{}", images.display());
    let m = msg(load_raw(&spec, &dir).unwrap_err());
    assert!(
        m.contains("holds 2 labels") && m.contains("holds 3 images"),
        "{m}"
    );

    write(&dir.join("d-labels-idx1-ubyte"), &idx_labels(&[1, 2, 11]));
    let m = msg(load_raw(&spec, &dir).unwrap_err());
    assert!(
        m.contains("d-labels-idx1-ubyte") && m.contains("label 11 at index 2"),
        "{m}"
    );

    // And a good pair of a non-MNIST size loads and frames.
    write(&dir.join("d-labels-idx1-ubyte"), &idx_labels(&[1, 2, 9]));
    let d = load_domain(&spec, &dir, Framing::MnistFrame).unwrap();
    assert_eq!((d.len(), d.width, d.height), (3, 28, 28));
    assert_eq!(d.labels, vec![1, 2, 9]);
}

#[test]
fn malformed_usps_lines_report_line_numbers_in_both_renderings() {
    let dir = temp_dir("usps");
    let esl = dir.join("zip.bad.gz");
    let text = esl_line("3.0000", 256) + &esl_line("4.0000", 256) + &esl_line("5.0000", 250);
    write(&esl, &gz(text.as_bytes()));
    let m = msg(usps::read_usps_esl(&esl, "t").unwrap_err());
    assert!(
        m.contains("zip.bad.gz") && m.contains("line 3: expected 256 pixel values"),
        "{m}"
    );
    let text = esl_line("3.0000", 256) + &esl_line("12.0000", 256);
    write(&esl, &gz(text.as_bytes()));
    let m = msg(usps::read_usps_esl(&esl, "t").unwrap_err());
    assert!(m.contains("line 2: bad label `12.0000`"), "{m}");
    let text = esl_line("3.0000", 256).replace(" 0.5000", " 1.7500");
    write(&esl, &gz(text.as_bytes()));
    let m = msg(usps::read_usps_esl(&esl, "t").unwrap_err());
    assert!(
        m.contains("line 1: value 1.75 at position 1 is outside [-1, 1]"),
        "{m}"
    );

    let lib = dir.join("usps.bad.bz2");
    let text =
        libsvm_line("1") + &libsvm_line("10") + &libsvm_line("4").replace(" 17:-0.999", " 17:oops");
    write(&lib, &bz2(text.as_bytes()));
    let m = msg(usps::read_usps_libsvm(&lib, "t").unwrap_err());
    assert!(
        m.contains("usps.bad.bz2") && m.contains("line 3: unparsable number `oops` at feature 17"),
        "{m}"
    );
    let text = libsvm_line("1") + &libsvm_line("11");
    write(&lib, &bz2(text.as_bytes()));
    let m = msg(usps::read_usps_libsvm(&lib, "t").unwrap_err());
    assert!(m.contains("line 2: bad label `11`"), "{m}");

    // The optional, unverified LIBSVM training file is parsed in place and its errors
    // say where to get a fresh copy.
    let data = temp_dir("usps-train");
    let text = libsvm_line("2") + &libsvm_line("7").replace(" 256:-0.999", " 256:-3");
    write(&data.join("usps/usps.bz2"), &bz2(text.as_bytes()));
    let m = msg(load_raw("usps-train", &data).unwrap_err());
    assert!(m.contains("line 2: value -3 at feature 256"), "{m}");
    assert!(
        m.contains("download a fresh copy from https://www.csie.ntu.edu.tw"),
        "{m}"
    );
    write(
        &data.join("usps/usps.bz2"),
        &bz2(libsvm_line("2").as_bytes()),
    );
    let d = load_domain("usps-train", &data, Framing::Resize).unwrap();
    assert_eq!((d.labels.clone(), d.width), (vec![1], 28));
}

#[test]
fn malformed_semeion_mfeat_optdigits_records_report_line_numbers() {
    let dir = temp_dir("extra");

    let good = format!("{}0 0 0 0 0 0 0 0 0 1\r\n", "0.0000 ".repeat(256));
    let bad = format!("{}0 0 0 0 0 0 0 0 0 1\r\n", "0.0000 ".repeat(255));
    let path = dir.join("semeion.data");
    write(&path, format!("{good}{good}{bad}").as_bytes());
    let m = msg(semeion::read_semeion(&path).unwrap_err());
    assert!(
        m.contains("semeion.data") && m.contains("line 3: expected 266 fields"),
        "{m}"
    );

    let row = |v: &str| std::iter::repeat_n(format!("{v:>3}"), 240).collect::<String>();
    let mut rows: Vec<String> = (0..2000).map(|_| row("3")).collect();
    rows[1234] = row("9");
    let path = dir.join("mfeat-pix.txt");
    write(&path, rows.join("\n").as_bytes());
    let m = msg(mfeat::read_mfeat(&path).unwrap_err());
    assert!(
        m.contains("mfeat-pix.txt") && m.contains("line 1235: value 1 is `9`"),
        "{m}"
    );

    let mut text = String::from(
        "BU handwritten digit database\nTest file\n\nentwidth = 32\nentheight = 32\nntot = 2\n",
    );
    text.push_str(&"x = 0\n".repeat(15));
    for label in [" 4", " x"] {
        text.push_str(&format!("{}\n", "0".repeat(32)).repeat(32));
        text.push_str(label);
        text.push('\n');
    }
    let path = dir.join("optdigits-orig.bad");
    write(&path, text.as_bytes());
    let m = msg(optdigits::read_optdigits(&path, "o").unwrap_err());
    assert!(
        m.contains("optdigits-orig.bad") && m.contains("line 87: label line is `x`"),
        "{m}"
    );
}

fn png(w: u32, h: u32, fill: u8) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(&vec![fill; (w * h) as usize]).unwrap();
    }
    out
}

/// A `w`×`h` grey PNG of `paper` with a vertical bar of `ink` in its middle fifth.
fn bar_png(w: u32, h: u32, paper: u8, ink: u8) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().unwrap();
        let data: Vec<u8> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let on = (2 * w / 5..3 * w / 5).contains(&x) && (h / 6..5 * h / 6).contains(&y);
                if on {
                    ink
                } else {
                    paper
                }
            })
            .collect();
        wr.write_image_data(&data).unwrap();
    }
    out
}

#[test]
fn png_folder_with_mixed_sizes_frames_and_names_what_it_cannot_read() {
    let dir = temp_dir("png");
    write(&dir.join("1/a.png"), &png(20, 24, 200));
    write(&dir.join("4/b.png"), &png(20, 24, 255));
    write(&dir.join("7/c.png"), &png(24, 20, 255));
    let spec = format!("png:{}", dir.display());
    // Framed, sizes may differ; at its own size the set has none, and says so.
    let d = load_domain(&spec, Path::new("unused"), Framing::Resize).unwrap();
    assert_eq!((d.len(), d.width, d.height), (3, 28, 28));
    let m = msg(load_raw(&spec, Path::new("unused")).unwrap_err());
    assert!(
        m.contains("mixes image sizes") && m.contains("24x20") && m.contains("20x24"),
        "{m}"
    );

    // An unreadable file is left out (with a warning on stderr); the others are read.
    write(&dir.join("7/c.png"), b"\x89PNG garbage");
    let d = load_domain(&spec, Path::new("unused"), Framing::MnistFrame).unwrap();
    assert_eq!(d.labels, vec![1, 4]);

    // Polarity per image: dark ink on paper and light ink on black frame alike.
    write(&dir.join("1/a.png"), &bar_png(20, 30, 230, 20));
    write(&dir.join("4/b.png"), &bar_png(40, 60, 0, 255));
    std::fs::remove_file(dir.join("7/c.png")).unwrap();
    let d = load_domain(&spec, Path::new("unused"), Framing::MnistFrame).unwrap();
    assert_eq!(d.labels, vec![1, 4]);
    let mad = digits::data::pixels::mean_abs_difference(d.image(0), d.image(1));
    assert!(mad < 0.05, "{mad}");
    assert!(d.image(0).iter().any(|&v| v > 0.9) && d.image(0)[0] == 0.0);
}

#[test]
fn unknown_names_and_framings_list_the_choices() {
    let m = msg(load_raw("kmnist", Path::new(".")).unwrap_err());
    assert!(
        m.contains("mnist-test") && m.contains("optdigits") && m.contains("png:DIR"),
        "{m}"
    );
    let m = msg("bilinear".parse::<Framing>().unwrap_err());
    assert!(m.contains("resize") && m.contains("mnist-frame"), "{m}");
    assert_eq!(Split::Test.to_string(), "test");
}
