//! Training: the chapter's minibatch SGD, run on raw pixels (feature `std`).
//!
//! [`fit`] is the chapter's training loop: initialise `W ~ N(0, sigma^2)`,
//! then for every epoch shuffle the examples, take one SGD step per
//! minibatch and evaluate on the validation set. [`Trainer`] takes the
//! steps. One batch, top to bottom, is `batch_step`:
//!
//! 1. The batch's rows are picked by index from the images as they lie (the
//!    memory-mapped file), never copied, and cut into [`Execution::shards`]
//!    equal shards. For each shard (`shard_gradient`): the logits
//!    `X W + b` on the folded weights ([`matmul::logits`]), then the fused
//!    softmax + cross-entropy, which leaves `G = softmax - onehot(y)` in place
//!    of the logits ([`cross_entropy::softmax_cross_entropy_grad`]; or, for
//!    the chapter's first exercise, the naive softmax of [`Softmax::Naive`]), then
//!    `grad_W = X^T G` ([`matmul::weight_gradient`]) and `grad_b` = the
//!    column sums of `G` ([`sum::column_sums`]).
//! 2. The shards' gradients are summed in a fixed tree order (`tree_sum`).
//! 3. The step `p <- p - lr * grad / n` (`InTraining::step`).
//!
//! The weights the kernels read are the model's with the resize and the
//! 1/255 pixel scale folded in ([`PixelModel`]): `W_eff = R^T W / 255`, 784
//! per class. A step moves the model's weights by `c R g` (`c = -lr / n`,
//! `g` the gradient with respect to `W_eff`) and so `W_eff` by `c R^T R g`,
//! which `resize::gram_add` applies in place in two three-term passes; the
//! steps' `c g` are summed and unfolded into the 32x32 model once an epoch.
//! It is the chapter's update rounded in another order, and
//! `tests/golden.rs` checks it against TensorFlow's own trajectory.
//!
//! **Shards and threads.** Each shard's gradient is computed on its own and
//! the shards are summed in the same tree order whoever computed them, so a
//! model is the same to the bit for any number of threads from 1 to the
//! shard count. With several threads, each keeps its own copy of the model
//! in training and takes every step itself from all shards' gradients: the
//! copies stay equal, the threads meet once a batch, and no thread writes
//! memory another reads during a step. The shard count is part of the
//! numerics (a different tree rounds differently); the thread count and the
//! SIMD level's choice of thread are not. The threads are started once for
//! a whole [`fit`] (a [`Crew`], see [`Trainer::with_crew`]) and take every
//! epoch and every evaluation of it in turn.

use crate::barrier::{PoisonOnPanic, SpinBarrier};
use crate::fashion_mnist::{Examples, InputMap, CLASSES, PIXELS};
use crate::kernels::{cross_entropy, matmul, naive_softmax, sum, Picked, Rows, RowsMut};
use crate::model::{Evaluation, SoftmaxRegression};
use crate::pixel_model::{evaluation_parts, PixelModel};
use crate::resize::GramScratch;
use crate::simd::{Isa, Kernel, Simd, Unavailable};
use crate::Rng;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{ControlFlow, Range};
use std::boxed::Box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::thread;
use std::vec;
use std::vec::Vec;

/// The chapter's `batch_size` and `lr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Examples per step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Learning rate: `p <- p - lr * grad`.
    pub lr: f32,
}

impl Default for Sgd {
    /// The chapter's: batch size 256, learning rate 0.1.
    fn default() -> Self {
        Sgd {
            batch_size: 256,
            lr: 0.1,
        }
    }
}

/// Which softmax the training loss is computed with: the fused, stable one
/// (the default), or the chapter's naive `exp(X) / sum(exp(X))` followed by
/// `-log` of the true class's probability (its first exercise). The two give
/// the same steps while the logits are small; the naive one turns NaN or
/// infinite once a logit passes about 88 (`exp` overflows) or a row's all
/// fall below about -104 (they underflow), and training then stops with
/// [`Stop::Diverged`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Softmax {
    /// `logsumexp(z) - z_y` with the row maximum subtracted first
    /// ([`cross_entropy::softmax_cross_entropy_grad`]), many rows at once.
    #[default]
    Stable,
    /// The chapter's `exp(z) / sum exp(z)`, then `-log y_hat[y]`
    /// ([`naive_softmax::naive_softmax_cross_entropy_grad`]), a row at a
    /// time.
    Naive,
}

/// The shard count the crate uses unless told otherwise.
pub const DEFAULT_SHARDS: usize = 2;

/// The most shards a batch can be cut into.
pub const MAX_SHARDS: usize = 64;

/// How the arithmetic of each step is laid out on the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Execution {
    /// Parts each batch is cut into, whose gradients are summed in a fixed
    /// tree order: a power of two up to [`MAX_SHARDS`]. Part of the
    /// numerics: another shard count rounds differently.
    pub shards: usize,
    /// Threads: a power of two up to `shards`. The results do not depend
    /// on it.
    pub threads: usize,
    /// The SIMD level the kernels run at. Levels round differently (see
    /// [`crate::simd`]).
    pub isa: Isa,
}

impl Default for Execution {
    /// [`DEFAULT_SHARDS`] shards on one thread, at [`Isa::current`].
    fn default() -> Self {
        Execution {
            shards: DEFAULT_SHARDS,
            threads: 1,
            isa: Isa::current(),
        }
    }
}

impl Execution {
    /// The most threads that can share `shards` shards when `available`
    /// cores are free: the largest power of two up to both.
    pub fn threads_for(shards: usize, available: usize) -> usize {
        let most = shards.min(available).max(1);
        1 << most.ilog2()
    }
}

/// Settings [`Trainer::new`] refuses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SettingsError {
    /// The batch size is 0.
    BatchSize,
    /// The learning rate is not a finite number.
    LearningRate(f32),
    /// The shard count is not a power of two in `1..=MAX_SHARDS`.
    Shards(usize),
    /// The thread count is not a power of two in `1..=shards`.
    Threads {
        /// Threads asked for.
        threads: usize,
        /// The shard count.
        shards: usize,
    },
    /// This CPU cannot run the SIMD level.
    Isa(Unavailable),
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::BatchSize => f.write_str("the batch size must be at least 1"),
            SettingsError::LearningRate(lr) => {
                write!(f, "the learning rate must be a finite number, not {lr}")
            }
            SettingsError::Shards(n) => write!(
                f,
                "the shard count must be a power of two from 1 to {MAX_SHARDS}, not {n}"
            ),
            SettingsError::Threads { threads, shards } => write!(
                f,
                "the thread count must be a power of two from 1 to the shard count \
                 ({shards}), not {threads}"
            ),
            SettingsError::Isa(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for SettingsError {}

/// Why training stopped before the end of an epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// A batch's loss was NaN or infinite: the step size is too large for
    /// the data, or the arithmetic overflowed (e.g. a naive softmax). The
    /// model is left as it was before the epoch.
    Diverged {
        /// 0-based index of the batch in its epoch.
        batch: usize,
        /// Its mean loss.
        loss: f32,
    },
    /// The step callback asked to stop after this batch.
    Requested {
        /// 0-based index of the last batch taken.
        batch: usize,
    },
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Diverged { batch, loss } => write!(
                f,
                "the loss of batch {} was {loss}: training diverged",
                batch + 1
            ),
            Stop::Requested { batch } => write!(f, "stopped after batch {}", batch + 1),
        }
    }
}

/// What the step callback of [`Trainer::train_epoch`] hears after each
/// step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// 0-based index of the batch in the epoch.
    pub batch: usize,
    /// Batches in the epoch.
    pub batches: usize,
    /// The batch's mean loss, taken before its update.
    pub loss: f32,
}

/// A shard's contribution to a step: its summed loss and the gradient of
/// that sum with respect to the folded weights and the bias.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub struct ShardGradient {
    /// Gradient with respect to [`PixelModel::weights`].
    pub weights: [[f32; PIXELS]; CLASSES],
    /// Gradient with respect to the bias.
    pub bias: [f32; CLASSES],
    /// Summed cross-entropy over the shard's examples.
    pub loss_sum: f32,
}

impl ShardGradient {
    /// All zero.
    pub const fn zeroed() -> Self {
        ShardGradient {
            weights: [[0.0; PIXELS]; CLASSES],
            bias: [0.0; CLASSES],
            loss_sum: 0.0,
        }
    }
}

/// A model in training: the folded weights every step updates in place,
/// and the part of the model's own update not yet applied to it.
///
/// A step changes the model's weights by `W += c R g` (`c = -lr / n`, `g`
/// the batch's gradient with respect to the folded weights, `R` the input
/// map with its 1/255), and so the folded weights by `W_eff += c R^T R g`.
/// The second is cheaper than unfolding `g` and folding all of `W` again,
/// and the first can wait: the steps' `c g` are summed on the 784-pixel grid
/// and unfolded once an epoch ([`InTraining::unfold_into`]). Folding anew
/// from the model at every epoch keeps the rounding of the in-place updates
/// from building up.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
struct InTraining {
    /// What the kernels run with.
    pixels: PixelModel,
    /// `sum c g` over the steps since the last fold, not yet in the model.
    pending: [[f32; PIXELS]; CLASSES],
}

