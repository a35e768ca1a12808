//! Inference for firmware: one 28x28 `u8` image in, class probabilities out,
//! with the model used in place from the bytes of a model file (in flash).
//!
//! ```
//! use softreg::inference::Classifier;
//! # let model = softreg::SoftmaxRegression::<1024, 10>::zeroed();
//! # let mut bytes = Vec::new();
//! # model.write_file(32, |c| Ok::<(), ()>(bytes.extend_from_slice(c))).unwrap();
//! // In firmware the bytes are a `static` in flash, 4-byte aligned:
//! // `#[repr(C, align(4))] struct Aligned<T: ?Sized>(T);`
//! // `static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("model.bin"));`
//! let classifier = Classifier::<1024, 10>::new(&bytes).expect("a 32x32, 10-class model");
//! let image = [0u8; 784]; // one Fashion-MNIST image, row-major
//! let prediction = classifier.classify(&image);
//! assert!(prediction.class < 10 && prediction.probability > 0.0);
//! ```
//!
//! [`Classifier::new`] reads the header (magic, version, `IN`, `OUT`, image
//! side, parameter type) and refuses a file that does not fit the const-generic
//! shape with a typed [`InferenceError`]; both parameter types load, `f32`
//! ([`crate::model_file`]) and int8 ([`crate::quantized`]). Then:
//!
//! - **No allocator, no copy of the weights**: the classifier borrows them
//!   from the file's bytes, which must start on a 4-byte boundary.
//! - **Resize in-core**: a model of 32x32 inputs gets the chapter's bilinear
//!   `tf.image.resize(x / 255, (32, 32))`, computed 16 inputs at a time as the
//!   dot products need them, never as a whole 1024-value image.
//! - **Bounded stack**, with no recursion and no buffer whose size depends on
//!   the data. For `f32` weights: `OUT` accumulators of 16 lanes
//!   (`64 * OUT` bytes), 16 inputs and, when resizing, two source rows
//!   interpolated along x (256 bytes); for int8: the `IN` inputs as `u8`, two
//!   such rows in sixteenths and `OUT` `i32` sums. Measured by stack painting
//!   on a Cortex-M4 (QEMU mps2-an386, see `examples/firmware/README.md`) for
//!   the chapter's 32x32, 10-class model: 1,860 bytes for one
//!   [`Classifier::logits`] call with `f32` weights, 1,832 with int8.
//! - **The same bits on every target**: the `f32` dot products are summed in
//!   16 lanes with separate multiplies and adds (no FMA), lane `l` holding
//!   inputs `l, l + 16, l + 32, ...` in order, and the lanes reduced in a fixed
//!   tree; the host runs that as `wide::f32x16` SIMD and a Cortex-M as scalar
//!   code ([`logits_f32_scalar`]), and IEEE arithmetic gives both the same
//!   result. The int8 sums are exact integers. So a microcontroller predicts
//!   exactly what the host predicts, probabilities included (`libm`'s `expf`).

use crate::fashion_mnist::{PIXELS, RESIZED_SIDE, SIDE};
use crate::kernels::softmax::argmax;
use crate::model::ModelView;
use crate::model_file::{self, ModelFileError, DTYPE_F32, DTYPE_I8};
use crate::quantized::{self, QuantizedView};
use crate::resize::TAPS_28_TO_32;
use core::{array, fmt};
use wide::f32x16;

/// Lanes of the `f32` dot products: the summation order is part of the
/// result, so it is fixed here for every target.
pub const LANES: usize = 16;

/// Every way [`Classifier::new`] can refuse a model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InferenceError {
    /// The file's header or parameters are wrong, or its shape (`IN`, `OUT`)
    /// is not the classifier's.
    Model(ModelFileError),
    /// The model's inputs come from images of this side, and this module only
    /// feeds 28x28 images, as they are (`IN = 784`) or resized to 32x32
    /// (`IN = 1024`).
    UnsupportedImageSide(u32),
}

impl From<ModelFileError> for InferenceError {
    fn from(e: ModelFileError) -> Self {
        InferenceError::Model(e)
    }
}

