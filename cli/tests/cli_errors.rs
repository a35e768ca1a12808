//! Bad input: nonsense flags exit 2, damaged data exits 1, each with a
//! one-line error naming the flag or file, no panic, and nothing
//! half-written left behind.

mod cli_support;

use cli_support::{entries, fixture, Sandbox};
use std::fs;

#[test]
fn nonsense_flags_are_usage_errors() {
    let sb = Sandbox::new();
    for (args, flag) in [
        (&["--batch-size", "0"][..], "--batch-size"),
        (&["train", "--epochs", "0"], "--epochs"),
        (&["--lr", "NaN"], "--lr"),
        (&["--lr", "-0.1"], "--lr"),
        (&["--resize", "30"], "--resize"),
        (&["--threads", "0"], "--threads"),
        (&["--sigma", "-0.01"], "--sigma"),
        (&["--sigma", "inf"], "--sigma"),
        (&["--epochs", "ten"], "--epochs"),
        (&["--no-such-flag"], "--no-such-flag"),
        (&["predict", "--model", "m.softreg"], "IMAGE.png"),
    ] {
        sb.softreg(args).fails(2, &[flag]);
    }
    assert!(!sb.path("runs").exists(), "a usage error created a run dir");
}

/// Trains one epoch on the small dataset with `name` replaced by the broken
/// fixture `broken`, expecting a data error that mentions `needles`.
fn train_with_broken(broken: &str, name: &str, needles: &[&str]) {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    fs::remove_file(data.join(name.trim_end_matches(".gz"))).unwrap();
    fs::copy(fixture(&format!("broken/{broken}")), data.join(name)).unwrap();
    let before = entries(&data);
    let out = sb.path("run");
    let run = sb.softreg(&[
        "train",
        "--epochs",
        "1",
        "--offline",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut all = vec![name];
    all.extend_from_slice(needles);
    run.fails(1, &all);
    assert!(!out.exists(), "{broken}: the run dir was left behind");
    assert_eq!(
        entries(&data),
        before,
        "{broken}: files appeared in the data dir"
    );
}

#[test]
fn empty_file() {
    train_with_broken("empty", "t10k-labels-idx1-ubyte", &["too short: 0 bytes"]);
}

#[test]
fn header_too_short() {
    train_with_broken(
        "short-header-labels",
        "t10k-labels-idx1-ubyte",
        &["too short: 5 bytes"],
    );
}

#[test]
fn wrong_magic() {
    train_with_broken(
        "image-magic-labels",
        "t10k-labels-idx1-ubyte",
        &["magic number 0x00000803"],
    );
}

#[test]
fn truncated_images() {
    train_with_broken("truncated-images", "t10k-images-idx3-ubyte", &["truncated"]);
}

#[test]
fn trailing_bytes() {
    train_with_broken(
        "trailing-bytes-labels",
        "t10k-labels-idx1-ubyte",
        &["3 trailing bytes"],
    );
}

#[test]
fn image_and_label_counts_differ() {
    train_with_broken(
        "count-255-labels",
        "t10k-labels-idx1-ubyte",
        &["256 images", "255 labels"],
    );
}

#[test]
fn label_out_of_range() {
    train_with_broken(
        "label-10-labels",
        "t10k-labels-idx1-ubyte",
        &["label 10 at index 7"],
    );
}

#[test]
fn images_not_28x28() {
    train_with_broken("images-27x27", "t10k-images-idx3-ubyte", &["27x27"]);
}

#[test]
fn corrupt_gzip() {
    train_with_broken(
        "corrupt.gz",
        "t10k-labels-idx1-ubyte.gz",
        &["not a valid gzip file"],
    );
}

#[test]
fn truncated_gzip() {
    train_with_broken(
        "truncated-labels.gz",
        "t10k-labels-idx1-ubyte.gz",
        &["gzip"],
    );
}

#[test]
fn gzip_longer_than_its_header() {
    train_with_broken(
        "longer-than-header-labels.gz",
        "t10k-labels-idx1-ubyte.gz",
        &["more data than the 256 bytes"],
    );
}

#[test]
fn missing_file_offline() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    fs::remove_file(data.join("train-labels-idx1-ubyte")).unwrap();
    sb.softreg(&["--offline", "--data-dir", data.to_str().unwrap()])
        .fails(1, &["train-labels-idx1-ubyte", "--offline"]);
    assert_eq!(entries(&sb.path("runs")), Vec::<String>::new());
}

#[test]
fn unusable_output_directories() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let data = data.to_str().unwrap();

    // Not creatable: /proc refuses new directories even to root.
    sb.softreg(&[
        "--epochs",
        "1",
        "--data-dir",
        data,
        "--out",
        "/proc/softreg-test/run",
    ])
    .fails(1, &["--out /proc/softreg-test/run"]);

    // A file, and a directory that is not empty (left untouched).
    fs::write(sb.path("file"), b"x").unwrap();
    sb.softreg(&["--epochs", "1", "--data-dir", data, "--out", "file"])
        .fails(1, &["--out file", "not a directory"]);
    fs::create_dir(sb.path("full")).unwrap();
    fs::write(sb.path("full/keep.txt"), b"mine").unwrap();
    sb.softreg(&["--epochs", "1", "--data-dir", data, "--out", "full"])
        .fails(1, &["--out full", "not empty"]);
    assert_eq!(entries(&sb.path("full")), ["keep.txt"]);
}

#[test]
fn broken_model_files() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let data = data.to_str().unwrap();
    for (broken, needle) in [
        ("bad-magic.softreg", "bad magic"),
        ("truncated.softreg", "parameters are 100 bytes"),
    ] {
        let model = fixture(&format!("broken/{broken}"));
        let model = model.to_str().unwrap();
        sb.softreg(&["evaluate", "--model", model, "--data-dir", data])
            .fails(1, &[broken, needle]);
        sb.softreg(&["predict", "--model", model, "x.png"])
            .fails(1, &[broken, needle]);
    }
    sb.softreg(&["evaluate", "--model", "missing.softreg", "--data-dir", data])
        .fails(1, &["missing.softreg"]);
}

#[test]
fn predict_rejects_what_is_not_a_png() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let out = sb.path("run");
    sb.softreg(&[
        "--epochs",
        "1",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    let model = out.join("model.softreg");
    let png = fixture("broken/not-a-png.png");
    sb.softreg(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        png.to_str().unwrap(),
    ])
    .fails(1, &["not-a-png.png", "not a readable PNG"]);
    sb.softreg(&["predict", "--model", model.to_str().unwrap(), "nope.png"])
        .fails(1, &["nope.png"]);
}

#[test]
fn a_diverged_run_is_an_error_not_a_model() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    sb.softreg(&[
        "--epochs",
        "1",
        "--lr",
        "1e38",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        "run",
    ])
    .fails(1, &["diverged", "--lr"]);
    assert!(!sb.path("run").exists());
}
