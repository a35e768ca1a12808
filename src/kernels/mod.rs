//! The chapter's numerical kernels, hand-vectorised with [`wide`].
//!
//! Every kernel works on rows of a fixed, compile-time width (`[f32; N]`), so
//! the compiler sees the exact trip counts; the number of rows (the batch) is a
//! run-time slice length so the last, partial minibatch of an epoch needs no
//! special code. Each kernel has a plain scalar twin in [`mod@reference`], which is
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

use wide::{f32x16, i16x16, i32x16, u8x16};

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

/// An element type the GEMM kernels read their input rows in: `f32` itself,
/// or a raw `u8` pixel that is widened to `f32` on the fly (4x fewer bytes to
/// move; the 1/255 scale is applied once per result, not per element).
pub(crate) trait Element: Copy {
    /// [`load`] for this element type: 16 consecutive values as `f32` lanes.
    fn load(s: &[Self]) -> f32x16;
    /// [`load_partial`] with zero fill for this element type.
    fn load_partial(s: &[Self]) -> f32x16;
}

impl Element for f32 {
    #[inline(always)]
    fn load(s: &[f32]) -> f32x16 {
        load(s)
    }

    #[inline(always)]
    fn load_partial(s: &[f32]) -> f32x16 {
        load_partial(s, 0.0)
    }
}

impl Element for u8 {
    /// Zero-extends 16 bytes to `i32` lanes and converts them to `f32`: with
    /// AVX-512 one `vpmovzxbd` (with the load folded in) and one `vcvtdq2ps`
    /// (`wide` goes through `i16x16`; LLVM fuses the two extensions).
    #[inline(always)]
    fn load(s: &[u8]) -> f32x16 {
        let bytes: [u8; LANES] = s[..LANES].try_into().unwrap();
        widen(u8x16::new(bytes))
    }

    #[inline(always)]
    fn load_partial(s: &[u8]) -> f32x16 {
        let mut bytes = [0; LANES];
        let n = s.len().min(LANES);
        bytes[..n].copy_from_slice(&s[..n]);
        widen(u8x16::new(bytes))
    }
}

/// The rows of `X` a GEMM kernel reads: a contiguous block (`[[T; N]]`), or
/// rows picked out of a larger matrix by index ([`Picked`]).
pub trait Rows<T, const N: usize> {
    /// Number of rows.
    fn count(&self) -> usize;
    /// Row `i`.
    ///
    /// # Panics
    /// If `i >= self.count()` (or a picked index is out of range).
    fn row(&self, i: usize) -> &[T; N];
}

impl<T, const N: usize> Rows<T, N> for [[T; N]] {
    #[inline(always)]
    fn count(&self) -> usize {
        self.len()
    }

    #[inline(always)]
    fn row(&self, i: usize) -> &[T; N] {
        &self[i]
    }
}

/// Rows `from[rows[0]], from[rows[1]], ...`: a shuffled minibatch read where
/// it lies (e.g. in the memory-mapped training images) instead of being
/// copied into a block first. Rows scattered over tens of megabytes miss
/// every cache, so the caller requests them ahead with
/// [`Picked::prefetch_all`].
#[derive(Clone, Copy, Debug)]
pub struct Picked<'a, T, const N: usize> {
    /// The whole matrix.
    pub from: &'a [[T; N]],
    /// Which of its rows, in order.
    pub rows: &'a [u32],
}

impl<T, const N: usize> Rows<T, N> for Picked<'_, T, N> {
    #[inline(always)]
    fn count(&self) -> usize {
        self.rows.len()
    }

    #[inline(always)]
    fn row(&self, i: usize) -> &[T; N] {
        &self.from[self.rows[i] as usize]
    }
}

impl<T, const N: usize> Picked<'_, T, N> {
    /// Asks for all the rows to be brought into the L2 cache, ahead of a
    /// later pass over them, while this core computes on something else (the
    /// hardware does not guess shuffled rows). Prefetching is only a hint:
    /// rows that do not exist are skipped, and on targets other than x86_64
    /// this does nothing.
    pub fn prefetch_all(&self) {
        for &r in self.rows {
            if let Some(row) = self.from.get(r as usize) {
                prefetch_into_l2(row);
            }
        }
    }
}

/// Asks for a block of rows to be brought into the L2 cache ahead of a pass
/// over it, like [`Picked::prefetch_all`]. The hardware prefetcher streams
/// long runs of memory, but a kernel reading a few 784-byte rows side by
/// side gives it only short runs, and it falls behind.
pub fn prefetch_block<T, const N: usize>(rows: &[[T; N]]) {
    for row in rows {
        prefetch_into_l2(row);
    }
}

/// Asks the memory system for every cache line of `value`, into L2, without
/// waiting for it. A plain load would do the same but stall retirement until
/// the line arrives, which is exactly the wait we want to hide; L2 rather
/// than L1, so the rows do not evict what the current pass is using.
#[inline(always)]
fn prefetch_into_l2<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = (value as *const T).cast::<i8>();
        for offset in (0..core::mem::size_of::<T>()).step_by(64) {
            // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has,
            // and a prefetch never faults or changes memory. `offset` stays
            // inside `value`, so the pointer arithmetic stays in bounds.
            #[allow(unsafe_code)]
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T1 }>(
                    start.add(offset),
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// `u8` lanes to the same values as `f32` lanes (exact: every `u8` is an `f32`).
#[inline(always)]
fn widen(v: u8x16) -> f32x16 {
    f32x16::from_i32x16(i32x16::from(i16x16::from(v)))
}
