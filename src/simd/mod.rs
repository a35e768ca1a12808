//! The SIMD layer every kernel is written against, and the choice of
//! instruction set at run time.
//!
//! Each kernel is written once, generic over a `Simd` level: a zero-sized
//! token whose existence proves the CPU can run that level's instructions,
//! and whose `Vector` type holds `Simd::LANES` `f32` values in registers.
//! There are three levels ([`Isa`]):
//!
//! | level | vector | where |
//! |---|---|---|
//! | [`Isa::Baseline`] | [`wide::f32x16`], 16 lanes | every target: SSE2 on x86_64, NEON on aarch64, SIMD128 on wasm32 (with `+simd128`), scalar code on a Cortex-M |
//! | [`Isa::Avx2`] | `__m256` through `core::arch`, 8 lanes, with FMA | x86_64 CPUs with AVX2 and FMA (Intel since 2013, AMD since 2017) |
//! | [`Isa::Avx512`] | `__m512` through `core::arch`, 16 lanes | x86_64 CPUs with AVX-512F and AVX-512VL |
//!
//! `wide` picks its instructions when it is compiled, from the target's
//! features, so wide code inside a function compiled for AVX2 is still SSE2
//! code; the two wider levels therefore use `core::arch` directly. They are
//! the only `unsafe` code of the kernels, in `avx2.rs` and `avx512.rs`.
//!
//! **Dispatch** follows `memchr` and `matrixmultiply`: a piece of work (a
//! `Kernel`: a training epoch, an evaluation pass, one kernel call) is
//! compiled once per level, as a generic body marked `#[inline(always)]`
//! all the way down, under a thin entry point compiled with that level's
//! `#[target_feature]`; `Isa::dispatch` picks the entry point. The choice
//! is made once per piece of work, so its whole hot loop is one level's code.
//!
//! Which level runs: [`Isa::current`]. With the `std` feature it is the best
//! level this CPU has, detected once and cached, unless the `SOFTREG_ISA`
//! environment variable (`auto`, `avx512`, `avx2`, `baseline`) names another;
//! without `std` it is the best level the crate was compiled for
//! (`-C target-feature` / `target-cpu`).
//!
//! **Numerics across levels.** The AVX2 and AVX-512 levels fuse each
//! multiply-add into one rounding; the baseline does so only where its
//! target has FMA (aarch64) and rounds twice on x86_64 and wasm32. Lane
//! counts differ too (8 or 16), which changes how a dot product is split
//! into partial sums. So results agree between levels to within rounding,
//! not to the bit; on one level they are the same on every run and for any
//! number of threads.

/// A unit test run once at every level this CPU has: `fn name<S>(s) {..}`
/// becomes a `#[test]` whose body is compiled per level, with `s: S` the
/// level's token.
#[cfg(test)]
macro_rules! level_test {
    ($(#[$attr:meta])* fn $name:ident<$S:ident>($s:ident) $body:block) => {
        #[test]
        $(#[$attr])*
        fn $name() {
            #[derive(Clone, Copy)]
            struct Body;
            impl $crate::simd::Kernel for Body {
                type Output = ();
                fn run<$S: $crate::simd::Simd>(self, $s: $S) $body
            }
            for isa in $crate::simd::tests::available() {
                std::eprintln!("at the {isa} level");
                isa.dispatch(Body);
            }
        }
    };
}

mod math;
mod portable;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

use core::fmt;
use core::ops::{Add, AddAssign, Div, Mul, Sub, SubAssign};

pub(crate) use portable::Baseline;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::Avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Avx512;

/// The most lanes any level's vector has: the size of the stack buffers that
/// partial loads and stores go through.
pub const MAX_LANES: usize = 16;

/// A SIMD instruction-set level the kernels can run at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// The portable `wide` code: SSE2 on x86_64, NEON on aarch64, SIMD128
    /// on wasm32, plain scalar code on targets without SIMD.
    Baseline,
    /// AVX2 with FMA, 256-bit vectors (x86_64 only).
    Avx2,
    /// AVX-512F with AVX-512VL, 512-bit vectors (x86_64 only).
    Avx512,
}

/// A level was asked for that this CPU (or, without `std`, this build)
/// cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable(pub Isa);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this CPU cannot run the {} level ({} needed)",
            self.0.name(),
            self.0.requires()
        )
    }
}

