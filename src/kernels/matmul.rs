//! The two matrix products of training, blocked for registers.
//!
//! Forward: `logits = X W + b`, with `X` a batch of `B` rows of `IN` inputs.
//! Backward: `grad_W = X^T G`, with `G` the `B x OUT` gradient of the loss
//! with respect to the logits.
//!
//! `OUT` is 10 for Fashion-MNIST, narrower than one 16-lane vector, so
//! vectorising along `OUT` would waste most of every register. Both products
//! instead run along `IN`, and to make that a unit-stride walk for `W` as
//! well as for `X`, the weights are stored transposed: `w[j]` is the row of
//! `IN` weights of class `j` (`OUT x IN`, the chapter's `W` is `IN x OUT`).
//!
//! - [`logits`] computes `OUT` dot products of length `IN` per row of `X`. It
//!   takes [`ROW_BLOCK`] rows at a time, so every weight vector it loads is
//!   used for several rows, and keeps `ROW_BLOCK x OUT` vector accumulators in
//!   registers, reducing each across lanes once at the end.
//! - [`accumulate_weight_gradient`] computes each 16-column panel of `W`'s
//!   gradient as a sum over the batch of `g[i][j] * x[i][k..k+16]`: the
//!   accumulators for [`PANEL_VECTORS`] vectors of all `OUT` classes stay in
//!   registers while the whole batch streams past once.

use super::{load, load_partial, LANES};
use core::array;
use wide::f32x16;

/// Rows of `X` that share each load of `W` in [`logits`]. With `OUT = 10`, two
/// rows need 20 accumulators plus 2 row vectors and a weight vector: 23 of the
/// 32 AVX-512 registers, while three rows (34) would spill to the stack.
pub const ROW_BLOCK: usize = 2;

/// 16-lane vectors of `W` one pass of [`accumulate_weight_gradient`] updates:
/// `OUT x PANEL_VECTORS` = 20 accumulators for `OUT = 10`, again within the
/// register file, with `PANEL_VECTORS` row loads shared by all classes.
pub const PANEL_VECTORS: usize = 2;

/// `logits[i][j] = b[j] + sum_k x[i][k] * w[j][k]`: the forward pass
/// `X W + b` with `w` stored class-major (`OUT x IN`).
///
/// # Panics
/// If `x` and `logits` have different numbers of rows.
pub fn logits<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    logits: &mut [[f32; OUT]],
) {
    assert_eq!(x.len(), logits.len(), "one row of logits per row of X");
    let mut x_blocks = x.chunks_exact(ROW_BLOCK);
    let mut out_blocks = logits.chunks_exact_mut(ROW_BLOCK);
    for (xb, ob) in (&mut x_blocks).zip(&mut out_blocks) {
        logits_block::<ROW_BLOCK, IN, OUT>(xb, w, b, ob);
    }
    for (xr, or) in x_blocks.remainder().iter().zip(out_blocks.into_remainder()) {
        logits_block::<1, IN, OUT>(core::slice::from_ref(xr), w, b, core::slice::from_mut(or));
    }
}

/// [`logits`] for exactly `R` rows, the register-blocked inner kernel.
#[inline(always)]
fn logits_block<const R: usize, const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    out: &mut [[f32; OUT]],
) {
    let x: &[[f32; IN]; R] = x.try_into().unwrap();
    let mut acc = [[f32x16::ZERO; OUT]; R];
    let full = IN / LANES * LANES;
    for k in (0..full).step_by(LANES) {
        let xv: [f32x16; R] = array::from_fn(|r| load(&x[r][k..]));
        for j in 0..OUT {
            let wv = load(&w[j][k..]);
            for r in 0..R {
                acc[r][j] = xv[r].mul_add(wv, acc[r][j]);
            }
        }
    }
    if full < IN {
        // The last, partial vector: zero padding adds nothing to the dots.
        let xv: [f32x16; R] = array::from_fn(|r| load_partial(&x[r][full..], 0.0));
        for j in 0..OUT {
            let wv = load_partial(&w[j][full..], 0.0);
            for r in 0..R {
                acc[r][j] = xv[r].mul_add(wv, acc[r][j]);
            }
        }
    }
    for (out_row, acc_row) in out.iter_mut().zip(&acc) {
        for ((o, a), bias) in out_row.iter_mut().zip(acc_row).zip(b) {
            *o = a.reduce_add() + bias;
        }
    }
}

