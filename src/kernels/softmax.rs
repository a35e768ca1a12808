//! Numerically stable softmax along each row.
//!
//! The chapter defines `softmax(X)_ij = exp(X_ij) / sum_k exp(X_ik)`. Computed
//! as written, `exp` overflows to infinity for logits above about 88 and the
//! row becomes `inf / inf = NaN`. Softmax does not change when the same
//! constant is subtracted from every logit of a row, so we subtract the row's
//! maximum first: every exponent is then `<= 0`, every `exp` is in `(0, 1]`,
//! and the largest is exactly 1, so the sum is at least 1 and never zero.

use super::{load, load_partial, LANES};
use wide::f32x16;

/// Replaces `row` by `exp(row - max(row))` and returns `(max, sum of the
/// exponentials)`: the shared first half of softmax and of the fused loss.
///
/// A row containing NaN gives NaN; `-inf` entries give 0 as long as some
/// entry is finite.
#[inline]
pub(crate) fn exp_shifted<const C: usize>(row: &mut [f32; C]) -> (f32, f32) {
    let full = C / LANES * LANES;
    // Padding lanes hold -inf: they change neither the max nor (exp(-inf) = 0)
    // the sum.
    let mut max = f32x16::splat(f32::NEG_INFINITY);
    for k in (0..full).step_by(LANES) {
        max = max.max(load(&row[k..]));
    }
    if full < C {
        max = max.max(load_partial(&row[full..], f32::NEG_INFINITY));
    }
    let max = max.to_array().into_iter().fold(f32::NEG_INFINITY, |m, v| {
        // Let a NaN win, so it propagates instead of being skipped.
        if v > m || v.is_nan() {
            v
        } else {
            m
        }
    });
    let shift = f32x16::splat(max);
    let mut sum = f32x16::ZERO;
    for k in (0..full).step_by(LANES) {
        let e = (load(&row[k..]) - shift).exp();
        sum += e;
        row[k..k + LANES].copy_from_slice(&e.to_array());
    }
    if full < C {
        let e = (load_partial(&row[full..], f32::NEG_INFINITY) - shift).exp();
        sum += e;
        let tail = C - full;
        row[full..].copy_from_slice(&e.to_array()[..tail]);
    }
    (max, sum.reduce_add())
}

/// Divides every entry of `row` by `sum`.
#[inline]
pub(crate) fn divide<const C: usize>(row: &mut [f32; C], sum: f32) {
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// `softmax(row)`, in place: `exp(z_j - max z) / sum_k exp(z_k - max z)`.
pub fn softmax_row<const C: usize>(row: &mut [f32; C]) {
    let (_, sum) = exp_shifted(row);
    divide(row, sum);
}

/// `softmax(X)` for every row of `X`, in place.
pub fn softmax_rows<const C: usize>(rows: &mut [[f32; C]]) {
    for row in rows {
        softmax_row(row);
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

    fn check<const C: usize>(rng: &mut Rng, scale: f32) {
        for _ in 0..50 {
            let mut row = [0.0f32; C];
            for v in &mut row {
                *v = rng.normal() * scale;
            }
            let mut want = row;
            reference::softmax_rows(core::slice::from_mut(&mut want));
            softmax_row(&mut row);
            assert_distribution(&row);
            for (g, w) in row.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-6 + 1e-5 * w, "C={C}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn matches_reference_for_many_widths() {
        let mut rng = Rng::seed_from_u64(20);
        for scale in [0.01, 1.0, 10.0] {
            check::<1>(&mut rng, scale);
            check::<2>(&mut rng, scale);
            check::<5>(&mut rng, scale);
            check::<10>(&mut rng, scale);
            check::<16>(&mut rng, scale);
            check::<17>(&mut rng, scale);
            check::<33>(&mut rng, scale);
            check::<100>(&mut rng, scale);
        }
    }

    #[test]
    fn extreme_logits_stay_finite() {
        let mut big = [1e4, -1e4, 0.0, 1e4 - 1.0, -3.0];
        softmax_row(&mut big);
        assert_distribution(&big);
        let e = libm::expf(-1.0);
        assert!((big[0] - 1.0 / (1.0 + e)).abs() < 1e-6);
        assert!((big[3] - e / (1.0 + e)).abs() < 1e-6);
        assert_eq!(big[1], 0.0);

        let mut with_inf = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0];
        softmax_row(&mut with_inf);
        assert_eq!(with_inf, [0.0, 0.5, 0.0, 0.5]);

        let mut equal = [7.5f32; 10];
        softmax_row(&mut equal);
        for v in equal {
            assert!((v - 0.1).abs() < 1e-7);
        }

        let mut tiny = [1e-30f32, -1e-30, 0.0];
        softmax_row(&mut tiny);
        for v in tiny {
            assert!((v - 1.0 / 3.0).abs() < 1e-7);
        }
    }

    #[test]
    fn nan_propagates() {
        let mut row = [1.0, f32::NAN, 2.0];
        softmax_row(&mut row);
        assert!(row.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn argmax_takes_first_of_ties() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.7, 0.1]), 1);
        assert_eq!(argmax(&[-1.0]), 0);
    }
}
