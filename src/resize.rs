//! The chapter's image pipeline: scale `u8` pixels to `[0, 1]` and resize the
//! 28x28 images to 32x32, exactly as `tf.image.resize(x / 255, (32, 32))`.
//!
//! TensorFlow's bilinear resize (no antialiasing) uses *half-pixel centres*:
//! output pixel `o` samples the source at `s = (o + 0.5) * 28/32 - 0.5`, between
//! source pixels `floor(s)` and `ceil(s)`, both clamped to the image, with weight
//! `s - floor(s)` on the second. Rows and columns use the same taps, and we
//! interpolate in the same order (along a row first, then between rows) and
//! in `f32`, so the output matches TensorFlow's to within rounding.

use crate::fashion_mnist::{PIXELS, RESIZED_PIXELS, RESIZED_SIDE, SIDE};
use crate::simd::{Isa, Kernel, Simd, Vector};

/// One output coordinate of a 1-D bilinear resize: the two source
/// coordinates it blends and the weight of the second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tap {
    /// Lower source index, `max(floor(s), 0)`.
    pub lower: usize,
    /// Upper source index, `min(ceil(s), in_size - 1)`.
    pub upper: usize,
    /// Weight of `upper`: `s - floor(s)`.
    pub frac: f32,
}

/// The taps of a 1-D resize from `IN_SIZE` to `OUT_SIZE` samples with
/// half-pixel centres, as TensorFlow's `compute_interpolation_weights`.
pub const fn taps<const IN_SIZE: usize, const OUT_SIZE: usize>() -> [Tap; OUT_SIZE] {
    let scale = IN_SIZE as f32 / OUT_SIZE as f32;
    let mut taps = [Tap {
        lower: 0,
        upper: 0,
        frac: 0.0,
    }; OUT_SIZE];
    let mut o = 0;
    while o < OUT_SIZE {
        let s = (o as f32 + 0.5) * scale - 0.5;
        // floor and ceil by hand: `f32::floor` is not a `const fn` in core.
        let truncated = s as i64 as f32;
        let floor = if truncated > s {
            truncated - 1.0
        } else {
            truncated
        };
        let ceil = if floor < s { floor + 1.0 } else { floor };
        let lower = if floor < 0.0 { 0 } else { floor as usize };
        let upper = if ceil as usize > IN_SIZE - 1 {
            IN_SIZE - 1
        } else {
            ceil as usize
        };
        taps[o] = Tap {
            lower,
            upper,
            frac: s - floor,
        };
        o += 1;
    }
    taps
}

/// The taps of the chapter's resize, 28 -> 32, computed at compile time.
pub const TAPS_28_TO_32: [Tap; RESIZED_SIDE] = taps::<SIDE, RESIZED_SIDE>();

/// `x / 255` for every pixel: the chapter's scaling to `[0, 1]`, without resize
/// (the 784-input variant of the model).
pub fn scale_28(src: &[u8; PIXELS], dst: &mut [f32; PIXELS]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f32::from(s) / 255.0;
    }
}

/// Pixel `(y, x)` of `tf.image.resize(image / 255, (32, 32))`: blend along
/// the row first, then between the rows, in `f32`, as TensorFlow does.
/// Firmware resizes one output pixel at a time with this
/// ([`crate::inference`]); [`resize_28_to_32`] is it over the whole image,
/// so both give the same bits.
#[inline]
pub fn resized_pixel(image: &[u8; PIXELS], y: usize, x: usize) -> f32 {
    let (ty, tx) = (TAPS_28_TO_32[y], TAPS_28_TO_32[x]);
    let pixel = |row: usize, col: usize| f32::from(image[row * SIDE + col]) / 255.0;
    let top_left = pixel(ty.lower, tx.lower);
    let top_right = pixel(ty.lower, tx.upper);
    let bottom_left = pixel(ty.upper, tx.lower);
    let bottom_right = pixel(ty.upper, tx.upper);
    let top = top_left + (top_right - top_left) * tx.frac;
    let bottom = bottom_left + (bottom_right - bottom_left) * tx.frac;
    top + (bottom - top) * ty.frac
}

