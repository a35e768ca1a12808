//! A PNG read as a Fashion-MNIST image: what `softreg predict` classifies.
//!
//! Any 8-bit grayscale or RGB PNG (with or without alpha, palette images
//! too) is turned into what the dataset looks like: 28x28 grayscale, the
//! garment light on a dark background, centred in a square.

use anyhow::{anyhow, bail, Result};
use softreg::fashion_mnist::{PIXELS, SIDE};
use std::io::BufReader;
use std::path::Path;

/// A decoded image as 8-bit luminance.
struct Gray {
    width: usize,
    height: usize,
    pixels: Vec<f32>,
}

/// Reads a PNG and converts it to a Fashion-MNIST-like 28x28 image.
pub fn read_as_fashion_mnist(path: &Path) -> Result<[u8; PIXELS]> {
    let gray = read_gray(path)?;
    Ok(to_fashion_mnist(&gray))
}

/// Largest image side `predict` accepts: far more than a photo of one
/// garment needs, and at most 64 MB of decoded RGBA.
const MAX_SIDE: u32 = 4096;

fn read_gray(path: &Path) -> Result<Gray> {
    let shown = path.display();
    let file = crate::regular_file::open(path)?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    // Palettes become RGB, 1/2/4-bit gray becomes 8-bit, 16-bit is cut to 8.
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| anyhow!("{shown}: not a readable PNG: {e}"))?;
    // Refuse giant images before allocating their frame: the header alone
    // can claim billions of pixels (found by fuzzing), and squaring up a
    // very long thin image costs time quadratic in its longer side.
    let (width, height) = (reader.info().width, reader.info().height);
    if width > MAX_SIDE || height > MAX_SIDE {
        bail!("{shown}: image is {width}x{height}, larger than {MAX_SIDE} pixels a side");
    }
    // `png` 0.18 panics expanding a palette that is not whole RGB entries
    // (found by fuzzing), so such a file is refused here first.
    if let Some(palette) = &reader.info().palette {
        if palette.len() % 3 != 0 || palette.len() > 3 * 256 {
            bail!(
                "{shown}: not a readable PNG: its palette is {} bytes, not 1 to 256 RGB entries",
                palette.len()
            );
        }
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| anyhow!("{shown}: image is too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| anyhow!("{shown}: not a readable PNG: {e}"))?;
    let (width, height) = (info.width as usize, info.height as usize);
    if width == 0 || height == 0 {
        bail!("{shown}: image is empty");
    }
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => bail!("{shown}: palette image could not be expanded"),
    };
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| {
            let (luma, alpha) = match *p {
                [g] => (f32::from(g), 255.0),
                [g, a] => (f32::from(g), f32::from(a)),
                [r, g, b] => (luma(r, g, b), 255.0),
                [r, g, b, a, ..] => (luma(r, g, b), f32::from(a)),
                _ => (0.0, 255.0),
            };
            // Transparent parts show the page behind them: white.
            let a = alpha / 255.0;
            luma * a + 255.0 * (1.0 - a)
        })
        .collect();
    Ok(Gray {
        width,
        height,
        pixels,
    })
}

/// ITU-R BT.601 luma, what most tools mean by "convert to grayscale".
fn luma(r: u8, g: u8, b: u8) -> f32 {
    0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
}

