//! The chapter's numbers, reproduced.
//!
//! The small examples are the ones the chapter prints; `fixtures/golden/`
//! holds TensorFlow's own outputs for the chapter's image pipeline and for
//! eight SGD steps of its model (see `fixtures/golden/README.md`), and
//! `fixtures/` the few Fashion-MNIST images those need.

mod forced_level;

use serde_json::Value;
use softreg::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS};
use softreg::kernels::{cross_entropy, softmax, sum};
use softreg::{idx, resize, SoftmaxRegression};
use std::path::Path;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn golden(name: &str) -> Value {
    serde_json::from_slice(&fixture(&format!("golden/{name}"))).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn sums_along_each_axis_keep_dims() {
    let x = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
    assert_eq!(sum::sum_axis0(&x), [[5.0, 7.0, 9.0]]);
    assert_eq!(sum::sum_axis1(&x), [[6.0], [15.0]]);
}

#[test]
fn softmax_reproduces_the_chapters_rows() {
    let printed: [[f32; 5]; 2] = [
        [0.18055958, 0.17420632, 0.24367459, 0.2057537, 0.19580577],
        [0.16664788, 0.12496491, 0.14281595, 0.24873221, 0.31683904],
    ];
    for p in printed {
        for shift in [0.0f32, 100.0, -100.0] {
            let mut row = p.map(|v| v.ln() + shift);
            softmax::softmax_row(&mut row);
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() <= 1e-6, "shift {shift}: sum {sum}");
            for (got, want) in row.iter().zip(&p) {
                assert!(
                    (got - want).abs() <= 1e-6,
                    "shift {shift}: {row:?} vs {p:?}"
                );
            }
        }
    }
}

#[test]
fn cross_entropy_reproduces_the_chapters_loss() {
    let y_hat = [[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]];
    let y = [0u8, 2];
    let mut picked = [0.0; 2];
    cross_entropy::gather(&y_hat, &y, &mut picked);
    assert_eq!(picked, [0.1, 0.5]);
    let loss = cross_entropy::cross_entropy(&y_hat, &y);
    assert!((loss - 1.4978661).abs() <= 1e-6, "{loss}");
    // Printed to four places as 1.4979.
    assert_eq!(format!("{loss:.4}"), "1.4979");
}

#[test]
fn resize_matches_tensorflow() {
    let g = golden("resize_tf.json");
    let inputs = g["input_u8"].as_array().unwrap();
    let outputs = g["output_32x32"].as_array().unwrap();
    assert_eq!(inputs.len(), 4);
    let mut worst = 0.0f32;
    for (input, output) in inputs.iter().zip(outputs) {
        let src: Vec<u8> = input
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        let src: &[u8; PIXELS] = src.as_slice().try_into().unwrap();
        let want = floats(output);
        let mut got = [0.0f32; RESIZED_PIXELS];
        resize::resize_28_to_32(src, &mut got);
        for (g, w) in got.iter().zip(&want) {
            worst = worst.max((g - w).abs());
        }
    }
    assert!(
        worst <= 1e-6,
        "largest difference from TensorFlow: {worst:e}"
    );
}

/// Resized images and their labels.
type Examples = (Vec<[f32; RESIZED_PIXELS]>, Vec<u8>);

/// The resized training images of the trajectory's batch order (the fixture
/// holds them in that order) and the first 256 test images.
fn trajectory_data() -> (Examples, Examples) {
    let load = |images: &str, labels: &str| -> Examples {
        let image_bytes = fixture(images);
        let label_bytes = fixture(labels);
        let images = idx::parse_images(&image_bytes).unwrap();
        let labels = idx::parse_labels(&label_bytes).unwrap();
        let x: Vec<[f32; RESIZED_PIXELS]> = images
            .as_arrays::<PIXELS>()
            .unwrap()
            .iter()
            .map(|img| {
                let mut out = [0.0; RESIZED_PIXELS];
                resize::resize_28_to_32(img, &mut out);
                out
            })
            .collect();
        (x, labels.labels.to_vec())
    };
    (
        load(
            "train-2048-images-idx3-ubyte",
            "train-2048-labels-idx1-ubyte",
        ),
        load("t10k-256-images-idx3-ubyte", "t10k-256-labels-idx1-ubyte"),
    )
}

