//! The AVX-512 level: sixteen `f32` lanes in a `__m512`, through
//! `core::arch`.
//!
//! The invariant every `unsafe` block here rests on: an [`Avx512`] token
//! is only made by [`Avx512::new`], after checking that the CPU has
//! AVX-512F and AVX-512VL (and AVX2 and FMA), and an [`F32x16`] or [`Mask16`] only by a
//! token's methods or by operations on other `F32x16`s. So wherever one
//! exists, the instructions below can run.
#![allow(unsafe_code)]

use super::avx2::reduce_add_m256;
use super::{Isa, Kernel, Simd, Vector};
use core::arch::x86_64::*;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Sub, SubAssign};

/// Proof that this CPU has AVX-512F, AVX-512VL, AVX2 and FMA.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// The token, if this CPU has AVX-512F and AVX-512VL (and AVX2 and FMA).
    #[inline]
    pub(crate) fn new() -> Option<Self> {
        Isa::Avx512.is_available().then_some(Avx512(()))
    }

    /// Runs `kernel` compiled for AVX-512F and AVX-512VL.
    #[inline]
    pub(crate) fn enter<K: Kernel>(self, kernel: K) -> K::Output {
        // SAFETY: the token exists, so the CPU has the features
        // `run_avx512` is compiled with.
        unsafe { run_avx512(self, kernel) }
    }
}

/// The entry point: everything `kernel.run` inlines is compiled with
/// AVX-512F, AVX-512VL, AVX2 and FMA.
///
/// AVX-512VL adds no instruction the kernels name, but without it
/// registers 16-31 cannot be zeroed or moved at 128/256 bits, and LLVM then
/// keeps accumulators that start at zero on the stack: a 4 x 5 block of the
/// forward GEMM lost a quarter to a third of its speed. Every CPU with AVX-512 for
/// general use (Intel since Skylake-SP, AMD since Zen 4) has VL.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn run_avx512<K: Kernel>(token: Avx512, kernel: K) -> K::Output {
    kernel.run(token)
}

/// Sixteen `f32` lanes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F32x16(__m512);

/// A comparison result: one bit per lane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mask16(__mmask16);

impl Simd for Avx512 {
    type Vector = F32x16;
    const LANES: usize = 16;
    const ISA: Isa = Isa::Avx512;

    #[inline(always)]
    fn splat(self, v: f32) -> F32x16 {
        // SAFETY: see the module's invariant.
        F32x16(unsafe { _mm512_set1_ps(v) })
    }

    #[inline(always)]
    fn load(self, s: &[f32]) -> F32x16 {
        let s = &s[..16];
        // SAFETY: see the module's invariant; `s` holds the 16 values read.
        F32x16(unsafe { _mm512_loadu_ps(s.as_ptr()) })
    }

    /// One 16-byte load, zero-extended to `i32` lanes and converted.
    #[inline(always)]
    fn load_u8(self, s: &[u8]) -> F32x16 {
        let s = &s[..16];
        // SAFETY: see the module's invariant; `s` holds the 16 bytes read
        // (`_mm_loadu_si128` needs no alignment).
        F32x16(unsafe {
            let bytes = _mm_loadu_si128(s.as_ptr().cast());
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes))
        })
    }
}

impl Vector for F32x16 {
    type Mask = Mask16;

    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: see the module's invariant.
        F32x16(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
    }

    #[inline(always)]
    fn max(self, other: Self) -> Self {
        // SAFETY: see the module's invariant.
        F32x16(unsafe { _mm512_max_ps(self.0, other.0) })
    }

