//! `softreg sweep` (the chapter's exercise 5) on the fixture dataset.

mod cli_support;

use cli_support::{entries, Sandbox};
use std::fs;

fn sweep(sb: &Sandbox, out: &str, seed: &str) -> cli_support::Run {
    let data = sb.data_dir();
    let run = sb.softreg(&[
        "sweep",
        "--epochs",
        "1",
        "--lr",
        "0.03,0.3,1e36",
        "--batch-size",
        "64,256",
        "--seed",
        seed,
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out,
    ]);
    run.ok();
    run
}

#[test]
fn one_point_per_combination_the_same_for_a_seed() {
    let sb = Sandbox::new();
    let run = sweep(&sb, "a", "4");
    assert_eq!(entries(&sb.path("a")), ["sweep.csv", "sweep.svg"]);

    let csv = fs::read_to_string(sb.path("a/sweep.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let combos: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        combos,
        [
            ("0.03", "64"),
            ("0.3", "64"),
            ("1e36", "64"),
            ("0.03", "256"),
            ("0.3", "256"),
            ("1e36", "256")
        ],
        "{csv}"
    );
    // The diverging rate is recorded, and the sweep went on past it.
    for row in &rows {
        let diverged = row[0] == "1e36";
        assert_eq!(row[5], diverged.to_string(), "{csv}");
        assert_eq!(row[4] == "NaN", diverged, "{csv}");
    }
    // The table: a line per run.
    assert_eq!(run.stdout.matches("diverged").count(), 2, "{}", run.stdout);
    // The picture: a point per run that did not diverge, on each panel.
    let svg = fs::read_to_string(sb.path("a/sweep.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), 2 * 4, "{svg}");
    assert!(svg.contains("batch 64") && svg.contains("batch 256"));

    // Same seed, same files; another seed, other numbers.
    sweep(&sb, "b", "4");
    for file in ["sweep.csv", "sweep.svg"] {
        assert_eq!(
            fs::read(sb.path("a").join(file)).unwrap(),
            fs::read(sb.path("b").join(file)).unwrap(),
            "{file}"
        );
    }
    sweep(&sb, "c", "5");
    assert_ne!(fs::read_to_string(sb.path("c/sweep.csv")).unwrap(), csv);
}

#[test]
fn bad_lists_are_refused_before_any_work() {
    let sb = Sandbox::new();
    sb.softreg(&["sweep", "--lr", "0.1,-1", "--out", "x"])
        .fails(2, &["-1"]);
    sb.softreg(&["sweep", "--batch-size", "64,0", "--out", "x"])
        .fails(2, &["0"]);
    assert!(!sb.path("x").exists());
}

/// On a terminal the sweep shows a bar over all its runs, naming the one
/// under way. `script` (util-linux) gives the run a pseudo-terminal.
#[cfg(target_os = "linux")]
#[test]
fn a_terminal_sees_the_runs_counted() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let bin = std::env::var("SOFTREG_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_softreg").to_owned());
    let command = format!(
        "{bin} sweep --epochs 1 --lr 0.03,0.3,1 --batch-size 64,256 --data-dir {} --out x",
        data.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(sb.root.path())
        .env_remove("SOFTREG_DATA_DIR")
        .env("HOME", sb.path("home"))
        // A terminal that can redraw a line: with TERM unset or "dumb" (an
        // editor's shell, some CI runners) the bar is not drawn at all.
        .env("TERM", "xterm")
        .output();
    let out = match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: no `script` (util-linux) to give softreg a terminal");
            return;
        }
        out => out.expect("script runs"),
    };
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{screen}");
    assert!(
        screen.contains("0/6 runs (lr 0.03, batch size 64)"),
        "{screen}"
    );
    assert!(
        !screen.contains("/5 runs") && !screen.contains("/1 runs"),
        "{screen}"
    );
}
