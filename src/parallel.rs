//! Training and evaluation on one or more threads (feature `std`).
//!
//! Each batch is split into [`SHARDS`] shards ([`crate::train`]); with two
//! threads the calling thread computes shard 0 while a worker computes shard
//! 1, and then each sums them in order and takes the step on its own copy.
//! The arithmetic is the same whatever the thread count, so so is the model.

use crate::fashion_mnist::CLASSES;
use crate::model::{Evaluation, SoftmaxRegression};
use crate::train::{
    evaluate_rows, shard_gradient, shard_range, Examples, Folded, FoldedModel, InputMap,
    ShardGradient, ShardScratch, SHARDS,
};
use std::boxed::Box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};
use std::vec;
use std::vec::Vec;

/// A barrier that spins for a short while before sleeping. The threads meet
/// once a batch, 2,350 times in a 10-epoch run, and a batch lasts about
/// 60 us: `std::sync::Barrier` always puts the waiter to sleep, and the
/// wake-up (tens of microseconds here) ate the whole gain of the second
/// thread. Spinning alone is no better on a busy machine: when the other
/// thread has lost its core to another process, spinning burns this core
/// until the scheduler gives it back (measured: 10 epochs on 2 threads went
/// from 0.2 s to 1-2 s beside one busy process). So the waiter spins for
/// [`SPIN_FOR`], then sleeps on a condition variable.
struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

/// How long a waiter spins before it sleeps: a few times the usual gap
/// between two threads' arrivals (a step's two halves differ by well under
/// 10 us), and short next to a scheduler time slice (milliseconds).
const SPIN_FOR: Duration = Duration::from_micros(50);

impl SpinBarrier {
    fn new(threads: usize) -> Self {
        SpinBarrier {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::SeqCst);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            // Last to arrive: reset for the next use, then release the rest.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::SeqCst);
            // A sleeper counts itself before it checks the generation, and
            // we bump the generation before we look at the count (both
            // SeqCst), so either it sees the new generation and does not
            // sleep, or we see it and wake it. Taking the lock first means
            // it is inside `wait`, not between its check and its sleep.
            if self.sleepers.load(Ordering::SeqCst) > 0 {
                let _guard = self.lock.lock().unwrap();
                self.wake.notify_all();
            }
            return;
        }
        let start = Instant::now();
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            spins += 1;
            if spins % 64 == 0 && start.elapsed() > SPIN_FOR {
                let mut guard = self.lock.lock().unwrap();
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                while self.generation.load(Ordering::SeqCst) == generation {
                    guard = self.wake.wait(guard).unwrap();
                }
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            std::hint::spin_loop();
        }
    }
}

/// Per-shard buffers, allocated once per epoch.
struct ShardBuffers {
    labels: Vec<u8>,
    logits: Vec<[f32; CLASSES]>,
}

impl ShardBuffers {
    fn new(rows: usize) -> Self {
        ShardBuffers {
            labels: vec![0; rows],
            logits: vec![[0.0; CLASSES]; rows],
        }
    }

