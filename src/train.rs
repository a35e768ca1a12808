//! Minibatch SGD on raw pixels, with the resize folded into the weights and
//! each batch split into a fixed number of shards.
//!
//! [`SoftmaxRegression::sgd_step`] is the chapter's step on prepared inputs.
//! Training on Fashion-MNIST can do less work for the same result:
//!
//! - **No resized copy of the data.** The chapter's resize is linear,
//!   `x_32 = R x_28`, so `W . x_32 = (R^T W) . x_28`. Each step folds the
//!   current weights into 784-input weights `W_eff = R^T W`
//!   ([`crate::resize::fold_resize_into_weights`]), runs the batch on its
//!   784 raw pixels, and takes the gradient back with
//!   `grad_W = R grad_W_eff` ([`crate::resize::unfold_gradient_add`]). The
//!   model and its updates are those of the 1024-input model; the data read
//!   per image drops from 4096 bytes (1024 `f32`) to 784 (`u8`).
//! - **Shards.** A batch is cut into [`SHARDS`] equal parts whose gradients
//!   are computed independently and summed in shard order. Threads can take
//!   a shard each, and because the split and the order of the sum never
//!   depend on the number of threads, the trained model is bit-identical
//!   whether one thread or two did the work.

use crate::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS, RESIZED_SIDE, SIDE};
use crate::kernels::{cross_entropy, matmul, softmax, sum};
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

    /// `w_eff = M^T w`: weights on the raw pixels (still to be scaled by
    /// 1/255) equivalent to `w` on the mapped inputs.
    fn fold(w: &[f32; IN], w_eff: &mut [f32; PIXELS]);

    /// `w += scale * M g`: a gradient with respect to the folded weights
    /// taken back to the model's weights.
    fn unfold_add(g: &[f32; PIXELS], scale: f32, w: &mut [f32; IN]);
}

/// The 28x28 model: inputs are the pixels themselves (784 inputs).
#[derive(Clone, Copy, Debug)]
pub struct Native;

impl InputMap<PIXELS> for Native {
    const IMAGE_SIDE: usize = SIDE;

    fn map(pixels: &[u8; PIXELS], inputs: &mut [f32; PIXELS]) {
        resize::scale_28(pixels, inputs);
    }

    fn fold(w: &[f32; PIXELS], w_eff: &mut [f32; PIXELS]) {
        w_eff.copy_from_slice(w);
    }

    fn unfold_add(g: &[f32; PIXELS], scale: f32, w: &mut [f32; PIXELS]) {
        for (w, g) in w.iter_mut().zip(g) {
            *w += scale * g;
        }
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

    fn fold(w: &[f32; RESIZED_PIXELS], w_eff: &mut [f32; PIXELS]) {
        resize::fold_resize_into_weights(w, w_eff);
    }

    fn unfold_add(g: &[f32; PIXELS], scale: f32, w: &mut [f32; RESIZED_PIXELS]) {
        resize::unfold_gradient_add(g, scale, w);
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
            M::fold(w, w_eff);
            for v in w_eff.iter_mut() {
                *v /= 255.0;
            }
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

/// Scratch space for one shard of at most `rows` examples: the shard's
/// images gathered into one contiguous block, its labels, and its logits
/// (which become the gradient of the loss with respect to the logits).
pub struct ShardScratch<'a> {
    /// One image per example.
    pub images: &'a mut [[u8; PIXELS]],
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
/// `(images[order[i]], labels[order[i]])` for the given rows of the batch and
/// the gradient of that sum.
pub fn shard_gradient(
    folded: &Folded,
    data: Examples<'_>,
    rows: &[u32],
    scratch: &mut ShardScratch<'_>,
    out: &mut ShardGradient,
) {
    let n = rows.len();
    let x = &mut scratch.images[..n];
    let y = &mut scratch.labels[..n];
    let logits = &mut scratch.logits[..n];
    // Gather the shard's shuffled rows into one block (784 bytes each) so
    // the kernels stream them; the 1/255 scale lives in the folded weights.
    for ((image, label), &row) in x.iter_mut().zip(y.iter_mut()).zip(rows) {
        *image = data.images[row as usize];
        *label = data.labels[row as usize];
    }
    matmul::logits_u8(x, &folded.weights, &folded.bias, 1.0, logits);
    out.loss_sum = cross_entropy::softmax_cross_entropy_grad(logits, y);
    for row in out.weights.iter_mut() {
        row.fill(0.0);
    }
    matmul::accumulate_weight_gradient_u8(x, logits, 1.0, &mut out.weights);
    out.bias = sum::column_sums(logits);
}

/// Sums the shards' gradients in shard order and takes the SGD step
/// `p <- p - lr * grad / n` on `model`; returns the summed loss.
pub fn apply_step<const IN: usize, M: InputMap<IN>>(
    model: &mut SoftmaxRegression<IN, CLASSES>,
    shards: &mut [ShardGradient],
    n: usize,
    lr: f32,
) -> f32 {
    let (first, rest) = shards.split_first_mut().expect("at least one shard");
    for shard in rest.iter() {
        for (a, b) in first
            .weights
            .iter_mut()
            .flatten()
            .zip(shard.weights.iter().flatten())
        {
            *a += b;
        }
        for (a, b) in first.bias.iter_mut().zip(&shard.bias) {
            *a += b;
        }
        first.loss_sum += shard.loss_sum;
    }
    // d(loss)/d(W_eff / 255) = g, so d(loss)/d(W_eff) = g / 255.
    let scale = -lr / n as f32 / 255.0;
    for (w, g) in model.weights.iter_mut().zip(&first.weights) {
        M::unfold_add(g, scale, w);
    }
    let scale = -lr / n as f32;
    for (b, g) in model.bias.iter_mut().zip(&first.bias) {
        *b += scale * g;
    }
    first.loss_sum
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
    for (xb, yb) in images.chunks(BLOCK).zip(labels.chunks(BLOCK)) {
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
