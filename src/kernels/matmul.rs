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
//!   takes [`ROW_BLOCK`] rows and [`CLASS_BLOCK`] classes at a time, so every
//!   vector it loads feeds several FMAs, and keeps the
//!   `ROW_BLOCK x CLASS_BLOCK` vector accumulators in registers for the whole
//!   row, reducing each across lanes once at the end.
//! - [`accumulate_weight_gradient`] computes each 16-column panel of `W`'s
//!   gradient as a sum over the batch of `g[i][j] * x[i][k..k+16]`: the
//!   accumulators for [`PANEL_VECTORS`] vectors of all `OUT` classes stay in
//!   registers while the whole batch streams past once.
//! - [`logits_u8`] and [`accumulate_weight_gradient_u8`] are the same kernels
//!   reading raw `u8` pixels (a quarter of the bytes of `f32` rows), widened
//!   to `f32` in registers, with the pixel scale (1/255) applied once per
//!   result instead of once per pixel. [`logits_u8_picked`] and
//!   [`weight_gradient_u8_picked`] read a shuffled minibatch in place, row
//!   by row through a list of indices ([`super::Picked`]).
//!
//! # Block sizes, and what they were measured against
//! Measured single-threaded at `B = 256`, `OUT = 10` with 64-byte-aligned
//! buffers, median of alternating runs, on the development machine: an AMD
//! EPYC reporting family 25 model 17 (Zen 4 "Genoa"; 32 KB 8-way L1D, 1 MB
//! L2). Zen 4 executes a 512-bit FMA as two 256-bit halves, so its peak is
//! one `zmm` FMA per cycle: a register-only FMA loop measures 116-118 GFLOP/s
//! (the same with `ymm`), and that is the ceiling for the numbers below.
//! The instruction counts behind each choice hold for any AVX-512 core.

use super::{load, Element, Picked, Rows, LANES};
use core::array;
use wide::f32x16;

/// Rows of `X` that share each load of `W` in [`logits`].
///
/// Four rows by five classes keep 20 accumulators, 4 row vectors and 1
/// weight vector (25 of the 32 AVX-512 registers) and issue 9 loads per 20
/// FMAs. At `IN = 1024` (GFLOP/s, medians): 4 x 5 gives 108, 5 x 5 108,
/// 3 x 5 102, 6 x 4 97, 5 x 2 100, 3 x 10 (33 registers: spills) 88,
/// 4 x 10 (spills) 60, and the earlier 2 x 10 only 78-83: every row of `X`
/// and `W` is 4 KB apart there, so the 2 + 10 lines one step touches all map
/// to the same set of the 8-way L1 and evict each other; 4 + 5 lines mostly
/// fit. At `IN = 784` (no such aliasing) 2 x 10, 4 x 5 and 5 x 5 all give
/// 106-109. Splitting `IN` into 256-512-column chunks so a chunk of `W` stays
/// in L1 measured slower (85-102): it multiplies the lane reductions. So
/// did swapping the loops (one class block over the whole batch, then the
/// next, so that block of `W` stays in L1): 108 / 105 against 108.5 / 107.
///
/// Alignment: with `X` 16 bytes off a cache line (a large `Vec` from
/// `malloc`) 4 x 5 gives 102 / 106, with `W` off as well 91 / 105 (2 x 10:
/// 55 / 97), because every 16-float load then spans two lines. Keep both
/// 64-byte aligned. The kernel does not peel columns to align itself, as
/// that would make the summation order, and so the rounding, depend on
/// where the buffers happen to be.
///
/// The 20 lane reductions at the end of a row block are cheap next to its
/// `IN / 16 x 20` FMAs: reducing four accumulators at a time with a
/// transpose-and-add tree (17 instead of 28 vector instructions per four
/// sums) measured 104.2 against 104.0 (`IN = 1024`) and 100 against 98
/// (`IN = 784`), within noise, so each accumulator is reduced on its own.
pub const ROW_BLOCK: usize = 4;