/// `w[j][k] += scale * sum_i g[i][j] * x[i][k]`: adds `scale * X^T G` to the
/// class-major weights.
///
/// With `scale = -lr / B` and `g` the gradient of the summed loss with respect
/// to the logits, this is the SGD update `W <- W - lr * grad_W` without
/// materialising `grad_W`; [`weight_gradient`] is the plain product.
///
/// # Panics
/// If `x` and `g` have different numbers of rows.
pub fn accumulate_weight_gradient<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
) {
    assert_eq!(x.len(), g.len(), "one row of G per row of X");
    let mut k = 0;
    while k + PANEL_VECTORS * LANES <= IN {
        gradient_panel::<PANEL_VECTORS, IN, OUT>(x, g, scale, w, k);
        k += PANEL_VECTORS * LANES;
    }
    while k + LANES <= IN {
        gradient_panel::<1, IN, OUT>(x, g, scale, w, k);
        k += LANES;
    }
    if k < IN {
        // Fewer than 16 columns are left: a plain loop costs little here.
        for (j, w_row) in w.iter_mut().enumerate() {
            for (c, w_jc) in w_row.iter_mut().enumerate().skip(k) {
                let dot: f32 = x.iter().zip(g).map(|(xr, gr)| gr[j] * xr[c]).sum();
                *w_jc += scale * dot;
            }
        }
    }
}

/// One panel of [`accumulate_weight_gradient`]: columns `k..k + V * 16` of
/// every class, accumulated over the whole batch in registers.
#[inline(always)]
fn gradient_panel<const V: usize, const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
    k: usize,
) {
    let mut acc = [[f32x16::ZERO; V]; OUT];
    for (x_row, g_row) in x.iter().zip(g) {
        let xv: [f32x16; V] = array::from_fn(|v| load(&x_row[k + v * LANES..]));
        for (acc_j, &g_ij) in acc.iter_mut().zip(g_row) {
            let g_ij = f32x16::splat(g_ij);
            for v in 0..V {
                acc_j[v] = g_ij.mul_add(xv[v], acc_j[v]);
            }
        }
    }
    let scale = f32x16::splat(scale);
    for (w_row, acc_j) in w.iter_mut().zip(&acc) {
        for (v, a) in acc_j.iter().enumerate() {
            let dst = &mut w_row[k + v * LANES..k + (v + 1) * LANES];
            let updated = a.mul_add(scale, load(dst));
            dst.copy_from_slice(&updated.to_array());
        }
    }
}

