//! `softreg lab`: what it serves, what it refuses, and how it fails. (The
//! page itself is tested in a browser: `lab/e2e/`.)

mod cli_support;

use cli_support::{fixture, Sandbox};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Stdio};

/// A running `softreg lab`, killed when dropped.
struct Lab {
    child: Child,
    port: u16,
    stderr: ChildStderr,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Lab {
    /// Starts it on a free port with `args`, and reads the port from the
    /// line it prints.
    fn start(sandbox: &Sandbox, args: &[&str]) -> Lab {
        let mut all = vec!["lab", "--port", "0"];
        all.extend(args);
        let mut child = sandbox
            .command(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        let stderr = child.stderr.take().unwrap();
        Lab {
            child,
            port,
            stderr,
        }
    }

    /// Stops it, and returns what it wrote to stderr.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut stderr = String::new();
        self.stderr.read_to_string(&mut stderr).unwrap();
        stderr
    }

    /// The status code, headers and body of a raw HTTP/1.0 request.
    fn request(&self, method: &str, path: &str, host: Option<&str>) -> (u16, String, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let host = host.map_or(format!("127.0.0.1:{}", self.port), str::to_owned);
        write!(stream, "{method} {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head, response[split + 4..].to_vec())
    }

    fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        self.request("GET", path, None)
    }
}

/// `softreg lab ARGS`, which must refuse to start. A lab that starts
/// instead is stopped at its first line (the address it serves), so that
/// the test fails rather than waits on a server for ever.
fn refused(sandbox: &Sandbox, args: &[&str]) -> cli_support::Run {
    let mut all = vec!["lab", "--port", "0"];
    all.extend(args);
    let mut child = sandbox
        .command(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if !line.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("softreg lab {args:?} started: {line}");
    }
    child.wait_with_output().unwrap().into()
}

#[test]
fn serves_the_page_and_the_data_and_nothing_else() {
    let sandbox = Sandbox::new();
    // The fixtures directory as it is: cut-down sets, raw.
    let fixtures = fixture("").canonicalize().unwrap();
    let lab = Lab::start(
        &sandbox,
        &["--offline", "--data-dir", fixtures.to_str().unwrap()],
    );

    let (status, head, body) = lab.get("/");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("text/html"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("<script type=\"module\" src=\"lab.js\">"));
    for (path, kind) in [
        ("/lab.js", "text/javascript"),
        ("/worker.js", "text/javascript"),
        ("/softreg_lab.wasm", "application/wasm"),
    ] {
        let (status, head, body) = lab.get(path);
        assert_eq!(status, 200, "{path}: {head}");
        assert!(head.contains(kind), "{path}: {head}");
        assert!(!body.is_empty());
    }
    let (_, _, wasm) = lab.get("/softreg_lab.wasm");
    assert_eq!(&wasm[..4], b"\0asm");
    let (status, _, body) = lab.get("/data/train-images-idx3-ubyte");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        std::fs::read(fixture("train-2048-images-idx3-ubyte")).unwrap()
    );
    let (status, _, body) = lab.get("/data/t10k-labels-idx1-ubyte?x=1");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        std::fs::read(fixture("t10k-256-labels-idx1-ubyte")).unwrap()
    );

    for path in [
        "/../Cargo.toml",
        "/data/../../Cargo.toml",
        "/data/README.md",
        "/data/",
        "/%2e%2e/Cargo.toml",
        "//etc/passwd",
        "/www/index.html",
    ] {
        let (status, head, _) = lab.get(path);
        assert_eq!(status, 404, "{path}: {head}");
    }
    assert_eq!(lab.request("POST", "/", None).0, 405);
    assert_eq!(lab.request("GET", "/", Some("evil.example:80")).0, 403);
    assert_eq!(
        lab.request("GET", "/", Some(&format!("localhost:{}", lab.port)))
            .0,
        200
    );
    // On the loopback address, no warning about being reachable from
    // other machines.
    let stderr = lab.stop();
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn gz_files_are_served_as_they_are_and_first() {
    let sandbox = Sandbox::new();
    let dir = sandbox.gz_data_dir("gz");
    // With the raw file beside it (as `softreg train` leaves a writable
    // data directory), the `.gz` is still the one sent: half the bytes.
    std::fs::copy(
        fixture("train-2048-labels-idx1-ubyte"),
        dir.join("train-labels-idx1-ubyte"),
    )
    .unwrap();
    let lab = Lab::start(
        &sandbox,
        &["--offline", "--data-dir", dir.to_str().unwrap()],
    );
    let (status, _, body) = lab.get("/data/train-labels-idx1-ubyte");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        std::fs::read(dir.join("train-labels-idx1-ubyte.gz")).unwrap()
    );
}