impl fmt::Display for InferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InferenceError::Model(e) => e.fmt(f),
            InferenceError::UnsupportedImageSide(side) => write!(
                f,
                "model inputs come from {side}x{side} images; only 28x28 and 32x32 are supported"
            ),
        }
    }
}

impl core::error::Error for InferenceError {}

/// The parameters a [`Classifier`] borrows.
#[derive(Clone, Copy, Debug)]
pub enum Weights<'a, const IN: usize, const OUT: usize> {
    /// `f32` weights and bias (parameter type 0).
    F32(ModelView<'a, IN, OUT>),
    /// Symmetric per-class int8 weights (parameter type 1).
    I8(QuantizedView<'a, IN, OUT>),
}

/// The most probable class of an image and its probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// Index of the class (the first one on ties).
    pub class: usize,
    /// Its softmax probability.
    pub probability: f32,
}

/// A model ready to classify 28x28 images, borrowed from a model file.
#[derive(Clone, Copy, Debug)]
pub struct Classifier<'a, const IN: usize, const OUT: usize> {
    weights: Weights<'a, IN, OUT>,
    resize: bool,
}

impl<'a, const IN: usize, const OUT: usize> Classifier<'a, IN, OUT> {
    /// Checks the model file and borrows its parameters, `f32` or int8.
    ///
    /// # Errors
    /// [`InferenceError::Model`] for a damaged or misaligned file or one of
    /// another shape than `IN x OUT`, [`InferenceError::UnsupportedImageSide`]
    /// for a model of images other than 28x28 or 32x32.
    pub fn new(bytes: &'a [u8]) -> Result<Self, InferenceError> {
        let header = model_file::read_header(bytes)?;
        let weights = match header.dtype {
            DTYPE_I8 => Weights::I8(quantized::view(bytes)?),
            DTYPE_F32 => Weights::F32(model_file::view(bytes)?),
            other => return Err(ModelFileError::UnsupportedDtype(other).into()),
        };
        // `view` proved `IN == side * side`.
        let resize = match header.image_side as usize {
            SIDE => false,
            RESIZED_SIDE => true,
            _ => return Err(InferenceError::UnsupportedImageSide(header.image_side)),
        };
        Ok(Classifier { weights, resize })
    }

    /// A classifier of 28x28 images over borrowed parameters; `resize` says
    /// whether the model's inputs are the images resized to 32x32.
    ///
    /// # Errors
    /// [`InferenceError::UnsupportedImageSide`] unless `IN` is 784 (no
    /// resize) or 1024 (resize).
    pub fn from_weights(
        weights: Weights<'a, IN, OUT>,
        resize: bool,
    ) -> Result<Self, InferenceError> {
        let side = if resize { RESIZED_SIDE } else { SIDE };
        if side * side != IN {
            return Err(InferenceError::UnsupportedImageSide(side as u32));
        }
        Ok(Classifier { weights, resize })
    }

