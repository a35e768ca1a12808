//! The softreg lab's WebAssembly module: the core's training loop behind raw
//! `extern "C"` exports over linear memory, for `cli/www/worker.js`.
//!
//! There is no generated glue (no wasm-bindgen): every export takes and
//! returns numbers, and bulk data crosses as bytes in the module's memory.
//! The worker asks for a buffer ([`lab_inbox`]), writes a file's bytes at the
//! address it gets, and calls the export that reads them ([`lab_load`],
//! [`lab_load_model`]); results lie in buffers owned here whose addresses
//! and lengths the exports return, and the worker copies them out with typed
//! arrays. That is a dozen lines of JavaScript instead of a code generator
//! to install and a second, generated, JavaScript file to ship and keep in
//! step with the module.
//!
//! The state lives in one `static` behind a `Mutex`: a worker runs one
//! instance on one thread, so the lock is never contended. An export that
//! fails returns a negative number and leaves a one-line message in
//! [`lab_error`]; nothing panics on bad input (a panic would be a trap that
//! kills the instance).

pub mod session;

use session::{Dataset, EpochSummary, Model, Progress, Session, PREDICTION_BATCH};
use softreg::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS, RESIZED_SIDE};
use softreg::train::{Sgd, Softmax, Stop};
use std::sync::{Mutex, MutexGuard};

/// Everything the exports share.
struct Lab {
    /// Bytes the worker writes in for [`lab_load`] and [`lab_load_model`].
    inbox: Vec<u8>,
    train: Dataset,
    validation: Dataset,
    session: Option<Session>,
    /// The losses of the steps of the last [`lab_steps`] call.
    losses: Vec<f32>,
    /// `[batch, batches]` of the last step taken.
    position: [u32; 2],
    /// `[epoch, train loss, validation loss, validation accuracy]` of the
    /// last epoch evaluated.
    report: [f64; 4],
    /// `confusion[true][predicted]` of that evaluation, row-major.
    confusion: [u32; CLASSES * CLASSES],
    /// Predicted classes of the first validation batch.
    predicted: Vec<u8>,
    /// The templates, `[class][pixel]`, 784 per class.
    templates: Vec<f32>,
    probabilities: [f32; CLASSES],
    resized: [f32; RESIZED_PIXELS],
    /// A model file written by [`lab_save_model`].
    model_file: Vec<u8>,
    error: String,
}

static LAB: Mutex<Lab> = Mutex::new(Lab {
    inbox: Vec::new(),
    train: Dataset {
        images: Vec::new(),
        labels: Vec::new(),
    },
    validation: Dataset {
        images: Vec::new(),
        labels: Vec::new(),
    },
    session: None,
    losses: Vec::new(),
    position: [0; 2],
    report: [0.0; 4],
    confusion: [0; CLASSES * CLASSES],
    predicted: Vec::new(),
    templates: Vec::new(),
    probabilities: [0.0; CLASSES],
    resized: [0.0; RESIZED_PIXELS],
    model_file: Vec::new(),
    error: String::new(),
});

fn lab() -> MutexGuard<'static, Lab> {
    // A poisoned lock needs a panic, and panics abort this module.
    LAB.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lab {
    /// Records `message` for [`lab_error`] and returns -1.
    fn fail(&mut self, message: impl Into<String>) -> i32 {
        self.error = message.into();
        -1
    }

    /// Copies an evaluation and the first batch's predictions out, and the
    /// templates.
    fn record(&mut self, summary: &EpochSummary) {
        let v = &summary.validation;
        self.report = [
            f64::from(summary.epoch),
            summary.train_loss,
            v.mean_loss(),
            v.accuracy(),
        ];
        for (out, count) in self.confusion.iter_mut().zip(v.confusion.iter().flatten()) {
            *out = *count;
        }
        if let (Some(session), Ok(validation)) =
            (&self.session, self.validation.examples("validation"))
        {
            session.predict_first_batch(validation, &mut self.predicted);
        }
        self.copy_templates();
    }

    /// The one line the page shows when training stopped on a loss that is
    /// not finite, with what to change.
    fn stopped(&mut self, stop: Stop, epoch: u32, softmax: Softmax) -> i32 {
        let message = match stop {
            Stop::Diverged { batch, loss } => {
                let hint = match softmax {
                    Softmax::Naive => "naive softmax: exp overflows or underflows; choose stable",
                    Softmax::Stable => "the learning rate is too large; choose a smaller one",
                };
                format!(
                    "stopped: the loss of batch {} in epoch {epoch} is {loss} ({hint})",
                    batch + 1
                )
            }
            other => format!("stopped in epoch {epoch}: {other}"),
        };
        self.fail(message)
    }

    fn copy_templates(&mut self) {
        if let Some(session) = &self.session {
            self.templates.clear();
            self.templates
                .extend(session.templates().weights.iter().flatten());
        }
    }
}

