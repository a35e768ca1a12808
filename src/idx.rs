//! The IDX file format of MNIST and Fashion-MNIST, parsed from a byte slice.
//!
//! An IDX file is a 4-byte magic number, one big-endian `u32` per dimension
//! and then the data, row-major:
//!
//! ```text
//! 00 00 08 01 | count                  | count labels, one u8 each
//! 00 00 08 03 | count | rows | cols    | count images, rows*cols u8 each
//! ```
//!
//! The third magic byte is the element type (`0x08` = unsigned byte) and the
//! fourth the number of dimensions. Parsing borrows the data (no copy, no
//! allocation) and checks everything a damaged or hostile file could get
//! wrong, with overflow-safe arithmetic: no input makes these functions panic.

use core::fmt;

/// Magic number of a label file: unsigned bytes, one dimension.
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Magic number of an image file: unsigned bytes, three dimensions.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;

/// What a parsed IDX header describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxKind {
    /// `0x00000801`: a vector of `u8` labels.
    Labels,
    /// `0x00000803`: a stack of `u8` images.
    Images,
}

impl IdxKind {
    /// The magic number that starts a file of this kind.
    pub const fn magic(self) -> u32 {
        match self {
            IdxKind::Labels => LABELS_MAGIC,
            IdxKind::Images => IMAGES_MAGIC,
        }
    }

    const fn ndims(self) -> usize {
        match self {
            IdxKind::Labels => 1,
            IdxKind::Images => 3,
        }
    }
}

/// The header of an IDX file: its kind and its dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdxHeader {
    /// Labels or images.
    pub kind: IdxKind,
    /// The dimensions; only the first [`IdxHeader::ndims`] are meaningful
    /// (`[count, 0, 0]` for labels, `[count, rows, cols]` for images).
    pub dims: [u32; 3],
}

impl IdxHeader {
    /// Number of dimensions (1 for labels, 3 for images).
    pub const fn ndims(&self) -> usize {
        self.kind.ndims()
    }

    /// Length of the header in bytes: the magic and one `u32` per dimension.
    pub const fn header_len(&self) -> usize {
        4 + 4 * self.ndims()
    }

    /// Number of data bytes the header promises (the product of the
    /// dimensions), or `None` if that overflows `usize`.
    pub fn data_len(&self) -> Option<usize> {
        self.dims[..self.ndims()]
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
    }

    /// Length of the whole file the header promises, or `None` on overflow.
    /// A reader decompressing a `.gz` file can stop at this many bytes, so a
    /// gzip bomb cannot make it inflate without bound.
    pub fn file_len(&self) -> Option<usize> {
        self.data_len()?.checked_add(self.header_len())
    }
}

/// Every way an IDX file can be wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxError {
    /// The file ends before its header does.
    TooShort {
        /// Bytes in the file.
        found: usize,
        /// Bytes the header needs.
        needed: usize,
    },
    /// The magic number is not the one expected.
    BadMagic {
        /// The magic number in the file.
        found: u32,
        /// The magic number wanted.
        expected: u32,
    },
    /// The dimensions multiply to more than this machine can address.
    SizeOverflow,
    /// The data is not exactly as long as the dimensions say: the file is
    /// truncated (`found < expected`) or has trailing bytes.
    LengthMismatch {
        /// Data bytes the header promises.
        expected: usize,
        /// Data bytes present.
        found: usize,
    },
    /// A label is not a valid class index.
    LabelOutOfRange {
        /// Position of the label in the file.
        index: usize,
        /// The label's value.
        label: u8,
        /// Number of classes (valid labels are `0..classes`).
        classes: usize,
    },
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IdxError::TooShort { found, needed } => write!(
                f,
                "file is too short: {found} bytes, an IDX header needs {needed}"
            ),
            IdxError::BadMagic { found, expected } => {
                let what = match expected {
                    LABELS_MAGIC => "an IDX label file",
                    _ => "an IDX image file",
                };
                write!(
                    f,
                    "magic number {found:#010x} is not {what} (expected {expected:#010x})"
                )
            }
            IdxError::SizeOverflow => write!(f, "the header's dimensions overflow"),
            IdxError::LengthMismatch { expected, found } if found < expected => write!(
                f,
                "truncated: {found} data bytes, the header promises {expected}"
            ),
            IdxError::LengthMismatch { expected, found } => write!(
                f,
                "{} trailing bytes after the {expected} data bytes the header promises",
                found - expected
            ),
            IdxError::LabelOutOfRange {
                index,
                label,
                classes,
            } => write!(
                f,
                "label {label} at index {index} is not a class (expected 0..{classes})"
            ),
        }
    }
}

