//! Property tests: for random shapes and values, the SIMD kernels agree with
//! their scalar twins (`kernels::reference`) within bounds derived below, the
//! softmax is a distribution, the fused loss is the chapter's loss, an SGD
//! step is the scalar step, the resize-folded training step is the step on
//! resized images, and the IDX and model files round-trip and refuse every
//! truncation.
//!
//! Widths are compile-time constants, so each property is instantiated for
//! several of them: multiples of the 16 SIMD lanes, one either side, and
//! the real 784 and 1024; row counts are random, zero included. The kernels
//! run at [`softreg::Isa::current`]: `SOFTREG_ISA` chooses another level.
//!
//! # Rounding bounds
//!
//! `u = f32::EPSILON / 2` is the unit roundoff and `gamma(n) = n u / (1 - n u)`.
//! A sum of `n` terms (products included) computed in any order, with or
//! without fused multiply-adds, is within `gamma(n) * sum |term|` of the exact
//! sum (Higham, *Accuracy and Stability of Numerical Algorithms*, 3.1). So
//! two such sums of the same terms differ by at most
//! `2 gamma(n) * sum |term|`, about `n * eps * sum |term|`.
//!
//! - `logits`: `b + scale * sum_k x_k w_k` (`scale = 1` for `f32` inputs, any
//!   for `u8` pixels, which convert to `f32` exactly). The scalar twin rounds
//!   each term at most `IN + 1` times in the dot product, then once for the
//!   scale and once for the bias; the SIMD kernel rounds `ceil(IN / L)` times
//!   per lane (`L` = 8 or 16 lanes), `log2 L` times in the lane reduction,
//!   then the same two. With
//!   `n = IN + 7` covering both:
//!   `|simd - scalar| <= 2 gamma(IN + 7) (|scale| sum_k |x_k w_k| + |b|)`.
//! - `accumulate_weight_gradient` (and its `u8` twin): `w + scale * sum_i g_ij x_ik` over `B` rows
//!   is within `gamma(B + 2) (|w| + |scale| sum_i |g_ij x_ik|)` for both, so
//!   `|simd - scalar| <= 2 gamma(B + 2) (|w| + |scale| sum_i |g_ij x_ik|)`.
//! - softmax sum: the row's exponentials `e_j` are stored and then summed
//!   (`s`: `ceil(C / L)` roundings per lane and `log2 L` across them) and each
//!   divided by `s` (one more), so however inexact `exp` itself is,
//!   `|sum_j p_j - 1| <= gamma(ceil(C / L) + log2 L + 1)`: under 1e-6 for
//!   every `C` up to 170 with 16 lanes, and up to 85 with 8.

// Index loops read like the formulas they check.
#![allow(clippy::needless_range_loop)]

mod forced_level;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use softreg::fashion_mnist::{Examples, Resized};
use softreg::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS};
use softreg::idx::{self, IdxError};
use softreg::kernels::{cross_entropy, matmul, reference, softmax, sum};
use softreg::model_file::{self, ModelFileError, HEADER_LEN};
use softreg::train::{Execution, Sgd, Trainer};
use softreg::{resize, Rng, SoftmaxRegression};

const U: f64 = f32::EPSILON as f64 / 2.0;

fn gamma(n: usize) -> f64 {
    let nu = n as f64 * U;
    nu / (1.0 - nu)
}

/// `n` floats as kernels meet them, drawn from `seed`: mostly uniform in
/// `(-scale, scale)`, some in `(-1, 1)`, some exactly zero (cancellation, and
/// values like the padding lanes'). Drawing the bulk from a seed keeps case
/// generation cheap for the wide shapes; proptest still shrinks the row
/// count and the seed.
fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| match rng.below(9) {
            0 => 0.0,
            1 | 2 => rng.next_f32() * 2.0 - 1.0,
            _ => (rng.next_f32() * 2.0 - 1.0) * scale,
        })
        .collect()
}

fn rows_of<const N: usize>(flat: &[f32]) -> Vec<[f32; N]> {
    flat.chunks_exact(N)
        .map(|c| c.try_into().unwrap())
        .collect()
}

fn matrix<const IN: usize, const OUT: usize>(flat: &[f32]) -> Box<[[f32; IN]; OUT]> {
    let rows = rows_of::<IN>(flat);
    rows.into_boxed_slice().try_into().unwrap()
}

/// A batch of `rows` inputs, class-major weights and a bias, as flat vectors.
type Batch = (Vec<f32>, Vec<f32>, Vec<f32>);

