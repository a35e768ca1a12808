//! The model file: a 32-byte header, then the parameters as little-endian
//! `f32`, laid out so that a model can be used in place, without a copy.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "SOFTREG\0"
//!      8     4  format version (u32 LE), currently 1
//!     12     4  IN, inputs (u32 LE): 1024 for 32x32 images, 784 for 28x28
//!     16     4  OUT, classes (u32 LE): 10
//!     20     4  image side the inputs come from (u32 LE): 32 or 28
//!     24     4  parameter type (u32 LE): 0 = f32, 1 = int8
//!     28     4  reserved, zero
//! ```
//!
//! Parameter type 0 ([`DTYPE_F32`]), read by [`view`]:
//!
//! ```text
//!     32  4*IN*OUT  weights, class-major: OUT rows of IN values
//!      …  4*OUT     bias
//! ```
//!
//! Parameter type 1 ([`DTYPE_I8`], symmetric per-class int8, read by
//! [`crate::quantized::view`]): the `f32` values come first so they stay
//! 4-byte aligned without padding, and weight `w[j][k] = q[j][k] * scale[j]`.
//!
//! ```text
//!     32  4*OUT     scale of each class (f32 LE, finite, >= 0)
//!      …  4*OUT     bias (f32 LE)
//!      …  IN*OUT    weights q (i8, -127..=127), class-major: OUT rows of IN values
//! ```
//!
//! The header is a multiple of 16 bytes, so if the file's bytes start on a
//! 4-byte boundary (or 64, for the best SIMD loads), so do the weights and
//! [`view`] can reinterpret them as `&[[f32; IN]; OUT]` with no copy: a
//! firmware image can keep the model in flash with `include_bytes!`.

use crate::model::{ModelView, SoftmaxRegression};
use core::fmt;

/// The first eight bytes of every model file.
pub const MAGIC: [u8; 8] = *b"SOFTREG\0";
/// The format version this crate writes and reads.
pub const VERSION: u32 = 1;
/// Length of the header in bytes.
pub const HEADER_LEN: usize = 32;
/// The parameter-type code of `f32` parameters.
pub const DTYPE_F32: u32 = 0;
/// The parameter-type code of symmetric per-class int8 weights with `f32`
/// scales and bias (see [`crate::quantized`]).
pub const DTYPE_I8: u32 = 1;

/// The fields of a model file's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u32,
    /// Number of inputs, `IN`.
    pub inputs: u32,
    /// Number of classes, `OUT`.
    pub outputs: u32,
    /// Side of the square images the inputs come from (`inputs = side^2`).
    pub image_side: u32,
    /// Parameter type code ([`DTYPE_F32`] or [`DTYPE_I8`]).
    pub dtype: u32,
}

impl Header {
    /// Bytes of parameters that follow the header: `4 * (IN * OUT + OUT)`
    /// for `f32`, `IN * OUT + 8 * OUT` for int8; `None` on overflow or an
    /// unknown parameter type.
    pub fn params_len(&self) -> Option<usize> {
        let inputs = self.inputs as usize;
        let outputs = self.outputs as usize;
        match self.dtype {
            DTYPE_F32 => inputs
                .checked_mul(outputs)?
                .checked_add(outputs)?
                .checked_mul(4),
            DTYPE_I8 => inputs
                .checked_mul(outputs)?
                .checked_add(outputs.checked_mul(8)?),
            _ => None,
        }
    }
}