/// Makes a photo look like a dataset image: inverted when its background
/// (the border) is light, padded to a square with the background, and
/// area-averaged down (or up) to 28x28.
fn to_fashion_mnist(gray: &Gray) -> [u8; PIXELS] {
    let (w, h) = (gray.width, gray.height);
    let at = |x: usize, y: usize| gray.pixels[y * w + x];
    let border: Vec<f32> = (0..w)
        .flat_map(|x| [at(x, 0), at(x, h - 1)])
        .chain((0..h).flat_map(|y| [at(0, y), at(w - 1, y)]))
        .collect();
    let background = border.iter().sum::<f32>() / border.len() as f32;
    let invert = background > 127.5;
    let value = |x: usize, y: usize| if invert { 255.0 - at(x, y) } else { at(x, y) };
    let fill = if invert {
        255.0 - background
    } else {
        background
    };

    // The square canvas the image is centred in, in source pixels.
    let side = w.max(h) as f64;
    let (x0, y0) = ((side - w as f64) / 2.0, (side - h as f64) / 2.0);
    let cell = side / SIDE as f64;
    let mut out = [0u8; PIXELS];
    for (i, o) in out.iter_mut().enumerate() {
        let (row, col) = ((i / SIDE) as f64, (i % SIDE) as f64);
        // Average the square's area under this output pixel, weighting each
        // source pixel by how much of it the output pixel covers.
        let (left, top) = (col * cell - x0, row * cell - y0);
        let (right, bottom) = (left + cell, top + cell);
        let mut sum = 0.0f64;
        let mut area = 0.0f64;
        let mut y = top.floor();
        while y < bottom {
            let dy = (bottom.min(y + 1.0) - top.max(y)).max(0.0);
            let mut x = left.floor();
            while x < right {
                let dx = (right.min(x + 1.0) - left.max(x)).max(0.0);
                let inside = x >= 0.0 && y >= 0.0 && (x as usize) < w && (y as usize) < h;
                let v = if inside {
                    value(x as usize, y as usize)
                } else {
                    fill
                };
                sum += f64::from(v) * dx * dy;
                area += dx * dy;
                x += 1.0;
            }
            y += 1.0;
        }
        *o = if area > 0.0 {
            (sum / area).round().clamp(0.0, 255.0) as u8
        } else {
            0
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_on_light_is_inverted_and_resized() {
        // A 56x56 white page with a black 28x28 square in the middle.
        let mut pixels = vec![255.0f32; 56 * 56];
        for y in 14..42 {
            for x in 14..42 {
                pixels[y * 56 + x] = 0.0;
            }
        }
        let out = to_fashion_mnist(&Gray {
            width: 56,
            height: 56,
            pixels,
        });
        assert_eq!(out[0], 0, "background becomes dark");
        assert_eq!(out[14 * SIDE + 14], 255, "the garment becomes light");
    }

    #[test]
    fn a_dataset_image_is_unchanged() {
        let pixels: Vec<f32> = (0..PIXELS)
            .map(|i| if i % 28 > 10 { 200.0 } else { 0.0 })
            .collect();
        let out = to_fashion_mnist(&Gray {
            width: 28,
            height: 28,
            pixels: pixels.clone(),
        });
        for (a, b) in out.iter().zip(&pixels) {
            assert_eq!(f32::from(*a), *b);
        }
    }

    /// A temporary file holding a PNG of these pixels, colour type and depth.
    fn png_file(
        width: u32,
        height: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        palette: Option<Vec<u8>>,
        data: &[u8],
    ) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut encoder = png::Encoder::new(file.reopen().unwrap(), width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        if let Some(palette) = palette {
            encoder.set_palette(palette);
        }
        encoder
            .write_header()
            .unwrap()
            .write_image_data(data)
            .unwrap();
        file
    }

    fn gray_of(width: u32, color: png::ColorType, data: &[u8]) -> Vec<f32> {
        let file = png_file(width, 1, color, png::BitDepth::Eight, None, data);
        read_gray(file.path()).unwrap().pixels
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn every_pixel_kind_reads_as_its_luminance_over_white() {
        use png::{BitDepth, ColorType};
        assert_close(
            &gray_of(2, ColorType::Grayscale, &[10, 200]),
            &[10.0, 200.0],
        );
        // BT.601: pure red, green and blue weigh 0.299, 0.587 and 0.114.
        assert_close(
            &gray_of(3, ColorType::Rgb, &[255, 0, 0, 0, 255, 0, 0, 0, 255]),
            &[76.245, 149.685, 29.07],
        );
        // Fully transparent shows white; alpha 51 (20%) shows 80% of white.
        assert_close(
            &gray_of(3, ColorType::GrayscaleAlpha, &[0, 0, 100, 255, 0, 51]),
            &[255.0, 100.0, 204.0],
        );
        assert_close(
            &gray_of(
                3,
                ColorType::Rgba,
                &[0, 0, 0, 0, 0, 0, 255, 255, 255, 0, 0, 51],
            ),
            &[255.0, 29.07, 219.249],
        );

        // A full 256-entry palette, entry i the red (i, 0, 0).
        let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 0, 0]).collect();
        let file = png_file(
            2,
            1,
            ColorType::Indexed,
            BitDepth::Eight,
            Some(palette),
            &[0, 200],
        );
        assert_close(&read_gray(file.path()).unwrap().pixels, &[0.0, 59.8]);
        // A two-entry palette at one bit a pixel: black, white, white, black.
        let file = png_file(
            4,
            1,
            ColorType::Indexed,
            BitDepth::One,
            Some(vec![0, 0, 0, 255, 255, 255]),
            &[0b0110_0000],
        );
        assert_close(
            &read_gray(file.path()).unwrap().pixels,
            &[0.0, 255.0, 255.0, 0.0],
        );
        // 16-bit samples keep their high byte.
        let file = png_file(
            2,
            1,
            ColorType::Grayscale,
            BitDepth::Sixteen,
            None,
            &[0x12, 0x34, 0xff, 0x00],
        );
        assert_close(&read_gray(file.path()).unwrap().pixels, &[18.0, 255.0]);
    }

    #[test]
    fn sides_up_to_4096_pixels_are_read_and_longer_ones_refused() {
        use png::{BitDepth, ColorType};
        for (width, height) in [(4096, 1), (1, 4096), (4097, 1), (1, 4097)] {
            let data = vec![7u8; (width * height) as usize];
            let file = png_file(
                width,
                height,
                ColorType::Grayscale,
                BitDepth::Eight,
                None,
                &data,
            );
            let read = read_gray(file.path());
            if width.max(height) <= 4096 {
                let gray = read.unwrap();
                assert_eq!((gray.width, gray.height), (width as usize, height as usize));
            } else {
                let error = read.err().expect("refused").to_string();
                assert!(
                    error.ends_with(&format!(
                        "image is {width}x{height}, larger than 4096 pixels a side"
                    )),
                    "{error}"
                );
            }
        }
    }

    #[test]
    fn a_palette_that_is_not_whole_rgb_entries_is_refused() {
        // 11 bytes reaches this module's check; 257 entries `png` refuses
        // itself while reading the header. Either way, a one-line error.
        for (palette, reason) in [
            (
                vec![0u8; 11],
                "its palette is 11 bytes, not 1 to 256 RGB entries",
            ),
            (vec![0u8; 3 * 257], "Chunk length wrong"),
        ] {
            let mut bytes = Vec::new();
            let mut encoder = png::Encoder::new(&mut bytes, 1, 1);
            encoder.set_color(png::ColorType::Indexed);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().unwrap();
            writer.write_chunk(png::chunk::PLTE, &palette).unwrap();
            writer
                .write_chunk(png::chunk::IDAT, &idat_of(&[0, 0]))
                .unwrap();
            writer.finish().unwrap();
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), &bytes).unwrap();
            let error = read_gray(file.path()).err().expect("refused").to_string();
            assert!(error.contains("not a readable PNG: "), "{error}");
            assert!(error.contains(reason), "{error}");
        }
    }

    /// A zlib stream of `raw` (filter bytes included), stored uncompressed.
    fn idat_of(raw: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::none());
        z.write_all(raw).unwrap();
        z.finish().unwrap()
    }

    #[test]
    fn a_wide_image_is_centred_and_area_averaged() {
        // 42x14 on black: the square is 42 a side, the image starts 14 rows
        // down it, and each output pixel covers 1.5x1.5 source pixels.
        let (w, h) = (42, 14);
        let mut pixels = vec![0.0f32; w * h];
        pixels[w + 4] = 90.0;
        pixels[w + 5] = 180.0;
        let out = to_fashion_mnist(&Gray {
            width: w,
            height: h,
            pixels,
        });
        // Source row 1 lies in output row 10 (rows 15 to 16.5 of the
        // square); column 2 covers half of pixel 4, column 3 the other half
        // and all of pixel 5.
        let mut want = [0u8; PIXELS];
        want[10 * SIDE + 2] = 20; // 90 * 0.5 / 2.25
        want[10 * SIDE + 3] = 100; // (90 * 0.5 + 180) / 2.25
        assert_eq!(out, want);
    }

    #[test]
    fn a_tall_light_page_is_inverted_and_centred() {
        // 14x42: a border of 200 round a white inside. Inverted, the border
        // and the padding become 55 and the inside 0; the image starts 14
        // columns into the 42-wide square.
        let (w, h) = (14, 42);
        let pixels: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
                    200.0
                } else {
                    255.0
                }
            })
            .collect();
        let out = to_fashion_mnist(&Gray {
            width: w,
            height: h,
            pixels,
        });
        // Row 14 covers source rows 21 to 22.5: padding, the left border,
        // the inside, the right border, padding.
        let row: Vec<u8> = out[14 * SIDE..15 * SIDE].to_vec();
        let mut want = vec![55u8; SIDE];
        want[10..18].fill(0);
        assert_eq!(row, want);
        // Row 0, column 12: a whole row of the top border and half a row of
        // the inside, (55 * 1.5 + 0) / 2.25 = 36.7.
        assert_eq!(out[12], 37);
    }

    #[test]
    fn a_border_of_exactly_mid_grey_is_not_inverted() {
        // A background of exactly 127.5 counts as dark, so nothing flips.
        let out = to_fashion_mnist(&Gray {
            width: 2,
            height: 2,
            pixels: vec![127.0, 128.0, 128.0, 127.0],
        });
        assert_eq!((out[0], out[SIDE - 1]), (127, 128));
    }
}
