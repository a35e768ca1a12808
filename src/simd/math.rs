//! `exp` and `ln` for every level, written once over the [`Vector`]
//! primitives: Cephes' single-precision `expf` and `logf` (range reduction,
//! then a short polynomial), accurate to about 1 ulp.
//!
//! Softmax needs `exp` of logits minus their maximum (so inputs in
//! `[-inf, 0]`), the chapter's naive softmax `exp` of raw logits, and the
//! losses `ln` of a probability or of a sum in `[1, classes]`; both
//! functions handle every `f32` input anyway: `exp` gives 0 below about
//! -103.97 and infinity above about 88.72, `ln` gives `-inf` at 0, NaN
//! below it and infinity at infinity, and NaN stays NaN.
//!
//! Like every vector code of the crate, these use plain loops, never a
//! closure passed to a library function (`map`, `fold`, `array::from_fn`):
//! such a closure is compiled apart from the per-level entry point, without
//! its `#[target_feature]`, and every vector instruction in it becomes a
//! call.

use super::{Simd, Vector};

/// 1.5 * 2^23: adding and then subtracting it rounds an `f32` of magnitude
/// below 2^22 to a whole number (ties to even).
const ROUNDING: f32 = 12_582_912.0;

/// `ln 2` split in two (Cody and Waite): `LN2_HI` (0.693359375 exactly) has
/// few enough bits that `n * LN2_HI` is exact for every `n` `exp` meets.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `P` of `e^r = 1 + r + r^2 P(r)`, highest degree first.
const EXP_POLYNOMIAL: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// `P` of `ln(1 + f) = f - f^2 / 2 + f^3 P(f)`, highest degree first.
const LN_POLYNOMIAL: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_9e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_4e-1,
    -2.499_999_4e-1,
    3.333_333e-1,
];

/// `e^x`.
#[inline(always)]
pub(super) fn exp<S: Simd>(s: S, x: S::Vector) -> S::Vector {
    // Past these bounds the result is 0 or infinite however it is computed;
    // clamping keeps `n` below in range. NaN compares false and passes.
    let (low, high) = (s.splat(-104.0), s.splat(89.0));
    let x = S::Vector::select(x.lt(low), low, x);
    let x = S::Vector::select(high.lt(x), high, x);
    // x = n ln 2 + r, n whole, |r| <= ln(2) / 2.
    let rounding = s.splat(ROUNDING);
    let n = x.mul_add(s.splat(core::f32::consts::LOG2_E), rounding) - rounding;
    let r = n.mul_add(s.splat(-LN2_HI), x);
    let r = n.mul_add(s.splat(-LN2_LO), r);
    // e^r = 1 + r + r^2 P(r).
    let mut p = s.zero();
    for c in EXP_POLYNOMIAL {
        p = p.mul_add(r, s.splat(c));
    }
    let e_r = p.mul_add(r * r, r) + s.splat(1.0);
    // 2^n for n in -150..=128 as two factors in the normal range, so that
    // results that are subnormal or infinite round once, at the end.
    let n_half = n.mul_add(s.splat(0.5), rounding) - rounding;
    e_r * n_half.pow2i() * (n - n_half).pow2i()
}

