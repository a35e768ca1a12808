//! The chapter's model: `O = X W + b`, `Y_hat = softmax(O)`, and its
//! evaluation: loss, accuracy and the confusion matrix.
//!
//! [`SoftmaxRegression`] owns its parameters; [`ModelView`] borrows them (from
//! a model, or straight from the bytes of a model file in flash) and does
//! everything inference needs. Nothing allocates: the caller lends the
//! per-batch scratch space. [`SoftmaxRegression::sgd_step`] is the chapter's
//! SGD step written out plainly; training runs the same update on raw pixels
//! ([`crate::train`]) and is tested against it.

use crate::kernels::{cross_entropy, matmul, prefetch_block, softmax, sum, Element};
use crate::simd::{Isa, Kernel, Simd};
use crate::Rng;

/// Rows evaluated at a time, with their logits on the stack (`64 * OUT * 4`
/// bytes: 2.5 KiB for ten classes).
const EVAL_ROWS: usize = 64;

/// Loss, accuracy and confusion counts over a set of examples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation<const C: usize = { crate::fashion_mnist::CLASSES }> {
    /// Sum of the per-example cross-entropy losses.
    pub loss_sum: f64,
    /// `confusion[true class][predicted class]`: how many examples of each
    /// class were predicted as each class.
    pub confusion: [[u32; C]; C],
}

impl<const C: usize> Default for Evaluation<C> {
    fn default() -> Self {
        Evaluation {
            loss_sum: 0.0,
            confusion: [[0; C]; C],
        }
    }
}

impl<const C: usize> Evaluation<C> {
    /// Examples seen.
    pub fn count(&self) -> usize {
        self.confusion.iter().flatten().map(|&n| n as usize).sum()
    }

    /// Examples whose most probable class is the label (the chapter's
    /// `accuracy` before dividing by the count).
    pub fn correct(&self) -> usize {
        (0..C).map(|j| self.confusion[j][j] as usize).sum()
    }

    /// Mean cross-entropy loss (NaN for no examples).
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.count() as f64
    }

    /// Fraction of examples classified correctly (NaN for no examples).
    pub fn accuracy(&self) -> f64 {
        self.correct() as f64 / self.count() as f64
    }

    /// Examples of class `class`, and how many of them were classified
    /// correctly.
    ///
    /// # Panics
    /// If `class >= C`.
    pub fn of_class(&self, class: usize) -> (usize, usize) {
        let row = &self.confusion[class];
        (row.iter().map(|&n| n as usize).sum(), row[class] as usize)
    }

    /// Adds another set's results to this one.
    pub fn merge(&mut self, other: &Evaluation<C>) {
        self.loss_sum += other.loss_sum;
        for (row, other_row) in self.confusion.iter_mut().zip(&other.confusion) {
            for (n, m) in row.iter_mut().zip(other_row) {
                *n += m;
            }
        }
    }
}

/// Loss and confusion counts of the model `(w, b)` (inputs times `scale`)
/// on all of `(x, y)`, in blocks of [`EVAL_ROWS`] whose logits live on the
/// stack: every evaluation in the crate is this loop.
///
/// # Panics
/// If the lengths differ or a label is `>= OUT`.
#[inline(always)]
pub(crate) fn evaluate_with<S: Simd, T: Element, const IN: usize, const OUT: usize>(
    s: S,
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    x: &[[T; IN]],
    y: &[u8],
) -> Evaluation<OUT> {
    assert_eq!(x.len(), y.len(), "one label per example");
    let mut result = Evaluation::default();
    let mut logits = [[0.0f32; OUT]; EVAL_ROWS];
    let mut blocks = x.chunks(EVAL_ROWS).zip(y.chunks(EVAL_ROWS)).peekable();
    while let Some((xb, yb)) = blocks.next() {
        // Request the next block while this one is computed.
        if let Some((next, _)) = blocks.peek() {
            prefetch_block(next);
        }
        let logits = &mut logits[..xb.len()];
        matmul::logits_with(s, xb, w, b, scale, logits);
        for (row, &label) in logits.iter().zip(yb) {
            result.confusion[usize::from(label)][softmax::argmax(row)] += 1;
        }
        result.loss_sum += f64::from(cross_entropy::softmax_cross_entropy_with(s, logits, yb));
    }
    result
}

/// The most probable class of each row of `x` (inputs times `scale`),
/// `argmax(X W + b)`: softmax is monotonic, so the logits decide.
///
/// # Panics
/// If `classes` is shorter than `x`.
#[inline(always)]
pub(crate) fn predict_with<S: Simd, T: Element, const IN: usize, const OUT: usize>(
    s: S,
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    x: &[[T; IN]],
    classes: &mut [u8],
) {
    let mut logits = [[0.0f32; OUT]; EVAL_ROWS];
    for (xb, cb) in x
        .chunks(EVAL_ROWS)
        .zip(classes[..x.len()].chunks_mut(EVAL_ROWS))
    {
        let logits = &mut logits[..xb.len()];
        matmul::logits_with(s, xb, w, b, scale, logits);
        for (c, row) in cb.iter_mut().zip(logits.iter()) {
            *c = softmax::argmax(row) as u8;
        }
    }
}

