//! Data: fetching, verifying and reading digit sets (owned by the data work in progress).
pub mod dataset;
pub use dataset::{Dataset, Split};
