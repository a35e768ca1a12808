//! `softreg evaluate`: a saved model's loss, accuracy, per-class accuracy
//! and confusion matrix on the validation set, all from one evaluation.

use crate::args::EvaluateArgs;
use crate::confusion;
use crate::saved_model::SavedModel;
use anyhow::{bail, Result};
use softreg::fashion_mnist::{
    Examples, InputMap, Native, Resized, CLASSES, CLASS_NAMES, PIXELS, RESIZED_PIXELS,
};
use softreg::pixel_model::PixelModel;
use softreg::{Evaluation, Isa};
use softreg_cli::atomic_file::write_atomically;
use softreg_cli::console;
use softreg_cli::dataset::{Source, Split, SplitFiles};
use std::fmt::Write;

/// Runs `softreg evaluate`.
pub fn evaluate_command(args: &EvaluateArgs) -> Result<()> {
    // Before any work: the picture must not replace a file already there.
    if let Some(path) = &args.confusion {
        if path.symlink_metadata().is_ok() {
            bail!(
                "--confusion {}: already exists; give a new file name",
                path.display()
            );
        }
    }
    let model = SavedModel::read(&args.model)?;
    let source = Source::new(
        args.data.data_dir.as_deref(),
        args.data.offline,
        args.data.mirror.as_deref(),
    );
    let files = SplitFiles::open(&source, Split::Test)?;
    let test = files.examples()?;
    let eval = if model.resizes() {
        evaluate::<RESIZED_PIXELS, Resized>(&model, test)?
    } else {
        evaluate::<PIXELS, Native>(&model, test)?
    };
    if eval.loss_sum.is_nan() {
        anyhow::bail!(
            "{}: the model's weights overflow: its probabilities are not numbers \
             (the file is intact but its values are too large to use)",
            args.model.display()
        );
    }
    report(&eval)?;
    if let Some(path) = &args.confusion {
        write_atomically(path, |out| confusion::confusion_png(out, &eval.confusion))?;
        console::out(&format!("wrote the confusion matrix to {}", path.display()))?;
    }
    Ok(())
}

/// The evaluation of `model` on `test`: an `f32` model as training
/// validates it, on its weights folded for raw pixels (so the figures are
/// the run's own); an int8 model as the firmware runs it, image by image.
fn evaluate<const IN: usize, M: InputMap<IN>>(
    model: &SavedModel,
    test: Examples<'_>,
) -> Result<Evaluation> {
    if let Some(f32_model) = model.f32_model::<IN>()? {
        let mut pixels = Box::new(PixelModel::zeroed());
        pixels.fold_from::<IN, M>(&f32_model);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        return Ok(pixels.evaluate(test, Isa::current(), threads));
    }
    let classifier = model.classifier::<IN>()?;
    let mut eval = Evaluation::default();
    for (image, &label) in test.images.iter().zip(test.labels) {
        let p = classifier.probabilities(image);
        let predicted = softreg::kernels::softmax::argmax(&p);
        eval.confusion[usize::from(label)][predicted] += 1;
        eval.loss_sum -= f64::from(p[usize::from(label)]).ln();
    }
    Ok(eval)
}

fn report(eval: &Evaluation) -> Result<()> {
    // The whole report is built first, then printed through `console`,
    // which never panics on a closed or full stdout.
    let mut out = String::new();
    writeln!(out, "validation images: {}", eval.count())?;
    writeln!(out, "loss:     {:.4}", eval.mean_loss())?;
    writeln!(
        out,
        "accuracy: {:.4} ({} of {})",
        eval.accuracy(),
        eval.correct(),
        eval.count()
    )?;
    writeln!(out)?;
    writeln!(out, "{:<12} {:>8} {:>7}", "class", "accuracy", "images")?;
    for (class, name) in CLASS_NAMES.iter().enumerate() {
        let (total, correct) = eval.of_class(class);
        let acc = correct as f64 / total as f64;
        writeln!(out, "{name:<12} {acc:>8.4} {total:>7}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "confusion matrix (rows: true class, columns: predicted class)"
    )?;
    write!(out, "{:<12}", "")?;
    for class in 0..CLASSES {
        write!(out, " {:>5}", short_name(class))?;
    }
    writeln!(out)?;
    for (class, row) in eval.confusion.iter().enumerate() {
        write!(out, "{:<12}", CLASS_NAMES[class])?;
        for count in row {
            write!(out, " {count:>5}")?;
        }
        writeln!(out)?;
    }
    console::out(out.trim_end_matches('\n'))
}

/// Column headings of the confusion matrix: five characters at most, so the
/// table fits in 80 columns.
fn short_name(class: usize) -> &'static str {
    [
        "tshrt", "trous", "pullo", "dress", "coat", "sandl", "shirt", "snkr", "bag", "boot",
    ][class]
}