/// Every way a model file can fail to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFileError {
    /// Shorter than the header.
    TooShort {
        /// Bytes present.
        found: usize,
    },
    /// Does not start with [`MAGIC`].
    BadMagic,
    /// A format version this crate does not know.
    UnsupportedVersion(u32),
    /// A parameter type this crate does not know.
    UnsupportedDtype(u32),
    /// The reserved header field is not zero. Refusing it keeps the field
    /// free for a later format to use, and means every file this crate
    /// loads is exactly the file it would write for the same model.
    ReservedNotZero(u32),
    /// The image side does not match the number of inputs.
    BadImageSide {
        /// Side in the header.
        side: u32,
        /// Inputs in the header.
        inputs: u32,
    },
    /// The file's model has another shape than the one asked for.
    ShapeMismatch {
        /// `(IN, OUT)` in the file.
        found: (u32, u32),
        /// `(IN, OUT)` wanted.
        expected: (usize, usize),
    },
    /// The parameters are not exactly as long as the header says.
    LengthMismatch {
        /// Bytes the header promises after it.
        expected: usize,
        /// Bytes present after it.
        found: usize,
    },
    /// A parameter is NaN or infinite.
    NonFinite {
        /// Index of the first such value among all parameters.
        index: usize,
    },
    /// An int8 model's scale is negative. Quantisation writes `max |w| /
    /// 127`, never below zero, so such a file was not made by this crate;
    /// refusing it keeps the sign of every weight the sign of its `q`.
    NegativeScale {
        /// The class whose scale it is.
        class: usize,
    },
    /// An int8 weight is -128. Quantisation is symmetric and writes only
    /// `-127..=127`, so such a file was not made by this crate; refusing it
    /// keeps `-q` representable and the dot-product bounds of
    /// [`crate::quantized`] exact.
    WeightOutOfRange {
        /// The class whose row holds the weight.
        class: usize,
        /// The input it weighs, its index within the row.
        input: usize,
    },
    /// The bytes do not start on a 4-byte boundary, so the parameters cannot
    /// be used in place (see [`view`]); copy them with
    /// [`SoftmaxRegression::from_file_bytes`] or align the buffer.
    Misaligned,
    /// This machine is big-endian and the parameters are little-endian, so
    /// they cannot be used in place.
    BigEndianHost,
}

impl fmt::Display for ModelFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ModelFileError::TooShort { found } => write!(
                f,
                "file is too short: {found} bytes, a model header needs {HEADER_LEN}"
            ),
            ModelFileError::BadMagic => write!(f, "not a softreg model file (bad magic)"),
            ModelFileError::UnsupportedVersion(v) => write!(
                f,
                "model format version {v} is not supported (this build reads {VERSION})"
            ),
            ModelFileError::UnsupportedDtype(d) => {
                write!(f, "parameter type {d} is not supported")
            }
            ModelFileError::ReservedNotZero(v) => {
                write!(f, "reserved header field is {v:#x}, not zero")
            }
            ModelFileError::BadImageSide { side, inputs } => {
                write!(f, "image side {side} does not give {inputs} inputs")
            }
            ModelFileError::ShapeMismatch { found, expected } => write!(
                f,
                "model has {} inputs and {} classes, expected {} and {}",
                found.0, found.1, expected.0, expected.1
            ),
            ModelFileError::LengthMismatch { expected, found } => write!(
                f,
                "parameters are {found} bytes, the header promises {expected}"
            ),
            ModelFileError::NonFinite { index } => {
                write!(f, "parameter {index} is not a finite number")
            }
            ModelFileError::NegativeScale { class } => {
                write!(f, "scale of class {class} is negative")
            }
            ModelFileError::WeightOutOfRange { class, input } => write!(
                f,
                "int8 weight {input} of class {class} is -128, outside -127..=127"
            ),
            ModelFileError::Misaligned => {
                write!(
                    f,
                    "model bytes are not 4-byte aligned, cannot use them in place"
                )
            }
            ModelFileError::BigEndianHost => {
                write!(
                    f,
                    "cannot use little-endian parameters in place on a big-endian host"
                )
            }
        }
    }
}

impl core::error::Error for ModelFileError {}

/// The header of a model with `inputs` inputs, `outputs` classes, made from
/// `image_side x image_side` images, with `f32` parameters.
pub fn encode_header(inputs: u32, outputs: u32, image_side: u32) -> [u8; HEADER_LEN] {
    encode_header_with_dtype(inputs, outputs, image_side, DTYPE_F32)
}

