//! Checks on the full Fashion-MNIST files, read as `softreg` reads them
//! (`softreg_cli::dataset`). They need `SOFTREG_DATA_DIR` (a folder with the
//! four files, raw or `.gz`), so they are ignored by default:
//!
//! ```text
//! SOFTREG_DATA_DIR=../shared/fashion-mnist cargo test --release --test full_dataset -- --ignored
//! ```

use serde_json::Value;
use softreg::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS};
use softreg::inference::Classifier;
use softreg::{idx, resize};
use softreg_cli::dataset::{Source, Split, SplitFiles};
use std::path::{Path, PathBuf};

/// The two files of `split` in `$SOFTREG_DATA_DIR`, never downloaded.
fn open(split: Split) -> SplitFiles {
    let dir = PathBuf::from(
        std::env::var_os("SOFTREG_DATA_DIR").expect("set SOFTREG_DATA_DIR to the data folder"),
    );
    SplitFiles::open(&Source::new(Some(&dir), true, None), split)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
#[ignore = "needs the full dataset in SOFTREG_DATA_DIR"]
fn files_parse_with_the_published_shapes_and_statistics() {
    for (split, count) in [(Split::Train, 60_000), (Split::Test, 10_000)] {
        let files = open(split);
        let images = idx::parse_images(&files.images.bytes).unwrap();
        let labels = idx::parse_labels(&files.labels.bytes).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (count, 28, 28));
        assert_eq!(labels.labels.len(), count);
        labels.check_classes(10).unwrap();
        // Every class equally often: 6,000 / 1,000 each.
        let mut per_class = [0usize; 10];
        labels
            .labels
            .iter()
            .for_each(|&l| per_class[usize::from(l)] += 1);
        assert_eq!(per_class, [count / 10; 10]);
        if split == Split::Train {
            // The dataset README's sanity check: mean 0.2860, sd 0.3530.
            let n = images.pixels.len() as f64;
            let sum: f64 = images.pixels.iter().map(|&p| f64::from(p) / 255.0).sum();
            let sum_sq: f64 = images
                .pixels
                .iter()
                .map(|&p| (f64::from(p) / 255.0).powi(2))
                .sum();
            let mean = sum / n;
            let sd = (sum_sq / n - mean * mean).sqrt();
            assert_eq!(format!("{mean:.4} {sd:.4}"), "0.2860 0.3530");
        }
    }
}

#[test]
#[ignore = "needs the full dataset in SOFTREG_DATA_DIR"]
fn resize_matches_tensorflow_on_the_golden_training_images() {
    let golden: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/golden/resize_tf.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let files = open(Split::Train);
    let images = idx::parse_images(&files.images.bytes).unwrap();
    let images = images.as_arrays::<PIXELS>().unwrap();
    for (index, output) in golden["train_indices"]
        .as_array()
        .unwrap()
        .iter()
        .zip(golden["output_32x32"].as_array().unwrap())
    {
        let mut got = [0.0f32; RESIZED_PIXELS];
        resize::resize_28_to_32(&images[index.as_u64().unwrap() as usize], &mut got);
        for (g, w) in got.iter().zip(output.as_array().unwrap()) {
            assert!((g - w.as_f64().unwrap() as f32).abs() <= 1e-6);
        }
    }
}

/// A model file of the firmware example's bundle
/// (`examples/firmware/assets/`), copied to a 4-byte boundary as the
/// in-place views need.
struct Aligned(Vec<u32>, usize);

impl Aligned {
    fn read(name: &str) -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/firmware/assets")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
        Aligned(words, bytes.len())
    }

    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.0)[..self.1]
    }
}

/// The firmware bundle's int8 model against its f32 one on the full test set
/// (the bundle itself is checked by the core's `tests/firmware.rs`).
#[test]
#[ignore = "needs the full dataset in SOFTREG_DATA_DIR"]
fn int8_loses_at_most_half_a_point_on_the_full_test_set() {
    let files = open(Split::Test);
    let test = files.examples().unwrap_or_else(|e| panic!("{e:#}"));
    let (images, labels) = (test.images, test.labels);
    assert_eq!(images.len(), 10_000);
    let accuracy = |name: &str| {
        let file = Aligned::read(name);
        let c = Classifier::<RESIZED_PIXELS, CLASSES>::new(file.bytes()).unwrap();
        let correct = images
            .iter()
            .zip(labels)
            .filter(|(x, &y)| c.classify(x).class == usize::from(y))
            .count();
        correct as f64 / images.len() as f64
    };
    let (f32_acc, int8_acc) = (accuracy("model-f32.bin"), accuracy("model-int8.bin"));
    println!("test accuracy: f32 {f32_acc:.4}, int8 {int8_acc:.4}");
    assert!(f32_acc > 0.80, "f32 {f32_acc}");
    assert!(
        f32_acc - int8_acc <= 0.005,
        "f32 {f32_acc}, int8 {int8_acc}"
    );
}
