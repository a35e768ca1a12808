//! The CLI's .gz path: `SplitFiles::open` on a data directory whose test
//! images (or labels) are a fuzzed `.gz` file, decompressed beside it
//! exactly as `softreg train` does. Half the inputs are raw gzip bytes;
//! the other half are compressed here first (with a level from the input), so
//! that valid gzip streams carrying damaged IDX data are as common as damaged
//! gzip. Asserts: a file that opens has exactly the length its IDX header
//! promises (decompression is bounded by that promise); one that does not
//! leaves no decompressed or temporary file behind; nothing panics.
#![no_main]

use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use softreg::idx::{self, IdxKind};
use softreg_cli::dataset::{Source, Split, SplitFiles};
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

const IMAGES: &str = "t10k-images-idx3-ubyte";
const LABELS: &str = "t10k-labels-idx1-ubyte";

/// A private data directory on tmpfs for this process.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("softreg-fuzz-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn one_image() -> Vec<u8> {
    let mut f = idx::IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [1u32, 28, 28] {
        f.extend(d.to_be_bytes());
    }
    f.extend((0..784).map(|i| (i % 256) as u8));
    f
}

fn one_label() -> Vec<u8> {
    let mut f = idx::LABELS_MAGIC.to_be_bytes().to_vec();
    f.extend(1u32.to_be_bytes());
    f.push(3);
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = dir();
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    // Which file is fuzzed; the other is a valid raw file.
    let (kind, fuzzed, other, other_bytes) = if mode & 1 == 0 {
        (IdxKind::Images, IMAGES, LABELS, one_label())
    } else {
        (IdxKind::Labels, LABELS, IMAGES, one_image())
    };
    let compressed_here = mode & 2 != 0;
    let gz = if compressed_here {
        let mut enc = GzEncoder::new(Vec::new(), Compression::new(u32::from(mode >> 2) % 10));
        enc.write_all(rest).unwrap();
        enc.finish().unwrap()
    } else {
        rest.to_vec()
    };
    std::fs::write(dir.join(other), &other_bytes).unwrap();
    std::fs::write(dir.join(format!("{fuzzed}.gz")), &gz).unwrap();

    let source = Source::new(Some(dir), true, None);
    match SplitFiles::open(&source, Split::Test) {
        Ok(files) => {
            let file = match kind {
                IdxKind::Images => &files.images,
                IdxKind::Labels => &files.labels,
            };
            let bytes: &[u8] = &file.bytes;
            // Exactly the promised length: header plus the data it promises.
            let header = idx::parse_header(bytes, kind).expect("opened file has a header");
            assert_eq!(header.file_len(), Some(bytes.len()));
            if compressed_here {
                assert_eq!(bytes, rest, "decompressed bytes differ from the original");
            } else {
                assert!(
                    bytes.len() <= 1032 * gz.len() + 64,
                    "more out than deflate can make"
                );
            }
            // The decompressed copy on disk is the same bytes.
            assert_eq!(std::fs::read(dir.join(fuzzed)).unwrap(), bytes);
            // Checking the pair never panics, whatever it finds.
            if let Err(e) = files.examples() {
                assert!(!format!("{e:#}").is_empty());
            }
        }
        Err(e) => {
            assert!(!format!("{e:#}").is_empty());
            // Nothing half-written is left: only the two files we made.
            let mut left: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            left.sort();
            let mut want = vec![other.to_string(), format!("{fuzzed}.gz")];
            want.sort();
            assert_eq!(left, want, "a failed decompression left files behind");
        }
    }
});