impl InTraining {
    fn zeroed() -> Self {
        InTraining {
            pixels: PixelModel::zeroed(),
            pending: [[0.0; PIXELS]; CLASSES],
        }
    }

    /// Starts from `model`: folds its weights, with nothing pending.
    fn fold_from<const IN: usize, M: InputMap<IN>>(
        &mut self,
        model: &SoftmaxRegression<IN, CLASSES>,
    ) {
        self.pixels.fold_from::<IN, M>(model);
        for row in self.pending.iter_mut() {
            row.fill(0.0);
        }
    }

    /// Sums the shards' gradients in tree order and takes the SGD step
    /// `p <- p - lr * grad / n` on the folded weights and the bias; returns
    /// the summed loss. The shards are only read, so several copies of a
    /// model can each take the same step from the same shards.
    #[inline(always)]
    fn step<S: Simd, const IN: usize, M: InputMap<IN>>(
        &mut self,
        s: S,
        shards: &[&ShardGradient],
        n: usize,
        lr: f32,
    ) -> f32 {
        let c = -lr / n as f32;
        // The kernels' weights are W_eff / 255, so they move by
        // c R^T R g / 255^2: one 1/255 from each of R^T and R.
        let gram_scale = c / (255.0 * 255.0);
        let mut g = [0.0f32; PIXELS];
        let mut scratch = GramScratch::zeroed();
        for (j, (w_eff, pending)) in self
            .pixels
            .weights
            .iter_mut()
            .zip(self.pending.iter_mut())
            .enumerate()
        {
            tree_sum(shards, |shard| &shard.weights[j], &mut g);
            M::gram_add(s, &g, gram_scale, w_eff, &mut scratch);
            for (p, g) in pending.iter_mut().zip(&g) {
                *p += c * g;
            }
        }
        let mut bias = [0.0f32; CLASSES];
        tree_sum(shards, |shard| &shard.bias, &mut bias);
        for (b, g) in self.pixels.bias.iter_mut().zip(&bias) {
            *b += c * g;
        }
        let mut loss = [0.0f32; 1];
        tree_sum(
            shards,
            |shard| core::array::from_ref(&shard.loss_sum),
            &mut loss,
        );
        loss[0]
    }

    /// Brings `model` up to date: unfolds the pending update into its
    /// weights (`W += R sum c g`, the 1/255 included) and takes the bias.
    /// Leaves nothing pending; the folded weights stay as they are.
    fn unfold_into<const IN: usize, M: InputMap<IN>>(
        &mut self,
        model: &mut SoftmaxRegression<IN, CLASSES>,
    ) {
        for (w, pending) in model.weights.iter_mut().zip(self.pending.iter_mut()) {
            M::unfold_add(pending, 1.0 / 255.0, w);
            pending.fill(0.0);
        }
        model.bias = self.pixels.bias;
    }
}

/// `out = ` the sum of `part(p)` over `parts`, added as a balanced binary
/// tree in order: `(p0 + p1) + (p2 + p3)` for four. Any set of whole subtrees
/// can be summed first, by another thread, without changing a bit.
///
/// One or two parts, the usual case, are summed inline, so that the adds
/// are vectorised at the level of the kernel this is inlined into; more go
/// through a recursive helper.
///
/// # Panics
/// If `parts` is empty, or the parts are shorter than `out`.
#[inline(always)]
fn tree_sum<P, const N: usize>(parts: &[P], part: impl Fn(&P) -> &[f32; N], out: &mut [f32; N]) {
    match parts {
        [one] => out.copy_from_slice(part(one)),
        [a, b] => {
            for ((o, x), y) in out.iter_mut().zip(part(a)).zip(part(b)) {
                *o = x + y;
            }
        }
        _ => tree_sum_recursive(parts, &part, out),
    }
}

/// [`tree_sum`] of any number of parts: more than two as the sum of the
/// two halves' sums.
fn tree_sum_recursive<P, const N: usize>(
    parts: &[P],
    part: &dyn Fn(&P) -> &[f32; N],
    out: &mut [f32; N],
) {
    match parts {
        [] => panic!("nothing to sum"),
        [_] | [_, _] => tree_sum(parts, part, out),
        _ => {
            let (left, right) = parts.split_at(parts.len() / 2);
            tree_sum_recursive(left, part, out);
            let mut right_sum = [0.0f32; N];
            tree_sum_recursive(right, part, &mut right_sum);
            for (o, r) in out.iter_mut().zip(&right_sum) {
                *o += r;
            }
        }
    }
}

/// [`tree_sum`] over whole shard gradients.
#[inline(always)]
fn tree_sum_shards(parts: &[&ShardGradient], out: &mut ShardGradient) {
    for j in 0..CLASSES {
        tree_sum(parts, |shard| &shard.weights[j], &mut out.weights[j]);
    }
    tree_sum(parts, |shard| &shard.bias, &mut out.bias);
    let mut loss = [0.0f32; 1];
    tree_sum(
        parts,
        |shard| core::array::from_ref(&shard.loss_sum),
        &mut loss,
    );
    out.loss_sum = loss[0];
}

/// Forward and backward pass of one shard: `out` gets the summed loss of
/// the examples `rows` of the plan's data, with the plan's softmax, and the
/// gradient of that sum.
///
/// `next` names the rows this thread works on next. Shuffled rows lie
/// anywhere in the 47 MB of training images, beyond the caches, and the
/// hardware does not guess them, so the next rows are requested from memory
/// while this shard is computed: a share after each [`FORWARD_CHUNK`] rows
/// of the forward pass, so that the requests overlap the arithmetic instead
/// of stalling it in a burst, and they have the gradient pass too to arrive.
#[inline(always)]
fn shard_gradient<S: Simd>(
    s: S,
    plan: &EpochPlan<'_>,
    pixels: &PixelModel,
    rows: &[u32],
    next: &[u32],
    scratch: &mut Scratch,
    out: &mut ShardGradient,
) {
    let (data, softmax) = (plan.data, plan.softmax);
    let n = rows.len();
    let y = &mut scratch.labels[..n];
    let g = &mut scratch.logits[..n];
    for (label, &row) in y.iter_mut().zip(rows) {
        *label = data.labels[row as usize];
    }
    let picked = |rows| Picked {
        from: data.images,
        rows,
    };
    let (w, b) = (&pixels.weights, &pixels.bias);
    let converts = converts_rows_once(S::ISA);
    let x = &mut scratch.converted[..if converts { n } else { 0 }];
    let next_per_chunk = next.len().div_ceil(n.div_ceil(FORWARD_CHUNK).max(1));
    let mut next_chunks = next.chunks(next_per_chunk.max(1));
    // The 1/255 pixel scale lives in the folded weights.
    for (c, (rows, g)) in rows
        .chunks(FORWARD_CHUNK)
        .zip(g.chunks_mut(FORWARD_CHUNK))
        .enumerate()
    {
        if converts {
            // The forward pass's first class block widens the rows, once,
            // for the other block and the gradient pass.
            let x = &mut x[c * FORWARD_CHUNK..][..rows.len()];
            matmul::logits_widening_with(s, &picked(rows), x, w, b, 1.0, g);
        } else {
            // Both passes read the rows where they lie, widening pixels.
            matmul::logits_with(s, &picked(rows), w, b, 1.0, g);
        }
        if let Some(next) = next_chunks.next() {
            picked(next).prefetch_all();
        }
    }
    out.loss_sum = loss_and_gradient(s, softmax, g, y);
    let weights = &mut out.weights;
    if converts {
        matmul::gradient_with::<S, f32, _, PIXELS, CLASSES, false>(s, &*x, g, 1.0, weights);
    } else {
        matmul::gradient_with::<S, u8, _, PIXELS, CLASSES, false>(
            s,
            &picked(rows),
            g,
            1.0,
            weights,
        );
    }
    out.bias = sum::column_sums_with(s, g);
}

/// Replaces the logits `g` by `G = softmax - onehot(y)` with `softmax`'s
/// kernel and returns the summed loss.
///
/// A function rather than a closure in [`shard_gradient`]: a closure does
/// not take on the target features of the `#[target_feature]` entry point
/// it is inlined into, so every SIMD operation inside it would become a
/// call.
#[inline(always)]
fn loss_and_gradient<S: Simd>(s: S, softmax: Softmax, g: &mut [[f32; CLASSES]], y: &[u8]) -> f32 {
    match softmax {
        Softmax::Stable => cross_entropy::softmax_cross_entropy_grad_with(s, g, y),
        Softmax::Naive => naive_softmax::naive_softmax_cross_entropy_grad_with(s, g, y),
    }
}

/// Rows of a forward pass between two requests for the next rows: a
/// multiple of every level's row block. The forward kernel keeps one class
/// block's weights in L1 while the chunk's rows pass them, so a longer
/// chunk reloads `W` less often; four chunks a shard still spread the
/// requests (`docs/performance.md` has the sizes tried).
const FORWARD_CHUNK: usize = 32;

/// Whether a shard's pixels are converted to `f32` once, by the forward
/// pass's first class block into a block the rest of both GEMMs then read,
/// rather than widened where they lie by each GEMM (the forward pass widens
/// each pixel once per class block, the gradient once).
/// Where the widening takes the FMAs' ports (AVX2 on AMD Zen) converting
/// once wins; with AVX-512's wider conversions reading in place did
/// (`docs/performance.md`). Either way the arithmetic, and so the result,
/// is the same.
const fn converts_rows_once(isa: Isa) -> bool {
    !matches!(isa, Isa::Avx512)
}

