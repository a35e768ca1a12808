//! Cross-entropy loss, as the chapter computes it and as training should.
//!
//! The chapter's `cross_entropy(y_hat, y)` picks out each example's predicted
//! probability of its true class ("log-gather") and averages `-log` of it:
//! `loss = (1/n) sum_i -log y_hat[i, y_i]`. That needs `y_hat` first, and if a
//! probability underflows to 0 the loss is infinite.
//!
//! Training uses the fused form instead. With `z` the logits and
//! `y_hat = softmax(z)`,
//! `-log y_hat[y] = log sum_k exp(z_k) - z_y = (m + log sum_k exp(z_k - m)) - z_y`
//! for the row maximum `m`, and the sum is at least 1, so no `log(0)` can
//! arise. Its gradient with respect to the logits is `softmax(z) - onehot(y)`,
//! which [`softmax_cross_entropy_grad`] leaves in place of the logits.

use crate::simd::{Isa, Kernel, Simd, Vector, MAX_LANES};

/// The log-gather: `out[i] = y_hat[i][y[i]]`, the chapter's `y_hat[[0, 1], y]`.
///
/// # Panics
/// If the lengths differ or a label is `>= C`.
pub fn gather<const C: usize>(y_hat: &[[f32; C]], y: &[u8], out: &mut [f32]) {
    assert_eq!(y_hat.len(), y.len(), "one label per row");
    assert_eq!(y_hat.len(), out.len(), "one output per row");
    for ((o, row), &label) in out.iter_mut().zip(y_hat).zip(y) {
        *o = row[usize::from(label)];
    }
}

/// The chapter's `cross_entropy(y_hat, y)`: `(1/n) sum_i -log y_hat[i, y_i]`
/// for probabilities `y_hat` (rows of a softmax). Returns NaN for no rows,
/// and infinity if a true class's probability is 0.
///
/// # Panics
/// If the lengths differ or a label is `>= C`.
pub fn cross_entropy<const C: usize>(y_hat: &[[f32; C]], y: &[u8]) -> f32 {
    struct Job<'a, const C: usize>(&'a [[f32; C]], &'a [u8]);
    impl<const C: usize> Kernel for Job<'_, C> {
        type Output = f32;
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> f32 {
            cross_entropy_with(s, self.0, self.1)
        }
    }
    Isa::current().dispatch(Job(y_hat, y))
}

/// [`cross_entropy`] at level `S`: the probabilities are gathered a vector
/// at a time and their logarithms taken together.
#[inline(always)]
pub(crate) fn cross_entropy_with<S: Simd, const C: usize>(
    s: S,
    y_hat: &[[f32; C]],
    y: &[u8],
) -> f32 {
    assert_eq!(y_hat.len(), y.len(), "one label per row");
    let mut sum = s.zero();
    for (rows, labels) in y_hat.chunks(S::LANES).zip(y.chunks(S::LANES)) {
        let mut picked = [1.0f32; MAX_LANES]; // log(1) = 0 in unused lanes
        gather(rows, labels, &mut picked[..rows.len()]);
        sum -= s.ln(s.load(&picked));
    }
    sum.reduce_add() / y.len() as f32
}

/// The fused training kernel. For each row of logits `z` with label `y_i`:
/// returns the summed loss `sum_i (logsumexp(z_i) - z_i[y_i])` and replaces
/// the row by the loss's gradient `softmax(z_i) - onehot(y_i)`.
///
/// Divide the returned sum by the number of rows for the chapter's mean loss,
/// and the gradient likewise for the gradient of the mean.
///
/// # Panics
/// If the lengths differ or a label is `>= C`.
pub fn softmax_cross_entropy_grad<const C: usize>(logits: &mut [[f32; C]], y: &[u8]) -> f32 {
    struct Job<'a, const C: usize>(&'a mut [[f32; C]], &'a [u8]);
    impl<const C: usize> Kernel for Job<'_, C> {
        type Output = f32;
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> f32 {
            softmax_cross_entropy_grad_with(s, self.0, self.1)
        }
    }
    Isa::current().dispatch(Job(logits, y))
}