/// `tf.image.resize(x / 255, (32, 32))` of one 28x28 image, flattened
/// row-major into 1024 values in `[0, 1]`.
pub fn resize_28_to_32(src: &[u8; PIXELS], dst: &mut [f32; RESIZED_PIXELS]) {
    for (k, out) in dst.iter_mut().enumerate() {
        *out = resized_pixel(src, k / RESIZED_SIDE, k % RESIZED_SIDE);
    }
}

/// The taps of [`TAPS_28_TO_32`] read the other way round: for each source
/// pixel, which output samples blend it in and with what weight. Folding
/// weights needs this direction; gathering a short fixed sum per output
/// avoids the chains of read-modify-writes that scattering through the taps
/// makes (`docs/performance.md` has the measurements).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reads {
    /// Output samples that read this pixel; unused slots have weight 0.
    pub outputs: [usize; READS_PER_PIXEL],
    /// Their weights.
    pub weights: [f32; READS_PER_PIXEL],
}

/// Most output samples one source pixel contributes to (3 for 28 -> 32;
/// one more slot for the clamped edge, where a sample reads a pixel twice).
pub const READS_PER_PIXEL: usize = 4;

const fn invert<const IN_SIZE: usize, const OUT_SIZE: usize>(
    taps: &[Tap; OUT_SIZE],
) -> [Reads; IN_SIZE] {
    let mut reads = [Reads {
        outputs: [0; READS_PER_PIXEL],
        weights: [0.0; READS_PER_PIXEL],
    }; IN_SIZE];
    let mut counts = [0usize; IN_SIZE];
    let mut o = 0;
    while o < OUT_SIZE {
        let t = taps[o];
        let (p, n) = (t.lower, counts[t.lower]);
        reads[p].outputs[n] = o;
        reads[p].weights[n] = 1.0 - t.frac;
        counts[p] += 1;
        let (p, n) = (t.upper, counts[t.upper]);
        reads[p].outputs[n] = o;
        reads[p].weights[n] = t.frac;
        counts[p] += 1;
        o += 1;
    }
    reads
}

/// [`TAPS_28_TO_32`] inverted, computed at compile time (a tap overflowing
/// [`READS_PER_PIXEL`] would fail the build).
pub const READS_28_FROM_32: [Reads; SIDE] = invert::<SIDE, RESIZED_SIDE>(&TAPS_28_TO_32);

/// `W_eff = scale * R^T W` for one class, with `R` the 1024 x 784 matrix of
/// [`resize_28_to_32`]: the weights a model on raw 28x28 pixels needs to
/// give the same logits as `w` on resized 32x32 images (times `scale`; the
/// trainer folds the 1/255 pixel scale in here too).
///
/// Resizing is linear (`resize(x) = R x`), so `w . resize(x) = (R^T w) . x`:
/// training can skip resizing 60,000 images and read 784 pixels instead of
/// 1024 floats each, folding the resize into the weights once per step.
/// `R` is separable, `R = T (x) T` for the 32 x 28 matrix `T` of
/// [`TAPS_28_TO_32`] (two entries a row), so `R^T W` is `T^T W T` with `W` as a
/// 32x32 image: about 4,500 multiply-adds.
pub fn fold_resize_into_weights(w: &[f32; RESIZED_PIXELS], scale: f32, w_eff: &mut [f32; PIXELS]) {
    // Down the columns first, whole rows at a time: B = T^T W (28 x 32).
    let mut b = [[0.0f32; RESIZED_SIDE]; SIDE];
    for (tap, w_row) in TAPS_28_TO_32.iter().zip(w.chunks_exact(RESIZED_SIDE)) {
        for (acc, v) in b[tap.lower].iter_mut().zip(w_row) {
            *acc += (1.0 - tap.frac) * v;
        }
        for (acc, v) in b[tap.upper].iter_mut().zip(w_row) {
            *acc += tap.frac * v;
        }
    }
    // Then along each row, a short fixed sum per output: W_eff = scale B T.
    for (out_row, b_row) in w_eff.chunks_exact_mut(SIDE).zip(&b) {
        for (out, reads) in out_row.iter_mut().zip(&READS_28_FROM_32) {
            let mut sum = 0.0;
            for (&o, &weight) in reads.outputs.iter().zip(&reads.weights) {
                sum += weight * b_row[o];
            }
            *out = scale * sum;
        }
    }
}