/// Like [`encode_header`], with the parameter type `dtype`.
pub fn encode_header_with_dtype(
    inputs: u32,
    outputs: u32,
    image_side: u32,
    dtype: u32,
) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    let fields = [VERSION, inputs, outputs, image_side, dtype, 0];
    for (i, v) in fields.iter().enumerate() {
        header[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    header
}

/// Reads and checks the header, and that the parameters that follow it are
/// exactly as long as it says.
pub fn read_header(bytes: &[u8]) -> Result<Header, ModelFileError> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(ModelFileError::TooShort { found: bytes.len() });
    };
    if header[..8] != MAGIC {
        return Err(ModelFileError::BadMagic);
    }
    let field = |i: usize| {
        let at = 8 + 4 * i;
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let header = Header {
        version: field(0),
        inputs: field(1),
        outputs: field(2),
        image_side: field(3),
        dtype: field(4),
    };
    if header.version != VERSION {
        return Err(ModelFileError::UnsupportedVersion(header.version));
    }
    if header.dtype != DTYPE_F32 && header.dtype != DTYPE_I8 {
        return Err(ModelFileError::UnsupportedDtype(header.dtype));
    }
    let reserved = field(5);
    if reserved != 0 {
        return Err(ModelFileError::ReservedNotZero(reserved));
    }
    if u64::from(header.image_side) * u64::from(header.image_side) != u64::from(header.inputs) {
        return Err(ModelFileError::BadImageSide {
            side: header.image_side,
            inputs: header.inputs,
        });
    }
    let expected = header.params_len().ok_or(ModelFileError::LengthMismatch {
        expected: usize::MAX,
        found: bytes.len() - HEADER_LEN,
    })?;
    let found = bytes.len() - HEADER_LEN;
    if found != expected {
        return Err(ModelFileError::LengthMismatch { expected, found });
    }
    Ok(header)
}

/// Reads the header, checks it against the shape `IN x OUT` and the
/// parameter type `dtype`, and returns it with the parameter bytes.
pub(crate) fn checked_header<const IN: usize, const OUT: usize>(
    bytes: &[u8],
    dtype: u32,
) -> Result<(Header, &[u8]), ModelFileError> {
    let header = read_header(bytes)?;
    if header.dtype != dtype {
        return Err(ModelFileError::UnsupportedDtype(header.dtype));
    }
    if (header.inputs as usize, header.outputs as usize) != (IN, OUT) {
        return Err(ModelFileError::ShapeMismatch {
            found: (header.inputs, header.outputs),
            expected: (IN, OUT),
        });
    }
    Ok((header, &bytes[HEADER_LEN..]))
}

/// Checks the header against the shape `IN x OUT` and returns the parameter
/// bytes (weights, then bias) of an `f32` model.
fn checked_params<const IN: usize, const OUT: usize>(
    bytes: &[u8],
) -> Result<&[u8], ModelFileError> {
    let (_, params) = checked_header::<IN, OUT>(bytes, DTYPE_F32)?;
    let index = params
        .chunks_exact(4)
        .position(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite());
    match index {
        Some(index) => Err(ModelFileError::NonFinite { index }),
        None => Ok(params),
    }
}

/// A model used in place from the bytes of a model file: no copy, no
/// allocation, so `bytes` can live in flash.
///
/// `bytes` must start on a 4-byte boundary; `include_bytes!` alone does not
/// promise that, so wrap it in an aligned struct (see the crate's README).
pub fn view<const IN: usize, const OUT: usize>(
    bytes: &[u8],
) -> Result<ModelView<'_, IN, OUT>, ModelFileError> {
    if cfg!(target_endian = "big") {
        return Err(ModelFileError::BigEndianHost);
    }
    let params = checked_params::<IN, OUT>(bytes)?;
    let floats: &[f32] =
        bytemuck::try_cast_slice(params).map_err(|_| ModelFileError::Misaligned)?;
    let (weights, bias) = floats.split_at(IN * OUT);
    let rows: &[[f32; IN]] = bytemuck::cast_slice(weights);
    // Both conversions check lengths that `checked_params` already proved.
    let weights = rows.try_into().map_err(|_| ModelFileError::Misaligned)?;
    let bias = bias.try_into().map_err(|_| ModelFileError::Misaligned)?;
    Ok(ModelView { weights, bias })
}

/// A copy of a model file's bytes that starts on a 4-byte boundary, as
/// [`view`], [`crate::quantized::view`] and
/// [`crate::inference::Classifier::new`] need (feature `std`): for bytes read
/// from a file at run time, which may lie anywhere.
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlignedBytes {
    words: std::vec::Vec<u32>,
    len: usize,
}

