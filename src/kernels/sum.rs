//! Sums along an axis, keeping dimensions: the chapter's
//! `X.sum(0, keepdims=True)` and `X.sum(1, keepdims=True)`.
//!
//! With `X = [[1, 2, 3], [4, 5, 6]]`, the axis-0 sum is `[[5, 7, 9]]` (1x3) and
//! the axis-1 sum is `[[6], [15]]` (2x1). Softmax needs the axis-1 sum (the
//! normaliser of each row) and the bias gradient the axis-0 sum (over the batch).

use crate::simd::{Isa, Kernel, Simd, Vector};

/// `X.sum(0, keepdims=True)`: the column sums of an `R x C` array, as `1 x C`.
pub fn sum_axis0<const R: usize, const C: usize>(x: &[[f32; C]; R]) -> [[f32; C]; 1] {
    [column_sums(x)]
}

/// `X.sum(1, keepdims=True)`: the row sums of an `R x C` array, as `R x 1`.
pub fn sum_axis1<const R: usize, const C: usize>(x: &[[f32; C]; R]) -> [[f32; 1]; R] {
    struct Job<'a, const R: usize, const C: usize>(&'a [[f32; C]; R]);
    impl<const R: usize, const C: usize> Kernel for Job<'_, R, C> {
        type Output = [[f32; 1]; R];
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> [[f32; 1]; R] {
            self.0.map(|row| [row_sum_with(s, &row)])
        }
    }
    Isa::current().dispatch(Job(x))
}

/// `sum_i rows[i][c]` for every column `c`, over any number of rows: the
/// bias gradient is the column sums of the batch's output gradient.
pub fn column_sums<const C: usize>(rows: &[[f32; C]]) -> [f32; C] {
    struct Job<'a, const C: usize>(&'a [[f32; C]]);
    impl<const C: usize> Kernel for Job<'_, C> {
        type Output = [f32; C];
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> [f32; C] {
            column_sums_with(s, self.0)
        }
    }
    Isa::current().dispatch(Job(rows))
}

/// `sum_c row[c]`.
pub fn row_sum<const C: usize>(row: &[f32; C]) -> f32 {
    sum_axis1(&[*row])[0][0]
}

/// [`column_sums`] at level `S`: the columns a vector at a time, running
/// down the rows inside, so each column's partial sum stays in a register.
#[inline(always)]
pub(crate) fn column_sums_with<S: Simd, const C: usize>(s: S, rows: &[[f32; C]]) -> [f32; C] {
    let lanes = S::LANES;
    let mut out = [0.0; C];
    let full = C / lanes * lanes;
    for k in (0..full).step_by(lanes) {
        let mut acc = s.zero();
        for row in rows {
            acc += s.load(&row[k..]);
        }
        acc.store(&mut out[k..]);
    }
    if full < C {
        let mut acc = s.zero();
        for row in rows {
            acc += s.load_partial(&row[full..], 0.0);
        }
        acc.store_partial(&mut out[full..]);
    }
    out
}

/// [`row_sum`] at level `S`.
#[inline(always)]
pub(crate) fn row_sum_with<S: Simd, const C: usize>(s: S, row: &[f32; C]) -> f32 {
    let mut chunks = row.chunks_exact(S::LANES);
    let mut acc = s.zero();
    for chunk in &mut chunks {
        acc += s.load(chunk);
    }
    acc += s.load_partial(chunks.remainder(), 0.0);
    acc.reduce_add()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::Rng;

    #[test]
    fn chapter_example() {
        let x = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        assert_eq!(sum_axis0(&x), [[5.0, 7.0, 9.0]]);
        assert_eq!(sum_axis1(&x), [[6.0], [15.0]]);
    }

    fn check<S: Simd, const C: usize>(s: S, rng: &mut Rng) {
        for rows in [0, 1, 2, 3, 17, 64] {
            let mut x = [[0.0f32; C]; 64];
            for v in x.iter_mut().flatten() {
                *v = rng.normal() * 10.0;
            }
            let x = &x[..rows];
            let got = column_sums_with(s, x);
            let want = reference::column_sums(x);
            for c in 0..C {
                let bound: f32 = x.iter().map(|r| r[c].abs()).sum::<f32>() * 1e-6 + 1e-6;
                assert!((got[c] - want[c]).abs() <= bound, "C={C} rows={rows} c={c}");
            }
            for row in x {
                let bound = row.iter().map(|v| v.abs()).sum::<f32>() * 1e-6 + 1e-6;
                assert!((row_sum_with(s, row) - reference::row_sum(row)).abs() <= bound);
            }
        }
    }

    level_test! {
        fn matches_reference_for_many_widths<S>(s) {
            let mut rng = Rng::seed_from_u64(10);
            check::<S, 1>(s, &mut rng);
            check::<S, 3>(s, &mut rng);
            check::<S, 7>(s, &mut rng);
            check::<S, 8>(s, &mut rng);
            check::<S, 9>(s, &mut rng);
            check::<S, 10>(s, &mut rng);
            check::<S, 15>(s, &mut rng);
            check::<S, 16>(s, &mut rng);
            check::<S, 17>(s, &mut rng);
            check::<S, 31>(s, &mut rng);
            check::<S, 32>(s, &mut rng);
            check::<S, 33>(s, &mut rng);
            check::<S, 100>(s, &mut rng);
        }
    }

    #[test]
    fn public_row_sum_is_the_sum_of_the_row() {
        // 1 + 2 + ... + 33 = 561, exact in f32 in any order: full vectors
        // and a tail at every level.
        let mut row = [0.0f32; 33];
        for (i, v) in row.iter_mut().enumerate() {
            *v = (i + 1) as f32;
        }
        assert_eq!(row_sum(&row), 561.0);
        assert_eq!(row_sum(&[1.0, 2.0, 3.0]), 6.0);
    }

    #[test]
    fn nan_propagates() {
        let x = [[1.0, f32::NAN, 3.0], [4.0, 5.0, 6.0]];
        let s = sum_axis0(&x);
        assert!(s[0][1].is_nan() && s[0][0] == 5.0);
        assert!(sum_axis1(&x)[0][0].is_nan());
    }
}
