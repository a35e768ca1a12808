//! `softreg evaluate`: a saved model's loss, accuracy, per-class accuracy
//! and confusion matrix on the validation set; and model-file loading,
//! which `predict` shares.

use crate::args::EvaluateArgs;
use crate::fit::{self, Model};
use anyhow::{anyhow, bail, Context, Result};
use softreg::fashion_mnist::{CLASSES, CLASS_NAMES, PIXELS, RESIZED_PIXELS};
use softreg::model_file;
use softreg::parallel;
use softreg::train::{Examples, InputMap, Native, Resized};
use softreg_cli::dataset::{Source, Split, SplitFiles};
use std::io::Write;
use std::path::Path;

/// A model file read from disk, with its input size decided at run time.
pub enum LoadedModel {
    /// 32x32 inputs (the chapter's resize).
    Resized(Box<Model<RESIZED_PIXELS>>),
    /// Native 28x28 inputs.
    Native(Box<Model<PIXELS>>),
}

/// Reads a model file and loads it at the input size its header names.
pub fn load_model(path: &Path) -> Result<LoadedModel> {
    let shown = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read model {shown}"))?;
    let header = model_file::read_header(&bytes).map_err(|e| anyhow!("{shown}: {e}"))?;
    if header.outputs as usize != CLASSES {
        bail!(
            "{shown}: model has {} classes, Fashion-MNIST has {CLASSES}",
            header.outputs
        );
    }
    fn load<const IN: usize>(bytes: &[u8], shown: &str) -> Result<Box<Model<IN>>> {
        let mut model = Box::new(Model::<IN>::zeroed());
        model
            .load_file_bytes(bytes)
            .map_err(|e| anyhow!("{shown}: {e}"))?;
        Ok(model)
    }
    let shown = shown.to_string();
    match header.inputs as usize {
        RESIZED_PIXELS => Ok(LoadedModel::Resized(load(&bytes, &shown)?)),
        PIXELS => Ok(LoadedModel::Native(load(&bytes, &shown)?)),
        n => bail!("{shown}: model has {n} inputs; softreg knows {PIXELS} (28x28) and {RESIZED_PIXELS} (32x32)"),
    }
}

/// Runs `softreg evaluate`.
pub fn evaluate_command(args: &EvaluateArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let source = Source::new(
        args.data.data_dir.as_deref(),
        args.data.offline,
        args.data.mirror.as_deref(),
    );
    let files = SplitFiles::open(&source, Split::Test)?;
    let test = files.examples()?;
    match model {
        LoadedModel::Resized(m) => report::<RESIZED_PIXELS, Resized>(&m, test),
        LoadedModel::Native(m) => report::<PIXELS, Native>(&m, test),
    }
}

fn report<const IN: usize, M: InputMap<IN>>(model: &Model<IN>, test: Examples<'_>) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The same sums as training's per-epoch validation, so the figures match.
    let eval = parallel::evaluate::<IN, M>(model, test, threads);
    let predicted = fit::predict_all::<IN, M>(model, test.images);
    let labels = test.labels;
    // confusion[true][predicted]
    let mut confusion = [[0usize; CLASSES]; CLASSES];
    for (&t, &p) in labels.iter().zip(&predicted) {
        confusion[usize::from(t)][usize::from(p)] += 1;
    }

    let mut out = std::io::stdout().lock();
    writeln!(out, "validation images: {}", eval.count)?;
    writeln!(out, "loss:     {:.4}", eval.mean_loss())?;
    writeln!(
        out,
        "accuracy: {:.4} ({} of {})",
        eval.accuracy(),
        eval.correct,
        eval.count
    )?;
    writeln!(out)?;
    writeln!(out, "{:<12} {:>8} {:>7}", "class", "accuracy", "images")?;
    for (class, row) in confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        let acc = if total == 0 {
            f64::NAN
        } else {
            row[class] as f64 / total as f64
        };
        writeln!(out, "{:<12} {:>8.4} {:>7}", CLASS_NAMES[class], acc, total)?;
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
    for (class, row) in confusion.iter().enumerate() {
        write!(out, "{:<12}", CLASS_NAMES[class])?;
        for count in row {
            write!(out, " {count:>5}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Column headings of the confusion matrix: five characters at most, so the
/// table fits in 80 columns.
fn short_name(class: usize) -> &'static str {
    [
        "tshrt", "trous", "pullo", "dress", "coat", "sandl", "shirt", "snkr", "bag", "boot",
    ][class]
}