/// One image's pixels as `f32`, cache-line aligned so that no vector load
/// straddles two lines (a row is 49 lines).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct ConvertedRow([f32; PIXELS]);

impl Rows<f32, PIXELS> for [ConvertedRow] {
    #[inline(always)]
    fn count(&self) -> usize {
        self.len()
    }

    #[inline(always)]
    fn row(&self, i: usize) -> &[f32; PIXELS] {
        &self[i].0
    }
}

impl RowsMut<f32, PIXELS> for [ConvertedRow] {
    #[inline(always)]
    fn rows_mut<const R: usize>(&mut self, first: usize) -> [&mut [f32; PIXELS]; R] {
        let block: &mut [ConvertedRow; R] = (&mut self[first..first + R]).try_into().unwrap();
        block.each_mut().map(|row| &mut row.0)
    }
}

/// A shard's labels, gathered, its logits (which become `G`), and its
/// pixels converted to `f32` where the level wants them so.
struct Scratch {
    labels: Vec<u8>,
    logits: Vec<[f32; CLASSES]>,
    converted: Vec<ConvertedRow>,
}

/// Which rows each shard of each batch of an epoch takes.
#[derive(Clone, Copy, Debug)]
struct Layout<'a> {
    order: &'a [u32],
    batch_size: usize,
    shards: usize,
    threads: usize,
}

impl<'a> Layout<'a> {
    fn batches(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    fn batch(&self, b: usize) -> &'a [u32] {
        let start = (b * self.batch_size).min(self.order.len());
        &self.order[start..(start + self.batch_size).min(self.order.len())]
    }

    /// Rows of shard `shard` of batch `b`: as equal as possible, the first
    /// shards one longer when the batch does not divide; none past the last
    /// batch.
    fn rows(&self, b: usize, shard: usize) -> &'a [u32] {
        let batch = self.batch(b);
        let (base, extra) = (batch.len() / self.shards, batch.len() % self.shards);
        let start = shard * base + shard.min(extra);
        &batch[start..start + base + usize::from(shard < extra)]
    }

    /// The shards thread `thread` computes: a whole subtree of the sum.
    fn shards_of(&self, thread: usize) -> Range<usize> {
        let per_thread = self.shards / self.threads;
        thread * per_thread..(thread + 1) * per_thread
    }

    /// The rows `thread` computes after shard `shard` of batch `b`.
    fn next_rows(&self, b: usize, shard: usize, thread: usize) -> &'a [u32] {
        let mine = self.shards_of(thread);
        if shard + 1 < mine.end {
            self.rows(b, shard + 1)
        } else {
            self.rows(b + 1, mine.start)
        }
    }

    fn max_shard_rows(&self) -> usize {
        self.batch_size.min(self.order.len()).div_ceil(self.shards)
    }
}

/// One thread's part of training: its own copy of the model in training
/// and its scratch space.
struct Replica {
    model: InTraining,
    /// Gradients of the shards this thread computes, before they are summed.
    shards: Vec<ShardGradient>,
    scratch: Scratch,
}

impl Replica {
    fn new() -> Box<Self> {
        Box::new(Replica {
            model: InTraining::zeroed(),
            shards: Vec::new(),
            scratch: Scratch {
                labels: Vec::new(),
                logits: Vec::new(),
                converted: Vec::new(),
            },
        })
    }

    /// Starts this thread's copy of the model in training from `folded`,
    /// with nothing pending.
    fn start_from(&mut self, folded: &PixelModel) {
        self.model.pixels.clone_from(folded);
        for row in self.model.pending.iter_mut() {
            row.fill(0.0);
        }
    }

    /// Sizes the buffers for `layout`'s batches and this thread's shards.
    fn prepare(&mut self, layout: &Layout<'_>, isa: Isa) {
        let rows = layout.max_shard_rows();
        self.scratch.labels.resize(rows, 0);
        self.scratch.logits.resize(rows, [0.0; CLASSES]);
        let converted = if converts_rows_once(isa) { rows } else { 0 };
        self.scratch
            .converted
            .resize(converted, ConvertedRow([0.0; PIXELS]));
        let mine = layout.shards / layout.threads;
        self.shards.resize_with(mine, ShardGradient::zeroed);
    }
}

/// What the threads of a [`Crew`] share at every batch: one buffer per thread for the sum of
/// its shards, twice over (batch parity), so that a fast thread can write
/// batch `b + 1`'s while a slow one still reads batch `b`'s; the barrier;
/// and the batch after which the first thread asked everyone to stop
/// (`usize::MAX` while nobody has). It names a batch, not just "stop", so
/// that a thread still on the batch it was set in cannot take it for its
/// own.
struct Meeting {
    sums: [Vec<RwLock<ShardGradient>>; 2],
    barrier: SpinBarrier,
    stop_after: AtomicUsize,
}

/// What every batch of an epoch shares: the examples, the order they come
/// in, cut into batches and shards, and the learning rate.
#[derive(Clone, Copy)]
struct EpochPlan<'a> {
    data: Examples<'a>,
    layout: Layout<'a>,
    lr: f32,
    softmax: Softmax,
}

/// The gradients of thread `thread`'s shards of batch `b`, one into each of
/// `outs` (as many as the thread has shards).
#[inline(always)]
fn shard_gradients<S: Simd>(
    s: S,
    plan: &EpochPlan<'_>,
    pixels: &PixelModel,
    b: usize,
    thread: usize,
    scratch: &mut Scratch,
    outs: &mut [ShardGradient],
) {
    let layout = &plan.layout;
    for (shard, out) in layout.shards_of(thread).zip(outs) {
        let (rows, next) = (layout.rows(b, shard), layout.next_rows(b, shard, thread));
        shard_gradient(s, plan, pixels, rows, next, scratch, out);
    }
}

/// One batch on one thread, top to bottom: the thread's shards' gradients,
/// their sum with every other thread's, and the step. Returns the batch's
/// summed loss, or `None` when another thread asked to stop.
#[inline(always)]
fn batch_step<S: Simd, const IN: usize, M: InputMap<IN>>(
    s: S,
    replica: &mut Replica,
    plan: &EpochPlan<'_>,
    b: usize,
    thread: usize,
    meeting: Option<&Meeting>,
) -> Option<f32> {
    let EpochPlan { layout, lr, .. } = *plan;
    let layout = &layout;
    let n = layout.batch(b).len();
    let Replica {
        model,
        shards,
        scratch,
    } = replica;
    let Some(meeting) = meeting else {
        // One thread: it computes every shard and sums them itself.
        shard_gradients(s, plan, &model.pixels, b, thread, scratch, shards);
        let parts: Vec<&ShardGradient> = shards.iter().collect();
        return Some(model.step::<S, IN, M>(s, &parts, n, lr));
    };
    {
        let mut sum = meeting.sums[b % 2][thread].write().unwrap();
        if layout.shards_of(thread).len() == 1 {
            // The sum of one shard is that shard: computed in place, not
            // copied there.
            let sum = core::slice::from_mut(&mut *sum);
            shard_gradients(s, plan, &model.pixels, b, thread, scratch, sum);
        } else {
            shard_gradients(s, plan, &model.pixels, b, thread, scratch, shards);
            let parts: Vec<&ShardGradient> = shards.iter().collect();
            tree_sum_shards(&parts, &mut sum);
        }
    }
    meeting.barrier.wait(); // every thread's sum of batch `b` is written
    if meeting.stop_after.load(Ordering::Acquire) < b {
        return None;
    }
    let held: Vec<_> = meeting.sums[b % 2]
        .iter()
        .map(|sum| sum.read().unwrap())
        .collect();
    let parts: Vec<&ShardGradient> = held.iter().map(|sum| &**sum).collect();
    Some(model.step::<S, IN, M>(s, &parts, n, lr))
}

/// One thread's share of an epoch, compiled per SIMD level: every batch,
/// with `on_step` heard after each (only the first thread's counts).
struct ThreadShare<'a, const IN: usize, M, F> {
    replica: &'a mut Replica,
    plan: EpochPlan<'a>,
    thread: usize,
    meeting: Option<&'a Meeting>,
    on_step: F,
    map: PhantomData<M>,
}

impl<const IN: usize, M: InputMap<IN>, F: FnMut(StepReport) -> ControlFlow<()>> Kernel
    for ThreadShare<'_, IN, M, F>
{
    /// The summed loss of the epoch, or why it stopped.
    type Output = Result<f64, Stop>;

    #[inline(always)]
    fn run<S: Simd>(mut self, s: S) -> Result<f64, Stop> {
        let batches = self.plan.layout.batches();
        let mut loss_sum = 0.0f64;
        for b in 0..batches {
            let Some(batch_loss) =
                batch_step::<S, IN, M>(s, self.replica, &self.plan, b, self.thread, self.meeting)
            else {
                // The first thread stopped after the batch before this one.
                return Err(Stop::Requested { batch: b - 1 });
            };
            let loss = batch_loss / self.plan.layout.batch(b).len() as f32;
            if !loss.is_finite() {
                // Every thread computed the same sum, so every thread stops
                // here, and none waits for another.
                return Err(Stop::Diverged { batch: b, loss });
            }
            loss_sum += f64::from(batch_loss);
            let report = StepReport {
                batch: b,
                batches,
                loss,
            };
            if (self.on_step)(report).is_break() {
                if let Some(meeting) = self.meeting.filter(|_| b + 1 < batches) {
                    // The others are computing batch b + 1: tell them,
                    // then meet them once more so that none waits for ever.
                    meeting.stop_after.store(b, Ordering::Release);
                    meeting.barrier.wait();
                }
                return Err(Stop::Requested { batch: b });
            }
        }
        Ok(loss_sum)
    }
}

