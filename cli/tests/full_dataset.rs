//! Checks on the full Fashion-MNIST files. They need `SOFTREG_DATA_DIR` (a
//! folder with the four files, raw or `.gz`), so they are ignored by default:
//!
//! ```text
//! SOFTREG_DATA_DIR=../shared/fashion-mnist cargo test --release --test full_dataset -- --ignored
//! ```

use flate2::read::GzDecoder;
use serde_json::Value;
use softreg::fashion_mnist::{PIXELS, RESIZED_PIXELS};
use softreg::{idx, resize};
use std::io::Read;
use std::path::PathBuf;

fn read(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(
        std::env::var_os("SOFTREG_DATA_DIR").expect("set SOFTREG_DATA_DIR to the data folder"),
    );
    if let Ok(bytes) = std::fs::read(dir.join(name)) {
        return bytes;
    }
    let gz = dir.join(format!("{name}.gz"));
    let mut bytes = Vec::new();
    GzDecoder::new(std::fs::File::open(&gz).unwrap_or_else(|e| panic!("{}: {e}", gz.display())))
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

#[test]
#[ignore = "needs the full dataset in SOFTREG_DATA_DIR"]
fn files_parse_with_the_published_shapes_and_statistics() {
    for (split, count) in [("train", 60_000), ("t10k", 10_000)] {
        let image_bytes = read(&format!("{split}-images-idx3-ubyte"));
        let label_bytes = read(&format!("{split}-labels-idx1-ubyte"));
        let images = idx::parse_images(&image_bytes).unwrap();
        let labels = idx::parse_labels(&label_bytes).unwrap();
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
        if split == "train" {
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
    let image_bytes = read("train-images-idx3-ubyte");
    let images = idx::parse_images(&image_bytes).unwrap();
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