    /// The borrowed parameters.
    pub fn weights(&self) -> &Weights<'a, IN, OUT> {
        &self.weights
    }

    /// Whether images are resized to 32x32 before the model sees them.
    pub fn resizes(&self) -> bool {
        self.resize
    }

    /// The logits `x W + b` of one 28x28 image (`u8` pixels, row-major),
    /// scaled to `[0, 1]` and resized as the model's header says.
    pub fn logits(&self, image: &[u8; PIXELS]) -> [f32; OUT] {
        match &self.weights {
            Weights::F32(view) => {
                let mut rows = RowPair::new();
                let fill = |c: usize, chunk: &mut [f32; LANES]| {
                    self.input_chunk(image, &mut rows, c, chunk);
                };
                if USES_SIMD {
                    logits_f32_simd(view, fill)
                } else {
                    logits_f32_scalar(view, fill)
                }
            }
            Weights::I8(view) => {
                let mut a = [0u8; IN];
                if self.resize {
                    let mut rows = RowPair::new();
                    for (y, out) in a.chunks_exact_mut(RESIZED_SIDE).enumerate() {
                        let (y0, y1, fy) = TAPS16[y];
                        let fy = u32::from(fy);
                        let (top, bottom) =
                            rows.get(usize::from(y0), usize::from(y1), |r| row_u16(image, r));
                        for ((o, &t), &b) in out.iter_mut().zip(top).zip(bottom) {
                            // At most 256 * 255 + 128, so the result fits a u8.
                            *o = (((16 - fy) * u32::from(t) + fy * u32::from(b) + 128) >> 8) as u8;
                        }
                    }
                } else {
                    a.copy_from_slice(&image[..IN]);
                }
                view.logits(&a)
            }
        }
    }

    /// The class probabilities of one image, `softmax(x W + b)`.
    pub fn probabilities(&self, image: &[u8; PIXELS]) -> [f32; OUT] {
        let mut p = self.logits(image);
        softmax(&mut p);
        p
    }

    /// The most probable class of one image and its probability.
    pub fn classify(&self, image: &[u8; PIXELS]) -> Prediction {
        let p = self.probabilities(image);
        let class = argmax(&p);
        Prediction {
            class,
            probability: p[class],
        }
    }

    /// Fills `chunk` with inputs `16 c .. 16 c + 16` of the model: pixels
    /// over 255, resized to 32x32 on the way when the model takes 1024 inputs.
    #[inline]
    fn input_chunk(
        &self,
        image: &[u8; PIXELS],
        rows: &mut RowPair<f32>,
        c: usize,
        chunk: &mut [f32; LANES],
    ) {
        if self.resize {
            // 16 divides 32: the chunk is half of output row `y`. The rows
            // of the source it blends, each already interpolated along x,
            // are kept from the chunk before where they are the same.
            let (y, x0) = (c * LANES / RESIZED_SIDE, c * LANES % RESIZED_SIDE);
            let ty = TAPS_28_TO_32[y];
            let (top, bottom) = rows.get(ty.lower, ty.upper, |r| row_f32(image, r));
            for ((v, &t), &b) in chunk.iter_mut().zip(&top[x0..]).zip(&bottom[x0..]) {
                *v = t + (b - t) * ty.frac;
            }
        } else {
            // `from_weights` checked `IN == PIXELS`: 784 inputs are 49 whole
            // chunks, so a chunk never runs past the image.
            let pixels = &image[c * LANES..][..LANES];
            for (v, &p) in chunk.iter_mut().zip(pixels) {
                *v = f32::from(p) / 255.0;
            }
        }
    }
}

const _: () = assert!(
    RESIZED_SIDE.is_multiple_of(LANES),
    "a chunk lies in one output row"
);
const _: () = assert!(PIXELS.is_multiple_of(LANES), "a chunk lies in the image");

/// The two source rows one output row of the 32x32 resize blends, each
/// interpolated along x, kept from one output row to the next (rows
/// `floor(s)` and `ceil(s)` move by at most one per output row).
struct RowPair<T> {
    rows: [usize; 2],
    values: [[T; RESIZED_SIDE]; 2],
}

impl<T: Copy + Default> RowPair<T> {
    fn new() -> Self {
        RowPair {
            rows: [usize::MAX; 2],
            values: [[T::default(); RESIZED_SIDE]; 2],
        }
    }

    /// Source rows `lower` and `upper`, computed by `row` unless kept.
    #[inline]
    fn get(
        &mut self,
        lower: usize,
        upper: usize,
        row: impl Fn(usize) -> [T; RESIZED_SIDE],
    ) -> (&[T; RESIZED_SIDE], &[T; RESIZED_SIDE]) {
        if self.rows != [lower, upper] {
            let kept = |r: usize| {
                self.rows
                    .iter()
                    .position(|&k| k == r)
                    .map(|i| self.values[i])
            };
            let top = kept(lower).unwrap_or_else(|| row(lower));
            let bottom = if upper == lower {
                top
            } else {
                kept(upper).unwrap_or_else(|| row(upper))
            };
            self.rows = [lower, upper];
            self.values = [top, bottom];
        }
        (&self.values[0], &self.values[1])
    }
}

/// Source row `r` scaled to `[0, 1]` and interpolated along x: the first
/// half of [`resized_pixel`], the same operations.
#[inline]
fn row_f32(image: &[u8; PIXELS], r: usize) -> [f32; RESIZED_SIDE] {
    let pixel = |col: usize| f32::from(image[r * SIDE + col]) / 255.0;
    array::from_fn(|x| {
        let tx = TAPS_28_TO_32[x];
        let left = pixel(tx.lower);
        left + (pixel(tx.upper) - left) * tx.frac
    })
}

