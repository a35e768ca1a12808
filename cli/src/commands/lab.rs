//! `softreg lab`: serves the lab, a page that trains the model in the
//! browser, and the data it trains on, over HTTP on 127.0.0.1.
//!
//! The page (`cli/www/`: `index.html`, `lab.js`, `worker.js` and the core
//! compiled to WebAssembly, `softreg_lab.wasm`, built by `lab/build.sh`) is
//! embedded in the binary, so the command works from any directory. The
//! server answers a fixed list of paths, the page's four files and
//! `/data/<name>` for the dataset's four files, and nothing else: no path is
//! ever joined to a directory, so `..` or an absolute path can reach no
//! other file. It listens on the loopback address unless `--host` says
//! otherwise, and on loopback it also refuses requests whose `Host` header
//! names another machine (a web page elsewhere cannot read it through a
//! DNS name rebound to 127.0.0.1).

use crate::args::LabArgs;
use anyhow::{anyhow, bail, Context, Result};
use softreg_cli::dataset::{Source, Split};
use softreg_cli::download;
use std::fs::{self, File};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use tiny_http::{Header, Method, Request, Response, Server, StatusCode};

/// The page's files, by the path they are served at, with their types.
const PAGE: [(&str, &str, &[u8]); 4] = [
    (
        "/index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../www/index.html"),
    ),
    (
        "/lab.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../www/lab.js"),
    ),
    (
        "/worker.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../www/worker.js"),
    ),
    // `application/wasm` is what lets the worker compile the module while
    // it downloads (`WebAssembly.instantiateStreaming`).
    (
        "/softreg_lab.wasm",
        "application/wasm",
        include_bytes!("../../www/softreg_lab.wasm"),
    ),
];

/// Runs `softreg lab`.
pub fn lab_command(args: &LabArgs) -> Result<()> {
    let source = Source::new(
        args.data.data_dir.as_deref(),
        args.data.offline,
        args.data.mirror.as_deref(),
    );
    let data = DataFiles::find(&source)?;
    let address = SocketAddr::new(args.host, args.port);
    let server = Server::http(address)
        .map_err(|e| anyhow!("cannot listen on {address}: {e} (pick another with --port)"))?;
    // The port the system chose, for `--port 0`.
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow!("the server is not on an IP address"))?;
    let shown_host = if bound.ip().is_loopback() {
        "127.0.0.1".to_owned()
    } else {
        bound.ip().to_string()
    };
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the server: the page is what matters.
    let _ = writeln!(
        out,
        "softreg lab: open http://{shown_host}:{}/ (data from {}; Ctrl-C stops)",
        bound.port(),
        source.dir.display()
    );
    let _ = out.flush();
    drop(out);
    if !bound.ip().is_loopback() {
        eprintln!("softreg lab: warning: listening on {bound}, not only on this machine");
    }
    let data = Arc::new(data);
    for request in server.incoming_requests() {
        // A thread per request: a client that stops reading a 47 MB answer
        // must not hold up the others.
        let data = Arc::clone(&data);
        thread::spawn(move || {
            let answer = answer(&request, &data, bound);
            if let Err(e) = request.respond(answer) {
                // The browser went away mid-answer: nothing to do but go on.
                eprintln!("softreg lab: could not answer a request: {e}");
            }
        });
    }
    Ok(())
}

/// The four data files, by the name the page asks for.
struct DataFiles {
    files: Vec<(&'static str, PathBuf)>,
}

impl DataFiles {
    /// Finds each file in the data directory: `.gz`, raw, or a cut-down set
    /// named like those in `fixtures/` (`train-2048-images-idx3-ubyte`).
    /// Downloads a missing `.gz` unless offline, as `softreg train` does.
    fn find(source: &Source) -> Result<DataFiles> {
        let mut files = Vec::new();
        for split in [Split::Train, Split::Test] {
            let (images, labels) = split.file_names();
            for name in [images, labels] {
                let path = match find_file(&source.dir, name)? {
                    Some(path) => path,
                    None => fetch(source, name)?,
                };
                files.push((name, path));
            }
        }
        Ok(DataFiles { files })
    }

    fn get(&self, name: &str) -> Option<&Path> {
        self.files
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.as_path())
    }
}

