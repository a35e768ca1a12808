//! Fetching the four Fashion-MNIST files over HTTP, with a progress bar, a
//! SHA-256 check, and a `.part` file renamed into place at the end: a file
//! either appears complete and verified under its final name, or not at
//! all. Waits are bounded ([`Timeouts`]), a broken transfer is resumed.

use crate::cleanup::{self, Created, Registration};
use crate::{console, regular_file};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
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
    /// SHA-256 of the file decompressed (the raw IDX file), lowercase hex.
    pub raw_sha256: &'static str,
}

/// The four `.gz` files, with the sizes and SHA-256 sums listed in
/// `../shared/fashion-mnist/README.md` (the authors publish only MD5 sums,
/// which are too weak to trust a download by), and the SHA-256 of each
/// decompressed.
pub const FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        size: 26_421_880,
        sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        raw_sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        size: 29_515,
        sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        raw_sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        size: 4_422_102,
        sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        raw_sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        size: 5_148,
        sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        raw_sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
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

/// How long the downloader waits before it gives up on a server.
///
/// There is no limit on a whole transfer, which on a slow link can take as
/// long as it takes (26 MB at 256 KB/s is nearly two minutes); what is
/// limited is each wait: for the connection, and for every read of the
/// response (its headers and each piece of its body). A server that
/// accepts and never answers, or stops sending mid-file, is given up on
/// after `idle`.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Longest wait for the TCP connection.
    pub connect: Duration,
    /// Longest wait for any single read: headers, or the next body bytes.
    pub idle: Duration,
}

impl Timeouts {
    /// 30 s to connect, 30 s without a byte.
    pub const DEFAULT: Timeouts = Timeouts {
        connect: Duration::from_secs(30),
        idle: Duration::from_secs(30),
    };

    /// [`Timeouts::DEFAULT`], or both set to `$SOFTREG_NET_TIMEOUT` seconds
    /// (a decimal number; tests use a fraction of a second).
    pub fn from_env() -> Timeouts {
        std::env::var("SOFTREG_NET_TIMEOUT")
            .ok()
            .map_or(Timeouts::DEFAULT, |v| Timeouts::from_seconds(&v))
    }

    /// Both waits `seconds` long, if that is a positive number of seconds a
    /// `Duration` can hold; else [`Timeouts::DEFAULT`].
    fn from_seconds(seconds: &str) -> Timeouts {
        seconds
            .parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .map_or(Timeouts::DEFAULT, |wait| Timeouts {
                connect: wait,
                idle: wait,
            })
    }
}

/// Attempts per file: a connection that drops or stalls mid-file is
/// resumed from where it stopped (or restarted, if the server cannot
/// resume) this many times in all.
const ATTEMPTS: u32 = 3;

/// Redirects followed per request.
const MAX_REDIRECTS: u32 = 5;

/// Downloads `file` from `mirror` into `dir/<name>`, verifying its SHA-256.
/// `dir` (and its missing parents) is created only once the server has
/// answered, and removed again if the download fails and it is empty.
pub fn fetch(mirror: &str, file: &RemoteFile, dir: &Path) -> Result<PathBuf> {
    let url = format!("{}/{}", mirror.trim_end_matches('/'), file.name);
    let dest = dir.join(file.name);
    console::err(&format!("downloading {url}"));
    fetch_verified(&url, &dest, file.size, file.sha256, Timeouts::from_env()).with_context(
        || {
            format!(
                "cannot fetch {} into {} (without network: {})",
                file.name,
                dir.display(),
                crate::dataset::WHERE_THE_DATA_GOES
            )
        },
    )?;
    Ok(dest)
}