/// Source row `r` interpolated along x in sixteenths: the first half of
/// [`resized_pixel_u8`].
#[inline]
fn row_u16(image: &[u8; PIXELS], r: usize) -> [u16; RESIZED_SIDE] {
    array::from_fn(|x| {
        let (x0, x1, fx) = TAPS16[x];
        let pixel = |col: u8| u16::from(image[r * SIDE + usize::from(col)]);
        (16 - fx) * pixel(x0) + fx * pixel(x1)
    })
}

/// True where the `f32` and int8 dot products use `wide`'s SIMD types: the
/// targets where those are real vector instructions.
pub const USES_SIMD: bool = quantized::USES_SIMD;

pub use crate::resize::resized_pixel;

/// The resize's tap weights in sixteenths: `28 / 32 = 14 / 16` and the
/// half-pixel offset `1 / 16` make every weight a whole number of sixteenths.
const TAPS16: [(u8, u8, u16); RESIZED_SIDE] = {
    let mut out = [(0u8, 0u8, 0u16); RESIZED_SIDE];
    let mut i = 0;
    while i < RESIZED_SIDE {
        let t = TAPS_28_TO_32[i];
        let f = t.frac * 16.0;
        assert!(f == (f as u16) as f32, "resize weights are not sixteenths");
        out[i] = (t.lower as u8, t.upper as u8, f as u16);
        i += 1;
    }
    out
};

/// Pixel `(y, x)` of the 32x32 resize in units of `1 / 255`, rounded to
/// nearest (halves up), in exact integer arithmetic: the int8 model's input.
/// Within half a unit of `255 * resized_pixel(image, y, x)`.
#[inline]
pub fn resized_pixel_u8(image: &[u8; PIXELS], y: usize, x: usize) -> u8 {
    let (y0, y1, fy) = TAPS16[y];
    let (x0, x1, fx) = TAPS16[x];
    let pixel = |row: u8, col: u8| u32::from(image[usize::from(row) * SIDE + usize::from(col)]);
    let (fx, fy) = (u32::from(fx), u32::from(fy));
    let top = (16 - fx) * pixel(y0, x0) + fx * pixel(y0, x1);
    let bottom = (16 - fx) * pixel(y1, x0) + fx * pixel(y1, x1);
    // At most 256 * 255 + 128, so the result fits a u8.
    ((((16 - fy) * top + fy * bottom) + 128) >> 8) as u8
}

/// Sums 16 lanes in a fixed tree: lanes `l` and `l + 8`, then `l + 4`, `l + 2`,
/// `l + 1`.
#[inline]
fn reduce(mut lanes: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
        width /= 2;
    }
    lanes[0]
}

/// The `f32` logits with `wide::f32x16`: `fill(c, chunk)` gives inputs
/// `16 c .. 16 c + 16` (zero past `IN`), each chunk used for every class.
/// Bit-identical to [`logits_f32_scalar`].
pub fn logits_f32_simd<const IN: usize, const OUT: usize>(
    view: &ModelView<'_, IN, OUT>,
    mut fill: impl FnMut(usize, &mut [f32; LANES]),
) -> [f32; OUT] {
    let mut acc = [f32x16::ZERO; OUT];
    let mut chunk = [0.0f32; LANES];
    for c in 0..IN.div_ceil(LANES) {
        fill(c, &mut chunk);
        let x = f32x16::new(chunk);
        let start = c * LANES;
        for (a, w) in acc.iter_mut().zip(view.weights) {
            let wv = if start + LANES <= IN {
                f32x16::new(w[start..start + LANES].try_into().unwrap())
            } else {
                let mut tail = [0.0f32; LANES];
                tail[..IN - start].copy_from_slice(&w[start..]);
                f32x16::new(tail)
            };
            // Multiply, then add: no FMA, so every target rounds alike.
            *a += x * wv;
        }
    }
    array::from_fn(|j| reduce(acc[j].to_array()) + view.bias[j])
}