/// Work the caller of a [`Crew`] hands its other threads; every thread
/// takes its own part of it.
#[derive(Clone, Copy)]
enum Job<'d> {
    /// An epoch over [`Shared::order`], from [`Shared::folded`].
    Epoch(Examples<'d>),
    /// The evaluation of [`Shared::folded`] on these examples, each part
    /// into [`Shared::evaluations`].
    Evaluate(Examples<'d>),
    /// The crew's work is done: the threads end.
    Leave,
}

/// What a crew's threads share for as long as they live. The caller writes
/// the job, the order and the folded model only while the others wait at
/// the barrier for the next job (the locks make that safe, not slow: no one
/// else holds them then, or only for the last microseconds of a step).
struct Shared<'d> {
    job: Mutex<Job<'d>>,
    order: RwLock<Vec<u32>>,
    folded: RwLock<Box<PixelModel>>,
    /// One per part of the evaluation, merged in part order.
    evaluations: Mutex<Vec<Evaluation>>,
    meeting: Meeting,
    execution: Execution,
    sgd: Sgd,
    softmax: Softmax,
}

impl<'d> Shared<'d> {
    fn new(execution: Execution, sgd: Sgd, softmax: Softmax) -> Self {
        let threads = execution.threads;
        Shared {
            job: Mutex::new(Job::Leave),
            order: RwLock::new(Vec::new()),
            folded: RwLock::new(Box::new(PixelModel::zeroed())),
            evaluations: Mutex::new(Vec::new()),
            meeting: Meeting {
                sums: [0, 1].map(|_| {
                    (0..threads)
                        .map(|_| RwLock::new(ShardGradient::zeroed()))
                        .collect()
                }),
                barrier: SpinBarrier::new(threads),
                stop_after: AtomicUsize::new(usize::MAX),
            },
            execution,
            sgd,
            softmax,
        }
    }

    /// The meeting, when there is another thread to meet.
    fn meeting(&self) -> Option<&Meeting> {
        (self.execution.threads > 1).then_some(&self.meeting)
    }

    /// An epoch over `order` of `data`, cut into batches and shards.
    fn plan<'a>(&self, data: Examples<'a>, order: &'a [u32]) -> EpochPlan<'a> {
        EpochPlan {
            data,
            layout: Layout {
                order,
                batch_size: self.sgd.batch_size,
                shards: self.execution.shards,
                threads: self.execution.threads,
            },
            lr: self.sgd.lr,
            softmax: self.softmax,
        }
    }

    /// Thread `thread`'s parts of the evaluation of the folded model on
    /// `data`: parts `thread, thread + threads, ...`.
    fn evaluate_parts(&self, data: Examples<'_>, thread: usize) {
        let Execution { threads, isa, .. } = self.execution;
        let parts = evaluation_parts(data);
        let folded = self.folded.read().unwrap();
        let mine: Vec<_> = (thread..parts)
            .step_by(threads)
            .map(|p| (p, folded.evaluate_part(data, isa, p)))
            .collect();
        let mut evaluations = self.evaluations.lock().unwrap();
        for (p, evaluation) in mine {
            evaluations[p] = evaluation;
        }
    }
}

/// The life of a crew's thread `thread` (not the caller's): wait for a
/// job, take its part, and again, until told to leave.
fn crew_member<const IN: usize, M: InputMap<IN>>(
    shared: &Shared<'_>,
    replica: &mut Replica,
    thread: usize,
) {
    // Whether it panics in a job or between two, the others must not wait
    // for it at the barrier for ever.
    let _poison = PoisonOnPanic(&shared.meeting.barrier);
    let isa = shared.execution.isa;
    loop {
        shared.meeting.barrier.wait(); // the next job is posted
        let job = *shared.job.lock().unwrap();
        match job {
            Job::Epoch(data) => {
                let order = shared.order.read().unwrap();
                let plan = shared.plan(data, &order);
                replica.start_from(&shared.folded.read().unwrap());
                replica.prepare(&plan.layout, isa);
                // The first thread reports how the epoch ended; every
                // thread stops at the same batch.
                let _ = isa.dispatch(ThreadShare::<IN, M, _> {
                    replica,
                    plan,
                    thread,
                    meeting: Some(&shared.meeting),
                    on_step: |_| ControlFlow::Continue(()),
                    map: PhantomData,
                });
            }
            Job::Evaluate(data) => {
                shared.evaluate_parts(data, thread);
                shared.meeting.barrier.wait(); // every part is in
            }
            Job::Leave => return,
        }
    }
}

/// Takes the chapter's SGD steps on a model of `IN` inputs, whose pixels
/// reach it through the input map `M`, with the arithmetic laid out by an
/// [`Execution`].
pub struct Trainer<const IN: usize, M: InputMap<IN>> {
    model: Box<SoftmaxRegression<IN, CLASSES>>,
    sgd: Sgd,
    execution: Execution,
    softmax: Softmax,
    /// One per thread.
    replicas: Vec<Box<Replica>>,
    map: PhantomData<M>,
}

impl<const IN: usize, M: InputMap<IN>> Trainer<IN, M> {
    /// A trainer of `model`.
    ///
    /// # Errors
    /// If a setting is out of range (see [`SettingsError`]).
    pub fn new(
        model: Box<SoftmaxRegression<IN, CLASSES>>,
        sgd: Sgd,
        execution: Execution,
    ) -> Result<Self, SettingsError> {
        let Execution {
            shards,
            threads,
            isa,
        } = execution;
        if sgd.batch_size == 0 {
            return Err(SettingsError::BatchSize);
        }
        if !sgd.lr.is_finite() {
            return Err(SettingsError::LearningRate(sgd.lr));
        }
        if !shards.is_power_of_two() || shards > MAX_SHARDS {
            return Err(SettingsError::Shards(shards));
        }
        if !threads.is_power_of_two() || threads > shards {
            return Err(SettingsError::Threads { threads, shards });
        }
        isa.check().map_err(SettingsError::Isa)?;
        // Where threads cannot be started, one thread takes every shard:
        // the same arithmetic, so the same bits.
        let threads = if crate::CAN_SPAWN_THREADS { threads } else { 1 };
        let execution = Execution {
            threads,
            ..execution
        };
        Ok(Trainer {
            model,
            sgd,
            execution,
            softmax: Softmax::Stable,
            replicas: (0..threads).map(|_| Replica::new()).collect(),
            map: PhantomData,
        })
    }

    /// The model as of the last completed epoch.
    pub fn model(&self) -> &SoftmaxRegression<IN, CLASSES> {
        &self.model
    }

    /// The model, and the trainer is done.
    pub fn into_model(self) -> Box<SoftmaxRegression<IN, CLASSES>> {
        self.model
    }

    /// The trainer, its loss computed with `softmax` (the stable one unless
    /// told otherwise).
    pub fn with_softmax(mut self, softmax: Softmax) -> Self {
        self.softmax = softmax;
        self
    }

    /// The softmax of the loss.
    pub fn softmax(&self) -> Softmax {
        self.softmax
    }

    /// The SGD settings.
    pub fn sgd(&self) -> Sgd {
        self.sgd
    }

    /// How the work is laid out.
    pub fn execution(&self) -> Execution {
        self.execution
    }

    /// One epoch of minibatch SGD over examples `order[0], order[1], ...` of
    /// `data`, a batch of [`Sgd::batch_size`] at a time. `on_step` hears
    /// each step's loss and may stop the epoch. Returns the mean training
    /// loss over the epoch's examples, each taken before its batch's update.
    ///
    /// # Errors
    /// [`Stop::Diverged`] if a batch's loss is not finite, [`Stop::Requested`]
    /// if `on_step` broke off; either way the model stays as it was before
    /// the epoch.
    ///
    /// # Panics
    /// If `order` names an example that does not exist or whose label is not
    /// a class (checked before any thread starts).
    pub fn train_epoch(
        &mut self,
        data: Examples<'_>,
        order: &[u32],
        on_step: impl FnMut(StepReport) -> ControlFlow<()>,
    ) -> Result<f64, Stop> {
        self.with_crew(|crew| crew.train_epoch(data, order, on_step))
    }

    /// Loss and confusion counts of the model on `data`, on the trainer's
    /// threads and SIMD level.
    ///
    /// # Panics
    /// If a label is not a class.
    pub fn evaluate(&mut self, data: Examples<'_>) -> Evaluation {
        self.with_crew(|crew| crew.evaluate(data))
    }

