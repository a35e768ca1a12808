//! `softreg sweep`: the chapter's exercise 5, "experiment with the
//! hyperparameters": one run for every learning rate and batch size given,
//! each from the same seed (so the same initial weights), and their final
//! validation loss and accuracy side by side in `sweep.csv`, `sweep.svg`
//! and a table on stdout. A run that diverges is recorded as such and the
//! sweep goes on.

use crate::args::{lr_text, Resize, SweepArgs};
use crate::outputs::RunDir;
use crate::sweep_plot::{self, SweepPoint};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use softreg::fashion_mnist::{Examples, InputMap, Native, Resized, PIXELS, RESIZED_PIXELS};
use softreg::train::{self, Execution, FitError, Recipe, Sgd};
use softreg::Isa;
use softreg_cli::dataset::{Source, Split, SplitFiles};
use std::io::Write;
use std::ops::ControlFlow;
use std::time::Instant;

/// Runs `softreg sweep`.
pub fn sweep_command(args: &SweepArgs, isa: Isa) -> Result<()> {
    // As `train`: a bad --out fails before the data is read.
    let mut dir = RunDir::create(args.out.as_deref())?;
    let source = Source::new(
        args.data.data_dir.as_deref(),
        args.data.offline,
        args.data.mirror.as_deref(),
    );
    let train_files = SplitFiles::open(&source, Split::Train)?;
    let test_files = SplitFiles::open(&source, Split::Test)?;
    let (train_set, test_set) = (train_files.examples()?, test_files.examples()?);
    let points = match args.resize {
        Resize::To32 => sweep::<RESIZED_PIXELS, Resized>(args, isa, train_set, test_set),
        Resize::Native28 => sweep::<PIXELS, Native>(args, isa, train_set, test_set),
    };

    let mut out = std::io::stdout().lock();
    writeln!(out, "    lr  batch  train loss  val loss  val acc  seconds")?;
    for p in &points {
        writeln!(
            out,
            "{:>6}  {:>5}  {:>10.4}  {:>8.4}  {:>7.4}  {:>7.2}{}",
            lr_text(p.lr),
            p.batch_size,
            p.train_loss,
            p.val_loss,
            p.val_acc,
            p.seconds,
            if p.diverged { "  diverged" } else { "" }
        )?;
    }
    dir.write("sweep.csv", |w| write_csv(w, &points))?;
    let svg = sweep_plot::sweep_svg(&points, args.epochs)?;
    dir.write("sweep.svg", |w| Ok(w.write_all(svg.as_bytes())?))?;
    let path = dir.keep();
    writeln!(out, "wrote sweep.csv and sweep.svg to {}", path.display())?;
    Ok(())
}

/// Every combination, batch size by batch size, each learning rate in turn.
fn sweep<const IN: usize, M: InputMap<IN>>(
    args: &SweepArgs,
    isa: Isa,
    train_set: Examples<'_>,
    test_set: Examples<'_>,
) -> Vec<SweepPoint> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let execution = Execution {
        shards: args.shards,
        threads: Execution::threads_for(args.shards, cores),
        isa,
    };
    let runs = (args.lr.len() * args.batch_size.len()) as u64;
    let bar = ProgressBar::new(runs).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs ({msg})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut points = Vec::new();
    for &batch_size in &args.batch_size {
        for &lr in &args.lr {
            bar.set_message(format!("lr {}, batch size {batch_size}", lr_text(lr)));
            let recipe = Recipe {
                epochs: args.epochs,
                sgd: Sgd {
                    batch_size: batch_size as usize,
                    lr,
                },
                sigma: args.sigma,
                seed: args.seed,
            };
            let start = Instant::now();
            let fitted = train::fit::<IN, M>(&recipe, execution, train_set, test_set, |_| {
                ControlFlow::Continue(())
            });
            let seconds = start.elapsed().as_secs_f64();
            let last = match &fitted {
                Ok(fitted) => fitted.history.last().copied(),
                Err(FitError::Stopped { .. }) => None,
                // The settings were checked by clap.
                Err(FitError::Settings(e)) => unreachable!("{e}"),
            };
            points.push(SweepPoint {
                lr,
                batch_size,
                train_loss: last.map_or(f64::NAN, |r| r.train_loss),
                val_loss: last.map_or(f64::NAN, |r| r.validation.mean_loss()),
                val_acc: last.map_or(f64::NAN, |r| r.validation.accuracy()),
                seconds,
                diverged: last.is_none(),
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    points
}

/// `sweep.csv`: a header, then one row per run. No timings, so that the
/// same sweep writes the same file.
fn write_csv(out: &mut dyn Write, points: &[SweepPoint]) -> Result<()> {
    writeln!(out, "lr,batch_size,train_loss,val_loss,val_acc,diverged")?;
    for p in points {
        writeln!(
            out,
            "{},{},{:.6},{:.6},{:.4},{}",
            lr_text(p.lr),
            p.batch_size,
            p.train_loss,
            p.val_loss,
            p.val_acc,
            p.diverged
        )?;
    }
    Ok(())
}