/// `ln x`.
#[inline(always)]
pub(super) fn ln<S: Simd>(s: S, x: S::Vector) -> S::Vector {
    // Subnormal inputs are scaled into the normal range first.
    let subnormal = x.lt(s.splat(f32::MIN_POSITIVE));
    let scaled = S::Vector::select(subnormal, x * s.splat(8_388_608.0), x);
    let (m, e) = scaled.frexp();
    let e = S::Vector::select(subnormal, e - s.splat(23.0), e);
    // x = 2^e m with m in [sqrt(1/2), sqrt(2)), so ln m is small.
    let above = s.splat(core::f32::consts::SQRT_2).lt(m);
    let m = S::Vector::select(above, m * s.splat(0.5), m);
    let e = S::Vector::select(above, e + s.splat(1.0), e);
    let f = m - s.splat(1.0);
    // ln(1 + f) = f - f^2 / 2 + f^3 P(f).
    let mut p = s.zero();
    for c in LN_POLYNOMIAL {
        p = p.mul_add(f, s.splat(c));
    }
    let f2 = f * f;
    let y = e.mul_add(s.splat(LN2_LO), p * f2 * f);
    let y = f2.mul_add(s.splat(-0.5), y);
    let result = e.mul_add(s.splat(LN2_HI), f + y);
    // Infinity and NaN are their own logarithms; 0 gives -inf, below it NaN.
    let result = S::Vector::select(x.lt(s.splat(f32::INFINITY)), result, x);
    let zero = s.zero();
    let at_or_below_zero =
        S::Vector::select(x.lt(zero), s.splat(f32::NAN), s.splat(f32::NEG_INFINITY));
    S::Vector::select(x.le(zero), at_or_below_zero, result)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::{Isa, Kernel, Simd, Vector, MAX_LANES};
    use crate::Rng;
    use std::vec::Vec;

    /// Distance in units in the last place, with both NaN or the same
    /// infinity counting as 0.
    fn ulps(got: f32, want: f32) -> u32 {
        if got.is_nan() && want.is_nan() || got == want {
            return 0;
        }
        if got.is_nan() || want.is_nan() || got.signum() != want.signum() {
            return u32::MAX;
        }
        got.to_bits().abs_diff(want.to_bits())
    }

    fn inputs(rng: &mut Rng, from: f32, to: f32, count: usize) -> Vec<f32> {
        (0..count)
            .map(|_| from + (to - from) * rng.next_f32())
            .collect()
    }

    struct Check<'a> {
        inputs: &'a [f32],
        ln: bool,
    }

    impl Kernel for Check<'_> {
        type Output = Vec<f32>;
        fn run<S: Simd>(self, s: S) -> Vec<f32> {
            let mut out = Vec::new();
            for chunk in self.inputs.chunks(S::LANES) {
                let v = s.load_partial(chunk, 1.0);
                let r = if self.ln { s.ln(v) } else { s.exp(v) };
                let mut lanes = [0.0; MAX_LANES];
                r.store(&mut lanes);
                out.extend_from_slice(&lanes[..chunk.len()]);
            }
            out
        }
    }

    fn check(isa: Isa, xs: &[f32], ln: bool) {
        let got = isa.dispatch(Check { inputs: xs, ln });
        for (&x, &g) in xs.iter().zip(&got) {
            let want = if ln { libm::logf(x) } else { libm::expf(x) };
            // Subnormal results carry fewer bits: compare them absolutely.
            let close = if want.abs() < f32::MIN_POSITIVE && !ln {
                (g - want).abs() <= 2.0 * f32::from_bits(1)
            } else {
                ulps(g, want) <= 2
            };
            let name = if ln { "ln" } else { "exp" };
            assert!(close, "{isa} {name}({x:e}) = {g:e}, libm {want:e}");
        }
    }

    #[test]
    fn exp_matches_libm_everywhere() {
        let mut rng = Rng::seed_from_u64(3);
        let mut xs = inputs(&mut rng, -110.0, 95.0, 4000);
        xs.extend(inputs(&mut rng, -1.0, 1.0, 1000));
        xs.extend([
            0.0,
            -0.0,
            1.0,
            -1.0,
            88.72,
            88.73,
            -87.33,
            -103.9,
            -104.0,
            100.0,
            -100.0,
            1e30,
            -1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
        ]);
        for isa in super::super::tests::available() {
            check(isa, &xs, false);
        }
    }

    #[test]
    fn ln_matches_libm_everywhere() {
        let mut rng = Rng::seed_from_u64(4);
        let mut xs: Vec<f32> = inputs(&mut rng, -40.0, 40.0, 3000)
            .into_iter()
            .map(libm::expf)
            .collect();
        xs.extend(inputs(&mut rng, 0.5, 2.0, 1000));
        xs.extend(inputs(&mut rng, 1.0, 10.0, 1000));
        xs.extend([
            0.0,
            -0.0,
            1.0,
            2.0,
            core::f32::consts::SQRT_2,
            f32::MIN_POSITIVE,
            f32::MIN_POSITIVE / 3.0,
            f32::from_bits(1),
            f32::MAX,
            -1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ]);
        for isa in super::super::tests::available() {
            check(isa, &xs, true);
        }
    }
}