fn batch(
    inputs: usize,
    outputs: usize,
    max_rows: usize,
    scale: f32,
) -> impl Strategy<Value = Batch> {
    (0..=max_rows, any::<u64>()).prop_map(move |(rows, seed)| {
        (
            values(seed, rows * inputs, scale),
            values(seed ^ 1, inputs * outputs, scale),
            values(seed ^ 2, outputs, scale),
        )
    })
}

fn check_logits<const IN: usize, const OUT: usize>((x, w, b): &Batch) -> Result<(), TestCaseError> {
    let x = rows_of::<IN>(x);
    let w = matrix::<IN, OUT>(w);
    let b: [f32; OUT] = b[..].try_into().unwrap();
    let mut got = vec![[0.0f32; OUT]; x.len()];
    let mut want = vec![[0.0f32; OUT]; x.len()];
    matmul::logits(&x[..], &w, &b, 1.0, &mut got);
    reference::logits(&x, &w, &b, &mut want);
    logits_within_bound("logits", &x, &w, &b, 1.0, &got, &want)
}

/// SIMD logits `got` against scalar `want` for `b + scale * x . w`: within
/// `2 gamma(IN + 7)` times the sum of the magnitudes of the terms.
fn logits_within_bound<T: Copy + Into<f64>, const IN: usize, const OUT: usize>(
    what: &str,
    x: &[[T; IN]],
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    got: &[[f32; OUT]],
    want: &[[f32; OUT]],
) -> Result<(), TestCaseError> {
    for i in 0..x.len() {
        for j in 0..OUT {
            let terms: f64 = (0..IN)
                .map(|k| (x[i][k].into() * f64::from(w[j][k])).abs())
                .sum::<f64>()
                * f64::from(scale).abs()
                + f64::from(b[j]).abs();
            let bound = 2.0 * gamma(IN + 7) * terms;
            let err = (f64::from(got[i][j]) - f64::from(want[i][j])).abs();
            prop_assert!(
                err <= bound,
                "{}[{}][{}]: simd {} scalar {} err {:e} > bound {:e}",
                what,
                i,
                j,
                got[i][j],
                want[i][j],
                err,
                bound
            );
        }
    }
    Ok(())
}

/// SIMD weights `got` against scalar `want` after `w += scale * X^T G`
/// from `w`: within `2 gamma(rows + 2)` times the magnitudes involved.
fn gradient_within_bound<T: Copy + Into<f64>, const IN: usize, const OUT: usize>(
    what: &str,
    x: &[[T; IN]],
    g: &[[f32; OUT]],
    w: &[[f32; IN]; OUT],
    scale: f32,
    got: &[[f32; IN]; OUT],
    want: &[[f32; IN]; OUT],
) -> Result<(), TestCaseError> {
    let n = x.len();
    for j in 0..OUT {
        for k in 0..IN {
            let terms: f64 = (0..n)
                .map(|i| (f64::from(g[i][j]) * x[i][k].into()).abs())
                .sum();
            let bound =
                2.0 * gamma(n + 2) * (f64::from(w[j][k]).abs() + f64::from(scale).abs() * terms);
            let err = (f64::from(got[j][k]) - f64::from(want[j][k])).abs();
            prop_assert!(
                err <= bound,
                "{}[{}][{}]: simd {} scalar {} err {:e} > bound {:e}",
                what,
                j,
                k,
                got[j][k],
                want[j][k],
                err,
                bound
            );
        }
    }
    Ok(())
}

fn check_gradient<const IN: usize, const OUT: usize>(
    (x, w, g): &(Vec<f32>, Vec<f32>, Vec<f32>),
    scale: f32,
) -> Result<(), TestCaseError> {
    let x = rows_of::<IN>(x);
    let g = rows_of::<OUT>(g);
    let w = matrix::<IN, OUT>(w);
    let mut got = w.clone();
    let mut want = w.clone();
    matmul::accumulate_weight_gradient(&x[..], &g, scale, &mut got);
    reference::accumulate_weight_gradient(&x, &g, scale, &mut want);
    gradient_within_bound("w", &x, &g, &w, scale, &got, &want)?;
    // The plain product is the accumulation into zeros.
    let mut plain = Box::new([[1.0f32; IN]; OUT]);
    matmul::weight_gradient(&x[..], &g, 1.0, &mut plain);
    let mut zero = Box::new([[0.0f32; IN]; OUT]);
    matmul::accumulate_weight_gradient(&x[..], &g, 1.0, &mut zero);
    prop_assert_eq!(plain, zero);
    Ok(())
}

