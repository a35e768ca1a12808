//! The two matrix products of training, blocked for registers.
//!
//! Forward: `logits = X W + b`, with `X` a batch of `B` rows of `IN` inputs.
//! Backward: `grad_W = X^T G`, with `G` the `B x OUT` gradient of the loss
//! with respect to the logits.
//!
//! `OUT` is 10 for Fashion-MNIST, narrower than one vector, so vectorising
//! along `OUT` would waste most of every register. Both products instead run
//! along `IN`, and to make that a unit-stride walk for `W` as well as for
//! `X`, the weights are stored transposed: `w[j]` is the row of `IN` weights
//! of class `j` (`OUT x IN`; the chapter's `W` is `IN x OUT`).
//!
//! - [`logits`] computes `OUT` dot products of length `IN` per row of `X`. It
//!   takes a block of rows and a block of classes at a time, so every vector
//!   it loads feeds several FMAs, and keeps the block's vector accumulators
//!   in registers for the whole row, reducing each across lanes once at the
//!   end.
//! - [`weight_gradient`] and [`accumulate_weight_gradient`] compute each
//!   panel of a few vectors' width of `W`'s gradient as a sum over the batch
//!   of `g[i][j] * x[i][k..]`: the accumulators of the panel for all `OUT`
//!   classes stay in registers while the whole batch streams past once.
//!
//! Both read `f32` rows or raw `u8` pixels (a quarter of the bytes, widened
//! to `f32` in registers, with the pixel scale 1/255 applied once per result
//! instead of once per pixel), from a contiguous block or picked out of a
//! larger matrix by index ([`super::Picked`]): any [`Rows`] of an
//! [`Element`].
//!
//! The block shapes depend on the level's register file (16 vector registers
//! with AVX2, 32 with AVX-512, 16 SSE or 32 NEON registers holding a
//! quarter of the baseline's 16-lane vector each): `logits_with` and
//! `gradient_with` name them. `cargo bench --bench kernels` measures
//! them, and `docs/performance.md` records what was tried.

use super::{Element, Rows, RowsMut};
use crate::simd::{Isa, Kernel, Simd, Vector};
use core::marker::PhantomData;

/// `logits[i][j] = b[j] + scale * sum_k x[i][k] * w[j][k]`: the forward pass
/// `X W + b` with `w` stored class-major (`OUT x IN`). With `f32` rows and
/// `scale = 1.0` this is the chapter's `tf.matmul(X, W) + b` (and rounds
/// exactly like `dot + b`); with `u8` pixels and `scale = 1.0 / 255.0` it is
/// the forward pass of the images scaled to `[0, 1]`, differing from the
/// scaled `f32` rows only by rounding.
///
/// # Panics
/// If `x` and `logits` have different numbers of rows, or a picked row does
/// not exist.
pub fn logits<T: Element, X: Rows<T, IN> + ?Sized, const IN: usize, const OUT: usize>(
    x: &X,
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    logits: &mut [[f32; OUT]],
) {
    struct Job<'a, T, X: ?Sized, const IN: usize, const OUT: usize> {
        x: &'a X,
        w: &'a [[f32; IN]; OUT],
        b: &'a [f32; OUT],
        scale: f32,
        logits: &'a mut [[f32; OUT]],
        element: PhantomData<T>,
    }
    impl<T: Element, X: Rows<T, IN> + ?Sized, const IN: usize, const OUT: usize> Kernel
        for Job<'_, T, X, IN, OUT>
    {
        type Output = ();
        #[inline(always)]
        fn run<S: Simd>(self, s: S) {
            logits_with(s, self.x, self.w, self.b, self.scale, self.logits);
        }
    }
    Isa::current().dispatch(Job {
        x,
        w,
        b,
        scale,
        logits,
        element: PhantomData,
    });
}

/// `grad_w[j][k] = scale * sum_i g[i][j] * x[i][k]`, written over `grad_w`
/// (no need to zero it first): `scale * X^T G`, class-major.
///
/// # Panics
/// If `x` and `g` have different numbers of rows, or a picked row does not
/// exist.
pub fn weight_gradient<T: Element, X: Rows<T, IN> + ?Sized, const IN: usize, const OUT: usize>(
    x: &X,
    g: &[[f32; OUT]],
    scale: f32,
    grad_w: &mut [[f32; IN]; OUT],
) {
    Isa::current().dispatch(Gradient::<T, X, IN, OUT, false> {
        x,
        g,
        scale,
        w: grad_w,
        element: PhantomData,
    });
}

/// `w[j][k] += scale * sum_i g[i][j] * x[i][k]`: adds `scale * X^T G` to the
/// class-major weights.
///
/// With `scale = -lr / B` and `g` the gradient of the summed loss with respect
/// to the logits, this is the SGD update `W <- W - lr * grad_W` without
/// materialising `grad_W` (for `u8` pixels, `scale = -lr / (255 B)`).
///
/// # Panics
/// If `x` and `g` have different numbers of rows, or a picked row does not
/// exist.
pub fn accumulate_weight_gradient<
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const IN: usize,
    const OUT: usize,
