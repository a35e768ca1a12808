//! Shared helpers of the CLI tests: a sandbox directory per test holding a
//! small valid dataset, and a way to run the `softreg` binary inside it with
//! a clean environment (no network, no real cache, no real data directory).

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The four valid small IDX files under `fixtures/`, and the names the
/// dataset gives them.
pub const TINY: [(&str, &str); 4] = [
    ("train-2048-images-idx3-ubyte", "train-images-idx3-ubyte"),
    ("train-2048-labels-idx1-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-256-images-idx3-ubyte", "t10k-images-idx3-ubyte"),
    ("t10k-256-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"),
];

/// A file under `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A temporary directory to run `softreg` in, removed when dropped.
pub struct Sandbox {
    pub root: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            root: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// `data/` with the small valid dataset, raw: 2,048 training and 256
    /// validation images.
    pub fn data_dir(&self) -> PathBuf {
        let dir = self.path("data");
        std::fs::create_dir_all(&dir).unwrap();
        for (from, to) in TINY {
            std::fs::copy(fixture(from), dir.join(to)).unwrap();
        }
        dir
    }

    /// The same dataset as `.gz` files only, in `rel`.
    pub fn gz_data_dir(&self, rel: &str) -> PathBuf {
        use std::io::Write;
        let dir = self.path(rel);
        std::fs::create_dir_all(&dir).unwrap();
        for (from, to) in TINY {
            let raw = std::fs::read(fixture(from)).unwrap();
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&raw).unwrap();
            std::fs::write(dir.join(format!("{to}.gz")), enc.finish().unwrap()).unwrap();
        }
        dir
    }

    /// `softreg ARGS` run in the sandbox with a clean environment.
    pub fn softreg<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        let output = self.command(args).output().expect("run softreg");
        Run::from(output)
    }

    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        // $SOFTREG_TEST_BIN runs the tests against another build, e.g. one
        // without a fix, to check that its test fails there.
        let bin = std::env::var_os("SOFTREG_TEST_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_softreg").into());
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .current_dir(self.root.path())
            .env_remove("SOFTREG_DATA_DIR")
            .env_remove("SOFTREG_MIRROR")
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("HOME", self.path("home"));
        cmd
    }
}

/// What a run of the binary did.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn ok(&self) -> &Run {
        assert_eq!(self.code, Some(0), "softreg failed:\n{}", self.stderr);
        self
    }

    /// Failed with `code`, a one-line error naming every `needle`, no panic.
    pub fn fails(&self, code: i32, needles: &[&str]) -> &Run {
        assert_eq!(self.code, Some(code), "stderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        let last = self.stderr.trim_end().lines().last().unwrap_or("");
        if code == 1 {
            assert!(last.starts_with("softreg: error: "), "{}", self.stderr);
        }
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "expected {needle:?} in stderr:\n{}",
                self.stderr
            );
        }
        self
    }

    /// The JSON object on the last line of stdout.
    pub fn json(&self) -> serde_json::Value {
        let last = self.stdout.trim_end().lines().last().unwrap_or("");
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last:?}"))
    }
}

/// Names of the entries of `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
