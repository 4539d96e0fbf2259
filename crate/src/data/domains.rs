//! Data sets by name, as the command line and the experiments refer to them.

use std::path::Path;

use super::dataset::{Dataset, Split};
use super::frame::{to_mnist_frame, Framing};
use super::idx::{load_idx_pair, resolve_spec};
use super::mfeat::load_mfeat;
use super::mnist::load_mnist;
use super::optdigits::{load_optdigits, OptdigitsPart};
use super::png_dir::load_png_dir;
use super::semeion::load_semeion;
use super::usps::{
    load_usps_esl, load_usps_esl_all, load_usps_libsvm_test, load_usps_libsvm_train,
};
use crate::error::{Error, Result};

/// The built-in data set names. `usps-train` needs the optional LIBSVM training file
/// (`data/usps/usps.bz2`), which `digits data fetch` does not provide.
pub const DOMAINS: &[&str] = &[
    "mnist-train",
    "mnist-test",
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

/// A data set in its native size and ink-bright [0, 1] scale. Besides [`DOMAINS`],
/// `idx:PATH` reads a user IDX pair (see [`idx`](super::idx)) and `png:DIR` a folder of
/// PNG files (see [`png_dir`](super::png_dir)).
pub fn load_raw(spec: &str, data_dir: &Path) -> Result<Dataset> {
    if let Some(rest) = spec.strip_prefix("idx:") {
        let (images, labels) = resolve_spec(rest)?;
        return load_idx_pair(&images, &labels, spec);
    }
    if let Some(dir) = spec.strip_prefix("png:") {
        if dir.is_empty() {
            return Err(Error::invalid("png: needs a folder, as in png:my-digits/"));
        }
        return load_png_dir(Path::new(dir), spec);
    }
    match spec {
        "mnist-train" => load_mnist(data_dir, Split::Train),
        "mnist-test" => load_mnist(data_dir, Split::Test),
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
            "unknown data set `{spec}`; valid names: {}, idx:PATH, png:DIR",
            DOMAINS.join(", ")
        ))),
    }
}

/// A data set in MNIST's 28×28 frame. MNIST itself is returned as it is under either
/// framing: it is the frame's definition, and re-framing it would only blur it.
pub fn load_domain(spec: &str, data_dir: &Path, framing: Framing) -> Result<Dataset> {
    let raw = load_raw(spec, data_dir)?;
    if spec.starts_with("mnist-") {
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
            e.contains("idx:PATH") && e.contains("png:DIR") && !e.contains('\n'),
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
    }
}