/// Classes (rows of `W`) per pass of [`logits`]: see [`ROW_BLOCK`]. Classes
/// past the last full block (`OUT % CLASS_BLOCK`) are done one at a time.
pub const CLASS_BLOCK: usize = 5;

/// 16-lane vectors of `W` one pass of [`accumulate_weight_gradient`] updates:
/// `OUT x PANEL_VECTORS` = 20 accumulators for `OUT = 10`, within the
/// register file, with `PANEL_VECTORS` row loads and `OUT` broadcasts of `G`
/// shared by 20 FMAs. This runs at 112 GFLOP/s (`IN = 1024`) and 115
/// (`IN = 784`), 95-97% of the FMA peak. Measured alternatives, none better:
/// one vector (10 accumulators) 111 / 115, but 84 instead of 99 at
/// `IN = 1024` when `X` is 16 bytes off a cache line (every load then
/// straddles two lines; two vectors straddle three); four vectors of five
/// classes (each `X` panel read twice) 113 / 112; the same blocked over `IN`
/// in 64-256-column chunks so `X`'s panel is reused from L1 across the class
/// halves, 112-113 / 113-115.
pub const PANEL_VECTORS: usize = 2;

/// [`PANEL_VECTORS`] for [`accumulate_weight_gradient_u8`]. With one vector
/// per row, LLVM folds each broadcast of `G` into its FMA (`{1to16}`); with
/// two it broadcasts into registers first, and together with the two
/// conversions per row that measured 101-102 GFLOP/s against 109 for one
/// vector (`IN = 784` and `1024`). A 16-byte load of pixels never straddles
/// a cache line, so the alignment effect above does not arise. (Widening by
/// `or`-ing the bytes into the mantissa of 2^23 and subtracting 2^23 instead
/// of `vcvtdq2ps` measured no faster: 110 / 98 for one / two vectors.)
pub const PANEL_VECTORS_U8: usize = 1;

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
    // `b + 1.0 * dot` rounds exactly like `dot + b`.
    scaled_logits(x, w, b, 1.0, logits);
}

/// `logits[i][j] = b[j] + scale * sum_k x[i][k] * w[j][k]` for `u8` inputs:
/// [`logits`] on pixels, with `scale = 1.0 / 255.0` giving the forward pass
/// of the images scaled to `[0, 1]`.
///
/// The dot products are taken with the integer pixel values and the scale is
/// applied once per logit, so the result differs from [`logits`] on
/// `x * scale` only by rounding.
///
/// # Panics
/// If `x` and `logits` have different numbers of rows.
pub fn logits_u8<const IN: usize, const OUT: usize>(
    x: &[[u8; IN]],
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    logits: &mut [[f32; OUT]],
) {
    scaled_logits(x, w, b, scale, logits);
}

/// `logits[i][j] = b[j] + scale * sum_k x[i][k] * w[j][k]` for the rows
/// `images[rows[i]]`: [`logits_u8`] on a minibatch picked out of the training
/// images by index, without copying it together first (see [`Picked`]).
///
/// # Panics
/// If `rows` and `logits` have different lengths or an index is out of range.
pub fn logits_u8_picked<const IN: usize, const OUT: usize>(
    images: &[[u8; IN]],
    rows: &[u32],
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    logits: &mut [[f32; OUT]],
) {
    let x = Picked { from: images, rows };
    scaled_logits(&x, w, b, scale, logits);
}

/// `logits[i][j] = b[j] + scale * sum_k x[i][k] * w[j][k]`, all forward
/// kernels.
fn scaled_logits<T: Element, X: Rows<T, IN> + ?Sized, const IN: usize, const OUT: usize>(
    x: &X,
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    logits: &mut [[f32; OUT]],
) {
    assert_eq!(x.count(), logits.len(), "one row of logits per row of X");
    let mut out_blocks = logits.chunks_exact_mut(ROW_BLOCK);
    let mut i = 0;
    for ob in &mut out_blocks {
        let xb: [&[T; IN]; ROW_BLOCK] = array::from_fn(|r| x.row(i + r));
        logits_rows::<T, ROW_BLOCK, IN, OUT>(&xb, w, b, scale, ob);
        i += ROW_BLOCK;
    }
    for or in out_blocks.into_remainder() {
        logits_rows::<T, 1, IN, OUT>(&[x.row(i)], w, b, scale, core::slice::from_mut(or));
        i += 1;
    }
}

