//! Opening input files, which must be regular files.
//!
//! A FIFO given as a data file, a model or a PNG used to block the read
//! forever, and `--model /dev/zero` to fill memory: a device or a pipe has
//! no end a reader can count on. Every file the command line reads is
//! opened here, which refuses anything that is not a regular file before
//! reading a byte (and opens without blocking, so a FIFO swapped in at the
//! last moment cannot hang the open either), and states plainly what is
//! wrong with a path that cannot be used: missing, a symlink loop, no
//! permission.

use anyhow::{anyhow, bail, Result};
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// What `path` is, if it exists: `Ok(None)` when nothing is there; an
/// error naming the path when it cannot be looked at (a symlink loop, a
/// directory on the way that may not be searched).
pub fn probe(path: &Path) -> Result<Option<Metadata>> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A dangling symlink is "there" but broken: say so.
            if fs::symlink_metadata(path).is_ok() {
                bail!("{}: is a symbolic link to nothing", path.display());
            }
            Ok(None)
        }
        Err(e) => Err(anyhow!("{}: {}", path.display(), describe(&e))),
    }
}

/// Opens `path` for reading, refusing what is not a regular file.
pub fn open(path: &Path) -> Result<File> {
    let shown = path.display();
    let Some(meta) = probe(path)? else {
        bail!("{shown}: no such file");
    };
    check_regular(path, &meta)?;
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Reads of a regular file do not care; an open of a FIFO does not
        // wait for a writer.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|e| anyhow!("cannot open {shown}: {}", describe(&e)))?;
    // Checked again on what was opened: the path may have changed.
    let meta = file
        .metadata()
        .map_err(|e| anyhow!("cannot read {shown}: {}", describe(&e)))?;
    check_regular(path, &meta)?;
    Ok(file)
}

/// Reads all of the regular file `path`, refusing one of more than
/// `max_len` bytes before reading it.
pub fn read_at_most(path: &Path, max_len: u64, what: &str) -> Result<Vec<u8>> {
    let shown = path.display();
    let file = open(path)?;
    let len = file
        .metadata()
        .map_err(|e| anyhow!("cannot read {shown}: {}", describe(&e)))?
        .len();
    if len > max_len {
        bail!("{shown}: is {len} bytes, more than a {what} can be ({max_len} bytes)");
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take`: the file may grow while it is read.
    file.take(max_len + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("cannot read {shown}: {}", describe(&e)))?;
    if bytes.len() as u64 > max_len {
        bail!("{shown}: grew beyond {max_len} bytes while it was read");
    }
    Ok(bytes)
}

fn check_regular(path: &Path, meta: &Metadata) -> Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    bail!(
        "{}: is {}, not a regular file",
        path.display(),
        kind_of(meta)
    )
}

/// "a directory", "a FIFO (named pipe)", ... for a message.
fn kind_of(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "not a file"
}

/// An I/O error in words a user can act on: the common cases are spelled
/// out, the others are the system's message.
pub fn describe(e: &io::Error) -> String {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return "too many levels of symbolic links (a symlink loop?)".into();
    }
    match e.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = open(&fifo).unwrap_err().to_string();
        assert!(err.contains("FIFO") && err.contains("fifo"), "{err}");
        let err = read_at_most(Path::new("/dev/zero"), 100, "model file")
            .unwrap_err()
            .to_string();
        assert!(err.contains("character device"), "{err}");
        let err = open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a directory"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_and_missing_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::os::unix::fs::symlink(dir.path().join("b"), &a).unwrap();
        std::os::unix::fs::symlink(&a, dir.path().join("b")).unwrap();
        let err = open(&a).unwrap_err().to_string();
        assert!(err.contains("symlink loop"), "{err}");
        let err = open(&dir.path().join("none")).unwrap_err().to_string();
        assert!(err.contains("no such file"), "{err}");
        let big = dir.path().join("big");
        fs::write(&big, [0u8; 200]).unwrap();
        let err = read_at_most(&big, 100, "model file")
            .unwrap_err()
            .to_string();
        assert!(err.contains("200 bytes"), "{err}");
    }

    /// A file of exactly the limit is read whole; one byte more is refused.
    #[test]
    fn the_limit_itself_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, [7u8; 100]).unwrap();
        assert_eq!(read_at_most(&file, 100, "model file").unwrap(), [7u8; 100]);
        let err = read_at_most(&file, 99, "model file")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is 100 bytes") && err.contains("(99 bytes)"),
            "{err}"
        );
    }

    /// A file that holds more than its size said when it was opened (here a
    /// `/proc` file, which reports size 0) is refused, not cut short.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_larger_than_it_said_is_refused() {
        let status = Path::new("/proc/self/status");
        let err = read_at_most(status, 10, "model file")
            .unwrap_err()
            .to_string();
        assert!(err.contains("grew beyond 10 bytes"), "{err}");
    }

    /// The system's own messages ("Permission denied (os error 13)") are
    /// replaced by plain words.
    #[cfg(unix)]
    #[test]
    fn common_errors_are_in_plain_words() {
        let said = |code| describe(&io::Error::from_raw_os_error(code));
        assert_eq!(said(libc::ENOENT), "no such file or directory");
        assert_eq!(said(libc::EACCES), "permission denied");
        assert!(said(libc::ELOOP).contains("symlink loop"));
    }
}