#[test]
fn eight_sgd_steps_follow_tensorflows_trajectory() {
    let g = golden("trajectory_tf.json");
    let ((train_x, train_y), (test_x, _)) = trajectory_data();
    let batch = g["batch_size"].as_u64().unwrap() as usize;
    let lr = g["lr"].as_f64().unwrap() as f32;
    let steps = g["steps"].as_u64().unwrap() as usize;
    assert_eq!(train_x.len(), batch * steps);

    let mut w0 = Box::new([[0.0f32; CLASSES]; 1024]);
    for (row, values) in w0.iter_mut().zip(g["W0"].as_array().unwrap()) {
        row.copy_from_slice(&floats(values));
    }
    let mut model = Box::new(SoftmaxRegression::<1024, CLASSES>::zeroed());
    model.set_weights_input_major(&w0);

    let want_losses = floats(&g["losses"]);
    let mut scratch = vec![[0.0f32; CLASSES]; batch];
    for (step, &want) in want_losses.iter().enumerate() {
        let range = step * batch..(step + 1) * batch;
        let loss = model.sgd_step(&train_x[range.clone()], &train_y[range], lr, &mut scratch);
        assert!(
            ((loss - want) / want).abs() <= 1e-5,
            "step {step}: loss {loss} vs TensorFlow's {want}"
        );
    }

    let mut worst_w = 0.0f32;
    for (k, values) in g["W_final"].as_array().unwrap().iter().enumerate() {
        for (j, want) in floats(values).into_iter().enumerate() {
            worst_w = worst_w.max((model.weights[j][k] - want).abs());
        }
    }
    assert!(worst_w <= 1e-6, "W_final off by {worst_w:e}");
    for (got, want) in model.bias.iter().zip(floats(&g["b_final"])) {
        assert!((got - want).abs() <= 1e-6, "b_final: {got} vs {want}");
    }

    let mut predictions = [0u8; 256];
    model.predict(&test_x, &mut predictions);
    let want: Vec<u8> = g["val_pred_first_256"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(predictions.as_slice(), want.as_slice());
}

/// The same eight steps through the fast path the trainer uses: raw pixels,
/// the resize folded into the weights, each batch cut into shards, for
/// several shard counts and every thread count up to each; every step's
/// loss is TensorFlow's within 1e-5, and the thread count changes no bit.
#[test]
fn folded_sharded_training_follows_the_same_trajectory() {
    use softreg::fashion_mnist::{Examples, Resized, PIXELS};
    use softreg::train::{Execution, Sgd, Trainer};
    use std::ops::ControlFlow;

    let g = golden("trajectory_tf.json");
    let image_bytes = fixture("train-2048-images-idx3-ubyte");
    let label_bytes = fixture("train-2048-labels-idx1-ubyte");
    let images = idx::parse_images(&image_bytes).unwrap();
    let images = images.as_arrays::<PIXELS>().unwrap();
    let labels = idx::parse_labels(&label_bytes).unwrap().labels;
    let batch = g["batch_size"].as_u64().unwrap() as usize;
    let lr = g["lr"].as_f64().unwrap() as f32;
    let order: Vec<u32> = (0..images.len() as u32).collect();

    let mut w0 = Box::new([[0.0f32; CLASSES]; 1024]);
    for (row, values) in w0.iter_mut().zip(g["W0"].as_array().unwrap()) {
        row.copy_from_slice(&floats(values));
    }
    let want_losses = floats(&g["losses"]);
    let want_mean = want_losses.iter().map(|&l| f64::from(l)).sum::<f64>() / 8.0;

    for shards in [1, 2, 4, 8] {
        let mut models = Vec::new();
        let mut threads = 1;
        while threads <= shards {
            let mut model = Box::new(SoftmaxRegression::<1024, CLASSES>::zeroed());
            model.set_weights_input_major(&w0);
            let execution = Execution {
                shards,
                threads,
                ..Execution::default()
            };
            let setting = format!("{shards} shards, {threads} threads, {}", execution.isa);
            let sgd = Sgd {
                batch_size: batch,
                lr,
            };
            let mut trainer = Trainer::<1024, Resized>::new(model, sgd, execution).unwrap();
            let mut losses = Vec::new();
            let data = Examples { images, labels };
            let mean_loss = trainer
                .train_epoch(data, &order, |step| {
                    losses.push(step.loss);
                    ControlFlow::Continue(())
                })
                .unwrap();
            assert_eq!(losses.len(), 8);
            for (step, (got, want)) in losses.iter().zip(&want_losses).enumerate() {
                assert!(
                    ((got - want) / want).abs() <= 1e-5,
                    "{setting}, step {step}: loss {got} vs TensorFlow's {want}"
                );
            }
            assert!(((mean_loss - want_mean) / want_mean).abs() <= 1e-5);
            let model = trainer.into_model();
            let mut worst_w = 0.0f32;
            for (k, values) in g["W_final"].as_array().unwrap().iter().enumerate() {
                for (j, want) in floats(values).into_iter().enumerate() {
                    worst_w = worst_w.max((model.weights[j][k] - want).abs());
                }
            }
            assert!(worst_w <= 1e-6, "{setting}: W_final off by {worst_w:e}");
            for (got, want) in model.bias.iter().zip(floats(&g["b_final"])) {
                assert!((got - want).abs() <= 1e-6, "b_final: {got} vs {want}");
            }
            models.push(model);
            threads *= 2;
        }
        // Bit-identical whatever the number of threads.
        for model in &models[1..] {
            assert_eq!(&models[0], model, "{shards} shards");
        }
    }
}

/// The 28x28 model (`--resize 28`, [`softreg::fashion_mnist::Native`]) has
/// no TensorFlow trajectory of its own, so the reference is the chapter's
/// step itself, [`SoftmaxRegression::sgd_step`], which the test above holds
/// to TensorFlow's: eight steps of it on the images scaled by 1/255, from the
/// first 784 rows of the trajectory's `W0`, against the trainer's fast path
/// (raw pixels, the 1/255 folded into the weights, sharded batches) for
/// several shard and thread counts. Then the validation figures and
/// predictions of both models on the 256 test images.
#[test]
fn the_28x28_model_follows_the_chapters_step_on_the_fast_path() {
    use softreg::fashion_mnist::{Examples, Native};
    use softreg::pixel_model::PixelModel;
    use softreg::train::{Execution, Sgd, Trainer};
    use std::ops::ControlFlow;

    let g = golden("trajectory_tf.json");
    let (image_bytes, label_bytes) = (
        fixture("train-2048-images-idx3-ubyte"),
        fixture("train-2048-labels-idx1-ubyte"),
    );
    let images = idx::parse_images(&image_bytes).unwrap();
    let images = images.as_arrays::<PIXELS>().unwrap();
    let labels = idx::parse_labels(&label_bytes).unwrap().labels;
    let (test_image_bytes, test_label_bytes) = (
        fixture("t10k-256-images-idx3-ubyte"),
        fixture("t10k-256-labels-idx1-ubyte"),
    );
    let test_images = idx::parse_images(&test_image_bytes).unwrap();
    let test_images = test_images.as_arrays::<PIXELS>().unwrap();
    let test_labels = idx::parse_labels(&test_label_bytes).unwrap().labels;
    let batch = g["batch_size"].as_u64().unwrap() as usize;
    let lr = g["lr"].as_f64().unwrap() as f32;
    let scaled = |images: &[[u8; PIXELS]]| -> Vec<[f32; PIXELS]> {
        images
            .iter()
            .map(|image| image.map(|p| f32::from(p) / 255.0))
            .collect()
    };
    let (x, test_x) = (scaled(images), scaled(test_images));

    let mut w0 = Box::new([[0.0f32; CLASSES]; PIXELS]);
    for (row, values) in w0.iter_mut().zip(g["W0"].as_array().unwrap()) {
        row.copy_from_slice(&floats(values));
    }
    let mut start = Box::new(SoftmaxRegression::<PIXELS, CLASSES>::zeroed());
    start.set_weights_input_major(&w0);

    // The chapter's step, plainly.
    let mut want = start.clone();
    let mut scratch = vec![[0.0f32; CLASSES]; batch];
    let want_losses: Vec<f32> = (0..images.len() / batch)
        .map(|step| {
            let range = step * batch..(step + 1) * batch;
            want.sgd_step(&x[range.clone()], &labels[range], lr, &mut scratch)
        })
        .collect();
    assert_eq!(want_losses.len(), 8);
    assert!(want_losses[7] < want_losses[0], "{want_losses:?}");
    let want_eval = want.evaluate(&test_x, test_labels);
    let mut want_predictions = [0u8; 256];
    want.predict(&test_x, &mut want_predictions);

    let order: Vec<u32> = (0..images.len() as u32).collect();
    let data = Examples { images, labels };
    let test = Examples {
        images: test_images,
        labels: test_labels,
    };
    for (shards, threads) in [(1, 1), (2, 1), (2, 2), (8, 4)] {
        let setting = format!("{shards} shards, {threads} threads");
        let execution = Execution {
            shards,
            threads,
            ..Execution::default()
        };
        let sgd = Sgd {
            batch_size: batch,
            lr,
        };
        let mut trainer = Trainer::<PIXELS, Native>::new(start.clone(), sgd, execution).unwrap();
        let mut losses = Vec::new();
        trainer
            .train_epoch(data, &order, |step| {
                losses.push(step.loss);
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(losses.len(), 8, "{setting}");
        for (step, (got, want)) in losses.iter().zip(&want_losses).enumerate() {
            assert!(
                ((got - want) / want).abs() <= 1e-5,
                "{setting}, step {step}: loss {got} vs the chapter's step's {want}"
            );
        }
        let model = trainer.model();
        let worst = model
            .weights
            .iter()
            .flatten()
            .chain(&model.bias)
            .zip(want.weights.iter().flatten().chain(&want.bias))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-6, "{setting}: parameters off by {worst:e}");

        let mut pixels = Box::new(PixelModel::zeroed());
        pixels.fold_from::<PIXELS, Native>(model);
        let eval = trainer.evaluate(test);
        assert_eq!(eval.confusion, want_eval.confusion, "{setting}");
        assert!(((eval.loss_sum - want_eval.loss_sum) / want_eval.loss_sum).abs() < 1e-5);
        let mut predictions = [0u8; 256];
        pixels.predict(test_images, &mut predictions);
        assert_eq!(predictions, want_predictions, "{setting}");
    }
}
