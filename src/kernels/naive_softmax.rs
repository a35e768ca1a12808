//! The chapter's naive softmax, exactly as written: the alternative to
//! [`super::softmax`] and the fused loss of [`super::cross_entropy`] that
//! the chapter's first exercise asks about. Training uses it only when told
//! to ([`crate::train::Softmax::Naive`]).
//!
//! `softmax(X)_ij = exp(X_ij) / sum_k exp(X_ik)`, with no maximum
//! subtracted. In `f32`, `exp` overflows to infinity above about 88.72, and
//! then so does the row's sum: the entry is `inf / inf = NaN`, the others
//! `finite / inf = 0`; it underflows to 0 below about
//! -103.97, and if every entry of a row does, the row is `0 / 0 = NaN`
//! (between -87.3 and -104 it is subnormal and loses its digits first). The
//! loss is the chapter's: `-log` of the gathered probability of the true
//! class, infinite when that probability has underflowed to 0.

use crate::simd::{Isa, Kernel, Simd, Vector};

/// The naive `exp(X) / sum(exp(X))` of every row of `X`, in place. Equal to
/// [`super::softmax::softmax_rows`] for small logits; NaN where an entry is
/// above about 88.7 (the rest of its row 0), and everywhere in a row whose
/// entries are all below about -104.
pub fn naive_softmax_rows<const C: usize>(rows: &mut [[f32; C]]) {
    struct Job<'a, const C: usize>(&'a mut [[f32; C]]);
    impl<const C: usize> Kernel for Job<'_, C> {
        type Output = ();
        #[inline(always)]
        fn run<S: Simd>(self, s: S) {
            for row in self.0 {
                naive_softmax_row_with(s, row);
            }
        }
    }
    Isa::current().dispatch(Job(rows));
}

/// [`naive_softmax_rows`] of one row at level `S`: one pass for the `exp`s
/// and their sum, one for the division.
#[inline(always)]
pub(crate) fn naive_softmax_row_with<S: Simd, const C: usize>(s: S, row: &mut [f32; C]) {
    let lanes = S::LANES;
    let full = C / lanes * lanes;
    let mut sum = s.zero();
    for k in (0..full).step_by(lanes) {
        let e = s.exp(s.load(&row[k..]));
        sum += e;
        e.store(&mut row[k..]);
    }
    if full < C {
        // Padding lanes hold -inf, whose exp is 0: they add nothing.
        let e = s.exp(s.load_partial(&row[full..], f32::NEG_INFINITY));
        sum += e;
        e.store_partial(&mut row[full..]);
    }
    let sum = sum.reduce_add();
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// Naive softmax, then the chapter's cross-entropy, for each row of logits
/// `z` with label `y_i`: returns the summed loss `sum_i -log y_hat[i, y_i]`
/// and replaces each row by the gradient `y_hat_i - onehot(y_i)`. The same
/// numbers as [`super::cross_entropy::softmax_cross_entropy_grad`] while the
/// logits are small; NaN or infinite when they are not.
///
/// # Panics
/// If the lengths differ or a label is `>= C`.
pub fn naive_softmax_cross_entropy_grad<const C: usize>(logits: &mut [[f32; C]], y: &[u8]) -> f32 {
    struct Job<'a, const C: usize>(&'a mut [[f32; C]], &'a [u8]);
    impl<const C: usize> Kernel for Job<'_, C> {
        type Output = f32;
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> f32 {
            naive_softmax_cross_entropy_grad_with(s, self.0, self.1)
        }
    }
    Isa::current().dispatch(Job(logits, y))
}

