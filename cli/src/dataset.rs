//! Finding, decompressing and memory-mapping the Fashion-MNIST IDX files.
//!
//! Each of the four files may be present raw (`train-images-idx3-ubyte`) or
//! gzipped (`train-images-idx3-ubyte.gz`). Raw files are memory-mapped, so
//! loading 47 MB of training images costs no copy and no read loop. A `.gz`
//! file is decompressed once into a raw file beside it, or into a cache
//! directory when the data directory is read-only, and that file is mapped.
//! Decompression stops at the length the IDX header promises, and a header
//! promising more than [`MAX_DECOMPRESSED_LEN`] is refused outright, so a
//! corrupt or hostile `.gz` cannot inflate without bound.

use crate::atomic_file::write_atomically;
use crate::{console, download, regular_file};
use anyhow::{anyhow, bail, Context, Result};
use flate2::read::GzDecoder;
use memmap2::{Mmap, MmapOptions};
use softreg::fashion_mnist::Examples;
use softreg::fashion_mnist::{CLASSES, PIXELS, SIDE};
use softreg::idx::{self, IdxError, IdxKind};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// Where the data lives when neither `--data-dir` nor `$SOFTREG_DATA_DIR` says.
pub const DEFAULT_DATA_DIR: &str = "data/fashion-mnist";

/// The most bytes a `.gz` data file may promise to decompress to (its whole
/// IDX file, header included): 256 MiB.
///
/// The IDX header alone bounds decompression, but it may promise up to
/// 2^64 bytes, which would fill the disk (or, in the in-memory fallback,
/// memory) long before deflate's ~1032:1 ratio stopped a small bomb. The
/// largest Fashion-MNIST file, the training images, is 47,040,016 bytes
/// decompressed; the cap leaves five times that, room for any same-shaped
/// MNIST variant, while keeping the worst case a size every machine that
/// trains this model can hold.
pub const MAX_DECOMPRESSED_LEN: u64 = 256 << 20;

/// The two halves of the dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// 60,000 training examples.
    Train,
    /// 10,000 test examples, the chapter's validation set.
    Test,
}

impl Split {
    /// Raw file names of the images and the labels.
    pub const fn file_names(self) -> (&'static str, &'static str) {
        match self {
            Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        }
    }
}

/// How to get data files that are missing.
#[derive(Clone, Debug)]
pub struct Source {
    /// Directory holding the files.
    pub dir: PathBuf,
    /// Never download.
    pub offline: bool,
    /// Base URL to download from.
    pub mirror: String,
}

impl Source {
    /// The data directory from the flag, else `$SOFTREG_DATA_DIR`, else
    /// [`DEFAULT_DATA_DIR`].
    pub fn new(data_dir: Option<&Path>, offline: bool, mirror: Option<&str>) -> Source {
        let dir = data_dir
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("SOFTREG_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        Source {
            dir,
            offline,
            mirror: download::mirror(mirror),
        }
    }
}

/// The bytes of one data file: mapped from disk, or (rarely) held in memory
/// when no directory could take a decompressed copy.
pub enum Bytes {
    /// A memory-mapped file.
    Mapped(Mmap),
    /// Owned bytes (an empty file, or a `.gz` decompressed in memory).
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Owned(vec) => vec,
        }
    }
}

/// One data file, ready to parse.
pub struct DataFile {
    /// The file as the user would name it (for error messages).
    pub path: PathBuf,
    /// Its raw IDX bytes.
    pub bytes: Bytes,
}

/// The images and labels of one split, open but not yet checked.
pub struct SplitFiles {
    /// The image file.
    pub images: DataFile,
    /// The label file.
    pub labels: DataFile,
}

impl SplitFiles {
    /// Opens (fetching or decompressing as needed) the two files of `split`.
    pub fn open(source: &Source, split: Split) -> Result<SplitFiles> {
        let (images, labels) = split.file_names();
        Ok(SplitFiles {
            images: open_idx(source, images, IdxKind::Images)?,
            labels: open_idx(source, labels, IdxKind::Labels)?,
        })
    }