/// A buffer of `len` bytes for the worker to write a file into; returns its
/// address. The next call may move it.
#[no_mangle]
pub extern "C" fn lab_inbox(len: usize) -> *mut u8 {
    let mut lab = lab();
    lab.inbox.clear();
    lab.inbox.resize(len, 0);
    lab.inbox.as_mut_ptr()
}

/// Parses the inbox as one of the four data files: 0 training images, 1
/// training labels, 2 validation images, 3 validation labels. Returns the
/// number of images or labels, or -1 (see [`lab_error`]). Ends a session
/// that trains on the set it replaces.
#[no_mangle]
pub extern "C" fn lab_load(file: u32) -> i32 {
    let mut guard = lab();
    let lab = &mut *guard;
    let inbox = std::mem::take(&mut lab.inbox);
    let result = match file {
        0 => lab
            .train
            .set_images(&inbox)
            .map(|()| lab.train.images.len()),
        1 => lab
            .train
            .set_labels(&inbox)
            .map(|()| lab.train.labels.len()),
        2 => lab
            .validation
            .set_images(&inbox)
            .map(|()| lab.validation.images.len()),
        3 => lab
            .validation
            .set_labels(&inbox)
            .map(|()| lab.validation.labels.len()),
        _ => Err(format!("no data file number {file}")),
    };
    if file < 2 {
        lab.session = None;
    }
    match result {
        Ok(n) => n as i32,
        Err(e) => lab.fail(e),
    }
}

/// The softmax numbered `softmax` by the page: 0 the stable one, 1 the
/// chapter's naive one (its first exercise).
fn softmax_numbered(softmax: u32) -> Result<Softmax, String> {
    match softmax {
        0 => Ok(Softmax::Stable),
        1 => Ok(Softmax::Naive),
        _ => Err(format!("no softmax number {softmax} (0 stable, 1 naive)")),
    }
}

/// Starts a run with the chapter's recipe at learning rate `lr`, batch size
/// `batch_size` and seed `seed`, its loss computed with softmax `softmax`
/// (0 stable, 1 naive). Returns 0, or -1 (see [`lab_error`]).
#[no_mangle]
pub extern "C" fn lab_start(lr: f32, batch_size: u32, seed: u32, softmax: u32) -> i32 {
    let mut lab = lab();
    let softmax = match softmax_numbered(softmax) {
        Ok(softmax) => softmax,
        Err(e) => return lab.fail(e),
    };
    let train_len = match lab.train.examples("training") {
        Ok(train) => train.len(),
        Err(e) => return lab.fail(e),
    };
    if let Err(e) = lab.validation.examples("validation") {
        return lab.fail(e);
    }
    let sgd = Sgd {
        batch_size: batch_size as usize,
        lr,
    };
    match Session::new(sgd, softmax, u64::from(seed), train_len) {
        Ok(session) => {
            lab.session = Some(session);
            lab.copy_templates();
            0
        }
        Err(e) => lab.fail(e.to_string()),
    }
}

