//! One training run of the lab: the chapter's `fit` loop taken a few steps
//! at a time, so that the Web Worker running it can report every batch and
//! hear "pause" between calls.
//!
//! It is `softreg::train::fit` unrolled, step for step: the same seeded
//! `Rng` draws `W ~ N(0, sigma^2)` and then shuffles the examples at the
//! start of every epoch, the same [`Trainer`] (two shards, one thread,
//! baseline SIMD level) takes the steps, and each epoch ends with an
//! evaluation on the validation set. The same recipe therefore gives the
//! same model as `softreg train --threads 1 --isa baseline` (the test
//! `the_same_model_as_fit` checks it on the host).

use softreg::fashion_mnist::{Examples, Resized, CLASSES, PIXELS, RESIZED_PIXELS};
use softreg::idx::{self, IdxError};
use softreg::pixel_model::PixelModel;
use softreg::train::{
    EpochProgress, Execution, SettingsError, Sgd, Softmax, StepReport, Stop, Trainer,
};
use softreg::{Evaluation, Isa, Rng, SoftmaxRegression};

/// The model the lab trains: the chapter's, on images resized to 32x32.
pub type Model = SoftmaxRegression<RESIZED_PIXELS, CLASSES>;

/// The chapter's standard deviation of the initial weights.
pub const SIGMA: f32 = 0.01;

/// The chapter's prediction step looks at the first validation batch.
pub const PREDICTION_BATCH: usize = 256;

/// How the steps are laid out: the command line's default shard count, on
/// the one thread a worker has, at the portable level (SIMD128 in wasm).
pub const EXECUTION: Execution = Execution {
    shards: softreg::train::DEFAULT_SHARDS,
    threads: 1,
    isa: Isa::Baseline,
};

/// Images and labels of one split, parsed from IDX bytes and owned.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// 28x28 images, row-major, one byte a pixel.
    pub images: Vec<[u8; PIXELS]>,
    /// One class per image.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Replaces the images with those of an IDX image file (`idx3-ubyte`).
    ///
    /// # Errors
    /// If the bytes are not an IDX image file of 28x28 images.
    pub fn set_images(&mut self, bytes: &[u8]) -> Result<(), String> {
        let images = idx::parse_images(bytes).map_err(|e: IdxError| e.to_string())?;
        let arrays = images
            .as_arrays::<PIXELS>()
            .filter(|_| (images.rows, images.cols) == (28, 28))
            .ok_or_else(|| {
                format!(
                    "images are {}x{}, Fashion-MNIST's are 28x28",
                    images.rows, images.cols
                )
            })?;
        self.images = arrays.to_vec();
        Ok(())
    }

    /// Replaces the labels with those of an IDX label file (`idx1-ubyte`).
    ///
    /// # Errors
    /// If the bytes are not an IDX label file of classes 0..=9.
    pub fn set_labels(&mut self, bytes: &[u8]) -> Result<(), String> {
        let labels = idx::parse_labels(bytes).map_err(|e| e.to_string())?;
        labels.check_classes(CLASSES).map_err(|e| e.to_string())?;
        self.labels = labels.labels.to_vec();
        Ok(())
    }

    /// The examples, once both files are in and agree.
    ///
    /// # Errors
    /// If a file is missing, or the counts differ.
    pub fn examples(&self, name: &str) -> Result<Examples<'_>, String> {
        if self.images.is_empty() || self.labels.is_empty() {
            return Err(format!("the {name} images and labels are not both loaded"));
        }
        if self.images.len() != self.labels.len() {
            return Err(format!(
                "the {name} set has {} images but {} labels",
                self.images.len(),
                self.labels.len()
            ));
        }
        Ok(Examples {
            images: &self.images,
            labels: &self.labels,
        })
    }
}

/// What an epoch measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochSummary {
    /// 1-based epoch number (0 for a model loaded from a file).
    pub epoch: u32,
    /// Mean training loss over the epoch, each batch's taken before its step.
    pub train_loss: f64,
    /// The whole validation set after the epoch.
    pub validation: Evaluation,
}