/// Inputs `rows x IN`, weights `OUT x IN` and a gradient `rows x OUT`.
fn gradient_batch(
    inputs: usize,
    outputs: usize,
    max_rows: usize,
) -> impl Strategy<Value = (Vec<f32>, Vec<f32>, Vec<f32>)> {
    (0..=max_rows, any::<u64>()).prop_map(move |(rows, seed)| {
        (
            values(seed, rows * inputs, 10.0),
            values(seed ^ 1, inputs * outputs, 1.0),
            values(seed ^ 2, rows * outputs, 1.0),
        )
    })
}

/// Logits of any sign and size up to 1e4, in rows of `C`: each row has its
/// own scale (1e4, 30, 1 or all equal), so rows both spread far enough for
/// probabilities to underflow and stay close.
fn logit_rows(c: usize, max_rows: usize) -> impl Strategy<Value = Vec<f32>> {
    (0..=max_rows, any::<u64>()).prop_map(move |(rows, seed)| {
        let mut rng = Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(rows * c);
        for _ in 0..rows {
            let scale = [1e4f32, 30.0, 1.0, 0.0][rng.below(4) as usize];
            let shift = (rng.next_f32() * 2.0 - 1.0) * 1e4 * f32::from(u8::from(scale == 0.0));
            out.extend(
                values(rng.next_u64(), c, scale)
                    .into_iter()
                    .map(|v| v + shift),
            );
        }
        out
    })
}

fn check_softmax<const C: usize>(flat: &[f32]) -> Result<(), TestCaseError> {
    let mut rows = rows_of::<C>(flat);
    let mut want = rows.clone();
    softmax::softmax_rows(&mut rows);
    reference::softmax_rows(&mut want);
    let lanes = softreg::Isa::current().lanes();
    let bound = gamma(C.div_ceil(lanes) + lanes.ilog2() as usize + 1);
    if C <= 170 * lanes / 16 {
        prop_assert!(bound <= 1e-6);
    }
    for (p, q) in rows.iter().zip(&want) {
        prop_assert!(p.iter().all(|v| (0.0..=1.0).contains(v)), "{:?}", p);
        let total: f64 = p.iter().map(|&v| f64::from(v)).sum();
        prop_assert!((total - 1.0).abs() <= bound, "sum {} for {:?}", total, p);
        for (a, b) in p.iter().zip(q) {
            prop_assert!((a - b).abs() <= 1e-6 + 1e-5 * b, "{} vs scalar {}", a, b);
        }
        // The most probable class is the largest logit's.
        prop_assert_eq!(p[softmax::argmax(p)], p.iter().copied().fold(0.0, f32::max));
    }
    Ok(())
}

/// The fused loss and gradient against the chapter's route: softmax, then
/// `-log` of the gathered probability, wherever that probability has not
/// underflowed. `exp` is accurate to a few ulps and the rest rounds a few
/// times at the size of the terms, so the two agree within
/// `1e-6 + 8 eps (|z_y - max z| + loss)`.
fn check_fused_loss<const C: usize>(flat: &[f32], labels: &[u8]) -> Result<(), TestCaseError> {
    let z = rows_of::<C>(flat);
    let y: Vec<u8> = labels[..z.len()].iter().map(|&l| l % C as u8).collect();
    let mut p = z.clone();
    softmax::softmax_rows(&mut p);
    let mut picked = vec![0.0f32; z.len()];
    cross_entropy::gather(&p, &y, &mut picked);
    let eps = f64::from(f32::EPSILON);
    let mut comparable = Vec::new();
    for i in 0..z.len() {
        let mut row = [z[i]];
        let fused = f64::from(cross_entropy::softmax_cross_entropy_grad(
            &mut row,
            &y[i..=i],
        ));
        // The gradient is softmax - onehot.
        for j in 0..C {
            let want = p[i][j] - if j == usize::from(y[i]) { 1.0 } else { 0.0 };
            prop_assert!(
                (row[0][j] - want).abs() <= 1e-6,
                "grad {} vs {}",
                row[0][j],
                want
            );
        }
        prop_assert!(fused.is_finite() && fused >= 0.0, "fused loss {}", fused);
        if picked[i] < 1e-30 {
            continue; // underflowed: the chapter's route says +inf or garbage
        }
        comparable.push(i);
        let chapter = -f64::from(picked[i]).ln();
        let max = z[i].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let spread = f64::from(max - z[i][usize::from(y[i])]);
        let bound = 1e-6 + 8.0 * eps * (spread + fused);
        prop_assert!(
            (fused - chapter).abs() <= bound,
            "row {}: fused {} vs -log(gather) {} (bound {:e})",
            i,
            fused,
            chapter,
            bound
        );
    }
    // The chapter's mean over the rows that did not underflow is the mean
    // of the fused losses over them.
    if !comparable.is_empty() {
        let p_ok: Vec<[f32; C]> = comparable.iter().map(|&i| p[i]).collect();
        let y_ok: Vec<u8> = comparable.iter().map(|&i| y[i]).collect();
        let mut z_ok: Vec<[f32; C]> = comparable.iter().map(|&i| z[i]).collect();
        let chapter = f64::from(cross_entropy::cross_entropy(&p_ok, &y_ok));
        let fused = f64::from(cross_entropy::softmax_cross_entropy_grad(&mut z_ok, &y_ok))
            / y_ok.len() as f64;
        prop_assert!(
            (chapter - fused).abs() <= 1e-5 * fused.abs() + 1e-5,
            "mean {} vs {}",
            chapter,
            fused
        );
    }
    Ok(())
}

