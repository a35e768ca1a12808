//! Numerically stable softmax along each row.
//!
//! The chapter defines `softmax(X)_ij = exp(X_ij) / sum_k exp(X_ik)`. Computed
//! as written, `exp` overflows to infinity for logits above about 88 and the
//! row becomes `inf / inf = NaN`. Softmax does not change when the same
//! constant is subtracted from every logit of a row, so we subtract the row's
//! maximum first: every exponent is then `<= 0`, every `exp` is in `(0, 1]`,
//! and the largest is exactly 1, so the sum is at least 1 and never zero.
//!
//! Training does not call this: its fused loss
//! ([`super::cross_entropy::softmax_cross_entropy_grad`]) takes the same
//! steps with sixteen rows side by side.

use crate::simd::{Isa, Kernel, Simd, Vector};

/// `softmax(X)` for every row of `X`, in place:
/// `exp(z_j - max z) / sum_k exp(z_k - max z)`.
///
/// A row containing NaN or `+inf` gives NaN; `-inf` entries give 0 as long
/// as some entry is finite.
pub fn softmax_rows<const C: usize>(rows: &mut [[f32; C]]) {
    struct Job<'a, const C: usize>(&'a mut [[f32; C]]);
    impl<const C: usize> Kernel for Job<'_, C> {
        type Output = ();
        #[inline(always)]
        fn run<S: Simd>(self, s: S) {
            for row in self.0 {
                softmax_row_with(s, row);
            }
        }
    }
    Isa::current().dispatch(Job(rows));
}

/// `softmax(row)`, in place: [`softmax_rows`] of one row.
pub fn softmax_row<const C: usize>(row: &mut [f32; C]) {
    softmax_rows(core::slice::from_mut(row));
}

