//! The chapter's first exercise: `softreg softmax` on one row of logits,
//! and `softreg train --softmax naive`, with the run that diverges stopped
//! in one line and nothing written.

mod cli_support;

use cli_support::{entries, Sandbox};
use std::fs;

/// The numbers of one line of `softreg softmax`'s table.
fn row(stdout: &str, name: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} row in {stdout}"));
    line.split_whitespace().skip(1).map(str::to_owned).collect()
}

#[test]
fn small_logits_give_the_chapters_rows_both_ways() {
    let sb = Sandbox::new();
    let run = sb.softreg(&["softmax", "1", "2", "3"]);
    run.ok();
    // exp(k) / (e + e^2 + e^3).
    let want = ["0.090031", "0.244728", "0.665241"];
    assert_eq!(row(&run.stdout, "naive"), want, "{}", run.stdout);
    assert_eq!(row(&run.stdout, "stable"), want, "{}", run.stdout);
}

#[test]
fn large_logits_break_only_the_naive_softmax() {
    let sb = Sandbox::new();
    // The exercise's input of 100: exp(100) overflows, inf / inf = NaN.
    let run = sb.softreg(&["softmax", "100", "-100", "0"]);
    run.ok();
    assert_eq!(row(&run.stdout, "naive")[0], "NaN", "{}", run.stdout);
    assert_eq!(row(&run.stdout, "stable")[0], "1.000000", "{}", run.stdout);
    // A maximum below -100: every exp underflows to 0, 0 / 0 = NaN.
    let run = sb.softreg(&["softmax", "--", "-110", "-111", "-112"]);
    run.ok();
    assert_eq!(row(&run.stdout, "naive"), ["NaN"; 3], "{}", run.stdout);
    assert_eq!(
        row(&run.stdout, "stable"),
        ["0.665241", "0.244728", "0.090031"]
    );
    sb.softreg::<&str>(&["softmax"]).fails(2, &["LOGIT"]);
}

fn train(sb: &Sandbox, extra: &[&str]) -> cli_support::Run {
    let data = sb.data_dir();
    let mut args = vec![
        "train",
        "--epochs",
        "2",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    sb.softreg(&args)
}

#[test]
fn naive_training_trains_while_the_logits_are_small() {
    let sb = Sandbox::new();
    let stable = train(&sb, &["--out", "stable", "--json"]);
    stable.ok();
    let naive = train(&sb, &["--out", "naive", "--json", "--softmax", "naive"]);
    naive.ok();
    assert!(naive.stderr.contains("naive softmax"), "{}", naive.stderr);
    let (a, b) = (stable.json(), naive.json());
    assert_eq!(b["softmax"], "naive");
    let acc = |j: &serde_json::Value| j["val_acc"].as_f64().unwrap();
    assert!((acc(&a) - acc(&b)).abs() < 0.02, "{a} vs {b}");
}

/// Where the stable loss stays finite, the naive one overflows in epoch 1;
/// a learning rate of 1e36 diverges either way (1e30 does not: its losses
/// near 1e31 are still finite numbers). Each stops at once, in one
/// line naming the epoch and batch, and leaves no run directory (or the
/// user's empty one empty).
#[test]
fn a_diverging_run_stops_in_one_line_and_writes_nothing() {
    let sb = Sandbox::new();
    train(&sb, &["--lr", "1", "--out", "lr1"]).ok();
    let naive = train(&sb, &["--lr", "1", "--softmax", "naive", "--out", "naive"]);
    naive.fails(1, &["epoch 1", "batch", "--softmax naive"]);
    assert!(!sb.path("naive").exists());

    fs::create_dir(sb.path("mine")).unwrap();
    for softmax in ["stable", "naive"] {
        let run = train(
            &sb,
            &["--lr", "1e36", "--softmax", softmax, "--out", "mine"],
        );
        run.fails(1, &["epoch 1: the loss of batch", "diverged", "--lr 1e36"]);
        let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{}", run.stderr);
        assert!(entries(&sb.path("mine")).is_empty(), "{softmax}");
    }
}

/// A row is printed on one line, so it is limited to 64 logits: 64 are
/// taken (the 64 equal logits of a uniform row), 65 refused in one line.
#[test]
fn a_row_has_at_most_64_logits() {
    let sb = Sandbox::new();
    let run = sb.softreg(&[["softmax"].as_slice(), &["0"; 64]].concat());
    run.ok();
    assert_eq!(
        row(&run.stdout, "stable"),
        ["0.015625"; 64],
        "{}",
        run.stdout
    );
    sb.softreg(&[["softmax"].as_slice(), &["0"; 65]].concat())
        .fails(1, &["at most 64 logits, got 65"]);
}

/// Probabilities read in fixed point down to 0.001; below that, where the
/// digits would be lost, in scientific notation; an exact 0 (an `exp` that
/// underflowed) stays `0.000000`.
#[test]
fn tiny_probabilities_are_printed_in_scientific_notation() {
    let sb = Sandbox::new();
    // exp(-20) / (1 + exp(-20)) = 2.061e-9; exp(-7) / (1 + exp(-7)) =
    // 0.000911; exp(-200) is 0 in f32.
    let run = sb.softreg(&["softmax", "--", "0", "-20", "-200"]);
    run.ok();
    let want = ["1.000000", "2.061e-9", "0.000000"];
    assert_eq!(row(&run.stdout, "naive"), want, "{}", run.stdout);
    assert_eq!(row(&run.stdout, "stable"), want, "{}", run.stdout);
    let run = sb.softreg(&["softmax", "--", "0", "-7"]);
    run.ok();
    assert_eq!(row(&run.stdout, "stable"), ["0.999089", "9.111e-4"]);
    let run = sb.softreg(&["softmax", "--", "0", "-6.9"]);
    run.ok();
    assert_eq!(row(&run.stdout, "stable"), ["0.998993", "0.001007"]);
}
