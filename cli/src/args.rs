//! The command line, declared with clap's derive API.
//!
//! `softreg` with no subcommand trains, so `cargo run --release` reproduces
//! the chapter. Flags that make no sense (batch size 0, a negative or NaN
//! learning rate, `--resize 30`) are rejected here, by clap, with exit code 2,
//! before any data is read.

use clap::{Args, Parser, Subcommand, ValueEnum};
use softreg::train::MAX_SHARDS;
use softreg::Isa;
use std::path::PathBuf;

/// Softmax regression from scratch, trained on Fashion-MNIST.
///
/// With no subcommand, `softreg` trains with the chapter's defaults
/// (batch 256, lr 0.1, sigma 0.01, 10 epochs, 32x32 inputs).
#[derive(Debug, Parser)]
#[command(name = "softreg", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `train` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The flags of `train`, accepted without the subcommand too.
    #[command(flatten)]
    pub train: TrainArgs,

    /// SIMD instruction set of the kernels: auto (the best this CPU has),
    /// avx512, avx2 or baseline (SSE2 on x86_64, NEON on aarch64).
    #[arg(
        long,
        global = true,
        env = "SOFTREG_ISA",
        value_name = "LEVEL",
        default_value = "auto",
        value_parser = parse_isa
    )]
    pub isa: Isa,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model and write a run directory (the default).
    Train(TrainArgs),
    /// Validation loss, accuracy, per-class accuracy and confusion matrix of a model.
    Evaluate(EvaluateArgs),
    /// Classify PNG images with a trained model.
    Predict(PredictArgs),
    /// Fetch the four Fashion-MNIST files, nothing else.
    Download(DataArgs),
    /// Serve the lab on 127.0.0.1: a page that trains the model in the browser.
    Lab(LabArgs),
    /// The chapter's exercise 1: naive and stable softmax of one row of logits.
    Softmax(SoftmaxArgs),
    /// The chapter's exercise 5: train every learning rate and batch size
    /// given, with the same seed, and compare them.
    Sweep(SweepArgs),
}

/// Where the dataset lives and whether it may be fetched.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Directory with the four IDX files, raw or `.gz`
    /// [default: $SOFTREG_DATA_DIR, else data/fashion-mnist].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Never touch the network: fail if a data file is missing.
    #[arg(long)]
    pub offline: bool,

    /// Base URL to download the four .gz files from instead of the dataset's
    /// own (an http:// address; also read from $SOFTREG_MIRROR).
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
}

/// The flags of `train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Passes over the 60,000 training images.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub epochs: u32,

    /// Examples per SGD step.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: u32,

    /// Learning rate of SGD.
    #[arg(long, default_value_t = 0.1, value_parser = parse_lr, allow_negative_numbers = true)]
    pub lr: f32,

    /// Standard deviation of the initial weights, N(0, sigma^2).
    #[arg(long, default_value_t = 0.01, value_parser = parse_sigma, allow_negative_numbers = true)]
    pub sigma: f32,

    /// Seed of the PRNG that initialises the weights and shuffles each epoch.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Image side fed to the model: 32 (the chapter's resize, 1024 inputs) or
    /// 28 (the native 784 pixels).
    #[arg(long, value_enum, value_name = "SIDE", default_value_t = Resize::To32)]
    pub resize: Resize,

    /// Run directory to create (must not exist, or be empty)
    /// [default: a fresh runs/<timestamp>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Print one JSON object with the results as the last line of stdout.
    #[arg(long)]
    pub json: bool,

    /// Parts each batch is cut into, a power of two up to 64: their
    /// gradients are summed in a fixed order, so the shard count is part of
    /// the arithmetic, and threads can share the parts out.
    #[arg(long, default_value_t = softreg::train::DEFAULT_SHARDS, value_parser = parse_shards)]
    pub shards: usize,

    /// Threads for training and validation [default: the cores, up to the
    /// shard count]. A power of two up to the shard count is used (the
    /// largest not above this). The same seed gives bit-identical results
    /// whatever this is.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,

    /// Softmax of the training loss: stable (the row's maximum subtracted
    /// first, fused with the loss) or naive (the chapter's
    /// exp(X) / sum(exp(X)), its first exercise: NaN once a logit passes 88).
    #[arg(long, value_enum, value_name = "KIND", default_value_t = SoftmaxKind::Stable)]
    pub softmax: SoftmaxKind,

    /// Dataset location.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `--softmax`: which softmax the training loss uses. (Plain comments on