/// Softmax regression with `IN` inputs and `OUT` classes.
///
/// `weights[j]` holds the `IN` weights of class `j`: the chapter's `W`
/// (`IN x OUT`) transposed, so the kernels walk both `X` and `W` along `IN`
/// with unit stride (see [`crate::kernels::matmul`]).
///
/// Cache-line aligned, as the kernels read whole lines of weights.
#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct SoftmaxRegression<const IN: usize, const OUT: usize> {
    /// Class-major weights, `OUT x IN`.
    pub weights: [[f32; IN]; OUT],
    /// One bias per class.
    pub bias: [f32; OUT],
}

impl<const IN: usize, const OUT: usize> SoftmaxRegression<IN, OUT> {
    /// All parameters zero.
    pub const fn zeroed() -> Self {
        SoftmaxRegression {
            weights: [[0.0; IN]; OUT],
            bias: [0.0; OUT],
        }
    }

    /// The chapter's initialisation: `W ~ N(0, sigma^2)`, `b = 0`.
    pub fn new(rng: &mut Rng, sigma: f32) -> Self {
        let mut model = Self::zeroed();
        model.init_normal(rng, sigma);
        model
    }

    /// Re-initialises in place (no 40 KB temporary on the stack). Draws in the
    /// chapter's `W` order, input by input and class by class within each.
    pub fn init_normal(&mut self, rng: &mut Rng, sigma: f32) {
        for k in 0..IN {
            for j in 0..OUT {
                self.weights[j][k] = sigma * rng.normal();
            }
        }
        self.bias = [0.0; OUT];
    }

    /// Sets the weights from the chapter's layout, `w[k][j]` for input `k`
    /// and class `j` (`IN x OUT`), as TensorFlow and NumPy store them.
    pub fn set_weights_input_major(&mut self, w: &[[f32; OUT]; IN]) {
        for (k, row) in w.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                self.weights[j][k] = v;
            }
        }
    }

    /// A borrowed view for inference.
    pub fn view(&self) -> ModelView<'_, IN, OUT> {
        ModelView {
            weights: &self.weights,
            bias: &self.bias,
        }
    }

    /// See [`ModelView::forward`].
    pub fn forward(&self, x: &[[f32; IN]], logits: &mut [[f32; OUT]]) {
        self.view().forward(x, logits);
    }

    /// See [`ModelView::predict`].
    pub fn predict(&self, x: &[[f32; IN]], classes: &mut [u8]) {
        self.view().predict(x, classes);
    }

    /// See [`ModelView::probabilities`].
    pub fn probabilities(&self, x: &[f32; IN]) -> [f32; OUT] {
        self.view().probabilities(x)
    }

    /// See [`ModelView::evaluate`].
    pub fn evaluate(&self, x: &[[f32; IN]], y: &[u8]) -> Evaluation<OUT> {
        self.view().evaluate(x, y)
    }

    /// The chapter's minibatch SGD step on the batch `(x, y)`, written out
    /// plainly: `p <- p - lr * grad` for `W` and `b`, with the gradient of
    /// the batch's mean loss,
    ///
    /// `grad_W = X^T (softmax(X W + b) - onehot(y)) / n`,
    /// `grad_b = sum_i (softmax(x_i W + b) - onehot(y_i)) / n`.
    ///
    /// Returns the mean loss before the update. `scratch` needs at least
    /// `x.len()` rows.
    ///
    /// This is the reference the fast training path ([`crate::train`]: raw
    /// pixels, the resize folded into the weights, sharded batches) is
    /// tested against; it is not what `softreg train` runs.
    ///
    /// # Panics
    /// If `y` and `x` differ in length, `scratch` is too short, or a label is
    /// `>= OUT`.
    pub fn sgd_step(
        &mut self,
        x: &[[f32; IN]],
        y: &[u8],
        lr: f32,
        scratch: &mut [[f32; OUT]],
    ) -> f32 {
        let n = x.len();
        let grad_logits = &mut scratch[..n];
        self.forward(x, grad_logits);
        // The logits become the gradient of the summed loss, in place.
        let loss_sum = cross_entropy::softmax_cross_entropy_grad(grad_logits, y);
        let scale = -lr / n as f32;
        matmul::accumulate_weight_gradient(x, grad_logits, scale, &mut self.weights);
        let grad_bias = sum::column_sums(grad_logits);
        for (b, g) in self.bias.iter_mut().zip(grad_bias) {
            *b += scale * g;
        }
        loss_sum / n as f32
    }
}