    /// Opens two raw IDX files by their paths, memory-mapped: nothing is
    /// searched for, decompressed or downloaded. For files named otherwise
    /// than the dataset's, like the cut-down sets in `fixtures/`.
    pub fn open_raw(images: &Path, labels: &Path) -> Result<SplitFiles> {
        let open = |path: &Path| -> Result<DataFile> {
            Ok(DataFile {
                bytes: map(path)?,
                path: path.to_path_buf(),
            })
        };
        Ok(SplitFiles {
            images: open(images)?,
            labels: open(labels)?,
        })
    }

    /// Parses and checks both files: every image 28x28, one label per
    /// image, every label a class. Borrows the mapped bytes, no copy.
    pub fn examples(&self) -> Result<Examples<'_>> {
        let images_path = self.images.path.display();
        let labels_path = self.labels.path.display();
        let images =
            idx::parse_images(&self.images.bytes).map_err(|e| anyhow!("{images_path}: {e}"))?;
        if (images.rows, images.cols) != (SIDE, SIDE) {
            bail!(
                "{images_path}: images are {}x{}, Fashion-MNIST's are {SIDE}x{SIDE}",
                images.rows,
                images.cols
            );
        }
        let labels = idx::parse_labels(&self.labels.bytes)
            .and_then(|l| l.check_classes(CLASSES).map(|()| l))
            .map_err(|e| anyhow!("{labels_path}: {e}"))?;
        if images.count != labels.labels.len() {
            bail!(
                "{images_path} has {} images but {labels_path} has {} labels",
                images.count,
                labels.labels.len()
            );
        }
        if images.count == 0 {
            bail!("{images_path}: holds no images");
        }
        let images = images
            .as_arrays::<PIXELS>()
            .ok_or_else(|| anyhow!("{images_path}: images are not {PIXELS} pixels"))?;
        Ok(Examples {
            images,
            labels: labels.labels,
        })
    }
}

/// Opens the raw file `name` in the data directory, making it from
/// `name.gz` (local, or downloaded unless offline) if needed.
fn open_idx(source: &Source, name: &str, kind: IdxKind) -> Result<DataFile> {
    let raw = source.dir.join(name);
    if regular_file::probe(&raw)?.is_some() {
        return Ok(DataFile {
            bytes: map(&raw)?,
            path: raw,
        });
    }
    let gz_name = format!("{name}.gz");
    let mut gz = source.dir.join(&gz_name);
    if regular_file::probe(&gz)?.is_none() {
        let remote = download::remote_file(&gz_name)
            .ok_or_else(|| anyhow!("{}: no such file", raw.display()))?;
        if source.offline {
            bail!(
                "{} not found (nor {}), and --offline forbids downloading it; {}",
                raw.display(),
                gz.display(),
                WHERE_THE_DATA_GOES
            );
        }
        gz = download::fetch(&source.mirror, remote, &source.dir)?;
    }
    let bytes = decompress_once(&gz, name, kind)?;
    Ok(DataFile { path: gz, bytes })
}

/// What to do without the data: named in every "data not found" error.
pub const WHERE_THE_DATA_GOES: &str = "put the four files train-images-idx3-ubyte.gz, \
     train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz \
     (or the same without .gz) in one directory and pass it as --data-dir DIR or \
     SOFTREG_DATA_DIR=DIR";

