//! `softreg train`: load the data, train with the core's `fit` loop, and
//! write the run directory.

use crate::args::{Resize, SoftmaxKind, TrainArgs};
use crate::confusion;
use crate::outputs::{self, EpochMetrics, RunDir, MODEL_FILE};
use crate::picture::{self, Mistake};
use crate::plot;
use crate::templates;
use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use softreg::fashion_mnist::{InputMap, Native, Resized, PIXELS, RESIZED_PIXELS};
use softreg::pixel_model::PixelModel;
use softreg::train::{self, Event, Execution, FitError, Recipe, Sgd};
use softreg::Isa;
use softreg_cli::console;
use softreg_cli::dataset::{Source, Split, SplitFiles};
use std::ops::ControlFlow;
use std::time::Instant;

/// The chapter's prediction step looks at the first validation batch.
const PREDICTION_BATCH: usize = 256;

/// Where human-readable text goes: stdout normally, stderr with `--json`, so
/// that stdout then holds nothing but the JSON line.
#[derive(Clone, Copy)]
pub struct Console {
    to_stderr: bool,
}

impl Console {
    /// Prints one line of the report; only a full disk behind stdout is an
    /// error (a closed pipe is not, see [`console`]).
    pub fn line(&self, text: &str) -> Result<()> {
        if self.to_stderr {
            console::err(text);
            Ok(())
        } else {
            console::out(text)
        }
    }
}

/// Runs `softreg train`.
pub fn train_command(args: &TrainArgs, isa: Isa) -> Result<()> {
    match args.resize {
        Resize::To32 => train_with::<RESIZED_PIXELS, Resized>(args, isa),
        Resize::Native28 => train_with::<PIXELS, Native>(args, isa),
    }
}

