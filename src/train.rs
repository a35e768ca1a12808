//! Minibatch SGD on raw pixels, with the resize folded into the weights and
//! each batch split into a fixed number of shards.
//!
//! [`SoftmaxRegression::sgd_step`] is the chapter's step on prepared inputs.
//! Training on Fashion-MNIST can do less work for the same result:
//!
//! - **No resized copy of the data.** The chapter's resize is linear,
//!   `x_32 = R x_28`, so `W . x_32 = (R^T W) . x_28`. Training folds the
//!   weights into 784-input weights `W_eff = R^T W`
//!   ([`crate::resize::fold_resize_into_weights`]) and runs every batch on
//!   its 784 raw pixels; the data read per image drops from 4096 bytes
//!   (1024 `f32`) to 784 (`u8`). A step's gradient `g` with respect to
//!   `W_eff` is `R g` with respect to `W`
//!   ([`crate::resize::unfold_gradient_add`]), which moves `W_eff` by
//!   `R^T R g` ([`crate::resize::gram_add`]): [`FoldedModel`] updates the
//!   folded weights that way and unfolds the summed updates into the model
//!   once an epoch. The model and its updates are those of the 1024-input
//!   model.
//! - **Shards.** A batch is cut into [`SHARDS`] equal parts whose gradients
//!   are computed independently and summed in shard order. Threads can take
//!   a shard each, and because the split and the order of the sum never
//!   depend on the number of threads, the trained model is bit-identical
//!   whether one thread or two did the work.

use crate::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS, RESIZED_SIDE, SIDE};
use crate::kernels::{self, cross_entropy, matmul, softmax, sum, Picked};
use crate::model::{Evaluation, SoftmaxRegression};
use crate::resize;

/// Shards each batch is split into: one per core of a 2-core machine. Fixed,
/// so results do not depend on how many threads run them.
pub const SHARDS: usize = 2;

/// How an image's 784 raw pixels become the model's `IN` inputs. The map
/// is linear, so instead of applying it to every image, training folds it
/// into the weights.
pub trait InputMap<const IN: usize> {
    /// Side of the square image the model's inputs form.
    const IMAGE_SIDE: usize;

    /// The map itself: pixels (scaled by 1/255) to model inputs.
    fn map(pixels: &[u8; PIXELS], inputs: &mut [f32; IN]);

    /// `w_eff = scale * M^T w`: weights on the raw pixels equivalent to `w`
    /// on the mapped inputs, times `scale` (the trainer passes 1/255, so the
    /// folded weights apply to raw `u8` pixels).
    fn fold(w: &[f32; IN], scale: f32, w_eff: &mut [f32; PIXELS]);

    /// `w += scale * M g`: a gradient with respect to the folded weights
    /// taken back to the model's weights.
    fn unfold_add(g: &[f32; PIXELS], scale: f32, w: &mut [f32; IN]);

    /// `w_eff += scale * M^T M g`: what [`InputMap::unfold_add`] followed by
    /// [`InputMap::fold`] does to the folded weights, in one cheaper pass.
    fn gram_add(g: &[f32; PIXELS], scale: f32, w_eff: &mut [f32; PIXELS]);
}

/// The 28x28 model: inputs are the pixels themselves (784 inputs).
#[derive(Clone, Copy, Debug)]
pub struct Native;

impl InputMap<PIXELS> for Native {
    const IMAGE_SIDE: usize = SIDE;

    fn map(pixels: &[u8; PIXELS], inputs: &mut [f32; PIXELS]) {
        resize::scale_28(pixels, inputs);
    }

    fn fold(w: &[f32; PIXELS], scale: f32, w_eff: &mut [f32; PIXELS]) {
        for (e, v) in w_eff.iter_mut().zip(w) {
            *e = scale * v;
        }
    }

    fn unfold_add(g: &[f32; PIXELS], scale: f32, w: &mut [f32; PIXELS]) {
        for (w, g) in w.iter_mut().zip(g) {
            *w += scale * g;
        }
    }

    fn gram_add(g: &[f32; PIXELS], scale: f32, w_eff: &mut [f32; PIXELS]) {
        Self::unfold_add(g, scale, w_eff);
    }
}

/// The chapter's model: images resized to 32x32 (1024 inputs).
#[derive(Clone, Copy, Debug)]
pub struct Resized;

impl InputMap<RESIZED_PIXELS> for Resized {
    const IMAGE_SIDE: usize = RESIZED_SIDE;

    fn map(pixels: &[u8; PIXELS], inputs: &mut [f32; RESIZED_PIXELS]) {
        resize::resize_28_to_32(pixels, inputs);
    }

    fn fold(w: &[f32; RESIZED_PIXELS], scale: f32, w_eff: &mut [f32; PIXELS]) {
        resize::fold_resize_into_weights(w, scale, w_eff);
    }

