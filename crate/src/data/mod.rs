//! Data: fetching, verifying and reading the digit sets (work in progress).

pub mod checksums;
pub mod dataset;
pub mod fetch;
pub mod frame;
pub mod idx;
pub mod mfeat;
pub mod mnist;
pub mod optdigits;
pub mod png_dir;
pub mod semeion;
mod text;
pub mod usps;
