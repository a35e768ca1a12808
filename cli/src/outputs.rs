//! The run directory and the plain files in it (`metrics.csv`,
//! `model.softreg`). Every file is written to a temporary name and renamed,
//! and a run that fails takes its directory with it: a run directory either
//! holds a finished run or does not exist.

use anyhow::{bail, Context, Result};
use softreg::fashion_mnist::CLASSES;
use softreg::SoftmaxRegression;
use softreg_cli::atomic_file::write_atomically;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The model this application trains: `IN` inputs, ten classes.
pub type Model<const IN: usize> = SoftmaxRegression<IN, CLASSES>;

/// What one epoch of a run measured: a row of `metrics.csv`, a point of
/// `curves.svg`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Mean training loss over the epoch, each batch's loss taken before its
    /// update (as the chapter's progress board plots it).
    pub train_loss: f64,
    /// Mean loss over the whole validation set after the epoch.
    pub val_loss: f64,
    /// Validation accuracy after the epoch: correct / total.
    pub val_acc: f64,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
}

/// Name of the model file in a run directory.
pub const MODEL_FILE: &str = "model.softreg";

/// A run directory being filled. Dropped before [`RunDir::keep`], it removes
/// what it made.
pub struct RunDir {
    path: PathBuf,
    /// We made the directory (so we may delete it whole).
    created: bool,
    /// Files written so far (removed one by one when we did not create the
    /// directory: an empty `--out` directory the user made stays).
    written: Vec<PathBuf>,
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
        let created = match fs::read_dir(path) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    bail!("--out {shown}: directory is not empty; give a new or empty one");
                }
                false
            }
            Err(_) if path.exists() => bail!("--out {shown}: exists and is not a directory"),
            Err(_) => {
                fs::create_dir_all(path)
                    .with_context(|| format!("--out {shown}: cannot create the directory"))?;
                true
            }
        };
        let run = RunDir {
            path: path.to_path_buf(),
            created,
            written: Vec::new(),
            keep: false,
        };
        // An existing directory may still refuse files (permissions, a
        // read-only mount): find out now, not after ten epochs.
        let probe = run.path.join(".softreg-probe");
        fs::write(&probe, b"")
            .with_context(|| format!("--out {shown}: cannot write into the directory"))?;
        let _ = fs::remove_file(&probe);
        Ok(run)
    }

    fn fresh(parent: &Path) -> Result<RunDir> {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let stamp = utc_timestamp(SystemTime::now());
        for n in 1.. {
            let name = if n == 1 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
            let path = parent.join(name);
            // `create_dir` (not `_all`) fails if the directory exists, so two
            // runs started in the same second still get separate directories.
            match fs::create_dir(&path) {
                Ok(()) => {
                    return Ok(RunDir {
                        path,
                        created: true,
                        written: Vec::new(),
                        keep: false,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()))
                }
            }
        }
        unreachable!("1.. never ends")
    }

    /// Writes `name` in the run directory atomically.
    pub fn write(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        let path = self.path.join(name);
        write_atomically(&path, write)?;
        self.written.push(path);
        Ok(())
    }

    /// The run finished: keep the directory and return its path.
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Best effort: we are already on an error path.
        if self.created {
            let _ = fs::remove_dir_all(&self.path);
        } else {
            for file in &self.written {
                let _ = fs::remove_file(file);
            }
        }
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

/// `metrics.csv`: a header, then one row per epoch.
pub fn write_metrics(out: &mut dyn Write, history: &[EpochMetrics]) -> Result<()> {
    writeln!(out, "epoch,train_loss,val_loss,val_acc,seconds")?;
    for m in history {
        writeln!(
            out,
            "{},{:.6},{:.6},{:.4},{:.3}",
            m.epoch, m.train_loss, m.val_loss, m.val_acc, m.seconds
        )?;
    }
    Ok(())
}

/// The model file: the core's 32-byte header, then the parameters.
pub fn write_model<const IN: usize>(
    out: &mut dyn Write,
    model: &Model<IN>,
    side: u32,
) -> Result<()> {
    model.write_file(side, |chunk| out.write_all(chunk))?;
    Ok(())
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
        fs::write(out.join("f"), b"").unwrap();
        assert!(RunDir::create(Some(&out)).is_err());
    }

    #[test]
    fn fresh_run_dirs_are_never_reused() {
        let root = tempfile::tempdir().unwrap();
        let a = RunDir::fresh(root.path()).unwrap().keep();
        let b = RunDir::fresh(root.path()).unwrap().keep();
        assert_ne!(a, b);
    }
}
