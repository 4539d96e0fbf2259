//! `digits`: the support library of the MLP-vs-CNN handwritten-digit study. The notebooks and
//! the `digits` command call into it and hold no logic of their own.
//!
//! One folder per part, each depending only on the parts above it in this list:
//!
//! - [`data`]: fetching, verifying and reading MNIST, USPS and the other digit sets, and
//!   bringing them into MNIST's 28×28 frame.
//! - [`engine`]: the small neural-network engine on dfdx's tape: the ops, their kernels, the
//!   GEMM they reduce to, and weights as plain data.
//! - [`models`]: the published MLP and CNN as typed-shape dfdx modules, and the runtime-sized
//!   variants the search trains.
//! - [`augment`]: random rotation, shift, zoom, elastic distortion and stroke thickness for
//!   training batches.
//! - [`eval`]: what a model gets right on a data set (accuracy, confusion, confidence,
//!   mistakes), and the accuracy table of several runs.
//! - [`train`]: the training loop (Adam, early stopping), checkpoints that resume exactly, the
//!   history of a run and the run folders.
//! - [`adapt`]: adaptation to another domain from its images alone (class-balanced
//!   self-training), and the folders of adapted runs.
//! - [`search`]: hyperparameter search (random search and Hyperband) over runtime-sized
//!   variants of both models, selecting on the validation split only.
//! - [`study`]: the domain-shift study: every model with several seeds on every domain in both
//!   framings, its statistics and its tables.
//! - [`plot`]: every figure, as PNG (and SVG), for `img/` and inline in evcxr notebooks.
//! - [`predict`]: trained models' answers on users' own image files (`digits predict`).
//! - [`bench`](mod@bench): how fast training runs, and where a step's time goes.
//! - `draw` (with the `draw` feature, part of `cli`): a local web page to draw a digit and
//!   watch the models answer it, resized and framed (`digits draw`).
//!
//! Beside them: [`error`] (one error type whose messages say how to fix the problem), [`io`]
//! (atomic writes), [`lock`] (one process at a time in a run folder) and [`runtime`] (process-wide settings).

pub mod adapt;
pub mod augment;
pub mod bench;
pub mod data;
#[cfg(feature = "draw")]
pub mod draw;
pub mod engine;
pub mod error;
pub mod eval;
pub mod io;
pub mod lock;
pub mod models;
pub mod notebook;
pub mod plot;
pub mod predict;
pub mod runtime;
pub mod search;
pub mod study;
pub mod train;

pub use error::{Error, Result};
