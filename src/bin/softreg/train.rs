//! The chapter's training loop: minibatch SGD over shuffled examples, with a
//! full validation pass after every epoch.
//!
//! Generic over the number of inputs `IN` (1024 for 32x32 images, 784 for the
//! native 28x28), so the kernels see fixed-size rows and the caller picks the
//! instantiation once, from `--resize`.

use indicatif::{ProgressBar, ProgressStyle};
use softreg::fashion_mnist::{CLASSES, PIXELS};
use softreg::{Rng, SoftmaxRegression};
use std::time::Instant;

/// The model this application trains: `IN` inputs, ten classes.
pub type Model<const IN: usize> = SoftmaxRegression<IN, CLASSES>;

/// Turns one 28x28 `u8` image into the model's `IN` inputs (scaled to
/// `[0, 1]`, and resized when `IN` is 1024).
pub type Convert<const IN: usize> = fn(&[u8; PIXELS], &mut [f32; IN]);

/// Hyperparameters of one run.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Passes over the training set.
    pub epochs: u32,
    /// Examples per SGD step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f32,
    /// Standard deviation of the initial weights.
    pub sigma: f32,
    /// PRNG seed for the initial weights and the shuffles.
    pub seed: u64,
}

/// A dataset converted to model inputs: one `[f32; IN]` row per example.
pub struct Inputs<const IN: usize> {
    /// The inputs.
    pub x: Vec<[f32; IN]>,
    /// The labels.
    pub y: Vec<u8>,
}

impl<const IN: usize> Inputs<IN> {
    /// Converts every image once, up front, so that the epochs only do
    /// arithmetic (60,000 resizes per epoch would cost more than SGD does).
    pub fn convert(images: &[[u8; PIXELS]], labels: &[u8], convert: Convert<IN>) -> Self {
        let mut x = vec![[0.0f32; IN]; images.len()];
        for (row, image) in x.iter_mut().zip(images) {
            convert(image, row);
        }
        Inputs {
            x,
            y: labels.to_vec(),
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.x.len()
    }
}

/// What one epoch measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Mean training loss over the epoch, each batch's loss taken before its
    /// update (as the chapter's progress board plots it).
    pub train_loss: f64,
    /// Exact mean loss over the whole validation set after the epoch.
    pub val_loss: f64,
    /// Exact validation accuracy after the epoch: correct / total.
    pub val_acc: f64,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
}

/// A trained model and its history.
pub struct Trained<const IN: usize> {
    /// The parameters, boxed: 40 KB is too much to move around on the stack.
    pub model: Box<Model<IN>>,
    /// One entry per epoch.
    pub history: Vec<EpochMetrics>,
    /// Wall time of the epoch loop, validation included, data loading not.
    pub seconds: f64,
}

