//! The firmware inference API ([`softreg::inference`]) and the int8 model
//! ([`softreg::quantized`]) on the host: the same bits from the SIMD and the
//! scalar (microcontroller) kernels, the in-core resize equal to the
//! chapter's, typed errors for files that do not fit.

mod forced_level;

use softreg::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS};
use softreg::inference::{self, Classifier, InferenceError, PredictionRecord, Weights};
use softreg::model_file::ModelFileError;
use softreg::quantized::{self, QuantizedModel};
use softreg::{idx, resize, Rng, SoftmaxRegression};
use std::path::Path;

fn test_images() -> Vec<[u8; PIXELS]> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/t10k-256-images-idx3-ubyte");
    let bytes = std::fs::read(path).unwrap();
    let images = idx::parse_images(&bytes).unwrap();
    images.as_arrays::<PIXELS>().unwrap().to_vec()
}

/// Model-file bytes on a 4-byte boundary.
struct FileBytes(Vec<u32>, usize);

impl FileBytes {
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.0)[..self.1]
    }
}

fn collect(write: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<(), ()>)) -> FileBytes {
    let mut bytes = Vec::new();
    write(&mut |c: &[u8]| {
        bytes.extend_from_slice(c);
        Ok(())
    });
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
    FileBytes(words, bytes.len())
}

fn f32_file<const IN: usize, const OUT: usize>(
    model: &SoftmaxRegression<IN, OUT>,
    side: u32,
) -> FileBytes {
    collect(|w| model.write_file(side, w).unwrap())
}

fn int8_file<const IN: usize, const OUT: usize>(
    model: &QuantizedModel<IN, OUT>,
    side: u32,
) -> FileBytes {
    collect(|w| model.write_file(side, w).unwrap())
}

fn random_model<const IN: usize>(seed: u64) -> Box<SoftmaxRegression<IN, CLASSES>> {
    let mut model = Box::new(SoftmaxRegression::<IN, CLASSES>::zeroed());
    model.init_normal(&mut Rng::seed_from_u64(seed), 0.05);
    for (j, b) in model.bias.iter_mut().enumerate() {
        *b = j as f32 * 0.1 - 0.4;
    }
    model
}

#[test]
fn in_core_resize_is_the_chapters_bit_for_bit() {
    for image in test_images().iter().take(64) {
        let mut want = [0.0f32; RESIZED_PIXELS];
        resize::resize_28_to_32(image, &mut want);
        for (k, &w) in want.iter().enumerate() {
            let got = inference::resized_pixel(image, k / 32, k % 32);
            assert_eq!(got.to_bits(), w.to_bits(), "pixel {k}");
            // The int8 path's integer resize rounds the same value to 1/255.
            let q = inference::resized_pixel_u8(image, k / 32, k % 32);
            assert!(
                (f32::from(q) - 255.0 * w).abs() <= 0.5 + 1e-3,
                "pixel {k}: {q} vs {}",
                255.0 * w
            );
        }
    }
}