/// Takes up to `max_steps` steps of the run. Returns 0 when the epoch goes
/// on, 1 when it ended (its figures are in [`lab_report`]), or -1 when
/// training stopped on a loss that is not finite (the message names the
/// batch and the epoch) or there is no run (see [`lab_error`]). The steps'
/// losses are in [`lab_losses`], the position in [`lab_position`].
#[no_mangle]
pub extern "C" fn lab_steps(max_steps: u32) -> i32 {
    let mut guard = lab();
    let lab = &mut *guard;
    lab.losses.clear();
    let Some(session) = lab.session.as_mut() else {
        return lab.fail("no run: start one first");
    };
    let (Ok(train), Ok(validation)) = (
        lab.train.examples("training"),
        lab.validation.examples("validation"),
    ) else {
        return lab.fail("the data is not loaded");
    };
    let (losses, position) = (&mut lab.losses, &mut lab.position);
    let result = session.steps(train, validation, max_steps as usize, |step| {
        losses.push(step.loss);
        *position = [step.batch as u32, step.batches as u32];
    });
    match result {
        Ok(Progress::InEpoch) => {
            lab.copy_templates();
            0
        }
        Ok(Progress::EpochDone(summary)) => {
            lab.record(&summary);
            1
        }
        Err(stop) => {
            let (epoch, softmax) = (session.epochs_done() + 1, session.softmax());
            lab.copy_templates();
            lab.stopped(stop, epoch, softmax)
        }
    }
}

/// Ends the run, if any.
#[no_mangle]
pub extern "C" fn lab_reset() {
    let mut lab = lab();
    lab.session = None;
    lab.templates.clear();
    lab.predicted.clear();
}

/// Writes the model of the last completed epoch as a model file (the core's
/// format, which `softreg evaluate --model` reads) into a buffer; returns
/// its length, or -1 without a run. The bytes are at [`lab_model_file`].
#[no_mangle]
pub extern "C" fn lab_save_model() -> i32 {
    let mut guard = lab();
    let lab = &mut *guard;
    let Some(session) = &lab.session else {
        return lab.fail("no model: train or load one first");
    };
    let file = &mut lab.model_file;
    file.clear();
    session
        .model()
        .write_file(RESIZED_SIDE as u32, |chunk| {
            file.extend_from_slice(chunk);
            Ok::<(), ()>(())
        })
        .expect("writing to a Vec cannot fail");
    file.len() as i32
}

/// Address of the file [`lab_save_model`] wrote.
#[no_mangle]
pub extern "C" fn lab_model_file() -> *const u8 {
    lab().model_file.as_ptr()
}

/// Reads the inbox as a model file of a 32x32 model (what `softreg train`
/// writes by default) and makes it the run's model, to be evaluated or
/// trained further with `lr`, `batch_size`, `seed` and softmax `softmax`
/// (as for [`lab_start`]). Returns 0 with its validation figures in
/// [`lab_report`], or -1 (see [`lab_error`]).
#[no_mangle]
pub extern "C" fn lab_load_model(lr: f32, batch_size: u32, seed: u32, softmax: u32) -> i32 {
    let mut guard = lab();
    let lab = &mut *guard;
    let softmax = match softmax_numbered(softmax) {
        Ok(softmax) => softmax,
        Err(e) => return lab.fail(e),
    };
    let bytes = std::mem::take(&mut lab.inbox);
    let mut model = Box::new(Model::zeroed());
    if let Err(e) = model.load_file_bytes(&bytes) {
        let hint = match softreg::model_file::read_header(&bytes) {
            Ok(h) if h.inputs as usize == PIXELS => {
                " (a 28x28 model: the lab trains and loads the 32x32 ones)"
            }
            _ => "",
        };
        return lab.fail(format!("{e}{hint}"));
    }
    let (Ok(train), Ok(validation)) = (
        lab.train.examples("training"),
        lab.validation.examples("validation"),
    ) else {
        return lab.fail("the data is not loaded");
    };
    let sgd = Sgd {
        batch_size: batch_size as usize,
        lr,
    };
    let mut session = match Session::from_model(model, sgd, softmax, u64::from(seed), train.len()) {
        Ok(session) => session,
        Err(e) => return lab.fail(e.to_string()),
    };
    let summary = session.evaluate(validation);
    lab.session = Some(session);
    lab.record(&summary);
    0
}