/// Trains a fresh model on `train`, validating on `val` after each epoch and
/// reporting each epoch to `on_epoch` (with the progress bar suspended).
///
/// Deterministic: the same `config` and data give bit-identical results.
pub fn train<const IN: usize>(
    config: &Config,
    train: &Inputs<IN>,
    val: &Inputs<IN>,
    mut on_epoch: impl FnMut(&EpochMetrics),
) -> Trained<IN> {
    let mut rng = Rng::seed_from_u64(config.seed);
    // Allocate zeroed and initialise in place: `Model::new` would build the
    // 40 KB struct on the stack first.
    let mut model = Box::new(Model::<IN>::zeroed());
    model.init_normal(&mut rng, config.sigma);

    let n = train.len();
    let batch = config.batch_size.min(n).max(1);
    // We shuffle indices and gather each batch into one contiguous buffer:
    // the kernels want `&[[f32; IN]]`, and copying 1 MB per batch costs far
    // less than the matrix products that follow.
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut xb = vec![[0.0f32; IN]; batch];
    let mut yb = vec![0u8; batch];
    let mut scratch = vec![[0.0f32; CLASSES]; batch];

    let batches = n.div_ceil(batch) as u64;
    let bar = ProgressBar::new(batches).with_style(
        ProgressStyle::with_template("epoch {prefix} {bar:40} {pos}/{len} batches, loss {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let mut history = Vec::with_capacity(config.epochs as usize);
    let start = Instant::now();
    for epoch in 1..=config.epochs {
        let epoch_start = Instant::now();
        bar.reset();
        bar.set_prefix(epoch.to_string());
        // Shuffle the examples themselves each epoch, not just the order of
        // fixed batches (which is what d2l's loader does).
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0f64;
        for chunk in order.chunks(batch) {
            let m = chunk.len();
            for (k, &i) in chunk.iter().enumerate() {
                xb[k] = train.x[i as usize];
                yb[k] = train.y[i as usize];
            }
            let loss = model.sgd_step(&xb[..m], &yb[..m], config.lr, &mut scratch);
            loss_sum += f64::from(loss) * m as f64;
            bar.set_message(format!("{loss:.4}"));
            bar.inc(1);
        }
        let eval = model.evaluate(&val.x, &val.y);
        let metrics = EpochMetrics {
            epoch,
            train_loss: loss_sum / n as f64,
            val_loss: eval.mean_loss(),
            val_acc: eval.accuracy(),
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        bar.suspend(|| on_epoch(&metrics));
        history.push(metrics);
    }
    bar.finish_and_clear();
    Trained {
        model,
        history,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// The predicted class of each row of `x`.
pub fn predict_all<const IN: usize>(model: &Model<IN>, x: &[[f32; IN]]) -> Vec<u8> {
    const CHUNK: usize = 256;
    let mut scratch = vec![[0.0f32; CLASSES]; CHUNK];
    let mut classes = vec![0u8; x.len()];
    for (xs, cs) in x.chunks(CHUNK).zip(classes.chunks_mut(CHUNK)) {
        model.predict(xs, &mut scratch, cs);
    }
    classes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy problem the model can learn: class = brightest quarter of rows.
    fn toy(n: usize, seed: u64) -> Inputs<16> {
        let mut rng = Rng::seed_from_u64(seed);
        let mut x = vec![[0.0f32; 16]; n];
        let mut y = vec![0u8; n];
        for (row, label) in x.iter_mut().zip(&mut y) {
            *label = rng.below(4) as u8;
            for (k, v) in row.iter_mut().enumerate() {
                *v = rng.next_f32() * 0.3
                    + if k / 4 == usize::from(*label) {
                        0.7
                    } else {
                        0.0
                    };
            }
        }
        Inputs { x, y }
    }

    #[test]
    fn learns_and_is_deterministic() {
        let (tr, va) = (toy(300, 1), toy(100, 2));
        let config = Config {
            epochs: 3,
            batch_size: 32,
            lr: 0.5,
            sigma: 0.01,
            seed: 7,
        };
        let a = train(&config, &tr, &va, |_| {});
        let b = train(&config, &tr, &va, |_| {});
        assert_eq!(a.history.len(), 3);
        assert_eq!(a.model, b.model);
        for (x, y) in a.history.iter().zip(&b.history) {
            assert_eq!(
                (x.train_loss, x.val_loss, x.val_acc),
                (y.train_loss, y.val_loss, y.val_acc)
            );
        }
        let last = a.history[2];
        assert!(last.val_acc > 0.9, "{last:?}");
        assert!(last.train_loss < a.history[0].train_loss);
        assert_eq!(predict_all(&a.model, &va.x).len(), 100);
    }

    #[test]
    fn a_batch_larger_than_the_data_is_one_batch() {
        let (tr, va) = (toy(10, 3), toy(10, 4));
        let config = Config {
            epochs: 1,
            batch_size: 1000,
            lr: 0.1,
            sigma: 0.01,
            seed: 0,
        };
        let t = train(&config, &tr, &va, |_| {});
        assert!(t.history[0].train_loss.is_finite());
    }
}
