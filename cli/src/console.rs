//! Printing that never panics: what the command line says goes through
//! [`out`] (standard output) and [`err`] (standard error).
//!
//! `println!` panics when a write fails, so `softreg train | head -1` (a
//! pipe closed early) or `softreg > /dev/full` (a full disk) used to end in
//! a panic that threw the run away. Here a closed standard output is not an
//! error, as with other Unix tools: the rest of the output is dropped and
//! the run goes on to its end. Any other failure to write standard output
//! (a full disk) is an error the caller passes up, so the command fails
//! with one line on standard error and exit code 1. Standard error is where
//! such lines go, so a failure to write it is ignored.

use anyhow::{anyhow, Result};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once standard output turns out to be a closed pipe.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Prints `line` and a newline on standard output, flushed at once.
///
/// # Errors
/// When standard output cannot be written for a reason other than a closed
/// pipe, e.g. a full disk: "cannot write to standard output: ...".
pub fn out(line: &str) -> Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            // The reader has gone (`| head`): nobody reads what follows.
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(anyhow!("cannot write to standard output: {e}")),
    }
}

/// Prints `line` and a newline on standard error; a failure is ignored,
/// since standard error is where it would be reported.
pub fn err(line: &str) {
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "{line}").and_then(|()| stderr.flush());
}
