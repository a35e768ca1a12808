//! Kernel benchmarks: `cargo bench --bench kernels`.
//!
//! The GEMM groups set `Throughput::Elements(2 * B * IN * OUT)`, the number of
//! floating-point operations (one multiply and one add per term), so the
//! `thrpt` criterion prints as **elem/s is FLOP/s** (`Gelem/s` = GFLOP/s).
//! Each SIMD kernel runs beside its scalar twin in `kernels::reference` and
//! `matrixmultiply::sgemm` on the same data, in the same group.
//! The SGD-step group counts images instead: `elem/s` there is images/s.
//!
//! Medians per benchmark: `python3 benches/gflops.py` after a run reads
//! criterion's `estimates.json` files and prints them as a table.
//!
//! Measurement times are short (about 1 s a benchmark) so the whole run takes
//! a minute or two; pass `--measurement-time` for steadier numbers.

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use softreg::kernels::{cross_entropy, matmul, reference};
use softreg::{Rng, SoftmaxRegression};
use std::hint::black_box;
use std::time::Duration;

/// The training batch.
const B: usize = 256;
/// Fashion-MNIST's ten classes.
const OUT: usize = 10;

fn random_rows<const N: usize>(
    rng: &mut Rng,
    rows: usize,
    f: impl Fn(&mut Rng) -> f32,
) -> Vec<[f32; N]> {
    (0..rows)
        .map(|_| core::array::from_fn(|_| f(rng)))
        .collect()
}

fn pixels<const IN: usize>(rng: &mut Rng, rows: usize) -> Vec<[u8; IN]> {
    (0..rows)
        .map(|_| core::array::from_fn(|_| (rng.next_u64() >> 56) as u8))
        .collect()
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000));
}

/// `logits = X W + b` beside the reference and `sgemm`; elem/s = FLOP/s.
fn forward<const IN: usize>(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(1);
    let x_u8 = pixels::<IN>(&mut rng, B);
    let x: Vec<[f32; IN]> = x_u8
        .iter()
        .map(|r| r.map(|p| f32::from(p) / 255.0))
        .collect();
    let w: Box<[[f32; IN]; OUT]> = random_rows::<IN>(&mut rng, OUT, |r| 0.01 * r.normal())
        .try_into()
        .unwrap();
    let b = [0.1f32; OUT];
    let mut out = vec![[0.0f32; OUT]; B];

    let mut group = c.benchmark_group(format!("forward_gemm/B{B}_IN{IN}_OUT{OUT}"));
    configure(&mut group);
    group.throughput(Throughput::Elements((2 * B * IN * OUT) as u64));
    group.bench_function("simd", |bench| {
        bench.iter(|| matmul::logits(black_box(&x), black_box(&w), &b, black_box(&mut out)))
    });
    group.bench_function("simd_u8", |bench| {
        bench.iter(|| {
            matmul::logits_u8(
                black_box(&x_u8),
                black_box(&w),
                &b,
                1.0 / 255.0,
                black_box(&mut out),
            )
        })
    });
    group.bench_function("reference", |bench| {
        bench.iter(|| reference::logits(black_box(&x), black_box(&w), &b, black_box(&mut out)))
    });
    group.bench_function("matrixmultiply", |bench| {
        bench.iter(|| {
            for row in out.iter_mut() {
                *row = b;
            }
            // SAFETY: X is B x IN row-major, W^T is read through the
            // class-major W (row stride 1, column stride IN), the output is
            // B x OUT row-major; all three buffers have exactly those sizes.
            unsafe {
                matrixmultiply::sgemm(
                    B,
                    IN,
                    OUT,
                    1.0,
                    black_box(x.as_ptr().cast()),
                    IN as isize,
                    1,
                    black_box(w.as_ptr().cast()),
                    1,
                    IN as isize,
                    1.0,
                    black_box(out.as_mut_ptr().cast()),
                    OUT as isize,
                    1,
                )
            }
        })
    });
    group.finish();
}

