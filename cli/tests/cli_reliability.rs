//! The environment around the data: closed and full output streams,
//! concurrent runs, signals, special files, truncated data, downloads that
//! stall, and the messages that say what went wrong. Each test runs the real
//! `softreg` binary; each wait on it is bounded (a run that hangs is killed
//! and the test fails), and none measures time. `docs/reliability.md` lists
//! which test shows which case.

#![cfg(unix)]

mod cli_support;

use cli_support::{entries, Run, Sandbox};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest any child may take before it counts as hung.
const HANG: Duration = Duration::from_secs(120);

/// A running `softreg` whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Running {
    fn start(sb: &Sandbox, args: &[&str]) -> Running {
        let mut child = sb
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn softreg");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let (tx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        Running {
            child,
            lines,
            stderr,
        }
    }

    /// Waits for a stdout line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + HANG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim_start().starts_with(prefix) => return line,
                Ok(_) => {}
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no line starting with {prefix:?}; stderr: {}",
                        self.stderr()
                    );
                }
            }
        }
    }

    /// Waits for `n` more epoch rows.
    fn wait_epochs(&mut self, n: usize) {
        for _ in 0..n {
            let deadline = Instant::now() + HANG;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                    let _ = self.child.kill();
                    panic!("training stopped printing epochs")
                });
                if line
                    .split_whitespace()
                    .next()
                    .is_some_and(|w| w.parse::<u32>().is_ok())
                {
                    break;
                }
            }
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: `kill` only sends a signal to our own child, by its id.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the exit (bounded), and returns the status and stderr.
    fn finish(mut self) -> (ExitStatus, String) {
        let status = wait_bounded(&mut self.child);
        // Keep draining stdout so the child never blocks on a full pipe.
        while self.lines.try_recv().is_ok() {}
        let stderr = self.stderr();
        (status, stderr)
    }

    fn stderr(&self) -> String {
        self.stderr.recv_timeout(HANG).unwrap_or_default()
    }
}

fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + HANG;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("softreg hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `softreg train` on the small dataset for as long as it is let run.
fn long_train(sb: &Sandbox, data: &Path, out: &str) -> Running {
    Running::start(
        sb,
        &[
            "train",
            "--epochs",
            "100000",
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            out,
        ],
    )
}

fn one_epoch<'a>(data: &'a Path, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--epochs",
        "1",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out,
    ]
}

fn output_of(sb: &Sandbox, args: &[&str], stdout: Stdio, stderr: Stdio) -> Run {
    let mut child = sb
        .command(args)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    let status = wait_bounded(&mut child);
    Run {
        code: status.code(),
        stdout: String::new(),
        stderr: err,
    }
}

/// `softreg ARGS` killed (and the test failed) if it does not end in time.
fn bounded(sb: &Sandbox, args: &[&str]) -> Run {
    let running = Running::start(sb, args);
    let (status, stderr) = running.finish();
    Run {
        code: status.code(),
        stdout: String::new(),
        stderr,
    }
}

fn dev_full() -> Stdio {
    Stdio::from(
        fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    )
}

// ---- 3. closed and full output streams ----