>(
    x: &X,
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
) {
    Isa::current().dispatch(Gradient::<T, X, IN, OUT, true> {
        x,
        g,
        scale,
        w,
        element: PhantomData,
    });
}

/// The work of [`weight_gradient`] (`ADD = false`) and
/// [`accumulate_weight_gradient`] (`ADD = true`).
struct Gradient<'a, T, X: ?Sized, const IN: usize, const OUT: usize, const ADD: bool> {
    x: &'a X,
    g: &'a [[f32; OUT]],
    scale: f32,
    w: &'a mut [[f32; IN]; OUT],
    element: PhantomData<T>,
}

impl<T: Element, X: Rows<T, IN> + ?Sized, const IN: usize, const OUT: usize, const ADD: bool> Kernel
    for Gradient<'_, T, X, IN, OUT, ADD>
{
    type Output = ();
    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        gradient_with::<S, T, X, IN, OUT, ADD>(s, self.x, self.g, self.scale, self.w);
    }
}

/// [`logits`] at level `S`, with that level's block shape: rows of `X` by
/// classes that share each load.
///
/// The shapes keep a block's accumulators, its row vectors and one weight
/// vector in registers: with AVX-512's 32 registers 4 x 5 for `f32` rows
/// (20 accumulators, 9 loads per 20 FMAs; it needs the AVX-512VL the level
/// is compiled with, see `simd::avx512`), and 2 x 10 for `u8` rows (23 in
/// use), whose pixels each take two micro-ops on the FMAs' ports to widen:
/// all ten classes in one block widen each pixel once rather than twice.
/// AVX2 has 16 registers, so 2 x 5 (13 in use); the baseline 4 x 5.
/// Classes past the last full block (`OUT % J`) go one at a time. The
/// shape decides only which dot products are computed side by side, not
/// their arithmetic: every shape gives the same bits.
#[inline(always)]
pub(crate) fn logits_with<
    S: Simd,
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const IN: usize,
    const OUT: usize,
>(
    s: S,
    x: &X,
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    logits: &mut [[f32; OUT]],
) {
    // Const generics cannot take an associated constant of `S`, so each
    // level's shape is named here.
    match S::ISA {
        Isa::Avx2 => logits_blocked::<S, T, X, 2, 5, IN, OUT>(s, x, w, b, scale, logits),
        Isa::Avx512 if T::WIDENED => {
            logits_blocked::<S, T, X, 2, 10, IN, OUT>(s, x, w, b, scale, logits)
        }
        Isa::Avx512 => logits_blocked::<S, T, X, 4, 5, IN, OUT>(s, x, w, b, scale, logits),
        Isa::Baseline => logits_blocked::<S, T, X, 4, 5, IN, OUT>(s, x, w, b, scale, logits),
    }
}

/// [`logits_with`] in blocks of `R` rows by `J` classes, class blocks
/// outermost: one block's `J` weight rows stay in L1 while every row of `X`
/// passes them (all of `W` is as big as L1 at `IN` = 784). Leftover rows
/// and classes go one at a time.
#[inline(always)]
fn logits_blocked<
    S: Simd,
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const R: usize,
    const J: usize,
    const IN: usize,
    const OUT: usize,
>(
    s: S,
    x: &X,
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    logits: &mut [[f32; OUT]],
) {
    assert_eq!(x.count(), logits.len(), "one row of logits per row of X");
    logits_classes_from::<S, T, X, R, J, IN, OUT>(s, x, w, b, scale, logits, 0);
}

/// Classes `j0..OUT` of [`logits_blocked`]: blocks of `J`, then one at a
/// time.
#[inline(always)]
fn logits_classes_from<
    S: Simd,
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const R: usize,
    const J: usize,
    const IN: usize,
    const OUT: usize,
>(
    s: S,
    x: &X,
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    logits: &mut [[f32; OUT]],
    j0: usize,
) {
    // This pass only computes logits.
    let not_widened = || None::<&mut [[f32; IN]]>;
    let mut j = j0;
    while j + J <= OUT {
        logits_columns::<S, T, X, _, R, J, IN, OUT>(s, x, w, b, scale, logits, j, not_widened());
        j += J;
    }
    while j < OUT {
        logits_columns::<S, T, X, _, R, 1, IN, OUT>(s, x, w, b, scale, logits, j, not_widened());
        j += 1;
    }
}

/// Classes `j0..j0 + J` for every row of `X`, `R` rows at a time; with
/// `widened`, each row is also stored there as `f32` ([`logits_block`]).
// The operands of one block product, as `logits_block`'s.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn logits_columns<
    S: Simd,
    T: Element,
    X: Rows<T, IN> + ?Sized,
    Y: RowsMut<f32, IN> + ?Sized,
    const R: usize,
    const J: usize,
    const IN: usize,
    const OUT: usize,