#[test]
fn missing_data_offline_is_a_one_line_error() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("empty")).unwrap();
    refused(&sandbox, &["--offline", "--data-dir", "empty"])
        .fails(1, &["empty/train-images-idx3-ubyte", "--offline"]);
}

#[test]
fn two_candidate_files_are_refused_by_name() {
    let sandbox = Sandbox::new();
    let dir = sandbox.data_dir();
    std::fs::copy(
        fixture("train-2048-images-idx3-ubyte"),
        dir.join("t10k-1-images-idx3-ubyte"),
    )
    .unwrap();
    std::fs::copy(
        fixture("train-2048-images-idx3-ubyte"),
        dir.join("t10k-2-images-idx3-ubyte"),
    )
    .unwrap();
    std::fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
    refused(&sandbox, &["--offline", "--data-dir", "data"])
        .fails(1, &["could be t10k-images-idx3-ubyte", "t10k-1-images"]);
}

/// A cut-down file is recognised by its count (`train-2048-images-...`),
/// digits only: a user's `train-notes-images-...` beside it is no second
/// candidate.
#[test]
fn a_cut_down_file_is_named_with_a_count() {
    let sandbox = Sandbox::new();
    let dir = sandbox.data_dir();
    std::fs::rename(
        dir.join("train-images-idx3-ubyte"),
        dir.join("train-2048-images-idx3-ubyte"),
    )
    .unwrap();
    for odd in ["train-notes-images-idx3-ubyte", "train--images-idx3-ubyte"] {
        std::fs::write(dir.join(odd), "not images").unwrap();
    }
    let lab = Lab::start(
        &sandbox,
        &["--offline", "--data-dir", dir.to_str().unwrap()],
    );
    let (status, _, body) = lab.get("/data/train-images-idx3-ubyte");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        std::fs::read(dir.join("train-2048-images-idx3-ubyte")).unwrap()
    );
}

/// A data file that is a directory, or a link that cannot be followed, is
/// an error naming it, not passed over for another file or a download.
#[test]
fn a_data_file_that_cannot_be_read_is_named() {
    let sandbox = Sandbox::new();
    let dir = sandbox.data_dir();
    let lab = |what: &[&str]| {
        refused(&sandbox, &["--offline", "--data-dir", "data"]).fails(1, what);
    };
    let gz = dir.join("train-images-idx3-ubyte.gz");
    std::fs::create_dir(&gz).unwrap();
    lab(&["data/train-images-idx3-ubyte.gz: not a regular file"]);
    std::fs::remove_dir(&gz).unwrap();

    std::os::unix::fs::symlink("train-images-idx3-ubyte.gz", &gz).unwrap();
    lab(&["cannot read data/train-images-idx3-ubyte.gz"]);
    std::fs::remove_file(&gz).unwrap();

    std::fs::remove_file(dir.join("train-images-idx3-ubyte")).unwrap();
    std::fs::create_dir(dir.join("train-2048-images-idx3-ubyte")).unwrap();
    lab(&["data/train-2048-images-idx3-ubyte: not a regular file"]);
}

#[test]
fn a_port_in_use_is_a_one_line_error() {
    let sandbox = Sandbox::new();
    sandbox.data_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    sandbox
        .softreg(&["lab", "--port", &port, "--offline", "--data-dir", "data"])
        .fails(1, &["cannot listen on 127.0.0.1:", "--port"]);
}

#[test]
fn a_client_that_stops_reading_does_not_hold_up_the_others() {
    let sandbox = Sandbox::new();
    let dir = sandbox.data_dir();
    // 256 MiB of zeros (sparse: nothing is written), far more than the
    // sockets buffer; the server serves files as they are.
    let big = std::fs::File::create(dir.join("train-images-idx3-ubyte")).unwrap();
    big.set_len(256 << 20).unwrap();
    let lab = Lab::start(&sandbox, &["--offline", "--data-dir", "data"]);
    let mut stalled = TcpStream::connect(("127.0.0.1", lab.port)).unwrap();
    write!(
        stalled,
        "GET /data/train-images-idx3-ubyte HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
        lab.port
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // A hang here is the failure: the read times out instead.
    let mut other = TcpStream::connect(("127.0.0.1", lab.port)).unwrap();
    other
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    write!(
        other,
        "GET /lab.js HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
        lab.port
    )
    .unwrap();
    let mut response = Vec::new();
    other
        .read_to_end(&mut response)
        .expect("an answer while another client stalls");
    assert!(response.starts_with(b"HTTP/1.0 200") || response.starts_with(b"HTTP/1.1 200"));
    drop(stalled);
}
