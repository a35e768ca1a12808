//! Every input that ever made a fuzz target fail, replayed through the
//! fuzz targets' own checks (`tests/fuzz_checks/mod.rs`), plus the real fixtures.
//! The inputs of the command line's readers (`idx_gz`, `png_predict`) are
//! also replayed through `softreg` itself, in
//! `cli/tests/cli_fuzz_regressions.rs`.
//!
//! To add one: copy the crashing input from `fuzz/artifacts/TARGET/` to
//! `fixtures/fuzz-regressions/TARGET-what-it-is` and, if it shows something
//! worth pinning down, add a test below that says what it must give.

mod fuzz_checks;

use fuzz_checks as checks;
use softreg::model_file::{self, ModelFileError};
use softreg::SoftmaxRegression;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn regression(name: &str) -> Vec<u8> {
    let path = fixtures().join("fuzz-regressions").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `bytes` through every target's checks: each accepts any input.
fn replay(bytes: &[u8]) {
    checks::idx_labels(bytes);
    checks::idx_images(bytes);
    checks::model_file(bytes);
}

#[test]
fn every_saved_input_passes_every_target() {
    let dir = fixtures().join("fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        replay(&bytes);
        // And every truncation of it, which is how most damage looks.
        for end in 0..bytes.len().min(256) {
            replay(&bytes[..end]);
        }
        seen += 1;
    }
    assert!(seen > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn the_real_fixtures_pass_every_target() {
    for name in [
        "t10k-256-labels-idx1-ubyte",
        "t10k-256-images-idx3-ubyte",
        "train-2048-labels-idx1-ubyte",
    ] {
        replay(&std::fs::read(fixtures().join(name)).unwrap());
    }
}

/// Found by `model_file` in its first seconds: a header whose reserved
/// field is not zero loaded, and the model then wrote back a different file.
#[test]
fn model_file_reserved_nonzero_is_refused() {
    let bytes = regression("model_file-reserved-nonzero");
    assert_eq!(
        model_file::read_header(&bytes).unwrap_err(),
        ModelFileError::ReservedNotZero(1)
    );
    assert_eq!(
        SoftmaxRegression::<1, 1>::from_file_bytes(&bytes).unwrap_err(),
        ModelFileError::ReservedNotZero(1)
    );
    // With the field cleared it is a good 1x1 model.
    let mut fixed = bytes.clone();
    fixed[28..32].fill(0);
    let model = SoftmaxRegression::<1, 1>::from_file_bytes(&fixed).unwrap();
    assert!(model.weights[0][0].is_finite());
}