/// The summed loss of [`softmax_cross_entropy_grad`] without the gradient:
/// `sum_i (logsumexp(z_i) - z_i[y_i])`, computed from the logits as stably,
/// which is what evaluation needs.
///
/// # Panics
/// If the lengths differ or a label is `>= C`.
pub fn softmax_cross_entropy<const C: usize>(logits: &[[f32; C]], y: &[u8]) -> f32 {
    struct Job<'a, const C: usize>(&'a [[f32; C]], &'a [u8]);
    impl<const C: usize> Kernel for Job<'_, C> {
        type Output = f32;
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> f32 {
            softmax_cross_entropy_with(s, self.0, self.1)
        }
    }
    Isa::current().dispatch(Job(logits, y))
}

/// [`softmax_cross_entropy_grad`] at level `S`.
///
/// A vector's worth of rows go through together, one per lane. A row of 10
/// logits fills only part of a vector, and a row-at-a-time softmax spends
/// most of its time moving values across lanes for the row's max and sum;
/// with a row in each lane, the max and the sum over the classes are plain
/// lane-wise operations on `C` vectors, one `exp`, `ln` and division serves
/// all the rows, and only the loads and stores of the block cross lanes.
#[inline(always)]
pub(crate) fn softmax_cross_entropy_grad_with<S: Simd, const C: usize>(
    s: S,
    logits: &mut [[f32; C]],
    y: &[u8],
) -> f32 {
    assert_eq!(logits.len(), y.len(), "one label per row");
    let lanes = S::LANES;
    let mut loss = s.zero();
    let mut blocks = logits.chunks_exact_mut(lanes);
    let mut labels = y.chunks_exact(lanes);
    for (block, block_labels) in (&mut blocks).zip(&mut labels) {
        let in_lanes = RowsInLanes::new(s, block, block_labels);
        in_lanes.write_gradient(block, block_labels);
        loss += in_lanes.losses;
    }
    let (tail, tail_labels) = (blocks.into_remainder(), labels.remainder());
    if !tail.is_empty() {
        let (mut block, block_labels) = padded(tail, tail_labels);
        let in_lanes = RowsInLanes::new(s, &block[..lanes], &block_labels[..lanes]);
        in_lanes.write_gradient(&mut block[..lanes], &block_labels[..lanes]);
        loss += in_lanes.losses_of_first(s, tail.len());
        tail.copy_from_slice(&block[..tail.len()]);
    }
    loss.reduce_add()
}

/// [`softmax_cross_entropy`] at level `S`: [`softmax_cross_entropy_grad_with`]
/// without writing the gradient.
#[inline(always)]
pub(crate) fn softmax_cross_entropy_with<S: Simd, const C: usize>(
    s: S,
    logits: &[[f32; C]],
    y: &[u8],
) -> f32 {
    assert_eq!(logits.len(), y.len(), "one label per row");
    let lanes = S::LANES;
    let mut loss = s.zero();
    let mut blocks = logits.chunks_exact(lanes);
    let mut labels = y.chunks_exact(lanes);
    for (block, block_labels) in (&mut blocks).zip(&mut labels) {
        loss += RowsInLanes::new(s, block, block_labels).losses;
    }
    let (tail, tail_labels) = (blocks.remainder(), labels.remainder());
    if !tail.is_empty() {
        let (block, block_labels) = padded(tail, tail_labels);
        let in_lanes = RowsInLanes::new(s, &block[..lanes], &block_labels[..lanes]);
        loss += in_lanes.losses_of_first(s, tail.len());
    }
    loss.reduce_add()
}

/// The last rows of a batch padded to a full block with zero logits and
/// label 0; the padding's rows are computed, then neither stored nor counted.
#[inline(always)]
fn padded<const C: usize>(
    rows: &[[f32; C]],
    labels: &[u8],
) -> ([[f32; C]; MAX_LANES], [u8; MAX_LANES]) {
    let mut block = [[0.0f32; C]; MAX_LANES];
    let mut block_labels = [0u8; MAX_LANES];
    block[..rows.len()].copy_from_slice(rows);
    block_labels[..labels.len()].copy_from_slice(labels);
    (block, block_labels)
}

