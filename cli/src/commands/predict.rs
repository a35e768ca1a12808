//! `softreg predict`: classify PNG images with a saved model.
//!
//! Each image is read by [`softreg_cli::png_input`], which turns any 8-bit
//! PNG into what the dataset looks like: 28x28 grayscale, the garment light
//! on a dark background, centred in a square.

use crate::args::PredictArgs;
use crate::commands::evaluate::{load_model, LoadedModel};
use crate::fit::Model;
use anyhow::Result;
use softreg::fashion_mnist::{CLASSES, CLASS_NAMES, PIXELS, RESIZED_PIXELS};
use softreg::train::{InputMap, Native, Resized};
use softreg_cli::png_input::read_as_fashion_mnist;
use std::io::Write;

/// Runs `softreg predict`.
pub fn predict_command(args: &PredictArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let mut out = std::io::stdout().lock();
    for path in &args.images {
        let image = read_as_fashion_mnist(path)?;
        let probs = match &model {
            LoadedModel::Resized(m) => probabilities::<RESIZED_PIXELS, Resized>(m, &image),
            LoadedModel::Native(m) => probabilities::<PIXELS, Native>(m, &image),
        };
        let mut ranked: Vec<usize> = (0..CLASSES).collect();
        ranked.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let top: Vec<String> = ranked[..3]
            .iter()
            .map(|&c| format!("{} {:.3}", CLASS_NAMES[c], probs[c]))
            .collect();
        writeln!(out, "{}: {}", path.display(), top.join(", "))?;
    }
    Ok(())
}

/// The class probabilities of one 28x28 image, mapped to inputs by `M`.
fn probabilities<const IN: usize, M: InputMap<IN>>(
    model: &Model<IN>,
    image: &[u8; PIXELS],
) -> [f32; CLASSES] {
    let mut x = [0.0f32; IN];
    M::map(image, &mut x);
    model.probabilities(&x)
}