/// Borrowed parameters of a softmax regression: all that inference needs.
///
/// Build one from a [`SoftmaxRegression`] with [`SoftmaxRegression::view`] or
/// from model-file bytes, without copying, with [`crate::model_file::view`].
#[derive(Clone, Copy, Debug)]
pub struct ModelView<'a, const IN: usize, const OUT: usize> {
    /// Class-major weights, `OUT x IN`.
    pub weights: &'a [[f32; IN]; OUT],
    /// One bias per class.
    pub bias: &'a [f32; OUT],
}

impl<const IN: usize, const OUT: usize> ModelView<'_, IN, OUT> {
    /// The logits `O = X W + b` of a batch.
    ///
    /// # Panics
    /// If `logits` does not have one row per row of `x`.
    pub fn forward(&self, x: &[[f32; IN]], logits: &mut [[f32; OUT]]) {
        matmul::logits(x, self.weights, self.bias, 1.0, logits);
    }

    /// The most probable class of each row, `argmax(X W + b)` (softmax is
    /// monotonic, so the logits decide).
    ///
    /// # Panics
    /// If `classes` is shorter than `x`.
    pub fn predict(&self, x: &[[f32; IN]], classes: &mut [u8]) {
        struct Job<'a, 'm, const IN: usize, const OUT: usize>(
            &'a ModelView<'m, IN, OUT>,
            &'a [[f32; IN]],
            &'a mut [u8],
        );
        impl<const IN: usize, const OUT: usize> Kernel for Job<'_, '_, IN, OUT> {
            type Output = ();
            #[inline(always)]
            fn run<S: Simd>(self, s: S) {
                let Job(model, x, classes) = self;
                predict_with(s, model.weights, model.bias, 1.0, x, classes);
            }
        }
        Isa::current().dispatch(Job(self, x, classes));
    }

    /// The class probabilities of one example, `softmax(x W + b)`.
    pub fn probabilities(&self, x: &[f32; IN]) -> [f32; OUT] {
        let mut row = [[0.0; OUT]];
        self.forward(core::slice::from_ref(x), &mut row);
        softmax::softmax_row(&mut row[0]);
        row[0]
    }

    /// The most probable class of one example.
    pub fn classify(&self, x: &[f32; IN]) -> u8 {
        let mut class = [0];
        self.predict(core::slice::from_ref(x), &mut class);
        class[0]
    }

    /// Summed loss and confusion counts over all of `(x, y)`.
    ///
    /// # Panics
    /// If the lengths differ or a label is `>= OUT`.
    pub fn evaluate(&self, x: &[[f32; IN]], y: &[u8]) -> Evaluation<OUT> {
        struct Job<'a, 'm, const IN: usize, const OUT: usize>(
            &'a ModelView<'m, IN, OUT>,
            &'a [[f32; IN]],
            &'a [u8],
        );
        impl<const IN: usize, const OUT: usize> Kernel for Job<'_, '_, IN, OUT> {
            type Output = Evaluation<OUT>;
            #[inline(always)]
            fn run<S: Simd>(self, s: S) -> Evaluation<OUT> {
                let Job(model, x, y) = self;
                evaluate_with(s, model.weights, model.bias, 1.0, x, y)
            }
        }
        Isa::current().dispatch(Job(self, x, y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference;

    #[test]
    fn sgd_step_equals_the_scalar_step() {
        const IN: usize = 37;
        const OUT: usize = 5;
        let mut rng = Rng::seed_from_u64(50);
        let mut model = SoftmaxRegression::<IN, OUT>::new(&mut rng, 0.3);
        model.bias = [0.1, -0.2, 0.3, 0.0, 0.05];
        let mut x = [[0.0f32; IN]; 13];
        let mut y = [0u8; 13];
        for (row, label) in x.iter_mut().zip(&mut y) {
            row.iter_mut().for_each(|v| *v = rng.next_f32());
            *label = rng.below(OUT as u32) as u8;
        }
        // The scalar step, spelled out.
        let mut want = model.clone();
        let mut g = [[0.0f32; OUT]; 13];
        let mut grad_w = [[0.0f32; IN]; OUT];
        let want_loss = reference::sgd_step(
            &mut want.weights,
            &mut want.bias,
            &x,
            &y,
            0.5,
            &mut g,
            &mut grad_w,
        );

        let mut scratch = [[0.0f32; OUT]; 16];
        let loss = model.sgd_step(&x, &y, 0.5, &mut scratch);
        assert!((loss - want_loss).abs() < 1e-6, "{loss} vs {want_loss}");
        for (a, b) in model
            .weights
            .iter()
            .flatten()
            .zip(want.weights.iter().flatten())
        {
            assert!((a - b).abs() < 1e-6);
        }
        for (a, b) in model.bias.iter().zip(&want.bias) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn sgd_learns_a_separable_problem() {
        // Two classes told apart by the sign of the first input.
        let mut rng = Rng::seed_from_u64(51);
        let mut model = SoftmaxRegression::<4, 2>::new(&mut rng, 0.01);
        let mut x = [[0.0f32; 4]; 64];
        let mut y = [0u8; 64];
        for (row, label) in x.iter_mut().zip(&mut y) {
            row.iter_mut().for_each(|v| *v = rng.normal());
            *label = u8::from(row[0] > 0.0);
        }
        let before = model.evaluate(&x, &y);
        let mut scratch = [[0.0; 2]; 64];
        for _ in 0..100 {
            model.sgd_step(&x, &y, 0.5, &mut scratch);
        }
        let after = model.evaluate(&x, &y);
        assert!(after.mean_loss() < before.mean_loss() / 2.0);
        assert!(after.accuracy() > 0.95, "{after:?}");
    }

    #[test]
    fn init_draws_in_the_chapters_order() {
        let mut rng = Rng::seed_from_u64(52);
        let model = SoftmaxRegression::<3, 2>::new(&mut rng, 0.01);
        let mut rng = Rng::seed_from_u64(52);
        let first = 0.01 * rng.normal();
        let second = 0.01 * rng.normal();
        // W[0][0] then W[0][1]: input 0, classes 0 and 1.
        assert_eq!(model.weights[0][0], first);
        assert_eq!(model.weights[1][0], second);
        assert_eq!(model.bias, [0.0; 2]);
    }

    #[test]
    fn evaluation_counts_and_probabilities_agree() {
        let mut model = SoftmaxRegression::<2, 3>::zeroed();
        model.weights = [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]];
        let x = [[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0], [1.0, 0.0]];
        let y = [0u8, 1, 2, 1];
        let e = model.evaluate(&x, &y);
        assert_eq!((e.correct(), e.count()), (3, 4));
        let p = model.probabilities(&x[0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let want = -f64::from(libm::logf(p[0]));
        let mut classes = [0u8; 4];
        model.predict(&x, &mut classes);
        assert_eq!(classes, [0, 1, 2, 0]);
        let first = model.evaluate(&x[..1], &y[..1]);
        assert!((first.mean_loss() - want).abs() < 1e-6);
        assert_eq!(model.view().classify(&x[1]), 1);
    }

    /// A case small enough to compute by hand: two classes, logits equal
    /// to the inputs, so each row's loss is `ln(1 + e^(z_other - z_true))`.
    #[test]
    fn evaluation_of_a_hand_computed_case() {
        let mut model = SoftmaxRegression::<2, 2>::zeroed();
        model.weights = [[1.0, 0.0], [0.0, 1.0]];
        let x = [[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [1.0, 1.0], [0.0, 2.0]];
        let y = [0u8, 1, 1, 0, 0];
        let e = model.evaluate(&x, &y);
        // Predicted 0, 1, 0, 0 (the first of a tie), 1.
        assert_eq!(e.confusion, [[2, 1], [1, 1]]);
        assert_eq!((e.count(), e.correct()), (5, 3));
        assert_eq!(e.accuracy(), 0.6);
        assert_eq!((e.of_class(0), e.of_class(1)), ((3, 2), (2, 1)));
        let ln1p_exp = |d: f64| (1.0 + d.exp()).ln();
        let want = ln1p_exp(-2.0) + ln1p_exp(-1.0) + ln1p_exp(2.0) + ln1p_exp(0.0) + ln1p_exp(2.0);
        assert!((e.loss_sum - want).abs() < 1e-5, "{} vs {want}", e.loss_sum);
        assert!((e.mean_loss() - want / 5.0).abs() < 1e-6);

        // Merging the two halves gives the whole; merging nothing changes
        // nothing.
        let mut merged = model.evaluate(&x[..2], &y[..2]);
        merged.merge(&model.evaluate(&x[2..], &y[2..]));
        assert_eq!(merged.confusion, e.confusion);
        assert!((merged.loss_sum - e.loss_sum).abs() < 1e-6);
        let before = merged;
        merged.merge(&Evaluation::default());
        assert_eq!(merged, before);
        let empty = Evaluation::<3>::default();
        assert!(empty.accuracy().is_nan() && empty.mean_loss().is_nan());
    }

    #[test]
    fn classify_is_the_argmax_for_every_class() {
        let mut model = SoftmaxRegression::<3, 3>::zeroed();
        model.weights = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        for class in 0..3u8 {
            let mut x = [0.1f32; 3];
            x[usize::from(class)] = 2.0;
            assert_eq!(model.view().classify(&x), class);
        }
    }
}