    fn unfold_add(g: &[f32; PIXELS], scale: f32, w: &mut [f32; RESIZED_PIXELS]) {
        resize::unfold_gradient_add(g, scale, w);
    }

    fn gram_add(g: &[f32; PIXELS], scale: f32, w_eff: &mut [f32; PIXELS]) {
        resize::gram_add(g, scale, w_eff);
    }
}

/// Labelled examples as raw pixels, e.g. straight from memory-mapped IDX
/// files.
#[derive(Clone, Copy, Debug)]
pub struct Examples<'a> {
    /// One 28x28 image per example, row-major.
    pub images: &'a [[u8; PIXELS]],
    /// One label per example, each `< CLASSES`.
    pub labels: &'a [u8],
}

/// A model with its input map folded in: 784 weights per class on raw
/// pixels, the 1/255 scale included. Cache-line aligned: the kernels run
/// measurably slower when weight rows straddle lines.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub struct Folded {
    /// `W_eff / 255`, class-major.
    pub weights: [[f32; PIXELS]; CLASSES],
    /// The model's bias, unchanged by folding.
    pub bias: [f32; CLASSES],
}

impl Folded {
    /// All zero; fill with [`Folded::fold_from`].
    pub const fn zeroed() -> Self {
        Folded {
            weights: [[0.0; PIXELS]; CLASSES],
            bias: [0.0; CLASSES],
        }
    }

    /// Folds `model`'s input map and the 1/255 pixel scale into these weights.
    pub fn fold_from<const IN: usize, M: InputMap<IN>>(
        &mut self,
        model: &SoftmaxRegression<IN, CLASSES>,
    ) {
        for (w_eff, w) in self.weights.iter_mut().zip(&model.weights) {
            M::fold(w, 1.0 / 255.0, w_eff);
        }
        self.bias = model.bias;
    }
}

/// A shard's contribution to a step: its summed loss and the gradient of
/// that sum with respect to the folded weights and the bias.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub struct ShardGradient {
    /// Gradient with respect to [`Folded::weights`].
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

/// Scratch space for one shard of at most `rows` examples: its labels,
/// gathered, and its logits (which become the gradient of the loss with
/// respect to the logits).
pub struct ShardScratch<'a> {
    /// One label per example.
    pub labels: &'a mut [u8],
    /// One row of logits per example.
    pub logits: &'a mut [[f32; CLASSES]],
}

/// The range of rows shard `shard` of a batch of `n` takes: as equal as
/// possible, the first shards one longer when `n` does not divide.
pub fn shard_range(n: usize, shard: usize) -> core::ops::Range<usize> {
    let base = n / SHARDS;
    let extra = n % SHARDS;
    let start = shard * base + shard.min(extra);
    let len = base + usize::from(shard < extra);
    start..start + len
}

/// Forward and backward pass of one shard: `out` gets the summed loss of
/// the examples `rows` of `data` and the gradient of that sum.
///
/// `next` names the rows this thread will work on next (its shard of the
/// next batch), which are requested from memory while the gradient, a pass
/// over data already in cache, is computed. Shuffled rows lie anywhere in
/// the 47 MB of training images, beyond the caches, so otherwise the next
/// forward pass would wait out a memory latency for each.
pub fn shard_gradient(
    folded: &Folded,
    data: Examples<'_>,
    rows: &[u32],
    next: &[u32],
    scratch: &mut ShardScratch<'_>,
    out: &mut ShardGradient,
) {
    let n = rows.len();
    let y = &mut scratch.labels[..n];
    let logits = &mut scratch.logits[..n];
    for (label, &row) in y.iter_mut().zip(rows) {
        *label = data.labels[row as usize];
    }
    // The kernels read the shard's shuffled rows where they lie, already
    // requested into L2 by the previous shard; the 1/255 scale lives in the
    // folded weights. (Copying the rows into one block first took 10% of a
    // run, most of it waiting on memory; without the prefetch, reading them
    // in place waited just as long.)
    matmul::logits_u8_picked(
        data.images,
        rows,
        &folded.weights,
        &folded.bias,
        1.0,
        logits,
    );
    out.loss_sum = cross_entropy::softmax_cross_entropy_grad(logits, y);
    // Issued in one go: spread between blocks of the forward pass instead,
    // 10 epochs on one thread measured slower (0.245-0.258 s against
    // 0.234-0.241 s).
    Picked {
        from: data.images,
        rows: next,
    }
    .prefetch_all();
    matmul::weight_gradient_u8_picked(data.images, rows, logits, &mut out.weights);
    out.bias = sum::column_sums(logits);
}

