//! `Isa::set_current`, which the benches use to run every level side by
//! side in one process. It changes the level for every thread, and it is
//! tested with `SOFTREG_ISA` set, so it has a test binary of its own, with
//! one test: nothing else runs at the same time.

use softreg::simd::Unavailable;
use softreg::Isa;

#[test]
fn set_current_overrides_softreg_isa_in_every_thread() {
    let available: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.is_available()).collect();
    let best = Isa::best_available();
    // Where threads cannot be started (wasm without atomics, as
    // `softreg::train` judges it), the level is checked on this one only.
    let threads = !cfg!(all(target_family = "wasm", not(target_feature = "atomics")));
    let current_elsewhere = || {
        if threads {
            std::thread::spawn(Isa::current).join().unwrap()
        } else {
            Isa::current()
        }
    };

    // Not yet set: the level SOFTREG_ISA names, the same on every call (the
    // first call caches it).
    std::env::set_var("SOFTREG_ISA", best.name());
    for _ in 0..3 {
        assert_eq!(Isa::current(), best);
    }

    for &isa in &available {
        // SOFTREG_ISA names another level (where the CPU has another), so
        // a level that was not kept would show.
        let other = available.iter().find(|&&o| o != isa).unwrap_or(&isa);
        std::env::set_var("SOFTREG_ISA", other.name());
        assert_eq!(isa.set_current(), Ok(()));
        assert_eq!(Isa::current(), isa, "SOFTREG_ISA={other}");
        assert_eq!(Isa::current(), isa, "SOFTREG_ISA={other}, again");
        assert_eq!(current_elsewhere(), isa, "another thread");
    }

    // A level this CPU cannot run is refused, and the level stays.
    let last = *available.last().unwrap();
    for isa in Isa::ALL.into_iter().filter(|i| !i.is_available()) {
        assert_eq!(isa.set_current(), Err(Unavailable(isa)));
        assert_eq!(Isa::current(), last);
    }
}