>(
    s: S,
    x: &X,
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    logits: &mut [[f32; OUT]],
    j0: usize,
    mut widened: Option<&mut Y>,
) {
    let mut out_blocks = logits.chunks_exact_mut(R);
    let mut i = 0;
    for ob in &mut out_blocks {
        let mut xb = [x.row(i); R];
        for (r, row) in xb.iter_mut().enumerate().skip(1) {
            *row = x.row(i + r);
        }
        let rows = widened.as_deref_mut().map(|y| y.rows_mut::<R>(i));
        logits_block::<S, T, R, J, IN, OUT>(s, &xb, w, b, scale, ob, j0, rows);
        i += R;
    }
    for or in out_blocks.into_remainder() {
        let out = core::slice::from_mut(or);
        let rows = widened.as_deref_mut().map(|y| y.rows_mut::<1>(i));
        logits_block::<S, T, 1, J, IN, OUT>(s, &[x.row(i)], w, b, scale, out, j0, rows);
        i += 1;
    }
}

/// [`logits_with`] on `u8` rows that also writes the rows, widened to
/// `f32`, to `widened`, for the gradient pass to read (the levels below
/// AVX-512, `train`'s `converts_rows_once`).
///
/// The first block of classes widens each pixel for its FMAs anyway, and
/// stores it in the same loop, where the FMAs leave the stores idle and
/// where the first read of a row from memory overlaps the arithmetic; the
/// other blocks read the widened rows. Widening is exact, so the logits
/// are the bits [`logits_with`] gives on either. The shapes are
/// [`logits_with`]'s for `f32` rows.
#[inline(always)]
pub(crate) fn logits_widening_with<
    S: Simd,
    X: Rows<u8, IN> + ?Sized,
    Y: RowsMut<f32, IN> + ?Sized,
    const IN: usize,
    const OUT: usize,
>(
    s: S,
    x: &X,
    widened: &mut Y,
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    logits: &mut [[f32; OUT]],
) {
    match S::ISA {
        Isa::Avx2 => {
            logits_widening_blocked::<S, X, Y, 2, 5, IN, OUT>(s, x, widened, w, b, scale, logits)
        }
        Isa::Avx512 | Isa::Baseline => {
            logits_widening_blocked::<S, X, Y, 4, 5, IN, OUT>(s, x, widened, w, b, scale, logits)
        }
    }
}

/// [`logits_widening_with`] in blocks of `R` rows by `J` classes: the first
/// class block (or class, if there are fewer than `J`) on the `u8` rows,
/// widening them, the rest on the widened rows.
#[inline(always)]
fn logits_widening_blocked<
    S: Simd,
    X: Rows<u8, IN> + ?Sized,
    Y: RowsMut<f32, IN> + ?Sized,
    const R: usize,
    const J: usize,
    const IN: usize,
    const OUT: usize,
>(
    s: S,
    x: &X,
    widened: &mut Y,
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    logits: &mut [[f32; OUT]],
) {
    assert_eq!(x.count(), logits.len(), "one row of logits per row of X");
    assert_eq!(
        widened.count(),
        logits.len(),
        "one widened row per row of X"
    );
    if OUT == 0 {
        return;
    }
    let first = if J <= OUT {
        logits_columns::<S, u8, X, Y, R, J, IN, OUT>(s, x, w, b, scale, logits, 0, Some(widened));
        J
    } else {
        logits_columns::<S, u8, X, Y, R, 1, IN, OUT>(s, x, w, b, scale, logits, 0, Some(widened));
        1
    };
    logits_classes_from::<S, f32, Y, R, J, IN, OUT>(s, &*widened, w, b, scale, logits, first);
}

/// The register-blocked inner kernel: `R` rows by classes `j0..j0 + J`.
/// With `widened`, it also stores each vector of `X` it loads there, as
/// `f32` ([`logits_widening_with`]).
// The operands of one block product, each its own shape: a struct would
// only rename them.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn logits_block<
    S: Simd,
    T: Element,
    const R: usize,
    const J: usize,
    const IN: usize,
    const OUT: usize,