    /// Runs `work` with the trainer's threads started once and kept for all
    /// of it: every epoch and evaluation `work` asks of the [`Crew`] runs on
    /// the same threads, which wait between jobs. [`fit`] trains this way;
    /// [`Trainer::train_epoch`] and [`Trainer::evaluate`] are one job each.
    ///
    /// Starting threads for every epoch costs little in itself, but the
    /// scheduler sometimes puts a new thread on the core of the thread that
    /// started it, and the two then take turns for most of an epoch until
    /// one is moved. Threads kept for the run can be misplaced only once,
    /// at its start.
    ///
    /// # Panics
    /// If `work` panics, or a thread does: the others are then stopped, and
    /// the panic goes on to the caller.
    pub fn with_crew<'d, R>(&mut self, work: impl FnOnce(&mut Crew<'_, 'd, IN, M>) -> R) -> R {
        let shared = Shared::new(self.execution, self.sgd, self.softmax);
        let (first, rest) = self.replicas.split_first_mut().unwrap();
        let mut crew = Crew {
            model: &mut self.model,
            first,
            shared: &shared,
            map: PhantomData,
        };
        if rest.is_empty() {
            return work(&mut crew);
        }
        thread::scope(|scope| {
            for (t, replica) in rest.iter_mut().enumerate() {
                let shared = &shared;
                scope.spawn(move || crew_member::<IN, M>(shared, replica, t + 1));
            }
            // If `work` panics, the others must not wait for the next job
            // (and the scope for them) for ever.
            let _poison = PoisonOnPanic(&shared.meeting.barrier);
            let result = work(&mut crew);
            crew.post(Job::Leave);
            result
        })
    }

    /// Starts an epoch to be taken one batch at a time on the calling
    /// thread, for a caller that wants control between steps (a page that
    /// must stay responsive, a debugger). The steps are the same as
    /// [`Trainer::train_epoch`]'s, bit for bit.
    ///
    /// # Panics
    /// As [`Trainer::train_epoch`].
    pub fn begin_epoch<'t>(&'t mut self, data: Examples<'t>, order: &'t [u32]) -> Epoch<'t, IN, M> {
        let layout = Layout {
            threads: 1,
            ..self.layout(data, order)
        };
        self.fold();
        self.replicas[0].prepare(&layout, self.execution.isa);
        let plan = EpochPlan {
            data,
            layout,
            lr: self.sgd.lr,
            softmax: self.softmax,
        };
        Epoch {
            trainer: self,
            plan,
            next: 0,
            loss_sum: 0.0,
        }
    }

    /// Takes up an epoch set aside with [`Epoch::suspend`], at the step it
    /// stopped before. `data` and `order` must be the ones the epoch began
    /// with; in between, nothing else may train with this trainer (another
    /// epoch would fold the model afresh and the suspended steps would be
    /// lost). For a caller that cannot keep an [`Epoch`] borrowed between
    /// calls, like a Web Worker that takes a few steps per message so that
    /// it can hear "pause"; the steps are the same, bit for bit.
    ///
    /// # Panics
    /// As [`Trainer::train_epoch`].
    pub fn resume_epoch<'t>(
        &'t mut self,
        data: Examples<'t>,
        order: &'t [u32],
        progress: EpochProgress,
    ) -> Epoch<'t, IN, M> {
        let layout = Layout {
            threads: 1,
            ..self.layout(data, order)
        };
        // Sizes the buffers only: the model in training is left as it is.
        self.replicas[0].prepare(&layout, self.execution.isa);
        let plan = EpochPlan {
            data,
            layout,
            lr: self.sgd.lr,
            softmax: self.softmax,
        };
        Epoch {
            trainer: self,
            plan,
            next: progress.next,
            loss_sum: progress.loss_sum,
        }
    }

    /// Checks `order` against `data` and cuts it into batches and shards.
    fn layout<'a>(&self, data: Examples<'_>, order: &'a [u32]) -> Layout<'a> {
        check_examples(data, order);
        Layout {
            order,
            batch_size: self.sgd.batch_size,
            shards: self.execution.shards,
            threads: self.execution.threads,
        }
    }

    /// Folds the model into the first thread's copy, the one that takes
    /// the steps of an epoch taken one batch at a time.
    fn fold(&mut self) {
        self.replicas[0].model.fold_from::<IN, M>(&self.model);
    }
}

/// A [`Trainer`] with its threads started, waiting for work: see
/// [`Trainer::with_crew`]. The calling thread is the crew's first; `'d` is
/// how long the examples it trains and evaluates on live (at least as long
/// as the crew).
pub struct Crew<'c, 'd, const IN: usize, M: InputMap<IN>> {
    model: &'c mut SoftmaxRegression<IN, CLASSES>,
    first: &'c mut Replica,
    shared: &'c Shared<'d>,
    map: PhantomData<M>,
}

impl<'d, const IN: usize, M: InputMap<IN>> Crew<'_, 'd, IN, M> {
    /// [`Trainer::train_epoch`], on the crew's threads.
    ///
    /// # Errors
    /// As [`Trainer::train_epoch`].
    ///
    /// # Panics
    /// As [`Trainer::train_epoch`].
    pub fn train_epoch(
        &mut self,
        data: Examples<'d>,
        order: &[u32],
        on_step: impl FnMut(StepReport) -> ControlFlow<()>,
    ) -> Result<f64, Stop> {
        check_examples(data, order);
        let shared = self.shared;
        let isa = shared.execution.isa;
        self.first.model.fold_from::<IN, M>(self.model);
        let shared_order;
        let order = match shared.meeting() {
            None => order,
            Some(meeting) => {
                (**shared.folded.write().unwrap()).clone_from(&self.first.model.pixels);
                let mut copy = shared.order.write().unwrap();
                copy.clear();
                copy.extend_from_slice(order);
                drop(copy);
                meeting.stop_after.store(usize::MAX, Ordering::Relaxed);
                self.post(Job::Epoch(data));
                shared_order = shared.order.read().unwrap();
                &shared_order[..]
            }
        };
        let plan = shared.plan(data, order);
        self.first.prepare(&plan.layout, isa);
        let loss_sum = isa.dispatch(ThreadShare::<IN, M, _> {
            replica: self.first,
            plan,
            thread: 0,
            meeting: shared.meeting(),
            on_step,
            map: PhantomData,
        })?;
        self.first.model.unfold_into::<IN, M>(self.model);
        Ok(loss_sum / order.len() as f64)
    }

    /// [`Trainer::evaluate`], on the crew's threads.
    ///
    /// # Panics
    /// As [`Trainer::evaluate`].
    pub fn evaluate(&mut self, data: Examples<'d>) -> Evaluation {
        let shared = self.shared;
        let Execution { threads, isa, .. } = shared.execution;
        let mut folded = shared.folded.write().unwrap();
        folded.fold_from::<IN, M>(self.model);
        let parts = evaluation_parts(data);
        if threads == 1 || parts < 2 {
            return folded.evaluate(data, isa, 1);
        }
        drop(folded);
        *shared.evaluations.lock().unwrap() = vec![Evaluation::default(); parts];
        self.post(Job::Evaluate(data));
        shared.evaluate_parts(data, 0);
        shared.meeting.barrier.wait(); // every part is in
        let mut total = Evaluation::default();
        for part in shared.evaluations.lock().unwrap().iter() {
            total.merge(part);
        }
        total
    }

    /// Hands the other threads `job`: they are waiting for it at the
    /// barrier.
    fn post(&self, job: Job<'d>) {
        *self.shared.job.lock().unwrap() = job;
        self.shared.meeting.barrier.wait();
    }
}

/// Checks that every example `order` names exists and has a class for its
/// label, before any thread takes a step.
fn check_examples(data: Examples<'_>, order: &[u32]) {
    for &i in order {
        let label = data.labels.get(i as usize).copied();
        assert!(
            (i as usize) < data.images.len() && label.is_some_and(|l| usize::from(l) < CLASSES),
            "example {i} does not exist or its label is not a class"
        );
    }
}

/// An epoch taken one batch at a time: see [`Trainer::begin_epoch`].
pub struct Epoch<'t, const IN: usize, M: InputMap<IN>> {
    trainer: &'t mut Trainer<IN, M>,
    plan: EpochPlan<'t>,
    next: usize,
    loss_sum: f64,
}

impl<const IN: usize, M: InputMap<IN>> Epoch<'_, IN, M> {
    /// Takes the next step; returns its report, or `None` when the epoch is
    /// over.
    ///
    /// # Errors
    /// [`Stop::Diverged`] if the batch's loss is not finite; the epoch is
    /// then over and the model stays as it was before it.
    pub fn step(&mut self) -> Option<Result<StepReport, Stop>> {
        let batches = self.plan.layout.batches();
        if self.next >= batches {
            return None;
        }
        let b = self.next;
        self.next += 1;
        let job = OneBatch::<IN, M> {
            replica: &mut self.trainer.replicas[0],
            plan: &self.plan,
            b,
            map: PhantomData,
        };
        let batch_loss = self.trainer.execution.isa.dispatch(job);
        let loss = batch_loss / self.plan.layout.batch(b).len() as f32;
        if !loss.is_finite() {
            self.next = batches;
            return Some(Err(Stop::Diverged { batch: b, loss }));
        }
        self.loss_sum += f64::from(batch_loss);
        Some(Ok(StepReport {
            batch: b,
            batches,
            loss,
        }))
    }

    /// Ends the epoch: the steps taken so far go into the model. Returns the
    /// mean training loss over the examples of those steps.
    pub fn finish(self) -> f64 {
        let layout = self.plan.layout;
        let examples: usize = (0..self.next.min(layout.batches()))
            .map(|b| layout.batch(b).len())
            .sum();
        let trainer = self.trainer;
        trainer.replicas[0]
            .model
            .unfold_into::<IN, M>(&mut trainer.model);
        self.loss_sum / examples as f64
    }
}

