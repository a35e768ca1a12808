//! The chapter's training loop: minibatch SGD over shuffled examples, with a
//! full validation pass after every epoch.
//!
//! The arithmetic lives in the core ([`softreg::parallel`]): it trains on the
//! raw `u8` pixels of the memory-mapped files with the resize folded into the
//! weights, and splits every batch into a fixed number of shards, so one or
//! two threads give bit-identical models. This module owns the loop around
//! it: seeding, shuffling, timing, the progress bar and the per-epoch report.

use indicatif::{ProgressBar, ProgressStyle};
use softreg::fashion_mnist::{CLASSES, PIXELS};
use softreg::parallel::{self, Sgd};
use softreg::train::{Examples, InputMap};
use softreg::{Rng, SoftmaxRegression};
use std::time::Instant;

/// The model this application trains: `IN` inputs, ten classes.
pub type Model<const IN: usize> = SoftmaxRegression<IN, CLASSES>;

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
    /// Threads; the results do not depend on it.
    pub threads: usize,
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
/// `M` maps the 28x28 pixels to the model's `IN` inputs.
///
/// Deterministic: the same `config` and data give bit-identical results,
/// whatever `config.threads`.
pub fn train<const IN: usize, M: InputMap<IN>>(
    config: &Config,
    train: Examples<'_>,
    val: Examples<'_>,
    mut on_epoch: impl FnMut(&EpochMetrics),
) -> Trained<IN> {
    let mut rng = Rng::seed_from_u64(config.seed);
    // Allocate zeroed and initialise in place: `Model::new` would build the
    // 40 KB struct on the stack first.
    let mut model = Box::new(Model::<IN>::zeroed());
    model.init_normal(&mut rng, config.sigma);

    let n = train.images.len();
    let sgd = Sgd {
        batch_size: config.batch_size.clamp(1, n.max(1)),
        lr: config.lr,
        threads: config.threads.max(1),
    };
    // The core reads examples in the order we give, so shuffling a list of
    // indices shuffles the examples themselves each epoch, not just the
    // order of fixed batches (which is what d2l's loader does).
    let mut order: Vec<u32> = (0..n as u32).collect();

    let batches = n.div_ceil(sgd.batch_size) as u64;
    let bar = ProgressBar::new(batches).with_style(
        ProgressStyle::with_template("epoch {prefix} {bar:40} {pos}/{len} batches")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let mut history = Vec::with_capacity(config.epochs as usize);
    let start = Instant::now();
    for epoch in 1..=config.epochs {
        let epoch_start = Instant::now();
        bar.reset();
        bar.set_prefix(epoch.to_string());
        rng.shuffle(&mut order);
        let train_loss =
            parallel::train_epoch::<IN, M>(&mut model, train, &order, sgd, || bar.inc(1));
        let eval = parallel::evaluate::<IN, M>(&model, val, sgd.threads);
        let metrics = EpochMetrics {
            epoch,
            train_loss,
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

/// The predicted class of each image, mapping the pixels to inputs with
/// `M` a chunk at a time (no full converted copy of the data).
pub fn predict_all<const IN: usize, M: InputMap<IN>>(
    model: &Model<IN>,
    images: &[[u8; PIXELS]],
) -> Vec<u8> {
    const CHUNK: usize = 256;
    // 1 MiB of inputs: on the heap, not the stack, whatever clippy thinks.
    #[allow(clippy::useless_vec)]
    let mut x = vec![[0.0f32; IN]; CHUNK];
    let mut scratch = vec![[0.0f32; CLASSES]; CHUNK];
    let mut classes = vec![0u8; images.len()];
    for (chunk, out) in images.chunks(CHUNK).zip(classes.chunks_mut(CHUNK)) {
        let x = &mut x[..chunk.len()];
        for (row, image) in x.iter_mut().zip(chunk) {
            M::map(image, row);
        }
        model.predict(x, &mut scratch, out);
    }
    classes
}

#[cfg(test)]
mod tests {
    use super::*;
    use softreg::train::{Native, Resized};

    /// A toy problem the model can learn: class = which quarter of the rows
    /// is bright.
    fn toy(n: usize, seed: u64) -> (Vec<[u8; PIXELS]>, Vec<u8>) {
        let mut rng = Rng::seed_from_u64(seed);
        let mut images = vec![[0u8; PIXELS]; n];
        let mut labels = vec![0u8; n];
        for (image, label) in images.iter_mut().zip(&mut labels) {
            *label = rng.below(4) as u8;
            for (k, v) in image.iter_mut().enumerate() {
                let bright = k / (PIXELS / 4) == usize::from(*label);
                *v = (rng.below(80) + if bright { 170 } else { 0 }) as u8;
            }
        }
        (images, labels)
    }

    fn examples<'a>(data: &'a (Vec<[u8; PIXELS]>, Vec<u8>)) -> Examples<'a> {
        Examples {
            images: &data.0,
            labels: &data.1,
        }
    }

    fn config(threads: usize) -> Config {
        Config {
            epochs: 3,
            batch_size: 32,
            lr: 0.5,
            sigma: 0.01,
            seed: 7,
            threads,
        }
    }

    #[test]
    fn learns_and_is_deterministic_across_threads() {
        let (tr, va) = (toy(300, 1), toy(100, 2));
        let a = train::<1024, Resized>(&config(1), examples(&tr), examples(&va), |_| {});
        let b = train::<1024, Resized>(&config(2), examples(&tr), examples(&va), |_| {});
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
        let predicted = predict_all::<1024, Resized>(&a.model, &va.0);
        let correct = predicted.iter().zip(&va.1).filter(|(p, y)| p == y).count();
        assert_eq!(correct as f64 / 100.0, last.val_acc);
    }

    #[test]
    fn a_batch_larger_than_the_data_is_one_batch() {
        let (tr, va) = (toy(10, 3), toy(10, 4));
        let config = Config {
            batch_size: 1000,
            ..config(1)
        };
        let t = train::<784, Native>(&config, examples(&tr), examples(&va), |_| {});
        assert!(t.history[0].train_loss.is_finite());
    }
}