/// `S::LANES` rows of logits transposed, row `r` in lane `r`, with their
/// softmax's numerators and sums and their losses.
struct RowsInLanes<S: Simd, const C: usize> {
    /// `exp(z[j] - max)`: lane `r` holds class `j` of row `r`.
    exps: [S::Vector; C],
    /// The sum over the classes of `exps`, per row.
    sums: S::Vector,
    /// Each row's loss, `logsumexp(z) - z[y]`.
    losses: S::Vector,
}

impl<S: Simd, const C: usize> RowsInLanes<S, C> {
    /// Exactly `S::LANES` rows and labels.
    #[inline(always)]
    fn new(s: S, rows: &[[f32; C]], labels: &[u8]) -> Self {
        // Transpose: `exps[j]` holds logit `j` of every row (for now).
        let mut column = [0.0f32; MAX_LANES];
        let mut exps = [s.zero(); C];
        for (j, z) in exps.iter_mut().enumerate() {
            for (c, row) in column.iter_mut().zip(rows) {
                *c = row[j];
            }
            *z = s.load(&column);
        }
        for ((c, row), &label) in column.iter_mut().zip(rows).zip(labels) {
            *c = row[usize::from(label)];
        }
        let z_label = s.load(&column);
        // Subtracting each row's max makes every exponent <= 0 and the
        // largest exp exactly 1, so the sum is in [1, C] (see the module
        // docs).
        let mut max = s.splat(f32::NEG_INFINITY);
        for &z in &exps {
            max = max.max(z);
        }
        let mut sums = s.zero();
        for e in exps.iter_mut() {
            *e = s.exp(*e - max);
            sums += *e;
        }
        // logsumexp(z) - z_y, arranged so both terms are small: sum >= 1.
        let losses = s.ln(sums) - (z_label - max);
        RowsInLanes { exps, sums, losses }
    }

    /// Replaces the rows by `softmax(z) - onehot(y)`.
    #[inline(always)]
    fn write_gradient(&self, rows: &mut [[f32; C]], labels: &[u8]) {
        let mut column = [0.0f32; MAX_LANES];
        for (j, e) in self.exps.iter().enumerate() {
            (*e / self.sums).store(&mut column);
            for (row, p) in rows.iter_mut().zip(column) {
                row[j] = p;
            }
        }
        for (row, &label) in rows.iter_mut().zip(labels) {
            row[usize::from(label)] -= 1.0;
        }
    }