/// Pixels `rows x IN` drawn from `seed`: mostly uniform bytes, with runs of
/// 0 and 255 as real images have.
fn pixel_rows<const IN: usize>(rows: usize, seed: u64) -> Vec<[u8; IN]> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..rows)
        .map(|_| {
            core::array::from_fn(|_| match rng.below(4) {
                0 => 0,
                1 => 255,
                _ => rng.below(256) as u8,
            })
        })
        .collect()
}

fn check_logits_u8<const IN: usize, const OUT: usize>(
    rows: usize,
    seed: u64,
    scale: f32,
) -> Result<(), TestCaseError> {
    let x = pixel_rows::<IN>(rows, seed);
    let w = matrix::<IN, OUT>(&values(seed ^ 1, IN * OUT, 1.0));
    let b: [f32; OUT] = values(seed ^ 2, OUT, 1.0)[..].try_into().unwrap();
    let mut got = vec![[0.0f32; OUT]; rows];
    let mut want = vec![[0.0f32; OUT]; rows];
    matmul::logits(&x[..], &w, &b, scale, &mut got);
    reference::logits_u8(&x, &w, &b, scale, &mut want);
    logits_within_bound("logits_u8", &x, &w, &b, scale, &got, &want)?;
    // On pixels scaled by 1/255 the f32 kernel computes the same logits
    // (the scale moves out of the sum: one more rounding per term).
    if scale == 1.0 / 255.0 {
        let scaled: Vec<[f32; IN]> = x.iter().map(|r| r.map(|p| f32::from(p) / 255.0)).collect();
        let mut direct = vec![[0.0f32; OUT]; rows];
        matmul::logits(&scaled[..], &w, &b, 1.0, &mut direct);
        for i in 0..rows {
            for j in 0..OUT {
                let terms: f64 = (0..IN)
                    .map(|k| (f64::from(scaled[i][k]) * f64::from(w[j][k])).abs())
                    .sum::<f64>()
                    + f64::from(b[j]).abs();
                let bound = 2.0 * gamma(IN + 9) * terms;
                prop_assert!(f64::from((direct[i][j] - got[i][j]).abs()) <= bound);
            }
        }
    }
    Ok(())
}

fn check_gradient_u8<const IN: usize, const OUT: usize>(
    rows: usize,
    seed: u64,
    scale: f32,
) -> Result<(), TestCaseError> {
    let x = pixel_rows::<IN>(rows, seed);
    let w = matrix::<IN, OUT>(&values(seed ^ 1, IN * OUT, 1.0));
    let g = rows_of::<OUT>(&values(seed ^ 2, rows * OUT, 1.0));
    let mut got = w.clone();
    let mut want = w.clone();
    matmul::accumulate_weight_gradient(&x[..], &g, scale, &mut got);
    reference::accumulate_weight_gradient_u8(&x, &g, scale, &mut want);
    gradient_within_bound("u8 w", &x, &g, &w, scale, &got, &want)
}

fn check_sums<const C: usize>(flat: &[f32]) -> Result<(), TestCaseError> {
    let rows = rows_of::<C>(flat);
    let got = sum::column_sums(&rows);
    let want = reference::column_sums(&rows);
    let n = rows.len();
    for c in 0..C {
        let terms: f64 = rows.iter().map(|r| f64::from(r[c]).abs()).sum();
        prop_assert!(f64::from((got[c] - want[c]).abs()) <= 2.0 * gamma(n + 1) * terms);
    }
    for row in &rows {
        let terms: f64 = row.iter().map(|&v| f64::from(v).abs()).sum();
        let err = f64::from((sum::row_sum(row) - reference::row_sum(row)).abs());
        prop_assert!(err <= 2.0 * gamma(C + 5) * terms);
    }
    Ok(())
}

