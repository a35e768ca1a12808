//! Symmetric per-class int8 weights: a quarter of the `f32` model's size.
//!
//! Each class `j` keeps its `IN` weights as `q[j][k]` in `-127..=127` and one
//! `f32` scale, `w[j][k] ~ q[j][k] * scale[j]` with `scale[j] = max_k |w[j][k]| /
//! 127` (symmetric: no zero point). The bias stays `f32`. On disk this is
//! parameter type [`DTYPE_I8`] of the model file (layout in
//! [`crate::model_file`]): `32 + 8 * OUT + IN * OUT` bytes, 10,352 for the
//! chapter's 1024 x 10 model against 41,032 for `f32`.
//!
//! The inputs are quantised too, to `u8` in units of `1 / 255`: for Fashion-
//! MNIST that is exactly the pixel for a 28x28 model, and the bilinear 32x32
//! resize rounded to the nearest `1 / 255` ([`crate::inference`] does that in
//! integer arithmetic). A logit is then an exact integer dot product and one
//! rescale,
//!
//! `logit[j] = (sum_k q[j][k] * a[k]) as f32 * scale[j] / 255 + bias[j]`,
//!
//! so the SIMD kernel on the host ([`dot_simd`], `i16` multiplies with `i32`
//! pair sums: `vpmaddwd` on x86) and the scalar one for microcontrollers
//! ([`dot_scalar`]) give bit-identical logits. The sum cannot overflow:
//! `|q * a| <= 127 * 255` and `IN * 127 * 255 < 2^31` for every `IN <= 66_000`
//! (checked at compile time by [`QuantizedView::logits`]).

use crate::model::ModelView;
use crate::model_file::{self, ModelFileError, DTYPE_I8, HEADER_LEN};
use core::array;
use wide::{i16x16, i32x8, i8x16, u8x16};

/// Largest magnitude of a quantised weight: symmetric, so `-128` is unused.
pub const Q_MAX: i8 = 127;

/// Largest `IN` whose dot products cannot overflow an `i32`.
pub const MAX_INPUTS: usize = (i32::MAX / (127 * 255)) as usize;

/// An int8 model owned on the host: the output of [`quantize`], written to a
/// model file with [`QuantizedModel::write_file`].
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedModel<const IN: usize, const OUT: usize> {
    /// Class-major quantised weights, `OUT x IN`, each in `-127..=127`.
    pub weights: [[i8; IN]; OUT],
    /// Scale of each class: its weights are `weights[j][k] as f32 * scales[j]`.
    pub scales: [f32; OUT],
    /// One bias per class, unquantised.
    pub bias: [f32; OUT],
}

/// Quantises an `f32` model per class: `scale = max |w| / 127`,
/// `q = round(w / scale)` (half away from zero). A class whose weights are all
/// zero gets scale 0.
pub fn quantize<const IN: usize, const OUT: usize>(
    model: &ModelView<'_, IN, OUT>,
) -> QuantizedModel<IN, OUT> {
    let mut out = QuantizedModel {
        weights: [[0i8; IN]; OUT],
        scales: [0.0; OUT],
        bias: *model.bias,
    };
    for ((row, q_row), scale) in model
        .weights
        .iter()
        .zip(out.weights.iter_mut())
        .zip(out.scales.iter_mut())
    {
        let max = row.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        if max == 0.0 {
            continue;
        }
        *scale = max / f32::from(Q_MAX);
        for (q, &w) in q_row.iter_mut().zip(row) {
            let r = libm::roundf(w / *scale);
            *q = r.clamp(-f32::from(Q_MAX), f32::from(Q_MAX)) as i8;
        }
    }
    out
}

impl<const IN: usize, const OUT: usize> QuantizedModel<IN, OUT> {
    /// A borrowed view for inference.
    pub fn view(&self) -> QuantizedView<'_, IN, OUT> {
        QuantizedView {
            weights: &self.weights,
            scales: &self.scales,
            bias: &self.bias,
        }
    }

    /// Bytes of the model file: `32 + 8 * OUT + IN * OUT`.
    pub const FILE_LEN: usize = HEADER_LEN + 8 * OUT + IN * OUT;

    /// Writes the model file (parameter type [`DTYPE_I8`]): calls `write` with
    /// the header, then the scales, the bias and the weights, in order.
    pub fn write_file<E>(
        &self,
        image_side: u32,
        mut write: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        write(&model_file::encode_header_with_dtype(
            IN as u32, OUT as u32, image_side, DTYPE_I8,
        ))?;
        for v in self.scales.iter().chain(&self.bias) {
            write(&v.to_le_bytes())?;
        }
        for row in &self.weights {
            write(bytemuck::cast_slice(row))?;
        }
        Ok(())
    }
}