/// The bytes of a whole raw data file: mapped when the file is read-only,
/// else read into memory.
///
/// A mapped file that another process truncates while we train kills this
/// process with SIGBUS at the next read of a page that is gone; a private
/// copy cannot change under us. Read-only files (no write permission for
/// anyone, like the shared dataset and the copies [`decompress_once`]
/// makes) are mapped, which costs no copy; a writable file, which anyone
/// with access may rewrite at any moment, is read once into memory (47 MB
/// for the training images, about as long as the map's read-ahead).
fn map(path: &Path) -> Result<Bytes> {
    let file = regular_file::open(path)?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    let len = meta.len();
    if len == 0 {
        // Mapping zero bytes is an error on some systems; an empty file is
        // simply empty, and the IDX parser explains why that is wrong.
        return Ok(Bytes::Owned(Vec::new()));
    }
    if !meta.permissions().readonly() {
        let mut bytes = Vec::with_capacity(len as usize);
        // Bounded by the length seen now: a file that grows is read as it was.
        file.take(len)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return Ok(Bytes::Owned(bytes));
    }
    // `populate` faults the whole file in up front (MAP_POPULATE): training
    // reads it in random order, and 13,000 separate page faults in the
    // first epoch cost more than one sequential read-ahead.
    // SAFETY: the map is read-only and private to this process, and the file
    // has no write permission, so only its owner changing that first (or
    // root) could truncate or rewrite it while we train on it; that is the
    // one case left in which a map can fail under us (docs/reliability.md).
    let map = unsafe { MmapOptions::new().populate().map(&file) }
        .with_context(|| format!("cannot map {}", path.display()))?;
    Ok(Bytes::Mapped(map))
}

/// Returns the raw bytes of `gz`, decompressing it at most once: into
/// `name` beside it, or, where that directory is read-only, into the cache
/// directory under a name that includes the `.gz` file's SHA-256.
fn decompress_once(gz: &Path, name: &str, kind: IdxKind) -> Result<Bytes> {
    let dir = gz.parent().unwrap_or(Path::new("."));
    if is_writable(dir) {
        let raw = dir.join(name);
        console::err(&format!(
            "decompressing {} into {}",
            gz.display(),
            raw.display()
        ));
        write_atomically(&raw, |out| gunzip_bounded(gz, kind, out))?;
        make_read_only(&raw);
        return map(&raw);
    }

    let cache = cache_dir();
    if let Some(cache) = &cache {
        // One line per process, not one per file.
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            console::err(&format!(
                "{} is read-only: using decompressed copies in {}",
                dir.display(),
                cache.display()
            ));
        });
    }
    // The copy this very `.gz` was last decompressed into, if it is unchanged
    // since: hashing 30 MB of gzip on every run would cost more than the
    // training's first epoch.
    let identity = fs::metadata(gz).ok().map(|meta| file_identity(&meta));
    let stamp = cache.as_ref().map(|c| c.join(format!("{name}.source")));
    if let (Some(cache), Some(stamp), Some(identity)) = (&cache, &stamp, &identity) {
        if let Some(digest) = stamped_digest(stamp, identity) {
            let raw = cached_copy(cache, name, &digest);
            if regular_file::probe(&raw).ok().flatten().is_some() {
                return map(&raw);
            }
        }
    }
    let compressed = regular_file::read_at_most(gz, MAX_DECOMPRESSED_LEN, "gzip data file")?;
    let digest = download::sha256_hex(&compressed);
    if let Some(cache) = cache {
        let raw = cached_copy(&cache, name, &digest);
        if !raw.exists() {
            let made = fs::create_dir_all(&cache)
                .map_err(anyhow::Error::from)
                .and_then(|()| write_atomically(&raw, |out| gunzip_bounded(gz, kind, out)));
            match made {
                Ok(()) => make_read_only(&raw),
                // A bad `.gz` is the user's problem, whatever the cache does.
                Err(e) if e.downcast_ref::<DataError>().is_some() => return Err(e),
                Err(e) => {
                    console::err(&format!(
                        "cannot use the cache ({e:#}); decompressing in memory"
                    ));
                    return gunzip_to_vec(gz, kind);
                }
            }
        }
        if let (Some(stamp), Some(identity)) = (&stamp, &identity) {
            // Only a shortcut for the next run: without it that run hashes.
            let _ = write_atomically(stamp, |out| Ok(writeln!(out, "{identity}\n{digest}")?));
        }
        return map(&raw);
    }
    gunzip_to_vec(gz, kind)
}