fn train_with<const IN: usize, M: InputMap<IN>>(args: &TrainArgs, isa: Isa) -> Result<()> {
    let console = Console {
        to_stderr: args.json,
    };
    // Claim the run directory first: a bad --out should fail in a
    // millisecond, not after the data is loaded. Until `keep`, an error
    // removes it again.
    let mut run = RunDir::create(args.out.as_deref())?;

    let source = Source::new(
        args.data.data_dir.as_deref(),
        args.data.offline,
        args.data.mirror.as_deref(),
    );
    let load_start = Instant::now();
    let train_files = SplitFiles::open(&source, Split::Train)?;
    let test_files = SplitFiles::open(&source, Split::Test)?;
    let train_set = train_files.examples()?;
    let test_set = test_files.examples()?;
    let side = M::IMAGE_SIDE as u32;
    console::err(&format!(
        "data: {} training and {} validation images from {}, as {side}x{side} inputs, in {:.2} s",
        train_set.images.len(),
        test_set.images.len(),
        source.dir.display(),
        load_start.elapsed().as_secs_f64()
    ));

    let recipe = Recipe {
        epochs: args.epochs,
        sgd: Sgd {
            batch_size: args.batch_size as usize,
            lr: args.lr,
        },
        sigma: args.sigma,
        seed: args.seed,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let requested = args.threads.map_or(cores, |t| t as usize);
    let execution = Execution {
        shards: args.shards,
        threads: Execution::threads_for(args.shards, requested),
        isa,
    };
    let threads = execution.threads;
    let note = match args.threads {
        Some(asked) if asked as usize != threads => format!(
            " (--threads {asked}: a power of two up to the {} shards)",
            args.shards
        ),
        _ => String::new(),
    };
    // The core caps a batch at the training set: say what is used.
    let batch = if recipe.sgd.batch_size > train_set.len() {
        format!(
            "{} (--batch-size {}: all the training images)",
            train_set.len(),
            recipe.sgd.batch_size
        )
    } else {
        recipe.sgd.batch_size.to_string()
    };
    console.line(&format!(
        "training: {} epochs, batch size {batch}, lr {}, sigma {}, seed {}, {} shards, \
         {threads} thread{}{note}, {isa} SIMD{}",
        recipe.epochs,
        recipe.sgd.lr,
        recipe.sigma,
        recipe.seed,
        execution.shards,
        if threads == 1 { "" } else { "s" },
        if args.softmax == SoftmaxKind::Naive {
            ", naive softmax"
        } else {
            ""
        },
    ))?;
    console.line("epoch  train loss  val loss  val acc  seconds")?;

    let batches = train_set.len().div_ceil(recipe.sgd.batch_size) as u64;
    let bar = ProgressBar::new(batches).with_style(
        ProgressStyle::with_template("epoch {prefix} {bar:40} {pos}/{len} batches")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut history = Vec::with_capacity(recipe.epochs as usize);
    let mut last_validation = softreg::Evaluation::default();
    let start = Instant::now();
    let mut epoch_start = start;
    let mut print_error = None;
    let softmax = args.softmax.core();
    let fitted =
        train::fit_with::<IN, M>(&recipe, softmax, execution, train_set, test_set, |event| {
            match event {
                Event::Step { epoch, step } => show_step(&bar, epoch, step.batch),
                Event::Epoch(report) => {
                    let now = Instant::now();
                    let metrics = EpochMetrics {
                        epoch: report.epoch,
                        train_loss: report.train_loss,
                        val_loss: report.validation.mean_loss(),
                        val_acc: report.validation.accuracy(),
                        seconds: (now - epoch_start).as_secs_f64(),
                    };
                    epoch_start = now;
                    last_validation = report.validation;
                    let printed = bar.suspend(|| {
                        console.line(&format!(
                            "{:>5}  {:>10.4}  {:>8.4}  {:>7.4}  {:>7.2}",
                            metrics.epoch,
                            metrics.train_loss,
                            metrics.val_loss,
                            metrics.val_acc,
                            metrics.seconds
                        ))
                    });
                    history.push(metrics);
                    if let Err(e) = printed {
                        print_error = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        });
    let train_seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(e) = print_error {
        return Err(e);
    }
    let model = match fitted {
        Ok(fitted) => fitted.model,
        Err(FitError::Stopped { epoch, stop }) => bail!(
            "training stopped in epoch {epoch}: {stop} ({})",
            divergence_hint(args.softmax, recipe.sgd.lr)
        ),
        Err(e) => bail!("{e}"),
    };
    // The last step's update can overflow after a finite loss; a model file
    // with NaN or infinite weights would be refused by every reader.
    if !model
        .weights
        .iter()
        .flatten()
        .chain(&model.bias)
        .all(|v| v.is_finite())
    {
        bail!(
            "training diverged in its last step: the weights are no longer finite numbers \
             (--lr {} is too large)",
            recipe.sgd.lr
        );
    }

    // The chapter's prediction step: the first validation batch, in file order.
    let batch = PREDICTION_BATCH.min(test_set.images.len());
    let mut pixels = Box::new(PixelModel::zeroed());
    pixels.fold_from::<IN, M>(&model);
    let mut predicted = vec![0u8; batch];
    pixels.predict(&test_set.images[..batch], &mut predicted);
    let mistakes: Vec<Mistake<'_>> = predicted
        .iter()
        .enumerate()
        .filter(|&(i, &p)| p != test_set.labels[i])
        .map(|(i, &p)| Mistake {
            image: &test_set.images[i],
            predicted: p,
            truth: test_set.labels[i],
        })
        .collect();
    console.line(&format!(
        "predictions: shape ({},), {} wrong",
        predicted.len(),
        mistakes.len()
    ))?;

    run.write("metrics.csv", |out| outputs::write_metrics(out, &history))?;
    let svg = plot::curves_svg(&history)?;
    run.write("curves.svg", |out| Ok(out.write_all(svg.as_bytes())?))?;
    run.write("misclassified.png", |out| {
        picture::misclassified_png(out, &mistakes, batch)
    })?;
    run.write("weights.png", |out| {
        templates::weights_png(out, &model.weights)
    })?;
    run.write("confusion.png", |out| {
        confusion::confusion_png(out, &last_validation.confusion)
    })?;
    run.write(MODEL_FILE, |out| outputs::write_model(out, &model, side))?;
    let out_dir = run.keep();
    console.line(&format!(
        "wrote metrics.csv, curves.svg, misclassified.png, weights.png, confusion.png \
         and {MODEL_FILE} to {}",
        out_dir.display()
    ))?;

    if args.json {
        let last = history.last().copied();
        let images = train_set.images.len() as f64 * f64::from(recipe.epochs);
        let json = serde_json::json!({
            "epochs": recipe.epochs,
            "batch_size": recipe.sgd.batch_size,
            // 0.1f32 widened to f64 prints 0.10000000149011612; the shortest
            // decimal that round-trips the f32 is what the user typed.
            "lr": recipe.sgd.lr.to_string().parse::<f64>().unwrap_or(f64::from(recipe.sgd.lr)),
            "resize": args.resize.side(),
            "seed": recipe.seed,
            "shards": execution.shards,
            "threads": threads,
            "isa": isa.name(),
            "softmax": if args.softmax == SoftmaxKind::Naive { "naive" } else { "stable" },
            "train_loss": last.map(|m| m.train_loss),
            "val_loss": last.map(|m| m.val_loss),
            "val_acc": last.map(|m| m.val_acc),
            "train_seconds": train_seconds,
            "images_per_second": images / train_seconds,
            "out_dir": out_dir.display().to_string(),
        });
        console::out(&json.to_string())?;
    }
    Ok(())
}

/// Moves the progress bar on by one batch of `epoch`, starting it again at
/// the epoch's first batch.
fn show_step(bar: &ProgressBar, epoch: u32, batch: usize) {
    if batch == 0 {
        bar.reset();
        bar.set_prefix(epoch.to_string());
    }
    bar.inc(1);
}

/// Why a run's loss may have become NaN or infinite, for its error line.
fn divergence_hint(softmax: SoftmaxKind, lr: f32) -> String {
    let lr = crate::args::lr_text(lr);
    match softmax {
        SoftmaxKind::Naive => format!(
            "--softmax naive: exp overflows for logits above 88 and underflows \
             below -104, which --softmax stable avoids; else --lr {lr} is too large"
        ),
        SoftmaxKind::Stable => format!("--lr {lr} is too large for this data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_counts_each_epochs_batches_from_one() {
        let bar = ProgressBar::hidden();
        for epoch in 1..=2 {
            for batch in 0..3 {
                show_step(&bar, epoch, batch);
                assert_eq!(bar.prefix(), epoch.to_string());
                assert_eq!(bar.position(), batch as u64 + 1);
            }
        }
    }
}