/// A name that is not a level: see [`Isa::from_name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownIsa;

impl fmt::Display for UnknownIsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected one of auto, avx512, avx2, baseline")
    }
}

impl Isa {
    /// Every level, fastest first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Baseline];

    /// The name used by `--isa`, `SOFTREG_ISA` and reports: `avx512`,
    /// `avx2` or `baseline`.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Lanes in the level's vectors: 16 for the baseline and AVX-512, 8 for
    /// AVX2. Kernels split sums into this many partial sums, so it shows in
    /// their rounding.
    pub const fn lanes(self) -> usize {
        match self {
            Isa::Baseline | Isa::Avx512 => 16,
            Isa::Avx2 => 8,
        }
    }

    /// What the level needs of the CPU, in words.
    pub const fn requires(self) -> &'static str {
        match self {
            Isa::Baseline => "nothing beyond the target's baseline",
            Isa::Avx2 => "x86_64 with AVX2 and FMA",
            Isa::Avx512 => "x86_64 with AVX-512F and AVX-512VL",
        }
    }

    /// The level a name stands for; `auto` is `Ok(None)`: let
    /// [`Isa::best_available`] decide.
    pub fn from_name(name: &str) -> Result<Option<Isa>, UnknownIsa> {
        match name {
            "auto" => Ok(None),
            "baseline" | "portable" => Ok(Some(Isa::Baseline)),
            "avx2" => Ok(Some(Isa::Avx2)),
            "avx512" => Ok(Some(Isa::Avx512)),
            _ => Err(UnknownIsa),
        }
    }

    /// Whether this CPU can run the level. With `std` this asks the CPU
    /// (once; the answer is cached); without it, it is what the crate was
    /// compiled for.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Baseline => true,
            Isa::Avx2 => detect::has_avx2(),
            Isa::Avx512 => detect::has_avx512(),
        }
    }

    /// The fastest level this CPU can run.
    pub fn best_available() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.is_available())
            .unwrap_or(Isa::Baseline)
    }

    /// `Ok(self)` if this CPU can run the level, else the reason it cannot.
    pub fn check(self) -> Result<Isa, Unavailable> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(Unavailable(self))
        }
    }

    /// The level the kernels run at when not told otherwise: with `std`,
    /// the one `SOFTREG_ISA` names, else the best available (see the module
    /// docs); without `std`, the best the crate was compiled for.
    ///
    /// # Panics
    /// With `std`, if `SOFTREG_ISA` is set to something that is not a
    /// level, or to a level this CPU cannot run: a forced level is a
    /// request to test that level, and running another would hide that.
    pub fn current() -> Isa {
        detect::current()
    }

    /// Makes this level the one [`Isa::current`] returns from now on, in
    /// every thread: for benchmarks and tests that compare levels side by
    /// side in one process. A library should not call it; an application
    /// passes its level to the training API instead.
    ///
    /// # Errors
    /// If this CPU cannot run the level.
    #[cfg(feature = "std")]
    pub fn set_current(self) -> Result<(), Unavailable> {
        self.check()?;
        detect::CURRENT.store(self as u8 + 1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Runs `kernel` compiled for this level.
    ///
    /// # Panics
    /// If this CPU cannot run the level; check with [`Isa::check`] first
    /// where the level comes from a user.
    #[inline]
    pub(crate) fn dispatch<K: Kernel>(self, kernel: K) -> K::Output {
        match self {
            Isa::Baseline => kernel.run(Baseline),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => match Avx2::new() {
                Some(token) => token.enter(kernel),
                None => unavailable(self),
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => match Avx512::new() {
                Some(token) => token.enter(kernel),
                None => unavailable(self),
            },
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => unavailable(self),
        }
    }
}

#[cold]
#[inline(never)]
fn unavailable(isa: Isa) -> ! {
    panic!("{}", Unavailable(isa))
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A piece of work compiled once per SIMD level: a kernel call, an
/// evaluation pass, a thread's share of a training epoch. `run` is the
/// generic body; it and everything it calls on the vectors must be
/// `#[inline(always)]`, so that [`Isa::dispatch`]'s per-level entry point
/// compiles all of it with that level's instructions.
pub(crate) trait Kernel {
    /// What the work returns.
    type Output;
    /// The work, at level `S`.
    fn run<S: Simd>(self, simd: S) -> Self::Output;
}

/// One SIMD level: a zero-sized token that only exists when the CPU can
/// run the level, so holding one is the proof its vector code may run.
/// It makes [`Simd::Vector`]s; the vectors do the arithmetic.
pub(crate) trait Simd: Copy + Send + Sync + 'static {
    /// `LANES` `f32` values.
    type Vector: Vector;
    /// Lanes per vector.
    const LANES: usize;
    /// Which level this is.
    const ISA: Isa;

    /// Every lane `v`.
    fn splat(self, v: f32) -> Self::Vector;
    /// The first `LANES` values of `s`.
    ///
    /// # Panics
    /// If `s` is shorter.
    fn load(self, s: &[f32]) -> Self::Vector;
    /// The first `LANES` bytes of `s`, as `f32` (exact: every `u8` is one).
    ///
    /// # Panics
    /// If `s` is shorter.
    fn load_u8(self, s: &[u8]) -> Self::Vector;

    /// All lanes zero.
    #[inline(always)]
    fn zero(self) -> Self::Vector {
        self.splat(0.0)
    }

    /// The first `min(s.len(), LANES)` values of `s`, the other lanes
    /// `fill`.
    #[inline(always)]
    fn load_partial(self, s: &[f32], fill: f32) -> Self::Vector {
        let mut lanes = [fill; MAX_LANES];
        let n = s.len().min(Self::LANES);
        lanes[..n].copy_from_slice(&s[..n]);
        self.load(&lanes)
    }

    /// [`Simd::load_u8`] of up to `LANES` bytes, the other lanes zero.
    #[inline(always)]
    fn load_u8_partial(self, s: &[u8]) -> Self::Vector {
        let mut lanes = [0u8; MAX_LANES];
        let n = s.len().min(Self::LANES);
        lanes[..n].copy_from_slice(&s[..n]);
        self.load_u8(&lanes)
    }

    /// `e^x` in every lane, to within 2 ulp for results above `f32`'s
    /// smallest normal (see `math.rs`).
    #[inline(always)]
    fn exp(self, x: Self::Vector) -> Self::Vector {
        math::exp(self, x)
    }

    /// `ln x` in every lane, to within 2 ulp (see `math.rs`).
    #[inline(always)]
    fn ln(self, x: Self::Vector) -> Self::Vector {
        math::ln(self, x)
    }
}

/// The vector of a [`Simd`] level: `f32` lanes and what the kernels do with
/// them. Only a level's token makes one, so a vector is itself proof that
/// its instructions may run.
pub(crate) trait Vector:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + SubAssign
{
    /// A lane-wise comparison result, for [`Vector::select`].
    type Mask: Copy;

    /// `self * b + c`, fused into one rounding where the level has FMA.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// The lane-wise maximum. Where a lane of either is NaN the result's
    /// lane is unspecified (one of the two); the kernels that take maxima
    /// let a NaN through their `exp` instead.
    fn max(self, other: Self) -> Self;
    /// Lanes where `self < other` (false where either is NaN).
    fn lt(self, other: Self) -> Self::Mask;
    /// Lanes where `self <= other` (false where either is NaN).
    fn le(self, other: Self) -> Self::Mask;
    /// `if_true` where `mask` is set, else `if_false`.
    fn select(mask: Self::Mask, if_true: Self, if_false: Self) -> Self;
    /// The sum of the lanes, always in the same order.
    fn reduce_add(self) -> f32;
    /// The lane sums of four vectors, each exactly [`Vector::reduce_add`]'s
    /// (the same additions in the same order), for kernels that finish
    /// many dot products at once: the x86 levels interleave the four so
    /// that each shuffle and add serves several, about half the work of
    /// four separate sums.
    #[inline(always)]
    fn reduce_add4(v: [Self; 4]) -> [f32; 4] {
        [
            v[0].reduce_add(),
            v[1].reduce_add(),
            v[2].reduce_add(),
            v[3].reduce_add(),
        ]
    }
    /// Writes the lanes to the first `LANES` values of `out`.
    ///
    /// # Panics
    /// If `out` is shorter.
    fn store(self, out: &mut [f32]);
    /// `2^n` for lanes holding whole numbers `n` in `-126..=127`.
    fn pow2i(self) -> Self;
    /// For positive normal lanes `x = m * 2^e` with `m` in `[1, 2)`:
    /// `(m, e)`, `e` as a float.
    fn frexp(self) -> (Self, Self);

    /// The largest lane; NaN lanes are skipped (all NaN gives `-inf`).
    /// Not for hot loops: it goes through memory.
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        let mut lanes = [f32::NEG_INFINITY; MAX_LANES];
        self.store(&mut lanes);
        lanes
            .into_iter()
            .fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m })
    }

    /// Writes the first `out.len()` (at most `LANES`) lanes to `out`.
    #[inline(always)]
    fn store_partial(self, out: &mut [f32]) {
        let mut lanes = [0.0f32; MAX_LANES];
        self.store(&mut lanes);
        let n = out.len().min(MAX_LANES);
        out[..n].copy_from_slice(&lanes[..n]);
    }
}