/// Where the cache keeps the decompressed `name` of the `.gz` whose
/// SHA-256 is `digest`.
fn cached_copy(cache: &Path, name: &str, digest: &str) -> PathBuf {
    cache.join(format!("{name}-{}", &digest[..16]))
}

/// What tells that a file's bytes have not changed without reading them,
/// as `make` and git's index judge it: its device and inode (so another
/// file of the same name is another file), length and modification time
/// to the nanosecond.
fn file_identity(meta: &fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        format!("{}:{}", meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let inode = "-";
    format!("{inode} {} {modified}", meta.len())
}

/// The SHA-256 recorded in `stamp` for a file of identity `identity`, if
/// the stamp is for that file as it is now.
fn stamped_digest(stamp: &Path, identity: &str) -> Option<String> {
    let text = regular_file::read_at_most(stamp, 4096, "cache stamp").ok()?;
    let text = String::from_utf8(text).ok()?;
    let (stamped, digest) = text.trim_end().split_once('\n')?;
    let is_hex = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    (stamped == identity && is_hex).then(|| digest.to_string())
}

/// A problem with the data itself (as opposed to with where we put copies).
#[derive(Debug)]
struct DataError(String);

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DataError {}

fn gunzip_to_vec(gz: &Path, kind: IdxKind) -> Result<Bytes> {
    let mut out = Vec::new();
    gunzip_bounded(gz, kind, &mut out)?;
    Ok(Bytes::Owned(out))
}

/// Decompresses the IDX file `gz` into `out`, reading exactly as many bytes
/// as its header promises and checking that the stream ends right there
/// (which also makes the decoder verify the gzip CRC).
fn gunzip_bounded(gz: &Path, kind: IdxKind, out: &mut dyn Write) -> Result<()> {
    let shown = gz.display();
    let file = regular_file::open(gz)?;
    let mut decoder = GzDecoder::new(BufReader::new(file));
    let corrupt = |e: io::Error| DataError(format!("{shown}: not a valid gzip file: {e}"));

    let header_len = match kind {
        IdxKind::Labels => 8,
        IdxKind::Images => 16,
    };
    let mut head = [0u8; 16];
    let got = read_up_to(&mut decoder, &mut head[..header_len]).map_err(corrupt)?;
    let header =
        idx::parse_header(&head[..got], kind).map_err(|e| DataError(format!("{shown}: {e}")))?;
    let data_len = header
        .data_len()
        .ok_or_else(|| DataError(format!("{shown}: {}", IdxError::SizeOverflow)))?;
    // Checked before anything is written, so a refused file leaves nothing.
    // Saturating: three u32 dimensions can multiply to just under 2^64.
    let promised = (data_len as u64).saturating_add(got as u64);
    if promised > MAX_DECOMPRESSED_LEN {
        return Err(DataError(format!(
            "{shown}: its IDX header promises {promised} bytes decompressed, \
             more than the {MAX_DECOMPRESSED_LEN} (256 MiB) this program accepts; \
             Fashion-MNIST's largest file is 47,040,016 bytes"
        ))
        .into());
    }
    out.write_all(&head[..got]).map_err(write_error)?;

    let mut data = (&mut decoder).take(data_len as u64);
    let copied = copy(&mut data, out).map_err(|e| match e {
        CopyError::Read(e) => corrupt(e).into(),
        CopyError::Write(e) => write_error(e),
    })?;
    if copied != data_len as u64 {
        let e = IdxError::LengthMismatch {
            expected: data_len,
            found: copied as usize,
        };
        return Err(DataError(format!("{shown}: {e}")).into());
    }
    let mut extra = [0u8; 1];
    match decoder.read(&mut extra) {
        Ok(0) => Ok(()),
        Ok(_) => Err(DataError(format!(
            "{shown}: holds more data than the {data_len} bytes its IDX header promises"
        ))
        .into()),
        Err(e) => Err(corrupt(e).into()),
    }
}

/// The writer's errors name the file already ([`write_atomically`]).
fn write_error(e: io::Error) -> anyhow::Error {
    anyhow!("{e}")
}

/// Takes the write permission away from a decompressed copy we made, so
/// that it is mapped rather than copied ([`map`]). Best effort.
fn make_read_only(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let mut permissions = meta.permissions();
        permissions.set_readonly(true);
        let _ = fs::set_permissions(path, permissions);
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// `io::copy` that tells read errors (corrupt input) from write errors
/// (full disk), which deserve different messages.
fn copy(reader: &mut impl Read, writer: &mut dyn Write) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        writer.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// Whether we may create files in `dir`.
///
/// A directory without write permission bits counts as read-only even for
/// root, who could write there anyway: CI runs as root on a copy of the data
/// that is meant to stay untouched.
fn is_writable(dir: &Path) -> bool {
    match fs::metadata(dir) {
        Ok(meta) if meta.permissions().readonly() => false,
        Ok(_) => {
            let probe = dir.join(format!(".softreg-probe-{}", std::process::id()));
            let ok = File::create(&probe).is_ok();
            let _ = fs::remove_file(&probe);
            ok
        }
        Err(_) => false,
    }
}

/// `$XDG_CACHE_HOME/softreg`, else `$HOME/.cache/softreg`.
fn cache_dir() -> Option<PathBuf> {
    let non_empty = |v: std::ffi::OsString| (!v.is_empty()).then(|| PathBuf::from(v));
    std::env::var_os("XDG_CACHE_HOME")
        .and_then(non_empty)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(non_empty)
                .map(|h| h.join(".cache"))
        })
        .map(|c| c.join("softreg"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    /// A reader that fails once with the given error, then reads its bytes.
    struct Flaky(Option<io::ErrorKind>, &'static [u8]);

    impl Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.take() {
                Some(kind) => Err(kind.into()),
                None => self.1.read(buf),
            }
        }
    }

    /// A stamp names the digest only for the file it was written for, and
    /// only as 64 hex digits (a cached copy's name is cut from it).
    #[test]
    fn a_stamp_is_believed_only_for_its_file_and_a_whole_digest() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = dir.path().join("stamp");
        let digest = "0123456789abcdef".repeat(4);
        let said = |text: &str, identity: &str| {
            fs::write(&stamp, text).unwrap();
            stamped_digest(&stamp, identity)
        };
        let good = format!("1:2 100 7\n{digest}\n");
        assert_eq!(said(&good, "1:2 100 7"), Some(digest.clone()));
        assert_eq!(said(&good, "1:2 100 8"), None);
        assert_eq!(said("1:2 100 7\n0123abcd\n", "1:2 100 7"), None);
        let not_hex = format!("1:2 100 7\n{}\n", "g".repeat(64));
        assert_eq!(said(&not_hex, "1:2 100 7"), None);
    }

    /// A decompressed copy is made read-only, so that it is mapped.
    #[test]
    fn a_decompressed_copy_is_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("raw");
        fs::write(&copy, b"x").unwrap();
        make_read_only(&copy);
        assert!(fs::metadata(&copy).unwrap().permissions().readonly());
    }

    /// `read_up_to` also retries an interrupted read, and stops at the end.
    #[test]
    fn read_up_to_retries_an_interrupted_read() {
        let mut buf = [0u8; 8];
        let n = read_up_to(
            &mut Flaky(Some(io::ErrorKind::Interrupted), b"hello"),
            &mut buf,
        )
        .unwrap();
        assert_eq!(&buf[..n], b"hello");
    }

    /// A read cut short by a signal (`EINTR`) is tried again; any other
    /// read error is the input's, and a write error the output's.
    #[test]
    fn copy_retries_an_interrupted_read_and_tells_errors_apart() {
        let mut out = Vec::new();
        let interrupted = copy(
            &mut Flaky(Some(io::ErrorKind::Interrupted), b"hello"),
            &mut out,
        );
        assert!(matches!(interrupted, Ok(5)) && out == b"hello");
        let corrupt = copy(&mut Flaky(Some(io::ErrorKind::InvalidData), b"x"), &mut out);
        assert!(matches!(corrupt, Err(CopyError::Read(_))));
        let mut full = io::Cursor::new([0u8; 2]);
        let no_room = copy(&mut Flaky(None, b"hello"), &mut full);
        assert!(matches!(no_room, Err(CopyError::Write(_))));
    }

    fn labels_file(labels: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, 8, 1];
        bytes.extend((labels.len() as u32).to_be_bytes());
        bytes.extend(labels);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gunzip_is_bounded_by_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("l.gz");
        fs::write(&gz, gzip(&labels_file(&[1, 2, 3]))).unwrap();
        let mut out = Vec::new();
        gunzip_bounded(&gz, IdxKind::Labels, &mut out).unwrap();
        assert_eq!(out, labels_file(&[1, 2, 3]));

        // A header promising 2 labels followed by 3: refused, not inflated.
        let mut long = labels_file(&[1, 2, 3]);
        long[7] = 2;
        fs::write(&gz, gzip(&long)).unwrap();
        let err = gunzip_bounded(&gz, IdxKind::Labels, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("more data"), "{err}");

        let mut short = labels_file(&[1, 2, 3]);
        short[7] = 9;
        fs::write(&gz, gzip(&short)).unwrap();
        let err = gunzip_bounded(&gz, IdxKind::Labels, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn gunzip_refuses_a_header_promising_more_than_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("l.gz");
        // A 13-byte label file whose header promises `count` labels: the cap
        // is on the whole decompressed file, the 8-byte header included.
        let promising = |count: u64| {
            let mut file = labels_file(&[1, 2, 3, 4, 5]);
            file[4..8].copy_from_slice(&u32::try_from(count).unwrap().to_be_bytes());
            fs::write(&gz, gzip(&file)).unwrap();
        };

        // One byte over the cap: refused as bad data, naming the file and
        // the cap, before a single byte is written.
        promising(MAX_DECOMPRESSED_LEN - 8 + 1);
        let mut out = Vec::new();
        let err = gunzip_bounded(&gz, IdxKind::Labels, &mut out).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("l.gz"), "{msg}");
        assert!(
            msg.contains(&format!("promises {}", MAX_DECOMPRESSED_LEN + 1)),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("than the {MAX_DECOMPRESSED_LEN}")),
            "{msg}"
        );
        assert!(err.downcast_ref::<DataError>().is_some(), "{err:?}");
        assert!(out.is_empty(), "wrote {} bytes", out.len());

        // Dimensions whose product is 2^64 - 1, just short of overflowing
        // usize: refused the same way, and the header length added to that
        // does not overflow either.
        let mut images = vec![0, 0, 8, 3];
        for d in [257 * 6_700_417u32, 641 * 65_537, 255] {
            images.extend(d.to_be_bytes());
        }
        fs::write(&gz, gzip(&images)).unwrap();
        let err = gunzip_bounded(&gz, IdxKind::Images, &mut out).unwrap_err();
        assert!(err.to_string().contains("more than the"), "{err}");
        assert!(out.is_empty());

        // Exactly the cap is allowed: decompression starts, and then finds
        // the file truncated.
        promising(MAX_DECOMPRESSED_LEN - 8);
        let err = gunzip_bounded(&gz, IdxKind::Labels, &mut out).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