/// [`softmax_row`] at level `S`.
#[inline(always)]
pub(crate) fn softmax_row_with<S: Simd, const C: usize>(s: S, row: &mut [f32; C]) {
    let lanes = S::LANES;
    let full = C / lanes * lanes;
    // Padding lanes hold -inf: they change neither the max nor (exp(-inf) = 0)
    // the sum.
    let mut max = s.splat(f32::NEG_INFINITY);
    for k in (0..full).step_by(lanes) {
        max = max.max(s.load(&row[k..]));
    }
    if full < C {
        max = max.max(s.load_partial(&row[full..], f32::NEG_INFINITY));
    }
    // A NaN may or may not win the maximum; either way it reaches the sum
    // through its `exp`, and the whole row becomes NaN.
    let shift = s.splat(max.reduce_max());
    let mut sum = s.zero();
    for k in (0..full).step_by(lanes) {
        let e = s.exp(s.load(&row[k..]) - shift);
        sum += e;
        e.store(&mut row[k..]);
    }
    if full < C {
        let e = s.exp(s.load_partial(&row[full..], f32::NEG_INFINITY) - shift);
        sum += e;
        e.store_partial(&mut row[full..]);
    }
    let sum = sum.reduce_add();
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// The index of the largest entry (the first one on ties), as the chapter's
/// `argmax(axis=1)`. NaN entries are never chosen unless all are NaN.
pub fn argmax<const C: usize>(row: &[f32; C]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] || row[best].is_nan() {
            best = j;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::Rng;

    fn assert_distribution<const C: usize>(p: &[f32; C]) {
        let mut sum = 0.0f64;
        for &v in p {
            assert!((0.0..=1.0).contains(&v), "{p:?}");
            sum += f64::from(v);
        }
        assert!((sum - 1.0).abs() <= 1e-6, "sum {sum}");
    }

    fn check<S: Simd, const C: usize>(s: S, rng: &mut Rng, scale: f32) {
        for _ in 0..50 {
            let mut row = [0.0f32; C];
            for v in &mut row {
                *v = rng.normal() * scale;
            }
            let mut want = row;
            reference::softmax_rows(core::slice::from_mut(&mut want));
            softmax_row_with(s, &mut row);
            assert_distribution(&row);
            for (g, w) in row.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-6 + 1e-5 * w,
                    "{} C={C}: {g} vs {w}",
                    S::ISA
                );
            }
        }
    }

    level_test! {
        fn matches_reference_for_many_widths<S>(s) {
            let mut rng = Rng::seed_from_u64(20);
            for scale in [0.01, 1.0, 10.0, 60.0] {
                check::<S, 1>(s, &mut rng, scale);
                check::<S, 2>(s, &mut rng, scale);
                check::<S, 5>(s, &mut rng, scale);
                check::<S, 7>(s, &mut rng, scale);
                check::<S, 8>(s, &mut rng, scale);
                check::<S, 9>(s, &mut rng, scale);
                check::<S, 10>(s, &mut rng, scale);
                check::<S, 16>(s, &mut rng, scale);
                check::<S, 17>(s, &mut rng, scale);
                check::<S, 33>(s, &mut rng, scale);
                check::<S, 100>(s, &mut rng, scale);
            }
        }
    }

    level_test! {
        fn extreme_logits_stay_finite<S>(s) {
            extreme_logits(s);
        }
    }

    fn extreme_logits<S: Simd>(s: S) {
        let softmax_row = |row: &mut [f32; 5]| softmax_row_with(s, row);
        let mut big = [1e4, -1e4, 0.0, 1e4 - 1.0, -3.0];
        softmax_row(&mut big);
        assert_distribution(&big);
        let e = libm::expf(-1.0);
        assert!((big[0] - 1.0 / (1.0 + e)).abs() < 1e-6);
        assert!((big[3] - e / (1.0 + e)).abs() < 1e-6);
        assert_eq!(big[1], 0.0);

        let mut with_inf = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0];
        softmax_row_with(s, &mut with_inf);
        assert_eq!(with_inf, [0.0, 0.5, 0.0, 0.5]);

        let mut equal = [7.5f32; 10];
        softmax_row_with(s, &mut equal);
        for v in equal {
            assert!((v - 0.1).abs() < 1e-7);
        }

        let mut tiny = [1e-30f32, -1e-30, 0.0];
        softmax_row_with(s, &mut tiny);
        for v in tiny {
            assert!((v - 1.0 / 3.0).abs() < 1e-7);
        }
    }

    level_test! {
        fn nan_and_infinity_give_nan<S>(s) {
            // In a full vector of either width and in the partial one.
            for at in [0, 5, 9, 17] {
                for bad in [f32::NAN, f32::INFINITY] {
                    let mut row = [1.0f32; 18];
                    row[at] = bad;
                    softmax_row_with(s, &mut row);
                    assert!(row.iter().all(|v| v.is_nan()), "{bad} at {at}: {row:?}");
                }
            }
        }
    }

    #[test]
    fn public_rows_are_softmax_rows() {
        let mut rows = [[1.0f32, 2.0, 3.0], [0.0, 0.0, -1e4]];
        softmax_rows(&mut rows);
        let e = libm::expf(1.0);
        let z = 1.0 + e + e * e;
        for (g, w) in rows[0].iter().zip([1.0 / z, e / z, e * e / z]) {
            assert!((g - w).abs() < 1e-7, "{g} vs {w}");
        }
        assert_eq!(rows[1], [0.5, 0.5, 0.0]);
    }

    #[test]
    fn argmax_takes_first_of_ties() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.7, 0.1]), 1);
        assert_eq!(argmax(&[-1.0]), 0);
    }

    #[test]
    fn public_row_is_the_softmax_of_the_row() {
        // exp(0) : exp(ln 3) = 1 : 3.
        let mut row = [0.0f32, libm::logf(3.0)];
        softmax_row(&mut row);
        assert!(
            (row[0] - 0.25).abs() < 1e-7 && (row[1] - 0.75).abs() < 1e-7,
            "{row:?}"
        );
    }
}
