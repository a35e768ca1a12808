//! `misclassified.png`: the chapter's prediction step as a picture. Every
//! misclassified image of a batch is drawn 3x larger, light-on-dark as in
//! the dataset, captioned in two lines: the predicted label (red) over the
//! true one (black).
//!
//! The [`Canvas`] it draws on (RGB pixels, 8x8 captions, PNG encoding) is
//! shared by the other pictures of a run: `weights.png` and `confusion.png`.

use anyhow::{Context, Result};
use softreg::fashion_mnist::{CLASS_NAMES, PIXELS, SIDE};
use std::io::Write;

/// Each image pixel becomes a `SCALE x SCALE` block.
const SCALE: usize = 3;
/// Tiles per row.
const COLUMNS: usize = 8;
/// Glyphs are 8x8 pixels; lines are 10 apart.
pub const GLYPH: usize = 8;
/// Distance between the tops of two lines of text.
pub const LINE: usize = 10;
/// Space around each tile.
const PAD: usize = 6;
/// A tile: the scaled image over two caption lines ("ankle boot" is the
/// longest label, 10 glyphs = 80 pixels, inside the 84-pixel image width).
const TILE_W: usize = SIDE * SCALE + 2 * PAD;
const TILE_H: usize = SIDE * SCALE + 2 * LINE + 3 * PAD;
/// The title line above the tiles.
const TITLE_H: usize = LINE + 2 * PAD;

/// Colours as RGB triples.
pub const WHITE: [u8; 3] = [255, 255, 255];
/// Text.
pub const BLACK: [u8; 3] = [0, 0, 0];
/// A wrong prediction's label.
pub const RED: [u8; 3] = [200, 0, 0];

/// One misclassified example.
#[derive(Clone, Copy, Debug)]
pub struct Mistake<'a> {
    /// The 28x28 image.
    pub image: &'a [u8; PIXELS],
    /// The model's class.
    pub predicted: u8,
    /// The label.
    pub truth: u8,
}

/// An RGB picture being drawn, white to start with.
pub struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    /// A white canvas of `width x height` pixels.
    pub fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            rgb: WHITE.repeat(width * height),
        }
    }

    /// Colours one pixel; outside the canvas, nothing.
    pub fn set(&mut self, x: usize, y: usize, color: [u8; 3]) {
        if x < self.width && y < self.height {
            let at = 3 * (y * self.width + x);
            self.rgb[at..at + 3].copy_from_slice(&color);
        }
    }

    /// Draws `text` with its top-left corner at `(x, y)`, clipped at the
    /// canvas edge. Characters outside ASCII show as blanks.
    pub fn text(&mut self, x: usize, y: usize, text: &str, color: [u8; 3]) {
        for (i, c) in text.chars().enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY
                .get(c as usize)
                .copied()
                .unwrap_or([0; 8]);
            for (dy, bits) in glyph.iter().enumerate() {
                for dx in 0..GLYPH {
                    // Bit 0 is the glyph's leftmost pixel.
                    if bits & (1 << dx) != 0 {
                        self.set(x + i * GLYPH + dx, y + dy, color);
                    }
                }
            }
        }
    }

    /// Draws a 28x28 grayscale image scaled up by [`SCALE`].
    fn image(&mut self, x: usize, y: usize, image: &[u8; PIXELS]) {
        for (i, &v) in image.iter().enumerate() {
            let (row, col) = (i / SIDE, i % SIDE);
            for dy in 0..SCALE {
                for dx in 0..SCALE {
                    self.set(x + col * SCALE + dx, y + row * SCALE + dy, [v, v, v]);
                }
            }
        }
    }

    /// Fills the `width x height` rectangle whose top-left corner is `(x, y)`.
    pub fn fill(&mut self, x: usize, y: usize, width: usize, height: usize, color: [u8; 3]) {
        for dy in 0..height {
            for dx in 0..width {
                self.set(x + dx, y + dy, color);
            }
        }
    }

    /// Encodes the canvas as an 8-bit RGB PNG.
    pub fn write_png(&self, out: &mut dyn Write) -> Result<()> {
        let mut encoder = png::Encoder::new(out, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().context("cannot encode PNG")?;
        writer
            .write_image_data(&self.rgb)
            .context("cannot encode PNG")?;
        writer.finish().context("cannot encode PNG")?;
        Ok(())
    }
}

/// Draws the mistakes of a batch of `batch` images and encodes the PNG.
pub fn misclassified_png(
    out: &mut dyn Write,
    mistakes: &[Mistake<'_>],
    batch: usize,
) -> Result<()> {
    let rows = mistakes.len().div_ceil(COLUMNS).max(1);
    let mut canvas = Canvas::new(COLUMNS * TILE_W, TITLE_H + rows * TILE_H);
    let title = format!(
        "{} of the first {batch} test images misclassified: predicted (red) / true",
        mistakes.len()
    );
    canvas.text(PAD, PAD, &title, BLACK);
    for (i, m) in mistakes.iter().enumerate() {
        let x = (i % COLUMNS) * TILE_W + PAD;
        let y = TITLE_H + (i / COLUMNS) * TILE_H;
        canvas.image(x, y, m.image);
        let caption_y = y + SIDE * SCALE + PAD;
        canvas.text(x, caption_y, label(m.predicted), RED);
        canvas.text(x, caption_y + LINE, label(m.truth), BLACK);
    }
    canvas.write_png(out)
}

fn label(class: u8) -> &'static str {
    CLASS_NAMES.get(usize::from(class)).copied().unwrap_or("?")
}

/// A decoded RGB PNG, for the picture modules' tests.
#[cfg(test)]
pub(crate) struct DecodedRgb {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

#[cfg(test)]
impl DecodedRgb {
    /// Decodes `bytes`, which must be an RGB PNG.
    pub fn new(bytes: &[u8]) -> DecodedRgb {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        DecodedRgb {
            width: info.width as usize,
            height: info.height as usize,
            rgb,
        }
    }

    /// The pixel at `(x, y)`.
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let at = 3 * (y * self.width + x);
        [self.rgb[at], self.rgb[at + 1], self.rgb[at + 2]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_decodable_png_of_the_right_size() {
        let image = [128u8; PIXELS];
        let mistakes = vec![
            Mistake {
                image: &image,
                predicted: 9,
                truth: 5,
            };
            9
        ];
        let mut png_bytes = Vec::new();
        misclassified_png(&mut png_bytes, &mistakes, 256).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width as usize, COLUMNS * TILE_W);
        assert_eq!(info.height as usize, TITLE_H + 2 * TILE_H);
    }
}
