//! Sums along an axis, keeping dimensions: the chapter's
//! `X.sum(0, keepdims=True)` and `X.sum(1, keepdims=True)`.
//!
//! With `X = [[1, 2, 3], [4, 5, 6]]`, the axis-0 sum is `[[5, 7, 9]]` (1x3) and
//! the axis-1 sum is `[[6], [15]]` (2x1). Softmax needs the axis-1 sum (the
//! normaliser of each row) and the bias gradient the axis-0 sum (over the batch).

use super::{load, load_partial, store_partial, LANES};
use wide::f32x16;

/// `X.sum(0, keepdims=True)`: the column sums of an `R x C` array, as `1 x C`.
pub fn sum_axis0<const R: usize, const C: usize>(x: &[[f32; C]; R]) -> [[f32; C]; 1] {
    [column_sums(x)]
}

/// `X.sum(1, keepdims=True)`: the row sums of an `R x C` array, as `R x 1`.
pub fn sum_axis1<const R: usize, const C: usize>(x: &[[f32; C]; R]) -> [[f32; 1]; R] {
    let mut out = [[0.0; 1]; R];
    for (o, row) in out.iter_mut().zip(x) {
        o[0] = row_sum(row);
    }
    out
}

/// `sum_i rows[i][c]` for every column `c`, over any number of rows: the
/// bias gradient is the column sums of the batch's output gradient.
pub fn column_sums<const C: usize>(rows: &[[f32; C]]) -> [f32; C] {
    let mut out = [0.0; C];
    // Walk the columns a vector at a time and run down the rows inside, so
    // each column's partial sum stays in a register.
    let full = C / LANES * LANES;
    for k in (0..full).step_by(LANES) {
        let mut acc = f32x16::ZERO;
        for row in rows {
            acc += load(&row[k..]);
        }
        out[k..k + LANES].copy_from_slice(&acc.to_array());
    }
    if full < C {
        let mut acc = f32x16::ZERO;
        for row in rows {
            acc += load_partial(&row[full..], 0.0);
        }
        store_partial(acc, &mut out[full..]);
    }
    out
}

/// `sum_c row[c]`.
pub fn row_sum<const C: usize>(row: &[f32; C]) -> f32 {
    let mut chunks = row.chunks_exact(LANES);
    let mut acc = f32x16::ZERO;
    for chunk in &mut chunks {
        acc += load(chunk);
    }
    acc += load_partial(chunks.remainder(), 0.0);
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

    fn check<const C: usize>(rng: &mut Rng) {
        for rows in [0, 1, 2, 3, 17, 64] {
            let mut x = [[0.0f32; C]; 64];
            for v in x.iter_mut().flatten() {
                *v = rng.normal() * 10.0;
            }
            let x = &x[..rows];
            let got = column_sums(x);
            let want = reference::column_sums(x);
            for c in 0..C {
                let bound: f32 = x.iter().map(|r| r[c].abs()).sum::<f32>() * 1e-6 + 1e-6;
                assert!((got[c] - want[c]).abs() <= bound, "C={C} rows={rows} c={c}");
            }
            for row in x {
                let bound = row.iter().map(|v| v.abs()).sum::<f32>() * 1e-6 + 1e-6;
                assert!((row_sum(row) - reference::row_sum(row)).abs() <= bound);
            }
        }
    }

    #[test]
    fn matches_reference_for_many_widths() {
        let mut rng = Rng::seed_from_u64(10);
        check::<1>(&mut rng);
        check::<3>(&mut rng);
        check::<10>(&mut rng);
        check::<15>(&mut rng);
        check::<16>(&mut rng);
        check::<17>(&mut rng);
        check::<31>(&mut rng);
        check::<32>(&mut rng);
        check::<33>(&mut rng);
        check::<100>(&mut rng);
    }

    #[test]
    fn nan_propagates() {
        let x = [[1.0, f32::NAN, 3.0], [4.0, 5.0, 6.0]];
        let s = sum_axis0(&x);
        assert!(s[0][1].is_nan() && s[0][0] == 5.0);
        assert!(sum_axis1(&x)[0][0].is_nan());
    }
}
