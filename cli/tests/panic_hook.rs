//! The panic hook of `signals::install`, in a test binary of its own: it
//! acts on every panic of the process, so the test runs it in a child, a
//! second copy of this binary, and reads what the child printed.

use softreg_cli::cleanup::{register, Created};
use std::process::Command;

/// Set in the child to the path of its half-written file.
const CHILD: &str = "SOFTREG_PANIC_HOOK_CHILD";
const TEST: &str = "a_panic_removes_what_the_run_had_not_finished_and_says_so";

#[test]
fn a_panic_removes_what_the_run_had_not_finished_and_says_so() {
    if let Some(path) = std::env::var_os(CHILD) {
        // The child: a run with a file half-written, then a bug.
        softreg_cli::signals::install().unwrap();
        let _half = register(Created::File(path.clone().into()));
        std::fs::write(&path, b"half").unwrap();
        panic!("a bug in the run");
    }
    let dir = tempfile::tempdir().unwrap();
    let half = dir.path().join(".model.softreg.tmp-1");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, &half)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // The usual message first, then what was removed.
    let bug = stderr.find("a bug in the run").expect("the panic message");
    let removed = format!("softreg: removed {}", half.display());
    let line = stderr.find(&removed).unwrap_or_else(|| panic!("{stderr}"));
    assert!(bug < line, "{stderr}");
    assert!(!half.exists());
}
