//! The plain files of a run directory (`metrics.csv`, `model.softreg`).
//! The directory itself, owned by one run and removed when that run fails,
//! is [`softreg_cli::run_dir::RunDir`]: every file is written to a
//! temporary name and renamed, and a run directory either holds a finished
//! run or does not exist.

use anyhow::Result;
use softreg::fashion_mnist::CLASSES;
use softreg::SoftmaxRegression;
use std::io::Write;

pub use softreg_cli::run_dir::RunDir;

/// The model this application trains: `IN` inputs, ten classes.
pub type Model<const IN: usize> = SoftmaxRegression<IN, CLASSES>;

/// What one epoch of a run measured: a row of `metrics.csv`, a point of
/// `curves.svg`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Mean training loss over the epoch, each batch's loss taken before its
    /// update (as the chapter's progress board plots it).
    pub train_loss: f64,
    /// Mean loss over the whole validation set after the epoch.
    pub val_loss: f64,
    /// Validation accuracy after the epoch: correct / total.
    pub val_acc: f64,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
}

/// Name of the model file in a run directory.
pub const MODEL_FILE: &str = "model.softreg";

/// `metrics.csv`: a header, then one row per epoch.
pub fn write_metrics(out: &mut dyn Write, history: &[EpochMetrics]) -> Result<()> {
    writeln!(out, "epoch,train_loss,val_loss,val_acc,seconds")?;
    for m in history {
        writeln!(
            out,
            "{},{:.6},{:.6},{:.4},{:.3}",
            m.epoch, m.train_loss, m.val_loss, m.val_acc, m.seconds
        )?;
    }
    Ok(())
}

/// The model file: the core's 32-byte header, then the parameters.
pub fn write_model<const IN: usize>(
    out: &mut dyn Write,
    model: &Model<IN>,
    side: u32,
) -> Result<()> {
    model.write_file(side, |chunk| out.write_all(chunk))?;
    Ok(())
}