/// `grad_w = X^T G` (class-major: `grad_w[j][k] = sum_i g[i][j] * x[i][k]`).
///
/// # Panics
/// If `x` and `g` have different numbers of rows.
pub fn weight_gradient<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    g: &[[f32; OUT]],
    grad_w: &mut [[f32; IN]; OUT],
) {
    for row in grad_w.iter_mut() {
        row.fill(0.0);
    }
    accumulate_weight_gradient(x, g, 1.0, grad_w);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;
    use crate::Rng;

    const MAX_ROWS: usize = 37;

    fn random_rows<const N: usize>(rng: &mut Rng, scale: f32) -> [[f32; N]; MAX_ROWS] {
        let mut m = [[0.0; N]; MAX_ROWS];
        for v in m.iter_mut().flatten() {
            *v = rng.normal() * scale;
        }
        m
    }

    /// FMA and the blocked summation order round differently from the
    /// naive loop; both are within a few ulps of the sum of magnitudes.
    fn tolerance(sum_abs: f32) -> f32 {
        2e-6 * sum_abs + 1e-6
    }

    fn check<const IN: usize, const OUT: usize>(rng: &mut Rng) {
        let x = random_rows::<IN>(rng, 1.0);
        let g = random_rows::<OUT>(rng, 0.3);
        let w_rows = random_rows::<IN>(rng, 0.5);
        let w: [[f32; IN]; OUT] = array::from_fn(|j| w_rows[j % MAX_ROWS]);
        let b: [f32; OUT] = array::from_fn(|j| j as f32 - 3.5);
        for rows in [0, 1, 2, 3, 5, 16, MAX_ROWS] {
            let x = &x[..rows];
            let g = &g[..rows];

            let mut got = [[0.0; OUT]; MAX_ROWS];
            let mut want = [[0.0; OUT]; MAX_ROWS];
            logits(x, &w, &b, &mut got[..rows]);
            reference::logits(x, &w, &b, &mut want[..rows]);
            for i in 0..rows {
                for j in 0..OUT {
                    let sum_abs: f32 = (0..IN).map(|k| (x[i][k] * w[j][k]).abs()).sum();
                    let err = (got[i][j] - want[i][j]).abs();
                    assert!(
                        err <= tolerance(sum_abs + b[j].abs()),
                        "logits IN={IN} OUT={OUT} rows={rows} [{i}][{j}]: {} vs {}",
                        got[i][j],
                        want[i][j]
                    );
                }
            }

            let mut got = w;
            let mut want = w;
            accumulate_weight_gradient(x, g, -0.7, &mut got);
            reference::accumulate_weight_gradient(x, g, -0.7, &mut want);
            for j in 0..OUT {
                for k in 0..IN {
                    let sum_abs: f32 = (0..rows).map(|i| (g[i][j] * x[i][k]).abs()).sum();
                    let err = (got[j][k] - want[j][k]).abs();
                    assert!(
                        err <= tolerance(0.7 * sum_abs + w[j][k].abs()),
                        "gradient IN={IN} OUT={OUT} rows={rows} [{j}][{k}]: {} vs {}",
                        got[j][k],
                        want[j][k]
                    );
                }
            }
        }
    }

    #[test]
    fn matches_reference_for_many_shapes() {
        let mut rng = Rng::seed_from_u64(40);
        check::<1, 1>(&mut rng);
        check::<1, 10>(&mut rng);
        check::<7, 3>(&mut rng);
        check::<15, 10>(&mut rng);
        check::<16, 10>(&mut rng);
        check::<17, 10>(&mut rng);
        check::<31, 2>(&mut rng);
        check::<32, 10>(&mut rng);
        check::<33, 17>(&mut rng);
        check::<48, 10>(&mut rng);
        check::<63, 5>(&mut rng);
        check::<100, 10>(&mut rng);
        check::<784, 10>(&mut rng);
        check::<1024, 10>(&mut rng);
        check::<1030, 11>(&mut rng);
    }

    #[test]
    fn weight_gradient_is_the_plain_product() {
        let x = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let g = [[1.0, 0.0], [0.5, -1.0]];
        let mut grad = [[9.0; 3]; 2];
        weight_gradient(&x, &g, &mut grad);
        assert_eq!(grad, [[3.0, 4.5, 6.0], [-4.0, -5.0, -6.0]]);
    }

    #[test]
    fn nan_and_infinity_propagate() {
        let mut x = [[1.0f32; 20]; 3];
        x[1][17] = f32::NAN;
        x[2][3] = f32::INFINITY;
        let w = [[1.0f32; 20]; 2];
        let mut out = [[0.0; 2]; 3];
        logits(&x, &w, &[0.0; 2], &mut out);
        assert_eq!(out[0], [20.0, 20.0]);
        assert!(out[1].iter().all(|v| v.is_nan()));
        assert!(out[2].iter().all(|v| *v == f32::INFINITY));
    }
}
