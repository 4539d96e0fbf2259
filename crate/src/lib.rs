//! `digits`: the support library of the MLP-vs-CNN handwritten-digit study.
//!
//! - [`data`]: fetching, verifying and reading MNIST, USPS and the other digit sets, and
//!   bringing them into MNIST's 28×28 frame.
//! - [`models`]: the published MLP and CNN as typed-shape dfdx modules, with the
//!   convolution and pooling ops we had to write ourselves for stable Rust.
//! - [`train`] and [`eval`]: the training loop (Adam, early stopping, checkpoints that
//!   resume) and the measurements taken on any data set.
//! - [`augment`]: random rotation, shift, zoom, elastic distortion and stroke thickness for
//!   training batches.
//! - [`plot`]: the study's figures as PNG (and SVG), for `img/` and inline in evcxr notebooks.
//! - [`bench`](mod@bench) and [`profile`]: how fast training runs, and where a step's time goes.
//! - [`tune`]: hyperparameter search (random search and Hyperband) over runtime-sized
//!   variants of both models, selecting on the validation split only.

pub mod augment;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod eval;
pub mod figures;
pub mod history;
pub mod io;
pub mod models;
pub mod optim;
pub mod plot;
pub mod probe;
pub mod profile;
pub mod report;
pub mod run;
pub mod runtime;
pub mod study;
pub mod train;
pub mod tune;

pub use error::{Error, Result};