/// A model in training: its folded weights, which every step updates in
/// place, and the part of the model's own update not yet applied to it.
///
/// A step changes the model's weights by `W += c R g` (`c = -lr / n`, `g` the
/// batch's gradient with respect to the folded weights, `R` the input map
/// with its 1/255), and so the folded weights by `W_eff += c R^T R g`. The
/// second is cheaper than unfolding `g` and folding all of `W` again, and
/// the first can wait: the steps' `c g` are summed on the 784-pixel grid and
/// unfolded once, when the model is wanted ([`FoldedModel::unfold_into`]).
/// Both are the same updates as the chapter's step, rounded in a different
/// order; refolding from the model at each [`FoldedModel::fold_from`] keeps
/// that rounding from building up.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub struct FoldedModel {
    /// What the kernels run with.
    pub folded: Folded,
    /// `sum c g` over the steps since the last fold, not yet in the model.
    pending: [[f32; PIXELS]; CLASSES],
}

impl FoldedModel {
    /// All zero; fill with [`FoldedModel::fold_from`].
    pub const fn zeroed() -> Self {
        FoldedModel {
            folded: Folded::zeroed(),
            pending: [[0.0; PIXELS]; CLASSES],
        }
    }

    /// Starts from `model`: folds its weights, with nothing pending.
    pub fn fold_from<const IN: usize, M: InputMap<IN>>(
        &mut self,
        model: &SoftmaxRegression<IN, CLASSES>,
    ) {
        self.folded.fold_from::<IN, M>(model);
        for row in self.pending.iter_mut() {
            row.fill(0.0);
        }
    }

    /// Sums the shards' gradients in shard order and takes the SGD step
    /// `p <- p - lr * grad / n` of the model on the folded weights and the
    /// bias; returns the summed loss. The shards are only read, so several
    /// copies of a model can each take the same step from the same shards.
    ///
    /// # Panics
    /// If `shards` is empty.
    pub fn step<const IN: usize, M: InputMap<IN>>(
        &mut self,
        shards: &[&ShardGradient],
        n: usize,
        lr: f32,
    ) -> f32 {
        let (first, rest) = shards.split_first().expect("at least one shard");
        let c = -lr / n as f32;
        // The kernels' weights are W_eff / 255, so they move by
        // c R^T R g / 255^2: one 1/255 from each of R^T and R.
        let gram_scale = c / (255.0 * 255.0);
        let mut g = [0.0f32; PIXELS];
        for (j, (w_eff, pending)) in self
            .folded
            .weights
            .iter_mut()
            .zip(self.pending.iter_mut())
            .enumerate()
        {
            g.copy_from_slice(&first.weights[j]);
            for shard in rest {
                for (a, b) in g.iter_mut().zip(&shard.weights[j]) {
                    *a += b;
                }
            }
            M::gram_add(&g, gram_scale, w_eff);
            for (p, g) in pending.iter_mut().zip(&g) {
                *p += c * g;
            }
        }
        let mut loss_sum = first.loss_sum;
        let mut bias = first.bias;
        for shard in rest {
            for (a, b) in bias.iter_mut().zip(&shard.bias) {
                *a += b;
            }
            loss_sum += shard.loss_sum;
        }
        for (b, g) in self.folded.bias.iter_mut().zip(&bias) {
            *b += c * g;
        }
        loss_sum
    }

    /// Brings `model` up to date: unfolds the pending update into its
    /// weights (`W += R sum c g`, the 1/255 included) and takes the bias.
    /// Leaves nothing pending; the folded weights stay as they are.
    pub fn unfold_into<const IN: usize, M: InputMap<IN>>(
        &mut self,
        model: &mut SoftmaxRegression<IN, CLASSES>,
    ) {
        for (w, pending) in model.weights.iter_mut().zip(self.pending.iter_mut()) {
            M::unfold_add(pending, 1.0 / 255.0, w);
            pending.fill(0.0);
        }
        model.bias = self.folded.bias;
    }
}

/// Loss and accuracy of the folded model on examples `rows` of `data`.
pub fn evaluate_rows(
    folded: &Folded,
    data: Examples<'_>,
    rows: core::ops::Range<usize>,
) -> Evaluation {
    const BLOCK: usize = 64;
    let mut result = Evaluation::default();
    let mut logits = [[0.0f32; CLASSES]; BLOCK];
    let (images, labels) = (&data.images[rows.clone()], &data.labels[rows]);
    let mut blocks = images.chunks(BLOCK).zip(labels.chunks(BLOCK)).peekable();
    while let Some((xb, yb)) = blocks.next() {
        // Request the next block while this one is computed.
        if let Some((next, _)) = blocks.peek() {
            kernels::prefetch_block(next);
        }
        let logits = &mut logits[..xb.len()];
        matmul::logits_u8(xb, &folded.weights, &folded.bias, 1.0, logits);
        for (row, &label) in logits.iter().zip(yb) {
            result.correct += usize::from(softmax::argmax(row) == usize::from(label));
        }
        result.loss_sum += f64::from(cross_entropy::softmax_cross_entropy_grad(logits, yb));
        result.count += xb.len();
    }
    result
}