/// the variants, as for [`Resize`].)
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SoftmaxKind {
    // logsumexp with the maximum subtracted: never overflows.
    Stable,
    // The chapter's exp(X) / sum(exp(X)), as written.
    Naive,
}

impl SoftmaxKind {
    /// The core's name for it.
    pub fn core(self) -> softreg::train::Softmax {
        match self {
            SoftmaxKind::Stable => softreg::train::Softmax::Stable,
            SoftmaxKind::Naive => softreg::train::Softmax::Naive,
        }
    }
}

/// The arguments of `softmax`.
#[derive(Debug, Clone, Args)]
pub struct SoftmaxArgs {
    /// One row of logits, e.g. `100 -100 0` or `-- -101 -102 -103`.
    #[arg(value_name = "LOGIT", required = true, allow_negative_numbers = true)]
    pub logits: Vec<f32>,
}

/// The flags of `sweep`.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Learning rates to try, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.01,0.03,0.1,0.3,1",
        value_parser = parse_lr
    )]
    pub lr: Vec<f32>,

    /// Batch sizes to try, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "64,256",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub batch_size: Vec<u32>,

    /// Passes over the training images in every run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub epochs: u32,

    /// Standard deviation of the initial weights, N(0, sigma^2).
    #[arg(long, default_value_t = 0.01, value_parser = parse_sigma)]
    pub sigma: f32,

    /// Seed of every run: the same initial weights and shuffles for all.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Image side fed to the model: 32 or 28.
    #[arg(long, value_enum, value_name = "SIDE", default_value_t = Resize::To32)]
    pub resize: Resize,

    /// Parts each batch is cut into (as for `train`).
    #[arg(long, default_value_t = softreg::train::DEFAULT_SHARDS, value_parser = parse_shards)]
    pub shards: usize,

    /// Directory to create for sweep.csv and sweep.svg (must not exist, or
    /// be empty) [default: a fresh runs/<timestamp>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Dataset location.
    #[command(flatten)]
    pub data: DataArgs,
}

/// The flags of `evaluate`.
#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// Model file written by `softreg train` (model.softreg).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,

    /// Also draw the confusion matrix as a heat map into this PNG file
    /// (rows: true class, normalised; counts in the cells). An existing file
    /// is not overwritten.
    #[arg(long, value_name = "FILE.png")]
    pub confusion: Option<PathBuf>,

    /// Dataset location.
    #[command(flatten)]
    pub data: DataArgs,
}

/// The flags of `lab`.
#[derive(Debug, Clone, Args)]
pub struct LabArgs {
    /// Port to serve on (0: any free one; the address is printed).
    #[arg(long, default_value_t = 8732)]
    pub port: u16,

    /// Address to listen on. Anything but a loopback address lets other
    /// machines train on this one.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,

    /// Dataset location.
    #[command(flatten)]
    pub data: DataArgs,
}

/// The flags of `predict`.
#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// Model file written by `softreg train` (model.softreg).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,

    /// 8-bit grayscale or RGB PNG images to classify.
    #[arg(value_name = "IMAGE.png", required = true)]
    pub images: Vec<PathBuf>,
}

/// A learning rate must be a finite positive number: NaN or a negative rate
/// would train silently into garbage.
fn parse_lr(s: &str) -> Result<f32, String> {
    let lr: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if lr.is_finite() && lr > 0.0 {
        Ok(lr)
    } else {
        Err(format!("must be a finite number > 0, got {s}"))
    }
}

/// A learning rate as the user would type it: the shortest decimal that
/// reads back as the same `f32` (0.1, not 0.100000001), in scientific
/// notation when tiny or huge (1e36, not 36 zeros).
pub fn lr_text(lr: f32) -> String {
    if (1e-4..1e6).contains(&lr) {
        lr.to_string()
    } else {
        format!("{lr:e}")
    }
}