/// The `f32` logits one lane at a time, for targets without SIMD (Cortex-M):
/// the same operations in the same order as [`logits_f32_simd`].
pub fn logits_f32_scalar<const IN: usize, const OUT: usize>(
    view: &ModelView<'_, IN, OUT>,
    mut fill: impl FnMut(usize, &mut [f32; LANES]),
) -> [f32; OUT] {
    let mut acc = [[0.0f32; LANES]; OUT];
    let mut chunk = [0.0f32; LANES];
    for c in 0..IN.div_ceil(LANES) {
        fill(c, &mut chunk);
        let start = c * LANES;
        for (a, w) in acc.iter_mut().zip(view.weights) {
            for (l, (a, x)) in a.iter_mut().zip(&chunk).enumerate() {
                let w = w.get(start + l).copied().unwrap_or(0.0);
                *a += *x * w;
            }
        }
    }
    array::from_fn(|j| reduce(acc[j]) + view.bias[j])
}

/// `softmax(row)` in place with `libm`'s `expf`: the same bits on every
/// target.
pub fn softmax<const C: usize>(row: &mut [f32; C]) {
    let max = row.iter().fold(
        f32::NEG_INFINITY,
        |m, &v| {
            if v > m || v.is_nan() {
                v
            } else {
                m
            }
        },
    );
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// One prediction as a fingerprint another target can reproduce bit for bit:
/// the class, the bits of its probability, and an FNV-1a hash of the bits of
/// all the logits (their little-endian bytes, class by class).
///
/// The firmware example (`examples/firmware/`) computes these on a Cortex-M4
/// and compares them with the host's, which the bundle exporter (the
/// `export_firmware_bundle` example) writes as
/// [`PredictionRecord::to_le_bytes`], one after another. Equal records mean
/// equal logits to the last bit, with overwhelming probability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PredictionRecord {
    /// The most probable class (the first one on ties).
    pub class: u32,
    /// The bits of its softmax probability ([`f32::to_bits`]).
    pub probability_bits: u32,
    /// FNV-1a (32-bit) over the little-endian bytes of every logit's bits.
    pub logits_hash: u32,
}

impl PredictionRecord {
    /// Bytes of [`PredictionRecord::to_le_bytes`]: three `u32`.
    pub const LEN: usize = 12;

    /// The record of the logits `logits` (softmax with [`softmax`], as
    /// [`Classifier::classify`] does).
    pub fn from_logits<const C: usize>(logits: &[f32; C]) -> Self {
        let mut hash: u32 = 0x811C_9DC5;
        for b in logits.iter().flat_map(|v| v.to_bits().to_le_bytes()) {
            hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        let mut p = *logits;
        softmax(&mut p);
        let class = argmax(&p);
        PredictionRecord {
            class: class as u32,
            probability_bits: p[class].to_bits(),
            logits_hash: hash,
        }
    }

    /// The probability of [`PredictionRecord::class`].
    pub fn probability(&self) -> f32 {
        f32::from_bits(self.probability_bits)
    }

    /// Class, probability bits and hash, each a `u32` little-endian.
    pub fn to_le_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        for (dst, v) in
            out.chunks_exact_mut(4)
                .zip([self.class, self.probability_bits, self.logits_hash])
        {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// The inverse of [`PredictionRecord::to_le_bytes`].
    pub fn from_le_bytes(bytes: &[u8; Self::LEN]) -> Self {
        let field = |i: usize| {
            u32::from_le_bytes([
                bytes[4 * i],
                bytes[4 * i + 1],
                bytes[4 * i + 2],
                bytes[4 * i + 3],
            ])
        };
        PredictionRecord {
            class: field(0),
            probability_bits: field(1),
            logits_hash: field(2),
        }
    }
}

impl<const IN: usize, const OUT: usize> Classifier<'_, IN, OUT> {
    /// The [`PredictionRecord`] of one image: [`Classifier::logits`], then
    /// [`PredictionRecord::from_logits`].
    pub fn record(&self, image: &[u8; PIXELS]) -> PredictionRecord {
        PredictionRecord::from_logits(&self.logits(image))
    }
}
