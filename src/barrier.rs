//! The barrier the training threads meet at once a batch (feature `std`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
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
pub(crate) struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

/// How long a waiter spins before it sleeps: a few times the usual gap
/// between the threads' arrivals, and short next to a scheduler time slice
/// (milliseconds).
const SPIN_FOR: Duration = Duration::from_micros(50);

impl SpinBarrier {
    pub(crate) fn new(threads: usize) -> Self {
        SpinBarrier {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

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
                let _guard = self.lock.lock().unwrap();
                self.wake.notify_all();
            }
            return;
        }
        let start = Instant::now();
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            spins += 1;
            if spins.is_multiple_of(64) && start.elapsed() > SPIN_FOR {
                let mut guard = self.lock.lock().unwrap();
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                while self.generation.load(Ordering::SeqCst) == generation {
                    guard = self.wake.wait(guard).unwrap();
                }
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            std::hint::spin_loop();
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
}