/// `w += scale * R g` for one class: takes a gradient with respect to the
/// folded weights (`g`, 28x28) back to the 32x32 weights, since
/// `d loss / d W = R (d loss / d W_eff)` when `W_eff = R^T W`. That is
/// `T G T^T`: [`resize_28_to_32`]'s own interpolation, applied to `g`.
pub fn unfold_gradient_add(g: &[f32; PIXELS], scale: f32, w: &mut [f32; RESIZED_PIXELS]) {
    // Along each row: B = G T^T (28 x 32).
    let mut rows = [[0.0f32; RESIZED_SIDE]; SIDE];
    for (b, g_row) in rows.iter_mut().zip(g.chunks_exact(SIDE)) {
        for (out, tap) in b.iter_mut().zip(&TAPS_28_TO_32) {
            *out = (1.0 - tap.frac) * g_row[tap.lower] + tap.frac * g_row[tap.upper];
        }
    }
    // Down the columns: T B (32 x 32).
    for (w_row, tap) in w.chunks_exact_mut(RESIZED_SIDE).zip(&TAPS_28_TO_32) {
        let (lower, upper) = (&rows[tap.lower], &rows[tap.upper]);
        for ((w, lo), hi) in w_row.iter_mut().zip(lower).zip(upper) {
            *w += scale * ((1.0 - tap.frac) * lo + tap.frac * hi);
        }
    }
}

/// A symmetric tridiagonal matrix as its three diagonals: row `p` is
/// `below[p]` at column `p - 1`, `diagonal[p]` at `p` and `above[p]` at
/// `p + 1` (`below[0]` and `above[last]` are 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tridiagonal<const N: usize> {
    /// Entries left of the diagonal.
    pub below: [f32; N],
    /// The diagonal.
    pub diagonal: [f32; N],
    /// Entries right of the diagonal.
    pub above: [f32; N],
}

/// `T^T T` for the 1-D resize `T` (`OUT_SIZE x IN_SIZE`, two entries a row at
/// adjacent columns). Two columns of `T` overlap only if some output blends
/// both, i.e. if they are neighbours, so the product is tridiagonal; a
/// resize whose taps are not neighbours would fail the build.
const fn gram<const IN_SIZE: usize, const OUT_SIZE: usize>(
    taps: &[Tap; OUT_SIZE],
) -> Tridiagonal<IN_SIZE> {
    let mut g = Tridiagonal {
        below: [0.0; IN_SIZE],
        diagonal: [0.0; IN_SIZE],
        above: [0.0; IN_SIZE],
    };
    let mut o = 0;
    while o < OUT_SIZE {
        let t = taps[o];
        let (lo, hi) = (1.0 - t.frac, t.frac);
        if t.lower == t.upper {
            // A clamped tap reads one pixel with weight lo + hi = 1.
            g.diagonal[t.lower] += (lo + hi) * (lo + hi);
        } else {
            assert!(t.upper == t.lower + 1, "taps must be neighbours");
            g.diagonal[t.lower] += lo * lo;
            g.diagonal[t.upper] += hi * hi;
            g.above[t.lower] += lo * hi;
            g.below[t.upper] += lo * hi;
        }
        o += 1;
    }
    g
}

/// `T^T T` for [`TAPS_28_TO_32`], computed at compile time: the 1-D factor of
/// `R^T R`, which [`gram_add`] applies down columns and along rows.
pub const GRAM_28_FROM_32: Tridiagonal<SIDE> = gram::<SIDE, RESIZED_SIDE>(&TAPS_28_TO_32);

/// `w_eff += scale * R^T R g` for one class: how a step's gradient changes
/// the folded weights, without going through the 32x32 weights.
///
/// A step changes the model's weights by `R g` (times the step size, see
/// [`unfold_gradient_add`]), so it changes `W_eff = R^T W` by `R^T R g`. `R`
/// is `T (x) T`, so `R^T R = (T^T T) (x) (T^T T)`: the tridiagonal
/// [`GRAM_28_FROM_32`] applied down each column of `g` (as a 28x28 image)
/// and along each row, three terms per entry either way. That is about
/// 4,700 multiply-adds that vectorise along rows, where folding anew after
/// every step ([`fold_resize_into_weights`]) also needs [`unfold_gradient_add`]
/// and gathers through the taps one weight at a time.
pub fn gram_add(g: &[f32; PIXELS], scale: f32, w_eff: &mut [f32; PIXELS]) {
    struct Job<'a>(&'a [f32; PIXELS], f32, &'a mut [f32; PIXELS]);
    impl Kernel for Job<'_> {
        type Output = ();
        #[inline(always)]
        fn run<S: Simd>(self, s: S) {
            gram_add_with(s, self.0, self.1, self.2, &mut GramScratch::zeroed());
        }
    }
    Isa::current().dispatch(Job(g, scale, w_eff));
}