/// [`scaled_logits`] for exactly `R` rows: all classes, [`CLASS_BLOCK`] at a time.
#[inline(always)]
fn logits_rows<T: Element, const R: usize, const IN: usize, const OUT: usize>(
    x: &[&[T; IN]; R],
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    out: &mut [[f32; OUT]],
) {
    let mut j = 0;
    while j + CLASS_BLOCK <= OUT {
        logits_block::<T, R, CLASS_BLOCK, IN, OUT>(x, w, b, scale, out, j);
        j += CLASS_BLOCK;
    }
    while j < OUT {
        logits_block::<T, R, 1, IN, OUT>(x, w, b, scale, out, j);
        j += 1;
    }
}

/// The register-blocked inner kernel: `R` rows by classes `j0..j0 + J`.
#[inline(always)]
fn logits_block<T: Element, const R: usize, const J: usize, const IN: usize, const OUT: usize>(
    x: &[&[T; IN]; R],
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    out: &mut [[f32; OUT]],
    j0: usize,
) {
    let w: &[[f32; IN]; J] = w[j0..j0 + J].try_into().unwrap();
    let mut acc = [[f32x16::ZERO; J]; R];
    let full = IN / LANES * LANES;
    for k in (0..full).step_by(LANES) {
        let xv: [f32x16; R] = array::from_fn(|r| T::load(&x[r][k..]));
        for (j, w_row) in w.iter().enumerate() {
            let wv = load(&w_row[k..]);
            for r in 0..R {
                acc[r][j] = xv[r].mul_add(wv, acc[r][j]);
            }
        }
    }
    if full < IN {
        // The last, partial vector: zero padding adds nothing to the dots.
        let xv: [f32x16; R] = array::from_fn(|r| T::load_partial(&x[r][full..]));
        for (j, w_row) in w.iter().enumerate() {
            let wv = f32::load_partial(&w_row[full..]);
            for r in 0..R {
                acc[r][j] = xv[r].mul_add(wv, acc[r][j]);
            }
        }
    }
    for (out_row, acc_row) in out.iter_mut().zip(&acc) {
        let out_row = &mut out_row[j0..j0 + J];
        for ((o, a), bias) in out_row.iter_mut().zip(acc_row).zip(&b[j0..j0 + J]) {
            *o = bias + scale * a.reduce_add();
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
    accumulate::<f32, _, PANEL_VECTORS, IN, OUT, true>(x, g, scale, w);
}

/// `w[j][k] += scale * sum_i g[i][j] * x[i][k]` for `u8` inputs:
/// [`accumulate_weight_gradient`] on pixels. With `scale = -lr / (255 B)` it
/// is the SGD update for images scaled to `[0, 1]`.
///
/// # Panics
/// If `x` and `g` have different numbers of rows.
pub fn accumulate_weight_gradient_u8<const IN: usize, const OUT: usize>(
    x: &[[u8; IN]],
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
) {
    accumulate::<u8, _, PANEL_VECTORS_U8, IN, OUT, true>(x, g, scale, w);
}

/// `grad_w[j][k] = sum_i g[i][j] * images[rows[i]][k]`: the weight gradient
/// of a minibatch picked out of the training images by index (see
/// [`Picked`]), written over `grad_w` (no need to zero it first).
///
/// # Panics
/// If `rows` and `g` have different lengths or an index is out of range.
pub fn weight_gradient_u8_picked<const IN: usize, const OUT: usize>(
    images: &[[u8; IN]],
    rows: &[u32],
    g: &[[f32; OUT]],
    grad_w: &mut [[f32; IN]; OUT],
) {
    let x = Picked { from: images, rows };
    accumulate::<u8, _, PANEL_VECTORS_U8, IN, OUT, false>(&x, g, 1.0, grad_w);
}

/// All gradient kernels: whole panels of `V` vectors, then single vectors,
/// then a zero-padded partial vector for the last `IN % 16` columns. `ADD`
/// adds `scale * X^T G` to `w`; otherwise it is written over `w`, which
/// saves zeroing it and reading the zeros back.
fn accumulate<
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const V: usize,
    const IN: usize,
    const OUT: usize,
    const ADD: bool,
>(
    x: &X,
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
) {
    assert_eq!(x.count(), g.len(), "one row of G per row of X");
    let mut k = 0;
    while k + V * LANES <= IN {
        gradient_panel::<T, X, V, IN, OUT, ADD>(x, g, scale, w, k);
        k += V * LANES;
    }
    while k + LANES <= IN {
        gradient_panel::<T, X, 1, IN, OUT, ADD>(x, g, scale, w, k);
        k += LANES;
    }
    if k < IN {
        gradient_tail::<T, X, IN, OUT, ADD>(x, g, scale, w, k);
    }
}

/// One panel of [`accumulate`]: columns `k..k + V * 16` of every class,
/// accumulated over the whole batch in registers.
#[inline(always)]
fn gradient_panel<
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const V: usize,
    const IN: usize,
    const OUT: usize,
    const ADD: bool,
>(
    x: &X,
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
    k: usize,
) {
    let mut acc = [[f32x16::ZERO; V]; OUT];
    for (i, g_row) in g.iter().enumerate() {
        let x_row = x.row(i);
        let xv: [f32x16; V] = array::from_fn(|v| T::load(&x_row[k + v * LANES..]));
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
            let updated = if ADD {
                a.mul_add(scale, load(dst))
            } else {
                *a * scale
            };
            dst.copy_from_slice(&updated.to_array());
        }
    }
}

/// The last `IN - k < 16` columns: one zero-padded vector per row.
#[inline(always)]
fn gradient_tail<
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const IN: usize,
    const OUT: usize,
    const ADD: bool,
>(
    x: &X,
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
    k: usize,
) {
    let mut acc = [f32x16::ZERO; OUT];
    for (i, g_row) in g.iter().enumerate() {
        let xv = T::load_partial(&x.row(i)[k..]);
        for (acc_j, &g_ij) in acc.iter_mut().zip(g_row) {
            *acc_j = f32x16::splat(g_ij).mul_add(xv, *acc_j);
        }
    }
    for (w_row, acc_j) in w.iter_mut().zip(&acc) {
        let dst = &mut w_row[k..];
        for (d, a) in dst.iter_mut().zip(acc_j.to_array()) {
            *d = if ADD { *d + scale * a } else { scale * a };
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
    accumulate::<f32, _, PANEL_VECTORS, IN, OUT, false>(x, g, 1.0, grad_w);
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::kernels::reference;
    use crate::Rng;
    use std::format;

    const MAX_ROWS: usize = 37;
    /// Around every multiple of [`ROW_BLOCK`] (full blocks plus 0-3 leftover
    /// rows), the empty batch and one that is not a multiple of anything.
    const ROW_COUNTS: [usize; 12] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, MAX_ROWS];

    fn random_rows<const N: usize>(rng: &mut Rng, scale: f32) -> [[f32; N]; MAX_ROWS] {
        let mut m = [[0.0; N]; MAX_ROWS];
        for v in m.iter_mut().flatten() {
            *v = rng.normal() * scale;
        }
        m
    }

    fn random_pixels<const N: usize>(rng: &mut Rng) -> [[u8; N]; MAX_ROWS] {
        let mut m = [[0; N]; MAX_ROWS];
        for v in m.iter_mut().flatten() {
            *v = (rng.next_u64() >> 56) as u8;
        }
        // The extremes too.
        m[0][0] = 255;
        m[MAX_ROWS - 1][N - 1] = 0;
        m
    }

    /// FMA and the blocked summation order round differently from the
    /// naive loop; both are within a few ulps of the sum of magnitudes.
    fn tolerance(sum_abs: f32) -> f32 {
        2e-6 * sum_abs + 1e-6
    }

    /// Compares the kernel's logits with the reference's; `terms(i, j)` is
    /// the sum of the magnitudes of the terms of logit `[i][j]`.
    fn assert_logits_close<const OUT: usize>(
        what: &str,
        got: &[[f32; OUT]],
        want: &[[f32; OUT]],
        terms: impl Fn(usize, usize) -> f32,
    ) {
        for (i, (got, want)) in got.iter().zip(want).enumerate() {
            for j in 0..OUT {
                let err = (got[j] - want[j]).abs();
                assert!(
                    err <= tolerance(terms(i, j)),
                    "{what} [{i}][{j}]: {} vs {}",
                    got[j],
                    want[j]
                );
            }
        }
    }

    fn assert_weights_close<const IN: usize, const OUT: usize>(
        what: &str,
        got: &[[f32; IN]; OUT],
        want: &[[f32; IN]; OUT],
        terms: impl Fn(usize, usize) -> f32,
    ) {
        for j in 0..OUT {
            for k in 0..IN {
                let err = (got[j][k] - want[j][k]).abs();
                assert!(
                    err <= tolerance(terms(j, k)),
                    "{what} [{j}][{k}]: {} vs {}",
                    got[j][k],
                    want[j][k]
                );
            }
        }
    }

    fn check<const IN: usize, const OUT: usize>(rng: &mut Rng) {
        let x = random_rows::<IN>(rng, 1.0);
        let p = random_pixels::<IN>(rng);
        let g = random_rows::<OUT>(rng, 0.3);
        let w_rows = random_rows::<IN>(rng, 0.5);
        let w: [[f32; IN]; OUT] = array::from_fn(|j| w_rows[j % MAX_ROWS]);
        let b: [f32; OUT] = array::from_fn(|j| j as f32 - 3.5);
        let pixel_scale = 1.0 / 255.0;
        for rows in ROW_COUNTS {
            let shape = format!("IN={IN} OUT={OUT} rows={rows}");
            let (x, p, g) = (&x[..rows], &p[..rows], &g[..rows]);

            let mut got = [[0.0; OUT]; MAX_ROWS];
            let mut want = [[0.0; OUT]; MAX_ROWS];
            logits(x, &w, &b, &mut got[..rows]);
            reference::logits(x, &w, &b, &mut want[..rows]);
            assert_logits_close(
                &format!("logits {shape}"),
                &got[..rows],
                &want[..rows],
                |i, j| (0..IN).map(|k| (x[i][k] * w[j][k]).abs()).sum::<f32>() + b[j].abs(),
            );

            logits_u8(p, &w, &b, pixel_scale, &mut got[..rows]);
            reference::logits_u8(p, &w, &b, pixel_scale, &mut want[..rows]);
            assert_logits_close(
                &format!("logits_u8 {shape}"),
                &got[..rows],
                &want[..rows],
                |i, j| {
                    let dot: f32 = (0..IN).map(|k| (f32::from(p[i][k]) * w[j][k]).abs()).sum();
                    pixel_scale * dot + b[j].abs()
                },
            );

            let mut got = w;
            let mut want = w;
            accumulate_weight_gradient(x, g, -0.7, &mut got);
            reference::accumulate_weight_gradient(x, g, -0.7, &mut want);
            assert_weights_close(&format!("gradient {shape}"), &got, &want, |j, k| {
                0.7 * (0..rows).map(|i| (g[i][j] * x[i][k]).abs()).sum::<f32>() + w[j][k].abs()
            });

            let scale = -0.7 * pixel_scale;
            let mut got = w;
            let mut want = w;
            accumulate_weight_gradient_u8(p, g, scale, &mut got);
            reference::accumulate_weight_gradient_u8(p, g, scale, &mut want);
            assert_weights_close(&format!("gradient_u8 {shape}"), &got, &want, |j, k| {
                let dot: f32 = (0..rows)
                    .map(|i| (g[i][j] * f32::from(p[i][k])).abs())
                    .sum();
                scale.abs() * dot + w[j][k].abs()
            });
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
        check::<17, 4>(&mut rng);
        check::<17, 10>(&mut rng);
        check::<31, 2>(&mut rng);
        check::<32, 10>(&mut rng);
        check::<33, 17>(&mut rng);
        check::<47, 5>(&mut rng);
        check::<48, 10>(&mut rng);
        check::<63, 6>(&mut rng);
        check::<79, 11>(&mut rng);
        check::<100, 10>(&mut rng);
        check::<784, 10>(&mut rng);
        check::<1024, 10>(&mut rng);
        check::<1030, 11>(&mut rng);
    }

    /// The picked kernels read `images[rows[i]]` in place; they must give
    /// the bits the block kernels give on those rows copied together.
    fn check_picked<const IN: usize, const OUT: usize>(rng: &mut Rng) {
        let images = random_pixels::<IN>(rng);
        let w = random_rows::<IN>(rng, 0.1);
        let w: [[f32; IN]; OUT] = array::from_fn(|j| w[j]);
        let b: [f32; OUT] = array::from_fn(|j| j as f32 * 0.1);
        for n in ROW_COUNTS {
            // Shuffled, with repeats, as the last rows of an epoch's order
            // never are but a caller's list may be.
            let rows: [u32; MAX_ROWS] = array::from_fn(|_| rng.below(MAX_ROWS as u32));
            let rows = &rows[..n];
            let mut gathered = [[0u8; IN]; MAX_ROWS];
            for (g, &r) in gathered.iter_mut().zip(rows) {
                *g = images[r as usize];
            }
            let gathered = &gathered[..n];
            let (mut picked, mut block) = ([[0.0f32; OUT]; MAX_ROWS], [[0.0f32; OUT]; MAX_ROWS]);
            logits_u8_picked(&images, rows, &w, &b, 0.5, &mut picked[..n]);
            logits_u8(gathered, &w, &b, 0.5, &mut block[..n]);
            assert_eq!(picked, block, "logits IN={IN} OUT={OUT} n={n}");
            let g = random_rows::<OUT>(rng, 1.0);
            // Written over whatever was there, against added to zeros.
            let (mut picked, mut block) = (w, [[0.0; IN]; OUT]);
            weight_gradient_u8_picked(&images, rows, &g[..n], &mut picked);
            accumulate_weight_gradient_u8(gathered, &g[..n], 1.0, &mut block);
            assert_eq!(picked, block, "gradient IN={IN} OUT={OUT} n={n}");
        }
    }

    #[test]
    fn picked_rows_equal_gathered_rows() {
        let mut rng = Rng::seed_from_u64(41);
        check_picked::<1, 1>(&mut rng);
        check_picked::<17, 3>(&mut rng);
        check_picked::<33, 10>(&mut rng);
        check_picked::<784, 10>(&mut rng);
    }

    #[test]
    #[should_panic]
    fn picking_a_row_that_does_not_exist_panics() {
        let images = [[1u8; 16]; 3];
        let mut logits = [[0.0f32; 2]; 1];
        logits_u8_picked(&images, &[3], &[[0.0; 16]; 2], &[0.0; 2], 1.0, &mut logits);
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
    fn u8_kernels_equal_f32_kernels_on_scaled_pixels() {
        // Small integers times powers of two are exact in every order, so
        // the two paths must agree to the bit.
        let p: [[u8; 21]; 6] = array::from_fn(|i| array::from_fn(|k| (i * 21 + k) as u8));
        let x = p.map(|row| row.map(f32::from));
        let w: [[f32; 21]; 3] = array::from_fn(|j| array::from_fn(|k| (k % 5) as f32 - j as f32));
        let b = [0.5, -1.0, 2.0];
        let (mut from_u8, mut from_f32) = ([[0.0; 3]; 6], [[0.0; 3]; 6]);
        logits_u8(&p, &w, &b, 0.25, &mut from_u8);
        logits(&x.map(|r| r.map(|v| v * 0.25)), &w, &b, &mut from_f32);
        assert_eq!(from_u8, from_f32);

        let g: [[f32; 3]; 6] = array::from_fn(|i| array::from_fn(|j| (i + j) as f32 - 3.0));
        let (mut from_u8, mut from_f32) = (w, w);
        accumulate_weight_gradient_u8(&p, &g, 0.5, &mut from_u8);
        accumulate_weight_gradient(&x, &g, 0.5, &mut from_f32);
        assert_eq!(from_u8, from_f32);
    }

    #[test]
    fn nan_and_infinity_propagate_through_logits() {
        // 9 rows: two full row blocks and one leftover row; 20 inputs: one
        // full vector and a partial one.
        let mut x = [[1.0f32; 20]; 9];
        x[1][17] = f32::NAN; // partial vector, full block
        x[5][3] = f32::INFINITY; // full vector, second block
        x[8][0] = f32::NAN; // the leftover row
        let w = [[1.0f32; 20]; 6];
        let mut out = [[0.0; 6]; 9];
        logits(&x, &w, &[0.0; 6], &mut out);
        for (i, row) in out.iter().enumerate() {
            match i {
                1 | 8 => assert!(row.iter().all(|v| v.is_nan()), "row {i}: {row:?}"),
                5 => assert!(row.iter().all(|v| *v == f32::INFINITY), "row {i}: {row:?}"),
                _ => assert_eq!(*row, [20.0; 6], "row {i}"),
            }
        }

        // A NaN weight poisons its class (one in the class block, one past
        // it), a NaN bias its logit, for u8 inputs as well.
        let p = [[2u8; 20]; 9];
        let mut w = [[1.0f32; 20]; 6];
        w[2][19] = f32::NAN;
        w[5][0] = f32::NEG_INFINITY;
        let b = [0.0, f32::NAN, 0.0, 0.0, 0.0, 0.0];
        logits_u8(&p, &w, &b, 0.5, &mut out);
        for row in &out {
            assert_eq!([row[0], row[3], row[4]], [20.0; 3]);
            assert!(row[1].is_nan() && row[2].is_nan(), "{row:?}");
            assert_eq!(row[5], f32::NEG_INFINITY);
        }
    }

    #[test]
    fn nan_and_infinity_propagate_through_gradients() {
        // 40 inputs: two vectors in a panel, a partial vector after it.
        let mut x = [[1.0f32; 40]; 5];
        x[2][5] = f32::NAN;
        x[3][37] = f32::INFINITY;
        let g = [[1.0f32; 3]; 5];
        let mut w = [[0.0f32; 40]; 3];
        accumulate_weight_gradient(&x, &g, 0.5, &mut w);
        for row in &w {
            for (k, v) in row.iter().enumerate() {
                match k {
                    5 => assert!(v.is_nan()),
                    37 => assert_eq!(*v, f32::INFINITY),
                    _ => assert_eq!(*v, 2.5),
                }
            }
        }

        // An infinite gradient entry reaches every column of its class
        // (`inf * 0` is NaN where the pixel is 0).
        let mut p = [[1u8; 40]; 5];
        p[0][7] = 0;
        let mut g = [[1.0f32; 3]; 5];
        g[0][1] = f32::INFINITY;
        let mut w = [[0.0f32; 40]; 3];
        accumulate_weight_gradient_u8(&p, &g, 1.0, &mut w);
        for row in [&w[0], &w[2]] {
            for (k, v) in row.iter().enumerate() {
                assert_eq!(*v, if k == 7 { 4.0 } else { 5.0 });
            }
        }
        for (k, v) in w[1].iter().enumerate() {
            assert!(
                if k == 7 {
                    v.is_nan()
                } else {
                    *v == f32::INFINITY
                },
                "{k}: {v}"
            );
        }
    }
}
