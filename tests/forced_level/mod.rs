//! One test, included by the test files CI runs once per SIMD level
//! (`SOFTREG_ISA=baseline`, `avx2`, `avx512`): the level the variable forces
//! is the one the kernels run at. Without it, a misspelt variable or a level
//! quietly ignored would test the best level three times and pass.

use softreg::Isa;

#[test]
fn the_kernels_run_at_the_level_softreg_isa_forces() {
    let Ok(name) = std::env::var("SOFTREG_ISA") else {
        return;
    };
    let forced = Isa::from_name(&name).unwrap_or_else(|e| panic!("SOFTREG_ISA={name}: {e}"));
    // Every public kernel, the training loop and the evaluation pass run at
    // `Isa::current()`.
    assert_eq!(
        Isa::current(),
        forced.unwrap_or_else(Isa::best_available),
        "SOFTREG_ISA={name}"
    );
}
