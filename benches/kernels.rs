//! Kernel benchmarks: `cargo bench --bench kernels`.
//!
//! Every SIMD kernel runs once per instruction-set level this CPU has
//! (`simd_avx512`, `simd_avx2`, `simd_baseline`, side by side in each
//! group), and `fma_peak` measures each level's own ceiling the same way.
//!
//! The GEMM groups set `Throughput::Elements(2 * B * IN * OUT)`, the number of
//! floating-point operations (one multiply and one add per term), so the
//! `thrpt` criterion prints as **elem/s is FLOP/s** (`Gelem/s` = GFLOP/s).
//! Each SIMD kernel runs beside its scalar twin in `kernels::reference` and
//! `matrixmultiply::sgemm` on the same data, in the same group.
//! The softmax + loss group counts rows (`elem/s` = rows/s), the SGD-step
//! group images (`elem/s` = images/s), and `fma_peak` FLOPs again: the
//! ceiling of this core for the GEMMs.
//!
//! Clock: the time criterion measures is the benchmark thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) on Linux, not wall time, because the machines
//! this runs on are shared: with other builds on the same two cores, wall
//! time mostly measures the scheduler. On an idle machine the two agree.
//! `SOFTREG_BENCH_CLOCK=wall` switches to wall time.
//!
//! Medians per benchmark: `python3 benches/gflops.py` after a run reads
//! criterion's `estimates.json` files and prints them as a table.
//!
//! All matrices live in 64-byte-aligned buffers (as a trainer should keep
//! them): a vector then never straddles two cache lines, which costs the
//! kernels measurably (`docs/performance.md`).
//!
//! Measurement times are short (about 1 s a benchmark) so the whole run takes
//! a minute or two; pass `--measurement-time` for steadier numbers.

use bytemuck::Pod;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use softreg::kernels::{cross_entropy, matmul, reference};
use softreg::{simd, Isa, Rng, SoftmaxRegression};
use std::hint::black_box;
use std::marker::PhantomData;
use std::mem::size_of;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The training batch.
const B: usize = 256;
/// Fashion-MNIST's ten classes.
const OUT: usize = 10;

/// One cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

// SAFETY: `Line` is 64 bytes of `f32`s, `repr(C)`, with no padding (the
// alignment equals the size), so every bit pattern is a valid value and it
// may be viewed as bytes.
unsafe impl bytemuck::Zeroable for Line {}
// SAFETY: as above.
unsafe impl bytemuck::Pod for Line {}

/// `rows` rows of `N` values of `T` in a 64-byte-aligned buffer.
struct Aligned<T, const N: usize> {
    buf: Vec<Line>,
    rows: usize,
    _t: PhantomData<T>,
}

impl<T: Pod, const N: usize> Aligned<T, N> {
    fn new(rows: usize, mut f: impl FnMut() -> T) -> Self {
        let bytes = rows * N * size_of::<T>();
        let mut a = Aligned {
            buf: vec![Line([0.0; 16]); bytes.div_ceil(64)],
            rows,
            _t: PhantomData,
        };
        a.rows_mut().iter_mut().flatten().for_each(|v| *v = f());
        a
    }

    fn rows(&self) -> &[[T; N]] {
        let bytes: &[u8] = bytemuck::cast_slice(&self.buf);
        bytemuck::cast_slice(&bytes[..self.rows * N * size_of::<T>()])
    }

    fn rows_mut(&mut self) -> &mut [[T; N]] {
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut self.buf);
        bytemuck::cast_slice_mut(&mut bytes[..self.rows * N * size_of::<T>()])
    }

    fn map<U: Pod>(&self, f: impl Fn(T) -> U) -> Aligned<U, N> {
        let mut values = self.rows().iter().flatten();
        Aligned::new(self.rows, || f(*values.next().unwrap()))
    }
}

fn random_rows<const N: usize>(
    rng: &mut Rng,
    rows: usize,
    f: impl Fn(&mut Rng) -> f32,
) -> Aligned<f32, N> {
    Aligned::new(rows, || f(rng))
}

fn pixels<const IN: usize>(rng: &mut Rng, rows: usize) -> Aligned<u8, IN> {
    Aligned::new(rows, || (rng.next_u64() >> 56) as u8)
}

/// Thread CPU time (see the module comment), or wall time.
struct Clock {
    wall: bool,
}

impl Clock {
    fn from_env() -> Self {
        let wall = std::env::var("SOFTREG_BENCH_CLOCK").is_ok_and(|v| v == "wall");
        Clock {
            wall: wall || thread_cpu_time().is_none(),
        }
    }