/// Where [`gram_add_with`] keeps the column pass's result: one row per image
/// row, with a zero on either side so that the row pass is the same
/// three-term sum everywhere (the borders meet the taps `below[0]` and
/// `above[last]`, which are 0, so they need only be finite). The column pass
/// writes only the inside, so the zeros stay, and one scratch zeroed once
/// serves every class of a step (zeroing it anew for each class took about
/// an eighth of the pass).
pub(crate) struct GramScratch([[f32; SIDE + 2]; SIDE]);

impl GramScratch {
    /// All zero: finite borders for the row pass.
    pub(crate) const fn zeroed() -> Self {
        GramScratch([[0.0; SIDE + 2]; SIDE])
    }
}

/// Where the vectors of a 28-wide row start: whole vectors from 0, and a
/// last one ending at the row's end that overlaps the one before it (for 16
/// lanes `0, 12`; for 8 lanes `0, 8, 16, 20`). The overlap is computed
/// twice, identically, so no lane needs masking.
const fn row_vectors(lanes: usize) -> ([usize; ROW_VECTORS], usize) {
    assert!(lanes >= 8 && lanes <= SIDE, "a row in at most four vectors");
    let mut starts = [0; ROW_VECTORS];
    let mut count = 0;
    while count * lanes + lanes <= SIDE {
        starts[count] = count * lanes;
        count += 1;
    }
    if count * lanes < SIDE {
        starts[count] = SIDE - lanes;
        count += 1;
    }
    (starts, count)
}

/// [`gram_add`] at level `S`.
#[inline(always)]
pub(crate) fn gram_add_with<S: Simd>(
    s: S,
    g: &[f32; PIXELS],
    scale: f32,
    w_eff: &mut [f32; PIXELS],
    scratch: &mut GramScratch,
) {
    let t = &GRAM_28_FROM_32;
    let (starts, count) = row_vectors(S::LANES);
    let starts = &starts[..count];
    // Down each column first: H = (T^T T) G, one whole row at a time, into
    // the inside of the scratch's rows. (Rows first, the other order, reads
    // each freshly written row back one lane off, which the store buffer
    // cannot forward.)
    let h = &mut scratch.0;
    let none = [s.zero(); ROW_VECTORS];
    for (r, h_row) in h.iter_mut().enumerate() {
        let row = |r: usize| &g[r * SIDE..(r + 1) * SIDE];
        let here = load_row(s, row(r), starts, 0);
        let up = if r > 0 {
            load_row(s, row(r - 1), starts, 0)
        } else {
            none
        };
        let down = if r + 1 < SIDE {
            load_row(s, row(r + 1), starts, 0)
        } else {
            none
        };
        let (b, d, a) = (
            s.splat(t.below[r]),
            s.splat(t.diagonal[r]),
            s.splat(t.above[r]),
        );
        for (v, &p) in starts.iter().enumerate() {
            let sum = b * up[v] + d * here[v] + a * down[v];
            sum.store(&mut h_row[p + 1..]);
        }
    }
    // Then along each row: H (T^T T), added to the folded weights. Every
    // vector of a row is read before any is written, as they overlap.
    let below = load_row(s, &t.below, starts, 0);
    let diagonal = load_row(s, &t.diagonal, starts, 0);
    let above = load_row(s, &t.above, starts, 0);
    let scale = s.splat(scale);
    for (w_row, h_row) in w_eff.chunks_exact_mut(SIDE).zip(h.iter()) {
        let (left, middle, right) = (
            load_row(s, h_row, starts, 0),
            load_row(s, h_row, starts, 1),
            load_row(s, h_row, starts, 2),
        );
        let mut updated = load_row(s, w_row, starts, 0);
        for v in 0..starts.len() {
            let sum = below[v] * left[v] + diagonal[v] * middle[v] + above[v] * right[v];
            updated[v] += scale * sum;
        }
        for (v, &p) in starts.iter().enumerate() {
            updated[v].store(&mut w_row[p..]);
        }
    }
}

