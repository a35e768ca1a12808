//! The whole-run benchmark: the default recipe (10 epochs, batch 256, lr 0.1,
//! per-epoch validation on the 10,000 test images) on the real data, timed
//! end to end through the core's `train::fit`, for every SIMD level this CPU
//! has, 1 and 2 threads, and 32x32 and 28x28 inputs; each level's FMA peak
//! is measured in the same run, and each time is set against the floor it
//! implies (the run's GEMM FLOPs at that peak).
//!
//!     SOFTREG_DATA_DIR=../shared/fashion-mnist cargo bench --bench train
//!
//! The data is read as `softreg` reads it (`softreg_cli::dataset`, the files
//! raw or `.gz`) and copied into memory once; loading is not timed (as
//! `train_seconds` in `softreg train --json`).
//! Reports the median of several runs in seconds and images/s, where an
//! image is one training example seen (600,000 per run).

use softreg::fashion_mnist::{
    Examples, InputMap, Native, Resized, CLASSES, PIXELS, RESIZED_PIXELS,
};
use softreg::train::{self, Execution, Recipe};
use softreg::{resize, simd, Isa, Rng, SoftmaxRegression};
use softreg_cli::dataset::{self, Source, SplitFiles};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

/// Runs per configuration unless `SOFTREG_BENCH_RUNS` says otherwise.
const RUNS: usize = 7;
const EPOCHS: usize = 10;

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

/// One split of the data in `dir`, copied out of the mapped files into
/// memory, as this bench always had it, so its figures stay comparable.
fn load(dir: &Path, split: dataset::Split) -> Split {
    let examples = SplitFiles::open(&Source::new(Some(dir), true, None), split).and_then(|files| {
        let examples = files.examples()?;
        Ok(Split {
            images: examples.images.to_vec(),
            labels: examples.labels.to_vec(),
        })
    });
    examples.unwrap_or_else(|e| {
        eprintln!("train bench: {e:#}");
        std::process::exit(1);
    })
}

/// One run of the recipe; returns (seconds, final validation accuracy).
fn run<const IN: usize, M: InputMap<IN>>(
    train: &Split,
    val: &Split,
    threads: usize,
    isa: Isa,
) -> (f64, f64) {
    let execution = Execution {
        threads,
        isa,
        ..Execution::default()
    };
    let start = Instant::now();
    let fitted = train::fit::<IN, M>(
        &Recipe::default(),
        execution,
        train.examples(),
        val.examples(),
        |_| ControlFlow::Continue(()),
    )
    .expect("the default recipe trains");
    let seconds = start.elapsed().as_secs_f64();
    (
        seconds,
        fitted.history.last().unwrap().validation.accuracy(),
    )
}

/// GEMM FLOPs of one default run at 784 pixels per image (the 32x32 model
/// runs on its folded weights, so the same): per epoch a forward and a
/// gradient pass over the training images and a forward pass over the
/// validation images, two FLOPs per multiply-add.
fn gemm_flops(train: usize, val: usize) -> f64 {
    let per_image = 2.0 * (PIXELS * CLASSES) as f64;
    EPOCHS as f64 * per_image * (2 * train + val) as f64
}

/// The level's FMA peak in FLOP/s on this core: the fastest of 21 timed runs
/// of [`simd::fma_peak`]. Another tenant on the host can only slow a run
/// down, so the fastest is the closest to what the core can do, and the
/// floor it gives is never flattering (a median once read a third low).
fn fma_peak(isa: Isa) -> f64 {
    const STEPS: usize = 1 << 20;
    let flops = (STEPS * 12 * 2 * isa.lanes()) as f64;
    let fastest = (0..21)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(simd::fma_peak(isa, STEPS));
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    flops / fastest
}