impl core::error::Error for IdxError {}

/// Reads the header of an IDX file of the given kind.
pub fn parse_header(bytes: &[u8], kind: IdxKind) -> Result<IdxHeader, IdxError> {
    let needed = 4 + 4 * kind.ndims();
    let Some(header) = bytes.get(..needed) else {
        // A file too short for the header but with the wrong magic is
        // reported as the wrong kind of file: the more useful message.
        if let Some(magic) = bytes.get(..4) {
            let found = u32::from_be_bytes([magic[0], magic[1], magic[2], magic[3]]);
            if found != kind.magic() {
                return Err(IdxError::BadMagic {
                    found,
                    expected: kind.magic(),
                });
            }
        }
        return Err(IdxError::TooShort {
            found: bytes.len(),
            needed,
        });
    };
    let word = |i: usize| {
        u32::from_be_bytes([
            header[4 * i],
            header[4 * i + 1],
            header[4 * i + 2],
            header[4 * i + 3],
        ])
    };
    if word(0) != kind.magic() {
        return Err(IdxError::BadMagic {
            found: word(0),
            expected: kind.magic(),
        });
    }
    let mut dims = [0u32; 3];
    for (i, d) in dims.iter_mut().enumerate().take(kind.ndims()) {
        *d = word(i + 1);
    }
    let header = IdxHeader { kind, dims };
    header.data_len().ok_or(IdxError::SizeOverflow)?;
    Ok(header)
}

/// Splits a whole IDX file into its header and its data, checking that the
/// data is exactly as long as the header promises.
fn parse(bytes: &[u8], kind: IdxKind) -> Result<(IdxHeader, &[u8]), IdxError> {
    let header = parse_header(bytes, kind)?;
    let data = &bytes[header.header_len()..];
    let expected = header.data_len().ok_or(IdxError::SizeOverflow)?;
    if data.len() != expected {
        return Err(IdxError::LengthMismatch {
            expected,
            found: data.len(),
        });
    }
    Ok((header, data))
}

/// A label file, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct IdxLabels<'a> {
    /// One label per example.
    pub labels: &'a [u8],
}

impl IdxLabels<'_> {
    /// Checks that every label is below `classes`.
    pub fn check_classes(&self, classes: usize) -> Result<(), IdxError> {
        match self
            .labels
            .iter()
            .position(|&label| usize::from(label) >= classes)
        {
            None => Ok(()),
            Some(index) => Err(IdxError::LabelOutOfRange {
                index,
                label: self.labels[index],
                classes,
            }),
        }
    }
}

/// An image file, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct IdxImages<'a> {
    /// Number of images.
    pub count: usize,
    /// Rows of each image.
    pub rows: usize,
    /// Columns of each image.
    pub cols: usize,
    /// All pixels, image after image, each row-major.
    pub pixels: &'a [u8],
}

impl<'a> IdxImages<'a> {
    /// Pixels in one image.
    pub const fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `i`, row-major.
    ///
    /// # Panics
    /// If `i >= self.count`.
    pub fn image(&self, i: usize) -> &'a [u8] {
        let len = self.image_len();
        &self.pixels[i * len..(i + 1) * len]
    }

    /// The images as fixed-size arrays, if each has exactly `N` pixels.
    pub fn as_arrays<const N: usize>(&self) -> Option<&'a [[u8; N]]> {
        if self.image_len() != N || N == 0 {
            return None;
        }
        // `[u8; N]` has alignment 1, so this cast cannot fail for alignment;
        // the length is a multiple of N by construction.
        bytemuck::try_cast_slice(self.pixels).ok()
    }
}

/// Parses a label file (`0x00000801`).
pub fn parse_labels(bytes: &[u8]) -> Result<IdxLabels<'_>, IdxError> {
    let (_, labels) = parse(bytes, IdxKind::Labels)?;
    Ok(IdxLabels { labels })
}