/// One SGD step against the scalar step spelled out with the reference
/// kernels. The two forward passes give logits that differ by some `dz_i`
/// in row `i` (at most the `logits` bound; measured here); softmax moves by
/// at most half the largest logit change (its Jacobian has
/// `sum_k |d p_j / d z_k| = 2 p_j (1 - p_j) <= 1/2`), the loss by at most
/// twice it, and the two
/// exponentials by a few ulps (2e-6 allows for them). So each row's gradient
/// differs by at most `dg_i = dz_i / 2 + 2e-6`, and the step by
/// `lr/B sum_i dg_i |x_ik|` plus the gradient kernel's own rounding.
fn check_sgd_step<const IN: usize, const OUT: usize>(
    (x, w, b): &Batch,
    labels: &[u8],
    lr: f32,
) -> Result<(), TestCaseError> {
    let x = rows_of::<IN>(x);
    let n = x.len();
    if n == 0 {
        return Ok(());
    }
    let y: Vec<u8> = labels[..n].iter().map(|&l| l % OUT as u8).collect();
    let mut model = Box::new(SoftmaxRegression::<IN, OUT>::zeroed());
    model.weights = *matrix::<IN, OUT>(w);
    model.bias = b[..].try_into().unwrap();
    let before = model.clone();

    // The scalar step.
    let mut want = before.clone();
    let mut g = vec![[0.0f32; OUT]; n];
    let mut grad_w = Box::new([[0.0f32; IN]; OUT]);
    let want_loss = reference::sgd_step(
        &mut want.weights,
        &mut want.bias,
        &x,
        &y,
        lr,
        &mut g,
        &mut grad_w,
    );

    let mut scratch = vec![[0.0f32; OUT]; n + 3];
    let loss = model.sgd_step(&x, &y, lr, &mut scratch);

    // How far apart the two forward passes actually are, row by row: at
    // most the `logits` bound, and usually far less.
    let mut z_simd = vec![[0.0f32; OUT]; n];
    let mut z_scalar = vec![[0.0f32; OUT]; n];
    matmul::logits(&x[..], &before.weights, &before.bias, 1.0, &mut z_simd);
    reference::logits(&x, &before.weights, &before.bias, &mut z_scalar);
    let dz: Vec<f64> = z_simd
        .iter()
        .zip(&z_scalar)
        .map(|(a, b)| {
            a.iter()
                .zip(b)
                .map(|(a, b)| f64::from((a - b).abs()))
                .fold(0.0, f64::max)
        })
        .collect();
    let dg: Vec<f64> = dz.iter().map(|d| d / 2.0 + 2e-6).collect();
    let step = f64::from(lr) / n as f64;
    let eps = f64::from(f32::EPSILON);

    let mean_dz = dz.iter().sum::<f64>() / n as f64;
    let loss_bound = 2.0 * mean_dz + 1e-5 * f64::from(want_loss).abs() + 1e-5;
    prop_assert!(
        f64::from((loss - want_loss).abs()) <= loss_bound,
        "loss {} vs {}",
        loss,
        want_loss
    );
    for j in 0..OUT {
        for k in 0..IN {
            let moved: f64 = (0..n).map(|i| dg[i] * f64::from(x[i][k]).abs()).sum();
            let terms: f64 = (0..n)
                .map(|i| (f64::from(g[i][j]) * f64::from(x[i][k])).abs())
                .sum();
            let bound = step * moved
                + (2.0 * gamma(n + 2) + 2.0 * eps)
                    * (f64::from(before.weights[j][k]).abs() + step * terms);
            let err = f64::from((model.weights[j][k] - want.weights[j][k]).abs());
            prop_assert!(
                err <= bound,
                "w[{}][{}]: {} vs scalar {} err {:e} > {:e}",
                j,
                k,
                model.weights[j][k],
                want.weights[j][k],
                err,
                bound
            );
        }
        let moved: f64 = dg.iter().sum();
        let terms: f64 = g.iter().map(|r| f64::from(r[j]).abs()).sum();
        let bound = step * moved
            + (2.0 * gamma(n + 2) + 2.0 * eps) * (f64::from(before.bias[j]).abs() + step * terms);
        let err = f64::from((model.bias[j] - want.bias[j]).abs());
        prop_assert!(
            err <= bound,
            "b[{}]: {} vs {}",
            j,
            model.bias[j],
            want.bias[j]
        );
    }
    Ok(())
}

