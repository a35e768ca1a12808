//! The chapter's numerical kernels, hand-vectorised with [`wide`].
//!
//! Every kernel works on rows of a fixed, compile-time width (`[f32; N]`), so
//! the compiler sees the exact trip counts; the number of rows (the batch) is a
//! run-time slice length so the last, partial minibatch of an epoch needs no
//! special code. Each kernel has a plain scalar twin in [`reference`], which is
//! what the tests and benches compare against.
//!
//! The vector type is [`wide::f32x16`]: 16 lanes, one AVX-512 register when
//! compiled with `avx512f` (see `.cargo/config.toml`), two AVX2 registers,
//! four SSE or NEON registers, or plain scalar code on a Cortex-M, chosen by
//! `wide` at compile time.

pub mod cross_entropy;
pub mod matmul;
pub mod reference;
pub mod softmax;
pub mod sum;

use wide::f32x16;

/// Lanes in the SIMD vector every kernel is written with.
pub const LANES: usize = 16;

/// Loads 16 consecutive values starting at `s[0]`.
///
/// # Panics
/// If `s` has fewer than 16 values.
#[inline(always)]
pub(crate) fn load(s: &[f32]) -> f32x16 {
    let array: [f32; LANES] = s[..LANES].try_into().unwrap();
    f32x16::new(array)
}

/// Loads up to 16 values, filling the lanes past the end of `s` with `fill`.
#[inline(always)]
pub(crate) fn load_partial(s: &[f32], fill: f32) -> f32x16 {
    let mut array = [fill; LANES];
    let n = s.len().min(LANES);
    array[..n].copy_from_slice(&s[..n]);
    f32x16::new(array)
}

/// Stores the first `s.len()` (at most 16) lanes of `v` into `s`.
#[inline(always)]
pub(crate) fn store_partial(v: f32x16, s: &mut [f32]) {
    let n = s.len().min(LANES);
    s[..n].copy_from_slice(&v.to_array()[..n]);
}