/// Parses an image file (`0x00000803`).
pub fn parse_images(bytes: &[u8]) -> Result<IdxImages<'_>, IdxError> {
    let (header, pixels) = parse(bytes, IdxKind::Images)?;
    let [count, rows, cols] = header.dims.map(|d| d as usize);
    // With no images the data is empty whatever `rows * cols` is, and that
    // product can overflow a 32-bit `usize` (a microcontroller's):
    // `image_len` must never overflow, so refuse such a header.
    rows.checked_mul(cols).ok_or(IdxError::SizeOverflow)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_file(count: u32, data: &[u8]) -> ([u8; 64], usize) {
        let mut buf = [0u8; 64];
        buf[..4].copy_from_slice(&LABELS_MAGIC.to_be_bytes());
        buf[4..8].copy_from_slice(&count.to_be_bytes());
        buf[8..8 + data.len()].copy_from_slice(data);
        (buf, 8 + data.len())
    }

    #[test]
    fn parses_labels_and_images() {
        let (buf, len) = labels_file(3, &[1, 2, 9]);
        assert_eq!(parse_labels(&buf[..len]).unwrap().labels, &[1, 2, 9]);

        let mut img = [0u8; 16 + 2 * 6];
        img[..4].copy_from_slice(&IMAGES_MAGIC.to_be_bytes());
        img[4..8].copy_from_slice(&2u32.to_be_bytes());
        img[8..12].copy_from_slice(&2u32.to_be_bytes());
        img[12..16].copy_from_slice(&3u32.to_be_bytes());
        for (i, p) in img[16..].iter_mut().enumerate() {
            *p = i as u8;
        }
        let images = parse_images(&img).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (2, 2, 3));
        assert_eq!(images.image(1), &[6, 7, 8, 9, 10, 11]);
        let arrays = images.as_arrays::<6>().unwrap();
        assert_eq!(arrays[1][0], 6);
        assert!(images.as_arrays::<5>().is_none());
    }

    #[test]
    fn rejects_every_kind_of_damage() {
        let (buf, len) = labels_file(3, &[1, 2, 9]);
        // Empty, and shorter than the header.
        assert_eq!(
            parse_labels(&[]).unwrap_err(),
            IdxError::TooShort {
                found: 0,
                needed: 8
            }
        );
        assert_eq!(
            parse_labels(&buf[..6]).unwrap_err(),
            IdxError::TooShort {
                found: 6,
                needed: 8
            }
        );
        // Truncated data and trailing data.
        assert_eq!(
            parse_labels(&buf[..len - 1]).unwrap_err(),
            IdxError::LengthMismatch {
                expected: 3,
                found: 2
            }
        );
        assert_eq!(
            parse_labels(&buf[..len + 1]).unwrap_err(),
            IdxError::LengthMismatch {
                expected: 3,
                found: 4
            }
        );
        // A label file given where images are expected, even a short one.
        assert!(matches!(
            parse_images(&buf[..len]).unwrap_err(),
            IdxError::BadMagic {
                found: LABELS_MAGIC,
                expected: IMAGES_MAGIC
            }
        ));
        assert!(matches!(
            parse_images(&buf[..5]).unwrap_err(),
            IdxError::BadMagic { .. }
        ));
        // Out-of-range labels.
        let labels = parse_labels(&buf[..len]).unwrap();
        assert_eq!(
            labels.check_classes(9).unwrap_err(),
            IdxError::LabelOutOfRange {
                index: 2,
                label: 9,
                classes: 9
            }
        );
        assert!(labels.check_classes(10).is_ok());
    }

    /// Every message names what is wrong with the numbers that show it.
    #[test]
    fn errors_read_as_one_line_with_their_numbers() {
        use std::string::ToString;
        let cases = [
            (
                IdxError::TooShort {
                    found: 5,
                    needed: 16,
                },
                "file is too short: 5 bytes, an IDX header needs 16",
            ),
            (
                IdxError::BadMagic {
                    found: 0x0000_0803,
                    expected: LABELS_MAGIC,
                },
                "magic number 0x00000803 is not an IDX label file (expected 0x00000801)",
            ),
            (
                IdxError::BadMagic {
                    found: 0x1f8b_0808,
                    expected: IMAGES_MAGIC,
                },
                "magic number 0x1f8b0808 is not an IDX image file (expected 0x00000803)",
            ),
            (IdxError::SizeOverflow, "the header's dimensions overflow"),
            (
                IdxError::LengthMismatch {
                    expected: 784,
                    found: 700,
                },
                "truncated: 700 data bytes, the header promises 784",
            ),
            (
                IdxError::LengthMismatch {
                    expected: 784,
                    found: 790,
                },
                "6 trailing bytes after the 784 data bytes the header promises",
            ),
            (
                IdxError::LengthMismatch {
                    expected: 784,
                    found: 784,
                },
                "0 trailing bytes after the 784 data bytes the header promises",
            ),
            (
                IdxError::LabelOutOfRange {
                    index: 3,
                    label: 12,
                    classes: 10,
                },
                "label 12 at index 3 is not a class (expected 0..10)",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn huge_dimensions_do_not_overflow_or_panic() {
        let mut img = [0u8; 16];
        img[..4].copy_from_slice(&IMAGES_MAGIC.to_be_bytes());
        for i in 1..4 {
            img[4 * i..4 * i + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        }
        // (2^32 - 1)^3 is about 2^96: it overflows `usize` on every target.
        assert_eq!(parse_images(&img).unwrap_err(), IdxError::SizeOverflow);
    }

    fn images_header(count: u32, rows: u32, cols: u32) -> [u8; 16] {
        let mut img = [0u8; 16];
        img[..4].copy_from_slice(&IMAGES_MAGIC.to_be_bytes());
        for (i, d) in [count, rows, cols].into_iter().enumerate() {
            img[4 + 4 * i..8 + 4 * i].copy_from_slice(&d.to_be_bytes());
        }
        img
    }

    #[test]
    fn count_rows_cols_overflowing_usize_are_refused_on_every_width() {
        // 2^16 * 2^24 * 2^24 = 2^64, which a wrapping multiply would take
        // for 0: exactly the data this 16-byte file has. It must be refused
        // as an overflow, never parsed into images of 2^48 pixels.
        let img = images_header(1 << 16, 1 << 24, 1 << 24);
        assert_eq!(
            parse_header(&img, IdxKind::Images).unwrap_err(),
            IdxError::SizeOverflow
        );
        assert_eq!(parse_images(&img).unwrap_err(), IdxError::SizeOverflow);
        // (2^32 - 1)^2 * 2, about 2^65: only the last multiply, by `cols`,
        // overflows.
        let img = images_header(u32::MAX, u32::MAX, 2);
        assert_eq!(parse_images(&img).unwrap_err(), IdxError::SizeOverflow);

        // 60,000 images of 65536 x 65536 pixels: 2^48 * 60,000 bytes fits in
        // a 64-bit `usize` and is refused for the missing data; on a 32-bit
        // one it overflows.
        let img = images_header(60_000, 1 << 16, 1 << 16);
        let want = match 60_000usize
            .checked_mul(1 << 16)
            .and_then(|n| n.checked_mul(1 << 16))
        {
            Some(expected) => IdxError::LengthMismatch { expected, found: 0 },
            None => IdxError::SizeOverflow,
        };
        assert_eq!(parse_images(&img).unwrap_err(), want);

        // No images of u32::MAX x u32::MAX pixels: no data, so the file is
        // the right length whatever `rows * cols` is, and that product is
        // what `parse_images` itself must guard. On 64-bit it fits and the
        // file parses; on 32-bit it overflows and is refused.
        let img = images_header(0, u32::MAX, u32::MAX);
        match (u32::MAX as usize).checked_mul(u32::MAX as usize) {
            Some(len) => {
                let images = parse_images(&img).unwrap();
                assert_eq!(images.count, 0);
                assert_eq!(images.image_len(), len);
                assert!(images.as_arrays::<784>().is_none());
            }
            None => assert_eq!(parse_images(&img).unwrap_err(), IdxError::SizeOverflow),
        }
    }

    #[test]
    fn header_bounds_the_file_length() {
        let (buf, _) = labels_file(3, &[1, 2, 9]);
        let header = parse_header(&buf, IdxKind::Labels).unwrap();
        assert_eq!(header.file_len(), Some(11));
    }
}