macro_rules! kernel_properties {
    ($name:ident, $in:literal, $out:literal, $rows:literal) => {
        mod $name {
            use super::*;

            proptest! {
                #[test]
                fn logits_match_the_scalar_reference(b in batch($in, $out, $rows, 100.0)) {
                    check_logits::<$in, $out>(&b)?;
                }

                #[test]
                fn weight_gradient_matches_the_scalar_reference(
                    b in gradient_batch($in, $out, $rows),
                    scale in -2.0f32..2.0,
                ) {
                    check_gradient::<$in, $out>(&b, scale)?;
                }

                #[test]
                fn u8_logits_match_the_scalar_reference(
                    rows in 0usize..=$rows,
                    seed in any::<u64>(),
                    scale in prop_oneof![Just(1.0f32), Just(1.0 / 255.0), -2.0f32..2.0],
                ) {
                    check_logits_u8::<$in, $out>(rows, seed, scale)?;
                }

                #[test]
                fn u8_weight_gradient_matches_the_scalar_reference(
                    rows in 0usize..=$rows,
                    seed in any::<u64>(),
                    scale in prop_oneof![Just(1.0f32), Just(-0.1 / 255.0), -2.0f32..2.0],
                ) {
                    check_gradient_u8::<$in, $out>(rows, seed, scale)?;
                }

                #[test]
                fn sgd_step_is_the_scalar_step(
                    b in batch($in, $out, $rows, 1.0),
                    labels in prop::collection::vec(any::<u8>(), $rows),
                    lr in 0.001f32..2.0,
                ) {
                    check_sgd_step::<$in, $out>(&b, &labels, lr)?;
                }
            }
        }
    };
}

// (IN, OUT, most rows): widths below, at and either side of the 16 lanes and
// of the 32-column gradient panel, and the two the model really uses.
kernel_properties!(in1_out1, 1, 1, 9);
kernel_properties!(in7_out3, 7, 3, 20);
kernel_properties!(in16_out10, 16, 10, 20);
kernel_properties!(in17_out10, 17, 10, 20);
kernel_properties!(in33_out5, 33, 5, 20);
kernel_properties!(in50_out17, 50, 17, 12);
kernel_properties!(in784_out10, 784, 10, 6);
kernel_properties!(in1024_out10, 1024, 10, 4);

macro_rules! row_properties {
    ($name:ident, $c:literal) => {
        mod $name {
            use super::*;

            proptest! {
                #[test]
                fn softmax_rows_are_distributions(z in logit_rows($c, 12)) {
                    check_softmax::<$c>(&z)?;
                }

                #[test]
                fn fused_loss_is_minus_log_of_the_gathered_softmax(
                    z in logit_rows($c, 12),
                    labels in prop::collection::vec(any::<u8>(), 12),
                ) {
                    check_fused_loss::<$c>(&z, &labels)?;
                }

                #[test]
                fn sums_match_the_scalar_reference(z in logit_rows($c, 20)) {
                    check_sums::<$c>(&z)?;
                }
            }
        }
    };
}

row_properties!(c1, 1);
row_properties!(c2, 2);
row_properties!(c10, 10);
row_properties!(c15, 15);
row_properties!(c16, 16);
row_properties!(c17, 17);
row_properties!(c33, 33);
row_properties!(c100, 100);

// ---------------------------------------------------------------------------
// The resize-folded training path.

