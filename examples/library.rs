//! softreg as a library: train the chapter's model, watch the loss step by
//! step, evaluate it, save it as a model file and classify images with it,
//! through the public API only.
//!
//!     cargo run --release --example library [DATA_DIR]
//!
//! `DATA_DIR` holds the four raw (not `.gz`) IDX files; without it, the
//! small fixtures of this repository (2,048 training and 256 test images).
use softreg::fashion_mnist::{Examples, Resized, CLASSES, CLASS_NAMES, RESIZED_PIXELS};
use softreg::inference::Classifier;
use softreg::model_file::AlignedBytes;
use softreg::pixel_model::PixelModel;
use softreg::train::{self, Event, Execution, Recipe, Sgd};
use softreg::{idx, Isa};
use std::{error::Error, ops::ControlFlow, path::Path};

/// One split's two files, read whole: a library user brings the bytes
/// however they like (the `softreg` command memory-maps them).
fn read(dir: &Path, split: &str) -> Result<[Vec<u8>; 2], Box<dyn Error>> {
    let read = |kind| {
        let name = format!("{split}-{kind}");
        std::fs::read(dir.join(&name)).map_err(|e| format!("{name}: {e}"))
    };
    Ok([read("images-idx3-ubyte")?, read("labels-idx1-ubyte")?])
}

/// The parsed view the trainer takes: 28x28 images and their labels.
fn examples([images, labels]: &[Vec<u8>; 2]) -> Result<Examples<'_>, Box<dyn Error>> {
    let labels = idx::parse_labels(labels)?;
    labels.check_classes(CLASSES)?;
    let images = idx::parse_images(images)?;
    let images = images.as_arrays().ok_or("the images are not 28x28")?;
    let labels = labels.labels;
    Ok(Examples { images, labels })
}

fn main() -> Result<(), Box<dyn Error>> {
    let (dir, train, test) = match std::env::args().nth(1) {
        Some(dir) => (dir, "train", "t10k"),
        None => ("fixtures".into(), "train-2048", "t10k-256"),
    };
    let (train, test) = (read(dir.as_ref(), train)?, read(dir.as_ref(), test)?);
    let (train, test) = (examples(&train)?, examples(&test)?);

    // The chapter's recipe (32x32 inputs), with smaller batches for the
    // small fixtures; every step's loss, and each epoch's test accuracy.
    let sgd = Sgd {
        batch_size: 64,
        ..Sgd::default()
    };
    let recipe = Recipe {
        epochs: 3,
        sgd,
        ..Recipe::default()
    };
    let fitted = train::fit::<RESIZED_PIXELS, Resized>(
        &recipe,
        Execution::default(),
        train,
        test,
        |event| {
            match event {
                Event::Step { epoch, step } => {
                    println!("epoch {epoch} step {}: loss {:.4}", step.batch, step.loss)
                }
                Event::Epoch(e) => println!(
                    "epoch {}: test accuracy {:.4}",
                    e.epoch,
                    e.validation.accuracy()
                ),
            }
            ControlFlow::Continue(())
        },
    )?;

    // Evaluate on raw pixels, as training does: the resize and the 1/255
    // folded into 784 weights per class.
    let mut pixels = PixelModel::zeroed();
    pixels.fold_from::<RESIZED_PIXELS, Resized>(&fitted.model);
    let evaluation = pixels.evaluate(test, Isa::current(), 1);
    let (accuracy, loss) = (evaluation.accuracy(), evaluation.mean_loss());
    println!("accuracy {accuracy:.4}, mean loss {loss:.4}");

    // Save it as a model file (what `softreg evaluate --model` reads), then
    // classify from the file's bytes, as firmware does from flash.
    let mut file = Vec::new();
    fitted
        .model
        .write_file(32, |bytes| {
            file.extend_from_slice(bytes);
            Ok::<_, ()>(())
        })
        .ok();
    let aligned = AlignedBytes::copy_from(&file);
    let classifier = Classifier::<RESIZED_PIXELS, CLASSES>::new(aligned.bytes())?;
    for (image, &label) in test.images.iter().zip(test.labels).take(5) {
        let prediction = classifier.classify(image);
        let (predicted, p) = (CLASS_NAMES[prediction.class], prediction.probability);
        println!(
            "predicted {predicted:<11} ({p:.2}), true {}",
            CLASS_NAMES[usize::from(label)]
        );
    }
    Ok(())
}
