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
}
