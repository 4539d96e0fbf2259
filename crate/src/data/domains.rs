//! Data sets by name, as the command line and the experiments refer to them.

use std::path::Path;

use super::dataset::{Dataset, Split};
use super::frame::{to_mnist_frame, Framing};
use super::idx::{load_idx_pair, resolve_spec};
use super::mfeat::load_mfeat;
use super::mnist::load_mnist;
use super::mnist_paper::{render_set, Family};
use super::optdigits::{load_optdigits, OptdigitsPart};
use super::png_dir::load_folder;
use super::raw::RawSet;
use super::semeion::load_semeion;
use super::usps::{
    load_usps_esl, load_usps_esl_all, load_usps_libsvm_test, load_usps_libsvm_train,
};
use crate::error::{Error, Result};

/// The built-in data set names. `usps-train` needs the optional LIBSVM training file
/// (`data/usps/usps.bz2`), which `digits data fetch` does not provide. `mnist-paper` and
/// `mnist-paper-dev` are made from MNIST's test digits ([`mnist_paper`](super::mnist_paper)):
/// the held-out family, the study's test domain, and the development family the framer may
/// be tuned on. Their images differ in size, so they are only loaded framed.
pub const DOMAINS: &[&str] = &[
    "mnist-train",
    "mnist-test",
    "mnist-paper",
    "mnist-paper-dev",
    "usps-test",
    "usps-train",
    "usps-esl-test",
    "usps-esl-train",
    "usps-esl-all",
    "semeion",
    "mfeat",
    "optdigits",
    "optdigits-train",
];

/// The folder of a `png:DIR` or `dir:DIR` spec; `None` for any other spec.
fn folder_of(spec: &str) -> Option<&str> {
    spec.strip_prefix("png:")
        .or_else(|| spec.strip_prefix("dir:"))
}

/// Whether a spec names a set of images that differ in size or polarity (a folder of
/// files, `mnist-paper`, `mnist-paper-dev`), read with [`load_raw_set`] and framed per image.
pub fn is_raw_set(spec: &str) -> bool {
    Family::of_spec(spec).is_some() || folder_of(spec).is_some()
}

/// A set of images of any sizes and polarities: `png:DIR`/`dir:DIR` (see
/// [`png_dir`](super::png_dir)), `mnist-paper` or `mnist-paper-dev`.
pub fn load_raw_set(spec: &str, data_dir: &Path) -> Result<RawSet> {
    if let Some(dir) = folder_of(spec) {
        if dir.is_empty() {
            return Err(Error::invalid(format!(
                "{spec} needs a folder, as in dir:my-digits/"
            )));
        }
        return load_folder(Path::new(dir), spec);
    }
    if let Some(family) = Family::of_spec(spec) {
        let mnist = load_mnist(data_dir, Split::Test)?;
        return render_set(&mnist, family, family.seed(), spec);
    }
    Err(Error::invalid(format!(
        "`{spec}` is a data set of one image size; load it with load_raw or load_domain"
    )))
}

/// A data set in its native size and ink-bright [0, 1] scale. Besides [`DOMAINS`],
/// `idx:PATH` reads a user IDX pair (see [`idx`](super::idx)) and `png:DIR` (or `dir:DIR`)
/// a folder of PNG and JPEG files, which must then have one size (see
/// [`png_dir`](super::png_dir)). `mnist-paper` and `mnist-paper-dev` have no native size:
/// load them framed.
pub fn load_raw(spec: &str, data_dir: &Path) -> Result<Dataset> {
    if let Some(rest) = spec.strip_prefix("idx:") {
        let (images, labels) = resolve_spec(rest)?;
        return load_idx_pair(&images, &labels, spec);
    }
    if folder_of(spec).is_some() {
        return load_raw_set(spec, data_dir)?.native();
    }
    match spec {
        "mnist-train" => load_mnist(data_dir, Split::Train),
        "mnist-test" => load_mnist(data_dir, Split::Test),
        "mnist-paper" | "mnist-paper-dev" => load_raw_set(spec, data_dir)?.native(),
        "usps-test" => load_usps_libsvm_test(data_dir),
        "usps-train" => load_usps_libsvm_train(data_dir),
        "usps-esl-test" => load_usps_esl(data_dir, Split::Test),
        "usps-esl-train" => load_usps_esl(data_dir, Split::Train),
        "usps-esl-all" => load_usps_esl_all(data_dir),
        "semeion" => load_semeion(data_dir),
        "mfeat" => load_mfeat(data_dir),
        "optdigits" => load_optdigits(data_dir, OptdigitsPart::WriterIndependent),
        "optdigits-train" => load_optdigits(data_dir, OptdigitsPart::Train),
        _ => Err(Error::invalid(format!(
            "unknown data set `{spec}`; valid names: {}, idx:PATH, png:DIR (or dir:DIR)",
            DOMAINS.join(", ")
        ))),
    }
}

/// Whether a domain is MNIST in its own frame, which framing leaves as it is.
pub fn is_mnist_frame(spec: &str) -> bool {
    matches!(spec, "mnist-train" | "mnist-test")
}

/// A data set in MNIST's 28×28 frame. MNIST itself is returned as it is under either
/// framing: it is the frame's definition, and re-framing it would only blur it. Sets of
/// mixed sizes ([`is_raw_set`]) are framed image by image, polarity decided per image.
pub fn load_domain(spec: &str, data_dir: &Path, framing: Framing) -> Result<Dataset> {
    if is_raw_set(spec) {
        return load_raw_set(spec, data_dir)?.frame(framing);
    }
    let raw = load_raw(spec, data_dir)?;
    if is_mnist_frame(spec) {
        return Ok(raw);
    }
    Ok(to_mnist_frame(&raw, framing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let e = load_raw("usps", Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        for d in DOMAINS {
            assert!(e.contains(d), "{e}");
        }
        assert!(
            e.contains("idx:PATH")
                && e.contains("png:DIR")
                && e.contains("dir:DIR")
                && !e.contains('\n'),
            "{e}"
        );
    }

    #[test]
    fn every_builtin_name_is_routed() {
        // An empty data dir: each name must fail with "not found", never "unknown".
        let dir = std::env::temp_dir().join(format!("digits-domains-unit-{}", std::process::id()));
        for d in DOMAINS {
            let e = load_domain(d, &dir, Framing::Resize).unwrap_err();
            assert!(matches!(e, Error::Missing { .. }), "{d}: {e}");
        }
        assert!(load_raw("png:", &dir).is_err());
        assert!(load_domain("dir:", &dir, Framing::Resize).is_err());
    }
}
