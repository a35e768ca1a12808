//! `softreg train`: load the data, train, and write the run directory.

use crate::args::{Resize, TrainArgs};
use crate::fit::{self, Config, EpochMetrics};
use crate::outputs::{self, RunDir, MODEL_FILE};
use crate::picture::{self, Mistake};
use crate::plot;
use anyhow::{bail, Result};
use softreg::fashion_mnist::{PIXELS, RESIZED_PIXELS};
use softreg::train::{InputMap, Native, Resized};
use softreg_cli::dataset::{Source, Split, SplitFiles};
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
    /// Prints one line of the report.
    pub fn line(&self, text: &str) {
        if self.to_stderr {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

/// Runs `softreg train`.
pub fn train_command(args: &TrainArgs) -> Result<()> {
    match args.resize {
        Resize::To32 => train_with::<RESIZED_PIXELS, Resized>(args),
        Resize::Native28 => train_with::<PIXELS, Native>(args),
    }
}

fn train_with<const IN: usize, M: InputMap<IN>>(args: &TrainArgs) -> Result<()> {
    let console = Console {
        to_stderr: args.json,
    };
    let threads = args.threads.map_or_else(available_threads, |t| t as usize);
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
    eprintln!(
        "data: {} training and {} validation images from {}, as {side}x{side} inputs, in {:.2} s",
        train_set.images.len(),
        test_set.images.len(),
        source.dir.display(),
        load_start.elapsed().as_secs_f64()
    );

    let config = Config {
        epochs: args.epochs,
        batch_size: args.batch_size as usize,
        lr: args.lr,
        sigma: args.sigma,
        seed: args.seed,
        threads,
    };
    console.line(&format!(
        "training: {} epochs, batch size {}, lr {}, sigma {}, seed {}, {} thread{}",
        config.epochs,
        config.batch_size,
        config.lr,
        config.sigma,
        config.seed,
        threads,
        if threads == 1 { "" } else { "s" }
    ));
    console.line("epoch  train loss  val loss  val acc  seconds");
    let trained = fit::train::<IN, M>(&config, train_set, test_set, |m: &EpochMetrics| {
        console.line(&format!(
            "{:>5}  {:>10.4}  {:>8.4}  {:>7.4}  {:>7.2}",
            m.epoch, m.train_loss, m.val_loss, m.val_acc, m.seconds
        ));
    });

    // A model file with NaN or infinite weights would be refused by every
    // reader (`evaluate` included), so a diverged run is an error, not a run.
    let model = &trained.model;
    if !model
        .weights
        .iter()
        .flatten()
        .chain(&model.bias)
        .all(|v| v.is_finite())
    {
        bail!(
            "training diverged: the weights are no longer finite numbers (--lr {} is too large)",
            config.lr
        );
    }

    // The chapter's prediction step: the first validation batch, in file order.
    let batch = PREDICTION_BATCH.min(test_set.images.len());
    let predicted = fit::predict_all::<IN, M>(&trained.model, &test_set.images[..batch]);
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
    ));

    run.write("metrics.csv", |out| {
        outputs::write_metrics(out, &trained.history)
    })?;
    let svg = plot::curves_svg(&trained.history)?;
    run.write("curves.svg", |out| Ok(out.write_all(svg.as_bytes())?))?;
    run.write("misclassified.png", |out| {
        picture::misclassified_png(out, &mistakes, batch)
    })?;
    run.write(MODEL_FILE, |out| {
        outputs::write_model(out, &trained.model, side)
    })?;
    let out_dir = run.keep();
    console.line(&format!(
        "wrote metrics.csv, curves.svg, misclassified.png and {MODEL_FILE} to {}",
        out_dir.display()
    ));

    if args.json {
        let last = trained.history.last().copied();
        let images = train_set.images.len() as f64 * f64::from(config.epochs);
        let json = serde_json::json!({
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            // 0.1f32 widened to f64 prints 0.10000000149011612; the shortest
            // decimal that round-trips the f32 is what the user typed.
            "lr": config.lr.to_string().parse::<f64>().unwrap_or(f64::from(config.lr)),
            "resize": args.resize.side(),
            "seed": config.seed,
            "threads": threads,
            "train_loss": last.map(|m| m.train_loss),
            "val_loss": last.map(|m| m.val_loss),
            "val_acc": last.map(|m| m.val_acc),
            "train_seconds": trained.seconds,
            "images_per_second": images / trained.seconds,
            "out_dir": out_dir.display().to_string(),
        });
        println!("{json}");
    }
    Ok(())
}

/// The default thread count: every core, up to what the core's fixed
/// sharding can use (more would sit idle).
fn available_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(softreg::train::SHARDS)
}