/// What a call of [`Session::steps`] got to.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// The epoch goes on.
    InEpoch,
    /// The epoch ended and was evaluated.
    EpochDone(Box<EpochSummary>),
}

/// A run in progress.
pub struct Session {
    trainer: Trainer<RESIZED_PIXELS, Resized>,
    rng: Rng,
    /// The order of the training examples, shuffled anew every epoch.
    order: Vec<u32>,
    epochs_done: u32,
    /// The epoch set aside between calls, if one is under way.
    progress: Option<EpochProgress>,
    /// The model in training as the kernels see it, after the last step.
    templates: Box<PixelModel>,
}

impl Session {
    /// A fresh run, as `fit` starts one: `W ~ N(0, sigma^2)` from `seed`,
    /// `b = 0`, its loss computed with `softmax`.
    ///
    /// # Errors
    /// If the SGD settings are out of range.
    pub fn new(
        sgd: Sgd,
        softmax: Softmax,
        seed: u64,
        train_len: usize,
    ) -> Result<Session, SettingsError> {
        let mut rng = Rng::seed_from_u64(seed);
        let mut model = Box::new(Model::zeroed());
        model.init_normal(&mut rng, SIGMA);
        Session::with_model(model, sgd, softmax, rng, train_len)
    }

    /// A run that goes on from a saved model, shuffling with `seed`'s
    /// stream.
    ///
    /// # Errors
    /// If the SGD settings are out of range.
    pub fn from_model(
        model: Box<Model>,
        sgd: Sgd,
        softmax: Softmax,
        seed: u64,
        train_len: usize,
    ) -> Result<Session, SettingsError> {
        Session::with_model(model, sgd, softmax, Rng::seed_from_u64(seed), train_len)
    }

    fn with_model(
        model: Box<Model>,
        sgd: Sgd,
        softmax: Softmax,
        rng: Rng,
        train_len: usize,
    ) -> Result<Session, SettingsError> {
        let mut templates = Box::new(PixelModel::zeroed());
        templates.fold_from::<RESIZED_PIXELS, Resized>(&model);
        Ok(Session {
            trainer: Trainer::new(model, sgd, EXECUTION)?.with_softmax(softmax),
            rng,
            order: (0..train_len as u32).collect(),
            epochs_done: 0,
            progress: None,
            templates,
        })
    }

    /// Takes up to `max_steps` SGD steps, starting an epoch (a new shuffle)
    /// if none is under way, and stopping early at the end of the epoch,
    /// which is then evaluated on `validation`. `on_step` hears each step.
    ///
    /// # Errors
    /// [`Stop::Diverged`] when a batch's loss is not finite; the model is
    /// then the one of the last completed epoch, and the next call starts
    /// a new epoch.
    ///
    /// # Panics
    /// If `train` is not the set of `train_len` examples the session was
    /// made for.
    pub fn steps(
        &mut self,
        train: Examples<'_>,
        validation: Examples<'_>,
        max_steps: usize,
        mut on_step: impl FnMut(StepReport),
    ) -> Result<Progress, Stop> {
        assert_eq!(train.len(), self.order.len(), "the training set changed");
        let progress = match self.progress.take() {
            Some(progress) => progress,
            None => {
                self.rng.shuffle(&mut self.order);
                self.trainer.begin_epoch(train, &self.order).suspend()
            }
        };
        let mut epoch = self.trainer.resume_epoch(train, &self.order, progress);
        let mut last = None;
        for _ in 0..max_steps {
            match epoch.step() {
                Some(Ok(report)) => {
                    on_step(report);
                    last = Some(report);
                    if report.batch + 1 == report.batches {
                        break;
                    }
                }
                Some(Err(stop)) => {
                    // The epoch is dropped unfinished: its steps, the
                    // diverged one included, never reach the model.
                    self.templates
                        .fold_from::<RESIZED_PIXELS, Resized>(self.trainer.model());
                    return Err(stop);
                }
                None => break,
            }
        }
        (*self.templates).clone_from(epoch.in_training());
        if last.is_some_and(|r| r.batch + 1 < r.batches) {
            self.progress = Some(epoch.suspend());
            return Ok(Progress::InEpoch);
        }
        let train_loss = epoch.finish();
        self.epochs_done += 1;
        Ok(Progress::EpochDone(Box::new(EpochSummary {
            epoch: self.epochs_done,
            train_loss,
            validation: self.trainer.evaluate(validation),
        })))
    }

