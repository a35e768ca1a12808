//! A model file read from disk: `f32` or int8, at the input size its header
//! names. `evaluate` and `predict` load models only through here.

use anyhow::{anyhow, bail, Context, Result};
use softreg::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS};
use softreg::inference::Classifier;
use softreg::model_file::{self, AlignedBytes, Header, DTYPE_I8};
use softreg::SoftmaxRegression;
use softreg_cli::regular_file;
use std::io::Read;
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
        let bytes = read_bounded(path)?;
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

/// The bytes of the model file `path`, read no further than its header
/// allows: the header (32 bytes) says how many parameter bytes follow, so
/// neither a huge file nor a device (`/dev/zero`, refused as not a regular
/// file anyway) can make this read more.
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let shown = path.display();
    let file = regular_file::open(path)?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read model {shown}"))?
        .len();
    let mut head = Vec::with_capacity(model_file::HEADER_LEN);
    let mut reader = file;
    (&mut reader)
        .take(model_file::HEADER_LEN as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read model {shown}"))?;
    // The core checks a header against the bytes after it; given the header
    // alone, a good one fails only on the length, and says what it should be.
    let params = match model_file::read_header(&head) {
        Ok(_) => 0,
        Err(model_file::ModelFileError::LengthMismatch { expected, found: 0 }) => expected,
        Err(e) => bail!("{shown}: {e}"),
    };
    let expected = params
        .checked_add(model_file::HEADER_LEN)
        .ok_or_else(|| anyhow!("{shown}: its header describes a model too large to hold"))?;
    if len != expected as u64 {
        bail!(
            "{shown}: parameters are {} bytes, the header promises {}",
            len.saturating_sub(model_file::HEADER_LEN as u64),
            expected - model_file::HEADER_LEN
        );
    }
    let mut bytes = head;
    bytes.reserve_exact(expected - bytes.len());
    reader
        .take((expected - bytes.len()) as u64)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read model {shown}"))?;
    if bytes.len() != expected {
        bail!("{shown}: changed while it was read");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use softreg::quantized::quantize;
    use softreg::Rng;

    /// An int8 file is read as one, and has no `f32` parameters; an `f32`
    /// file is not, and has them.
    #[test]
    fn an_int8_model_is_told_from_an_f32_one() {
        let dir = tempfile::tempdir().unwrap();
        let model = SoftmaxRegression::<PIXELS, CLASSES>::new(&mut Rng::seed_from_u64(1), 0.01);
        let (mut f32_bytes, mut int8_bytes) = (Vec::new(), Vec::new());
        let append = |bytes: &mut Vec<u8>, chunk: &[u8]| {
            bytes.extend_from_slice(chunk);
            Ok::<(), ()>(())
        };
        model.write_file(28, |c| append(&mut f32_bytes, c)).unwrap();
        quantize(&model.view())
            .write_file(28, |c| append(&mut int8_bytes, c))
            .unwrap();
        let save = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            SavedModel::read(&path).unwrap()
        };
        let f32_file = save("f32.softreg", &f32_bytes);
        let int8_file = save("int8.softreg", &int8_bytes);
        assert!(!f32_file.is_int8() && int8_file.is_int8());
        assert_eq!(*f32_file.f32_model::<PIXELS>().unwrap().unwrap(), model);
        assert!(int8_file.f32_model::<PIXELS>().unwrap().is_none());
    }
}
