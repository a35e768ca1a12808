//! The PNG reader behind `softreg predict`: `png_input::read_as_fashion_mnist`
//! on a fuzzed file. PNG chunks carry CRCs that random mutations almost never
//! get right, so before each run the input's chunk CRCs are recomputed (when
//! it starts with the PNG signature): the decoder then sees chunk streams
//! that are well-formed on the outside and arbitrary inside, dimensions
//! included. Asserts: no panic, no hang (libFuzzer's -timeout) and no
//! unbounded allocation (-rss_limit_mb / -malloc_limit_mb).
#![no_main]

use libfuzzer_sys::fuzz_target;
use softreg_cli::png_input;
use std::path::PathBuf;
use std::sync::OnceLock;

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("softreg-fuzz-png-{}.png", std::process::id()))
    })
}

/// CRC-32 (IEEE), as PNG chunks use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Rewrites the CRC of every complete chunk after the signature.
fn fix_crcs(data: &mut [u8]) {
    if !data.starts_with(&SIGNATURE) {
        return;
    }
    let mut at = 8;
    while at + 12 <= data.len() {
        let len = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(len) else {
            return;
        };
        if end + 4 > data.len() {
            return;
        }
        let crc = crc32(&data[at + 4..end]);
        data[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut png = data.to_vec();
    fix_crcs(&mut png);
    std::fs::write(path(), &png).unwrap();
    match png_input::read_as_fashion_mnist(path()) {
        Ok(image) => assert_eq!(image.len(), 784),
        Err(e) => assert!(!format!("{e:#}").is_empty()),
    }
});
