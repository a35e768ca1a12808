//! `softreg predict`: classify PNG images with a saved model, `f32` or
//! int8, through the core's classifier (the code a firmware runs).
//!
//! Each image is read by [`softreg_cli::png_input`], which turns any 8-bit
//! PNG into what the dataset looks like: 28x28 grayscale, the garment light
//! on a dark background, centred in a square.

use crate::args::PredictArgs;
use crate::saved_model::SavedModel;
use anyhow::{bail, Result};
use softreg::fashion_mnist::{CLASSES, CLASS_NAMES, PIXELS, RESIZED_PIXELS};
use softreg_cli::console;
use softreg_cli::png_input::read_as_fashion_mnist;

/// Runs `softreg predict`.
pub fn predict_command(args: &PredictArgs) -> Result<()> {
    let model = SavedModel::read(&args.model)?;
    for path in &args.images {
        let image = read_as_fashion_mnist(path)?;
        let probs = if model.resizes() {
            model.classifier::<RESIZED_PIXELS>()?.probabilities(&image)
        } else {
            model.classifier::<PIXELS>()?.probabilities(&image)
        };
        if !probs.iter().all(|p| p.is_finite()) {
            bail!(
                "{}: the model's weights overflow on {}: its probabilities are not numbers \
                 (the file is intact but its values are too large to use)",
                args.model.display(),
                path.display()
            );
        }
        let mut ranked: Vec<usize> = (0..CLASSES).collect();
        ranked.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let top: Vec<String> = ranked[..3]
            .iter()
            .map(|&c| format!("{} {:.3}", CLASS_NAMES[c], probs[c]))
            .collect();
        console::out(&format!("{}: {}", path.display(), top.join(", ")))?;
    }
    Ok(())
}
