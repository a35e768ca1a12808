//! A model as weights on raw pixels: the fast way to run it on Fashion-MNIST.
//!
//! The chapter's inputs are the images scaled to `[0, 1]` and resized to
//! 32x32: `x_32 = R x_28 / 255`, with `R` the (linear) bilinear resize. So
//! `W . x_32 = (R^T W / 255) . x_28`: folding `R^T` and the 1/255 into the
//! weights once gives a model of 784 weights per class that reads the raw
//! `u8` pixels of the memory-mapped files, a quarter of the bytes of `f32`
//! inputs and fewer than the 1024 resized ones, with no resized copy of the
//! data. [`PixelModel`] is that model; evaluation, prediction and training
//! ([`crate::train`]) all run on it.

use crate::fashion_mnist::{Examples, InputMap, CLASSES, PIXELS};
use crate::model::{evaluate_with, predict_with, Evaluation, ModelView, SoftmaxRegression};
use crate::simd::{Isa, Kernel, Simd};

/// Examples evaluated as one independent part: parts are evaluated by
/// whichever thread, then merged in order, so the figures do not depend on
/// the number of threads.
const EVAL_PART: usize = 1024;

/// A model with its input map and the 1/255 pixel scale folded in: 784
/// weights per class on raw pixels. Cache-line aligned: the kernels run
/// measurably slower when weight rows straddle lines.
#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct PixelModel {
    /// `R^T W / 255`, class-major (`R` the identity for 28x28 models).
    pub weights: [[f32; PIXELS]; CLASSES],
    /// The model's bias, unchanged by folding.
    pub bias: [f32; CLASSES],
}

impl PixelModel {
    /// All zero; fill with [`PixelModel::fold_from`].
    pub const fn zeroed() -> Self {
        PixelModel {
            weights: [[0.0; PIXELS]; CLASSES],
            bias: [0.0; CLASSES],
        }
    }

    /// Folds `model`'s input map `M` and the 1/255 pixel scale into these
    /// weights.
    pub fn fold_from<const IN: usize, M: InputMap<IN>>(
        &mut self,
        model: &SoftmaxRegression<IN, CLASSES>,
    ) {
        for (w_eff, w) in self.weights.iter_mut().zip(&model.weights) {
            M::fold(w, 1.0 / 255.0, w_eff);
        }
        self.bias = model.bias;
    }