>(
    s: S,
    x: &[&[T; IN]; R],
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    out: &mut [[f32; OUT]],
    j0: usize,
    mut widened: Option<[&mut [f32; IN]; R]>,
) {
    let lanes = S::LANES;
    let w: &[[f32; IN]; J] = w[j0..j0 + J].try_into().unwrap();
    let mut acc = [[s.zero(); J]; R];
    let full = IN / lanes * lanes;
    for k in (0..full).step_by(lanes) {
        let mut xv = [s.zero(); R];
        for (v, x_row) in xv.iter_mut().zip(x) {
            *v = T::load(s, &x_row[k..]);
        }
        if let Some(rows) = &mut widened {
            for (v, row) in xv.iter().zip(rows.iter_mut()) {
                v.store(&mut row[k..]);
            }
        }
        for (j, w_row) in w.iter().enumerate() {
            let wv = s.load(&w_row[k..]);
            for r in 0..R {
                acc[r][j] = xv[r].mul_add(wv, acc[r][j]);
            }
        }
    }
    if full < IN {
        // The last, partial vector: zero padding adds nothing to the dots.
        let mut xv = [s.zero(); R];
        for (v, x_row) in xv.iter_mut().zip(x) {
            *v = T::load_partial(s, &x_row[full..]);
        }
        if let Some(rows) = &mut widened {
            for (v, row) in xv.iter().zip(rows.iter_mut()) {
                v.store_partial(&mut row[full..]);
            }
        }
        for (j, w_row) in w.iter().enumerate() {
            let wv = s.load_partial(&w_row[full..], 0.0);
            for r in 0..R {
                acc[r][j] = xv[r].mul_add(wv, acc[r][j]);
            }
        }
    }
    // The R x J dot products, finished four at a time in (row, class)
    // order: a lane sum is a good part of a short dot product's work.
    let mut sums = [[0.0f32; J]; R];
    let count = R * J;
    let mut i = 0;
    while i + 4 <= count {
        let four = [i, i + 1, i + 2, i + 3];
        let vectors = [
            acc[four[0] / J][four[0] % J],
            acc[four[1] / J][four[1] % J],
            acc[four[2] / J][four[2] % J],
            acc[four[3] / J][four[3] % J],
        ];
        for (n, sum) in four.into_iter().zip(S::Vector::reduce_add4(vectors)) {
            sums[n / J][n % J] = sum;
        }
        i += 4;
    }
    while i < count {
        sums[i / J][i % J] = acc[i / J][i % J].reduce_add();
        i += 1;
    }
    for (out_row, sum_row) in out.iter_mut().zip(&sums) {
        let out_row = &mut out_row[j0..j0 + J];
        for ((o, sum), bias) in out_row.iter_mut().zip(sum_row).zip(&b[j0..j0 + J]) {
            *o = bias + scale * sum;
        }
    }
}

/// The gradient kernels at level `S`: `ADD` adds `scale * X^T G` to `w`;
/// otherwise it is written over `w`, which saves zeroing it and reading the
/// zeros back.
///
/// A panel of `V` vectors for `J` classes keeps `J x V` accumulators in
/// registers, with `V` row loads and `J` broadcasts of `G` shared by
/// `J x V` FMAs. With AVX-512 (32 registers), two vectors of `f32` rows for
/// all ten classes; with AVX2 (16 registers) two vectors for five classes at
/// a time, the panel's rows read again from L1 for the other five. `u8`
/// rows take one vector for all classes on every level: converting each
/// pixel once matters more than sharing the broadcasts.
#[inline(always)]
pub(crate) fn gradient_with<
    S: Simd,
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const IN: usize,
    const OUT: usize,
    const ADD: bool,
>(
    s: S,
    x: &X,
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
) {
    // Const generics cannot take an associated constant of `S`, so each
    // level's shape (vectors, classes) is named here.
    match S::ISA {
        Isa::Avx512 if !T::WIDENED => {
            gradient_panels::<S, T, X, 2, OUT, IN, OUT, ADD>(s, x, g, scale, w)
        }
        Isa::Avx2 if !T::WIDENED => {
            gradient_panels::<S, T, X, 2, 5, IN, OUT, ADD>(s, x, g, scale, w)
        }
        _ => gradient_panels::<S, T, X, 1, OUT, IN, OUT, ADD>(s, x, g, scale, w),
    }
}

/// Whole panels of `V` vectors, then single vectors, then a zero-padded
/// partial vector for the last `IN % LANES` columns; each panel for `J`
/// classes at a time (the classes past the last full block one at a time).
#[inline(always)]
fn gradient_panels<
    S: Simd,
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const V: usize,
    const J: usize,
    const IN: usize,
    const OUT: usize,
    const ADD: bool,
>(
    s: S,
    x: &X,
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
) {
    assert_eq!(x.count(), g.len(), "one row of G per row of X");
    let lanes = S::LANES;
    let mut k = 0;
    while k + V * lanes <= IN {
        gradient_classes::<S, T, X, V, J, IN, OUT, ADD>(s, x, g, scale, w, k);
        k += V * lanes;
    }
    while k + lanes <= IN {
        gradient_classes::<S, T, X, 1, J, IN, OUT, ADD>(s, x, g, scale, w, k);
        k += lanes;
    }
    if k < IN {
        gradient_tail::<S, T, X, IN, OUT, ADD>(s, x, g, scale, w, k);
    }
}

/// Columns `k..k + V * LANES` of every class, `J` classes at a time.
#[inline(always)]
fn gradient_classes<
    S: Simd,
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const V: usize,
    const J: usize,
    const IN: usize,
    const OUT: usize,
    const ADD: bool,
>(
    s: S,
    x: &X,
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
    k: usize,
) {
    let mut j = 0;
    while j + J <= OUT {
        gradient_panel::<S, T, X, V, J, IN, OUT, ADD>(s, x, g, scale, w, k, j);
        j += J;
    }
    while j < OUT {
        gradient_panel::<S, T, X, V, 1, IN, OUT, ADD>(s, x, g, scale, w, k, j);
        j += 1;
    }
}

/// One panel: columns `k..k + V * LANES` of classes `j0..j0 + J`,
/// accumulated over the whole batch in registers.
#[inline(always)]
fn gradient_panel<
    S: Simd,
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const V: usize,
    const J: usize,
    const IN: usize,
    const OUT: usize,
    const ADD: bool,
