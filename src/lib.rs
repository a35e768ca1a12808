//! # softreg: softmax regression from scratch
//!
//! A `no_std`, allocation-free implementation of the "Softmax Regression
//! Implementation from Scratch" chapter of *Dive into Deep Learning*, with the
//! chapter's maths written as hand-vectorised SIMD kernels (the [`wide`] crate)
//! over fixed-size arrays.
//!
//! The chapter's pieces map onto the modules one to one:
//!
//! | chapter                               | here                                        |
//! |---------------------------------------|---------------------------------------------|
//! | `X.sum(0, keepdims=True)`             | [`kernels::sum::sum_axis0`]                 |
//! | `softmax(X)`                          | [`kernels::softmax::softmax_rows`]          |
//! | `cross_entropy(y_hat, y)`             | [`kernels::cross_entropy::cross_entropy`]   |
//! | `tf.matmul(X, W) + b`                 | [`kernels::matmul::logits`]                 |
//! | the gradient TensorFlow derives       | [`kernels::cross_entropy::softmax_cross_entropy_grad`], [`kernels::matmul::accumulate_weight_gradient`] |
//! | `SoftmaxRegressionScratch`            | [`model::SoftmaxRegression`]                |
//! | `d2l.FashionMNIST` (IDX files, resize)| [`idx`], [`resize`], [`fashion_mnist`]      |
//!
//! Nothing here needs an allocator: batches are slices of fixed-size rows
//! (`&[[f32; IN]]`), the model is two arrays, and a trained model can be used
//! straight from the bytes of a model file ([`model_file::view`]), e.g. from
//! flash via `include_bytes!`.
//!
//! The `softreg` command line, which trains the model on Fashion-MNIST, is
//! another package (`softreg-cli`), so this crate's only dependencies are
//! `wide`, `bytemuck` and `libm`. Feature `std` (on by default) adds
//! multi-threaded training; firmware users depend on the crate with
//! `default-features = false` and get the `no_std` core alone.
#![no_std]
#![deny(missing_docs)]
// The exceptions are the two `core::arch` levels in `simd` and a prefetch
// hint there, each block with its `SAFETY:` argument.
#![deny(unsafe_code)]

#[cfg(any(feature = "std", test))]
extern crate std;

// First, so that its test macro is in scope in the modules below.
#[macro_use]
pub mod simd;

pub mod fashion_mnist;
pub mod idx;
pub mod inference;
pub mod kernels;
pub mod model;
pub mod model_file;
pub mod pixel_model;
pub mod quantized;
pub mod resize;
pub mod rng;
#[cfg(feature = "std")]
pub mod train;

#[cfg(feature = "std")]
mod barrier;

/// Whether `std::thread::spawn` works on this target: not on wasm32
/// without the `atomics` feature (wasm32-wasip1, a browser's
/// wasm32-unknown-unknown), where training and evaluation then run every
/// shard on the calling thread, with the same results.
#[cfg(feature = "std")]
const CAN_SPAWN_THREADS: bool = !cfg!(all(target_family = "wasm", not(target_feature = "atomics")));

pub use model::{Evaluation, ModelView, SoftmaxRegression};
pub use rng::Rng;
pub use simd::Isa;
