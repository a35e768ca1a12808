//! The whole-run benchmark: the default recipe (10 epochs, batch 256, lr 0.1,
//! per-epoch validation on the 10,000 test images) on the real data, timed
//! end to end for 1 and 2 threads and for 32x32 and 28x28 inputs.
//!
//!     SOFTREG_DATA_DIR=../shared/fashion-mnist cargo bench --bench train
//!
//! Data loading is not timed (as `train_seconds` in `softreg train --json`).
//! Reports the median of several runs in seconds and images/s, where an
//! image is one training example seen (600,000 per run).

use flate2::read::GzDecoder;
use softreg::fashion_mnist::{CLASSES, PIXELS};
use softreg::train::{Examples, InputMap, Native, Resized};
use softreg::{idx, parallel, Rng, SoftmaxRegression};
use std::io::Read;
use std::path::Path;
use std::time::Instant;

const RUNS: usize = 7;
const EPOCHS: usize = 10;

fn read(dir: &Path, name: &str) -> Vec<u8> {
    let raw = dir.join(name);
    if let Ok(bytes) = std::fs::read(&raw) {
        return bytes;
    }
    let gz = dir.join(format!("{name}.gz"));
    let file = std::fs::File::open(&gz).unwrap_or_else(|e| {
        eprintln!("{}: {e}", gz.display());
        std::process::exit(1);
    });
    let mut bytes = Vec::new();
    GzDecoder::new(file).read_to_end(&mut bytes).unwrap();
    bytes
}

struct Split {
    images: Vec<[u8; PIXELS]>,
    labels: Vec<u8>,
}

impl Split {
    fn examples(&self) -> Examples<'_> {
        Examples {
            images: &self.images,
            labels: &self.labels,
        }
    }
}

fn load(dir: &Path, prefix: &str) -> Split {
    let image_bytes = read(dir, &format!("{prefix}-images-idx3-ubyte"));
    let label_bytes = read(dir, &format!("{prefix}-labels-idx1-ubyte"));
    let images = idx::parse_images(&image_bytes).unwrap();
    Split {
        images: images.as_arrays::<PIXELS>().unwrap().to_vec(),
        labels: idx::parse_labels(&label_bytes).unwrap().labels.to_vec(),
    }
}

/// One run of the recipe; returns (seconds, final validation accuracy).
fn run<const IN: usize, M: InputMap<IN>>(train: &Split, val: &Split, threads: usize) -> (f64, f64) {
    let mut rng = Rng::seed_from_u64(0);
    let mut model = Box::new(SoftmaxRegression::<IN, CLASSES>::zeroed());
    model.init_normal(&mut rng, 0.01);
    let mut order: Vec<u32> = (0..train.images.len() as u32).collect();
    let start = Instant::now();
    let mut accuracy = 0.0;
    for _ in 0..EPOCHS {
        rng.shuffle(&mut order);
        let sgd = parallel::Sgd {
            batch_size: 256,
            lr: 0.1,
            threads,
        };
        parallel::train_epoch::<IN, M>(&mut model, train.examples(), &order, sgd, || {});
        accuracy = parallel::evaluate::<IN, M>(&model, val.examples(), threads).accuracy();
    }
    (start.elapsed().as_secs_f64(), accuracy)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // and only wants to know the bench builds and starts.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(dir) = std::env::var_os("SOFTREG_DATA_DIR") else {
        eprintln!(
            "train bench: set SOFTREG_DATA_DIR to a folder with the four Fashion-MNIST IDX files \
             (raw or .gz), e.g. SOFTREG_DATA_DIR=../shared/fashion-mnist cargo bench --bench train"
        );
        std::process::exit(1);
    };
    let dir = Path::new(&dir);
    let train = load(dir, "train");
    let val = load(dir, "t10k");
    let images = (EPOCHS * train.images.len()) as f64;
    println!(
        "recipe: {EPOCHS} epochs, batch 256, lr 0.1, validation every epoch; median of {RUNS} runs"
    );
    println!(
        "{:<8} {:>8} {:>12} {:>14} {:>8}",
        "inputs", "threads", "seconds", "images/s", "val acc"
    );
    // Alternate the configurations run by run so drift in the machine's
    // speed hits them all alike.
    let configs = [(32, 1), (32, 2), (28, 1), (28, 2)];
    let mut times = vec![Vec::new(); configs.len()];
    let mut accuracies = vec![0.0; configs.len()];
    for _ in 0..RUNS {
        for (i, &(side, threads)) in configs.iter().enumerate() {
            let (seconds, accuracy) = if side == 32 {
                run::<1024, Resized>(&train, &val, threads)
            } else {
                run::<784, Native>(&train, &val, threads)
            };
            times[i].push(seconds);
            accuracies[i] = accuracy;
        }
    }
    for (i, &(side, threads)) in configs.iter().enumerate() {
        let seconds = median(times[i].clone());
        println!(
            "{:<8} {threads:>8} {seconds:>12.4} {:>14.0} {:>8.4}",
            format!("{side}x{side}"),
            images / seconds,
            accuracies[i]
        );
    }
}
