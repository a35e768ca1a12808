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

use anyhow::Result;
use args::{Cli, Command, DataArgs};
use clap::Parser;
use softreg_cli::{dataset, download};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Exits with code 2 (or 0 for --help) on a bad command line.
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Train(cli.train));
    let result = match &command {
        Command::Train(args) => commands::train::train_command(args),
        Command::Evaluate(args) => commands::evaluate::evaluate_command(args),
        Command::Predict(args) => commands::predict::predict_command(args),
        Command::Download(args) => download_command(args),
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

/// `softreg download`: fetch whichever of the four files are missing.
fn download_command(args: &DataArgs) -> Result<()> {
    let source = dataset::Source::new(
        args.data_dir.as_deref(),
        args.offline,
        args.mirror.as_deref(),
    );
    for file in &download::FILES {
        let gz = source.dir.join(file.name);
        let raw = source.dir.join(file.name.trim_end_matches(".gz"));
        if gz.exists() || raw.exists() {
            eprintln!(
                "{} is already there",
                if gz.exists() { &gz } else { &raw }.display()
            );
            continue;
        }
        if source.offline {
            anyhow::bail!(
                "{} is missing, and --offline forbids downloading it",
                gz.display()
            );
        }
        download::fetch(&source.mirror, file, &source.dir)?;
    }
    eprintln!("data is complete in {}", source.dir.display());
    Ok(())
}
