//! The downloader against a small HTTP server on 127.0.0.1: a file with the
//! wrong checksum and a connection that drops mid-file both fail cleanly and
//! leave nothing behind. (The happy path, which needs the real files' bytes,
//! is a unit test of `download.rs` with its own checksums.)

mod cli_support;

use cli_support::{entries, Sandbox};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

/// Size of `t10k-labels-idx1-ubyte.gz`, the file the tests make softreg fetch.
const LABELS_GZ_SIZE: usize = 5_148;

/// Answers `connections` requests with `Content-Length: declared` and `body`,
/// then stops. Returns the base URL and the thread, which yields the request
/// paths it saw.
fn serve(connections: usize, declared: usize, body: Vec<u8>) -> (String, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut paths = Vec::new();
        for _ in 0..connections {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            paths.push(line.split(' ').nth(1).unwrap_or("").to_owned());
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
            // Dropping the stream closes the connection, mid-file if the
            // body is shorter than declared.
        }
        paths
    });
    (url, handle)
}

/// The small dataset without its validation labels, which `train` then has
/// to download from `url`.
fn train_fetching_labels(url: &str) -> (Sandbox, cli_support::Run) {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    std::fs::remove_file(data.join("t10k-labels-idx1-ubyte")).unwrap();
    let run = sb.softreg(&[
        "train",
        "--epochs",
        "1",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        "run",
        "--mirror",
        url,
    ]);
    (sb, run)
}

#[test]
fn a_wrong_checksum_is_refused_and_removed() {
    let (url, server) = serve(1, LABELS_GZ_SIZE, vec![7u8; LABELS_GZ_SIZE]);
    let (sb, run) = train_fetching_labels(&url);
    run.fails(1, &["t10k-labels-idx1-ubyte.gz", "SHA-256 mismatch"]);
    assert_eq!(server.join().unwrap(), ["/t10k-labels-idx1-ubyte.gz"]);
    assert_eq!(entries(&sb.path("data")).len(), 3, "the bad file was kept");
    assert!(!sb.path("run").exists());
}

#[test]
fn a_dropped_connection_leaves_nothing() {
    let (url, server) = serve(1, LABELS_GZ_SIZE, vec![7u8; 1000]);
    let (sb, run) = train_fetching_labels(&url);
    run.fails(1, &["t10k-labels-idx1-ubyte.gz"]);
    server.join().unwrap();
    assert_eq!(
        entries(&sb.path("data")).len(),
        3,
        "a partial file was kept"
    );
    assert!(!sb.path("run").exists());
}

#[test]
fn the_mirror_can_come_from_the_environment() {
    let (url, server) = serve(1, LABELS_GZ_SIZE, vec![7u8; LABELS_GZ_SIZE]);
    let sb = Sandbox::new();
    let data = sb.data_dir();
    std::fs::remove_file(data.join("t10k-labels-idx1-ubyte")).unwrap();
    let out = sb
        .command(&["download", "--data-dir", data.to_str().unwrap()])
        .env("SOFTREG_MIRROR", &url)
        .output()
        .unwrap();
    let run = cli_support::Run::from(out);
    run.fails(1, &["SHA-256 mismatch"]);
    server.join().unwrap();
}

#[test]
fn download_skips_what_is_there_and_offline_never_fetches() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    // Every file present: nothing to fetch, so no server is needed.
    sb.softreg(&[
        "download",
        "--data-dir",
        data.to_str().unwrap(),
        "--mirror",
        "http://127.0.0.1:9",
    ])
    .ok();
    let empty = sb.path("empty");
    sb.softreg(&[
        "download",
        "--offline",
        "--data-dir",
        empty.to_str().unwrap(),
    ])
    .fails(1, &["--offline", "train-images-idx3-ubyte.gz"]);
}

#[test]
fn download_names_cut_down_and_damaged_files() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let dir = data.to_str().unwrap();
    // The fixtures are cut-down raw files: each is named and left alone.
    let run = sb.softreg(&[
        "download",
        "--data-dir",
        dir,
        "--mirror",
        "http://127.0.0.1:9",
    ]);
    run.ok();
    assert_eq!(
        run.stderr.matches("is not the published file").count(),
        4,
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("intact"), "{}", run.stderr);
    let last = run.stderr.trim_end().lines().last().unwrap_or("");
    assert_eq!(
        last,
        format!("data is complete in {dir}, 4 of its files not as published (see above)")
    );
    // A damaged .gz beside them is not believed, and not replaced offline.
    let gz = data.join("t10k-labels-idx1-ubyte.gz");
    std::fs::write(&gz, [7u8; 100]).unwrap();
    sb.softreg(&["download", "--offline", "--data-dir", dir])
        .fails(
            1,
            &[
                &format!("{} is damaged", gz.display()),
                "--offline forbids downloading it again",
            ],
        );
}

#[test]
fn a_part_file_left_behind_is_resumed_and_said_so() {
    for (len, said) in [(0, false), (5, true), (LABELS_GZ_SIZE, false)] {
        let (url, server) = serve(1, LABELS_GZ_SIZE, vec![7u8; LABELS_GZ_SIZE]);
        let sb = Sandbox::new();
        let data = sb.data_dir();
        std::fs::remove_file(data.join("t10k-labels-idx1-ubyte")).unwrap();
        let part = data.join(".t10k-labels-idx1-ubyte.gz.part");
        std::fs::write(&part, vec![7u8; len]).unwrap();
        let dir = data.to_str().unwrap();
        let run = sb.softreg(&["download", "--data-dir", dir, "--mirror", &url]);
        // The server sends the whole file again, and it is not the real one
        // (nor is a whole .part of sevens: it is checked, then fetched again).
        run.fails(1, &["SHA-256 mismatch"]);
        let resuming = format!("resuming the download in {} after 5 bytes", part.display());
        assert_eq!(run.stderr.contains("resuming"), said, "{}", run.stderr);
        assert_eq!(run.stderr.contains(&resuming), said, "{}", run.stderr);
        assert!(!part.exists());
        server.join().unwrap();
    }
}