    /// The validation figures of the model as it stands (for a loaded one).
    pub fn evaluate(&mut self, validation: Examples<'_>) -> EpochSummary {
        EpochSummary {
            epoch: self.epochs_done,
            train_loss: f64::NAN,
            validation: self.trainer.evaluate(validation),
        }
    }

    /// The softmax the loss is computed with.
    pub fn softmax(&self) -> Softmax {
        self.trainer.softmax()
    }

    /// Epochs completed.
    pub fn epochs_done(&self) -> u32 {
        self.epochs_done
    }

    /// The model as of the last completed epoch: what is saved, evaluated
    /// and asked for probabilities.
    pub fn model(&self) -> &Model {
        self.trainer.model()
    }

    /// The ten templates as the kernels see them after the last step:
    /// `W_eff = R^T W / 255`, 784 weights per class on the raw pixels.
    pub fn templates(&self) -> &PixelModel {
        &self.templates
    }

    /// The predicted class of the first validation batch's images.
    pub fn predict_first_batch(&self, validation: Examples<'_>, out: &mut Vec<u8>) {
        let n = PREDICTION_BATCH.min(validation.len());
        let mut folded = Box::new(PixelModel::zeroed());
        folded.fold_from::<RESIZED_PIXELS, Resized>(self.model());
        out.resize(n, 0);
        folded.predict(&validation.images[..n], out);
    }
}