    #[inline(always)]
    fn lt(self, other: Self) -> Mask16 {
        // SAFETY: see the module's invariant.
        Mask16(unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, other.0) })
    }

    #[inline(always)]
    fn le(self, other: Self) -> Mask16 {
        // SAFETY: see the module's invariant.
        Mask16(unsafe { _mm512_cmp_ps_mask::<_CMP_LE_OQ>(self.0, other.0) })
    }

    #[inline(always)]
    fn select(mask: Mask16, if_true: Self, if_false: Self) -> Self {
        // SAFETY: see the module's invariant.
        F32x16(unsafe { _mm512_mask_blend_ps(mask.0, if_false.0, if_true.0) })
    }

    /// Upper half onto lower half: lanes `l + 8`, then as the AVX2 level.
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        // SAFETY: see the module's invariant (AVX-512F implies AVX).
        unsafe {
            let halves = _mm512_castps_pd(self.0);
            let low = _mm256_castpd_ps(_mm512_castpd512_pd256(halves));
            let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(halves));
            reduce_add_m256(_mm256_add_ps(low, high))
        }
    }

    /// [`Vector::reduce_add`]'s steps on four vectors side by side: 128-bit
    /// lanes `l + 2` onto `l` for two vectors in one register, then `l + 1`
    /// onto `l` for all four, leaving each vector's four partial sums in a
    /// lane of its own; then the last two steps within every lane at once.
    #[inline(always)]
    fn reduce_add4(v: [Self; 4]) -> [f32; 4] {
        // SAFETY: see the module's invariant.
        unsafe {
            let [a, b, c, d] = [v[0].0, v[1].0, v[2].0, v[3].0];
            // Lanes i + 8 onto lanes i: [a0+a2, a1+a3, b0+b2, b1+b3] in
            // 128-bit lanes, and the same for c and d.
            let ab = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
            );
            let cd = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b01_00_01_00>(c, d),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(c, d),
            );
            // Lanes i + 4 onto lanes i: one 128-bit lane per vector.
            let quads = _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b10_00_10_00>(ab, cd),
                _mm512_shuffle_f32x4::<0b11_01_11_01>(ab, cd),
            );
            // Within each 128-bit lane, i + 2 onto i, then 1 onto 0.
            let pairs = _mm512_add_ps(quads, _mm512_permute_ps::<0b01_00_11_10>(quads));
            let sums = _mm512_add_ps(pairs, _mm512_movehdup_ps(pairs));
            let firsts = _mm512_permutexvar_ps(
                _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
                sums,
            );
            let mut out = [0.0f32; 4];
            _mm_storeu_ps(out.as_mut_ptr(), _mm512_castps512_ps128(firsts));
            out
        }
    }

    #[inline(always)]
    fn store(self, out: &mut [f32]) {
        let out = &mut out[..16];
        // SAFETY: see the module's invariant; `out` has room for 16 values.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), self.0) }
    }

    #[inline(always)]
    fn pow2i(self) -> Self {
        // SAFETY: see the module's invariant.
        F32x16(unsafe {
            let n = _mm512_cvtps_epi32(self.0);
            let biased = _mm512_add_epi32(n, _mm512_set1_epi32(127));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(biased))
        })
    }

    #[inline(always)]
    fn frexp(self) -> (Self, Self) {
        // SAFETY: see the module's invariant.
        unsafe {
            let bits = _mm512_castps_si512(self.0);
            let field = _mm512_srli_epi32::<23>(bits);
            let exponent = _mm512_sub_epi32(field, _mm512_set1_epi32(127));
            let mantissa = _mm512_or_si512(
                _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
                _mm512_set1_epi32(0x3f80_0000),
            );
            (
                F32x16(_mm512_castsi512_ps(mantissa)),
                F32x16(_mm512_cvtepi32_ps(exponent)),
            )
        }
    }
}

macro_rules! binary_ops {
    ($($trait:ident $method:ident $assign_trait:ident $assign:ident $intrinsic:ident;)*) => {$(
        impl $trait for F32x16 {
            type Output = Self;
            #[inline(always)]
            fn $method(self, other: Self) -> Self {
                // SAFETY: see the module's invariant.
                F32x16(unsafe { $intrinsic(self.0, other.0) })
            }
        }

        impl $assign_trait for F32x16 {
            #[inline(always)]
            fn $assign(&mut self, other: Self) {
                *self = $trait::$method(*self, other);
            }
        }
    )*};
}

binary_ops! {
    Add add AddAssign add_assign _mm512_add_ps;
    Sub sub SubAssign sub_assign _mm512_sub_ps;
    Mul mul MulAssign mul_assign _mm512_mul_ps;
    Div div DivAssign div_assign _mm512_div_ps;
}