/// Downloads `url` to `dest`, which appears only once all `size` bytes have
/// arrived and their SHA-256 is `sha256`.
///
/// The bytes go to `.NAME.part` beside `dest`, locked while this process
/// writes it (a second download of the same file is refused rather than
/// interleaved). A connection that drops or stalls is resumed with an HTTP
/// range request, or restarted when the server ignores the range; a `.part`
/// left by a killed run is resumed the same way (or, if it is already whole
/// and its SHA-256 matches, kept without asking the server for anything:
/// a range past the end is an error to it). On failure or interrupt
/// ([`crate::signals`]) the `.part` file is removed.
pub fn fetch_verified(
    url: &str,
    dest: &Path,
    size: u64,
    sha256: &str,
    timeouts: Timeouts,
) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(timeouts.connect))
        .timeout_per_read(Some(timeouts.idle))
        // Redirects and statuses are handled here, to say what went wrong.
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let part_path = dest.with_file_name(format!(".{name}.part"));
    let dir = crate::atomic_file::directory_of(dest).to_path_buf();

    let mut part: Option<Part> = None;
    // A `.part` left by a run that was killed: resume it.
    if part_path.exists() {
        let mut existing = Part::open_existing(&part_path, size)?;
        if existing.len == size {
            // Killed after the last byte, before the check and the rename.
            if existing.sha256(size)? == sha256 {
                return existing.rename_to(dest);
            }
            existing.restart()?;
        }
        part = Some(existing);
    }
    let mut made_dirs = None;
    let mut last_error = None;
    for attempt in 1..=ATTEMPTS {
        let offset = part.as_ref().map_or(0, |p| p.len);
        let response = match get(&agent, url, offset) {
            Ok(r) => r,
            // Nothing answered: retrying at once rarely helps, and the
            // caller's message says what to do.
            Err(e) if attempt == 1 || part.is_none() => return Err(e),
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        if made_dirs.is_none() {
            made_dirs = Some(
                MadeDirs::create(&dir)
                    .with_context(|| format!("cannot create data directory {}", dir.display()))?,
            );
        }
        let part = match &mut part {
            Some(p) => p,
            None => part.insert(Part::create(&part_path)?),
        };
        if response.resumes_at != Some(part.len) {
            part.restart()?;
        }
        match part.append(response.body, url, size) {
            Ok(()) => {
                last_error = None;
                break;
            }
            Err(e) => {
                console::err(&format!("{e:#}; trying again ({attempt} of {ATTEMPTS})"));
                last_error = Some(e);
            }
        }
    }
    let Some(part) = part else {
        return Err(last_error.unwrap_or_else(|| anyhow!("cannot download {url}")));
    };
    if let Some(e) = last_error {
        return Err(e);
    }
    part.finish(dest, url, size, sha256)?;
    if let Some(made) = made_dirs {
        made.keep();
    }
    Ok(())
}

/// A response to a GET, its body cut off at the file's size.
struct Response {
    /// Where the body starts in the file: `Some(0)` for a whole file,
    /// `Some(n)` for a range that starts at byte `n`.
    resumes_at: Option<u64>,
    body: Box<dyn Read>,
}

/// GET `url`, from byte `offset` on if it is not 0, following up to
/// [`MAX_REDIRECTS`] redirects to other http:// addresses.
fn get(agent: &ureq::Agent, url: &str, offset: u64) -> Result<Response> {
    let mut url = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let mut request = agent.get(&url);
        if offset > 0 {
            request = request.header("Range", format!("bytes={offset}-"));
        }
        let response = request
            .call()
            .map_err(|e| network_error(&url, e))
            .with_context(|| format!("cannot download {url}"))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| anyhow!("{url}: redirect ({status}) without a Location"))?;
            url = redirect_target(&url, location)?;
            continue;
        }
        let resumes_at = match status.as_u16() {
            200 => Some(0),
            206 => response
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(range_start),
            code => bail!(
                "cannot download {url}: the server answered {code} {}",
                status.canonical_reason().unwrap_or("")
            ),
        };
        // A server that sends more than the file's size is not serving this
        // file; the limit stops it from filling the disk.
        let body = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader();
        return Ok(Response {
            resumes_at,
            body: Box::new(body),
        });
    }
    bail!("cannot download {url}: more than {MAX_REDIRECTS} redirects")
}

/// The first byte of a `Content-Range: bytes FIRST-LAST/SIZE`.
fn range_start(value: &str) -> Option<u64> {
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

/// The absolute URL a redirect from `from` to `location` leads to; only
/// http:// and https:// addresses are followed.
fn redirect_target(from: &str, location: &str) -> Result<String> {
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(location.to_owned());
    }
    if location.contains("://") || lower.starts_with("file:") {
        bail!(
            "{from} redirects to {location}, which is not an http:// or https:// address; \
             softreg downloads only over HTTP"
        );
    }
    let (scheme, rest) = from.split_once("://").unwrap_or(("http", from));
    let host = rest.split('/').next().unwrap_or(rest);
    if let Some(path) = location.strip_prefix('/') {
        Ok(format!("{scheme}://{host}/{path}"))
    } else {
        let base = from.rsplit_once('/').map_or(from, |(b, _)| b);
        Ok(format!("{base}/{location}"))
    }
}