#[test]
fn a_closed_stdout_ends_nothing_and_panics_nowhere() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let mut args = one_epoch(&data, "run");
    args[2] = "3"; // epochs: lines keep coming after the pipe is closed
    let mut child = sb
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -1`: read one line, then close the pipe.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    drop(stdout);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = wait_bounded(&mut child);
    assert!(first.starts_with("training:"), "{first}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        sb.path("run/model.softreg").exists(),
        "the run was thrown away"
    );
}

#[test]
fn a_full_stdout_is_a_one_line_error() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    output_of(&sb, &one_epoch(&data, "run"), dev_full(), Stdio::piped())
        .fails(1, &["cannot write to standard output", "No space left"]);
    assert!(!sb.path("run").exists(), "a failed run kept its directory");
    assert_eq!(entries(sb.root.path()), ["data"], "debris in the sandbox");
}

#[test]
fn a_full_stderr_neither_panics_nor_spoils_the_run() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let run = output_of(&sb, &one_epoch(&data, "run"), Stdio::null(), dev_full());
    assert_eq!(run.code, Some(0));
    assert!(sb.path("run/model.softreg").exists());
    // evaluate and predict print through the same code.
    let model = sb.path("run/model.softreg");
    let args = [
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    output_of(&sb, &args, dev_full(), Stdio::piped())
        .fails(1, &["cannot write to standard output"]);
}

// ---- 1. one run per run directory ----

#[test]
fn a_second_run_into_a_held_directory_is_refused_and_removes_nothing() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let mut first = long_train(&sb, &data, "run");
    first.wait_for("epoch");
    // The second run diverges if it trains at all; it must not get that far,
    // and its failure must not touch the first run's directory.
    let mut args = one_epoch(&data, "run");
    args.extend(["--lr", "3e38"]);
    sb.softreg(&args)
        .fails(1, &["--out run", "another softreg run"]);
    assert!(
        sb.path("run").is_dir(),
        "the refused run removed the directory"
    );
    first.signal(libc::SIGTERM);
    let (status, _) = first.finish();
    assert_eq!(status.code(), Some(143));
}

#[test]
fn of_two_runs_started_together_exactly_one_gets_the_directory() {
    for _ in 0..4 {
        let sb = Sandbox::new();
        let data = sb.data_dir();
        let args = one_epoch(&data, "run");
        let spawn = || {
            sb.command(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (mut a, mut b) = (spawn(), spawn());
        let (sa, sb_) = (wait_bounded(&mut a), wait_bounded(&mut b));
        let mut err = String::new();
        for child in [&mut a, &mut b] {
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
        }
        let wins = [sa, sb_].iter().filter(|s| s.success()).count();
        assert_eq!(wins, 1, "{err}");
        assert!(
            err.contains("another softreg run") || err.contains("not empty"),
            "{err}"
        );
        let mut files = entries(&sb.path("run"));
        files.sort();
        assert_eq!(
            files,
            [
                "confusion.png",
                "curves.svg",
                "metrics.csv",
                "misclassified.png",
                "model.softreg",
                "weights.png"
            ]
        );
    }
}

// ---- 2. signals ----

#[test]
fn sigint_during_training_removes_the_run_and_exits_130() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let mut run = Running::start(
        &sb,
        &[
            "train",
            "--epochs",
            "100000",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    run.wait_epochs(1);
    run.signal(libc::SIGINT);
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or("");
    assert!(last.contains("interrupted by SIGINT"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Neither the run directory nor the runs/ made for it stays.
    assert_eq!(entries(sb.root.path()), ["data"]);
}

#[test]
fn sigterm_into_a_users_directory_leaves_it_as_it_was() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    fs::create_dir(sb.path("mine")).unwrap();
    let mut run = long_train(&sb, &data, "mine");
    run.wait_epochs(1);
    run.signal(libc::SIGTERM);
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(sb.path("mine").is_dir());
    assert_eq!(entries(&sb.path("mine")), Vec::<String>::new());
}

#[test]
fn a_run_killed_outright_does_not_block_the_next() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let mut run = long_train(&sb, &data, "run");
    run.wait_epochs(1);
    run.signal(libc::SIGKILL);
    let (status, _) = run.finish();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(sb.path("run").exists(), "SIGKILL runs no clean-up");
    // As a kill in the write phase leaves it: a finished file and a
    // temporary one, both listed or named as that run's.
    fs::write(sb.path("run/metrics.csv"), "epoch\n").unwrap();
    let marker = sb.path("run/.softreg-run");
    fs::write(&marker, "metrics.csv\n").unwrap();
    fs::write(sb.path("run/.model.softreg.tmp-99999"), b"half").unwrap();
    sb.softreg(&one_epoch(&data, "run")).ok();
    assert_eq!(
        entries(&sb.path("run")),
        [
            "confusion.png",
            "curves.svg",
            "metrics.csv",
            "misclassified.png",
            "model.softreg",
            "weights.png"
        ]
    );
}

#[test]
fn sigterm_during_a_download_removes_the_part_file() {
    // A server that sends 1000 of the 5,148 bytes, then nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5148\r\n\r\n");
        let _ = stream.write_all(&[7u8; 1000]);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        let _ = stream.read(&mut [0u8; 1]);
    });
    let sb = Sandbox::new();
    let data = sb.data_dir();
    fs::remove_file(data.join("t10k-labels-idx1-ubyte")).unwrap();
    let before = entries(&data);
    let run = Running::start(
        &sb,
        &[
            "download",
            "--data-dir",
            data.to_str().unwrap(),
            "--mirror",
            &url,
        ],
    );
    let part = data.join(".t10k-labels-idx1-ubyte.gz.part");
    let deadline = Instant::now() + HANG;
    while fs::metadata(&part).map_or(true, |m| m.len() < 1000) {
        assert!(Instant::now() < deadline, "the download never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.signal(libc::SIGTERM);
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains(".part"), "{stderr}");
    assert_eq!(entries(&data), before, "the .part file stayed");
}

// ---- 5. special files ----

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn fifos_are_refused_not_waited_on() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    // A raw data file.
    let labels = data.join("t10k-labels-idx1-ubyte");
    fs::remove_file(&labels).unwrap();
    mkfifo(&labels);
    bounded(&sb, &one_epoch(&data, "run")).fails(1, &["t10k-labels-idx1-ubyte", "FIFO"]);
    // A .gz data file.
    fs::remove_file(&labels).unwrap();
    mkfifo(&data.join("t10k-labels-idx1-ubyte.gz"));
    bounded(&sb, &one_epoch(&data, "run")).fails(1, &["t10k-labels-idx1-ubyte.gz", "FIFO"]);
    assert!(!sb.path("run").exists());
    // A model, and a PNG.
    let fifo = sb.path("model.softreg");
    mkfifo(&fifo);
    bounded(
        &sb,
        &["predict", "--model", fifo.to_str().unwrap(), "x.png"],
    )
    .fails(1, &["model.softreg", "FIFO"]);
    let good = sb.path("good");
    fs::remove_file(data.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    fs::copy(cli_support::fixture("t10k-256-labels-idx1-ubyte"), &labels).unwrap();
    sb.softreg(&one_epoch(&data, "good")).ok();
    let png = sb.path("shoe.png");
    mkfifo(&png);
    let model = good.join("model.softreg");
    bounded(
        &sb,
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            png.to_str().unwrap(),
        ],
    )
    .fails(1, &["shoe.png", "FIFO"]);
}

#[test]
fn a_device_as_model_is_refused_before_any_read() {
    let sb = Sandbox::new();
    bounded(&sb, &["predict", "--model", "/dev/zero", "x.png"])
        .fails(1, &["/dev/zero", "character device"]);
}

#[test]
fn a_model_file_longer_than_its_header_says_is_refused() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    sb.softreg(&one_epoch(&data, "run")).ok();
    let model = sb.path("run/model.softreg");
    let mut bytes = fs::read(&model).unwrap();
    bytes.extend([0u8; 4096]);
    let long = sb.path("long.softreg");
    fs::write(&long, bytes).unwrap();
    sb.softreg(&["predict", "--model", long.to_str().unwrap(), "x.png"])
        .fails(1, &["long.softreg", "the header promises 41000"]);
}

// ---- 6. messages ----

#[test]
fn a_symlink_loop_is_called_one() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let labels = data.join("t10k-labels-idx1-ubyte");
    fs::remove_file(&labels).unwrap();
    std::os::unix::fs::symlink(data.join("loop-b"), &labels).unwrap();
    std::os::unix::fs::symlink(&labels, data.join("loop-b")).unwrap();
    sb.softreg(&one_epoch(&data, "run"))
        .fails(1, &["t10k-labels-idx1-ubyte", "symlink loop"]);
}

#[test]
fn capped_flags_say_what_is_used() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let mut args = one_epoch(&data, "run");
    args.extend(["--batch-size", "1000000", "--threads", "1024"]);
    let run = sb.softreg(&args);
    run.ok();
    let first = run.stdout.lines().next().unwrap_or("");
    assert!(
        first.contains("batch size 2048 (--batch-size 1000000"),
        "{first}"
    );
    assert!(first.contains("(--threads 1024:"), "{first}");
}

#[test]
fn a_model_whose_weights_overflow_is_an_error_not_nan() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    sb.softreg(&one_epoch(&data, "run")).ok();
    // Every weight 1e37, finite, but a hundred of them sum past f32::MAX.
    let mut bytes = fs::read(sb.path("run/model.softreg")).unwrap();
    for w in bytes[32..].chunks_exact_mut(4) {
        w.copy_from_slice(&1e37f32.to_le_bytes());
    }
    let huge = sb.path("huge.softreg");
    fs::write(&huge, bytes).unwrap();
    // A bright image, so that every input is large.
    let png = sb.path("white.png");
    {
        let file = fs::File::create(&png).unwrap();
        let mut enc = png::Encoder::new(file, 28, 28);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut img = vec![0u8; 28 * 28];
        for (i, p) in img.iter_mut().enumerate() {
            *p = if (i / 28) % 27 == 0 || i % 28 % 27 == 0 {
                255
            } else {
                0
            };
        }
        enc.write_header().unwrap().write_image_data(&img).unwrap();
    }
    sb.softreg(&[
        "predict",
        "--model",
        huge.to_str().unwrap(),
        png.to_str().unwrap(),
    ])
    .fails(1, &["huge.softreg", "overflow"]);
    sb.softreg(&[
        "evaluate",
        "--model",
        huge.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .fails(1, &["huge.softreg", "overflow"]);
}

#[test]
fn the_mirror_flag_is_documented() {
    let sb = Sandbox::new();
    let run = sb.softreg(&["download", "--help"]);
    run.ok();
    assert!(run.stdout.contains("--mirror"), "{}", run.stdout);
}

// ---- 7. integrity of what is on disk ----

#[test]
fn no_data_and_no_network_says_what_to_do_and_leaves_no_folders() {
    let sb = Sandbox::new();
    sb.softreg(&["train", "--epochs", "1", "--mirror", "http://127.0.0.1:9"])
        .fails(
            1,
            &[
                "SOFTREG_DATA_DIR",
                "--data-dir",
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
            ],
        );
    assert_eq!(
        entries(sb.root.path()),
        Vec::<String>::new(),
        "folders left"
    );
    sb.softreg(&["download", "--offline"])
        .fails(1, &["SOFTREG_DATA_DIR", "t10k-labels-idx1-ubyte.gz"]);
    assert_eq!(entries(sb.root.path()), Vec::<String>::new());
}

/// The real `t10k-labels-idx1-ubyte.gz` (5,148 bytes) from the shared data,
/// the only published file small enough to serve in a test.
fn real_labels_gz() -> Option<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fashion-mnist/t10k-labels-idx1-ubyte.gz");
    fs::read(path).ok()
}

#[test]
fn download_replaces_a_damaged_gz_that_is_already_there() {
    let Some(real) = real_labels_gz() else {
        eprintln!("skipped: ../shared/fashion-mnist/t10k-labels-idx1-ubyte.gz is absent");
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = real.clone();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            served.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&served);
    });
    let sb = Sandbox::new();
    let data = sb.data_dir();
    fs::remove_file(data.join("t10k-labels-idx1-ubyte")).unwrap();
    let gz = data.join("t10k-labels-idx1-ubyte.gz");
    let mut damaged = real.clone();
    damaged[2000] ^= 0xff;
    fs::write(&gz, &damaged).unwrap();
    let run = sb.softreg(&[
        "download",
        "--data-dir",
        data.to_str().unwrap(),
        "--mirror",
        &url,
    ]);
    run.ok();
    assert!(run.stderr.contains("is damaged"), "{}", run.stderr);
    server.join().unwrap();
    assert_eq!(fs::read(&gz).unwrap(), real, "the damaged file was kept");
    // Offline, a damaged file is an error, not "complete".
    fs::write(&gz, &damaged).unwrap();
    sb.softreg(&[
        "download",
        "--offline",
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .fails(1, &["t10k-labels-idx1-ubyte.gz", "damaged"]);
}

// ---- 8. a dataset file truncated while training runs ----

#[test]
fn a_dataset_truncated_during_training_cannot_kill_the_run() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let mut run = long_train(&sb, &data, "run");
    run.wait_epochs(1);
    // What another program rewriting the file would do.
    fs::OpenOptions::new()
        .write(true)
        .open(data.join("train-images-idx3-ubyte"))
        .unwrap()
        .set_len(0)
        .unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(data.join("t10k-images-idx3-ubyte"))
        .unwrap()
        .set_len(0)
        .unwrap();
    // Training and validation read both files every epoch.
    run.wait_epochs(3);
    run.signal(libc::SIGINT);
    let (status, stderr) = run.finish();
    assert_eq!(status.signal(), None, "killed by signal: {stderr}");
    assert_eq!(status.code(), Some(130), "{stderr}");
}