#[cfg(feature = "std")]
impl AlignedBytes {
    /// Copies `bytes`.
    pub fn copy_from(bytes: &[u8]) -> Self {
        let mut words = std::vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBytes {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes, 4-byte aligned.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
}

impl<const IN: usize, const OUT: usize> SoftmaxRegression<IN, OUT> {
    /// Loads a model by copying it out of model-file bytes, which may have
    /// any alignment and any host endianness.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, ModelFileError> {
        let mut model = Self::zeroed();
        model.load_file_bytes(bytes)?;
        Ok(model)
    }

    /// Like [`SoftmaxRegression::from_file_bytes`] but into `self`, with no
    /// temporary on the stack.
    pub fn load_file_bytes(&mut self, bytes: &[u8]) -> Result<(), ModelFileError> {
        let params = checked_params::<IN, OUT>(bytes)?;
        let values = params
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let slots = self
            .weights
            .iter_mut()
            .flatten()
            .chain(self.bias.iter_mut());
        for (slot, v) in slots.zip(values) {
            *slot = v;
        }
        Ok(())
    }

    /// Writes the model file: calls `write` with the header, then the
    /// parameters as little-endian bytes, in order.
    pub fn write_file<E>(
        &self,
        image_side: u32,
        mut write: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        write(&encode_header(IN as u32, OUT as u32, image_side))?;
        if cfg!(target_endian = "little") {
            write(bytemuck::bytes_of(&self.weights))?;
            write(bytemuck::bytes_of(&self.bias))
        } else {
            for v in self.weights.iter().flatten().chain(&self.bias) {
                write(&v.to_le_bytes())?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    #[test]
    #[cfg(feature = "std")]
    fn aligned_bytes_are_the_bytes_on_a_4_byte_boundary() {
        let file: std::vec::Vec<u8> = (0..=42).collect();
        for start in 0..4 {
            let aligned = AlignedBytes::copy_from(&file[start..]);
            assert_eq!(aligned.bytes(), &file[start..]);
            assert_eq!(aligned.bytes().as_ptr() as usize % 4, 0);
        }
        assert!(AlignedBytes::copy_from(&[]).bytes().is_empty());
    }

    /// A model file in a buffer aligned for [`view`].
    #[repr(C, align(64))]
    struct Aligned<const N: usize>([u8; N]);

    const FILE_LEN: usize = HEADER_LEN + 4 * (4 * 3 + 3);

    fn sample() -> (SoftmaxRegression<4, 3>, Aligned<FILE_LEN>) {
        let mut model = SoftmaxRegression::<4, 3>::new(&mut Rng::seed_from_u64(60), 1.0);
        model.bias = [0.5, -0.25, 2.0];
        let mut file = Aligned([0u8; FILE_LEN]);
        let mut at = 0;
        model
            .write_file(2, |chunk: &[u8]| {
                file.0[at..at + chunk.len()].copy_from_slice(chunk);
                at += chunk.len();
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(at, FILE_LEN);
        (model, file)
    }

    #[test]
    fn round_trips_by_copy_and_in_place() {
        let (model, file) = sample();
        assert_eq!(
            SoftmaxRegression::<4, 3>::from_file_bytes(&file.0).unwrap(),
            model
        );
        let view = view::<4, 3>(&file.0).unwrap();
        assert_eq!(view.weights, &model.weights);
        assert_eq!(view.bias, &model.bias);
        // In place really means in place.
        assert_eq!(
            view.weights.as_ptr() as usize,
            file.0.as_ptr() as usize + HEADER_LEN
        );
        let header = read_header(&file.0).unwrap();
        assert_eq!(
            (header.inputs, header.outputs, header.image_side),
            (4, 3, 2)
        );
    }

    #[test]
    fn rejects_damaged_files() {
        let (_, file) = sample();
        let bytes = &file.0;
        assert_eq!(
            read_header(&bytes[..10]).unwrap_err(),
            ModelFileError::TooShort { found: 10 }
        );
        assert_eq!(
            read_header(&bytes[..FILE_LEN - 1]).unwrap_err(),
            ModelFileError::LengthMismatch {
                expected: 60,
                found: 59
            }
        );
        assert_eq!(
            view::<3, 4>(bytes).unwrap_err(),
            ModelFileError::ShapeMismatch {
                found: (4, 3),
                expected: (3, 4)
            }
        );
        assert_eq!(
            view::<4, 3>(&bytes[1..]).unwrap_err(),
            ModelFileError::BadMagic
        );

        let mut broken = Aligned(file.0);
        broken.0[8] = 9;
        assert_eq!(
            view::<4, 3>(&broken.0).unwrap_err(),
            ModelFileError::UnsupportedVersion(9)
        );
        let mut broken = Aligned(file.0);
        broken.0[20] = 3;
        assert!(matches!(
            view::<4, 3>(&broken.0).unwrap_err(),
            ModelFileError::BadImageSide { side: 3, inputs: 4 }
        ));
        let mut broken = Aligned(file.0);
        broken.0[HEADER_LEN + 8..HEADER_LEN + 12].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(
            SoftmaxRegression::<4, 3>::from_file_bytes(&broken.0).unwrap_err(),
            ModelFileError::NonFinite { index: 2 }
        );
        // Huge dimensions in the header do not overflow.
        let mut broken = Aligned(file.0);
        broken.0[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        broken.0[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        broken.0[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_header(&broken.0).is_err());
        // A consistent header whose parameters overflow `usize`: 65535^2
        // inputs and 2^32 - 1 classes, `4 * (IN * OUT + OUT)` > 2^64.
        let mut broken = Aligned(file.0);
        broken.0[12..16].copy_from_slice(&(65535u32 * 65535).to_le_bytes());
        broken.0[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        broken.0[20..24].copy_from_slice(&65535u32.to_le_bytes());
        assert_eq!(
            read_header(&broken.0).unwrap_err(),
            ModelFileError::LengthMismatch {
                expected: usize::MAX,
                found: 60
            }
        );
    }

    /// Every message says what is wrong, with the numbers that show it.
    #[test]
    fn errors_read_as_one_line_with_their_numbers() {
        use std::string::ToString;
        let cases = [
            (
                ModelFileError::TooShort { found: 7 },
                "file is too short: 7 bytes, a model header needs 32",
            ),
            (
                ModelFileError::BadMagic,
                "not a softreg model file (bad magic)",
            ),
            (
                ModelFileError::UnsupportedVersion(2),
                "model format version 2 is not supported (this build reads 1)",
            ),
            (
                ModelFileError::UnsupportedDtype(5),
                "parameter type 5 is not supported",
            ),
            (
                ModelFileError::ReservedNotZero(0xff),
                "reserved header field is 0xff, not zero",
            ),
            (
                ModelFileError::BadImageSide {
                    side: 27,
                    inputs: 784,
                },
                "image side 27 does not give 784 inputs",
            ),
            (
                ModelFileError::ShapeMismatch {
                    found: (784, 10),
                    expected: (1024, 10),
                },
                "model has 784 inputs and 10 classes, expected 1024 and 10",
            ),
            (
                ModelFileError::LengthMismatch {
                    expected: 41000,
                    found: 40999,
                },
                "parameters are 40999 bytes, the header promises 41000",
            ),
            (
                ModelFileError::NonFinite { index: 12 },
                "parameter 12 is not a finite number",
            ),
            (
                ModelFileError::NegativeScale { class: 3 },
                "scale of class 3 is negative",
            ),
            (
                ModelFileError::WeightOutOfRange {
                    class: 4,
                    input: 100,
                },
                "int8 weight 100 of class 4 is -128, outside -127..=127",
            ),
            (
                ModelFileError::Misaligned,
                "model bytes are not 4-byte aligned, cannot use them in place",
            ),
            (
                ModelFileError::BigEndianHost,
                "cannot use little-endian parameters in place on a big-endian host",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn misaligned_bytes_are_refused_in_place_but_copy_fine() {
        let (model, file) = sample();
        let mut shifted = Aligned([0u8; FILE_LEN + 1]);
        shifted.0[1..].copy_from_slice(&file.0);
        assert_eq!(
            view::<4, 3>(&shifted.0[1..]).unwrap_err(),
            ModelFileError::Misaligned
        );
        assert_eq!(
            SoftmaxRegression::<4, 3>::from_file_bytes(&shifted.0[1..]).unwrap(),
            model
        );
    }
}