/// ureq's error in words: a timeout says which wait ran out.
fn network_error(url: &str, e: ureq::Error) -> anyhow::Error {
    match e {
        ureq::Error::Timeout(ureq::Timeout::Connect) => {
            anyhow!("could not connect to {url} in time")
        }
        ureq::Error::Timeout(_) => anyhow!("the server of {url} stopped answering"),
        e => anyhow!(e),
    }
}

/// The `.part` file of a download.
struct Part {
    path: PathBuf,
    file: File,
    /// Bytes in it so far.
    len: u64,
    registration: Option<Registration>,
}

impl Part {
    fn create(path: &Path) -> Result<Part> {
        let registration = cleanup::register(Created::File(path.to_path_buf()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Self::locked(path, file, registration)
    }

    /// A `.part` file already there: resumed if nobody holds it.
    fn open_existing(path: &Path, size: u64) -> Result<Part> {
        let mut part = Self::create(path)?;
        if part.len > size {
            part.restart()?;
        } else if part.len > 0 && part.len < size {
            console::err(&format!(
                "resuming the download in {} after {} bytes",
                path.display(),
                part.len
            ));
        }
        Ok(part)
    }

    fn locked(path: &Path, file: File, registration: Registration) -> Result<Part> {
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                // Another process's: not ours to remove.
                drop(registration);
                bail!(
                    "{}: another softreg is downloading this file; wait for it to finish",
                    path.display()
                );
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        let len = file
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        Ok(Part {
            path: path.to_path_buf(),
            file,
            len,
            registration: Some(registration),
        })
    }

    /// Empties the file, for a server that sends the whole file again.
    fn restart(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.len = 0;
        Ok(())
    }

    /// Appends `body` until it ends or `size` bytes are there, with a
    /// progress bar (drawn only on a terminal).
    fn append(&mut self, mut body: Box<dyn Read>, url: &str, size: u64) -> Result<()> {
        self.file
            .seek(SeekFrom::Start(self.len))
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        let bar = ProgressBar::new(size).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_position(self.len);
        let mut buf = vec![0u8; 64 * 1024];
        let result = loop {
            let want = (size - self.len).min(buf.len() as u64) as usize;
            // One byte past the size, to notice a server sending too much.
            let want = if want == 0 { 1 } else { want };
            let n = match body.read(&mut buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    break Err(anyhow!(
                        "download of {url} failed after {} bytes: {}",
                        self.len,
                        describe_read_error(&e)
                    ))
                }
            };
            if n == 0 {
                break if self.len == size {
                    Ok(())
                } else {
                    Err(anyhow!(
                        "download of {url} ended after {} bytes, expected {size}",
                        self.len
                    ))
                };
            }
            if self.len == size {
                break Err(anyhow!(
                    "{url}: the server sent more than the file's {size} bytes"
                ));
            }
            if let Err(e) = self.file.write_all(&buf[..n]) {
                break Err(anyhow!("cannot write {}: {e}", self.path.display()));
            }
            self.len += n as u64;
            bar.set_position(self.len);
        };
        bar.finish_and_clear();
        result
    }

    /// The SHA-256 of the file's first `size` bytes, lowercase hex.
    fn sha256(&mut self, size: u64) -> Result<String> {
        (|| -> io::Result<String> {
            self.file.sync_all()?;
            self.file.seek(SeekFrom::Start(0))?;
            let mut hasher = Sha256::new();
            io::copy(&mut (&self.file).take(size), &mut HashWriter(&mut hasher))?;
            Ok(hex(&hasher.finalize()))
        })()
        .with_context(|| format!("cannot read {}", self.path.display()))
    }

    /// Checks the whole file's SHA-256 and renames it to `dest`; a file
    /// that does not match is removed.
    fn finish(mut self, dest: &Path, url: &str, size: u64, sha256: &str) -> Result<()> {
        let got = self.sha256(size)?;
        if got != sha256 {
            let _ = fs::remove_file(&self.path);
            bail!("{url}: SHA-256 mismatch: got {got}, expected {sha256}; the file was not kept");
        }
        self.rename_to(dest)
    }

    /// Renames the checked file to `dest`, the download's end.
    fn rename_to(mut self, dest: &Path) -> Result<()> {
        let registration = self.registration.take().expect("registered at creation");
        registration.complete(|| {
            fs::rename(&self.path, dest).with_context(|| {
                format!(
                    "cannot rename {} to {}",
                    self.path.display(),
                    dest.display()
                )
            })
        })
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        // Still registered: the download did not finish.
        if self.registration.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The cause of a failed body read, the wait that ran out spelled out.
fn describe_read_error(e: &io::Error) -> String {
    let inner = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>());
    match inner {
        Some(ureq::Error::Timeout(_)) => "the server stopped sending".to_owned(),
        _ if e.kind() == io::ErrorKind::TimedOut => "the server stopped sending".to_owned(),
        _ => e.to_string(),
    }
}

/// Feeds what is written to a SHA-256.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Directories made for a download, removed again (if empty) unless kept.
struct MadeDirs {
    dirs: Vec<PathBuf>,
    registrations: Vec<Registration>,
    keep: bool,
}

impl MadeDirs {
    fn create(dir: &Path) -> io::Result<MadeDirs> {
        let (dirs, registrations) = cleanup::create_parents(dir)?;
        Ok(MadeDirs {
            dirs,
            registrations,
            keep: false,
        })
    }

    fn keep(mut self) {
        self.keep = true;
        self.registrations.clear();
    }
}

impl Drop for MadeDirs {
    fn drop(&mut self) {
        if !self.keep {
            cleanup::remove_empty(&self.dirs);
        }
    }
}

/// SHA-256 of the file at `path`, lowercase hex: for checking a file that
/// is already there.
pub fn sha256_of_file(path: &Path) -> Result<String> {
    let mut file = regular_file::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut HashWriter(&mut hasher))
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex(&hasher.finalize()))
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