/// The most vectors a 28-wide row takes (at 8 lanes).
const ROW_VECTORS: usize = 4;

/// The vectors of a row that start at `starts` (plus `offset`); the unused
/// slots zero.
#[inline(always)]
fn load_row<S: Simd>(
    s: S,
    row: &[f32],
    starts: &[usize],
    offset: usize,
) -> [S::Vector; ROW_VECTORS] {
    let mut vectors = [s.zero(); ROW_VECTORS];
    for (v, &p) in vectors.iter_mut().zip(starts) {
        *v = s.load(&row[p + offset..]);
    }
    vectors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_follow_half_pixel_centres() {
        // o = 0 samples s = -0.0625: clamped to pixel 0 on both sides.
        assert_eq!(TAPS_28_TO_32[0].lower, 0);
        assert_eq!(TAPS_28_TO_32[0].upper, 0);
        // o = 1 samples s = 0.8125, between pixels 0 and 1.
        assert_eq!((TAPS_28_TO_32[1].lower, TAPS_28_TO_32[1].upper), (0, 1));
        assert!((TAPS_28_TO_32[1].frac - 0.8125).abs() < 1e-7);
        // o = 31 samples s = 27.0625: past the last pixel, clamped to 27.
        assert_eq!((TAPS_28_TO_32[31].lower, TAPS_28_TO_32[31].upper), (27, 27));
        // Whole-number sample points blend nothing: o = 4 samples s = 3.4375,
        // and 28 -> 28 is the identity.
        for (o, t) in taps::<28, 28>().iter().enumerate() {
            assert_eq!((t.lower, t.upper, t.frac), (o, o, 0.0));
        }
    }

    #[test]
    fn folding_gives_the_same_dot_products() {
        let mut rng = crate::Rng::seed_from_u64(70);
        for _ in 0..20 {
            let mut src = [0u8; PIXELS];
            src.iter_mut().for_each(|p| *p = rng.below(256) as u8);
            let mut w = [0.0f32; RESIZED_PIXELS];
            w.iter_mut().for_each(|v| *v = rng.normal());
            let mut resized = [0.0f32; RESIZED_PIXELS];
            resize_28_to_32(&src, &mut resized);
            let direct: f64 = w.iter().zip(&resized).map(|(a, b)| f64::from(a * b)).sum();
            let mut w_eff = [0.0f32; PIXELS];
            fold_resize_into_weights(&w, 1.0, &mut w_eff);
            let folded: f64 = w_eff
                .iter()
                .zip(&src)
                .map(|(a, &p)| f64::from(*a) * f64::from(p) / 255.0)
                .sum();
            let scale: f64 = w.iter().map(|v| f64::from(v.abs())).sum();
            assert!(
                (direct - folded).abs() <= 1e-6 * scale,
                "{direct} vs {folded}"
            );
        }
    }

    #[test]
    fn unfolding_is_the_transpose_of_folding() {
        // <R^T w, g> = <w, R g> for every w and g.
        let mut rng = crate::Rng::seed_from_u64(71);
        for _ in 0..20 {
            let mut w = [0.0f32; RESIZED_PIXELS];
            w.iter_mut().for_each(|v| *v = rng.normal());
            let mut g = [0.0f32; PIXELS];
            g.iter_mut().for_each(|v| *v = rng.normal());
            let mut w_eff = [0.0f32; PIXELS];
            fold_resize_into_weights(&w, 1.0, &mut w_eff);
            let mut r_g = [0.0f32; RESIZED_PIXELS];
            unfold_gradient_add(&g, 1.0, &mut r_g);
            let left: f64 = w_eff.iter().zip(&g).map(|(a, b)| f64::from(a * b)).sum();
            let right: f64 = w.iter().zip(&r_g).map(|(a, b)| f64::from(a * b)).sum();
            assert!((left - right).abs() <= 1e-4, "{left} vs {right}");
        }
    }

    #[test]
    fn gram_is_the_product_of_the_taps() {
        // T^T T from a dense T, in f64, against the compile-time diagonals.
        let mut t = [[0.0f64; SIDE]; RESIZED_SIDE];
        for (row, tap) in t.iter_mut().zip(&TAPS_28_TO_32) {
            row[tap.lower] += 1.0 - f64::from(tap.frac);
            row[tap.upper] += f64::from(tap.frac);
        }
        let g = &GRAM_28_FROM_32;
        for p in 0..SIDE {
            for q in 0..SIDE {
                let want: f64 = t.iter().map(|row| row[p] * row[q]).sum();
                let got = match q as isize - p as isize {
                    -1 => g.below[p],
                    0 => g.diagonal[p],
                    1 => g.above[p],
                    _ => 0.0,
                };
                assert!(
                    (f64::from(got) - want).abs() < 1e-6,
                    "({p}, {q}): {got} vs {want}"
                );
            }
        }
    }

    level_test! {
        fn gram_add_is_unfold_then_fold<S>(s) {
            // One scratch for every case, as a step uses it for every class.
            let mut scratch = GramScratch::zeroed();
            gram_add_against_the_long_way(|g, scale, w_eff| {
                gram_add_with(s, g, scale, w_eff, &mut scratch)
            });
        }
    }

    #[test]
    fn gram_add_at_the_current_level_is_unfold_then_fold() {
        gram_add_against_the_long_way(gram_add);
    }

    #[test]
    fn row_vectors_cover_a_row() {
        assert_eq!(row_vectors(16), ([0, 12, 0, 0], 2));
        assert_eq!(row_vectors(8), ([0, 8, 16, 20], 4));
        // Widths no level has: one that divides the row needs no
        // overlapping last vector, one that does not gets one.
        assert_eq!(row_vectors(14), ([0, 14, 0, 0], 2));
        assert_eq!(row_vectors(28), ([0, 0, 0, 0], 1));
        assert_eq!(row_vectors(12), ([0, 12, 16, 0], 3));
    }

    fn gram_add_against_the_long_way(
        mut gram_add: impl FnMut(&[f32; PIXELS], f32, &mut [f32; PIXELS]),
    ) {
        // R^T (R g) the long way round, against the tridiagonal shortcut.
        let mut rng = crate::Rng::seed_from_u64(72);
        for _ in 0..20 {
            let mut g = [0.0f32; PIXELS];
            g.iter_mut().for_each(|v| *v = rng.normal());
            let mut w_eff = [0.0f32; PIXELS];
            w_eff.iter_mut().for_each(|v| *v = rng.normal());
            let scale = rng.normal();
            let mut r_g = [0.0f32; RESIZED_PIXELS];
            unfold_gradient_add(&g, 1.0, &mut r_g);
            let mut want = [0.0f32; PIXELS];
            fold_resize_into_weights(&r_g, scale, &mut want);
            for (w, v) in want.iter_mut().zip(&w_eff) {
                *w += v;
            }
            gram_add(&g, scale, &mut w_eff);
            for (got, want) in w_eff.iter().zip(&want) {
                assert!(
                    (got - want).abs() <= 1e-5 * (1.0 + scale.abs()),
                    "{got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn reads_are_the_taps_inverted() {
        // Every tap weight appears exactly once among the reads, and each
        // pixel's reads sum to what the outputs take from it.
        let mut total = 0.0f32;
        for (p, reads) in READS_28_FROM_32.iter().enumerate() {
            for (&o, &weight) in reads.outputs.iter().zip(&reads.weights) {
                let t = TAPS_28_TO_32[o];
                if weight != 0.0 {
                    assert!(t.lower == p || t.upper == p);
                }
                total += weight;
            }
        }
        // Each of the 32 outputs distributes weight 1.
        assert!((total - 32.0).abs() < 1e-5);
    }

    #[test]
    fn constant_images_stay_constant() {
        let src = [200u8; PIXELS];
        let mut dst = [0.0; RESIZED_PIXELS];
        resize_28_to_32(&src, &mut dst);
        for v in dst {
            assert!((v - 200.0 / 255.0).abs() < 1e-7);
        }
    }
}