/// Borrowed int8 parameters: all that inference needs. Build one from a
/// [`QuantizedModel`] or, without copying, from model-file bytes with [`view`].
#[derive(Clone, Copy, Debug)]
pub struct QuantizedView<'a, const IN: usize, const OUT: usize> {
    /// Class-major quantised weights, `OUT x IN`.
    pub weights: &'a [[i8; IN]; OUT],
    /// Scale of each class.
    pub scales: &'a [f32; OUT],
    /// One bias per class.
    pub bias: &'a [f32; OUT],
}

/// An int8 model used in place from the bytes of a model file (parameter type
/// [`DTYPE_I8`]): no copy, no allocation, so `bytes` can live in flash.
///
/// `bytes` must start on a 4-byte boundary (the scales and bias are read in
/// place as `f32`); the weights need no alignment. Values are checked after
/// alignment: scales and bias finite, scales not negative, weights in
/// `-127..=127`, exactly what [`quantize`] can produce.
pub fn view<const IN: usize, const OUT: usize>(
    bytes: &[u8],
) -> Result<QuantizedView<'_, IN, OUT>, ModelFileError> {
    if cfg!(target_endian = "big") {
        return Err(ModelFileError::BigEndianHost);
    }
    let (_, params) = model_file::checked_header::<IN, OUT>(bytes, DTYPE_I8)?;
    let (floats, weights) = params.split_at(8 * OUT);
    let floats: &[f32] =
        bytemuck::try_cast_slice(floats).map_err(|_| ModelFileError::Misaligned)?;
    if let Some(index) = floats.iter().position(|v| !v.is_finite()) {
        return Err(ModelFileError::NonFinite { index });
    }
    let (scales, bias) = floats.split_at(OUT);
    // `-0.0` compares equal to zero and is let through: it scales every
    // weight to zero, just as `0.0` does.
    if let Some(class) = scales.iter().position(|&s| s < 0.0) {
        return Err(ModelFileError::NegativeScale { class });
    }
    let weights: &[i8] = bytemuck::cast_slice(weights);
    if let Some(at) = weights.iter().position(|&q| q < -Q_MAX) {
        return Err(ModelFileError::WeightOutOfRange {
            class: at / IN,
            input: at % IN,
        });
    }
    let rows: &[[i8; IN]] = bytemuck::cast_slice(weights);
    // The lengths were proved by `checked_header`; these cannot fail.
    Ok(QuantizedView {
        weights: rows.try_into().map_err(|_| ModelFileError::Misaligned)?,
        scales: scales.try_into().map_err(|_| ModelFileError::Misaligned)?,
        bias: bias.try_into().map_err(|_| ModelFileError::Misaligned)?,
    })
}

/// `sum_k w[k] * a[k]`, one multiply-add at a time: the kernel for targets
/// without SIMD (Cortex-M), and the reference for [`dot_simd`].
pub fn dot_scalar<const IN: usize>(w: &[i8; IN], a: &[u8; IN]) -> i32 {
    w.iter()
        .zip(a)
        .fold(0i32, |acc, (&w, &a)| acc + i32::from(w) * i32::from(a))
}

/// `sum_k w[k] * a[k]` 16 lanes at a time: both widened to `i16`, multiplied
/// and pair-summed into `i32` lanes ([`i16x16::dot`]). Integer arithmetic, so
/// the result is exactly [`dot_scalar`]'s.
pub fn dot_simd<const IN: usize>(w: &[i8; IN], a: &[u8; IN]) -> i32 {
    let mut acc = i32x8::ZERO;
    let mut w_chunks = w.chunks_exact(16);
    let mut a_chunks = a.chunks_exact(16);
    for (wc, ac) in (&mut w_chunks).zip(&mut a_chunks) {
        let wv = i16x16::from_i8x16(i8x16::new(wc.try_into().unwrap()));
        let av = i16x16::from(u8x16::new(ac.try_into().unwrap()));
        acc += wv.dot(av);
    }
    let tail = w_chunks
        .remainder()
        .iter()
        .zip(a_chunks.remainder())
        .fold(0i32, |acc, (&w, &a)| acc + i32::from(w) * i32::from(a));
    acc.reduce_add() + tail
}

