//! The AVX2 level: eight `f32` lanes in a `__m256`, with FMA, through
//! `core::arch`.
//!
//! The invariant every `unsafe` block here rests on: an [`Avx2`] token is
//! only made by [`Avx2::new`], after checking that the CPU has AVX2 and
//! FMA, and an [`F32x8`] or [`Mask8`] only by a token's methods or by
//! operations on other `F32x8`s. So wherever one exists, the instructions
//! below can run.
#![allow(unsafe_code)]

use super::{Isa, Kernel, Simd, Vector};
use core::arch::x86_64::*;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Sub, SubAssign};

/// Proof that this CPU has AVX2 and FMA.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// The token, if this CPU has AVX2 and FMA.
    #[inline]
    pub(crate) fn new() -> Option<Self> {
        Isa::Avx2.is_available().then_some(Avx2(()))
    }

    /// Runs `kernel` compiled for AVX2 and FMA.
    #[inline]
    pub(crate) fn enter<K: Kernel>(self, kernel: K) -> K::Output {
        // SAFETY: the token exists, so the CPU has the features
        // `run_avx2` is compiled with.
        unsafe { run_avx2(self, kernel) }
    }
}

/// The entry point: everything `kernel.run` inlines is compiled with AVX2
/// and FMA.
#[target_feature(enable = "avx2,fma")]
fn run_avx2<K: Kernel>(token: Avx2, kernel: K) -> K::Output {
    kernel.run(token)
}

/// Eight `f32` lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F32x8(__m256);

/// A comparison result: all ones in a lane where it holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mask8(__m256);

impl Simd for Avx2 {
    type Vector = F32x8;
    const LANES: usize = 8;
    const ISA: Isa = Isa::Avx2;

    #[inline(always)]
    fn splat(self, v: f32) -> F32x8 {
        // SAFETY: see the module's invariant.
        F32x8(unsafe { _mm256_set1_ps(v) })
    }

    #[inline(always)]
    fn load(self, s: &[f32]) -> F32x8 {
        let s = &s[..8];
        // SAFETY: see the module's invariant; `s` holds the 8 values read.
        F32x8(unsafe { _mm256_loadu_ps(s.as_ptr()) })
    }

    /// One 8-byte load, zero-extended to `i32` lanes and converted.
    #[inline(always)]
    fn load_u8(self, s: &[u8]) -> F32x8 {
        let s = &s[..8];
        // SAFETY: see the module's invariant; `s` holds the 8 bytes read
        // (`_mm_loadl_epi64` reads 8 bytes and needs no alignment).
        F32x8(unsafe {
            let bytes = _mm_loadl_epi64(s.as_ptr().cast());
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes))
        })
    }
}

impl Vector for F32x8 {
    type Mask = Mask8;

    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: see the module's invariant.
        F32x8(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
    }

    #[inline(always)]
    fn max(self, other: Self) -> Self {
        // SAFETY: see the module's invariant.
        F32x8(unsafe { _mm256_max_ps(self.0, other.0) })
    }

