//! Produces the firmware example's bundle, `examples/firmware/assets/`: a
//! trained model (f32 and int8), 32 test images with their labels, and the
//! host's predictions for them, which the firmware checks bit for bit.
//!
//! ```text
//! cargo run --release --example export_firmware_bundle -- train [DATA_DIR]
//! cargo run --release --example export_firmware_bundle -- evaluate [DATA_DIR]
//! ```
//!
//! `train` trains the chapter's model (32x32 inputs, 10 epochs of minibatch
//! SGD, batch 256, learning rate 0.1, `W ~ N(0, 0.01^2)`) on Fashion-MNIST
//! from `DATA_DIR` (default `$SOFTREG_DATA_DIR`, the `*-ubyte.gz` or `*-ubyte`
//! files, read as `softreg` reads them), or on the 2,048 images in
//! `fixtures/` when neither is given, and
//! writes every file of the bundle. `evaluate` keeps the committed model and
//! only reports f32 and int8 accuracy on the test set and rewrites the host's
//! predictions.
use softreg::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS, RESIZED_SIDE};
use softreg::inference::Classifier;
use softreg::quantized::{self, QuantizedModel};
use softreg::{resize, Rng, SoftmaxRegression};
use softreg_cli::dataset::{self, Source, SplitFiles};
use std::path::{Path, PathBuf};
use std::{env, fs};

/// Test images carried by the firmware: the first ones of the test set.
const BUNDLE_IMAGES: usize = 32;
const EPOCHS: usize = 10;
const BATCH: usize = 256;
const LR: f32 = 0.1;
const SIGMA: f32 = 0.01;
const SEED: u64 = 2024;

type Model = SoftmaxRegression<RESIZED_PIXELS, CLASSES>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("");
    if mode != "train" && mode != "evaluate" {
        eprintln!("usage: export_firmware_bundle train|evaluate [DATA_DIR]");
        std::process::exit(2);
    }
    // The repository: the firmware's assets and fixtures/ are there.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is a directory of the repository");
    let assets = root.join("examples/firmware/assets");
    let data_dir = args
        .get(1)
        .map(PathBuf::from)
        .or_else(|| env::var_os("SOFTREG_DATA_DIR").map(PathBuf::from));
    let (train, test, source) = match &data_dir {
        Some(dir) => (
            load(dir, dataset::Split::Train)?,
            load(dir, dataset::Split::Test)?,
            format!(
                "the full Fashion-MNIST data (the original IDX files, from {})",
                dir.display()
            ),
        ),
        None => (
            load_fixture(root, "train-2048")?,
            load_fixture(root, "t10k-256")?,
            "the 2,048 training images in fixtures/".to_string(),
        ),
    };
    println!(
        "train {} images, test {} images, from {source}",
        train.1.len(),
        test.1.len()
    );

    let f32_path = assets.join("model-f32.bin");
    let int8_path = assets.join("model-int8.bin");
    let mut model = Box::new(Model::zeroed());
    if mode == "train" {
        train_model(&mut model, &train);
        let mut bytes = Vec::new();
        model.write_file(RESIZED_SIDE as u32, |c| {
            bytes.extend_from_slice(c);
            Ok::<(), std::io::Error>(())
        })?;
        fs::create_dir_all(&assets)?;
        fs::write(&f32_path, &bytes)?;
        fs::write(
            assets.join("SOURCE.txt"),
            format!(
                "model-f32.bin: the chapter's model (32x32 inputs, 10 classes) trained by\n\
                 `cargo run --release --example export_firmware_bundle -- train` on {}\n\
                 ({EPOCHS} epochs, batch {BATCH}, lr {LR}, sigma {SIGMA}, seed {SEED}).\n\
                 model-int8.bin: softreg::quantized::quantize of it.\n\
                 images.bin, labels.bin: the first {BUNDLE_IMAGES} images of the Fashion-MNIST test set.\n\
                 host-f32.bin, host-int8.bin: per image, u32 LE class, probability bits, FNV-1a of the logits' bits.\n",
                source.replace("/work/shared/", "shared/")
            ),
        )?;
    } else {
        model.load_file_bytes(&fs::read(&f32_path)?)?;
    }
    let q = Box::new(quantized::quantize(&model.view()));
    let mut bytes = Vec::with_capacity(QuantizedModel::<RESIZED_PIXELS, CLASSES>::FILE_LEN);
    q.write_file(RESIZED_SIDE as u32, |c| {
        bytes.extend_from_slice(c);
        Ok::<(), std::io::Error>(())
    })?;
    fs::write(&int8_path, &bytes)?;

    // Both models through the firmware's own API, on the host.
    let f32_bytes = Aligned::copy(&fs::read(&f32_path)?);
    let int8_bytes = Aligned::copy(&fs::read(&int8_path)?);
    let f32_model = Classifier::<RESIZED_PIXELS, CLASSES>::new(f32_bytes.bytes())?;
    let int8_model = Classifier::<RESIZED_PIXELS, CLASSES>::new(int8_bytes.bytes())?;
    let (images, labels) = &test;
    let accuracy = |c: &Classifier<RESIZED_PIXELS, CLASSES>| {
        let correct = images
            .iter()
            .zip(labels)
            .filter(|(x, &y)| c.classify(x).class == usize::from(y))
            .count();
        correct as f64 / labels.len() as f64
    };
    let (acc_f32, acc_int8) = (accuracy(&f32_model), accuracy(&int8_model));
    let agree = images
        .iter()
        .filter(|x| f32_model.classify(x).class == int8_model.classify(x).class)
        .count();
    println!(
        "test accuracy over {} images: f32 {:.2}%, int8 {:.2}% ({:+.2} points); same class on {agree}",
        labels.len(),
        100.0 * acc_f32,
        100.0 * acc_int8,
        100.0 * (acc_int8 - acc_f32)
    );
    println!(
        "model files: f32 {} bytes, int8 {} bytes",
        f32_bytes.bytes().len(),
        int8_bytes.bytes().len()
    );

    let bundle = &images[..BUNDLE_IMAGES];
    fs::write(assets.join("images.bin"), bundle.concat())?;
    fs::write(assets.join("labels.bin"), &labels[..BUNDLE_IMAGES])?;
    let mut table = String::from("image label f32 int8\n");
    let mut preds = [Vec::new(), Vec::new()];
    for (i, image) in bundle.iter().enumerate() {
        let mut row = format!("{i:5} {:5}", labels[i]);
        for (c, out) in [&f32_model, &int8_model].iter().zip(&mut preds) {
            let record = c.record(image);
            out.extend_from_slice(&record.to_le_bytes());
            row += &format!(" {:4}", record.class);
        }
        table += &row;
        table.push('\n');
    }
    fs::write(assets.join("host-f32.bin"), &preds[0])?;
    fs::write(assets.join("host-int8.bin"), &preds[1])?;
    fs::write(assets.join("host-predictions.txt"), table)?;
    println!("wrote {}", assets.display());
    Ok(())
}