/// Training on raw pixels with the resize folded into the weights
/// ([`Trainer`], one batch of all `n` examples in two shards) takes the
/// same step as `sgd_step` on the images resized to 32x32, within 1e-5.
fn check_folded_step(
    pixels: &[u8],
    labels: &[u8],
    sigma: f32,
    lr: f32,
    seed: u64,
) -> Result<(), TestCaseError> {
    let images: Vec<[u8; PIXELS]> = pixels
        .chunks_exact(PIXELS)
        .map(|c| c.try_into().unwrap())
        .collect();
    let n = images.len();
    let labels: Vec<u8> = labels[..n].iter().map(|&l| l % CLASSES as u8).collect();
    let mut rng = Rng::seed_from_u64(seed);
    let mut model = Box::new(SoftmaxRegression::<RESIZED_PIXELS, CLASSES>::new(
        &mut rng, sigma,
    ));
    for (j, b) in model.bias.iter_mut().enumerate() {
        *b = sigma * (j as f32 - 4.5);
    }

    // Resized images, the chapter's way.
    let mut resized = vec![[0.0f32; RESIZED_PIXELS]; n];
    for (image, out) in images.iter().zip(&mut resized) {
        resize::resize_28_to_32(image, out);
    }
    let mut want = model.clone();
    let mut scratch = vec![[0.0f32; CLASSES]; n];
    let want_loss = want.sgd_step(&resized, &labels, lr, &mut scratch);

    // Folded, sharded, on raw pixels.
    let data = Examples {
        images: &images,
        labels: &labels,
    };
    let order: Vec<u32> = (0..n as u32).collect();
    let sgd = Sgd { batch_size: n, lr };
    let mut trainer = Trainer::<RESIZED_PIXELS, Resized>::new(model, sgd, Execution::default())
        .expect("valid settings");
    let loss = trainer
        .train_epoch(data, &order, |_| std::ops::ControlFlow::Continue(()))
        .expect("a finite step") as f32;
    let model = trainer.model();

    prop_assert!(
        (loss - want_loss).abs() <= 1e-5 * want_loss.abs().max(1.0),
        "loss {} vs {}",
        loss,
        want_loss
    );
    for (a, b) in model
        .weights
        .iter()
        .flatten()
        .chain(&model.bias)
        .zip(want.weights.iter().flatten().chain(&want.bias))
    {
        prop_assert!((a - b).abs() <= 1e-5, "folded {} vs resized {}", a, b);
    }
    Ok(())
}

proptest! {
    #[test]
    fn folded_training_step_is_the_step_on_resized_images(
        pixels in (1usize..=9).prop_flat_map(|n| prop::collection::vec(any::<u8>(), n * PIXELS)),
        labels in prop::collection::vec(any::<u8>(), 9),
        sigma in 0.001f32..0.1,
        lr in 0.01f32..1.0,
        seed in any::<u64>(),
    ) {
        check_folded_step(&pixels, &labels, sigma, lr, seed)?;
    }
}

// ---------------------------------------------------------------------------
// File formats.

fn labels_file(labels: &[u8]) -> Vec<u8> {
    let mut file = idx::LABELS_MAGIC.to_be_bytes().to_vec();
    file.extend((labels.len() as u32).to_be_bytes());
    file.extend(labels);
    file
}

fn images_file(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut file = idx::IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [count, rows, cols] {
        file.extend(d.to_be_bytes());
    }
    file.extend(pixels);
    file
}

/// `(count, rows, cols, pixels)` with exactly `count * rows * cols` pixels.
fn image_stack() -> impl Strategy<Value = (u32, u32, u32, Vec<u8>)> {
    (0u32..6, 0u32..12, 0u32..12).prop_flat_map(|(count, rows, cols)| {
        let len = (count * rows * cols) as usize;
        (
            Just(count),
            Just(rows),
            Just(cols),
            prop::collection::vec(any::<u8>(), len),
        )
    })
}

/// `n` finite `f32`s of any bit pattern (subnormals, -0.0 and the extremes
/// too), drawn from `seed`.
fn finite_bits(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let v = f32::from_bits(rng.next_u64() as u32);
        if v.is_finite() {
            out.push(v);
        }
    }
    out
}

/// `bytes` copied into a buffer of `u32`s: 4-byte aligned, as the in-place
/// view needs.
fn aligned_copy(bytes: &[u8]) -> Vec<u32> {
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
}