/// How far an epoch set aside by [`Epoch::suspend`] got: no borrows, so it
/// can be kept anywhere until [`Trainer::resume_epoch`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochProgress {
    /// The next batch to take.
    next: usize,
    /// Summed loss of the batches taken.
    loss_sum: f64,
}

impl EpochProgress {
    /// Batches taken so far.
    pub fn steps_taken(&self) -> usize {
        self.next
    }
}

impl<const IN: usize, M: InputMap<IN>> Epoch<'_, IN, M> {
    /// Sets the epoch aside, unfinished: the steps taken so far stay in the
    /// trainer's model in training (not yet in [`Trainer::model`]), and
    /// [`Trainer::resume_epoch`] goes on from here.
    pub fn suspend(self) -> EpochProgress {
        EpochProgress {
            next: self.next,
            loss_sum: self.loss_sum,
        }
    }

    /// The model in training as the kernels run it, current after every
    /// step: the weights folded for raw pixels, `W_eff = R^T W / 255` (784
    /// per class), and the bias. [`Trainer::model`] catches up with it only
    /// when the epoch finishes; this is what a live picture of the
    /// templates should show.
    pub fn in_training(&self) -> &PixelModel {
        &self.trainer.replicas[0].model.pixels
    }
}

/// One batch of [`Epoch::step`], compiled per SIMD level.
struct OneBatch<'a, const IN: usize, M> {
    replica: &'a mut Replica,
    plan: &'a EpochPlan<'a>,
    b: usize,
    map: PhantomData<M>,
}

impl<const IN: usize, M: InputMap<IN>> Kernel for OneBatch<'_, IN, M> {
    type Output = f32;
    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> f32 {
        batch_step::<S, IN, M>(s, self.replica, self.plan, self.b, 0, None)
            .expect("one thread never meets another")
    }
}

/// The chapter's recipe: epochs and the initialisation, with the SGD
/// settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    /// Passes over the training set.
    pub epochs: u32,
    /// Batch size and learning rate.
    pub sgd: Sgd,
    /// Standard deviation of the initial weights, `W ~ N(0, sigma^2)`.
    pub sigma: f32,
    /// Seeds the initial weights and the shuffle of every epoch.
    pub seed: u64,
}

impl Default for Recipe {
    /// The chapter's: 10 epochs, batch size 256, learning rate 0.1,
    /// sigma 0.01, and seed 0.
    fn default() -> Self {
        Recipe {
            epochs: 10,
            sgd: Sgd::default(),
            sigma: 0.01,
            seed: 0,
        }
    }
}

/// What one epoch measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Mean training loss over the epoch, each batch's loss taken before its
    /// update (as the chapter's progress board plots it).
    pub train_loss: f64,
    /// The whole validation set after the epoch.
    pub validation: Evaluation,
}

/// What [`fit`]'s callback hears.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A step of epoch `epoch` (1-based) was taken.
    Step {
        /// 1-based epoch number.
        epoch: u32,
        /// The step.
        step: StepReport,
    },
    /// An epoch and its validation are done.
    Epoch(&'a EpochReport),
}

/// A trained model and its history.
pub struct Fitted<const IN: usize> {
    /// The parameters.
    pub model: Box<SoftmaxRegression<IN, CLASSES>>,
    /// One entry per epoch.
    pub history: Vec<EpochReport>,
}

/// Why [`fit`] did not finish.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FitError {
    /// A setting was refused before training started.
    Settings(SettingsError),
    /// Training stopped in epoch `epoch` (1-based).
    Stopped {
        /// 1-based epoch number.
        epoch: u32,
        /// Where and why.
        stop: Stop,
    },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::Settings(e) => e.fmt(f),
            FitError::Stopped { epoch, stop } => write!(f, "epoch {epoch}: {stop}"),
        }
    }
}

impl core::error::Error for FitError {}