/// Chains of multiply-adds in registers: [`fma_peak`].
const PEAK_CHAINS: usize = 12;

/// The yardstick for the kernels: `steps` rounds of 12
/// independent chains of vector multiply-adds at level `isa`, on registers
/// only, doing `steps * 12 * isa.lanes() * 2` floating-point operations.
/// Timed, it gives the most FLOP/s this core reaches at that level, which
/// the GEMMs' figures are quoted against (`cargo bench --bench kernels`,
/// group `fma_peak`). Returns a value that depends on every operation, so
/// none can be optimised away.
///
/// # Panics
/// If this CPU cannot run `isa`.
pub fn fma_peak(isa: Isa, steps: usize) -> f32 {
    struct Peak(usize);
    impl Kernel for Peak {
        type Output = f32;
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> f32 {
            let (m, a) = (s.splat(core::hint::black_box(0.999)), s.splat(1e-3));
            let mut acc = [s.zero(); PEAK_CHAINS];
            for _ in 0..self.0 {
                for chain in acc.iter_mut() {
                    *chain = chain.mul_add(m, a);
                }
            }
            acc.iter().map(|v| v.reduce_add()).sum()
        }
    }
    isa.dispatch(Peak(steps))
}

/// Asks the memory system for every cache line of `value`, into L2, without
/// waiting for it: rows picked by a shuffled index are nowhere near each
/// other, so the hardware prefetcher cannot guess them. L2 rather than L1,
/// so the rows do not evict what the current pass is using. Only a hint:
/// it never faults, and on targets other than x86_64 it does nothing.
#[inline(always)]
pub(crate) fn prefetch_into_l2<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = (value as *const T).cast::<i8>();
        for offset in (0..core::mem::size_of::<T>()).step_by(64) {
            // SAFETY: `_mm_prefetch` needs only SSE, which every x86_64 CPU
            // has, and a prefetch never faults or changes memory; `offset`
            // stays inside `value`, so the pointer stays in bounds.
            #[allow(unsafe_code)]
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T1 }>(
                    start.add(offset),
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Detection of the levels, and the cached choice of [`Isa::current`].
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod detect {
    use super::Isa;
    use std::sync::atomic::AtomicU8;
    use std::sync::OnceLock;

    pub(super) fn has_avx2() -> bool {
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        })
    }

    pub(super) fn has_avx512() -> bool {
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            has_avx2()
                && std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512vl")
        })
    }

    pub(super) static CURRENT: AtomicU8 = AtomicU8::new(0);

    pub(super) fn current() -> Isa {
        super::cached(&CURRENT)
    }
}

