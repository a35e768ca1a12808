//! Files that appear complete or not at all: every file the command line
//! writes (downloads, decompressed copies, the run directory's files) goes
//! through [`write_atomically`].

use crate::cleanup::{self, Created};
use anyhow::{anyhow, Context, Result};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Creates `path` by writing a temporary file beside it and renaming it into
/// place, so that nobody ever sees a half-written `path`; on failure, and on
/// an interrupt ([`crate::signals`]), the temporary file is removed.
///
/// The temporary file, `.NAME.tmp-PID`, is locked while it is written, so
/// that one left by a killed run (SIGKILL, a power cut) is told from one
/// being written by a live run: those left behind are removed here. A write
/// error names the file (a full disk says which file it could not write).
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    remove_stale_temporaries(path);
    let temp = temporary_name(path);
    let registration = cleanup::register(Created::File(temp.clone()));
    let result = (|| {
        let file =
            File::create(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
        // Released when the file is closed, by the process's end at the latest.
        file.lock()
            .with_context(|| format!("cannot lock {}", temp.display()))?;
        let mut out = io::BufWriter::new(NamedWriter {
            inner: file,
            path: path.to_path_buf(),
        });
        write(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| anyhow!("{}", e.error()))?
            .inner;
        file.sync_all()
            .with_context(|| format!("cannot write {}", path.display()))?;
        registration.complete(|| {
            fs::rename(&temp, path)
                .with_context(|| format!("cannot rename {} to {}", temp.display(), path.display()))
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// `.NAME.tmp-PID` beside `path`.
fn temporary_name(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Whether `name` is a temporary file of [`write_atomically`] (for any
/// target name).
pub fn is_temporary_name(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the temporary files of `path` that no live process holds: those
/// of runs that were killed before they could clean up. Best effort.
pub fn remove_stale_temporaries(path: &Path) {
    let dir = directory_of(path);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with(&prefix) && is_temporary_name(&file_name) {
            remove_if_stale(&entry.path());
        }
    }
}

/// The directory `path` is in: `.` for a bare file name, whose parent is
/// the empty path (which `read_dir` refuses).
pub(crate) fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Removes the temporary file `temp` if no process holds its lock.
pub fn remove_if_stale(temp: &Path) {
    let Ok(file) = crate::regular_file::open(temp) else {
        return;
    };
    if file.try_lock().is_ok() {
        let _ = fs::remove_file(temp);
    }
}

/// A writer whose errors name the file being written (its final name):
/// "cannot write run/model.softreg: No space left on device".
struct NamedWriter {
    inner: File,
    path: PathBuf,
}

impl NamedWriter {
    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", self.path.display()),
        )
    }
}

impl Write for NamedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.named(e))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.named(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::bail;

    #[test]
    fn atomic_writes_leave_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let err = write_atomically(&path, |out| {
            out.write_all(b"half")?;
            bail!("interrupted")
        });
        assert!(err.is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomically(&path, |out| Ok(out.write_all(b"whole")?)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole");
    }

    #[test]
    fn stale_temporaries_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        // Left by a killed run: nobody holds it.
        let stale = dir.path().join(".out.tmp-999999");
        fs::write(&stale, b"half").unwrap();
        // Being written by a live run: locked.
        let live = dir.path().join(".out.tmp-999998");
        let held = File::create(&live).unwrap();
        held.lock().unwrap();
        write_atomically(&path, |out| Ok(out.write_all(b"whole")?)).unwrap();
        assert!(!stale.exists(), "a stale temporary file was kept");
        assert!(live.exists(), "a live run's temporary file was removed");
    }

    /// Only `.NAME.tmp-DIGITS` is a temporary file: anything else, however
    /// alike, may be the user's.
    #[test]
    fn temporary_names_are_exactly_dot_name_tmp_pid() {
        assert!(is_temporary_name(".out.tmp-12"));
        assert!(is_temporary_name(".model.softreg.tmp-4242"));
        for name in [
            "out.tmp-12",
            ".out.tmp-",
            ".out.tmp-12a",
            ".out.tmp-x",
            ".out",
        ] {
            assert!(!is_temporary_name(name), "{name}");
        }
    }

    /// The clean-up looks only at `path`'s own temporaries: not at another
    /// output's (that run may still want it), nor at a user's file that
    /// merely starts like one.
    #[test]
    fn only_the_outputs_own_stale_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".out.tmp-999999");
        let another_outputs = dir.path().join(".other.tmp-999999");
        let users = dir.path().join(".out.tmp-notes");
        for file in [&stale, &another_outputs, &users] {
            fs::write(file, b"x").unwrap();
        }
        remove_stale_temporaries(&dir.path().join("out"));
        assert!(!stale.exists(), "its stale temporary was kept");
        assert!(
            another_outputs.exists(),
            "another output's temporary was removed"
        );
        assert!(users.exists(), "a file of the user's was removed");
    }

    #[test]
    fn a_bare_file_name_is_in_the_current_directory() {
        assert_eq!(directory_of(Path::new("model.softreg")), Path::new("."));
        assert_eq!(
            directory_of(Path::new("run/model.softreg")),
            Path::new("run")
        );
        assert_eq!(directory_of(Path::new("/model.softreg")), Path::new("/"));
    }

    #[test]
    fn write_errors_name_the_file() {
        let path = Path::new("/dev/full");
        if !path.exists() {
            return;
        }
        let mut w = NamedWriter {
            inner: fs::OpenOptions::new().write(true).open(path).unwrap(),
            path: PathBuf::from("run/model.softreg"),
        };
        let e = w.write_all(&[0u8; 1 << 16]).unwrap_err();
        assert!(
            e.to_string().contains("cannot write run/model.softreg"),
            "{e}"
        );
    }
}
