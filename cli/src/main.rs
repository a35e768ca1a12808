//! `softreg`: train the chapter's softmax regression on Fashion-MNIST.
//!
//! ```text
//! cargo run --release                       # train with the chapter's defaults
//! softreg train --epochs 20 --resize 28     # the native 784 inputs
//! softreg evaluate --model runs/<t>/model.softreg
//! softreg predict --model runs/<t>/model.softreg shoe.png
//! softreg download                          # fetch the data, nothing else
//! softreg lab                               # train in the browser
//! softreg softmax 100 -100 0                # naive vs stable softmax of a row
//! softreg sweep --lr 0.01,0.1,1 --batch-size 64,256   # exercise 5
//! ```
//!
//! Exit codes: 0 on success, 2 when the command line is wrong (clap's
//! convention), 1 for everything found while running (a missing or damaged
//! data file, an unwritable output directory, a failed download, a full
//! disk behind standard output), 130 and 143 after SIGINT and SIGTERM
//! (having removed what the run had not finished). Errors are one line on
//! stderr, naming the file or flag at fault. A closed standard output (`|
//! head`) is not an error: the run goes on, quietly.
//!
//! The binary is the command line and the commands; what reads and writes
//! files and fetches the data is the package's library, [`softreg_cli`],
//! shared with the fuzz targets, the benchmark and the tests.

mod args;
mod commands;
mod confusion;
mod outputs;
mod picture;
mod plot;
mod saved_model;
mod sweep_plot;
mod templates;

use args::{Cli, Command};
use clap::{CommandFactory, FromArgMatches};
use softreg::Isa;
use softreg_cli::console;
use std::process::ExitCode;

fn main() -> ExitCode {
    // First: an interrupt from here on removes what the run has created.
    if let Err(e) = softreg_cli::signals::install() {
        console::err(&format!(
            "softreg: error: cannot install signal handlers: {e}"
        ));
        return ExitCode::FAILURE;
    }
    // Exits with code 2 (or 0 for --help and --version) on a bad command
    // line, a level this CPU cannot run included.
    let matches = Cli::command().version(version()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Every kernel the commands run, not only training's, uses this level.
    cli.isa
        .set_current()
        .expect("--isa accepts only levels this CPU can run");
    let command = cli.command.unwrap_or(Command::Train(cli.train));
    let result = match &command {
        Command::Train(args) => commands::train::train_command(args, cli.isa),
        Command::Evaluate(args) => commands::evaluate::evaluate_command(args),
        Command::Predict(args) => commands::predict::predict_command(args),
        Command::Download(args) => commands::download::download_command(args),
        Command::Lab(args) => commands::lab::lab_command(args),
        Command::Softmax(args) => commands::softmax::softmax_command(args),
        Command::Sweep(args) => commands::sweep::sweep_command(args, cli.isa),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` joins the error and its causes on one line.
            console::err(&format!("softreg: error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// `softreg --version`: the version and the SIMD levels this CPU runs, the
/// best first (what `--isa auto` picks).
fn version() -> &'static str {
    let levels: Vec<&str> = Isa::ALL
        .into_iter()
        .filter(|isa| isa.is_available())
        .map(Isa::name)
        .collect();
    let line = format!(
        "{} (SIMD: {}; this CPU runs {})",
        env!("CARGO_PKG_VERSION"),
        Isa::best_available(),
        levels.join(", ")
    );
    // Once per process, before anything else: clap wants a 'static str.
    Box::leak(line.into_boxed_str())
}