    /// The losses of the first `n` rows, the other lanes zero.
    #[inline(always)]
    fn losses_of_first(&self, s: S, n: usize) -> S::Vector {
        let mut counted = [0.0f32; MAX_LANES];
        self.losses.store_partial(&mut counted[..n]);
        s.load(&counted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::Rng;

    fn check<S: Simd, const C: usize>(s: S, rng: &mut Rng, rows: usize, scale: f32) {
        let mut z = [[0.0f32; C]; 40];
        let mut y = [0u8; 40];
        for (row, label) in z.iter_mut().zip(&mut y) {
            for v in row.iter_mut() {
                *v = rng.normal() * scale;
            }
            *label = rng.below(C as u32) as u8;
        }
        let (z, y) = (&mut z[..rows], &y[..rows]);
        let mut want = [[0.0f32; C]; 40];
        want[..rows].copy_from_slice(z);
        let want_loss = reference::softmax_cross_entropy_grad(&mut want[..rows], y);
        let loss = softmax_cross_entropy_grad_with(s, z, y);
        assert!(
            (loss - want_loss).abs() <= 1e-5 * want_loss.abs() + 1e-5,
            "{} C={C} rows={rows}: {loss} vs {want_loss}",
            S::ISA
        );
        for (g, w) in z.iter().flatten().zip(want.iter().flatten()) {
            assert!((g - w).abs() <= 1e-6, "{} C={C}: {g} vs {w}", S::ISA);
        }
    }

    level_test! {
        fn fused_matches_reference<S>(s) {
            let mut rng = Rng::seed_from_u64(30);
            for rows in [0, 1, 5, 7, 8, 9, 15, 16, 17, 32, 33, 40] {
                for scale in [0.1, 3.0, 30.0] {
                    check::<S, 2>(s, &mut rng, rows, scale);
                    check::<S, 3>(s, &mut rng, rows, scale);
                    check::<S, 10>(s, &mut rng, rows, scale);
                    check::<S, 16>(s, &mut rng, rows, scale);
                    check::<S, 19>(s, &mut rng, rows, scale);
                    check::<S, 40>(s, &mut rng, rows, scale);
                }
            }
        }
    }

    level_test! {
        fn log_gather_matches_reference<S>(s) {
            let mut rng = Rng::seed_from_u64(31);
            for rows in [1usize, 3, 7, 8, 9, 15, 16, 17, 33, 40] {
                let mut p = [[0.0f32; 10]; 40];
                let mut y = [0u8; 40];
                for (row, label) in p.iter_mut().zip(&mut y) {
                    for v in row.iter_mut() {
                        *v = rng.normal();
                    }
                    reference::softmax_rows(core::slice::from_mut(row));
                    *label = rng.below(10) as u8;
                }
                let got = cross_entropy_with(s, &p[..rows], &y[..rows]);
                let want = reference::cross_entropy(&p[..rows], &y[..rows]);
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs() + 1e-6,
                    "{got} vs {want}"
                );
            }
            // A true class of probability 0 costs an infinite loss.
            let p = [[1.0f32, 0.0]; 3];
            assert_eq!(cross_entropy_with(s, &p, &[0, 1, 0]), f32::INFINITY);
        }
    }

    level_test! {
        fn fused_never_forms_log_zero<S>(s) {
            // softmax would underflow the true class to 0 and log-gather
            // would give infinity; the fused loss is the exact 2e4.
            let mut z = [[1e4f32, -1e4, 0.0]];
            let loss = softmax_cross_entropy_grad_with(s, &mut z, &[1]);
            assert_eq!(loss, 2e4);
            assert_eq!(z[0], [1.0, -1.0, 0.0]);
        }
    }

    level_test! {
        fn gradient_rows_sum_to_zero<S>(s) {
            let mut z = [[0.3f32, -2.0, 5.0, 1.0]];
            softmax_cross_entropy_grad_with(s, &mut z, &[2]);
            assert!(z[0].iter().sum::<f32>().abs() < 1e-6);
            assert!(z[0][2] < 0.0);
        }
    }

    level_test! {
        fn a_nan_logit_makes_its_row_nan<S>(s) {
            let mut z = [[0.0f32; 10]; 17];
            z[3][4] = f32::NAN;
            let loss = softmax_cross_entropy_grad_with(s, &mut z, &[1; 17]);
            assert!(loss.is_nan());
            assert!(z[3].iter().all(|v| v.is_nan()));
            assert!(z[2].iter().all(|v| v.is_finite()));
        }
    }

    level_test! {
        fn loss_without_gradient_is_the_same_loss<S>(s) {
            let mut rng = Rng::seed_from_u64(32);
            for rows in [0usize, 1, 7, 8, 9, 16, 17, 40] {
                let mut z = [[0.0f32; 10]; 40];
                let mut y = [0u8; 40];
                for (row, label) in z.iter_mut().zip(&mut y) {
                    row.iter_mut().for_each(|v| *v = rng.normal() * 5.0);
                    *label = rng.below(10) as u8;
                }
                let before = z;
                let loss = softmax_cross_entropy_with(s, &z[..rows], &y[..rows]);
                assert_eq!(z, before);
                let with_gradient = softmax_cross_entropy_grad_with(s, &mut z[..rows], &y[..rows]);
                assert_eq!(loss.to_bits(), with_gradient.to_bits(), "rows={rows}");
            }
        }
    }

    #[test]
    fn public_functions_run_the_kernels() {
        let mut z = [[0.0f32, 0.0], [3.0, -3.0]];
        let loss = softmax_cross_entropy_grad(&mut z, &[0, 0]);
        let want = core::f32::consts::LN_2 + libm::logf(1.0 + libm::expf(-6.0));
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
        assert_eq!(z[0], [-0.5, 0.5]);
        assert_eq!(
            softmax_cross_entropy(&[[0.0f32, 0.0], [3.0, -3.0]], &[0, 0]),
            loss
        );
        let p = [[0.5f32, 0.5], [0.25, 0.75]];
        let want = -(libm::logf(0.5) + libm::logf(0.75)) / 2.0;
        assert!((cross_entropy(&p, &[1, 1]) - want).abs() < 1e-7);
    }
}
