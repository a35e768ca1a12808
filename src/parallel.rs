//! Training and evaluation on one or more threads (feature `std`).
//!
//! Each batch is split into [`SHARDS`] shards ([`crate::train`]); with two
//! threads the calling thread computes shard 0 while a worker computes shard
//! 1, and the calling thread then sums them in order and updates the model.
//! The arithmetic is the same whatever the thread count, so so is the model.

use crate::fashion_mnist::{CLASSES, PIXELS};
use crate::model::{Evaluation, SoftmaxRegression};
use crate::train::{
    apply_step, evaluate_rows, shard_gradient, shard_range, Examples, Folded, InputMap,
    ShardGradient, ShardScratch, SHARDS,
};
use std::boxed::Box;
use std::sync::{Barrier, Mutex, RwLock};
use std::vec;
use std::vec::Vec;

/// Per-shard buffers, allocated once per epoch.
struct ShardBuffers {
    images: Vec<[u8; PIXELS]>,
    labels: Vec<u8>,
    logits: Vec<[f32; CLASSES]>,
}

impl ShardBuffers {
    fn new(rows: usize) -> Self {
        ShardBuffers {
            images: vec![[0; PIXELS]; rows],
            labels: vec![0; rows],
            logits: vec![[0.0; CLASSES]; rows],
        }
    }

    fn scratch(&mut self) -> ShardScratch<'_> {
        ShardScratch {
            images: &mut self.images,
            labels: &mut self.labels,
            logits: &mut self.logits,
        }
    }
}

/// How [`train_epoch`] steps.
#[derive(Clone, Copy, Debug)]
pub struct Sgd {
    /// Examples per minibatch (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Learning rate: `p <- p - lr * grad`.
    pub lr: f32,
    /// Threads to use: 1, or 2 for a worker per shard. More are capped at
    /// [`SHARDS`].
    pub threads: usize,
}

/// One epoch of minibatch SGD over examples `order[0], order[1], ...` of
/// `data`. Calls `on_batch` after each batch. Returns the mean training loss
/// over the epoch's examples, each taken before its batch's update.
///
/// # Panics
/// If the batch size or thread count is 0, or `order` names an example that
/// does not exist or whose label is not a class.
pub fn train_epoch<const IN: usize, M: InputMap<IN>>(
    model: &mut SoftmaxRegression<IN, CLASSES>,
    data: Examples<'_>,
    order: &[u32],
    sgd: Sgd,
    mut on_batch: impl FnMut(),
) -> f64 {
    let Sgd {
        batch_size,
        lr,
        threads,
    } = sgd;
    assert!(batch_size > 0 && threads > 0);
    let shard_rows = batch_size.div_ceil(SHARDS);
    let batches = order.chunks(batch_size);
    let mut folded = Box::new(Folded::zeroed());
    let mut grads: Vec<ShardGradient> = (0..SHARDS).map(|_| ShardGradient::zeroed()).collect();
    let mut loss_sum = 0.0f64;

    if threads == 1 {
        let mut buffers = ShardBuffers::new(shard_rows);
        for batch in batches {
            folded.fold_from::<IN, M>(model);
            for (shard, grad) in grads.iter_mut().enumerate() {
                let rows = &batch[shard_range(batch.len(), shard)];
                shard_gradient(&folded, data, rows, &mut buffers.scratch(), grad);
            }
            loss_sum += f64::from(apply_step::<IN, M>(model, &mut grads, batch.len(), lr));
            on_batch();
        }
        return loss_sum / order.len() as f64;
    }

    // Two threads: the worker owns shard 1 of every batch.
    let folded = RwLock::new(folded);
    let worker_grad = Mutex::new(ShardGradient::zeroed());
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut buffers = ShardBuffers::new(shard_rows);
            for batch in order.chunks(batch_size) {
                barrier.wait(); // the weights are folded
                {
                    let folded = folded.read().unwrap();
                    let mut grad = worker_grad.lock().unwrap();
                    let rows = &batch[shard_range(batch.len(), 1)];
                    shard_gradient(&folded, data, rows, &mut buffers.scratch(), &mut grad);
                }
                barrier.wait(); // shard 1 is done
            }
        });
        let mut buffers = ShardBuffers::new(shard_rows);
        for batch in batches {
            folded.write().unwrap().fold_from::<IN, M>(model);
            barrier.wait();
            {
                let folded = folded.read().unwrap();
                let rows = &batch[shard_range(batch.len(), 0)];
                shard_gradient(&folded, data, rows, &mut buffers.scratch(), &mut grads[0]);
            }
            barrier.wait();
            grads[1].clone_from(&worker_grad.lock().unwrap());
            loss_sum += f64::from(apply_step::<IN, M>(model, &mut grads, batch.len(), lr));
            on_batch();
        }
    });
    loss_sum / order.len() as f64
}

/// Loss and accuracy of `model` on all of `(images, labels)`, on `threads`
/// threads. The examples are split into [`SHARDS`] fixed ranges whose
/// results are merged in order, so the figures do not depend on `threads`.
pub fn evaluate<const IN: usize, M: InputMap<IN>>(
    model: &SoftmaxRegression<IN, CLASSES>,
    data: Examples<'_>,
    threads: usize,
) -> Evaluation {
    let mut folded = Box::new(Folded::zeroed());
    folded.fold_from::<IN, M>(model);
    let folded = &*folded;
    let n = data.images.len();
    let mut parts = [Evaluation::default(); SHARDS];
    if threads <= 1 {
        for (shard, part) in parts.iter_mut().enumerate() {
            *part = evaluate_rows(folded, data, shard_range(n, shard));
        }
    } else {
        std::thread::scope(|scope| {
            let (first, rest) = parts.split_first_mut().unwrap();
            let handles: Vec<_> = rest
                .iter_mut()
                .enumerate()
                .map(|(i, part)| {
                    scope.spawn(move || {
                        *part = evaluate_rows(folded, data, shard_range(n, i + 1));
                    })
                })
                .collect();
            *first = evaluate_rows(folded, data, shard_range(n, 0));
            for handle in handles {
                handle.join().unwrap();
            }
        });
    }
    let mut total = Evaluation::default();
    for part in parts {
        total.merge(part);
    }
    total
}
