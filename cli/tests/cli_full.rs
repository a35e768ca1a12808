//! Runs on the full Fashion-MNIST: need `SOFTREG_DATA_DIR` (e.g.
//! `../shared/fashion-mnist`), so they are ignored by default:
//!
//! ```text
//! SOFTREG_DATA_DIR=../shared/fashion-mnist cargo test --release --test cli_full -- --ignored
//! ```

mod cli_support;

use cli_support::Sandbox;

fn data_dir() -> String {
    std::env::var("SOFTREG_DATA_DIR")
        .expect("set SOFTREG_DATA_DIR to the directory of the four Fashion-MNIST files")
}

#[test]
#[ignore = "needs the full dataset in SOFTREG_DATA_DIR"]
fn the_default_run_reaches_the_chapters_accuracy() {
    let sb = Sandbox::new();
    let data = data_dir();
    let run = sb.softreg(&["--json", "--offline", "--data-dir", &data, "--out", "run"]);
    run.ok();
    let json = run.json();
    let acc = json["val_acc"].as_f64().unwrap();
    assert!(acc >= 0.80, "val_acc {acc} < 0.80: {json}");
    assert!(run.stderr.contains("predictions: shape (256,)"));
    for file in [
        "metrics.csv",
        "curves.svg",
        "misclassified.png",
        "weights.png",
        "confusion.png",
        "model.softreg",
    ] {
        assert!(sb.path("run").join(file).exists(), "{file} missing");
    }
    let model = sb.path("run/model.softreg");
    let eval = sb.softreg(&[
        "evaluate",
        "--offline",
        "--data-dir",
        &data,
        "--model",
        model.to_str().unwrap(),
    ]);
    eval.ok();
    assert!(
        eval.stdout.contains(&format!("accuracy: {acc:.4}")),
        "{}",
        eval.stdout
    );
}