>(
    s: S,
    x: &X,
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
    k: usize,
    j0: usize,
) {
    let lanes = S::LANES;
    let mut acc = [[s.zero(); V]; J];
    for (i, g_row) in g.iter().enumerate() {
        let x_row = x.row(i);
        let mut xv = [s.zero(); V];
        for (v, xv) in xv.iter_mut().enumerate() {
            *xv = T::load(s, &x_row[k + v * lanes..]);
        }
        for (acc_j, &g_ij) in acc.iter_mut().zip(&g_row[j0..j0 + J]) {
            let g_ij = s.splat(g_ij);
            for v in 0..V {
                acc_j[v] = g_ij.mul_add(xv[v], acc_j[v]);
            }
        }
    }
    let scale = s.splat(scale);
    for (w_row, acc_j) in w[j0..j0 + J].iter_mut().zip(&acc) {
        for (v, a) in acc_j.iter().enumerate() {
            let dst = &mut w_row[k + v * lanes..];
            let updated = if ADD {
                a.mul_add(scale, s.load(dst))
            } else {
                *a * scale
            };
            updated.store(dst);
        }
    }
}

/// The last `IN - k < LANES` columns: one zero-padded vector per row.
#[inline(always)]
fn gradient_tail<
    S: Simd,
    T: Element,
    X: Rows<T, IN> + ?Sized,
    const IN: usize,
    const OUT: usize,
    const ADD: bool,