/// `W += scale * X^T G` beside the reference and `sgemm`; elem/s = FLOP/s.
fn gradient<const IN: usize>(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(2);
    let x_u8 = pixels::<IN>(&mut rng, B);
    let x: Vec<[f32; IN]> = x_u8
        .iter()
        .map(|r| r.map(|p| f32::from(p) / 255.0))
        .collect();
    let g = random_rows::<OUT>(&mut rng, B, |r| 0.1 * r.normal());
    let mut w: Box<[[f32; IN]; OUT]> = vec![[0.0f32; IN]; OUT].try_into().unwrap();
    let scale = -1e-6f32;

    let mut group = c.benchmark_group(format!("gradient_gemm/B{B}_IN{IN}_OUT{OUT}"));
    configure(&mut group);
    group.throughput(Throughput::Elements((2 * B * IN * OUT) as u64));
    group.bench_function("simd", |bench| {
        bench.iter(|| {
            matmul::accumulate_weight_gradient(
                black_box(&x),
                black_box(&g),
                scale,
                black_box(&mut w),
            )
        })
    });
    group.bench_function("simd_u8", |bench| {
        bench.iter(|| {
            matmul::accumulate_weight_gradient_u8(
                black_box(&x_u8),
                black_box(&g),
                scale / 255.0,
                black_box(&mut w),
            )
        })
    });
    group.bench_function("reference", |bench| {
        bench.iter(|| {
            reference::accumulate_weight_gradient(
                black_box(&x),
                black_box(&g),
                scale,
                black_box(&mut w),
            )
        })
    });
    group.bench_function("matrixmultiply", |bench| {
        bench.iter(|| {
            // SAFETY: G^T is read through the B x OUT row-major G (row stride
            // 1, column stride OUT), X is B x IN row-major, W is OUT x IN
            // row-major; all three buffers have exactly those sizes.
            unsafe {
                matrixmultiply::sgemm(
                    OUT,
                    B,
                    IN,
                    scale,
                    black_box(g.as_ptr().cast()),
                    1,
                    OUT as isize,
                    black_box(x.as_ptr().cast()),
                    IN as isize,
                    1,
                    1.0,
                    black_box(w.as_mut_ptr().cast()),
                    IN as isize,
                    1,
                )
            }
        })
    });
    group.finish();
}

/// Fused softmax + cross-entropy + gradient on a 256 x 10 batch of logits;
/// elem/s = rows/s.
fn softmax_loss(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(3);
    let z = random_rows::<OUT>(&mut rng, B, |r| 3.0 * r.normal());
    let y: Vec<u8> = (0..B).map(|i| (i % OUT) as u8).collect();
    let mut work = z.clone();

    let mut group = c.benchmark_group(format!("softmax_cross_entropy_grad/B{B}_C{OUT}"));
    configure(&mut group);
    group.throughput(Throughput::Elements(B as u64));
    group.bench_function("simd", |bench| {
        bench.iter(|| {
            work.copy_from_slice(&z);
            cross_entropy::softmax_cross_entropy_grad(black_box(&mut work), black_box(&y))
        })
    });
    group.bench_function("reference", |bench| {
        bench.iter(|| {
            work.copy_from_slice(&z);
            reference::softmax_cross_entropy_grad(black_box(&mut work), black_box(&y))
        })
    });
    group.finish();
}

/// One minibatch SGD step (forward, softmax + loss, gradient, update) of the
/// chapter's 32 x 32 model; elem/s = images/s.
fn sgd_step(c: &mut Criterion) {
    const IN: usize = 1024;
    let mut rng = Rng::seed_from_u64(4);
    let x = random_rows::<IN>(&mut rng, B, |r| (r.next_u64() >> 56) as f32 / 255.0);
    let y: Vec<u8> = (0..B).map(|i| (i * 7 % OUT) as u8).collect();
    let mut model: Box<SoftmaxRegression<IN, OUT>> = Box::new(SoftmaxRegression::zeroed());
    model.init_normal(&mut rng, 0.01);
    let mut scratch = vec![[0.0f32; OUT]; B];

    let mut group = c.benchmark_group(format!("sgd_step/B{B}_IN{IN}_OUT{OUT}"));
    configure(&mut group);
    group.throughput(Throughput::Elements(B as u64));
    group.bench_function("simd", |bench| {
        bench.iter(|| model.sgd_step(black_box(&x), black_box(&y), 0.1, &mut scratch))
    });
    group.finish();
}

fn gemms(c: &mut Criterion) {
    forward::<1024>(c);
    forward::<784>(c);
    gradient::<1024>(c);
    gradient::<784>(c);
}

criterion_group!(benches, gemms, softmax_loss, sgd_step);
criterion_main!(benches);
