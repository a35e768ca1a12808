//! Inputs that once made the fuzz targets of the command line's readers
//! fail (`idx_gz`, `png_predict`), replayed through `softreg` itself: each
//! must now be refused with a one-line error naming the file. The saved
//! inputs are in `fixtures/fuzz-regressions/`; every one of them also goes
//! through the core's fuzz checks in the core's `tests/fuzz_regressions.rs`.

mod cli_support;

use cli_support::{entries, fixture, Sandbox};
use softreg::SoftmaxRegression;
use std::time::{Duration, Instant};

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
    let png = fixture("fuzz-regressions/png_predict-huge-dimensions.png");
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
    let png = fixture("fuzz-regressions/png_predict-tall-1x60000.png");
    sb.softreg(&["predict", "--model", &model, png.to_str().unwrap()])
        .fails(1, &["png_predict-tall-1x60000.png", "1x60000"]);
}

/// A 94-byte 2x2 palette PNG whose PLTE chunk is 11 bytes, not whole RGB
/// entries (what the fuzzer found, with valid checksums): the `png` crate
/// panicked expanding it and `softreg predict` exited 101. It is refused
/// with a one-line error.
#[test]
fn png_with_a_ragged_palette_is_refused() {
    let sb = Sandbox::new();
    let model = flat_model(&sb);
    let png = fixture("fuzz-regressions/png_predict-palette-11-bytes.png");
    sb.softreg(&["predict", "--model", &model, png.to_str().unwrap()])
        .fails(
            1,
            &["png_predict-palette-11-bytes.png", "palette is 11 bytes"],
        );
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
        fixture("fuzz-regressions/gz-bomb-labels-100MB.gz"),
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
