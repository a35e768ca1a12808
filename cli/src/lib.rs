//! # softreg-cli: the readers and helpers of the `softreg` command line
//!
//! The `softreg` binary of this package trains the [`softreg`] core's
//! softmax regression on Fashion-MNIST, evaluates it and classifies PNG
//! images with it. This library is the part of the binary that reads and
//! writes files and fetches the data, so that the fuzz targets, the
//! whole-run benchmark, the tests and the examples run the very code the
//! binary runs:
//!
//! - [`dataset`]: where the data lives, and its four IDX files opened raw
//!   (memory-mapped) or from `.gz`, decompressed at most as far as the IDX
//!   header promises;
//! - [`download`]: fetching the files, checked against their SHA-256;
//! - [`png_input`]: a PNG read as a 28x28 Fashion-MNIST image;
//! - [`atomic_file`]: files that appear complete under their name or not at
//!   all;
//! - [`run_dir`]: a run directory owned by exactly one run;
//! - [`cleanup`] and [`signals`]: what an interrupted run removes;
//! - [`console`]: printing that never panics;
//! - [`regular_file`]: opening only regular files, so a FIFO or a device
//!   cannot hang a read or fill memory.
//!
//! Library users who want only the model depend on [`softreg`] itself,
//! which needs none of this package's dependencies.
#![deny(missing_docs)]

pub mod atomic_file;
pub mod cleanup;
pub mod console;
pub mod dataset;
pub mod download;
pub mod png_input;
pub mod regular_file;
pub mod run_dir;
pub mod signals;
