//! The clean-up registry's `remove_all`, in a test binary of its own: it
//! removes everything the process registered, so beside the library's unit
//! tests (which register the files they write) it would remove theirs too.

use softreg_cli::cleanup::{register, remove_all, Created};
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
    let removed = remove_all(false);
    assert!(removed.contains(&tree) && removed.contains(&parent));
    assert!(!tree.exists() && !parent.exists());
    assert!(done.exists(), "a completed file was removed");
}
