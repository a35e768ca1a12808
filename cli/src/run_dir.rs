//! A run directory owned by exactly one run, from its creation until the
//! run keeps it or removes what it made.
//!
//! Two runs given the same `--out` used to both start, and the directory
//! ended up with one run's model and the other's curves, or was deleted by
//! the one that failed after the other had reported success. Now:
//!
//! - the directory is created with `create_dir`, which fails if it exists,
//!   so of two runs creating it only one does;
//! - either way the run then takes an exclusive lock on a marker file in it,
//!   [`MARKER`], and a run that cannot take it stops at once ("another
//!   softreg run is writing into it"); the lock ends with the process,
//!   however it ends;
//! - the marker lists the files the run has completed, so that a run killed
//!   without a chance to clean up (SIGKILL, a power cut) is recognised by
//!   the next one, which takes the lock, removes those files and the
//!   temporary ones, and uses the directory;
//! - a run that fails removes only what it made: the directory if it
//!   created it (and `runs/` if it created that and it is empty), else its
//!   own files, never another run's;
//! - a finished run removes the marker, leaving the outputs alone.

use crate::atomic_file::{is_temporary_name, remove_if_stale, write_atomically};
use crate::cleanup::{self, create_parents, remove_empty, Created, Registration};
use crate::regular_file::describe;
use anyhow::{bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The marker file a run holds locked in its directory until it finishes.
pub const MARKER: &str = ".softreg-run";

/// A run directory being filled. Dropped before [`RunDir::keep`], it removes
/// what it made.
pub struct RunDir {
    path: PathBuf,
    /// We made the directory (so we may delete it whole).
    created: bool,
    /// Directories made to hold it (`runs/`), removed if left empty.
    parents: Vec<PathBuf>,
    /// The marker, locked for as long as this value lives.
    marker: File,
    /// Files written so far (removed one by one when we did not create the
    /// directory: an empty `--out` directory the user made stays).
    written: Vec<PathBuf>,
    /// What an interrupt removes.
    registrations: Vec<Registration>,
    keep: bool,
}

impl RunDir {
    /// Claims the run directory: `out` if given (it must not exist, or be an
    /// empty directory), else a fresh `runs/<UTC timestamp>`, never reusing
    /// one. Runs before any data is read, so a bad `--out` fails fast.
    pub fn create(out: Option<&Path>) -> Result<RunDir> {
        match out {
            Some(path) => Self::claim(path),
            None => Self::fresh(Path::new("runs")),
        }
    }

    fn claim(path: &Path) -> Result<RunDir> {
        let shown = path.display();
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        let (parents, parent_registrations) = match parent {
            Some(parent) => create_parents(parent)
                .with_context(|| format!("--out {shown}: cannot create its parent directory"))?,
            None => (Vec::new(), Vec::new()),
        };
        let mut registrations = parent_registrations;
        let registration = cleanup::register(Created::Tree(path.to_path_buf()));
        let created = match fs::create_dir(path) {
            Ok(()) => {
                registrations.push(registration);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                drop(registration);
                match fs::metadata(path) {
                    Ok(meta) if meta.is_dir() => false,
                    Ok(_) => bail!("--out {shown}: exists and is not a directory"),
                    Err(e) => bail!("--out {shown}: cannot use it: {}", describe(&e)),
                }
            }
            Err(e) => {
                drop(registration);
                remove_empty(&parents);
                bail!(
                    "--out {shown}: cannot create the directory: {}",
                    describe(&e)
                )
            }
        };
        match Self::lock(path, created, parents.clone(), registrations) {
            Ok(run) => Ok(run),
            Err(e) => {
                // Only what we made, and only if nobody else took it.
                remove_empty(&parents);
                Err(e)
            }
        }
    }

    /// Takes the marker's lock, then makes sure the directory holds nothing
    /// but what a killed run left (removed here).
    fn lock(
        path: &Path,
        created: bool,
        parents: Vec<PathBuf>,
        mut registrations: Vec<Registration>,
    ) -> Result<RunDir> {
        let shown = path.display();
        let marker_path = path.join(MARKER);
        let marker_existed = marker_path.exists();
        if !created {
            registrations.push(cleanup::register(Created::File(marker_path.clone())));
        }
        let mut marker = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&marker_path)
            .with_context(|| format!("--out {shown}: cannot write into the directory"))?;
        match marker.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                // Not ours: leave the directory and its marker to their owner.
                drop(registrations);
                bail!(
                    "--out {shown}: another softreg run is writing into this directory; \
                     give another --out or wait for it to finish"
                )
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("--out {shown}: cannot lock {MARKER}"))
            }
        }
        let run = RunDir {
            path: path.to_path_buf(),
            created,
            parents,
            marker: marker
                .try_clone()
                .context("cannot duplicate a file handle")?,
            written: Vec::new(),
            registrations,
            keep: false,
        };
        if marker_existed {
            // A run that was killed left this directory: remove the files
            // it had finished, as it would have.
            let mut listed = String::new();
            let _ = marker.read_to_string(&mut listed);
            for name in listed.lines() {
                if !name.is_empty() && !name.contains(['/', '\\']) && name != MARKER {
                    let _ = fs::remove_file(path.join(name));
                }
            }
            marker
                .set_len(0)
                .with_context(|| format!("--out {shown}: cannot write {MARKER}"))?;
        }
        let entries = fs::read_dir(path)
            .with_context(|| format!("--out {shown}: cannot read the directory"))?;
        for entry in entries {
            let entry =
                entry.with_context(|| format!("--out {shown}: cannot read the directory"))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == MARKER {
                continue;
            }
            if is_temporary_name(&name) {
                remove_if_stale(&entry.path());
                if !entry.path().exists() {
                    continue;
                }
            }
            bail!(
                "--out {shown}: directory is not empty (it holds {name}); give a new or empty one"
            );
        }
        Ok(run)
    }

    fn fresh(parent: &Path) -> Result<RunDir> {
        Self::fresh_named(parent, &utc_timestamp(SystemTime::now()))
    }

    /// `parent/stamp`, or `stamp-2`, `stamp-3`... if taken.
    fn fresh_named(parent: &Path, stamp: &str) -> Result<RunDir> {
        let (parents, parent_registrations) = create_parents(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        for n in 1.. {
            let name = if n == 1 {
                stamp.to_owned()
            } else {
                format!("{stamp}-{n}")
            };
            let path = parent.join(name);
            let registration = cleanup::register(Created::Tree(path.clone()));
            // `create_dir` (not `_all`) fails if the directory exists, so two
            // runs started in the same second still get separate directories.
            match fs::create_dir(&path) {
                Ok(()) => {
                    let mut registrations = parent_registrations;
                    registrations.push(registration);
                    return Self::lock(&path, true, parents, registrations);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    drop(registration);
                    remove_empty(&parents);
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
        unreachable!("1.. never ends")
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` in the run directory atomically.
    pub fn write(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        let path = self.path.join(name);
        if !self.created {
            self.registrations
                .push(cleanup::register(Created::File(path.clone())));
        }
        write_atomically(&path, write)?;
        self.written.push(path);
        // For the next run, should this one be killed before it finishes.
        writeln!(self.marker, "{name}")
            .and_then(|()| self.marker.flush())
            .with_context(|| format!("cannot write {}", self.path.join(MARKER).display()))?;
        Ok(())
    }

    /// The run finished: keep the directory and return its path.
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        let marker = self.path.join(MARKER);
        let registrations = std::mem::take(&mut self.registrations);
        // Unregistered together with the marker's removal: an interrupt
        // from here on leaves the finished run alone.
        cleanup::complete_all(registrations, || {
            let _ = fs::remove_file(&marker);
        });
        self.path.clone()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Best effort: we are already on an error path. We still hold the
        // lock, so no other run is inside.
        if self.created {
            let _ = fs::remove_dir_all(&self.path);
        } else {
            for file in &self.written {
                let _ = fs::remove_file(file);
            }
            let _ = fs::remove_file(self.path.join(MARKER));
        }
        remove_empty(&self.parents);
    }
}

/// `YYYYMMDD-HHMMSS` in UTC: sorts by time, and is a valid file name on
/// every system.
pub fn utc_timestamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`), to avoid a date crate for one file name.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_dates() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_834_242);
        assert_eq!(utc_timestamp(t), "20261128-025042");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "19700101-000000");
        // 2000-02-29 (a leap day of a century year).
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(leap), "20000229-000000");
    }

    #[test]
    fn a_failed_run_leaves_no_directory() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("run");
        {
            let mut run = RunDir::create(Some(&out)).unwrap();
            run.write("a.txt", |w| Ok(w.write_all(b"x")?)).unwrap();
        }
        assert!(!out.exists());

        // A directory the user made stays, but empty again.
        fs::create_dir(&out).unwrap();
        {
            let mut run = RunDir::create(Some(&out)).unwrap();
            run.write("a.txt", |w| Ok(w.write_all(b"x")?)).unwrap();
        }
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);

        let run = RunDir::create(Some(&out)).unwrap();
        let kept = run.keep();
        assert!(kept.exists());
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0, "the marker stayed");
        fs::write(out.join("f"), b"").unwrap();
        assert!(RunDir::create(Some(&out)).is_err());
    }

    #[test]
    fn a_held_directory_is_refused_and_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("run");
        let mut first = RunDir::create(Some(&out)).unwrap();
        first.write("a.txt", |w| Ok(w.write_all(b"x")?)).unwrap();
        let err = RunDir::create(Some(&out)).err().unwrap();
        assert!(err.to_string().contains("another softreg run"), "{err}");
        assert!(out.join("a.txt").exists(), "the refused run removed a file");
        first.keep();
        assert!(out.join("a.txt").exists());
    }

    #[test]
    fn what_a_killed_run_left_is_removed_by_the_next() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("run");
        fs::create_dir(&out).unwrap();
        // As a SIGKILLed run leaves it: an unlocked marker listing a file,
        // the file, and a temporary file.
        fs::write(out.join(MARKER), "metrics.csv\n").unwrap();
        fs::write(out.join("metrics.csv"), b"epoch").unwrap();
        fs::write(out.join(".model.softreg.tmp-4242"), b"half").unwrap();
        let run = RunDir::create(Some(&out)).unwrap();
        run.keep();
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
    }

    #[test]
    fn fresh_run_dirs_are_never_reused_and_their_parent_goes_if_empty() {
        let root = tempfile::tempdir().unwrap();
        let a = RunDir::fresh(root.path()).unwrap().keep();
        let b = RunDir::fresh(root.path()).unwrap().keep();
        assert_ne!(a, b);
        let runs = root.path().join("runs");
        drop(RunDir::fresh(&runs).unwrap());
        assert!(!runs.exists(), "an empty runs/ was left behind");
    }

    #[test]
    fn a_taken_stamp_gets_the_next_free_number() {
        let root = tempfile::tempdir().unwrap();
        let first = RunDir::fresh_named(root.path(), "20261204-013000").unwrap();
        assert_eq!(first.path(), root.path().join("20261204-013000"));
        first.keep();
        fs::create_dir(root.path().join("20261204-013000-2")).unwrap();
        let third = RunDir::fresh_named(root.path(), "20261204-013000").unwrap();
        assert_eq!(third.path(), root.path().join("20261204-013000-3"));
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_an_error_not_a_retry() {
        let root = tempfile::tempdir().unwrap();
        let long = "n".repeat(300); // longer than any file system's NAME_MAX
        let err = RunDir::fresh_named(root.path(), &long).err().unwrap();
        assert!(err.to_string().starts_with("cannot create "), "{err}");
        let err = RunDir::create(Some(&root.path().join(&long)))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains(": cannot create the directory: "),
            "{err}"
        );
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_out_that_is_a_file_is_refused_and_kept() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("notes.txt");
        fs::write(&file, b"mine").unwrap();
        let err = RunDir::create(Some(&file)).err().unwrap();
        assert!(
            err.to_string().ends_with(": exists and is not a directory"),
            "{err}"
        );
        assert_eq!(fs::read(&file).unwrap(), b"mine");
    }

    #[test]
    fn missing_parents_are_made_and_removed_with_a_failed_run() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("a/b/run");
        let run = RunDir::create(Some(&out)).unwrap();
        assert!(out.is_dir());
        drop(run);
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_killed_runs_list_removes_nothing_outside_its_directory() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("run");
        fs::create_dir_all(out.join("sub")).unwrap();
        fs::write(root.path().join("victim"), b"mine").unwrap();
        fs::write(out.join("sub/x"), b"mine").unwrap();
        fs::write(out.join(MARKER), "../victim\nsub/x\n\n.softreg-run\n").unwrap();
        let err = RunDir::create(Some(&out)).err().unwrap();
        assert!(err.to_string().contains("(it holds sub)"), "{err}");
        assert!(root.path().join("victim").exists());
        assert!(out.join("sub/x").exists());
    }

    #[test]
    fn dates_agree_with_counting_days_one_by_one() {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days_in = |y: i64, m: u32| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        // 1970 to 2970: three century years that are not leap (2100, 2200,
        // 2300), two that are (2400, 2800), and the end of a 400-year era.
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for z in 0..365_243 {
            assert_eq!(civil_from_days(z), (y, m, d), "day {z}");
            d += 1;
            if d > days_in(y, m) {
                (m, d) = (m + 1, 1);
                if m > 12 {
                    (y, m) = (y + 1, 1);
                }
            }
        }
    }
}