/// The chapter's training loop (d2l's `fit`): a fresh model
/// `W ~ N(0, sigma^2)`, `b = 0`, then for every epoch a new shuffle of the
/// examples, one SGD step per minibatch, and an evaluation on
/// `validation`. `on_event` hears every step and every epoch and may stop
/// the run. `M` maps the 28x28 pixels to the model's `IN` inputs.
///
/// Deterministic: the same recipe, shard count, SIMD level and data give
/// the same bits, whatever the thread count.
///
/// # Errors
/// [`FitError::Settings`] for settings out of range, [`FitError::Stopped`]
/// when a step diverged or `on_event` asked to stop.
///
/// # Panics
/// If a label is not a class.
pub fn fit<const IN: usize, M: InputMap<IN>>(
    recipe: &Recipe,
    execution: Execution,
    train: Examples<'_>,
    validation: Examples<'_>,
    on_event: impl FnMut(Event<'_>) -> ControlFlow<()>,
) -> Result<Fitted<IN>, FitError> {
    fit_with::<IN, M>(
        recipe,
        Softmax::Stable,
        execution,
        train,
        validation,
        on_event,
    )
}

/// [`fit`] with the loss computed by `softmax`: [`Softmax::Naive`] for the
/// chapter's first exercise. The validation loss is the stable one either
/// way (it measures the model, not the arithmetic that trained it).
///
/// # Errors
/// As [`fit`]; a naive softmax that overflows stops the run with
/// [`Stop::Diverged`].
///
/// # Panics
/// If a label is not a class.
pub fn fit_with<const IN: usize, M: InputMap<IN>>(
    recipe: &Recipe,
    softmax: Softmax,
    execution: Execution,
    train: Examples<'_>,
    validation: Examples<'_>,
    mut on_event: impl FnMut(Event<'_>) -> ControlFlow<()>,
) -> Result<Fitted<IN>, FitError> {
    let mut rng = Rng::seed_from_u64(recipe.seed);
    // Allocated zeroed and initialised in place: `SoftmaxRegression::new`
    // would build the 40 KB struct on the stack first.
    let mut model = Box::new(SoftmaxRegression::<IN, CLASSES>::zeroed());
    model.init_normal(&mut rng, recipe.sigma);
    let mut trainer = Trainer::<IN, M>::new(model, recipe.sgd, execution)
        .map_err(FitError::Settings)?
        .with_softmax(softmax);
    // Shuffling a list of indices shuffles the examples themselves each
    // epoch, not just the order of fixed batches (which d2l's loader does).
    let mut order: Vec<u32> = (0..train.len() as u32).collect();
    let mut history = Vec::with_capacity(recipe.epochs as usize);
    // One crew for the whole run: its threads are started once.
    trainer.with_crew(|crew| {
        for epoch in 1..=recipe.epochs {
            rng.shuffle(&mut order);
            let stopped = |stop| FitError::Stopped { epoch, stop };
            let train_loss = crew
                .train_epoch(train, &order, |step| on_event(Event::Step { epoch, step }))
                .map_err(stopped)?;
            let report = EpochReport {
                epoch,
                train_loss,
                validation: crew.evaluate(validation),
            };
            history.push(report);
            if on_event(Event::Epoch(&report)).is_break() {
                let batch = order.len().div_ceil(recipe.sgd.batch_size) - 1;
                return Err(stopped(Stop::Requested { batch }));
            }
        }
        Ok(())
    })?;
    Ok(Fitted {
        model: trainer.into_model(),
        history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fashion_mnist::{Native, Resized};
    use std::vec;

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

    fn examples(data: &(Vec<[u8; PIXELS]>, Vec<u8>)) -> Examples<'_> {
        Examples {
            images: &data.0,
            labels: &data.1,
        }
    }

    fn recipe() -> Recipe {
        Recipe {
            epochs: 3,
            sgd: Sgd {
                batch_size: 32,
                lr: 0.5,
            },
            sigma: 0.01,
            seed: 7,
        }
    }

    fn execution(shards: usize, threads: usize) -> Execution {
        Execution {
            shards,
            threads,
            isa: Isa::current(),
        }
    }

    fn quiet(_: Event<'_>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    #[test]
    fn learns_and_every_thread_count_gives_the_same_bits() {
        // More validation examples than one part, so that every thread
        // evaluates some.
        let (tr, va) = (toy(300, 1), toy(1100, 2));
        for shards in [1, 2, 4, 8] {
            let one = fit::<1024, Resized>(
                &recipe(),
                execution(shards, 1),
                examples(&tr),
                examples(&va),
                quiet,
            )
            .unwrap();
            let last = one.history[2];
            assert!(last.validation.accuracy() > 0.9, "{last:?}");
            assert!(last.train_loss < one.history[0].train_loss);
            let mut threads = 2;
            while threads <= shards {
                let many = fit::<1024, Resized>(
                    &recipe(),
                    execution(shards, threads),
                    examples(&tr),
                    examples(&va),
                    quiet,
                )
                .unwrap();
                assert_eq!(one.model, many.model, "{shards} shards, {threads} threads");
                assert_eq!(
                    one.history, many.history,
                    "{shards} shards, {threads} threads"
                );
                threads *= 2;
            }
        }
    }

    #[test]
    fn every_level_learns_and_agrees_within_rounding() {
        let (tr, va) = (toy(200, 3), toy(50, 4));
        let mut results = Vec::new();
        for isa in crate::simd::tests::available() {
            let execution = Execution {
                shards: 2,
                threads: 1,
                isa,
            };
            let fitted =
                fit::<784, Native>(&recipe(), execution, examples(&tr), examples(&va), quiet)
                    .unwrap();
            results.push((isa, fitted));
        }
        let (_, first) = &results[0];
        for (isa, fitted) in &results {
            assert!(fitted.history[2].validation.accuracy() > 0.9, "{isa}");
            for (a, b) in first
                .model
                .weights
                .iter()
                .flatten()
                .zip(fitted.model.weights.iter().flatten())
            {
                assert!((a - b).abs() < 1e-4, "{isa}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn step_by_step_is_the_same_epoch() {
        let tr = toy(130, 5);
        let model = Box::new(SoftmaxRegression::<1024, CLASSES>::new(
            &mut Rng::seed_from_u64(1),
            0.01,
        ));
        let sgd = Sgd {
            batch_size: 16,
            lr: 0.3,
        };
        let order: Vec<u32> = (0..130).rev().collect();
        let mut whole = Trainer::<1024, Resized>::new(model.clone(), sgd, execution(4, 2)).unwrap();
        let mut losses = Vec::new();
        let mean = whole
            .train_epoch(examples(&tr), &order, |step| {
                losses.push(step.loss);
                ControlFlow::Continue(())
            })
            .unwrap();
        // A trainer set for two threads: its steps still run on the caller's
        // thread alone, over all four shards.
        let mut stepped = Trainer::<1024, Resized>::new(model, sgd, execution(4, 2)).unwrap();
        let mut epoch = stepped.begin_epoch(examples(&tr), &order);
        let mut step_losses = Vec::new();
        while let Some(step) = epoch.step() {
            step_losses.push(step.unwrap().loss);
        }
        assert_eq!(epoch.finish(), mean);
        assert_eq!(losses, step_losses);
        assert_eq!(losses.len(), 9);
        assert_eq!(whole.model(), stepped.model());
    }

    #[test]
    fn a_suspended_epoch_resumes_where_it_stopped() {
        let (tr, va) = (toy(130, 5), toy(40, 6));
        let model = Box::new(SoftmaxRegression::<1024, CLASSES>::new(
            &mut Rng::seed_from_u64(2),
            0.01,
        ));
        let sgd = Sgd {
            batch_size: 16,
            lr: 0.3,
        };
        let order: Vec<u32> = (0..130).rev().collect();
        let mut whole = Trainer::<1024, Resized>::new(model.clone(), sgd, execution(2, 1)).unwrap();
        let mut losses = Vec::new();
        let mean = whole
            .train_epoch(examples(&tr), &order, |step| {
                losses.push(step.loss);
                ControlFlow::Continue(())
            })
            .unwrap();
        // Two steps at a time, with an evaluation (which must not disturb
        // the model in training) between the pieces.
        // Set for two threads: the pieces still run on this thread alone.
        let mut pieces =
            Trainer::<1024, Resized>::new(model.clone(), sgd, execution(2, 2)).unwrap();
        let mut step_losses = Vec::new();
        let mut progress = pieces.begin_epoch(examples(&tr), &order).suspend();
        let mean_in_pieces = loop {
            let mut epoch = pieces.resume_epoch(examples(&tr), &order, progress);
            let mut over = false;
            for _ in 0..2 {
                match epoch.step() {
                    Some(step) => step_losses.push(step.unwrap().loss),
                    None => over = true,
                }
            }
            if over {
                break epoch.finish();
            }
            progress = epoch.suspend();
            assert_eq!(progress.steps_taken(), step_losses.len());
            // Before the epoch finishes, the model is the one it began with.
            assert_eq!(pieces.model(), &*model);
            let _ = pieces.evaluate(examples(&va));
        };
        assert_eq!(losses, step_losses);
        assert_eq!(mean_in_pieces, mean);
        assert_eq!(whole.model(), pieces.model());
    }

    #[test]
    fn in_training_is_the_model_after_the_last_step() {
        let tr = toy(64, 5);
        let model = Box::new(SoftmaxRegression::<1024, CLASSES>::new(
            &mut Rng::seed_from_u64(3),
            0.01,
        ));
        let sgd = Sgd {
            batch_size: 16,
            lr: 0.3,
        };
        let order: Vec<u32> = (0..64).collect();
        let mut trainer = Trainer::<1024, Resized>::new(model, sgd, execution(2, 1)).unwrap();
        let mut epoch = trainer.begin_epoch(examples(&tr), &order);
        let before = epoch.in_training().clone();
        epoch.step().unwrap().unwrap();
        assert_ne!(epoch.in_training().weights, before.weights);
        while epoch.step().is_some() {}
        let last = epoch.in_training().clone();
        epoch.finish();
        // Folded afresh from the finished model, it is the same to rounding.
        let mut folded = PixelModel::zeroed();
        folded.fold_from::<1024, Resized>(trainer.model());
        for (a, b) in last
            .weights
            .iter()
            .flatten()
            .zip(folded.weights.iter().flatten())
        {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert_eq!(last.bias, folded.bias);
    }

    #[test]
    fn a_diverging_rate_stops_at_the_first_bad_batch_on_any_thread_count() {
        let (tr, va) = (toy(200, 6), toy(20, 7));
        for threads in [1, 2, 4] {
            let recipe = Recipe {
                sgd: Sgd {
                    batch_size: 20,
                    lr: 3e38,
                },
                ..recipe()
            };
            let err = fit::<784, Native>(
                &recipe,
                execution(4, threads),
                examples(&tr),
                examples(&va),
                quiet,
            )
            .err()
            .unwrap();
            let FitError::Stopped {
                epoch: 1,
                stop: Stop::Diverged { batch, loss },
            } = err
            else {
                panic!("{err:?}");
            };
            assert!(batch >= 1 && !loss.is_finite(), "{threads}: {err:?}");
        }
    }

    #[test]
    fn the_naive_softmax_takes_the_same_steps_until_it_overflows() {
        let (tr, va) = (toy(300, 10), toy(100, 11));
        let run = |softmax, lr| {
            let recipe = Recipe {
                sgd: Sgd { batch_size: 32, lr },
                ..recipe()
            };
            fit_with::<784, Native>(
                &recipe,
                softmax,
                execution(2, 1),
                examples(&tr),
                examples(&va),
                quiet,
            )
        };
        // The chapter's small logits: the same model within rounding.
        let stable = run(Softmax::Stable, 0.5).unwrap();
        let naive = run(Softmax::Naive, 0.5).unwrap();
        assert!(naive.history[2].validation.accuracy() > 0.9);
        for (a, b) in stable
            .model
            .weights
            .iter()
            .flatten()
            .zip(naive.model.weights.iter().flatten())
        {
            assert!((a - b).abs() <= 1e-5 + 1e-3 * a.abs(), "{a} vs {b}");
        }
        // Steps large enough for logits in the thousands: the stable loss
        // stays finite, the naive one is NaN from the first batch on whose
        // logits pass 88.
        assert!(run(Softmax::Stable, 1000.0).is_ok());
        let err = run(Softmax::Naive, 1000.0).err().unwrap();
        assert!(
            matches!(
                err,
                FitError::Stopped {
                    epoch: 1,
                    stop: Stop::Diverged { .. }
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_requested_stop_ends_every_thread() {
        let (tr, va) = (toy(256, 8), toy(20, 9));
        for (threads, at) in [(1, 3), (2, 3), (4, 0), (4, 7)] {
            let mut seen = 0;
            let err = fit::<784, Native>(
                &recipe(),
                execution(4, threads),
                examples(&tr),
                examples(&va),
                |event| {
                    if let Event::Step { step, .. } = event {
                        seen += 1;
                        if step.batch == at {
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                },
            )
            .err()
            .unwrap();
            assert_eq!(
                err,
                FitError::Stopped {
                    epoch: 1,
                    stop: Stop::Requested { batch: at }
                }
            );
            assert_eq!(seen, at + 1);
        }
    }

    #[test]
    fn a_stop_at_the_end_of_an_epoch_names_its_last_batch() {
        // 100 examples in batches of 32: batches 0 to 3, the last of 4.
        let (tr, va) = (toy(100, 8), toy(20, 9));
        let mut last_step = None;
        let err = fit::<784, Native>(
            &recipe(),
            execution(2, 1),
            examples(&tr),
            examples(&va),
            |event| match event {
                Event::Step { step, .. } => {
                    last_step = Some(step.batch);
                    ControlFlow::Continue(())
                }
                Event::Epoch(report) if report.epoch == 2 => ControlFlow::Break(()),
                Event::Epoch(_) => ControlFlow::Continue(()),
            },
        )
        .err()
        .unwrap();
        assert_eq!(
            err,
            FitError::Stopped {
                epoch: 2,
                stop: Stop::Requested { batch: 3 }
            }
        );
        assert_eq!(last_step, Some(3));
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let model = || Box::new(SoftmaxRegression::<784, CLASSES>::zeroed());
        let new = |sgd, execution| Trainer::<784, Native>::new(model(), sgd, execution).err();
        let sgd = Sgd::default();
        assert_eq!(
            new(
                Sgd {
                    batch_size: 0,
                    ..sgd
                },
                execution(2, 1)
            ),
            Some(SettingsError::BatchSize)
        );
        assert!(matches!(
            new(
                Sgd {
                    lr: f32::NAN,
                    ..sgd
                },
                execution(2, 1)
            ),
            Some(SettingsError::LearningRate(_))
        ));
        assert_eq!(new(sgd, execution(3, 1)), Some(SettingsError::Shards(3)));
        assert_eq!(
            new(sgd, execution(128, 1)),
            Some(SettingsError::Shards(128))
        );
        assert_eq!(
            new(sgd, execution(4, 8)),
            Some(SettingsError::Threads {
                threads: 8,
                shards: 4
            })
        );
        assert_eq!(
            new(sgd, execution(4, 3)),
            Some(SettingsError::Threads {
                threads: 3,
                shards: 4
            })
        );
        assert_eq!(new(sgd, execution(4, 4)), None);
        assert_eq!(Execution::threads_for(8, 6), 4);
        assert_eq!(Execution::threads_for(2, 16), 2);
        assert_eq!(Execution::threads_for(8, 0), 1);
    }

    #[test]
    fn a_batch_larger_than_the_data_is_one_batch() {
        let (tr, va) = (toy(10, 3), toy(10, 4));
        let recipe = Recipe {
            sgd: Sgd {
                batch_size: 1000,
                lr: 0.1,
            },
            ..recipe()
        };
        let fitted = fit::<784, Native>(
            &recipe,
            execution(8, 4),
            examples(&tr),
            examples(&va),
            quiet,
        )
        .unwrap();
        assert!(fitted.history[0].train_loss.is_finite());
    }

    #[test]
    #[should_panic(expected = "label is not a class")]
    fn bad_examples_panic_before_any_step() {
        let images = vec![[0u8; PIXELS]; 4];
        let labels = [0, 1, 10, 2];
        let data = Examples {
            images: &images,
            labels: &labels,
        };
        let model = Box::new(SoftmaxRegression::<784, CLASSES>::zeroed());
        let sgd = Sgd {
            batch_size: 2,
            lr: 0.1,
        };
        let mut trainer = Trainer::<784, Native>::new(model, sgd, execution(2, 2)).unwrap();
        let _ = trainer.train_epoch(data, &[0, 1, 2, 3], |_| ControlFlow::Continue(()));
    }

    /// One crew for several jobs, a stopped epoch among them, takes the
    /// same steps as one crew per job and as one thread, to the bit: a stop
    /// does not carry into the next epoch, the threads start each epoch
    /// from the model as it is, and an evaluation's parts (three here) are
    /// merged in order.
    #[test]
    fn a_crew_kept_across_jobs_gives_the_same_bits() {
        let (tr, va) = (toy(300, 3), toy(2 * 1024 + 300, 4));
        let data = examples(&tr);
        let reversed: Vec<u32> = (0..300).rev().collect();
        let mut shuffled: Vec<u32> = (0..300).collect();
        Rng::seed_from_u64(5).shuffle(&mut shuffled);
        let trainer = |threads| {
            let mut model = Box::new(SoftmaxRegression::<1024, CLASSES>::zeroed());
            model.init_normal(&mut Rng::seed_from_u64(6), 0.01);
            let sgd = Sgd {
                batch_size: 32,
                lr: 0.5,
            };
            Trainer::<1024, Resized>::new(model, sgd, execution(4, threads)).unwrap()
        };
        let stop_after_3 = |step: StepReport| {
            if step.batch == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let on = |_| ControlFlow::Continue(());
        let per_job = |threads| {
            let mut t = trainer(threads);
            let jobs = (
                t.train_epoch(data, &reversed, stop_after_3),
                t.train_epoch(data, &shuffled, on),
                t.evaluate(examples(&va)),
                t.train_epoch(data, &reversed, on),
                t.evaluate(examples(&va)),
            );
            (jobs, t.into_model())
        };
        let one_crew = |threads| {
            let mut t = trainer(threads);
            let jobs = t.with_crew(|crew| {
                (
                    crew.train_epoch(data, &reversed, stop_after_3),
                    crew.train_epoch(data, &shuffled, on),
                    crew.evaluate(examples(&va)),
                    crew.train_epoch(data, &reversed, on),
                    crew.evaluate(examples(&va)),
                )
            });
            (jobs, t.into_model())
        };
        let want = per_job(1);
        assert_eq!(want.0 .0, Err(Stop::Requested { batch: 3 }));
        assert!(want.0 .4.accuracy() > 0.9, "{:?}", want.0 .4);
        assert_ne!(want.0 .2, want.0 .4, "the second epoch moved the model");
        for threads in [1, 2, 4] {
            for (how, (jobs, model)) in [
                ("one crew", one_crew(threads)),
                ("a crew per job", per_job(threads)),
            ] {
                assert_eq!(jobs, want.0, "{how}, {threads} threads");
                // Not `assert_eq!`: 10,240 weights would fill the screen.
                assert!(model == want.1, "{how}, {threads} threads: another model");
            }
        }
    }

    /// A panic in a crew's work, or on one of its other threads, reaches
    /// the caller, and no thread is left waiting for a job or a partner.
    /// Run on a watchdog thread, so that a hang fails the test with a
    /// message rather than stalling the suite.
    #[test]
    #[cfg_attr(
        target_family = "wasm",
        ignore = "wasm32-wasip1 has no threads, and a panic aborts"
    )]
    fn a_panic_in_a_crew_reaches_the_caller() {
        let (done, finished) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let tr = toy(64, 3);
            let mut va = toy(3 * 1024, 4);
            // In part 1, which the second thread evaluates.
            va.1[1500] = CLASSES as u8;
            let mut outcomes = Vec::new();
            for threads in [2, 4] {
                for in_the_work in [true, false] {
                    let model = Box::new(SoftmaxRegression::<784, CLASSES>::zeroed());
                    let mut trainer =
                        Trainer::<784, Native>::new(model, Sgd::default(), execution(4, threads))
                            .unwrap();
                    let order: Vec<u32> = (0..64).collect();
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        trainer.with_crew(|crew| {
                            let on = |_| ControlFlow::Continue(());
                            let _ = crew.train_epoch(examples(&tr), &order, on);
                            if in_the_work {
                                panic!("the work fails");
                            }
                            crew.evaluate(examples(&va))
                        })
                    }));
                    outcomes.push(outcome.is_err());
                }
            }
            done.send(outcomes).unwrap();
        });
        let outcomes = finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a crew's thread still waits after a panic");
        assert_eq!(outcomes, [true; 4]);
    }

    #[test]
    fn tree_sum_adds_pairs_first() {
        let parts = [[1e8f32], [1.0], [-1e8], [1.0]];
        let mut out = [0.0f32];
        tree_sum(&parts, |p| p, &mut out);
        // (1e8 + 1) + (-1e8 + 1) rounds both pairs back to 1e8 and -1e8.
        assert_eq!(out, [0.0]);
        tree_sum(&parts[..1], |p| p, &mut out);
        assert_eq!(out, [1e8]);
    }

    #[test]
    fn the_trainer_reports_the_settings_it_was_given() {
        let sgd = Sgd {
            batch_size: 7,
            lr: 0.25,
        };
        let layout = execution(4, 2);
        let trainer =
            Trainer::<784, Native>::new(Box::new(SoftmaxRegression::zeroed()), sgd, layout)
                .unwrap();
        // Where threads cannot be started (wasm without atomics), one thread
        // takes every shard, and the trainer says so.
        let used = execution(4, if crate::CAN_SPAWN_THREADS { 2 } else { 1 });
        assert_eq!(trainer.sgd(), sgd);
        assert_eq!(trainer.execution(), used);
        assert_eq!(trainer.softmax(), Softmax::Stable);
        let trainer = trainer.with_softmax(Softmax::Naive);
        assert_eq!(trainer.softmax(), Softmax::Naive);
        assert_eq!(trainer.execution(), used);
    }

    #[test]
    fn errors_read_as_one_line_with_their_numbers() {
        use std::string::ToString;
        let stop = Stop::Diverged {
            batch: 2,
            loss: f32::INFINITY,
        };
        let cases = [
            (
                FitError::Settings(SettingsError::BatchSize),
                "the batch size must be at least 1",
            ),
            (
                FitError::Settings(SettingsError::LearningRate(f32::NAN)),
                "the learning rate must be a finite number, not NaN",
            ),
            (
                FitError::Settings(SettingsError::Shards(3)),
                "the shard count must be a power of two from 1 to 64, not 3",
            ),
            (
                FitError::Settings(SettingsError::Threads {
                    threads: 8,
                    shards: 4,
                }),
                "the thread count must be a power of two from 1 to the shard count (4), not 8",
            ),
            (
                FitError::Stopped { epoch: 3, stop },
                "epoch 3: the loss of batch 3 was inf: training diverged",
            ),
            (
                FitError::Stopped {
                    epoch: 1,
                    stop: Stop::Requested { batch: 0 },
                },
                "epoch 1: stopped after batch 1",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
        assert_eq!(
            stop.to_string(),
            "the loss of batch 3 was inf: training diverged"
        );
    }
}