/// The chapter's training loop: minibatch SGD over a fresh shuffle each epoch.
fn train_model(model: &mut Model, (images, labels): &(Vec<[u8; PIXELS]>, Vec<u8>)) {
    let mut rng = Rng::seed_from_u64(SEED);
    model.init_normal(&mut rng, SIGMA);
    let mut x = vec![[0.0f32; RESIZED_PIXELS]; images.len()];
    for (x, image) in x.iter_mut().zip(images) {
        resize::resize_28_to_32(image, x);
    }
    let mut order: Vec<usize> = (0..images.len()).collect();
    let mut xb = vec![[0.0f32; RESIZED_PIXELS]; BATCH];
    let mut yb = vec![0u8; BATCH];
    let mut scratch = vec![[0.0f32; CLASSES]; BATCH];
    for epoch in 0..EPOCHS {
        rng.shuffle(&mut order);
        let mut loss = 0.0f64;
        for batch in order.chunks(BATCH) {
            for (slot, &i) in batch.iter().enumerate() {
                xb[slot] = x[i];
                yb[slot] = labels[i];
            }
            let n = batch.len();
            loss += f64::from(model.sgd_step(&xb[..n], &yb[..n], LR, &mut scratch[..n])) * n as f64;
        }
        let eval = model.evaluate(&x, labels);
        println!(
            "epoch {:2}: loss {:.4}, train accuracy {:.4}",
            epoch + 1,
            loss / images.len() as f64,
            eval.accuracy()
        );
    }
}

type Split = (Vec<[u8; PIXELS]>, Vec<u8>);

/// The examples of `files`, copied out.
fn owned(files: &SplitFiles) -> Result<Split, Box<dyn std::error::Error>> {
    let examples = files.examples()?;
    Ok((examples.images.to_vec(), examples.labels.to_vec()))
}

/// One split of the dataset in `dir`, raw or `.gz`, never downloaded.
fn load(dir: &Path, split: dataset::Split) -> Result<Split, Box<dyn std::error::Error>> {
    owned(&SplitFiles::open(
        &Source::new(Some(dir), true, None),
        split,
    )?)
}

/// One of the cut-down sets in `fixtures/` (`train-2048`, `t10k-256`).
fn load_fixture(root: &Path, set: &str) -> Result<Split, Box<dyn std::error::Error>> {
    let dir = root.join("fixtures");
    owned(&SplitFiles::open_raw(
        &dir.join(format!("{set}-images-idx3-ubyte")),
        &dir.join(format!("{set}-labels-idx1-ubyte")),
    )?)
}

/// A copy of model-file bytes on a 4-byte boundary, as the in-place views
/// need.
struct Aligned(Vec<u32>, usize);

impl Aligned {
    fn copy(bytes: &[u8]) -> Self {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Aligned(words, bytes.len())
    }

    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.0)[..self.1]
    }
}
