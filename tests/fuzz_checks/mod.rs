//! What the fuzz targets assert, one function per target, shared with the
//! regression tests (`tests/fuzz_regressions.rs` declares this module; the
//! targets in `fuzz/fuzz_targets/` include it with `#[path]`), so a saved
//! input is replayed through exactly the checks that once failed on it. It
//! lives under `tests/` so that the published crate's tests have it too.
//! Each function accepts any bytes: it panics only if softreg mishandles
//! them.
#![allow(dead_code)]

use softreg::fashion_mnist::{CLASSES, PIXELS};
use softreg::idx::{self, IdxError, IdxImages, IdxKind};
use softreg::inference::{Classifier, InferenceError};
use softreg::model_file::{self, ModelFileError, DTYPE_F32, DTYPE_I8, HEADER_LEN};
use softreg::quantized::{self, QuantizedModel};
use softreg::SoftmaxRegression;
use std::fmt::Write;

fn display_is_not_empty(e: &dyn std::fmt::Display) {
    let mut s = String::new();
    write!(s, "{e}").unwrap();
    assert!(!s.is_empty());
}

/// The IDX label parser: whatever it accepts is exactly what the header
/// promises; whatever it refuses, it refuses for the right reason.
pub fn idx_labels(data: &[u8]) {
    let parsed = idx::parse_labels(data);
    let header = idx::parse_header(data, IdxKind::Labels);
    match (&parsed, &header) {
        (Ok(labels), Ok(header)) => {
            // Exactly the promised count of one-byte labels, right after the
            // 8-byte header, and nothing else.
            let count = header.dims[0] as usize;
            assert_eq!(header.header_len(), 8);
            assert_eq!(header.data_len(), Some(count));
            assert_eq!(header.file_len(), Some(data.len()));
            assert_eq!(labels.labels.len(), count);
            assert_eq!(labels.labels, &data[8..]);
            // Class checks agree with the largest label and name the first
            // offender.
            let max = labels.labels.iter().copied().max();
            for classes in [0usize, 1, 10, 255, 256] {
                let checked = labels.check_classes(classes);
                assert_eq!(
                    checked.is_ok(),
                    max.is_none_or(|m| usize::from(m) < classes)
                );
                if let Err(IdxError::LabelOutOfRange { index, label, .. }) = checked {
                    assert_eq!(labels.labels[index], label);
                    assert!(labels.labels[..index]
                        .iter()
                        .all(|&l| usize::from(l) < classes));
                }
            }
        }
        (Err(e), Ok(header)) => {
            // A good header can only fail on the length of what follows it.
            let expected = header.data_len().unwrap();
            assert_eq!(
                *e,
                IdxError::LengthMismatch {
                    expected,
                    found: data.len() - 8
                }
            );
            assert_ne!(header.file_len(), Some(data.len()));
        }
        (Ok(_), Err(e)) => panic!("labels parsed but the header did not: {e:?}"),
        (Err(a), Err(b)) => assert_eq!(a, b),
    }
    if let Err(e) = parsed {
        display_is_not_empty(&e);
    }
    // The same bytes are never a valid image file unless they say so.
    if data.get(..4) != Some(&idx::IMAGES_MAGIC.to_be_bytes()[..]) {
        assert!(idx::parse_images(data).is_err());
    }
}

fn check_arrays<const N: usize>(images: &IdxImages<'_>) {
    match images.as_arrays::<N>() {
        Some(arrays) => {
            assert_eq!(images.image_len(), N);
            assert_eq!(arrays.len(), images.count);
            if let (Some(first), Some(last)) = (arrays.first(), arrays.last()) {
                assert_eq!(&first[..], images.image(0));
                assert_eq!(&last[..], images.image(images.count - 1));
            }
        }
        None => assert!(images.image_len() != N || N == 0),
    }
}

/// The IDX image parser: whatever it accepts has exactly
/// `count * rows * cols` pixels, and every image is in bounds.
pub fn idx_images(data: &[u8]) {
    let parsed = idx::parse_images(data);
    let header = idx::parse_header(data, IdxKind::Images);
    match (&parsed, &header) {
        (Ok(images), Ok(header)) => {
            let [count, rows, cols] = header.dims.map(|d| d as usize);
            assert_eq!(
                (images.count, images.rows, images.cols),
                (count, rows, cols)
            );
            assert_eq!(header.header_len(), 16);
            assert_eq!(header.file_len(), Some(data.len()));
            // The data length is the product of the dimensions.
            let product = count
                .checked_mul(rows)
                .and_then(|n| n.checked_mul(cols))
                .unwrap();
            assert_eq!(images.pixels.len(), product);
            assert_eq!(images.pixels, &data[16..]);
            // Every image is in bounds and they tile the data in order. Walk
            // all of them when that is cheap, else the first and last few.
            let len = images.image_len();
            let walk: Vec<usize> = if count <= 4096 {
                (0..count).collect()
            } else {
                (0..64).chain(count - 64..count).collect()
            };
            for i in walk {
                let image = images.image(i);
                assert_eq!(image.len(), len);
                assert_eq!(image, &images.pixels[i * len..(i + 1) * len]);
            }
            check_arrays::<PIXELS>(images);
            check_arrays::<1>(images);
            check_arrays::<4>(images);
            check_arrays::<6>(images);
            check_arrays::<0>(images);
        }
        (Err(e), Ok(header)) => {
            let expected = header.data_len().unwrap();
            assert!(
                *e == IdxError::LengthMismatch {
                    expected,
                    found: data.len() - 16
                } || *e == IdxError::SizeOverflow,
                "{e:?}"
            );
        }
        (Ok(_), Err(e)) => panic!("images parsed but the header did not: {e:?}"),
        (Err(a), Err(b)) => assert_eq!(a, b),
    }
    if let Err(e) = parsed {
        display_is_not_empty(&e);
    }
    if data.get(..4) != Some(&idx::LABELS_MAGIC.to_be_bytes()[..]) {
        assert!(idx::parse_labels(data).is_err());
    }
}