>(
    s: S,
    x: &X,
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
    k: usize,
) {
    let mut acc = [s.zero(); OUT];
    for (i, g_row) in g.iter().enumerate() {
        let xv = T::load_partial(s, &x.row(i)[k..]);
        for (acc_j, &g_ij) in acc.iter_mut().zip(g_row) {
            *acc_j = s.splat(g_ij).mul_add(xv, *acc_j);
        }
    }
    let mut lanes = [0.0f32; crate::simd::MAX_LANES];
    for (w_row, acc_j) in w.iter_mut().zip(&acc) {
        acc_j.store(&mut lanes);
        for (d, a) in w_row[k..].iter_mut().zip(lanes) {
            *d = if ADD { *d + scale * a } else { scale * a };
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::kernels::{reference, Picked};
    use crate::Rng;
    use core::array;
    use std::format;

    const MAX_ROWS: usize = 37;
    /// Around every multiple of the row blocks (full blocks plus leftover
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

    fn check<S: Simd, const IN: usize, const OUT: usize>(s: S, rng: &mut Rng) {
        let x = random_rows::<IN>(rng, 1.0);
        let p = random_pixels::<IN>(rng);
        let g = random_rows::<OUT>(rng, 0.3);
        let w_rows = random_rows::<IN>(rng, 0.5);
        let w: [[f32; IN]; OUT] = array::from_fn(|j| w_rows[j % MAX_ROWS]);
        let b: [f32; OUT] = array::from_fn(|j| j as f32 - 3.5);
        let pixel_scale = 1.0 / 255.0;
        for rows in ROW_COUNTS {
            let shape = format!("{} IN={IN} OUT={OUT} rows={rows}", S::ISA);
            let (x, p, g) = (&x[..rows], &p[..rows], &g[..rows]);

            let mut got = [[0.0; OUT]; MAX_ROWS];
            let mut want = [[0.0; OUT]; MAX_ROWS];
            logits_with(s, x, &w, &b, 1.0, &mut got[..rows]);
            reference::logits(x, &w, &b, &mut want[..rows]);
            assert_logits_close(
                &format!("logits {shape}"),
                &got[..rows],
                &want[..rows],
                |i, j| (0..IN).map(|k| (x[i][k] * w[j][k]).abs()).sum::<f32>() + b[j].abs(),
            );

            logits_with(s, p, &w, &b, pixel_scale, &mut got[..rows]);
            reference::logits_u8(p, &w, &b, pixel_scale, &mut want[..rows]);
            assert_logits_close(
                &format!("logits u8 {shape}"),
                &got[..rows],
                &want[..rows],
                |i, j| {
                    let dot: f32 = (0..IN).map(|k| (f32::from(p[i][k]) * w[j][k]).abs()).sum();
                    pixel_scale * dot + b[j].abs()
                },
            );

            let mut got = w;
            let mut want = w;
            gradient_with::<S, f32, _, IN, OUT, true>(s, x, g, -0.7, &mut got);
            reference::accumulate_weight_gradient(x, g, -0.7, &mut want);
            assert_weights_close(&format!("gradient {shape}"), &got, &want, |j, k| {
                0.7 * (0..rows).map(|i| (g[i][j] * x[i][k]).abs()).sum::<f32>() + w[j][k].abs()
            });

            let scale = -0.7 * pixel_scale;
            let mut got = w;
            let mut want = w;
            gradient_with::<S, u8, _, IN, OUT, true>(s, p, g, scale, &mut got);
            reference::accumulate_weight_gradient_u8(p, g, scale, &mut want);
            assert_weights_close(&format!("gradient u8 {shape}"), &got, &want, |j, k| {
                let dot: f32 = (0..rows)
                    .map(|i| (g[i][j] * f32::from(p[i][k])).abs())
                    .sum();
                scale.abs() * dot + w[j][k].abs()
            });

            // Written over whatever was there: the same as added to zeros.
            let mut over = w;
            let mut onto_zeros = [[0.0; IN]; OUT];
            gradient_with::<S, u8, _, IN, OUT, false>(s, p, g, scale, &mut over);
            gradient_with::<S, u8, _, IN, OUT, true>(s, p, g, scale, &mut onto_zeros);
            assert_eq!(over, onto_zeros, "overwrite {shape}");
        }
    }

    level_test! {
        fn matches_reference_for_many_shapes<S>(s) {
            let mut rng = Rng::seed_from_u64(40);
            check::<S, 1, 1>(s, &mut rng);
            check::<S, 1, 10>(s, &mut rng);
            check::<S, 7, 3>(s, &mut rng);
            check::<S, 8, 10>(s, &mut rng);
            check::<S, 9, 10>(s, &mut rng);
            check::<S, 15, 10>(s, &mut rng);
            check::<S, 16, 10>(s, &mut rng);
            check::<S, 17, 4>(s, &mut rng);
            check::<S, 17, 10>(s, &mut rng);
            check::<S, 24, 7>(s, &mut rng);
            check::<S, 31, 2>(s, &mut rng);
            check::<S, 32, 10>(s, &mut rng);
            check::<S, 33, 17>(s, &mut rng);
            check::<S, 47, 5>(s, &mut rng);
            check::<S, 48, 10>(s, &mut rng);
            check::<S, 63, 6>(s, &mut rng);
            check::<S, 79, 11>(s, &mut rng);
            check::<S, 100, 10>(s, &mut rng);
            check::<S, 784, 10>(s, &mut rng);
            check::<S, 1024, 10>(s, &mut rng);
            check::<S, 1030, 11>(s, &mut rng);
        }
    }

    /// The picked kernels read `images[rows[i]]` in place; they must give
    /// the bits the block kernels give on those rows copied together.
    fn check_picked<S: Simd, const IN: usize, const OUT: usize>(s: S, rng: &mut Rng) {
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
            let picked_rows = Picked {
                from: &images,
                rows,
            };
            let (mut picked, mut block) = ([[0.0f32; OUT]; MAX_ROWS], [[0.0f32; OUT]; MAX_ROWS]);
            logits_with(s, &picked_rows, &w, &b, 0.5, &mut picked[..n]);
            logits_with(s, gathered, &w, &b, 0.5, &mut block[..n]);
            assert_eq!(picked, block, "logits IN={IN} OUT={OUT} n={n}");
            let g = random_rows::<OUT>(rng, 1.0);
            let (mut picked, mut block) = (w, w);
            gradient_with::<S, u8, _, IN, OUT, false>(s, &picked_rows, &g[..n], 1.0, &mut picked);
            gradient_with::<S, u8, _, IN, OUT, false>(s, gathered, &g[..n], 1.0, &mut block);
            assert_eq!(picked, block, "gradient IN={IN} OUT={OUT} n={n}");
        }
    }

    level_test! {
        fn picked_rows_equal_gathered_rows<S>(s) {
            let mut rng = Rng::seed_from_u64(41);
            check_picked::<S, 1, 1>(s, &mut rng);
            check_picked::<S, 17, 3>(s, &mut rng);
            check_picked::<S, 33, 10>(s, &mut rng);
            check_picked::<S, 784, 10>(s, &mut rng);
        }
    }

    /// `logits_widening_with` must give the bits `logits_with` gives on the
    /// `u8` rows, and leave every row widened exactly, whatever was in
    /// `widened` before: every class block, the tails of rows and columns,
    /// fewer classes than a block, and picked rows.
    fn check_widening<S: Simd, const IN: usize, const OUT: usize>(s: S, rng: &mut Rng) {
        let images = random_pixels::<IN>(rng);
        let w = random_rows::<IN>(rng, 0.5);
        let w: [[f32; IN]; OUT] = array::from_fn(|j| w[j % MAX_ROWS]);
        let b: [f32; OUT] = array::from_fn(|j| j as f32 - 3.5);
        for n in ROW_COUNTS {
            let rows: [u32; MAX_ROWS] = array::from_fn(|_| rng.below(MAX_ROWS as u32));
            let picked_rows = Picked {
                from: &images,
                rows: &rows[..n],
            };
            let mut want = [[0.0f32; OUT]; MAX_ROWS];
            logits_with(s, &picked_rows, &w, &b, 1.0, &mut want[..n]);
            let mut got = [[f32::NAN; OUT]; MAX_ROWS];
            let mut widened = [[f32::NAN; IN]; MAX_ROWS];
            logits_widening_with(
                s,
                &picked_rows,
                &mut widened[..n],
                &w,
                &b,
                1.0,
                &mut got[..n],
            );
            let shape = format!("{} IN={IN} OUT={OUT} n={n}", S::ISA);
            assert_eq!(got[..n], want[..n], "logits {shape}");
            for (i, (row, &r)) in widened[..n].iter().zip(&rows[..n]).enumerate() {
                let exact = images[r as usize].map(f32::from);
                assert_eq!(*row, exact, "widened row {i} {shape}");
            }
        }
    }

    level_test! {
        fn widening_gives_the_bits_and_the_rows<S>(s) {
            let mut rng = Rng::seed_from_u64(44);
            check_widening::<S, 1, 1>(s, &mut rng);
            check_widening::<S, 1, 10>(s, &mut rng);
            check_widening::<S, 7, 3>(s, &mut rng);
            check_widening::<S, 17, 4>(s, &mut rng);
            check_widening::<S, 33, 10>(s, &mut rng);
            check_widening::<S, 47, 5>(s, &mut rng);
            check_widening::<S, 79, 11>(s, &mut rng);
            check_widening::<S, 784, 10>(s, &mut rng);
            check_widening::<S, 1030, 17>(s, &mut rng);
        }
    }

    /// `logits_blocked` with block shape `R x J`.
    fn logits_shaped<
        S: Simd,
        T: Element,
        const R: usize,
        const J: usize,
        const IN: usize,
        const OUT: usize,
    >(
        s: S,
        x: &[[T; IN]],
        w: &[[f32; IN]; OUT],
        b: &[f32; OUT],
    ) -> [[f32; OUT]; MAX_ROWS] {
        let mut out = [[0.0; OUT]; MAX_ROWS];
        logits_blocked::<S, T, _, R, J, IN, OUT>(s, x, w, b, 0.5, &mut out[..x.len()]);
        out
    }

    fn check_shapes_agree<S: Simd, const IN: usize, const OUT: usize>(s: S, rng: &mut Rng) {
        let x = random_rows::<IN>(rng, 1.0);
        let p = random_pixels::<IN>(rng);
        let w_rows = random_rows::<IN>(rng, 0.5);
        let w: [[f32; IN]; OUT] = array::from_fn(|j| w_rows[j % MAX_ROWS]);
        let b: [f32; OUT] = array::from_fn(|j| j as f32 - 3.5);
        for rows in ROW_COUNTS {
            let (x, p) = (&x[..rows], &p[..rows]);
            let one = logits_shaped::<S, f32, 1, 1, IN, OUT>(s, x, &w, &b);
            assert_eq!(one, logits_shaped::<S, f32, 4, 5, IN, OUT>(s, x, &w, &b));
            assert_eq!(one, logits_shaped::<S, f32, 2, 10, IN, OUT>(s, x, &w, &b));
            let one = logits_shaped::<S, u8, 1, 1, IN, OUT>(s, p, &w, &b);
            assert_eq!(one, logits_shaped::<S, u8, 4, 5, IN, OUT>(s, p, &w, &b));
            assert_eq!(one, logits_shaped::<S, u8, 2, 10, IN, OUT>(s, p, &w, &b));
            assert_eq!(one, logits_shaped::<S, u8, 2, 5, IN, OUT>(s, p, &w, &b));
        }
    }

    level_test! {
        /// The block shape only groups the dot products: each is the same
        /// sum in the same order, so every level's shapes give the same
        /// bits, and a level's shape can be tuned without changing a run.
        fn block_shapes_give_the_same_bits<S>(s) {
            let mut rng = Rng::seed_from_u64(42);
            check_shapes_agree::<S, 33, 10>(s, &mut rng);
            check_shapes_agree::<S, 79, 11>(s, &mut rng);
            check_shapes_agree::<S, 784, 10>(s, &mut rng);
        }
    }

    #[test]
    #[should_panic]
    fn picking_a_row_that_does_not_exist_panics() {
        let images = [[1u8; 16]; 3];
        let mut out = [[0.0f32; 2]; 1];
        let x = Picked {
            from: &images,
            rows: &[3],
        };
        logits(&x, &[[0.0; 16]; 2], &[0.0; 2], 1.0, &mut out);
    }

    level_test! {
        fn weight_gradient_is_the_plain_product<S>(s) {
            let x = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
            let g = [[1.0, 0.0], [0.5, -1.0]];
            let mut grad = [[9.0; 3]; 2];
            gradient_with::<S, f32, _, 3, 2, false>(s, &x[..], &g, 1.0, &mut grad);
            assert_eq!(grad, [[3.0, 4.5, 6.0], [-4.0, -5.0, -6.0]]);
        }
    }

    level_test! {
        fn u8_kernels_equal_f32_kernels_on_scaled_pixels<S>(s) {
            // Small integers times powers of two are exact in every order,
            // so the two paths must agree to the bit.
            let p: [[u8; 21]; 6] = array::from_fn(|i| array::from_fn(|k| (i * 21 + k) as u8));
            let x = p.map(|row| row.map(f32::from));
            let w: [[f32; 21]; 3] =
                array::from_fn(|j| array::from_fn(|k| (k % 5) as f32 - j as f32));
            let b = [0.5, -1.0, 2.0];
            let (mut from_u8, mut from_f32) = ([[0.0; 3]; 6], [[0.0; 3]; 6]);
            logits_with(s, &p[..], &w, &b, 0.25, &mut from_u8);
            let scaled = x.map(|r| r.map(|v| v * 0.25));
            logits_with(s, &scaled[..], &w, &b, 1.0, &mut from_f32);
            assert_eq!(from_u8, from_f32);

            let g: [[f32; 3]; 6] = array::from_fn(|i| array::from_fn(|j| (i + j) as f32 - 3.0));
            let (mut from_u8, mut from_f32) = (w, w);
            gradient_with::<S, u8, _, 21, 3, true>(s, &p[..], &g, 0.5, &mut from_u8);
            gradient_with::<S, f32, _, 21, 3, true>(s, &x[..], &g, 0.5, &mut from_f32);
            assert_eq!(from_u8, from_f32);
        }
    }

    level_test! {
        fn nan_and_infinity_propagate_through_logits<S>(s) {
            // 9 rows: two full blocks of 4 (four of 2) and a leftover row;
            // 20 inputs: one full vector and a partial one at 16 lanes,
            // two and a partial at 8.
            let mut x = [[1.0f32; 20]; 9];
            x[1][17] = f32::NAN; // partial vector, full block
            x[5][3] = f32::INFINITY; // full vector, second block
            x[8][0] = f32::NAN; // the leftover row
            let w = [[1.0f32; 20]; 6];
            let mut out = [[0.0; 6]; 9];
            logits_with(s, &x[..], &w, &[0.0; 6], 1.0, &mut out);
            for (i, row) in out.iter().enumerate() {
                match i {
                    1 | 8 => assert!(row.iter().all(|v| v.is_nan()), "row {i}: {row:?}"),
                    5 => assert!(row.iter().all(|v| *v == f32::INFINITY), "row {i}: {row:?}"),
                    _ => assert_eq!(*row, [20.0; 6], "row {i}"),
                }
            }

            // A NaN weight poisons its class (one in the class block, one
            // past it), a NaN bias its logit, for u8 inputs as well.
            let p = [[2u8; 20]; 9];
            let mut w = [[1.0f32; 20]; 6];
            w[2][19] = f32::NAN;
            w[5][0] = f32::NEG_INFINITY;
            let b = [0.0, f32::NAN, 0.0, 0.0, 0.0, 0.0];
            logits_with(s, &p[..], &w, &b, 0.5, &mut out);
            for row in &out {
                assert_eq!([row[0], row[3], row[4]], [20.0; 3]);
                assert!(row[1].is_nan() && row[2].is_nan(), "{row:?}");
                assert_eq!(row[5], f32::NEG_INFINITY);
            }
        }
    }

    level_test! {
        fn nan_and_infinity_propagate_through_gradients<S>(s) {
            // 40 inputs: whole vectors and a partial one at either width.
            let mut x = [[1.0f32; 40]; 5];
            x[2][5] = f32::NAN;
            x[3][37] = f32::INFINITY;
            let g = [[1.0f32; 3]; 5];
            let mut w = [[0.0f32; 40]; 3];
            gradient_with::<S, f32, _, 40, 3, true>(s, &x[..], &g, 0.5, &mut w);
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
            gradient_with::<S, u8, _, 40, 3, true>(s, &p[..], &g, 1.0, &mut w);
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

    /// The public functions run the same code as the level they dispatch to.
    #[test]
    fn public_functions_equal_their_level() {
        let mut rng = Rng::seed_from_u64(42);
        let x = random_rows::<50>(&mut rng, 1.0);
        let g = random_rows::<7>(&mut rng, 1.0);
        let w: [[f32; 50]; 7] = array::from_fn(|j| x[j + 20]);
        let b = [0.25; 7];
        struct AtLevel<'a>(&'a [[f32; 50]], &'a [[f32; 7]], &'a [[f32; 50]; 7]);
        impl Kernel for AtLevel<'_> {
            type Output = ([[f32; 7]; MAX_ROWS], [[f32; 50]; 7], [[f32; 50]; 7]);
            fn run<S: Simd>(self, s: S) -> Self::Output {
                let mut out = [[0.0; 7]; MAX_ROWS];
                logits_with(s, self.0, self.2, &[0.25; 7], 1.0, &mut out);
                let (mut over, mut onto) = (*self.2, *self.2);
                gradient_with::<S, f32, _, 50, 7, false>(s, self.0, self.1, 0.5, &mut over);
                gradient_with::<S, f32, _, 50, 7, true>(s, self.0, self.1, 0.5, &mut onto);
                (out, over, onto)
            }
        }
        let want = Isa::current().dispatch(AtLevel(&x, &g, &w));
        let mut out = [[0.0; 7]; MAX_ROWS];
        logits(&x[..], &w, &b, 1.0, &mut out);
        let (mut over, mut onto) = (w, w);
        weight_gradient(&x[..], &g, 0.5, &mut over);
        accumulate_weight_gradient(&x[..], &g, 0.5, &mut onto);
        assert_eq!((out, over, onto), want);
    }
}