/// The same recipe the plain way, as the chapter does it: every image resized
/// to 1024 `f32` inputs once up front (not timed), each shuffled batch copied
/// into a contiguous block and stepped with [`SoftmaxRegression::sgd_step`]
/// on one thread. The baseline the folded, u8, sharded trainer is measured
/// against.
fn run_prepared(train: &Split, val: &Split) -> (f64, f64) {
    let prepare = |split: &Split| -> Vec<[f32; RESIZED_PIXELS]> {
        split
            .images
            .iter()
            .map(|image| {
                let mut row = [0.0; RESIZED_PIXELS];
                resize::resize_28_to_32(image, &mut row);
                row
            })
            .collect()
    };
    let (train_x, val_x) = (prepare(train), prepare(val));
    let mut rng = Rng::seed_from_u64(0);
    let mut model = Box::new(SoftmaxRegression::<RESIZED_PIXELS, CLASSES>::zeroed());
    model.init_normal(&mut rng, 0.01);
    let mut order: Vec<u32> = (0..train_x.len() as u32).collect();
    let mut batch_x = vec![[0.0f32; RESIZED_PIXELS]; 256];
    let mut batch_y = vec![0u8; 256];
    let mut scratch = vec![[0.0f32; CLASSES]; 256];
    let start = Instant::now();
    let mut accuracy = 0.0;
    for _ in 0..EPOCHS {
        rng.shuffle(&mut order);
        for batch in order.chunks(256) {
            for ((x, y), &i) in batch_x.iter_mut().zip(batch_y.iter_mut()).zip(batch) {
                *x = train_x[i as usize];
                *y = train.labels[i as usize];
            }
            let n = batch.len();
            model.sgd_step(&batch_x[..n], &batch_y[..n], 0.1, &mut scratch);
        }
        accuracy = model.evaluate(&val_x, &val.labels).accuracy();
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
    let train = load(dir, dataset::Split::Train);
    let val = load(dir, dataset::Split::Test);
    let images = (EPOCHS * train.images.len()) as f64;
    let runs = std::env::var("SOFTREG_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(RUNS);
    let levels: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.is_available()).collect();
    let flops = gemm_flops(train.images.len(), val.images.len());
    println!(
        "recipe: {EPOCHS} epochs, batch 256, lr 0.1, validation every epoch; median of {runs} runs; \
         {:.1} GFLOP of GEMMs a run",
        flops / 1e9
    );
    let mut peaks = Vec::new();
    for &isa in &levels {
        let peak = fma_peak(isa);
        println!("FMA peak, {isa:<8}: {:>6.1} GFLOP/s per core", peak / 1e9);
        peaks.push((isa, peak));
    }
    println!(
        "{:<30} {:>8} {:>9} {:>10} {:>12} {:>9} {:>8} {:>8}",
        "inputs", "level", "threads", "seconds", "images/s", "floor x", "speed-up", "val acc"
    );
    // Alternate the configurations run by run so drift in the machine's
    // speed hits them all alike. Side 0 stands for the prepared-f32
    // baseline (32x32, one thread, current level).
    let mut all = vec![(0, 1, Isa::current())];
    for &isa in &levels {
        all.extend([(32, 1, isa), (32, 2, isa)]);
    }
    all.extend([(28, 1, levels[0]), (28, 2, levels[0])]);
    // `cargo bench --bench train -- 32/2/avx2 28/1` runs only those (a
    // missing level means the best; 0/1 is the prepared baseline): handy
    // when comparing two builds side by side.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let configs: Vec<(usize, usize, Isa)> = all
        .into_iter()
        .filter(|&(side, threads, isa)| {
            wanted.is_empty()
                || wanted.contains(&format!("{side}/{threads}/{isa}"))
                || (isa == levels[0] && wanted.contains(&format!("{side}/{threads}")))
        })
        .collect();
    let mut times = vec![Vec::new(); configs.len()];
    let mut accuracies = vec![0.0; configs.len()];
    for _ in 0..runs {
        for (i, &(side, threads, isa)) in configs.iter().enumerate() {
            isa.set_current().expect("an available level");
            let (seconds, accuracy) = match side {
                0 => run_prepared(&train, &val),
                32 => run::<1024, Resized>(&train, &val, threads, isa),
                _ => run::<784, Native>(&train, &val, threads, isa),
            };
            times[i].push(seconds);
            accuracies[i] = accuracy;
        }
    }
    let medians: Vec<f64> = times.into_iter().map(median).collect();
    for (i, &(side, threads, isa)) in configs.iter().enumerate() {
        let seconds = medians[i];
        let name = match side {
            0 => "32x32 f32 prepared, sgd_step".to_string(),
            _ => format!("{side}x{side}"),
        };
        let peak = peaks
            .iter()
            .find(|(p, _)| *p == isa)
            .map_or(f64::NAN, |p| p.1);
        let floor = flops / (peak * threads as f64);
        // How many times faster than the same configuration on one thread,
        // when that ran too.
        let speed_up = configs
            .iter()
            .position(|&c| c == (side, 1, isa))
            .filter(|_| side != 0)
            .map_or("-".to_string(), |one| {
                format!("{:.2}", medians[one] / seconds)
            });
        println!(
            "{name:<30} {isa:>8} {threads:>9} {seconds:>10.4} {:>12.0} {:>9.2} {speed_up:>8} {:>8.4}",
            images / seconds,
            seconds / floor,
            accuracies[i]
        );
    }
}