    #[inline(always)]
    fn lt(self, other: Self) -> Mask8 {
        // SAFETY: see the module's invariant.
        Mask8(unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, other.0) })
    }

    #[inline(always)]
    fn le(self, other: Self) -> Mask8 {
        // SAFETY: see the module's invariant.
        Mask8(unsafe { _mm256_cmp_ps::<_CMP_LE_OQ>(self.0, other.0) })
    }

    #[inline(always)]
    fn select(mask: Mask8, if_true: Self, if_false: Self) -> Self {
        // SAFETY: see the module's invariant.
        F32x8(unsafe { _mm256_blendv_ps(if_false.0, if_true.0, mask.0) })
    }

    /// Upper half onto lower half: lanes `l + 4`, then `l + 2`, then `l + 1`.
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        // SAFETY: see the module's invariant.
        unsafe { reduce_add_m256(self.0) }
    }

    /// [`Vector::reduce_add`]'s steps on four vectors side by side: upper
    /// halves onto lower halves for two vectors in one register, then
    /// lanes `l + 2` onto `l` for all four, then `l + 1` onto `l`.
    #[inline(always)]
    fn reduce_add4(v: [Self; 4]) -> [f32; 4] {
        // SAFETY: see the module's invariant.
        unsafe {
            let [a, b, c, d] = [v[0].0, v[1].0, v[2].0, v[3].0];
            // [a_lo + a_hi, b_lo + b_hi], and the same for c and d.
            let ab = _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(a, b),
                _mm256_permute2f128_ps::<0x31>(a, b),
            );
            let cd = _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(c, d),
                _mm256_permute2f128_ps::<0x31>(c, d),
            );
            // Lanes i + 2 onto i: a's and c's pairs in the low half, b's
            // and d's in the high one; then 1 onto 0 within each pair.
            let pairs = _mm256_add_ps(
                _mm256_shuffle_ps::<0b01_00_01_00>(ab, cd),
                _mm256_shuffle_ps::<0b11_10_11_10>(ab, cd),
            );
            let sums = _mm256_add_ps(pairs, _mm256_movehdup_ps(pairs));
            let firsts = _mm256_permutevar8x32_ps(sums, _mm256_setr_epi32(0, 4, 2, 6, 0, 0, 0, 0));
            let mut out = [0.0f32; 4];
            _mm_storeu_ps(out.as_mut_ptr(), _mm256_castps256_ps128(firsts));
            out
        }
    }

    #[inline(always)]
    fn store(self, out: &mut [f32]) {
        let out = &mut out[..8];
        // SAFETY: see the module's invariant; `out` has room for 8 values.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), self.0) }
    }

    #[inline(always)]
    fn pow2i(self) -> Self {
        // SAFETY: see the module's invariant.
        F32x8(unsafe {
            let n = _mm256_cvtps_epi32(self.0);
            let biased = _mm256_add_epi32(n, _mm256_set1_epi32(127));
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased))
        })
    }

    #[inline(always)]
    fn frexp(self) -> (Self, Self) {
        // SAFETY: see the module's invariant.
        unsafe {
            let bits = _mm256_castps_si256(self.0);
            let field = _mm256_srli_epi32::<23>(bits);
            let exponent = _mm256_sub_epi32(field, _mm256_set1_epi32(127));
            let mantissa = _mm256_or_si256(
                _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
                _mm256_set1_epi32(0x3f80_0000),
            );
            (
                F32x8(_mm256_castsi256_ps(mantissa)),
                F32x8(_mm256_cvtepi32_ps(exponent)),
            )
        }
    }
}

/// The sum of a `__m256`'s lanes, upper half onto lower half until one is
/// left. Also the last steps of the AVX-512 level's sum.
///
/// # Safety
/// The CPU must have AVX.
#[inline(always)]
pub(super) unsafe fn reduce_add_m256(v: __m256) -> f32 {
    // SAFETY: the caller guarantees AVX, which implies SSE3.
    unsafe {
        let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
        _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)))
    }
}

macro_rules! binary_ops {
    ($($trait:ident $method:ident $assign_trait:ident $assign:ident $intrinsic:ident;)*) => {$(
        impl $trait for F32x8 {
            type Output = Self;
            #[inline(always)]
            fn $method(self, other: Self) -> Self {
                // SAFETY: see the module's invariant.
                F32x8(unsafe { $intrinsic(self.0, other.0) })
            }
        }

        impl $assign_trait for F32x8 {
            #[inline(always)]
            fn $assign(&mut self, other: Self) {
                *self = $trait::$method(*self, other);
            }
        }
    )*};
}

binary_ops! {
    Add add AddAssign add_assign _mm256_add_ps;
    Sub sub SubAssign sub_assign _mm256_sub_ps;
    Mul mul MulAssign mul_assign _mm256_mul_ps;
    Div div DivAssign div_assign _mm256_div_ps;
}