fn check_model_round_trip<const IN: usize, const OUT: usize>(
    side: u32,
    values: &[f32],
) -> Result<(), TestCaseError> {
    let mut model = Box::new(SoftmaxRegression::<IN, OUT>::zeroed());
    for (slot, &v) in model
        .weights
        .iter_mut()
        .flatten()
        .chain(model.bias.iter_mut())
        .zip(values)
    {
        *slot = v;
    }
    let mut file = Vec::new();
    model
        .write_file(side, |chunk: &[u8]| {
            file.extend_from_slice(chunk);
            Ok::<(), ()>(())
        })
        .unwrap();
    prop_assert_eq!(file.len(), HEADER_LEN + 4 * (IN * OUT + OUT));
    let header = model_file::read_header(&file).unwrap();
    prop_assert_eq!(
        (header.inputs, header.outputs, header.image_side),
        (IN as u32, OUT as u32, side)
    );

    // By copy: the same bits.
    let copy = SoftmaxRegression::<IN, OUT>::from_file_bytes(&file).unwrap();
    let bits = |v: &f32| v.to_bits();
    let same = |a: &SoftmaxRegression<IN, OUT>| {
        a.weights.iter().flatten().chain(&a.bias).map(bits).eq(model
            .weights
            .iter()
            .flatten()
            .chain(&model.bias)
            .map(bits))
    };
    prop_assert!(same(&copy));

    // In place: the same bits, at the same address.
    let words = aligned_copy(&file);
    let bytes = &bytemuck::cast_slice::<u32, u8>(&words)[..file.len()];
    let view = model_file::view::<IN, OUT>(bytes).unwrap();
    prop_assert!(view
        .weights
        .iter()
        .flatten()
        .chain(view.bias)
        .map(bits)
        .eq(model.weights.iter().flatten().chain(&model.bias).map(bits)));
    prop_assert_eq!(
        view.weights.as_ptr() as usize,
        bytes.as_ptr() as usize + HEADER_LEN
    );

    // Every truncation and any extra byte are refused (for the big shapes,
    // to keep this quick, every truncation within 256 bytes of either end
    // and every 251st in between).
    let ends = (0..file.len()).filter(|&end| {
        file.len() <= 1024 || end < 256 || file.len() - end <= 256 || end % 251 == 0
    });
    for end in ends {
        let err = SoftmaxRegression::<IN, OUT>::from_file_bytes(&file[..end]).unwrap_err();
        if end < HEADER_LEN {
            prop_assert_eq!(err, ModelFileError::TooShort { found: end });
        } else {
            prop_assert!(
                matches!(err, ModelFileError::LengthMismatch { .. }),
                "{:?}",
                err
            );
        }
        prop_assert!(model_file::view::<IN, OUT>(&bytes[..end]).is_err());
    }
    let mut longer = file.clone();
    longer.push(0);
    prop_assert!(SoftmaxRegression::<IN, OUT>::from_file_bytes(&longer).is_err());
    Ok(())
}

/// Every proper prefix of an IDX `file` is refused: too short while the
/// header (`header_len` bytes) is cut, else with the length of what follows
/// it against the `data_len` bytes the header promises.
fn every_truncation_refused(
    file: &[u8],
    header_len: usize,
    data_len: usize,
    parse: impl Fn(&[u8]) -> Result<(), IdxError>,
) -> Result<(), TestCaseError> {
    for end in 0..file.len() {
        let err = parse(&file[..end]).unwrap_err();
        if end < header_len {
            prop_assert!(matches!(err, IdxError::TooShort { .. }), "{:?}", err);
        } else {
            prop_assert_eq!(
                err,
                IdxError::LengthMismatch {
                    expected: data_len,
                    found: end - header_len
                }
            );
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn label_files_round_trip_and_refuse_every_truncation(
        labels in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let file = labels_file(&labels);
        let parsed = idx::parse_labels(&file).unwrap();
        prop_assert_eq!(parsed.labels, &labels[..]);
        let header = idx::parse_header(&file, idx::IdxKind::Labels).unwrap();
        prop_assert_eq!(header.file_len(), Some(file.len()));
        every_truncation_refused(&file, 8, labels.len(), |f| idx::parse_labels(f).map(drop))?;
        let mut longer = file.clone();
        longer.push(7);
        prop_assert!(idx::parse_labels(&longer).is_err());
        prop_assert!(idx::parse_images(&file).is_err());
    }

    #[test]
    fn image_files_round_trip_and_refuse_every_truncation(
        (count, rows, cols, pixels) in image_stack(),
    ) {
        let file = images_file(count, rows, cols, &pixels);
        let parsed = idx::parse_images(&file).unwrap();
        prop_assert_eq!(
            (parsed.count, parsed.rows, parsed.cols),
            (count as usize, rows as usize, cols as usize)
        );
        prop_assert_eq!(parsed.pixels, &pixels[..]);
        let len = (rows * cols) as usize;
        for i in 0..count as usize {
            prop_assert_eq!(parsed.image(i), &pixels[i * len..(i + 1) * len]);
        }
        every_truncation_refused(&file, 16, pixels.len(), |f| idx::parse_images(f).map(drop))?;
        let mut longer = file.clone();
        longer.push(7);
        prop_assert!(idx::parse_images(&longer).is_err());
        prop_assert!(idx::parse_labels(&file).is_err());
    }

    #[test]
    fn model_files_round_trip_and_refuse_every_truncation(
        seed in any::<u64>(),
    ) {
        let values = finite_bits(seed, 784 * 10 + 10);
        check_model_round_trip::<1, 1>(1, &values)?;
        check_model_round_trip::<4, 3>(2, &values)?;
        check_model_round_trip::<9, 10>(3, &values)?;
        check_model_round_trip::<784, 10>(28, &values)?;
    }
}
