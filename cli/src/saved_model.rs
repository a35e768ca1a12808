//! A model file read from disk: `f32` or int8, at the input size its header
//! names. `evaluate` and `predict` load models only through here.

use anyhow::{anyhow, bail, Context, Result};
use softreg::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS};
use softreg::inference::Classifier;
use softreg::model_file::{self, AlignedBytes, Header, DTYPE_I8};
use softreg::SoftmaxRegression;
use std::path::{Path, PathBuf};

/// A checked model file, its bytes on a 4-byte boundary.
pub struct SavedModel {
    path: PathBuf,
    header: Header,
    bytes: AlignedBytes,
}

impl SavedModel {
    /// Reads and checks `path`: a header the core accepts, ten classes, 784
    /// or 1024 inputs, and parameters the firmware's classifier accepts
    /// (finite, of the right length; int8 weights in range).
    pub fn read(path: &Path) -> Result<Self> {
        let shown = path.display();
        let bytes = std::fs::read(path).with_context(|| format!("cannot read model {shown}"))?;
        let header = model_file::read_header(&bytes).map_err(|e| anyhow!("{shown}: {e}"))?;
        if header.outputs as usize != CLASSES {
            bail!(
                "{shown}: model has {} classes, Fashion-MNIST has {CLASSES}",
                header.outputs
            );
        }
        let model = SavedModel {
            path: path.to_path_buf(),
            header,
            bytes: AlignedBytes::copy_from(&bytes),
        };
        match header.inputs as usize {
            RESIZED_PIXELS => model.classifier::<RESIZED_PIXELS>().map(|_| ())?,
            PIXELS => model.classifier::<PIXELS>().map(|_| ())?,
            n => bail!(
                "{shown}: model has {n} inputs; softreg knows {PIXELS} (28x28) and {RESIZED_PIXELS} (32x32)"
            ),
        }
        Ok(model)
    }

    /// Whether the model's inputs are the images resized to 32x32 (1024
    /// inputs) rather than the 784 pixels.
    pub fn resizes(&self) -> bool {
        self.header.inputs as usize == RESIZED_PIXELS
    }

    /// Whether the weights are int8 (parameter type 1).
    pub fn is_int8(&self) -> bool {
        self.header.dtype == DTYPE_I8
    }

    /// The core's classifier of 28x28 images over the file's parameters,
    /// `f32` or int8 alike.
    ///
    /// # Errors
    /// If the model does not have `IN` inputs.
    pub fn classifier<const IN: usize>(&self) -> Result<Classifier<'_, IN, CLASSES>> {
        Classifier::new(self.bytes.bytes()).map_err(|e| anyhow!("{}: {e}", self.path.display()))
    }

    /// The `f32` parameters as a model of `IN` inputs; `None` for an int8
    /// model.
    ///
    /// # Errors
    /// If the model does not have `IN` inputs.
    pub fn f32_model<const IN: usize>(
        &self,
    ) -> Result<Option<Box<SoftmaxRegression<IN, CLASSES>>>> {
        if self.is_int8() {
            return Ok(None);
        }
        let mut model = Box::new(SoftmaxRegression::<IN, CLASSES>::zeroed());
        model
            .load_file_bytes(self.bytes.bytes())
            .map_err(|e| anyhow!("{}: {e}", self.path.display()))?;
        Ok(Some(model))
    }
}