/// `dir/name.gz`, `dir/name`, or the one `dir/<split>-<count>-<rest>`.
fn find_file(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    let regular = |path: &Path| -> Result<bool> {
        match fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(true),
            Ok(_) => bail!("{}: not a regular file", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    };
    // The `.gz` first: half the bytes to send, and the page gunzips it.
    for candidate in [dir.join(format!("{name}.gz")), dir.join(name)] {
        if regular(&candidate)? {
            return Ok(Some(candidate));
        }
    }
    let (split, rest) = name
        .split_once('-')
        .expect("the dataset's names have a dash");
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(None);
    };
    let mut cut_down = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let count = file_name
            .strip_prefix(split)
            .and_then(|s| s.strip_prefix('-'))
            .and_then(|s| s.strip_suffix(rest))
            .and_then(|s| s.strip_suffix('-'));
        if count.is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit())) {
            cut_down.push(entry.path());
        }
    }
    match cut_down.as_slice() {
        [] => Ok(None),
        [one] if regular(one)? => Ok(Some(one.clone())),
        [_] => Ok(None),
        several => bail!(
            "{}: {} files could be {name} ({}); keep one",
            dir.display(),
            several.len(),
            several
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Downloads `name.gz`, or says why not.
fn fetch(source: &Source, name: &str) -> Result<PathBuf> {
    let missing = source.dir.join(name);
    if source.offline {
        bail!(
            "{}(.gz): no such file, and --offline forbids downloading it",
            missing.display()
        );
    }
    let remote = download::remote_file(&format!("{name}.gz"))
        .ok_or_else(|| anyhow!("{}: no such file", missing.display()))?;
    download::fetch(&source.mirror, remote, &source.dir)
}

/// The answer to one request.
fn answer(
    request: &Request,
    data: &DataFiles,
    bound: SocketAddr,
) -> Response<Box<dyn std::io::Read + Send>> {
    if !matches!(request.method(), Method::Get | Method::Head) {
        return text(405, "only GET and HEAD are served");
    }
    if bound.ip().is_loopback() && !loopback_host(request, bound.port()) {
        return text(
            403,
            "this server answers only requests for 127.0.0.1 or localhost",
        );
    }
    let path = request.url().split(['?', '#']).next().unwrap_or("");
    let path = if path == "/" { "/index.html" } else { path };
    if let Some((_, kind, bytes)) = PAGE.iter().find(|(p, _, _)| *p == path) {
        return with_type(Response::from_data(*bytes).boxed(), kind);
    }
    if let Some(file) = path.strip_prefix("/data/").and_then(|name| data.get(name)) {
        return match File::open(file) {
            Ok(f) => with_type(Response::from_file(f).boxed(), "application/octet-stream"),
            Err(e) => {
                eprintln!("softreg lab: cannot read {}: {e}", file.display());
                text(500, &format!("cannot read {}: {e}", file.display()))
            }
        };
    }
    text(404, "not served here")
}

/// Whether the `Host` header, if any, names this machine's loopback
/// address at the server's port.
fn loopback_host(request: &Request, port: u16) -> bool {
    let host = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Host"))
        .map(|h| h.value.as_str());
    names_loopback(host, port)
}

/// Whether a `Host` value names the loopback address at `port`: with the
/// port, or without it for port 80 (the default a browser leaves out). No
/// `Host` at all (HTTP/1.0) is let through; a page on another name is not,
/// so that a web site cannot reach the server by pointing its own name at
/// 127.0.0.1 (DNS rebinding).
fn names_loopback(host: Option<&str>, port: u16) -> bool {
    let Some(host) = host else {
        return true;
    };
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|name| host == format!("{name}:{port}") || (port == 80 && host == *name))
}

fn with_type<R: std::io::Read + Send + 'static>(response: Response<R>, kind: &str) -> Response<R> {
    let header = |field: &str, value: &str| {
        Header::from_bytes(field.as_bytes(), value.as_bytes()).expect("a valid header")
    };
    response
        .with_header(header("Content-Type", kind))
        .with_header(header("Cache-Control", "no-cache"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
}

fn text(status: u16, message: &str) -> Response<Box<dyn std::io::Read + Send>> {
    with_type(
        Response::from_string(format!("{message}\n")).boxed(),
        "text/plain; charset=utf-8",
    )
    .with_status_code(StatusCode(status))
}

#[cfg(test)]
mod tests {
    use super::names_loopback;

    #[test]
    fn only_the_loopback_names_at_the_servers_port_are_let_through() {
        for host in ["127.0.0.1:8000", "localhost:8000", "[::1]:8000"] {
            assert!(names_loopback(Some(host), 8000), "{host}");
        }
        assert!(names_loopback(None, 8000));
        for host in [
            "localhost",
            "127.0.0.1",
            "localhost:80",
            "localhost:8001",
            "evil.example:8000",
            "127.0.0.1.evil.example:8000",
            "",
        ] {
            assert!(!names_loopback(Some(host), 8000), "{host}");
        }
        // Port 80 is the default, which a browser leaves out of `Host`.
        for host in ["localhost", "127.0.0.1", "[::1]", "localhost:80"] {
            assert!(names_loopback(Some(host), 80), "{host}");
        }
        assert!(!names_loopback(Some("evil.example"), 80));
        assert!(!names_loopback(Some("localhost:8000"), 80));
    }
}