/// Without `std` (or off x86_64) the levels are what the build enables.
#[cfg(not(all(feature = "std", target_arch = "x86_64")))]
mod detect {
    use super::Isa;

    pub(super) fn has_avx2() -> bool {
        cfg!(all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma"
        ))
    }

    pub(super) fn has_avx512() -> bool {
        has_avx2() && cfg!(all(target_feature = "avx512f", target_feature = "avx512vl"))
    }

    #[cfg(feature = "std")]
    pub(super) static CURRENT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

    #[cfg(feature = "std")]
    pub(super) fn current() -> Isa {
        super::cached(&CURRENT)
    }

    #[cfg(not(feature = "std"))]
    pub(super) fn current() -> Isa {
        Isa::best_available()
    }
}

/// The level stored in `slot` (0 while undecided: then it is decided from
/// the environment, once; two threads deciding at once decide alike).
#[cfg(feature = "std")]
fn cached(slot: &std::sync::atomic::AtomicU8) -> Isa {
    use std::sync::atomic::Ordering::Relaxed;
    match slot.load(Relaxed) {
        1 => Isa::Baseline,
        2 => Isa::Avx2,
        3 => Isa::Avx512,
        _ => {
            let isa = from_environment();
            slot.store(isa as u8 + 1, Relaxed);
            isa
        }
    }
}

