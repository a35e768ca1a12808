//! Every input that ever made a fuzz target fail, replayed through the
//! fuzz targets' own checks (`fuzz/checks/mod.rs`), plus the real fixtures.
//!
//! To add one: copy the crashing input from `fuzz/artifacts/TARGET/` to
//! `fixtures/fuzz-regressions/TARGET-what-it-is` and, if it shows something
//! worth pinning down, add a test below that says what it must give.

#[path = "../fuzz/checks/mod.rs"]
mod checks;
mod cli_support;

use cli_support::{entries, Sandbox};
use softreg::model_file::{self, ModelFileError};
use softreg::SoftmaxRegression;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// A model file for `softreg predict`: 784 inputs, all weights equal.
fn flat_model(sb: &Sandbox) -> String {
    let model = SoftmaxRegression::<784, 10>::zeroed();
    let mut bytes = Vec::new();
    model
        .write_file(28, |c: &[u8]| {
            bytes.extend_from_slice(c);
            Ok::<(), ()>(())
        })
        .unwrap();
    let path = sb.path("flat.softreg");
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A 304-byte PNG whose header claims 600 x 251,658,241 pixels: `predict`
/// once allocated the 151 GB frame before decoding and aborted. It must
/// refuse the image, naming the file, before allocating.
#[test]
fn png_with_huge_dimensions_is_refused() {
    let sb = Sandbox::new();
    let model = flat_model(&sb);
    let png = fixtures().join("fuzz-regressions/png_predict-huge-dimensions.png");
    sb.softreg(&["predict", "--model", &model, png.to_str().unwrap()])
        .fails(
            1,
            &[
                "png_predict-huge-dimensions.png",
                "larger than 4096 pixels a side",
            ],
        );
}

/// A 197-byte PNG of 1 x 60,000 pixels: squaring it up once took a minute
/// (quadratic in the longer side). Images over 4096 pixels a side are now
/// refused up front.
#[test]
fn tall_thin_png_is_refused() {
    let sb = Sandbox::new();
    let model = flat_model(&sb);
    let png = fixtures().join("fuzz-regressions/png_predict-tall-1x60000.png");
    sb.softreg(&["predict", "--model", &model, png.to_str().unwrap()])
        .fails(1, &["png_predict-tall-1x60000.png", "1x60000"]);
}

/// A gzip bomb: the labels' `.gz` (97 KB) holds an IDX header promising 2
/// labels and then 100 MB of zeros. Decompression must stop right after the
/// promised 10 bytes, refuse the file, and leave no decompressed copy.
#[test]
fn gzip_bomb_stops_at_the_promised_length() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    std::fs::remove_file(data.join("t10k-labels-idx1-ubyte")).unwrap();
    std::fs::copy(
        fixtures().join("fuzz-regressions/gz-bomb-labels-100MB.gz"),
        data.join("t10k-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    let model = flat_model(&sb);
    let before = entries(&data);
    let start = Instant::now();
    sb.softreg(&[
        "evaluate",
        "--model",
        &model,
        "--offline",
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .fails(
        1,
        &["t10k-labels-idx1-ubyte.gz", "more data than the 2 bytes"],
    );
    assert_eq!(entries(&data), before, "the bomb left files behind");
    // Inflating all 100 MB would take a debug build several seconds.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
}
