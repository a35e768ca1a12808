//! The run directory's pictures of the model, `weights.png` and
//! `confusion.png`, and `softreg evaluate --confusion`, on the fixture
//! dataset. What each picture shows is tested where it is drawn
//! (`cli/src/templates.rs`, `cli/src/confusion.rs`); here, that the commands
//! write them, and that train's and evaluate's agree.

mod cli_support;

use cli_support::Sandbox;
use std::fs;
use std::path::Path;

fn png_size(path: &Path) -> (u32, u32) {
    let reader = png::Decoder::new(std::io::BufReader::new(fs::File::open(path).unwrap()))
        .read_info()
        .unwrap();
    let info = reader.info();
    (info.width, info.height)
}

/// The confusion matrix `evaluate` prints: ten rows of ten counts.
fn printed_confusion(stdout: &str) -> Vec<Vec<u32>> {
    let table = stdout
        .split("confusion matrix (rows: true class, columns: predicted class)\n")
        .nth(1)
        .expect("a confusion matrix");
    table
        .lines()
        .skip(1)
        .take(10)
        .map(|line| {
            line.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .collect()
}

#[test]
fn train_draws_the_templates_and_evaluate_the_same_confusion_matrix() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let data = data.to_str().unwrap();
    for (side, out) in [("32", "run32"), ("28", "run28")] {
        sb.softreg(&[
            "train",
            "--epochs",
            "2",
            "--resize",
            side,
            "--data-dir",
            data,
            "--out",
            out,
        ])
        .ok();
        // Five tiles of side x 4 pixels (and their margins) across.
        let (width, _) = png_size(&sb.path(out).join("weights.png"));
        let side: u32 = side.parse().unwrap();
        assert_eq!(width, 5 * (side * 4 + 16), "{out}");
    }

    let model = sb.path("run32/model.softreg");
    let run = sb.softreg(&[
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--data-dir",
        data,
        "--confusion",
        "eval.png",
    ]);
    run.ok();
    assert!(run
        .stdout
        .contains("wrote the confusion matrix to eval.png"));
    let counts = printed_confusion(&run.stdout);
    assert_eq!(counts.len(), 10);
    assert!(counts.iter().all(|row| row.len() == 10), "{counts:?}");
    assert_eq!(counts.iter().flatten().sum::<u32>(), 256);
    // The model's last validation in training and evaluate's of the saved
    // model give the same counts, so the same picture, to the byte.
    assert_eq!(
        fs::read(sb.path("eval.png")).unwrap(),
        fs::read(sb.path("run32/confusion.png")).unwrap()
    );

    // A second time, the picture is there already: refused, left alone.
    fs::write(sb.path("mine.png"), b"not yours").unwrap();
    sb.softreg(&[
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--data-dir",
        data,
        "--confusion",
        "mine.png",
    ])
    .fails(1, &["--confusion mine.png", "already exists"]);
    assert_eq!(fs::read(sb.path("mine.png")).unwrap(), b"not yours");
}
