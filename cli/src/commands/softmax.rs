//! `softreg softmax LOGIT...`: the chapter's first exercise on one row.
//! Prints the naive `exp(X) / sum(exp(X))` and the stable softmax (the
//! row's maximum subtracted first) of the logits given, side by side, so
//! that what overflow (a logit of 100) and underflow (a maximum below -100)
//! do to the naive one can be seen.

use crate::args::SoftmaxArgs;
use anyhow::{bail, Result};
use softreg::kernels::{naive_softmax, softmax};
use std::io::Write;

/// The most logits one row may have (a row is printed on one line).
const MAX_LOGITS: usize = 64;

/// Runs `softreg softmax`.
pub fn softmax_command(args: &SoftmaxArgs) -> Result<()> {
    let logits = &args.logits;
    if logits.len() > MAX_LOGITS {
        bail!("softmax: at most {MAX_LOGITS} logits, got {}", logits.len());
    }
    let mut naive = [logits.clone()];
    let mut stable = [logits.clone()];
    rows(&mut naive, &mut stable);
    let mut out = std::io::stdout().lock();
    let row = |name: &str, values: &[f32]| {
        let cells: Vec<String> = values.iter().map(|&v| cell(v)).collect();
        format!("{name:<8}{}", cells.join(" "))
    };
    let given: Vec<String> = logits.iter().map(|v| format!("{v:>11}")).collect();
    writeln!(out, "{:<8}{}", "logits", given.join(" "))?;
    writeln!(out, "{}", row("naive", &naive[0]))?;
    writeln!(out, "{}", row("stable", &stable[0]))?;
    let sum = |v: &[f32]| v.iter().sum::<f32>();
    writeln!(
        out,
        "sums: naive {}, stable {}",
        sum(&naive[0]),
        sum(&stable[0])
    )?;
    Ok(())
}

/// The core's kernels work on rows of a compile-time width: the row is
/// padded to 64 with `-inf`, which both softmaxes give probability 0 (and
/// which changes neither the maximum nor the sum), then cut back.
fn rows(naive: &mut [Vec<f32>; 1], stable: &mut [Vec<f32>; 1]) {
    let n = naive[0].len();
    let padded = |v: &[f32]| {
        let mut row = [f32::NEG_INFINITY; MAX_LOGITS];
        row[..n].copy_from_slice(v);
        row
    };
    let mut naive_row = [padded(&naive[0])];
    naive_softmax::naive_softmax_rows(&mut naive_row);
    naive[0].copy_from_slice(&naive_row[0][..n]);
    let mut stable_row = [padded(&stable[0])];
    softmax::softmax_rows(&mut stable_row);
    stable[0].copy_from_slice(&stable_row[0][..n]);
}

/// A probability in 11 columns: fixed-point while that shows its digits,
/// scientific for the tiny (and subnormal) ones the naive softmax makes.
fn cell(v: f32) -> String {
    if v == 0.0 || !v.is_finite() || v.abs() >= 1e-3 {
        format!("{v:>11.6}")
    } else {
        format!("{v:>11.3e}")
    }
}