/// True where [`QuantizedView::logits`] uses [`dot_simd`]: targets whose
/// `wide` has real vector instructions.
pub const USES_SIMD: bool = cfg!(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "wasm32"
));

impl<const IN: usize, const OUT: usize> QuantizedView<'_, IN, OUT> {
    /// The logits of inputs `a` given in units of `1 / 255` (`a[k] = round(255
    /// x[k])`): `(q[j] . a) as f32 * scale[j] / 255 + bias[j]`. Bit-identical on
    /// every target.
    pub fn logits(&self, a: &[u8; IN]) -> [f32; OUT] {
        const { assert!(IN <= MAX_INPUTS, "int8 dot products would overflow i32") };
        array::from_fn(|j| {
            let dot = if USES_SIMD {
                dot_simd(&self.weights[j], a)
            } else {
                dot_scalar(&self.weights[j], a)
            };
            self.rescale(j, dot)
        })
    }

    /// The logit of class `j` from its integer dot product.
    #[inline]
    pub fn rescale(&self, j: usize, dot: i32) -> f32 {
        dot as f32 * self.scales[j] / 255.0 + self.bias[j]
    }

    /// The dequantised weight `q[j][k] * scale[j]`.
    pub fn weight(&self, j: usize, k: usize) -> f32 {
        f32::from(self.weights[j][k]) * self.scales[j]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rng, SoftmaxRegression};

    #[repr(C, align(16))]
    struct Aligned<const N: usize>([u8; N]);

    #[test]
    fn max_inputs_is_the_largest_count_whose_dots_fit_an_i32() {
        let worst_term = i64::from(Q_MAX) * i64::from(u8::MAX);
        let fits = |inputs: usize| inputs as i64 * worst_term <= i64::from(i32::MAX);
        assert!(fits(MAX_INPUTS));
        assert!(!fits(MAX_INPUTS + 1));
    }

    #[test]
    fn simd_and_scalar_dots_are_identical() {
        let mut rng = Rng::seed_from_u64(70);
        fn check<const N: usize>(rng: &mut Rng) {
            let mut w = [0i8; N];
            let mut a = [0u8; N];
            for (w, a) in w.iter_mut().zip(&mut a) {
                *w = (rng.below(255) as i32 - 127) as i8;
                *a = rng.below(256) as u8;
            }
            assert_eq!(dot_simd(&w, &a), dot_scalar(&w, &a), "N={N}");
            // The extremes do not overflow.
            let w = [127i8; N];
            let a = [255u8; N];
            assert_eq!(dot_simd(&w, &a), 127 * 255 * N as i32);
            let w = [-127i8; N];
            assert_eq!(dot_simd(&w, &a), -127 * 255 * N as i32);
        }
        check::<1>(&mut rng);
        check::<15>(&mut rng);
        check::<16>(&mut rng);
        check::<33>(&mut rng);
        check::<784>(&mut rng);
        check::<1024>(&mut rng);
        check::<1031>(&mut rng);
    }

    #[test]
    fn quantisation_error_is_at_most_half_a_step() {
        let mut rng = Rng::seed_from_u64(71);
        let mut model = SoftmaxRegression::<100, 4>::new(&mut rng, 0.05);
        model.weights[2] = [0.0; 100];
        model.weights[3][7] = -1.0;
        model.bias = [0.1, 0.2, -0.3, 0.0];
        let q = quantize(&model.view());
        assert_eq!(q.scales[2], 0.0);
        assert_eq!(q.weights[3][7], -127);
        assert_eq!(q.bias, model.bias);
        let v = q.view();
        for j in 0..4 {
            for k in 0..100 {
                let err = (v.weight(j, k) - model.weights[j][k]).abs();
                assert!(err <= q.scales[j] * 0.5 + 1e-9, "[{j}][{k}] err {err}");
            }
            let max = q.weights[j].iter().map(|q| q.unsigned_abs()).max().unwrap();
            assert!(max == 127 || q.scales[j] == 0.0);
        }
    }

    #[test]
    fn file_round_trips_in_place_and_damage_is_caught() {
        let mut rng = Rng::seed_from_u64(72);
        let model = SoftmaxRegression::<20, 3>::new(&mut rng, 0.1);
        let q = quantize(&model.view());
        const LEN: usize = QuantizedModel::<20, 3>::FILE_LEN;
        assert_eq!(LEN, 32 + 24 + 60);
        let mut file = Aligned([0u8; LEN]);
        let mut at = 0;
        q.write_file(0, |c: &[u8]| {
            file.0[at..at + c.len()].copy_from_slice(c);
            at += c.len();
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(at, LEN);
        // Image side 0 with 20 inputs is refused by the header check.
        assert!(matches!(
            view::<20, 3>(&file.0),
            Err(ModelFileError::BadImageSide { .. })
        ));
        // A real side: 4x4 = 16 inputs.
        let model = SoftmaxRegression::<16, 3>::new(&mut rng, 0.1);
        let q = quantize(&model.view());
        let mut file = Aligned([0u8; QuantizedModel::<16, 3>::FILE_LEN]);
        let mut at = 0;
        q.write_file(4, |c: &[u8]| {
            file.0[at..at + c.len()].copy_from_slice(c);
            at += c.len();
            Ok::<(), ()>(())
        })
        .unwrap();
        let v = view::<16, 3>(&file.0).unwrap();
        assert_eq!(v.weights, &q.weights);
        assert_eq!(v.scales, &q.scales);
        assert_eq!(v.bias, &q.bias);
        assert_eq!(
            v.weights.as_ptr() as usize,
            file.0.as_ptr() as usize + HEADER_LEN + 24
        );
        let header = model_file::read_header(&file.0).unwrap();
        assert_eq!(header.dtype, DTYPE_I8);
        // The f32 reader refuses an int8 file, and the other way round.
        assert_eq!(
            model_file::view::<16, 3>(&file.0).unwrap_err(),
            ModelFileError::UnsupportedDtype(DTYPE_I8)
        );
        assert_eq!(
            view::<16, 4>(&file.0).unwrap_err(),
            ModelFileError::ShapeMismatch {
                found: (16, 3),
                expected: (16, 4)
            }
        );
        let mut broken = Aligned(file.0);
        broken.0[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&f32::INFINITY.to_le_bytes());
        assert_eq!(
            view::<16, 3>(&broken.0).unwrap_err(),
            ModelFileError::NonFinite { index: 1 }
        );
        assert!(matches!(
            view::<16, 3>(&file.0[..file.0.len() - 1]),
            Err(ModelFileError::LengthMismatch { .. })
        ));
        // Scales and weights outside what `quantize` writes are refused.
        let mut broken = Aligned(file.0);
        broken.0[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&(-0.5f32).to_le_bytes());
        assert_eq!(
            view::<16, 3>(&broken.0).unwrap_err(),
            ModelFileError::NegativeScale { class: 1 }
        );
        let mut broken = Aligned(file.0);
        broken.0[HEADER_LEN + 24 + 16 * 2 + 5] = (-128i8) as u8;
        assert_eq!(
            view::<16, 3>(&broken.0).unwrap_err(),
            ModelFileError::WeightOutOfRange { class: 2, input: 5 }
        );
        // The extremes of the range, and zero scales of either sign, load.
        let mut edge = Aligned(file.0);
        edge.0[HEADER_LEN + 24] = (-127i8) as u8;
        edge.0[HEADER_LEN + 25] = 127;
        edge.0[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&0.0f32.to_le_bytes());
        edge.0[HEADER_LEN + 8..HEADER_LEN + 12].copy_from_slice(&(-0.0f32).to_le_bytes());
        let e = view::<16, 3>(&edge.0).unwrap();
        assert_eq!(e.weights[0][..2], [-127, 127]);
        assert_eq!(e.weight(2, 0), 0.0);
        // Logits: exact integer dot, then one rescale.
        let a: [u8; 16] = array::from_fn(|k| (k * 16) as u8);
        let logits = v.logits(&a);
        for (j, &logit) in logits.iter().enumerate() {
            let dot: i32 = (0..16)
                .map(|k| i32::from(q.weights[j][k]) * i32::from(a[k]))
                .sum();
            assert_eq!(logit, dot as f32 * q.scales[j] / 255.0 + q.bias[j]);
        }
    }
}
