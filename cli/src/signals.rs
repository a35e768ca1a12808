//! SIGINT and SIGTERM: remove what this run created, say so in one line,
//! and exit with the shell's code for the signal (128 + its number: 130
//! for SIGINT, 143 for SIGTERM), so that nothing is left half-written.
//! A panic removes the same things (the `Drop` of each owner would too,
//! but a panic in another thread, or one that aborts, runs no `Drop`).

use crate::{cleanup, console};
use std::path::PathBuf;

/// Installs the handlers; call once, first thing in `main`.
///
/// # Errors
/// If the signal handlers cannot be installed.
pub fn install() -> std::io::Result<()> {
    #[cfg(unix)]
    install_signal_handlers()?;
    install_panic_hook();
    Ok(())
}

/// A thread that waits for SIGINT or SIGTERM (signal-hook turns the
/// signal into a message, so the clean-up runs in ordinary code, not in a
/// signal handler).
#[cfg(unix)]
fn install_signal_handlers() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let removed = cleanup::remove_all(true);
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                console::err(&interrupted_line(name, &removed));
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// After the usual panic message, remove what the run had not finished.
fn install_panic_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        let removed = cleanup::remove_all(false);
        if !removed.is_empty() {
            console::err(&format!("softreg: removed {}", list(&removed)));
        }
    }));
}

/// "softreg: interrupted by SIGINT; removed run, data/.x.tmp-1".
fn interrupted_line(signal: &str, removed: &[PathBuf]) -> String {
    if removed.is_empty() {
        format!("softreg: interrupted by {signal}; nothing was left half-written")
    } else {
        format!(
            "softreg: interrupted by {signal}; removed what this run had not finished: {}",
            list(removed)
        )
    }
}

fn list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}