/// `--isa`: a level's name, or `auto` for the best this CPU has; a level the
/// CPU lacks is a command-line error, not a crash.
fn parse_isa(s: &str) -> Result<Isa, String> {
    match Isa::from_name(s) {
        Ok(None) => Ok(Isa::best_available()),
        Ok(Some(isa)) => isa.check().map_err(|e| e.to_string()),
        Err(e) => Err(format!("`{s}`: {e}")),
    }
}

/// `--shards`: a power of two the core accepts.
fn parse_shards(s: &str) -> Result<usize, String> {
    let shards: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if shards.is_power_of_two() && shards <= MAX_SHARDS {
        Ok(shards)
    } else {
        Err(format!(
            "must be a power of two from 1 to {MAX_SHARDS}, got {s}"
        ))
    }
}

/// Sigma may be zero (all-zero start, as some texts do) but not negative or NaN.
fn parse_sigma(s: &str) -> Result<f32, String> {
    let sigma: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if sigma.is_finite() && sigma >= 0.0 {
        Ok(sigma)
    } else {
        Err(format!("must be a finite number >= 0, got {s}"))
    }
}

/// `--resize`: the two input sizes the core has a pipeline for. (Plain
/// comments on the variants: doc comments would become per-value help, which
/// turns `softreg train --help` into the long layout to repeat the flag's own
/// help.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Resize {
    // The chapter's resize to 32x32: 1024 inputs.
    #[value(name = "32")]
    To32,
    // The native 28x28 pixels: 784 inputs.
    #[value(name = "28")]
    Native28,
}

impl Resize {
    /// The side of the images the model sees.
    pub fn side(self) -> u32 {
        match self {
            Resize::To32 => 32,
            Resize::Native28 => 28,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_train_with_the_chapters_defaults() {
        let cli = Cli::try_parse_from(["softreg"]).unwrap();
        assert!(cli.command.is_none());
        let t = cli.train;
        assert_eq!(
            (t.epochs, t.batch_size, t.resize.side(), t.seed),
            (10, 256, 32, 0)
        );
        assert_eq!((t.lr, t.sigma), (0.1, 0.01));
    }

    #[test]
    fn isa_takes_the_levels_this_cpu_has() {
        let isa = |arg: &str| Cli::try_parse_from(["softreg", "--isa", arg]).map(|c| c.isa);
        assert_eq!(isa("auto").unwrap(), Isa::best_available());
        assert_eq!(isa("baseline").unwrap(), Isa::Baseline);
        for level in Isa::ALL {
            match isa(level.name()) {
                Ok(got) => assert!(got == level && level.is_available()),
                Err(e) => {
                    assert!(!level.is_available());
                    assert!(e.to_string().contains("this CPU cannot run"), "{e}");
                }
            }
        }
        // After the subcommand too, for every subcommand.
        let cli = Cli::try_parse_from(["softreg", "evaluate", "--model", "m", "--isa", "baseline"]);
        assert_eq!(cli.unwrap().isa, Isa::Baseline);
    }

    #[test]
    fn resize_takes_the_two_sides_and_nothing_else() {
        let side = |arg: &str| {
            Cli::try_parse_from(["softreg", "--resize", arg]).map(|c| c.train.resize.side())
        };
        assert_eq!(side("32").unwrap(), 32);
        assert_eq!(side("28").unwrap(), 28);
        for wrong in ["30", "0", "To32", "native28", ""] {
            let err = side(wrong).unwrap_err().to_string();
            assert!(err.contains("[possible values: 32, 28]"), "{err}");
        }
    }

    #[test]
    fn nonsense_flags_are_refused() {
        for args in [
            &["softreg", "--batch-size", "0"][..],
            &["softreg", "--epochs", "0"],
            &["softreg", "--lr", "NaN"],
            &["softreg", "--lr", "-0.1"],
            &["softreg", "--lr", "0"],
            &["softreg", "--resize", "30"],
            &["softreg", "train", "--threads", "0"],
            &["softreg", "--shards", "3"],
            &["softreg", "--shards", "128"],
            &["softreg", "--isa", "sse9"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
