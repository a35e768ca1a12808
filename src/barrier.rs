//! The barrier the training threads meet at once a batch (feature `std`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A barrier that spins for a short while before sleeping. The threads meet
/// once a batch, 2,350 times in a 10-epoch run, and a batch lasts well under
/// a millisecond: `std::sync::Barrier` always puts the waiter to sleep, and
/// the wake-up takes tens of microseconds, most of what a second thread
/// gains. Spinning alone is no better on a busy machine: when another
/// thread has lost its core to another process, spinning burns this core
/// until the scheduler gives it back. So the waiter spins for [`SPIN_FOR`],
/// then sleeps on a condition variable (`docs/performance.md` has the
/// measurements).
///
/// A thread that panics poisons it (see [`PoisonOnPanic`]): the others then
/// panic at their next wait instead of waiting for ever for it, and
/// `thread::scope` hands the panic on to the caller.
pub(crate) struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    sleepers: AtomicUsize,
    poisoned: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// How long a waiter spins before it sleeps: a few times the usual gap
/// between the threads' arrivals, and short next to a scheduler time slice
/// (milliseconds).
const SPIN_FOR: Duration = Duration::from_micros(50);

const POISONED: &str = "another training thread panicked";

impl SpinBarrier {
    pub(crate) fn new(threads: usize) -> Self {
        SpinBarrier {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// Waits until every thread has arrived.
    ///
    /// # Panics
    /// If the barrier is poisoned: a thread panicked, and will never arrive.
    pub(crate) fn wait(&self) {
        let generation = self.generation.load(Ordering::SeqCst);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            // Last to arrive: reset for the next use, then release the rest.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::SeqCst);
            // A sleeper counts itself before it checks the generation, and
            // we bump the generation before we look at the count (both
            // SeqCst), so either it sees the new generation and does not
            // sleep, or we see it and wake it. Taking the lock first means
            // it is inside `wait`, not between its check and its sleep.
            if self.sleepers.load(Ordering::SeqCst) > 0 {
                let _guard = self.lock();
                self.wake.notify_all();
            }
            return;
        }
        let start = Instant::now();
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            spins += 1;
            if spins.is_multiple_of(64) {
                self.panic_if_poisoned();
                if start.elapsed() > SPIN_FOR {
                    let mut guard = self.lock();
                    self.sleepers.fetch_add(1, Ordering::SeqCst);
                    while self.generation.load(Ordering::SeqCst) == generation {
                        // Checked under the lock, which `poison` takes
                        // before it wakes the sleepers: none misses it.
                        if self.poisoned.load(Ordering::SeqCst) {
                            drop(guard);
                            panic!("{POISONED}");
                        }
                        guard = self
                            .wake
                            .wait(guard)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    self.sleepers.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Tells every waiter, now and later, that a thread will never arrive.
    fn poison(&self) {
        self.poisoned.store(true, Ordering::SeqCst);
        let _guard = self.lock();
        self.wake.notify_all();
    }

    fn panic_if_poisoned(&self) {
        assert!(!self.poisoned.load(Ordering::SeqCst), "{POISONED}");
    }

    /// The sleepers' lock. It guards no data, so a panic while it was held
    /// (there is none) could leave nothing inconsistent.
    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Held by each thread that meets at a [`SpinBarrier`]: if the thread
/// panics, dropping it on the way out poisons the barrier.
pub(crate) struct PoisonOnPanic<'a>(pub(crate) &'a SpinBarrier);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poison();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every thread sees every other's increment after each barrier and none
    /// of the next round's before it, spinning (2 threads) and sleeping
    /// (8 threads on a 2-core machine wait longer than `SPIN_FOR`).
    #[test]
    fn barrier_separates_rounds() {
        for threads in [2, 3, 8] {
            let barrier = SpinBarrier::new(threads);
            let counter = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        for round in 0..500 {
                            counter.fetch_add(1, Ordering::Relaxed);
                            barrier.wait();
                            assert_eq!(counter.load(Ordering::Relaxed), threads * (round + 1));
                            barrier.wait();
                        }
                    });
                }
            });
        }
    }

    /// A thread that panics makes the others panic at the barrier, spinning
    /// or asleep, instead of leaving them waiting for it for ever; the scope
    /// then hands the panic on. Run on a watchdog thread, so that a hang
    /// fails the test with a message rather than stalling the suite.
    #[test]
    fn a_panicking_thread_poisons_the_barrier() {
        for (threads, late) in [(2, Duration::ZERO), (3, Duration::from_millis(20))] {
            let (done, finished) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let barrier = SpinBarrier::new(threads);
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    std::thread::scope(|scope| {
                        for t in 0..threads {
                            let barrier = &barrier;
                            scope.spawn(move || {
                                let _poison = PoisonOnPanic(barrier);
                                barrier.wait();
                                if t == 0 {
                                    // Late enough that the others sleep.
                                    std::thread::sleep(late);
                                    panic!("thread 0 fails");
                                }
                                barrier.wait();
                            });
                        }
                    });
                }));
                done.send(outcome.is_err()).unwrap();
            });
            let panicked = finished
                .recv_timeout(Duration::from_secs(60))
                .expect("the other threads still wait for the one that panicked");
            assert!(panicked);
        }
    }
}