/// [`naive_softmax_cross_entropy_grad`] at level `S`, a row at a time.
#[inline(always)]
pub(crate) fn naive_softmax_cross_entropy_grad_with<S: Simd, const C: usize>(
    s: S,
    logits: &mut [[f32; C]],
    y: &[u8],
) -> f32 {
    assert_eq!(logits.len(), y.len(), "one label per row");
    let mut loss = 0.0f32;
    for (row, &label) in logits.iter_mut().zip(y) {
        let label = usize::from(label);
        naive_softmax_row_with(s, row);
        // The log-gather: -log y_hat[i, y_i], infinite if it underflowed.
        loss -= libm::logf(row[label]);
        row[label] -= 1.0;
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{cross_entropy, reference, softmax};
    use crate::Rng;

    /// Within rounding of a finite `b`: a relative bound alone would let
    /// anything pass against an infinite one.
    fn close(a: f32, b: f32) -> bool {
        b.is_finite() && (a - b).abs() <= 1e-6 + 1e-5 * b.abs()
    }

    fn check<S: Simd, const C: usize>(s: S, rng: &mut Rng) {
        for _ in 0..20 {
            let mut rows = [[0.0f32; C]; 3];
            for v in rows.iter_mut().flatten() {
                *v = rng.normal() * 3.0;
            }
            let y = [0u8, (C / 2) as u8, (C - 1) as u8];
            let mut want = rows;
            let want_loss = reference::naive_softmax_cross_entropy_grad(&mut want, &y);
            let mut got = rows;
            let got_loss = naive_softmax_cross_entropy_grad_with(s, &mut got, &y);
            assert!(
                close(got_loss, want_loss),
                "{} C={C}: {got_loss} vs {want_loss}",
                S::ISA
            );
            for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
                assert!(close(*g, *w), "{} C={C}: {g} vs {w}", S::ISA);
            }
            // On small logits naive and stable are the same numbers.
            let mut stable = rows;
            let stable_loss = reference::softmax_cross_entropy_grad(&mut stable, &y);
            assert!(close(got_loss, stable_loss), "{got_loss} vs {stable_loss}");
            for (g, w) in got.iter().flatten().zip(stable.iter().flatten()) {
                assert!(close(*g, *w), "{g} vs {w}");
            }
        }
    }

    level_test! {
        fn matches_the_scalar_reference<S>(s) {
            let mut rng = Rng::seed_from_u64(5);
            check::<S, 1>(s, &mut rng);
            check::<S, 5>(s, &mut rng);
            check::<S, 8>(s, &mut rng);
            check::<S, 10>(s, &mut rng);
            check::<S, 17>(s, &mut rng);
            check::<S, 33>(s, &mut rng);
        }
    }

    #[test]
    fn the_chapters_rows_on_small_logits() {
        // exp(ln k) = k: the row [0, ln 2, ln 3] is [1, 2, 3] / 6.
        let mut rows = [[0.0, libm::logf(2.0), libm::logf(3.0)], [1.0, 1.0, 1.0]];
        naive_softmax_rows(&mut rows);
        for (g, w) in rows[0].iter().zip([1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0]) {
            assert!(close(*g, w), "{g} vs {w}");
        }
        assert_eq!(rows[1], [1.0 / 3.0; 3]);
        // The chapter's X_prob for X ~ N(0, 1) of shape (2, 5): every row
        // sums to 1, and equals the stable softmax.
        let mut rng = Rng::seed_from_u64(1);
        let mut x = [[0.0f32; 5]; 2];
        for v in x.iter_mut().flatten() {
            *v = rng.normal();
        }
        let mut naive = x;
        naive_softmax_rows(&mut naive);
        let mut stable = x;
        softmax::softmax_rows(&mut stable);
        for (n, st) in naive.iter().zip(&stable) {
            let sum: f32 = n.iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "{sum}");
            for (a, b) in n.iter().zip(st) {
                assert!(close(*a, *b), "{a} vs {b}");
            }
        }
        // And its loss is the chapter's cross_entropy of those rows.
        let y = [0u8, 2];
        let mut logits = x;
        let loss = naive_softmax_cross_entropy_grad(&mut logits, &y);
        assert!(close(loss / 2.0, cross_entropy::cross_entropy(&stable, &y)));
    }

    #[test]
    fn large_logits_break_it_and_not_the_stable_softmax() {
        // The exercise's input of 100: exp(100) is infinite, and so is the
        // sum: inf / inf = NaN where the 100 was, finite / inf = 0 elsewhere.
        let mut big = [[100.0f32, 0.0, -100.0]];
        naive_softmax_rows(&mut big);
        assert!(big[0][0].is_nan(), "{big:?}");
        assert_eq!(&big[0][1..], [0.0, 0.0]);
        // A maximum below -100: every exp underflows towards 0 (-110 and
        // below: exactly 0, and the row is 0 / 0).
        let mut small = [[-110.0f32, -111.0, -112.0]];
        naive_softmax_rows(&mut small);
        assert!(small[0].iter().all(|v| v.is_nan()), "{small:?}");
        // The stable softmax of both is a distribution.
        for row in [[100.0f32, 0.0, -100.0], [-110.0, -111.0, -112.0]] {
            let mut stable = [row];
            softmax::softmax_rows(&mut stable);
            let sum: f32 = stable[0].iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "{stable:?}");
        }
        // The loss says so: NaN, or infinite once a true class's
        // probability underflows to 0 while others stay finite.
        let mut logits = [[100.0f32, 0.0, -100.0]];
        assert!(naive_softmax_cross_entropy_grad(&mut logits, &[0]).is_nan());
        let mut logits = [[80.0f32, 0.0, -40.0]];
        assert_eq!(
            naive_softmax_cross_entropy_grad(&mut logits, &[2]),
            f32::INFINITY
        );
    }
}
