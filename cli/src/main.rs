//! `softreg`: train the chapter's softmax regression on Fashion-MNIST.
//!
//! ```text
//! cargo run --release                       # train with the chapter's defaults
//! softreg train --epochs 20 --resize 28     # the native 784 inputs
//! softreg evaluate --model runs/<t>/model.softreg
//! softreg predict --model runs/<t>/model.softreg shoe.png
//! softreg download                          # fetch the data, nothing else
//! ```
//!
//! Exit codes: 0 on success, 2 when the command line is wrong (clap's
//! convention), 1 for everything found while running (a missing or damaged
//! data file, an unwritable output directory, a failed download). Errors are
//! one line on stderr, naming the file or flag at fault.
//!
//! The binary is the command line and the commands; what reads and writes
//! files and fetches the data is the package's library, [`softreg_cli`],
//! shared with the fuzz targets, the benchmark and the tests.

mod args;
mod commands;
mod fit;
mod outputs;
mod picture;
mod plot;

use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Exits with code 2 (or 0 for --help) on a bad command line.
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Train(cli.train));
    let result = match &command {
        Command::Train(args) => commands::train::train_command(args),
        Command::Evaluate(args) => commands::evaluate::evaluate_command(args),
        Command::Predict(args) => commands::predict::predict_command(args),
        Command::Download(args) => commands::download::download_command(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` joins the error and its causes on one line.
            eprintln!("softreg: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