/// `data` copied to a buffer that starts on a 64-byte boundary, `shift`
/// bytes in.
struct Aligned {
    storage: Vec<[u8; 64]>,
    shift: usize,
    len: usize,
}

impl Aligned {
    fn new(data: &[u8], shift: usize) -> Aligned {
        let mut storage = vec![[0u8; 64]; (data.len() + shift).div_ceil(64).max(1)];
        storage.as_flattened_mut()[shift..shift + data.len()].copy_from_slice(data);
        Aligned {
            storage,
            shift,
            len: data.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.storage.as_flattened()[self.shift..self.shift + self.len]
    }
}

/// Loads `data` as an `IN x OUT` model by copy and in place, aligned and
/// not, and checks that the paths agree and that the model writes back
/// the same bytes.
fn model_shape<const IN: usize, const OUT: usize>(data: &[u8]) {
    let copied = SoftmaxRegression::<IN, OUT>::from_file_bytes(data);
    let aligned = Aligned::new(data, 0);
    let viewed = model_file::view::<IN, OUT>(aligned.bytes());
    let shifted = Aligned::new(data, 1);
    let misaligned = model_file::view::<IN, OUT>(shifted.bytes());

    match (&copied, &viewed) {
        (Ok(model), Ok(view)) => {
            // Same values, bit for bit, and the view really is in place.
            let bits = |v: &f32| v.to_bits();
            assert!(model.weights.iter().flatten().map(bits).eq(view
                .weights
                .iter()
                .flatten()
                .map(bits)));
            assert!(model.bias.iter().map(bits).eq(view.bias.iter().map(bits)));
            assert_eq!(
                view.weights.as_ptr() as usize,
                aligned.bytes().as_ptr() as usize + HEADER_LEN
            );
            assert!(model
                .weights
                .iter()
                .flatten()
                .chain(&model.bias)
                .all(|v| v.is_finite()));
            // The misaligned view is refused, and only for its alignment.
            assert_eq!(misaligned.unwrap_err(), ModelFileError::Misaligned);
            // Writing the model back gives the file it came from.
            let header = model_file::read_header(data).unwrap();
            let mut out = Vec::with_capacity(data.len());
            model
                .write_file(header.image_side, |chunk: &[u8]| {
                    out.extend_from_slice(chunk);
                    Ok::<(), ()>(())
                })
                .unwrap();
            assert!(out == data, "a loaded model does not re-encode to its file");
            // Inference on any loaded model runs without panicking.
            let x = [0.5f32; IN];
            let p = view.probabilities(&x);
            assert!(p.iter().all(|v| v.is_nan() || (0.0..=1.0).contains(v)));
            let _ = view.classify(&x);
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            assert_ne!(*a, ModelFileError::Misaligned);
            assert_eq!(misaligned.unwrap_err(), *a);
        }
        (a, b) => panic!(
            "copy and view disagree: {:?} vs {:?}",
            a.as_ref().err(),
            b.as_ref().err()
        ),
    }
}

/// Loads `data` as an int8 `IN x OUT` model in place, aligned and not, and
/// checks it writes back the same bytes and that its SIMD and scalar dot
/// products agree.
fn quantized_shape<const IN: usize, const OUT: usize>(data: &[u8]) {
    let aligned = Aligned::new(data, 0);
    let viewed = quantized::view::<IN, OUT>(aligned.bytes());
    let shifted = Aligned::new(data, 1);
    let misaligned = quantized::view::<IN, OUT>(shifted.bytes());
    match &viewed {
        Ok(view) => {
            assert_eq!(misaligned.unwrap_err(), ModelFileError::Misaligned);
            assert_eq!(
                view.scales.as_ptr() as usize,
                aligned.bytes().as_ptr() as usize + HEADER_LEN
            );
            assert!(view.scales.iter().chain(view.bias).all(|v| v.is_finite()));
            // Only what `quantize` can write: scales not negative, weights
            // symmetric.
            assert!(view.scales.iter().all(|&s| s >= 0.0));
            assert!(view
                .weights
                .iter()
                .flatten()
                .all(|&q| q >= -quantized::Q_MAX));
            // Writing the model back gives the file it came from.
            let model = Box::new(QuantizedModel {
                weights: *view.weights,
                scales: *view.scales,
                bias: *view.bias,
            });
            let header = model_file::read_header(data).unwrap();
            let mut out = Vec::with_capacity(data.len());
            model
                .write_file(header.image_side, |chunk: &[u8]| {
                    out.extend_from_slice(chunk);
                    Ok::<(), ()>(())
                })
                .unwrap();
            assert!(
                out == data,
                "a loaded int8 model does not re-encode to its file"
            );
            // Integer dot products: the SIMD kernel is exactly the scalar one,
            // on inputs taken from the file itself.
            let a: [u8; IN] = core::array::from_fn(|k| data[(7 * k + 3) % data.len()]);
            for w in view.weights {
                assert_eq!(quantized::dot_simd(w, &a), quantized::dot_scalar(w, &a));
            }
            let _ = view.logits(&a);
        }
        Err(e) => {
            assert_ne!(*e, ModelFileError::Misaligned);
            // Alignment is checked before the values are.
            let want = match e {
                ModelFileError::NonFinite { .. }
                | ModelFileError::NegativeScale { .. }
                | ModelFileError::WeightOutOfRange { .. } => ModelFileError::Misaligned,
                e => *e,
            };
            assert_eq!(misaligned.unwrap_err(), want);
        }
    }
}

/// The firmware's entry point, `Classifier::new`, on a 4-byte aligned copy:
/// it loads exactly the files the matching view loads, of 28x28 or 32x32
/// images, and classifies any image without panicking.
fn classifier<const IN: usize>(data: &[u8]) {
    let aligned = Aligned::new(data, 0);
    let loaded = Classifier::<IN, CLASSES>::new(aligned.bytes());
    let header = model_file::read_header(data);
    let view_ok = match header.map(|h| h.dtype) {
        Ok(DTYPE_F32) => model_file::view::<IN, CLASSES>(aligned.bytes()).map(|_| ()),
        Ok(DTYPE_I8) => quantized::view::<IN, CLASSES>(aligned.bytes()).map(|_| ()),
        Ok(other) => Err(ModelFileError::UnsupportedDtype(other)),
        Err(e) => Err(e),
    };
    match loaded {
        Ok(c) => {
            assert_eq!(view_ok, Ok(()));
            let side = header.unwrap().image_side;
            assert_eq!(c.resizes(), side == 32);
            assert!(side == 28 || side == 32);
            let image: [u8; PIXELS] = core::array::from_fn(|k| data[(5 * k + 1) % data.len()]);
            let p = c.classify(&image);
            assert!(p.class < CLASSES);
            assert!(p.probability.is_nan() || (0.0..=1.0).contains(&p.probability));
        }
        Err(InferenceError::Model(e)) => assert_eq!(view_ok, Err(e)),
        Err(InferenceError::UnsupportedImageSide(side)) => {
            assert_eq!(view_ok, Ok(()));
            assert_eq!(side, header.unwrap().image_side);
        }
    }
}

/// The model-file loaders, every path, on any bytes: `f32` by copy and in
/// place, int8 in place, and the firmware classifier.
pub fn model_file(data: &[u8]) {
    let header = model_file::read_header(data);
    match &header {
        Ok(h) => {
            assert_eq!(h.version, model_file::VERSION);
            assert!(h.dtype == DTYPE_F32 || h.dtype == DTYPE_I8);
            assert_eq!(u64::from(h.image_side).pow(2), u64::from(h.inputs));
            assert_eq!(h.params_len().map(|n| n + HEADER_LEN), Some(data.len()));
            // A file that loads is a file the writer could have made.
            assert_eq!(
                data[..HEADER_LEN],
                model_file::encode_header_with_dtype(h.inputs, h.outputs, h.image_side, h.dtype)
            );
        }
        Err(e) => display_is_not_empty(e),
    }
    // Let the header pick the shape, so the fuzzer can reach every path of
    // the shapes softreg uses (784 and 1024 inputs, 10 classes) and of a few
    // small ones; always try a fixed small shape for the mismatch paths.
    let shape = header.map(|h| (h.inputs, h.outputs)).unwrap_or((0, 0));
    match shape {
        (1, 1) => both::<1, 1>(data),
        (4, 1) => both::<4, 1>(data),
        (4, 10) => both::<4, 10>(data),
        (9, 2) => both::<9, 2>(data),
        (16, 10) => both::<16, 10>(data),
        (25, 3) => both::<25, 3>(data),
        (784, 10) => both::<784, 10>(data),
        (1024, 10) => both::<1024, 10>(data),
        _ => {}
    }
    both::<4, 3>(data);
    classifier::<784>(data);
    classifier::<1024>(data);
}

fn both<const IN: usize, const OUT: usize>(data: &[u8]) {
    model_shape::<IN, OUT>(data);
    quantized_shape::<IN, OUT>(data);
}
