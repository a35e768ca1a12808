//! Fetching the four Fashion-MNIST files over HTTP, with a progress bar, a
//! SHA-256 check and an atomic write ([`write_atomically`]): a file either
//! appears complete and verified under its final name, or not at all.

use crate::atomic_file::write_atomically;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The dataset authors' own download location.
pub const DEFAULT_MIRROR: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";

/// One file of the dataset as its authors publish it.
#[derive(Clone, Copy, Debug)]
pub struct RemoteFile {
    /// File name, also the last part of its URL.
    pub name: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: &'static str,
}

/// The four `.gz` files, with the sizes and SHA-256 sums listed in
/// `../shared/fashion-mnist/README.md` (the authors publish only MD5 sums,
/// which are too weak to trust a download by).
pub const FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        size: 26_421_880,
        sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        size: 29_515,
        sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        size: 4_422_102,
        sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        size: 5_148,
        sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
];

/// The remote file whose name is `name`, if it is one of the dataset's.
pub fn remote_file(name: &str) -> Option<&'static RemoteFile> {
    FILES.iter().find(|f| f.name == name)
}

/// The mirror to use: the `--mirror` flag, else `$SOFTREG_MIRROR`, else the
/// dataset's own.
pub fn mirror(flag: Option<&str>) -> String {
    flag.map(str::to_owned)
        .or_else(|| std::env::var("SOFTREG_MIRROR").ok())
        .unwrap_or_else(|| DEFAULT_MIRROR.to_owned())
}

/// Downloads `file` from `mirror` into `dir/<name>`, verifying its SHA-256.
pub fn fetch(mirror: &str, file: &RemoteFile, dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let url = format!("{}/{}", mirror.trim_end_matches('/'), file.name);
    let dest = dir.join(file.name);
    eprintln!("downloading {url}");
    fetch_verified(&url, &dest, file.size, file.sha256).with_context(|| {
        format!(
            "cannot fetch {} into {} (without network, put the four files there or pass --data-dir)",
            file.name,
            dir.display()
        )
    })?;
    Ok(dest)
}

/// Downloads `url` to `dest` through a temporary file beside it (hidden, and
/// unique per process so that two concurrent downloads cannot interleave
/// their bytes), which is renamed into place only once all `size` bytes have
/// arrived and their SHA-256 is `sha256`; on any failure the temporary file
/// is removed.
pub fn fetch_verified(url: &str, dest: &Path, size: u64, sha256: &str) -> Result<()> {
    // Connect first: no temporary file for a server that is not there.
    let body = request(url, size)?;
    write_atomically(dest, |out| {
        copy_verified(body, out, url, size, sha256, dest)
    })
}

/// The body of `url`, cut off after `size` bytes.
fn request(url: &str, size: u64) -> Result<impl Read> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        // A stalled transfer fails instead of hanging forever.
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent
        .get(url)
        .call()
        .with_context(|| format!("cannot download {url}"))?;
    // A server that sends more than the known size is not serving this file;
    // the limit stops it from filling the disk.
    Ok(response.into_body().into_with_config().limit(size).reader())
}

/// Copies `body` (from `url`) to `out`, checking that it is `size` bytes with
/// SHA-256 `sha256`; `dest` names the file in error messages.
fn copy_verified(
    mut body: impl Read,
    out: &mut dyn Write,
    url: &str,
    size: u64,
    sha256: &str,
    dest: &Path,
) -> Result<()> {
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = body
            .read(&mut buf)
            .with_context(|| format!("download of {url} failed after {received} bytes"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", dest.display()))?;
        received += n as u64;
        bar.set_position(received);
    }
    bar.finish_and_clear();
    if received != size {
        bail!("download of {url} ended after {received} bytes, expected {size}");
    }
    let got = hex(&hasher.finalize());
    if got != sha256 {
        bail!("{url}: SHA-256 mismatch: got {got}, expected {sha256}; the file was not kept");
    }
    Ok(())
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a byte slice, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// Serves `replies` on 127.0.0.1, one per connection, then stops: each
    /// reply is the declared Content-Length and the bytes actually sent
    /// (fewer than declared = the connection drops mid-file).
    fn serve(replies: Vec<(usize, Vec<u8>)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for (declared, body) in replies {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\n\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn downloads_verifies_and_renames() {
        let body = b"twelve bytes".to_vec();
        let url = serve(vec![(body.len(), body.clone())]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.gz");
        fetch_verified(&format!("{url}/f.gz"), &dest, 12, &sha256_hex(&body)).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), body);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn wrong_checksum_and_dropped_connection_leave_nothing() {
        let body = b"twelve bytes".to_vec();
        let url = serve(vec![(12, body.clone()), (12, body[..5].to_vec())]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.gz");
        let wrong = sha256_hex(b"something else");
        let err = fetch_verified(&format!("{url}/f.gz"), &dest, 12, &wrong).unwrap_err();
        assert!(format!("{err:#}").contains("SHA-256 mismatch"), "{err:#}");
        let err = fetch_verified(&format!("{url}/f.gz"), &dest, 12, &sha256_hex(&body));
        assert!(err.is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
