//! Data: fetching, verifying and reading the digit sets, and bringing them into MNIST's
//! 28×28 frame.
//!
//! Every loader returns a [`Dataset`] with ink bright in [0, 1], whatever the source's
//! convention. The data directory (`data/` by default) mirrors the layout of the verified
//! copies: `mnist/`, `usps/`, `semeion/`, `mfeat/`, `optdigits/`; [`checksums::FILES`]
//! lists every file with the sha256 of its decompressed content, which both
//! [`fetch()`] and the loaders check.
//!
//! - [`dataset`]: the `Dataset` type, subsets and splits, provenance strings.
//! - [`unlabeled`]: images without labels (`Unlabeled`), the target of adaptation.
//! - [`raw`]: images of any size and polarity (`RawImage`, `RawSet`), read from PNG or JPEG
//!   under a pixel limit; framing turns a `RawSet` into a 28×28 `Dataset`.
//! - [`checksums`], [`fetch`](mod@fetch): the file table, `digits data fetch` and `check`.
//! - [`idx`], [`mnist`](mod@self::mnist), [`usps`], [`semeion`], [`mfeat`], [`optdigits`],
//!   [`png_dir`]: one reader per format.
//! - [`mnist_paper`]: MNIST's test digits rendered as scans or photos on paper.
//! - [`paper`]: finding the ink on paper (background, polarity, noise, specks).
//! - [`pixels`]: resampling and the ink threshold, shared by [`paper`] and [`frame`].
//! - [`frame`]: `resize` and `mnist-frame` framings.
//! - [`domains`]: data sets by name.

pub mod checksums;
pub mod dataset;
pub mod domains;
mod download;
pub mod fetch;
pub mod frame;
pub mod idx;
pub mod mfeat;
pub mod mnist;
pub mod mnist_paper;
pub mod optdigits;
pub mod paper;
pub mod pixels;
pub mod png_dir;
pub mod raw;
pub mod semeion;
pub mod synthetic;
#[cfg(test)]
mod testutil;
mod text;
pub mod unlabeled;
pub mod usps;

pub use self::dataset::{Dataset, Split};
pub use self::domains::{load_domain, load_raw, load_raw_set, DOMAINS};
pub use self::fetch::{check, fetch, mirror_from_env, FetchReport, FileState, FileStatus};
pub use self::frame::{to_mnist_frame, Framing};
pub use self::mnist::load_mnist;
pub use self::raw::{RawImage, RawSet};
pub use self::unlabeled::Unlabeled;
