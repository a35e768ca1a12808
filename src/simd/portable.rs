//! The baseline level: [`wide::f32x16`], whatever instructions `wide` was
//! compiled with (SSE2 on x86_64, NEON on aarch64, SIMD128 on wasm32 built
//! with `+simd128`, scalar code on a Cortex-M). No `unsafe` here: `wide`
//! holds it.

use super::{Isa, Simd, Vector};
use wide::{f32x16, i16x16, i32x16, u8x16};

/// The token of the baseline level, which every CPU of the target can run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Baseline;

impl Simd for Baseline {
    type Vector = f32x16;
    const LANES: usize = 16;
    const ISA: Isa = Isa::Baseline;

    #[inline(always)]
    fn splat(self, v: f32) -> f32x16 {
        f32x16::splat(v)
    }

    #[inline(always)]
    fn load(self, s: &[f32]) -> f32x16 {
        let lanes: [f32; 16] = s[..16].try_into().unwrap();
        f32x16::new(lanes)
    }

    /// `wide` widens through `i16x16`; LLVM fuses the two extensions.
    #[inline(always)]
    fn load_u8(self, s: &[u8]) -> f32x16 {
        let bytes: [u8; 16] = s[..16].try_into().unwrap();
        f32x16::from_i32x16(i32x16::from(i16x16::from(u8x16::new(bytes))))
    }
}

/// The exponent field of an `f32`, and everything but it.
const EXPONENT_BITS: u32 = 0x7f80_0000;
const MANTISSA_BITS: u32 = 0x007f_ffff;

impl Vector for f32x16 {
    type Mask = f32x16;

    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        f32x16::mul_add(self, b, c)
    }

    #[inline(always)]
    fn max(self, other: Self) -> Self {
        self.fast_max(other)
    }

    #[inline(always)]
    fn lt(self, other: Self) -> Self {
        self.simd_lt(other)
    }

    #[inline(always)]
    fn le(self, other: Self) -> Self {
        self.simd_le(other)
    }

    #[inline(always)]
    fn select(mask: Self, if_true: Self, if_false: Self) -> Self {
        mask.select(if_true, if_false)
    }

    #[inline(always)]
    fn reduce_add(self) -> f32 {
        f32x16::reduce_add(self)
    }

    #[inline(always)]
    fn store(self, out: &mut [f32]) {
        out[..16].copy_from_slice(&self.to_array());
    }

    /// `(n + 127) * 2^23` is a whole number below 2^31, exactly an `f32`,
    /// and its integer value is the bit pattern of `2^n`.
    #[inline(always)]
    fn pow2i(self) -> Self {
        let bits = ((self + f32x16::splat(127.0)) * f32x16::splat(8_388_608.0)).round_int();
        bytemuck::cast(bits)
    }

    /// The exponent field read as a whole number is `(e + 127) * 2^23`.
    #[inline(always)]
    fn frexp(self) -> (Self, Self) {
        let bits = |b: u32| f32x16::splat(f32::from_bits(b));
        let mantissa = (self & bits(MANTISSA_BITS)) | f32x16::splat(1.0);
        let field: i32x16 = bytemuck::cast(self & bits(EXPONENT_BITS));
        let exponent =
            f32x16::from_i32x16(field) * f32x16::splat(1.0 / 8_388_608.0) - f32x16::splat(127.0);
        (mantissa, exponent)
    }
}
