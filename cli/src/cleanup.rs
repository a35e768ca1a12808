//! What this run has created and must remove if it does not finish: the
//! list that an interrupt ([`crate::signals`]) or a panic empties.
//!
//! Every file or directory that is not yet complete is registered *before*
//! it is created, and unregistered once it is complete (a temporary file
//! renamed into place, a run directory kept). Errors are handled by the
//! owners themselves (their `Drop`); this list is for the moments when no
//! `Drop` runs: a signal ends the process, or a panic hook runs first.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// One thing this run made.
#[derive(Clone, Debug)]
pub enum Created {
    /// A file (a temporary file, or an output in a directory we did not make).
    File(PathBuf),
    /// A directory we made, removed with everything in it.
    Tree(PathBuf),
    /// A directory we made for others to fill (`runs/`, the data
    /// directory), removed only if it is still empty.
    EmptyDir(PathBuf),
}

impl Created {
    fn path(&self) -> &Path {
        match self {
            Created::File(p) | Created::Tree(p) | Created::EmptyDir(p) => p,
        }
    }

    /// Removes it; true if something was there and is gone now.
    fn remove(&self) -> bool {
        match self {
            Created::File(p) => fs::remove_file(p).is_ok(),
            Created::Tree(p) => fs::remove_dir_all(p).is_ok(),
            Created::EmptyDir(p) => fs::remove_dir(p).is_ok(),
        }
    }
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    entries: Vec<(u64, Created)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next_id: 0,
    entries: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    // A panic elsewhere must not stop the clean-up.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A registered [`Created`]; dropping it unregisters it (the thing is
/// complete, or its owner has removed it already).
#[must_use = "dropping the registration unregisters at once"]
pub struct Registration {
    id: u64,
}

/// Registers `created`, to be removed if the run is interrupted. Call it
/// before creating the thing: a signal that comes in between then removes
/// nothing that is not there, rather than leaving something behind.
pub fn register(created: Created) -> Registration {
    let mut reg = registry();
    let id = reg.next_id;
    reg.next_id += 1;
    reg.entries.push((id, created));
    Registration { id }
}

impl Registration {
    /// Runs `complete` (the rename that makes a file whole, say) and
    /// unregisters, as one step no interrupt can fall between.
    pub fn complete<T>(self, complete: impl FnOnce() -> T) -> T {
        let mut reg = registry();
        let result = complete();
        reg.entries.retain(|(id, _)| *id != self.id);
        drop(reg);
        std::mem::forget(self);
        result
    }
}

/// [`Registration::complete`] for several registrations at once.
pub fn complete_all<T>(registrations: Vec<Registration>, complete: impl FnOnce() -> T) -> T {
    let mut reg = registry();
    let result = complete();
    for registration in registrations {
        reg.entries.retain(|(id, _)| *id != registration.id);
        std::mem::forget(registration);
    }
    result
}

impl Drop for Registration {
    fn drop(&mut self) {
        registry().entries.retain(|(id, _)| *id != self.id);
    }
}

/// Removes everything registered, the newest first (the files in a
/// directory before the directory), and returns what was removed.
///
/// With `hold_forever`, for a process about to exit on a signal, the list
/// stays locked afterwards, so that no other thread can register (and so
/// create) anything more before the process ends.
pub fn remove_all(hold_forever: bool) -> Vec<PathBuf> {
    let mut reg = registry();
    let mut removed = Vec::new();
    for (_, created) in reg.entries.drain(..).rev() {
        if created.remove() {
            removed.push(created.path().to_path_buf());
        }
    }
    if hold_forever {
        std::mem::forget(reg);
    }
    removed
}

/// Creates `dir` and its missing ancestors; returns the ones it made, the
/// deepest first, each registered to be removed (if empty) on an interrupt.
pub fn create_parents(dir: &Path) -> io::Result<(Vec<PathBuf>, Vec<Registration>)> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at.filter(|d| !d.as_os_str().is_empty()) {
        match fs::symlink_metadata(d) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(d.to_path_buf()),
            Err(e) => return Err(e),
        }
        at = d.parent();
    }
    let mut made = Vec::new();
    let mut registrations = Vec::new();
    for d in missing.iter().rev() {
        registrations.push(register(Created::EmptyDir(d.clone())));
        match fs::create_dir(d) {
            Ok(()) => made.insert(0, d.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                remove_empty(&made);
                return Err(e);
            }
        }
    }
    Ok((made, registrations))
}

/// Removes the directories of `dirs` (deepest first) that are empty.
pub fn remove_empty(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory that cannot be made is an error, not a success with the
    /// directory missing (`/sys` refuses new entries, even to root).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_directory_that_cannot_be_made_is_an_error() {
        if !Path::new("/sys").is_dir() {
            return;
        }
        let err = create_parents(Path::new("/sys/softreg-test/run"))
            .err()
            .expect("made a directory in /sys");
        assert_ne!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert!(!Path::new("/sys/softreg-test").exists());
    }

    /// What exists is left alone; what is missing is made and reported, the
    /// deepest first.
    #[test]
    fn missing_parents_are_made_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        let (made, _registrations) = create_parents(&deep).unwrap();
        assert_eq!(made, [deep.clone(), dir.path().join("a")]);
        assert!(deep.is_dir());
        let (made, _registrations) = create_parents(&deep).unwrap();
        assert!(made.is_empty());
    }

    /// Two runs making the same directories at once both succeed: the one
    /// that finds a directory made since it looked takes it as made.
    #[test]
    fn racing_to_make_the_same_directories_is_not_an_error() {
        let threads = 8;
        for round in 0..50 {
            let dir = tempfile::tempdir().unwrap();
            let deep = dir.path().join("a/b/c/d");
            let start = std::sync::Barrier::new(threads);
            let made: usize = std::thread::scope(|scope| {
                let racers: Vec<_> = (0..threads)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            create_parents(&deep).map(|(made, _)| made.len())
                        })
                    })
                    .collect();
                racers
                    .into_iter()
                    .map(|r| {
                        r.join()
                            .unwrap()
                            .unwrap_or_else(|e| panic!("round {round}: {e}"))
                    })
                    .sum()
            });
            // Each of the four made once, by one racer or another.
            assert_eq!(made, 4, "round {round}");
            assert!(deep.is_dir());
        }
    }
}
