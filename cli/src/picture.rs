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

    /// Whether `text` is drawn in `color` with its top-left corner at
    /// `(x, y)`: each glyph's set bits in that colour, its other pixels not.
    pub fn shows_text(&self, x: usize, y: usize, text: &str, color: [u8; 3]) -> bool {
        text.chars().enumerate().all(|(i, c)| {
            let glyph = font8x8::legacy::BASIC_LEGACY[c as usize];
            (0..GLYPH).all(|dy| {
                (0..GLYPH).all(|dx| {
                    let set = glyph[dy] & (1 << dx) != 0;
                    set == (self.pixel(x + i * GLYPH + dx, y + dy) == color)
                })
            })
        })
    }

    /// How many pixels are not `background`.
    pub fn ink(&self, background: [u8; 3]) -> usize {
        self.rgb
            .chunks_exact(3)
            .filter(|p| **p != background)
            .count()
    }
}

/// How many pixels `text` sets.
#[cfg(test)]
pub(crate) fn glyph_ink(text: &str) -> usize {
    text.chars()
        .flat_map(|c| font8x8::legacy::BASIC_LEGACY[c as usize])
        .map(|row| row.count_ones() as usize)
        .sum()
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

    #[test]
    fn each_mistake_is_its_image_three_times_larger_over_its_two_captions() {
        // Ten mistakes: a full row of eight tiles and two on the next, each
        // image different, none of its pixels white.
        let images: Vec<[u8; PIXELS]> = (0..10)
            .map(|i| std::array::from_fn(|p| ((p * 7 + i * 31) % 200) as u8))
            .collect();
        let mistakes: Vec<Mistake<'_>> = images
            .iter()
            .enumerate()
            .map(|(i, image)| Mistake {
                image,
                predicted: i as u8,
                truth: ((i + 3) % 10) as u8,
            })
            .collect();
        let mut bytes = Vec::new();
        misclassified_png(&mut bytes, &mistakes, 256).unwrap();
        let png = DecodedRgb::new(&bytes);
        // Eight 96-pixel tiles across; a 22-pixel title, then rows of 122.
        assert_eq!((png.width, png.height), (768, 22 + 2 * 122));
        let title = "10 of the first 256 test images misclassified: predicted (red) / true";
        assert!(png.shows_text(6, 6, title, BLACK));
        let mut ink = glyph_ink(title);
        for (i, m) in mistakes.iter().enumerate() {
            let (x, y) = (6 + 96 * (i % 8), 22 + 122 * (i / 8));
            for (p, &v) in m.image.iter().enumerate() {
                let (px, py) = (x + 3 * (p % 28), y + 3 * (p / 28));
                for (dx, dy) in [(0, 0), (2, 0), (1, 1), (0, 2), (2, 2)] {
                    assert_eq!(png.pixel(px + dx, py + dy), [v; 3], "tile {i}, pixel {p}");
                }
            }
            let predicted = CLASS_NAMES[usize::from(m.predicted)];
            let truth = CLASS_NAMES[usize::from(m.truth)];
            assert!(png.shows_text(x, y + 90, predicted, RED), "tile {i}");
            assert!(png.shows_text(x, y + 100, truth, BLACK), "tile {i}");
            ink += 84 * 84 + glyph_ink(predicted) + glyph_ink(truth);
        }
        // Nothing else is drawn.
        assert_eq!(png.ink(WHITE), ink);
        assert_eq!(label(10), "?");
    }

    #[test]
    fn no_mistakes_is_the_title_over_an_empty_row() {
        let mut bytes = Vec::new();
        misclassified_png(&mut bytes, &[], 100).unwrap();
        let png = DecodedRgb::new(&bytes);
        assert_eq!((png.width, png.height), (768, 22 + 122));
        let title = "0 of the first 100 test images misclassified: predicted (red) / true";
        assert!(png.shows_text(6, 6, title, BLACK));
        assert_eq!(png.ink(WHITE), glyph_ink(title));
    }

    #[test]
    fn drawing_stops_at_the_canvas_edge() {
        let pixel = |c: &Canvas, x: usize, y: usize| {
            let at = 3 * (y * c.width + x);
            [c.rgb[at], c.rgb[at + 1], c.rgb[at + 2]]
        };
        let mut canvas = Canvas::new(10, 3);
        // Just outside, on either axis: nothing, not the next row's pixel.
        canvas.set(10, 0, BLACK);
        canvas.set(0, 3, BLACK);
        canvas.set(9, 2, RED);
        assert_eq!(canvas.rgb.len(), 90);
        assert_eq!(pixel(&canvas, 9, 2), RED);
        assert_eq!(
            canvas.rgb.chunks_exact(3).filter(|p| *p != WHITE).count(),
            1
        );
        // A rectangle over the corner covers only its part inside.
        canvas.fill(8, 1, 5, 5, BLACK);
        for (x, y) in [(8, 1), (9, 1), (8, 2), (9, 2)] {
            assert_eq!(pixel(&canvas, x, y), BLACK);
        }
        assert_eq!(
            canvas.rgb.chunks_exact(3).filter(|p| *p != WHITE).count(),
            4
        );

        // "W" at x = 4 on a 10-pixel-wide canvas: its first six columns,
        // its top three rows, nothing wrapped onto the next row.
        let mut canvas = Canvas::new(10, 3);
        canvas.text(4, 0, "W", RED);
        let glyph = font8x8::legacy::BASIC_LEGACY['W' as usize];
        let mut drawn = 0;
        for (y, bits) in glyph.iter().take(3).enumerate() {
            for x in 0..10 {
                let set = x >= 4 && bits & (1 << (x - 4)) != 0;
                assert_eq!(pixel(&canvas, x, y) == RED, set, "({x}, {y})");
                drawn += usize::from(set);
            }
        }
        assert!(drawn > 0);
    }

    #[test]
    fn characters_outside_ascii_are_blanks() {
        let mut plain = Canvas::new(40, 8);
        plain.text(0, 0, "a b", BLACK);
        let mut accented = Canvas::new(40, 8);
        accented.text(0, 0, "a\u{e9}b", BLACK);
        assert_eq!(plain.rgb, accented.rgb);
    }
}
