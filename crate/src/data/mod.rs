//! Data: fetching, verifying and reading digit sets (owned by the data work in progress).