    #[test]
    fn a_timeout_setting_is_a_positive_finite_number_of_seconds() {
        let idle = |v| Timeouts::from_seconds(v).idle;
        assert_eq!(idle("0.25"), Duration::from_millis(250));
        assert_eq!(idle("2"), Duration::from_secs(2));
        for bad in ["0", "-1", "inf", "NaN", "1e300", "soon", ""] {
            assert_eq!(idle(bad), Timeouts::DEFAULT.idle, "{bad}");
        }
    }
    use std::io::BufRead;
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;

    /// What the test server does with one connection: it gets the stream
    /// and the request's head.
    type Handler = Box<dyn FnOnce(&mut TcpStream, &str) + Send>;

    /// Serves one handler per connection on 127.0.0.1, then stops. Returns
    /// the base URL and a channel of the request heads seen.
    fn serve(handlers: Vec<Handler>) -> (String, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen, heads) = mpsc::channel();
        std::thread::spawn(move || {
            for handler in handlers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    head.push_str(&line);
                    line.clear();
                }
                let _ = seen.send(head.clone());
                handler(&mut stream, &head);
            }
        });
        (format!("http://{addr}"), heads)
    }

    /// A reply: status line, headers, then `body`, all at once.
    fn reply(status: &'static str, headers: String, body: Vec<u8>) -> Handler {
        Box::new(move |stream, _| {
            let head = format!("HTTP/1.1 {status}\r\n{headers}Connection: close\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        })
    }

    fn ok(declared: usize, body: &[u8]) -> Handler {
        reply(
            "200 OK",
            format!("Content-Length: {declared}\r\n"),
            body.to_vec(),
        )
    }

    /// Sends `body` up to `upto`, then neither sends nor closes for up to
    /// 20 s (bounded, so a test without timeouts ends too, and fails).
    fn stall_after(declared: usize, body: &[u8], upto: usize) -> Handler {
        let body = body.to_vec();
        Box::new(move |stream, _| {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body[..upto]);
            let _ = stream.flush();
            hold(stream);
        })
    }

    /// Keeps the connection open, silent, until the client closes it or 20 s
    /// have passed.
    fn hold(stream: &mut TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
        let _ = stream.read(&mut [0u8; 1]);
    }

    const FAST: Timeouts = Timeouts {
        connect: Duration::from_secs(5),
        idle: Duration::from_millis(300),
    };

    /// The file most tests download, 12 bytes.
    const BODY: &[u8] = b"twelve bytes";

    /// A download of [`BODY`] as `f.gz` into a fresh directory from a
    /// server answering with `handlers`, after a killed run left `part` as
    /// the `.part` file, if given.
    struct Download {
        dir: tempfile::TempDir,
        url: String,
        result: Result<()>,
        /// The heads of the requests the server saw, in order.
        heads: mpsc::Receiver<String>,
    }

    impl Download {
        fn run(handlers: Vec<Handler>, part: Option<&[u8]>) -> Download {
            let (base, heads) = serve(handlers);
            let dir = tempfile::tempdir().unwrap();
            if let Some(part) = part {
                fs::write(dir.path().join(".f.gz.part"), part).unwrap();
            }
            let url = format!("{base}/f.gz");
            let dest = dir.path().join("f.gz");
            let result = fetch_verified(&url, &dest, 12, &sha256_hex(BODY), FAST);
            Download {
                dir,
                url,
                result,
                heads,
            }
        }

        /// The downloaded file, which must be there.
        fn file(&self) -> Vec<u8> {
            fs::read(self.dir.path().join("f.gz")).unwrap()
        }

        /// How many entries the directory holds.
        fn entries(&self) -> usize {
            fs::read_dir(self.dir.path()).unwrap().count()
        }

        /// The next request's head, lower case.
        fn next_head(&self) -> String {
            self.heads.recv().unwrap().to_ascii_lowercase()
        }

        /// How many requests are left unread.
        fn requests(&self) -> usize {
            self.heads.try_iter().count()
        }
    }

    #[test]
    fn downloads_verifies_and_renames() {
        let download = Download::run(vec![ok(12, BODY)], None);
        download.result.as_ref().unwrap();
        assert_eq!(download.file(), BODY);
        assert_eq!(download.entries(), 1);
    }

    #[test]
    fn wrong_checksum_and_dropped_connection_leave_nothing() {
        let body = b"twelve bytes".to_vec();
        let (url, _) = serve(vec![ok(12, &body), ok(12, &body[..5])]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.gz");
        let wrong = sha256_hex(b"something else");
        let err = fetch_verified(&format!("{url}/f.gz"), &dest, 12, &wrong, FAST).unwrap_err();
        assert!(format!("{err:#}").contains("SHA-256 mismatch"), "{err:#}");
        let err = fetch_verified(&format!("{url}/f.gz"), &dest, 12, &sha256_hex(&body), FAST);
        assert!(err.is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_server_that_never_answers_is_given_up_on() {
        let (url, _) = serve(vec![Box::new(|stream, _| hold(stream))]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.gz");
        let err = fetch_verified(&format!("{url}/f.gz"), &dest, 12, "00", FAST).unwrap_err();
        assert!(format!("{err:#}").contains("stopped answering"), "{err:#}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_slow_steady_transfer_longer_than_the_idle_limit_arrives() {
        // 30 bytes, one every 100 ms: 3 s in all, longer than the 2 s idle
        // limit, which each single wait stays well under.
        let body: Vec<u8> = (0..30).collect();
        let sent = body.clone();
        let (url, _) = serve(vec![Box::new(move |stream, _| {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            for byte in &sent {
                std::thread::sleep(Duration::from_millis(100));
                let _ = stream.write_all(&[*byte]);
                let _ = stream.flush();
            }
        })]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.gz");
        let slow = Timeouts {
            connect: Duration::from_secs(5),
            idle: Duration::from_secs(2),
        };
        // (2 s rather than 300 ms, so that a loaded machine's scheduling
        // cannot make one 100 ms gap look like a stall.)
        fetch_verified(&format!("{url}/f.gz"), &dest, 30, &sha256_hex(&body), slow).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), body);
    }

    #[test]
    fn a_stall_mid_file_is_resumed_with_a_range_request() {
        let download = Download::run(
            vec![
                stall_after(12, BODY, 5),
                reply(
                    "206 Partial Content",
                    "Content-Length: 7\r\nContent-Range: bytes 5-11/12\r\n".into(),
                    BODY[5..].to_vec(),
                ),
            ],
            None,
        );
        download.result.as_ref().unwrap();
        assert_eq!(download.file(), BODY);
        assert_eq!(download.entries(), 1);
        let _first = download.next_head();
        let second = download.next_head();
        assert!(second.contains("range: bytes=5-"), "{second}");
    }

    #[test]
    fn a_server_that_ignores_the_range_is_read_from_the_start() {
        let download = Download::run(vec![stall_after(12, BODY, 5), ok(12, BODY)], None);
        download.result.as_ref().unwrap();
        assert_eq!(download.file(), BODY);
    }

    #[test]
    fn a_part_file_left_by_a_killed_run_is_resumed() {
        let rest = reply(
            "206 Partial Content",
            "Content-Length: 7\r\nContent-Range: bytes 5-11/12\r\n".into(),
            BODY[5..].to_vec(),
        );
        let download = Download::run(vec![rest], Some(&BODY[..5]));
        download.result.as_ref().unwrap();
        assert_eq!(download.file(), BODY);
        assert!(download.next_head().contains("range: bytes=5-"));
        assert_eq!(download.entries(), 1);
    }

    #[test]
    fn a_redirect_to_a_file_url_says_so() {
        let (url, _) = serve(vec![reply(
            "302 Found",
            "Location: file:///etc/passwd\r\nContent-Length: 0\r\n".into(),
            Vec::new(),
        )]);
        let dir = tempfile::tempdir().unwrap();
        let err = fetch_verified(
            &format!("{url}/f.gz"),
            &dir.path().join("f.gz"),
            12,
            "00",
            FAST,
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("file:///etc/passwd") && msg.contains("not an http"),
            "{msg}"
        );
    }

    /// A connection closed before any reply.
    fn hang_up() -> Handler {
        Box::new(|_, _| {})
    }

    #[test]
    fn a_fresh_download_asks_for_the_whole_file() {
        let download = Download::run(vec![ok(12, BODY)], None);
        download.result.as_ref().unwrap();
        let head = download.next_head();
        assert!(!head.contains("range:"), "{head}");
    }

    #[test]
    fn no_answer_to_the_first_request_fails_at_once_even_when_resuming() {
        let download = Download::run(vec![hang_up(), hang_up(), hang_up()], Some(b"twelv"));
        assert!(download.result.is_err());
        assert_eq!(download.requests(), 1, "retried");
    }

    #[test]
    fn no_answer_after_a_stall_is_retried() {
        let rest = reply(
            "206 Partial Content",
            "Content-Length: 7\r\nContent-Range: bytes 5-11/12\r\n".into(),
            BODY[5..].to_vec(),
        );
        let download = Download::run(vec![stall_after(12, BODY, 5), hang_up(), rest], None);
        download.result.as_ref().unwrap();
        assert_eq!(download.file(), BODY);
        assert_eq!(download.requests(), 3);
    }

    #[test]
    fn a_part_longer_than_the_file_is_started_again() {
        let download = Download::run(vec![ok(12, BODY)], Some(&[1u8; 20]));
        download.result.as_ref().unwrap();
        assert_eq!(download.file(), BODY);
        let head = download.next_head();
        assert!(!head.contains("range:"), "{head}");
    }

    #[test]
    fn a_whole_part_file_is_checked_and_kept_without_a_request() {
        // A server that would refuse any range past the end.
        let refusal = reply(
            "416 Range Not Satisfiable",
            "Content-Length: 0\r\n".into(),
            Vec::new(),
        );
        let download = Download::run(vec![refusal], Some(BODY));
        download.result.as_ref().unwrap();
        assert_eq!(download.file(), BODY);
        assert_eq!(download.entries(), 1);
        assert_eq!(download.requests(), 0);
    }

    #[test]
    fn a_whole_part_file_that_does_not_match_is_fetched_again() {
        let download = Download::run(vec![ok(12, BODY)], Some(b"twelve bites"));
        download.result.as_ref().unwrap();
        assert_eq!(download.file(), BODY);
        let head = download.next_head();
        assert!(!head.contains("range:"), "{head}");
    }

    /// A body that answers each read in turn: the number of bytes the read
    /// must ask for, and then an I/O error of that kind or the bytes.
    type Script = Vec<(usize, Result<&'static [u8], io::ErrorKind>)>;

    struct Scripted(std::vec::IntoIter<(usize, Result<&'static [u8], io::ErrorKind>)>);

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((asked, answer)) = self.0.next() else {
                return Ok(0);
            };
            assert_eq!(buf.len(), asked, "the bytes asked for");
            match answer {
                Err(kind) => Err(io::Error::new(kind, "scripted")),
                Ok(bytes) => {
                    buf[..bytes.len()].copy_from_slice(bytes);
                    Ok(bytes.len())
                }
            }
        }
    }

    #[test]
    fn appending_asks_for_what_is_missing_and_retries_an_interrupted_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut part = Part::create(&dir.path().join(".f.part")).unwrap();
        let body = |script: Script| Box::new(Scripted(script.into_iter())) as Box<dyn Read>;
        // A signal interrupting a read is not a failed download.
        let script = vec![
            (12, Ok(&b"twelve"[..])),
            (6, Err(io::ErrorKind::Interrupted)),
            (6, Ok(&b" bytes"[..])),
        ];
        part.append(body(script), "u", 12).unwrap();
        assert_eq!(part.len, 12);
        // From byte 5 each read asks for the 7 bytes left, then for one
        // more, to notice a server that sends too much.
        part.restart().unwrap();
        let err = part
            .append(body(vec![(12, Ok(&b"twelv"[..]))]), "u", 12)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "download of u ended after 5 bytes, expected 12"
        );
        let script = vec![(7, Ok(&b"e bytes"[..])), (1, Ok(&b"!"[..]))];
        let err = part.append(body(script), "u", 12).unwrap_err();
        assert_eq!(
            err.to_string(),
            "u: the server sent more than the file's 12 bytes"
        );
        assert_eq!(
            fs::read(dir.path().join(".f.part")).unwrap(),
            b"twelve bytes"
        );
    }

    #[test]
    fn a_read_that_timed_out_is_called_a_stall() {
        let stalled = "the server stopped sending";
        let timed_out = io::Error::new(io::ErrorKind::TimedOut, "timed out");
        assert_eq!(describe_read_error(&timed_out), stalled);
        let ureq_timeout = io::Error::other(ureq::Error::Timeout(ureq::Timeout::RecvBody));
        assert_eq!(describe_read_error(&ureq_timeout), stalled);
        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "connection reset");
        assert_eq!(describe_read_error(&reset), "connection reset");
    }

    #[test]
    fn every_attempt_failing_says_how_the_last_one_did() {
        let fails = |handlers: Vec<Handler>| {
            let download = Download::run(handlers, None);
            let err = download.result.as_ref().unwrap_err();
            assert_eq!(download.entries(), 0);
            (
                format!("{err:#}"),
                download.url.clone(),
                download.requests(),
            )
        };
        let stalls = (0..3).map(|_| stall_after(12, BODY, 5)).collect();
        let (err, url, requests) = fails(stalls);
        assert_eq!(
            err,
            format!("download of {url} failed after 5 bytes: the server stopped sending")
        );
        assert_eq!(requests, 3);
        let short = (0..3).map(|_| ok(5, &BODY[..5])).collect();
        let (err, url, _) = fails(short);
        assert_eq!(
            err,
            format!("download of {url} ended after 5 bytes, expected 12")
        );
        let long = (0..3).map(|_| ok(20, &[b'x'; 20])).collect();
        let (err, url, _) = fails(long);
        assert_eq!(
            err,
            format!("{url}: the server sent more than the file's 12 bytes")
        );
    }

    #[test]
    fn directories_made_for_a_download_go_if_it_fails() {
        let body = b"twelve bytes".to_vec();
        let (url, _) = serve(vec![ok(12, &body), ok(12, &body)]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/b/f.gz");
        let url = format!("{url}/f.gz");
        assert!(fetch_verified(&url, &dest, 12, &sha256_hex(b"other"), FAST).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        fetch_verified(&url, &dest, 12, &sha256_hex(&body), FAST).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), body);
    }

    #[test]
    fn a_files_sha256_is_the_published_one_for_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        fs::write(&path, b"abc").unwrap();
        // FIPS 180-2's first example.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_of_file(&path).unwrap(), abc);
        assert_eq!(sha256_hex(b"abc"), abc);
        assert!(sha256_of_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn redirect_targets() {
        let from = "http://h:1/a/f.gz";
        assert_eq!(
            redirect_target(from, "/b/f.gz").unwrap(),
            "http://h:1/b/f.gz"
        );
        assert_eq!(redirect_target(from, "g.gz").unwrap(), "http://h:1/a/g.gz");
        assert_eq!(redirect_target(from, "http://x/f").unwrap(), "http://x/f");
        assert!(redirect_target(from, "ftp://x/f").is_err());
        assert_eq!(range_start("bytes 5-11/12"), Some(5));
    }
}