/// The chapter's forward pass on one image: resized to 32x32 by the core's
/// resize (`tf.image.resize(x / 255, (32, 32))`), then `softmax(x W + b)`.
/// `resized` gets the 32x32 image the model sees.
pub fn probabilities(
    model: &Model,
    image: &[u8; PIXELS],
    resized: &mut [f32; RESIZED_PIXELS],
) -> [f32; CLASSES] {
    softreg::resize::resize_28_to_32(image, resized);
    model.probabilities(resized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use softreg::fashion_mnist::Resized;
    use softreg::train::{fit, fit_with, Recipe};
    use std::ops::ControlFlow;

    /// Class = which quarter of the rows is bright.
    fn toy(n: usize, seed: u64) -> Dataset {
        let mut rng = Rng::seed_from_u64(seed);
        let mut set = Dataset::default();
        for _ in 0..n {
            let label = rng.below(4) as u8;
            let mut image = [0u8; PIXELS];
            for (k, v) in image.iter_mut().enumerate() {
                let bright = k / (PIXELS / 4) == usize::from(label);
                *v = (rng.below(80) + if bright { 170 } else { 0 }) as u8;
            }
            set.images.push(image);
            set.labels.push(label);
        }
        set
    }

    #[test]
    fn the_same_model_as_fit() {
        let (tr, va) = (toy(300, 1), toy(60, 2));
        let recipe = Recipe {
            epochs: 3,
            sgd: Sgd {
                batch_size: 32,
                lr: 0.5,
            },
            sigma: SIGMA,
            seed: 9,
        };
        let (train, validation) = (tr.examples("t").unwrap(), va.examples("v").unwrap());
        let fitted = fit::<RESIZED_PIXELS, Resized>(&recipe, EXECUTION, train, validation, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        let mut session =
            Session::new(recipe.sgd, Softmax::Stable, recipe.seed, tr.images.len()).unwrap();
        let mut summaries = Vec::new();
        let mut steps = 0;
        while summaries.len() < 3 {
            // Three steps a call: the ten batches of an epoch never line up.
            if let Progress::EpochDone(s) =
                session.steps(train, validation, 3, |_| steps += 1).unwrap()
            {
                summaries.push(*s);
            }
        }
        assert_eq!(steps, 30);
        assert_eq!(session.model(), &*fitted.model);
        for (s, h) in summaries.iter().zip(&fitted.history) {
            assert_eq!(
                (s.epoch, s.train_loss, s.validation),
                (h.epoch, h.train_loss, h.validation)
            );
        }
        assert!(summaries[2].validation.accuracy() > 0.9);
    }

    #[test]
    fn a_diverged_epoch_leaves_the_last_model() {
        let (tr, va) = (toy(100, 3), toy(20, 4));
        let (train, validation) = (tr.examples("t").unwrap(), va.examples("v").unwrap());
        let sgd = Sgd {
            batch_size: 10,
            lr: 3e38,
        };
        let mut session = Session::new(sgd, Softmax::Stable, 1, 100).unwrap();
        let before = session.model().clone();
        let err = loop {
            match session.steps(train, validation, 4, |_| {}) {
                Ok(_) => continue,
                Err(stop) => break stop,
            }
        };
        assert!(matches!(err, Stop::Diverged { .. }), "{err:?}");
        assert_eq!(session.model(), &before);
        assert!(session
            .templates()
            .weights
            .iter()
            .flatten()
            .all(|w| w.is_finite()));
    }

    #[test]
    fn the_naive_softmax_is_fit_with_it() {
        let (tr, va) = (toy(200, 5), toy(40, 6));
        let recipe = Recipe {
            epochs: 2,
            sgd: Sgd {
                batch_size: 16,
                lr: 0.1,
            },
            sigma: SIGMA,
            seed: 4,
        };
        let (train, validation) = (tr.examples("t").unwrap(), va.examples("v").unwrap());
        let fitted = fit_with::<RESIZED_PIXELS, Resized>(
            &recipe,
            Softmax::Naive,
            EXECUTION,
            train,
            validation,
            |_| ControlFlow::Continue(()),
        )
        .unwrap();
        let mut session = Session::new(recipe.sgd, Softmax::Naive, recipe.seed, 200).unwrap();
        assert_eq!(session.softmax(), Softmax::Naive);
        let mut epochs = 0;
        while epochs < 2 {
            if let Progress::EpochDone(_) = session.steps(train, validation, 5, |_| {}).unwrap() {
                epochs += 1;
            }
        }
        assert_eq!(session.model(), &*fitted.model);
    }

    #[test]
    fn a_large_step_overflows_the_naive_softmax_only() {
        // At lr 100 the logits pass 88 within a few steps: exp overflows
        // in the naive softmax, while the stable one's loss stays finite.
        let (tr, va) = (toy(100, 7), toy(20, 8));
        let (train, validation) = (tr.examples("t").unwrap(), va.examples("v").unwrap());
        let sgd = Sgd {
            batch_size: 10,
            lr: 100.0,
        };
        let mut naive = Session::new(sgd, Softmax::Naive, 1, 100).unwrap();
        let err = naive.steps(train, validation, 10, |_| {}).unwrap_err();
        assert!(matches!(err, Stop::Diverged { .. }), "{err:?}");
        let mut stable = Session::new(sgd, Softmax::Stable, 1, 100).unwrap();
        let mut losses = Vec::new();
        let done = stable
            .steps(train, validation, 10, |s| losses.push(s.loss))
            .unwrap();
        assert!(matches!(done, Progress::EpochDone(_)));
        assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    }

    #[test]
    fn idx_files_are_checked() {
        let mut set = Dataset::default();
        assert!(set.set_images(b"not an idx file").is_err());
        // An IDX label file with a label 10.
        let mut labels = vec![0, 0, 8, 1, 0, 0, 0, 2];
        labels.extend([3, 10]);
        assert!(set.set_labels(&labels).is_err());
        labels[9] = 9;
        set.set_labels(&labels).unwrap();
        assert_eq!(set.labels, [3, 9]);
        assert!(set.examples("x").unwrap_err().contains("not both loaded"));
    }

    #[test]
    fn probabilities_are_the_resized_forward_pass() {
        let model = Model::new(&mut Rng::seed_from_u64(5), 0.5);
        let image = toy(1, 6).images[0];
        let mut resized = [0.0; RESIZED_PIXELS];
        let p = probabilities(&model, &image, &mut resized);
        let mut expected = [0.0; RESIZED_PIXELS];
        softreg::resize::resize_28_to_32(&image, &mut expected);
        assert_eq!(resized, expected);
        assert_eq!(p, model.probabilities(&expected));
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}