    fn now(&self) -> Duration {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        match thread_cpu_time() {
            Some(cpu) if !self.wall => cpu,
            _ => EPOCH.get_or_init(Instant::now).elapsed(),
        }
    }
}

impl Measurement for Clock {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        self.now()
    }
    fn end(&self, start: Duration) -> Duration {
        self.now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

/// CPU time of the calling thread.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn thread_cpu_time() -> Option<Duration> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` (in the C library std links) writes one
    // `struct timespec`, two 64-bit fields on 64-bit Linux, to `ts`.
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (status == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

/// The levels this CPU can run, fastest first.
fn levels() -> Vec<Isa> {
    Isa::ALL
        .into_iter()
        .filter(|isa| isa.is_available())
        .collect()
}

/// Benchmarks `f` once per level as `{name}_{level}`, with the level made
/// current for the kernels' dispatch.
fn per_level(group: &mut BenchmarkGroup<'_, Clock>, name: &str, mut f: impl FnMut()) {
    for isa in levels() {
        isa.set_current().expect("an available level");
        group.bench_function(format!("{name}_{isa}"), |bench| bench.iter(&mut f));
    }
    Isa::best_available().set_current().unwrap();
}

fn configure(group: &mut BenchmarkGroup<'_, Clock>) {
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000));
}

