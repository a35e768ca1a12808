//! The chapter's numerical kernels, hand-vectorised.
//!
//! Every kernel works on rows of a fixed, compile-time width (`[f32; N]`), so
//! the compiler sees the exact trip counts; the number of rows (the batch) is a
//! run-time slice length so the last, partial minibatch of an epoch needs no
//! special code. Each kernel has a plain scalar twin in [`mod@reference`], which is
//! what the tests and benches compare against.
//!
//! Each kernel is written once over the vectors of [`crate::simd`] and runs at
//! the level [`crate::simd::Isa::current`] picks: its public function is a thin
//! dispatcher, and the generic body (`*_with`, crate-private) is what the
//! training loop inlines into its own per-level code.

pub mod cross_entropy;
pub mod matmul;
pub mod naive_softmax;
pub mod reference;
pub mod softmax;
pub mod sum;

use crate::simd;

/// An element type the GEMM kernels read their input rows in: `f32` itself,
/// or a raw `u8` pixel that is widened to `f32` on the fly (4x fewer bytes to
/// move; the 1/255 scale is applied once per result, not per element).
pub trait Element: Copy + load::Load {}

impl Element for f32 {}
impl Element for u8 {}

/// How the kernels load each [`Element`] type into vectors. `Load` is
/// sealed (public in a private module, so nobody outside can name it), and
/// that keeps its use of the crate's own `Simd` private too.
#[allow(private_bounds, private_interfaces)]
mod load {
    use crate::simd::Simd;

    pub trait Load: Copy {
        /// Whether loading converts (`u8` pixels to `f32`), which costs
        /// instructions a plain `f32` load does not.
        const WIDENED: bool;
        /// The first `S::LANES` values of `s` as `f32` lanes.
        fn load<S: Simd>(simd: S, s: &[Self]) -> S::Vector;
        /// Up to `S::LANES` values, the other lanes zero.
        fn load_partial<S: Simd>(simd: S, s: &[Self]) -> S::Vector;
    }

    impl Load for f32 {
        const WIDENED: bool = false;

        #[inline(always)]
        fn load<S: Simd>(simd: S, s: &[f32]) -> S::Vector {
            simd.load(s)
        }

        #[inline(always)]
        fn load_partial<S: Simd>(simd: S, s: &[f32]) -> S::Vector {
            simd.load_partial(s, 0.0)
        }
    }

    impl Load for u8 {
        const WIDENED: bool = true;

        #[inline(always)]
        fn load<S: Simd>(simd: S, s: &[u8]) -> S::Vector {
            simd.load_u8(s)
        }

        #[inline(always)]
        fn load_partial<S: Simd>(simd: S, s: &[u8]) -> S::Vector {
            simd.load_u8_partial(s)
        }
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

/// Rows that a kernel can write, `R` of them at once: where
/// [`matmul::logits_widening_with`] leaves the `u8` rows it widened.
pub(crate) trait RowsMut<T, const N: usize>: Rows<T, N> {
    /// Rows `first..first + R`.
    fn rows_mut<const R: usize>(&mut self, first: usize) -> [&mut [T; N]; R];
}

impl<T, const N: usize> RowsMut<T, N> for [[T; N]] {
    #[inline(always)]
    fn rows_mut<const R: usize>(&mut self, first: usize) -> [&mut [T; N]; R] {
        let block: &mut [[T; N]; R] = (&mut self[first..first + R]).try_into().unwrap();
        block.each_mut()
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
                simd::prefetch_into_l2(row);
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
        simd::prefetch_into_l2(row);
    }
}
