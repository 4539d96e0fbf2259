//! Data: fetching, verifying and reading the digit sets (work in progress).

pub mod dataset;