/// `logits = X W + b` beside the reference and `sgemm`; elem/s = FLOP/s.
fn forward<const IN: usize>(c: &mut Criterion<Clock>) {
    let mut rng = Rng::seed_from_u64(1);
    let x_u8 = pixels::<IN>(&mut rng, B);
    let x = x_u8.map(|p| f32::from(p) / 255.0);
    let w = random_rows::<IN>(&mut rng, OUT, |r| 0.01 * r.normal());
    let (x_u8, x, w) = (x_u8.rows(), x.rows(), w.rows());
    let w: &[[f32; IN]; OUT] = w.try_into().unwrap();
    let b = [0.1f32; OUT];
    let mut out = vec![[0.0f32; OUT]; B];

    let mut group = c.benchmark_group(format!("forward_gemm/B{B}_IN{IN}_OUT{OUT}"));
    configure(&mut group);
    group.throughput(Throughput::Elements((2 * B * IN * OUT) as u64));
    per_level(&mut group, "simd", || {
        matmul::logits(black_box(x), black_box(w), &b, 1.0, black_box(&mut out))
    });
    per_level(&mut group, "simd_u8", || {
        matmul::logits(
            black_box(x_u8),
            black_box(w),
            &b,
            1.0 / 255.0,
            black_box(&mut out),
        )
    });
    group.bench_function("reference", |bench| {
        bench.iter(|| reference::logits(black_box(x), black_box(w), &b, black_box(&mut out)))
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
fn gradient<const IN: usize>(c: &mut Criterion<Clock>) {
    let mut rng = Rng::seed_from_u64(2);
    let x_u8 = pixels::<IN>(&mut rng, B);
    let x = x_u8.map(|p| f32::from(p) / 255.0);
    let g = random_rows::<OUT>(&mut rng, B, |r| 0.1 * r.normal());
    let mut w = Aligned::<f32, IN>::new(OUT, || 0.0);
    let (x_u8, x, g) = (x_u8.rows(), x.rows(), g.rows());
    let w: &mut [[f32; IN]; OUT] = w.rows_mut().try_into().unwrap();
    let scale = -1e-6f32;

    let mut group = c.benchmark_group(format!("gradient_gemm/B{B}_IN{IN}_OUT{OUT}"));
    configure(&mut group);
    group.throughput(Throughput::Elements((2 * B * IN * OUT) as u64));
    per_level(&mut group, "simd", || {
        matmul::accumulate_weight_gradient(black_box(x), black_box(g), scale, black_box(&mut *w))
    });
    per_level(&mut group, "simd_u8", || {
        matmul::accumulate_weight_gradient(
            black_box(x_u8),
            black_box(g),
            scale / 255.0,
            black_box(&mut *w),
        )
    });
    group.bench_function("reference", |bench| {
        bench.iter(|| {
            reference::accumulate_weight_gradient(
                black_box(x),
                black_box(g),
                scale,
                black_box(&mut *w),
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
fn softmax_loss(c: &mut Criterion<Clock>) {
    let mut rng = Rng::seed_from_u64(3);
    let z = random_rows::<OUT>(&mut rng, B, |r| 3.0 * r.normal());
    let z = z.rows();
    let y: Vec<u8> = (0..B).map(|i| (i % OUT) as u8).collect();
    let mut work = z.to_vec();

    let mut group = c.benchmark_group(format!("softmax_cross_entropy_grad/B{B}_C{OUT}"));
    configure(&mut group);
    group.throughput(Throughput::Elements(B as u64));
    per_level(&mut group, "simd", || {
        work.copy_from_slice(z);
        cross_entropy::softmax_cross_entropy_grad(black_box(&mut work), black_box(&y));
    });
    group.bench_function("reference", |bench| {
        bench.iter(|| {
            work.copy_from_slice(z);
            reference::softmax_cross_entropy_grad(black_box(&mut work), black_box(&y))
        })
    });
    group.finish();
}

/// One minibatch SGD step (forward, softmax + loss, gradient, update) of the
/// chapter's 32 x 32 model; elem/s = images/s.
fn sgd_step(c: &mut Criterion<Clock>) {
    const IN: usize = 1024;
    let mut rng = Rng::seed_from_u64(4);
    let x = random_rows::<IN>(&mut rng, B, |r| (r.next_u64() >> 56) as f32 / 255.0);
    let x = x.rows();
    let y: Vec<u8> = (0..B).map(|i| (i * 7 % OUT) as u8).collect();
    let mut model: Box<SoftmaxRegression<IN, OUT>> = Box::new(SoftmaxRegression::zeroed());
    model.init_normal(&mut rng, 0.01);
    let mut scratch = vec![[0.0f32; OUT]; B];

    let mut group = c.benchmark_group(format!("sgd_step/B{B}_IN{IN}_OUT{OUT}"));
    configure(&mut group);
    group.throughput(Throughput::Elements(B as u64));
    per_level(&mut group, "simd", || {
        model.sgd_step(black_box(x), black_box(&y), 0.1, &mut scratch);
    });
    group.finish();
}

/// What a training step does to the folded weights of the 32x32 model (all
/// 10 classes): `W_eff += c R^T R g` in one pass (`resize::gram_add`, what
/// training does), against unfolding `g` into the 32x32 weights and folding
/// them all again (`unfold_gradient_add` + `fold_resize_into_weights`);
/// elem/s = steps/s.
fn fold_step(c: &mut Criterion<Clock>) {
    use softreg::fashion_mnist::{PIXELS, RESIZED_PIXELS};
    use softreg::resize;
    let mut rng = Rng::seed_from_u64(5);
    let mut g = vec![[0.0f32; PIXELS]; OUT];
    let mut w = vec![[0.0f32; RESIZED_PIXELS]; OUT];
    for v in g.iter_mut().flatten().chain(w.iter_mut().flatten()) {
        *v = rng.normal();
    }
    let mut w_eff = vec![[0.0f32; PIXELS]; OUT];

    let mut group = c.benchmark_group(format!("fold_step/OUT{OUT}"));
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    per_level(&mut group, "gram_add", || {
        for (g, w_eff) in g.iter().zip(w_eff.iter_mut()) {
            resize::gram_add(black_box(g), -1e-3, w_eff);
        }
    });
    group.bench_function("unfold_then_fold", |bench| {
        bench.iter(|| {
            for ((g, w), w_eff) in g.iter().zip(w.iter_mut()).zip(w_eff.iter_mut()) {
                resize::unfold_gradient_add(black_box(g), -1e-3, w);
                resize::fold_resize_into_weights(w, 1.0 / 255.0, w_eff);
            }
        })
    });
    group.finish();
}

/// The ceiling for the GEMMs at each level: 12 independent chains of
/// multiply-adds on registers only ([`simd::fma_peak`]); elem/s = FLOP/s.
fn fma_peak(c: &mut Criterion<Clock>) {
    const STEPS: usize = 4096;
    let mut group = c.benchmark_group("fma_peak");
    configure(&mut group);
    for isa in levels() {
        group.throughput(Throughput::Elements((STEPS * 12 * 2 * isa.lanes()) as u64));
        group.bench_function(format!("registers_{isa}"), |bench| {
            bench.iter(|| simd::fma_peak(isa, black_box(STEPS)))
        });
    }
    group.finish();
}

fn gemms(c: &mut Criterion<Clock>) {
    forward::<1024>(c);
    forward::<784>(c);
    gradient::<1024>(c);
    gradient::<784>(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = fma_peak, gemms, softmax_loss, fold_step, sgd_step
}
criterion_main!(benches);
