//! The clean-up registry's `remove_all`, in a test binary of its own: it
//! removes everything the process registered, so beside the library's unit
//! tests (which register the files they write) it would remove theirs too.

use softreg_cli::cleanup::{complete_all, register, remove_all, Created};
use std::fs;

#[test]
fn registered_things_are_removed_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let parent = dir.path().join("parent");
    let _p = register(Created::EmptyDir(parent.clone()));
    fs::create_dir(&parent).unwrap();
    let _t = register(Created::Tree(tree.clone()));
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("f"), b"x").unwrap();
    let done = dir.path().join("done");
    let r = register(Created::File(done.clone()));
    r.complete(|| fs::write(&done, b"whole").unwrap());
    // Two completed together, one of them beside a registration left open.
    let (both_a, both_b) = (dir.path().join("both-a"), dir.path().join("both-b"));
    let pair = vec![
        register(Created::File(both_a.clone())),
        register(Created::File(both_b.clone())),
    ];
    let unfinished = dir.path().join("unfinished");
    let _u = register(Created::File(unfinished.clone()));
    fs::write(&unfinished, b"half").unwrap();
    complete_all(pair, || {
        fs::write(&both_a, b"whole").unwrap();
        fs::write(&both_b, b"whole").unwrap();
    });
    let removed = remove_all(false);
    assert!(removed.contains(&tree) && removed.contains(&parent));
    assert!(removed.contains(&unfinished), "{removed:?}");
    assert!(!tree.exists() && !parent.exists() && !unfinished.exists());
    assert!(done.exists(), "a completed file was removed");
    assert!(
        both_a.exists() && both_b.exists(),
        "a file completed with complete_all was removed"
    );
}