#[test]
fn simd_and_scalar_f32_logits_are_bit_identical() {
    let model = random_model::<RESIZED_PIXELS>(80);
    let view = model.view();
    for image in test_images().iter().take(32) {
        let fill = |c: usize, chunk: &mut [f32; 16]| {
            for (l, v) in chunk.iter_mut().enumerate() {
                let k = c * 16 + l;
                *v = inference::resized_pixel(image, k / 32, k % 32);
            }
        };
        let simd = inference::logits_f32_simd(&view, fill);
        let scalar = inference::logits_f32_scalar(&view, fill);
        assert_eq!(simd.map(f32::to_bits), scalar.map(f32::to_bits));
    }
    // A width that is not a multiple of 16: the padded lanes add nothing.
    let mut rng = Rng::seed_from_u64(81);
    let odd = SoftmaxRegression::<37, 3>::new(&mut rng, 1.0);
    let x: Vec<f32> = (0..37).map(|_| rng.normal()).collect();
    let fill = |c: usize, chunk: &mut [f32; 16]| {
        for (l, v) in chunk.iter_mut().enumerate() {
            *v = x.get(c * 16 + l).copied().unwrap_or(0.0);
        }
    };
    let simd = inference::logits_f32_simd(&odd.view(), fill);
    let scalar = inference::logits_f32_scalar(&odd.view(), fill);
    assert_eq!(simd.map(f32::to_bits), scalar.map(f32::to_bits));
    let mut want = [[0.0f32; 3]];
    odd.forward(&[x.clone().try_into().unwrap()], &mut want);
    for (a, b) in simd.iter().zip(&want[0]) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn classifier_agrees_with_the_training_model() {
    let model = random_model::<RESIZED_PIXELS>(82);
    let file = f32_file(&*model, 32);
    let classifier = Classifier::<RESIZED_PIXELS, CLASSES>::new(file.bytes()).unwrap();
    assert!(classifier.resizes());
    // The weights are the file's own bytes, not a copy.
    let Weights::F32(view) = classifier.weights() else {
        panic!("an f32 model")
    };
    assert_eq!(
        view.weights.as_ptr() as usize,
        file.bytes().as_ptr() as usize + 32
    );
    for image in test_images().iter().take(64) {
        let mut x = [0.0f32; RESIZED_PIXELS];
        resize::resize_28_to_32(image, &mut x);
        let mut want = [[0.0f32; CLASSES]];
        model.forward(&[x], &mut want);
        let got = classifier.logits(image);
        for (a, b) in got.iter().zip(&want[0]) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        // Bit for bit the scalar kernel over the pixel-by-pixel resize: the
        // classifier's row cache changes no rounding.
        let scalar = inference::logits_f32_scalar(view, |c, chunk: &mut [f32; 16]| {
            for (l, v) in chunk.iter_mut().enumerate() {
                let k = c * 16 + l;
                *v = inference::resized_pixel(image, k / 32, k % 32);
            }
        });
        assert_eq!(got.map(f32::to_bits), scalar.map(f32::to_bits));
        let p = classifier.probabilities(image);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let prediction = classifier.classify(image);
        assert_eq!(prediction.probability, p[prediction.class]);
        assert!(p.iter().all(|&q| q <= prediction.probability));
    }

    // A 28x28 model takes the pixels as they are.
    let small = random_model::<PIXELS>(83);
    let file = f32_file(&*small, 28);
    let classifier = Classifier::<PIXELS, CLASSES>::new(file.bytes()).unwrap();
    assert!(!classifier.resizes());
    let image = &test_images()[0];
    let mut x = [0.0f32; PIXELS];
    resize::scale_28(image, &mut x);
    let mut want = [[0.0f32; CLASSES]];
    small.forward(&[x], &mut want);
    for (a, b) in classifier.logits(image).iter().zip(&want[0]) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

/// The prediction record the firmware compares with the host's: the
/// classifier's own class and probability, a hash of the exact logits, and
/// twelve little-endian bytes that read back as the same record.
#[test]
fn prediction_records_pin_down_the_prediction_and_round_trip() {
    let model = random_model::<RESIZED_PIXELS>(84);
    let file = f32_file(&*model, 32);
    let classifier = Classifier::<RESIZED_PIXELS, CLASSES>::new(file.bytes()).unwrap();
    let images = test_images();
    let mut hashes = std::collections::HashSet::new();
    for image in images.iter().take(32) {
        let record = classifier.record(image);
        let prediction = classifier.classify(image);
        assert_eq!(record.class as usize, prediction.class);
        assert_eq!(record.probability(), prediction.probability);
        assert_eq!(
            record,
            PredictionRecord::from_logits(&classifier.logits(image))
        );
        let bytes = record.to_le_bytes();
        assert_eq!(bytes[..4], record.class.to_le_bytes());
        assert_eq!(PredictionRecord::from_le_bytes(&bytes), record);
        hashes.insert(record.logits_hash);
    }
    // Different images, different logits, different hashes.
    assert_eq!(hashes.len(), 32);
    // One flipped bit in one logit changes the hash, not the class.
    let logits = classifier.logits(&images[0]);
    let mut flipped = logits;
    flipped[3] = f32::from_bits(flipped[3].to_bits() ^ 1);
    let (a, b) = (
        PredictionRecord::from_logits(&logits),
        PredictionRecord::from_logits(&flipped),
    );
    assert_ne!(a.logits_hash, b.logits_hash);
    assert_eq!(a.class, b.class);
}

#[test]
fn int8_classifier_uses_exact_integer_dots() {
    let model = random_model::<RESIZED_PIXELS>(84);
    let q = Box::new(quantized::quantize(&model.view()));
    let file = int8_file(&q, 32);
    assert_eq!(file.bytes().len(), 10_352);
    let classifier = Classifier::<RESIZED_PIXELS, CLASSES>::new(file.bytes()).unwrap();
    let Weights::I8(view) = classifier.weights() else {
        panic!("an int8 model")
    };
    assert_eq!(
        view.weights.as_ptr() as usize,
        file.bytes().as_ptr() as usize + 32 + 80
    );
    let f32_file = f32_file(&*model, 32);
    let f32_classifier = Classifier::<RESIZED_PIXELS, CLASSES>::new(f32_file.bytes()).unwrap();
    let mut same = 0;
    let images = test_images();
    for image in &images {
        let a: [u8; RESIZED_PIXELS] =
            core::array::from_fn(|k| inference::resized_pixel_u8(image, k / 32, k % 32));
        let got = classifier.logits(image);
        for (j, &logit) in got.iter().enumerate() {
            let dot = quantized::dot_scalar(&q.weights[j], &a);
            assert_eq!(logit.to_bits(), view.rescale(j, dot).to_bits());
        }
        same +=
            usize::from(classifier.classify(image).class == f32_classifier.classify(image).class);
    }
    // A random model has small margins; the trained one agrees on 99.9%
    // (see tests/firmware.rs).
    assert!(same * 10 >= images.len() * 9, "{same} of {}", images.len());
}

#[test]
fn files_that_do_not_fit_are_refused_with_a_typed_error() {
    let model = random_model::<PIXELS>(85);
    let file = f32_file(&*model, 28);
    // Wrong shape for the classifier.
    assert_eq!(
        Classifier::<RESIZED_PIXELS, CLASSES>::new(file.bytes()).unwrap_err(),
        InferenceError::Model(ModelFileError::ShapeMismatch {
            found: (784, 10),
            expected: (1024, 10)
        })
    );
    // Not 4-byte aligned: refused, never copied.
    let mut shifted = vec![0u32; file.0.len() + 1];
    bytemuck::cast_slice_mut::<u32, u8>(&mut shifted)[1..=file.1].copy_from_slice(file.bytes());
    let shifted: &[u8] = &bytemuck::cast_slice(&shifted)[1..=file.1];
    assert_eq!(
        Classifier::<PIXELS, CLASSES>::new(shifted).unwrap_err(),
        InferenceError::Model(ModelFileError::Misaligned)
    );
    // Damaged header.
    let mut damaged = FileBytes(file.0.clone(), file.1);
    bytemuck::cast_slice_mut::<u32, u8>(&mut damaged.0)[0] = b'X';
    assert_eq!(
        Classifier::<PIXELS, CLASSES>::new(damaged.bytes()).unwrap_err(),
        InferenceError::Model(ModelFileError::BadMagic)
    );
    let mut damaged = FileBytes(file.0.clone(), file.1);
    bytemuck::cast_slice_mut::<u32, u8>(&mut damaged.0)[24] = 7;
    assert_eq!(
        Classifier::<PIXELS, CLASSES>::new(damaged.bytes()).unwrap_err(),
        InferenceError::Model(ModelFileError::UnsupportedDtype(7))
    );
    // A model of 4x4 images has no place for a 28x28 one.
    let tiny = SoftmaxRegression::<16, CLASSES>::zeroed();
    let file = f32_file(&tiny, 4);
    let err = Classifier::<16, CLASSES>::new(file.bytes()).unwrap_err();
    assert_eq!(err, InferenceError::UnsupportedImageSide(4));
    assert!(err.to_string().contains("4x4"));
    let q = quantized::quantize(&tiny.view());
    let file = int8_file(&q, 4);
    assert_eq!(
        Classifier::<16, CLASSES>::new(file.bytes()).unwrap_err(),
        InferenceError::UnsupportedImageSide(4)
    );
    assert_eq!(
        Classifier::<16, CLASSES>::from_weights(Weights::I8(q.view()), true).unwrap_err(),
        InferenceError::UnsupportedImageSide(32)
    );
}

/// The firmware loads int8 models through `quantized::view`, so it refuses
/// what `quantize` cannot write: a negative scale, a weight of -128.
#[test]
fn int8_values_quantize_cannot_write_are_refused() {
    let model = random_model::<PIXELS>(86);
    let q = Box::new(quantized::quantize(&model.view()));
    let file = int8_file(&q, 28);
    assert!(Classifier::<PIXELS, CLASSES>::new(file.bytes()).is_ok());
    let params = 32;
    let weights = params + 8 * CLASSES;

    let mut damaged = FileBytes(file.0.clone(), file.1);
    bytemuck::cast_slice_mut::<u32, u8>(&mut damaged.0)[params + 4 * 3..params + 4 * 4]
        .copy_from_slice(&(-q.scales[3]).to_le_bytes());
    let err = Classifier::<PIXELS, CLASSES>::new(damaged.bytes()).unwrap_err();
    assert_eq!(
        err,
        InferenceError::Model(ModelFileError::NegativeScale { class: 3 })
    );
    assert!(err.to_string().contains("class 3"), "{err}");

    let mut damaged = FileBytes(file.0.clone(), file.1);
    bytemuck::cast_slice_mut::<u32, u8>(&mut damaged.0)[weights + PIXELS * 9 + 100] = 0x80;
    let err = Classifier::<PIXELS, CLASSES>::new(damaged.bytes()).unwrap_err();
    assert_eq!(
        err,
        InferenceError::Model(ModelFileError::WeightOutOfRange {
            class: 9,
            input: 100
        })
    );
    assert!(err.to_string().contains("-128"), "{err}");
}

/// [`Classifier::from_weights`] over parameters already in memory: the
/// same classifier as [`Classifier::new`] over a file of them, for both
/// image sizes and both parameter types.
#[test]
fn from_weights_is_the_classifier_of_the_file() {
    let images = test_images();
    let large = random_model::<RESIZED_PIXELS>(87);
    let small = random_model::<PIXELS>(88);
    let large_file = f32_file(&*large, 32);
    let small_file = f32_file(&*small, 28);
    let from_large = Classifier::from_weights(Weights::F32(large.view()), true).unwrap();
    let from_small = Classifier::from_weights(Weights::F32(small.view()), false).unwrap();
    assert!(from_large.resizes() && !from_small.resizes());
    let of_large = Classifier::<RESIZED_PIXELS, CLASSES>::new(large_file.bytes()).unwrap();
    let of_small = Classifier::<PIXELS, CLASSES>::new(small_file.bytes()).unwrap();
    let q = Box::new(quantized::quantize(&small.view()));
    let q_file = int8_file(&q, 28);
    let from_q = Classifier::from_weights(Weights::I8(q.view()), false).unwrap();
    let of_q = Classifier::<PIXELS, CLASSES>::new(q_file.bytes()).unwrap();
    for image in images.iter().take(16) {
        assert_eq!(from_large.record(image), of_large.record(image));
        assert_eq!(from_small.record(image), of_small.record(image));
        assert_eq!(from_q.record(image), of_q.record(image));
    }
    // The wrong size for the flag is refused, naming the side it implies.
    assert_eq!(
        Classifier::from_weights(Weights::F32(small.view()), true).unwrap_err(),
        InferenceError::UnsupportedImageSide(32)
    );
    assert_eq!(
        Classifier::from_weights(Weights::F32(large.view()), false).unwrap_err(),
        InferenceError::UnsupportedImageSide(28)
    );
}

/// `classify` is the argmax of the probabilities whatever the class: a
/// model whose class `j` lights up on image rows `2 j + 4` and `2 j + 5`
/// picks every class in turn, on the `f32` and the int8 path, at both sizes.
#[test]
fn classify_picks_every_class() {
    // Weight 1 on every pixel of class j's rows of the 28x28 image, and on
    // the rows of the 32x32 grid they cover for the resized model.
    let rows_of = |j: usize| 2 * j + 4..2 * j + 6;
    let mut small = Box::new(SoftmaxRegression::<PIXELS, CLASSES>::zeroed());
    let mut large = Box::new(SoftmaxRegression::<RESIZED_PIXELS, CLASSES>::zeroed());
    for j in 0..CLASSES {
        let rows = rows_of(j);
        for k in rows.start * 28..rows.end * 28 {
            small.weights[j][k] = 1.0;
        }
        let rows = (rows.start * 32 / 28)..(rows.end * 32).div_ceil(28);
        for k in rows.start * 32..rows.end * 32 {
            large.weights[j][k] = 1.0;
        }
    }
    let q = Box::new(quantized::quantize(&small.view()));
    let small_c = Classifier::from_weights(Weights::F32(small.view()), false).unwrap();
    let large_c = Classifier::from_weights(Weights::F32(large.view()), true).unwrap();
    let q_c = Classifier::from_weights(Weights::I8(q.view()), false).unwrap();
    for class in 0..CLASSES {
        let mut image = [0u8; PIXELS];
        let rows = rows_of(class);
        image[rows.start * 28..rows.end * 28].fill(255);
        for (name, prediction) in [
            ("f32 28x28", small_c.classify(&image)),
            ("f32 32x32", large_c.classify(&image)),
            ("int8", q_c.classify(&image)),
        ] {
            assert_eq!(prediction.class, class, "{name}");
            assert!(prediction.probability > 0.5, "{name}: {prediction:?}");
        }
    }
}