    fn scratch(&mut self) -> ShardScratch<'_> {
        ShardScratch {
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
    // Checked here, before any thread starts: a panic inside one thread
    // would leave the other waiting at the barrier for ever.
    for &i in order {
        let label = data.labels.get(i as usize).copied();
        assert!(
            (i as usize) < data.images.len() && label.is_some_and(|l| usize::from(l) < CLASSES),
            "example {i} does not exist or its label is not a class"
        );
    }
    let shard_rows = batch_size.div_ceil(SHARDS);
    let batches = order.len().div_ceil(batch_size);
    // Rows of shard `shard` of batch `b`; none past the last batch.
    let shard_of = |b: usize, shard: usize| -> &[u32] {
        let start = (b * batch_size).min(order.len());
        let batch = &order[start..(start + batch_size).min(order.len())];
        &batch[shard_range(batch.len(), shard)]
    };
    let mut state = Box::new(FoldedModel::zeroed());
    state.fold_from::<IN, M>(model);
    let mut loss_sum = 0.0f64;

    if threads == 1 {
        let mut grads: Vec<ShardGradient> = (0..SHARDS).map(|_| ShardGradient::zeroed()).collect();
        let mut buffers = ShardBuffers::new(shard_rows);
        for b in 0..batches {
            for (shard, grad) in grads.iter_mut().enumerate() {
                let next = match shard + 1 {
                    SHARDS => shard_of(b + 1, 0),
                    next_shard => shard_of(b, next_shard),
                };
                let rows = shard_of(b, shard);
                let scratch = &mut buffers.scratch();
                shard_gradient(&state.folded, data, rows, next, scratch, grad);
            }
            let n = (0..SHARDS).map(|shard| shard_of(b, shard).len()).sum();
            let shards: [&ShardGradient; SHARDS] = core::array::from_fn(|s| &grads[s]);
            loss_sum += f64::from(state.step::<IN, M>(&shards, n, lr));
            on_batch();
        }
        state.unfold_into::<IN, M>(model);
        return loss_sum / order.len() as f64;
    }

    // Two threads, one shard of every batch each. Each thread keeps its own
    // copy of the model in training and takes every step itself, from both
    // shards' gradients summed in shard order: the two copies stay equal to
    // the bit, and no thread ever writes memory the other is reading, so
    // one barrier a batch suffices. (With one shared copy, stepped by one
    // thread while the other waited, a step took 9.4 us instead of 4.5 us
    // now, measured in place: the weights it wrote sat in the other core's
    // cache.) Each shard's gradient alternates between two buffers, so a
    // fast thread can compute batch b + 1 while the other still reads
    // batch b's.
    let grads: [[RwLock<ShardGradient>; 2]; SHARDS] =
        core::array::from_fn(|_| core::array::from_fn(|_| RwLock::new(ShardGradient::zeroed())));
    let barrier = SpinBarrier::new(2);
    // One thread's share of the epoch; returns its summed losses.
    let run = |shard: usize, state: &mut FoldedModel, on_batch: &mut dyn FnMut()| {
        let mut buffers = ShardBuffers::new(shard_rows);
        let mut loss_sum = 0.0f64;
        for b in 0..batches {
            let parity = b % 2;
            {
                let mut grad = grads[shard][parity].write().unwrap();
                let (rows, next) = (shard_of(b, shard), shard_of(b + 1, shard));
                let scratch = &mut buffers.scratch();
                shard_gradient(&state.folded, data, rows, next, scratch, &mut grad);
            }
            barrier.wait(); // both shards of batch b are done
            let held: [_; SHARDS] = core::array::from_fn(|s| grads[s][parity].read().unwrap());
            let shards: [&ShardGradient; SHARDS] = core::array::from_fn(|s| &*held[s]);
            let n = (0..SHARDS).map(|s| shard_of(b, s).len()).sum();
            loss_sum += f64::from(state.step::<IN, M>(&shards, n, lr));
            on_batch();
        }
        loss_sum
    };
    let mut worker_state = state.clone();
    std::thread::scope(|scope| {
        scope.spawn(|| run(1, &mut worker_state, &mut || {}));
        loss_sum = run(0, &mut state, &mut on_batch);
    });
    state.unfold_into::<IN, M>(model);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Native;

    /// A bad example panics up front on two threads too, instead of
    /// stopping one thread and leaving the other at the barrier.
    #[test]
    #[should_panic(expected = "label is not a class")]
    fn bad_examples_panic_before_the_threads_start() {
        let images = vec![[0u8; crate::fashion_mnist::PIXELS]; 4];
        let labels = [0, 1, 10, 2];
        let data = Examples {
            images: &images,
            labels: &labels,
        };
        let mut model = Box::new(SoftmaxRegression::<784, CLASSES>::zeroed());
        let sgd = Sgd {
            batch_size: 2,
            lr: 0.1,
            threads: 2,
        };
        train_epoch::<784, Native>(&mut model, data, &[0, 1, 2, 3], sgd, || {});
    }

    /// Every thread sees every other's increment after each barrier and none
    /// of the next round's before it, spinning (2 threads) and sleeping
    /// (8 threads on a 2-core machine wait longer than `SPIN_FOR`).
    #[test]
    fn barrier_separates_rounds() {
        for threads in [2, 3, 8] {
            let barrier = SpinBarrier::new(threads);
            let counter = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        for round in 0..500 {
                            counter.fetch_add(1, Ordering::Relaxed);
                            barrier.wait();
                            assert_eq!(counter.load(Ordering::Relaxed), threads * (round + 1));
                            barrier.wait();
                        }
                    });
                }
            });
        }
    }
}