/// The level `SOFTREG_ISA` names, else the best available.
#[cfg(feature = "std")]
fn from_environment() -> Isa {
    let Ok(name) = std::env::var("SOFTREG_ISA") else {
        return Isa::best_available();
    };
    match Isa::from_name(&name) {
        Ok(None) => Isa::best_available(),
        Ok(Some(isa)) => match isa.check() {
            Ok(isa) => isa,
            Err(e) => panic!("SOFTREG_ISA={name}: {e}"),
        },
        Err(e) => panic!("SOFTREG_ISA={name}: {e}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// The levels the tests of every kernel loop over: each level this CPU
    /// can run, or only the one `SOFTREG_ISA` forces. CI runs the tests
    /// once per forced level, so each pass is that level's code alone, the
    /// same level [`Isa::current`] gives the tests that do not loop.
    pub(crate) fn available() -> Vec<Isa> {
        match forced() {
            Some(isa) => std::vec![isa],
            None => Isa::ALL.into_iter().filter(|i| i.is_available()).collect(),
        }
    }

    /// The level `SOFTREG_ISA` names, if it names one (not `auto`).
    ///
    /// # Panics
    /// If it names no level, or one this CPU cannot run, as
    /// [`Isa::current`] does: a forced level is a request to test it.
    fn forced() -> Option<Isa> {
        let name = std::env::var("SOFTREG_ISA").ok()?;
        match Isa::from_name(&name) {
            Ok(level) => level.map(|isa| {
                isa.check()
                    .unwrap_or_else(|e| panic!("SOFTREG_ISA={name}: {e}"))
            }),
            Err(e) => panic!("SOFTREG_ISA={name}: {e}"),
        }
    }

    #[test]
    fn a_forced_level_is_the_only_one_tested_and_the_current_one() {
        if let Some(isa) = forced() {
            assert_eq!(available(), [isa]);
            // Without `std` the kernels run at the compiled level whatever
            // the environment says.
            #[cfg(feature = "std")]
            assert_eq!(Isa::current(), isa);
        }
    }

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Ok(Some(isa)));
        }
        assert_eq!(Isa::from_name("auto"), Ok(None));
        assert_eq!(Isa::from_name("sse9"), Err(UnknownIsa));
    }

    #[test]
    fn baseline_is_always_available_and_best_is_available() {
        assert!(Isa::Baseline.is_available());
        assert!(Isa::best_available().is_available());
        assert!(Isa::current().is_available());
        // AVX-512 here implies AVX2 and FMA.
        if Isa::Avx512.is_available() {
            assert!(Isa::Avx2.is_available());
        }
    }

    /// The primitives every level implements, against plain arithmetic.
    struct Primitives;

    impl Kernel for Primitives {
        type Output = ();
        fn run<S: Simd>(self, s: S) {
            let n = S::LANES;
            assert_eq!(n, S::ISA.lanes());
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 1.5 - 7.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 3.0 - i as f32 * 0.25).collect();
            let bytes: Vec<u8> = (0..n).map(|i| (i * 17 + 250) as u8).collect();
            let (va, vb) = (s.load(&a), s.load(&b));
            let mut out = [0.0f32; MAX_LANES];
            let lanes = |v: S::Vector, out: &mut [f32; MAX_LANES]| {
                v.store(&mut out[..]);
                out[..n].to_vec()
            };
            let each = |f: &dyn Fn(f32, f32) -> f32| -> Vec<f32> {
                a.iter().zip(&b).map(|(&x, &y)| f(x, y)).collect()
            };
            assert_eq!(lanes(va + vb, &mut out), each(&|x, y| x + y));
            assert_eq!(lanes(va - vb, &mut out), each(&|x, y| x - y));
            assert_eq!(lanes(va * vb, &mut out), each(&|x, y| x * y));
            assert_eq!(lanes(va / vb, &mut out), each(&|x, y| x / y));
            assert_eq!(lanes(va.max(vb), &mut out), each(&|x, y| x.max(y)));
            let fma = lanes(va.mul_add(vb, va), &mut out);
            for (got, (&x, &y)) in fma.iter().zip(a.iter().zip(&b)) {
                // Fused or not, both are within an ulp of the exact value.
                assert!((got - x.mul_add(y, x)).abs() <= 1e-6 * (x * y).abs().max(1.0));
            }
            let picked = lanes(S::Vector::select(va.lt(vb), va, vb), &mut out);
            assert_eq!(picked, each(&|x, y| if x < y { x } else { y }));
            let picked = lanes(S::Vector::select(va.le(va), va, vb), &mut out);
            assert_eq!(picked, a);
            assert_eq!(va.reduce_add(), a.iter().sum::<f32>());
            assert_eq!(va.reduce_max(), a.iter().copied().fold(f32::MIN, f32::max));
            let widened = lanes(s.load_u8(&bytes), &mut out);
            assert_eq!(
                widened,
                bytes.iter().map(|&v| f32::from(v)).collect::<Vec<_>>()
            );
            assert_eq!(lanes(s.splat(2.5), &mut out), [2.5].repeat(n));
            assert_eq!(lanes(s.zero(), &mut out), [0.0].repeat(n));

            // Partial loads fill, partial stores leave the rest alone.
            let short = lanes(s.load_partial(&a[..n - 3], -1.0), &mut out);
            assert_eq!(&short[..n - 3], &a[..n - 3]);
            assert_eq!(&short[n - 3..], &[-1.0; 3]);
            let short = lanes(s.load_u8_partial(&bytes[..2]), &mut out);
            assert_eq!(&short[..2], &[250.0, 11.0]);
            assert!(short[2..].iter().all(|&v| v == 0.0));
            let mut dst = [9.0f32; 5];
            va.store_partial(&mut dst[..3]);
            assert_eq!(dst, [a[0], a[1], a[2], 9.0, 9.0]);

            // 2^n and its inverse over the whole normal range.
            let ns: Vec<f32> = (-126..=127)
                .collect::<Vec<i32>>()
                .iter()
                .map(|&v| v as f32)
                .collect();
            for chunk in ns.chunks(n) {
                let v = s.load_partial(chunk, 0.0);
                let powers = lanes(v.pow2i(), &mut out);
                for (p, &e) in powers.iter().zip(chunk) {
                    assert_eq!(*p, libm::exp2f(e), "2^{e}");
                }
                let (m, e) = v.pow2i().mul_add(s.splat(1.75), s.zero()).frexp();
                assert!(lanes(m, &mut out).iter().all(|&m| m == 1.75));
                assert_eq!(&lanes(e, &mut out)[..chunk.len()], chunk);
            }
        }
    }

    level_test! {
        /// Bit for bit, so that a kernel may finish its dot products either
        /// way: random vectors of mixed magnitudes (where the order of the
        /// additions shows).
        fn reduce_add4_is_four_reduce_adds<S>(s) {
            let mut rng = crate::Rng::seed_from_u64(4);
            let mut lanes = [0.0f32; MAX_LANES];
            for _ in 0..500 {
                let mut v = [s.zero(); 4];
                for v in &mut v {
                    for x in &mut lanes[..S::LANES] {
                        *x = rng.normal() * libm::exp2f((rng.below(40) as f32) - 20.0);
                    }
                    *v = s.load(&lanes);
                }
                let got = S::Vector::reduce_add4(v);
                for (k, (got, v)) in got.into_iter().zip(v).enumerate() {
                    let want = v.reduce_add();
                    assert_eq!(got.to_bits(), want.to_bits(), "vector {k}: {got} against {want}");
                }
            }
        }
    }

    #[test]
    fn every_level_computes_its_primitives_exactly() {
        for isa in available() {
            isa.dispatch(Primitives);
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn dispatching_to_a_missing_level_panics_instead_of_crashing() {
        for isa in [Isa::Avx2, Isa::Avx512] {
            if !isa.is_available() {
                let caught = std::panic::catch_unwind(|| isa.dispatch(Primitives));
                assert!(caught.is_err(), "{isa}");
                assert!(isa.check().is_err());
            }
        }
    }

    #[test]
    fn errors_and_names_read_as_one_line() {
        assert_eq!(
            std::format!("{}", Unavailable(Isa::Avx512)),
            "this CPU cannot run the avx512 level (x86_64 with AVX-512F and AVX-512VL needed)"
        );
        assert_eq!(
            std::format!("{}", Unavailable(Isa::Avx2)),
            "this CPU cannot run the avx2 level (x86_64 with AVX2 and FMA needed)"
        );
        assert_eq!(
            std::format!("{}", Unavailable(Isa::Baseline)),
            "this CPU cannot run the baseline level (nothing beyond the target's baseline needed)"
        );
        assert_eq!(
            std::format!("{UnknownIsa}"),
            "expected one of auto, avx512, avx2, baseline"
        );
        let names: Vec<std::string::String> =
            Isa::ALL.iter().map(|isa| std::format!("{isa}")).collect();
        assert_eq!(names, ["avx512", "avx2", "baseline"]);
        assert_eq!(Isa::from_name("portable"), Ok(Some(Isa::Baseline)));
    }

    /// The levels this CPU has are the ones its feature flags say, and the
    /// best of them is the one chosen.
    #[test]
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    fn the_available_levels_are_the_cpus_features() {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        let avx512 = avx2
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl");
        assert_eq!(Isa::Avx2.is_available(), avx2);
        assert_eq!(Isa::Avx512.is_available(), avx512);
        let best = if avx512 {
            Isa::Avx512
        } else if avx2 {
            Isa::Avx2
        } else {
            Isa::Baseline
        };
        assert_eq!(Isa::best_available(), best);
        for isa in Isa::ALL {
            assert_eq!(
                isa.check(),
                if isa.is_available() {
                    Ok(isa)
                } else {
                    Err(Unavailable(isa))
                }
            );
        }
        // Unforced, the level the kernels run at is the best one, and it
        // stays so (it is cached after the first call).
        if forced().is_none() {
            for _ in 0..3 {
                assert_eq!(Isa::current(), best);
            }
        }
    }

    /// `fma_peak`'s value: each of the 12 chains of every lane runs
    /// `x <- 0.999 x + 0.001` from 0, `steps` times.
    #[test]
    fn fma_peak_returns_the_sum_of_its_chains() {
        for isa in available() {
            for steps in [0usize, 1, 2, 100] {
                let mut x = 0.0f32;
                for _ in 0..steps {
                    x = x.mul_add(0.999, 1e-3);
                }
                let want = x * (PEAK_CHAINS * isa.lanes()) as f32;
                let got = fma_peak(isa, steps);
                assert!(
                    (got - want).abs() <= 1e-5 * want + f32::MIN_POSITIVE,
                    "{isa} steps={steps}: {got} vs {want}"
                );
            }
        }
    }
}
