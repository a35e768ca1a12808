//! What an interrupt removes from a run directory, in a test binary of its
//! own: `remove_all` removes everything the process registered, so beside
//! other tests it would remove their files too.

use softreg_cli::cleanup::remove_all;
use softreg_cli::run_dir::{RunDir, MARKER};
use std::fs;

#[test]
fn an_interrupt_removes_the_runs_files_and_only_what_it_made() {
    let root = tempfile::tempdir().unwrap();
    // A directory the user made: the run's files and marker go, it stays.
    let mine = root.path().join("mine");
    fs::create_dir(&mine).unwrap();
    let mut into_mine = RunDir::create(Some(&mine)).unwrap();
    into_mine
        .write("metrics.csv", |w| Ok(w.write_all(b"epoch")?))
        .unwrap();
    // A directory the run made, and its parent: both go.
    let made = root.path().join("runs/one");
    let mut into_made = RunDir::create(Some(&made)).unwrap();
    into_made
        .write("metrics.csv", |w| Ok(w.write_all(b"epoch")?))
        .unwrap();

    let removed = remove_all(false);
    assert!(removed.contains(&mine.join("metrics.csv")), "{removed:?}");
    assert!(removed.contains(&mine.join(MARKER)), "{removed:?}");
    assert!(mine.is_dir());
    assert_eq!(fs::read_dir(&mine).unwrap().count(), 0);
    assert!(!root.path().join("runs").exists(), "{removed:?}");
    // The process would exit here; the values must not remove anything more.
    std::mem::forget(into_mine);
    std::mem::forget(into_made);
}