/// The ten class probabilities of validation image `index` under the model
/// of the last completed epoch (at [`lab_probabilities`]), and the 32x32
/// image the model sees (at [`lab_resized`]). Returns 0, or -1.
#[no_mangle]
pub extern "C" fn lab_classify(index: u32) -> i32 {
    let mut guard = lab();
    let lab = &mut *guard;
    let Some(session) = &lab.session else {
        return lab.fail("no model: train or load one first");
    };
    let Some(image) = lab.validation.images.get(index as usize) else {
        return lab.fail(format!("no validation image {index}"));
    };
    lab.probabilities = session::probabilities(session.model(), image, &mut lab.resized);
    0
}

/// Address of the last error message (UTF-8, [`lab_error_len`] bytes).
#[no_mangle]
pub extern "C" fn lab_error() -> *const u8 {
    lab().error.as_ptr()
}

/// Length of the last error message.
#[no_mangle]
pub extern "C" fn lab_error_len() -> usize {
    lab().error.len()
}

/// Address of the last [`lab_steps`] call's losses (`f32`, one per step).
#[no_mangle]
pub extern "C" fn lab_losses() -> *const f32 {
    lab().losses.as_ptr()
}

/// How many losses [`lab_losses`] holds.
#[no_mangle]
pub extern "C" fn lab_losses_len() -> usize {
    lab().losses.len()
}

/// Address of `[batch, batches]` (`u32`) of the last step.
#[no_mangle]
pub extern "C" fn lab_position() -> *const u32 {
    lab().position.as_ptr()
}

/// Address of `[epoch, train loss, validation loss, validation accuracy]`
/// (`f64`) of the last evaluation.
#[no_mangle]
pub extern "C" fn lab_report() -> *const f64 {
    lab().report.as_ptr()
}

/// Address of the last evaluation's confusion counts (`u32`, 10x10,
/// `[true][predicted]`).
#[no_mangle]
pub extern "C" fn lab_confusion() -> *const u32 {
    lab().confusion.as_ptr()
}

/// Address of the predicted classes of the first validation batch (bytes,
/// [`lab_predicted_len`] of them).
#[no_mangle]
pub extern "C" fn lab_predicted() -> *const u8 {
    lab().predicted.as_ptr()
}

/// How many predictions [`lab_predicted`] holds (at most 256).
#[no_mangle]
pub extern "C" fn lab_predicted_len() -> usize {
    lab().predicted.len().min(PREDICTION_BATCH)
}

/// Address of the templates (`f32`, `[class][pixel]`, 10x784): the weights
/// on the raw 28x28 pixels after the last step; empty without a run.
#[no_mangle]
pub extern "C" fn lab_templates() -> *const f32 {
    lab().templates.as_ptr()
}

/// How many values [`lab_templates`] holds (7840, or 0).
#[no_mangle]
pub extern "C" fn lab_templates_len() -> usize {
    lab().templates.len()
}

/// Address of the ten probabilities of [`lab_classify`] (`f32`).
#[no_mangle]
pub extern "C" fn lab_probabilities() -> *const f32 {
    lab().probabilities.as_ptr()
}

/// Address of the 32x32 image of [`lab_classify`] (`f32` in `[0, 1]`).
#[no_mangle]
pub extern "C" fn lab_resized() -> *const f32 {
    lab().resized.as_ptr()
}

/// Address of validation image `index` (784 bytes), or 0 if there is none.
#[no_mangle]
pub extern "C" fn lab_validation_image(index: u32) -> *const u8 {
    lab()
        .validation
        .images
        .get(index as usize)
        .map_or(std::ptr::null(), |image| image.as_ptr())
}

/// Address of the validation labels (bytes, one per image).
#[no_mangle]
pub extern "C" fn lab_validation_labels() -> *const u8 {
    lab().validation.labels.as_ptr()
}