    /// The folded parameters as a model of 784 inputs on raw pixels (its
    /// `f32` methods take pixel values 0..=255).
    pub fn view(&self) -> ModelView<'_, PIXELS, CLASSES> {
        ModelView {
            weights: &self.weights,
            bias: &self.bias,
        }
    }

    /// The most probable class of each image.
    ///
    /// # Panics
    /// If `classes` is shorter than `images`.
    pub fn predict(&self, images: &[[u8; PIXELS]], classes: &mut [u8]) {
        struct Job<'a>(&'a PixelModel, &'a [[u8; PIXELS]], &'a mut [u8]);
        impl Kernel for Job<'_> {
            type Output = ();
            #[inline(always)]
            fn run<S: Simd>(self, s: S) {
                let Job(model, images, classes) = self;
                predict_with(s, &model.weights, &model.bias, 1.0, images, classes);
            }
        }
        Isa::current().dispatch(Job(self, images, classes));
    }

    /// Loss and confusion counts over `data` at level `isa`, on up to
    /// `threads` threads (`std`; one without it). The figures are the same
    /// for any number of threads.
    ///
    /// # Panics
    /// If a label is not a class, or this CPU cannot run `isa`.
    pub fn evaluate(&self, data: Examples<'_>, isa: Isa, threads: usize) -> Evaluation {
        let parts = evaluation_parts(data);
        let mut total = Evaluation::default();
        #[cfg(feature = "std")]
        if threads > 1 && parts > 1 && crate::CAN_SPAWN_THREADS {
            use std::vec::Vec;
            let threads = threads.min(parts);
            // Thread `t` takes parts `t, t + threads, ...`; the results are
            // merged in part order.
            let mut results: Vec<Option<Evaluation>> = std::vec![None; parts];
            std::thread::scope(|scope| {
                let handles: Vec<_> = (1..threads)
                    .map(|t| {
                        scope.spawn(move || {
                            (t..parts)
                                .step_by(threads)
                                .map(|p| (p, self.evaluate_part(data, isa, p)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                for p in (0..parts).step_by(threads) {
                    results[p] = Some(self.evaluate_part(data, isa, p));
                }
                for handle in handles {
                    for (p, e) in handle.join().expect("an evaluation thread panicked") {
                        results[p] = Some(e);
                    }
                }
            });
            for e in results.iter().flatten() {
                total.merge(e);
            }
            return total;
        }
        let _ = threads;
        for p in 0..parts {
            total.merge(&self.evaluate_part(data, isa, p));
        }
        total
    }

    /// Part `p` of [`PixelModel::evaluate`] (of [`evaluation_parts`]), for
    /// whichever thread takes it.
    pub(crate) fn evaluate_part(&self, data: Examples<'_>, isa: Isa, p: usize) -> Evaluation {
        let rows = p * EVAL_PART..((p + 1) * EVAL_PART).min(data.images.len());
        isa.dispatch(EvaluatePart {
            model: self,
            images: &data.images[rows.clone()],
            labels: &data.labels[rows],
        })
    }
}

/// How many independent parts [`PixelModel::evaluate`] cuts `data` into.
///
/// # Panics
/// If `data` has not one label per image.
pub(crate) fn evaluation_parts(data: Examples<'_>) -> usize {
    assert_eq!(data.images.len(), data.labels.len(), "one label per image");
    data.images.len().div_ceil(EVAL_PART)
}

/// One part of [`PixelModel::evaluate`].
struct EvaluatePart<'a> {
    model: &'a PixelModel,
    images: &'a [[u8; PIXELS]],
    labels: &'a [u8],
}

impl Kernel for EvaluatePart<'_> {
    type Output = Evaluation;
    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> Evaluation {
        let model = self.model;
        evaluate_with(
            s,
            &model.weights,
            &model.bias,
            1.0,
            self.images,
            self.labels,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fashion_mnist::Native;
    use std::vec::Vec;

    /// A case to count by hand: class `j`'s only weight is 1 on input `j`,
    /// and image `i` is black but for pixel `predicted(i)`, which is white.
    /// So the logits are 1 for that class and 0 for the nine others, every
    /// prediction is `predicted(i)`, and an example's loss is
    /// `ln(e + 9) - 1` when that is its label and `ln(e + 9)` when not.
    fn predicted(i: usize) -> usize {
        (7 * i + i / 10) % CLASSES
    }

    fn case(n: usize) -> (std::boxed::Box<PixelModel>, Vec<[u8; PIXELS]>, Vec<u8>) {
        let mut model = std::boxed::Box::new(SoftmaxRegression::<PIXELS, CLASSES>::zeroed());
        for j in 0..CLASSES {
            model.weights[j][j] = 1.0;
        }
        let mut pixels = std::boxed::Box::new(PixelModel::zeroed());
        pixels.fold_from::<PIXELS, Native>(&model);
        let mut images = std::vec![[0u8; PIXELS]; n];
        for (i, image) in images.iter_mut().enumerate() {
            image[predicted(i)] = 255;
        }
        let labels = (0..n).map(|i| (i % CLASSES) as u8).collect();
        (pixels, images, labels)
    }

    #[test]
    fn evaluation_over_parts_and_threads_is_the_hand_count() {
        // Three parts of `EVAL_PART`, the last one short.
        let n = 2 * EVAL_PART + 452;
        let (model, images, labels) = case(n);
        let mut want = [[0u32; CLASSES]; CLASSES];
        for (i, &label) in labels.iter().enumerate() {
            want[usize::from(label)][predicted(i)] += 1;
        }
        let correct: u32 = (0..CLASSES).map(|j| want[j][j]).sum();
        assert!(correct > 0 && (correct as usize) < n, "a mixed case");
        let e = core::f64::consts::E;
        let want_loss = f64::from(correct) * ((e + 9.0).ln() - 1.0)
            + (n - correct as usize) as f64 * (e + 9.0).ln();

        let data = Examples {
            images: &images,
            labels: &labels,
        };
        for isa in crate::simd::tests::available() {
            let first = model.evaluate(data, isa, 1);
            assert_eq!(first.confusion, want, "{isa}");
            assert_eq!(first.count(), n);
            assert_eq!(first.correct(), correct as usize);
            let loss = first.loss_sum;
            assert!(
                ((loss - want_loss) / want_loss).abs() < 1e-5,
                "{isa}: {loss} vs {want_loss}"
            );
            for threads in [0, 2, 3, 4, 8] {
                // The same figures to the bit for any number of threads
                // (none meaning one).
                assert_eq!(
                    model.evaluate(data, isa, threads),
                    first,
                    "{isa}, {threads} threads"
                );
            }
        }
        let none = Examples {
            images: &[],
            labels: &[],
        };
        assert_eq!(
            model.evaluate(none, Isa::current(), 2),
            Evaluation::default()
        );
    }

    #[test]
    fn predictions_and_the_view_are_the_folded_model() {
        let (model, images, _) = case(150);
        let mut classes = std::vec![u8::MAX; images.len()];
        model.predict(&images, &mut classes);
        for (i, &c) in classes.iter().enumerate() {
            assert_eq!(usize::from(c), predicted(i), "image {i}");
        }
        // The view takes pixel values, not pixels over 255.
        let view = model.view();
        let pixel_values: [f32; PIXELS] = images[3].map(f32::from);
        assert_eq!(usize::from(view.classify(&pixel_values)), predicted(3));
        let p = view.probabilities(&pixel_values);
        let e = core::f32::consts::E;
        assert!((p[predicted(3)] - e / (e + 9.0)).abs() < 1e-6);

        // Folding leaves the bias as it is.
        let mut biased = SoftmaxRegression::<PIXELS, CLASSES>::zeroed();
        biased.bias = core::array::from_fn(|j| j as f32 - 4.5);
        let mut folded = PixelModel::zeroed();
        folded.fold_from::<PIXELS, Native>(&biased);
        assert_eq!(folded.bias, biased.bias);
    }
}
