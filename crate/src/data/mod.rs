//! Data: fetching, verifying and reading the digit sets (work in progress).

pub mod checksums;
pub mod dataset;
pub mod fetch;
pub mod idx;
pub mod mnist;
mod text;
pub mod usps;
