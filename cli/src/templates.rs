//! `weights.png`: the learned templates. Each class's row of `W` has one
//! weight per input pixel, so it can be drawn as an image of the input's
//! size: the logit `o_j = x . w_j + b_j` is large when the image is bright
//! where `w_j` is positive (red) and dark where it is negative (blue). For a
//! linear classifier this picture is the whole model, apart from the bias.
//!
//! The colour scale diverges from white at zero and is symmetric: the
//! largest `|w|` of the whole model is full red (positive) or full blue
//! (negative), so tiles can be compared with each other.

use crate::picture::{Canvas, BLACK, LINE};
use anyhow::Result;
use softreg::fashion_mnist::{CLASSES, CLASS_NAMES};
use std::io::Write;

/// Each weight becomes a `SCALE x SCALE` block.
pub const SCALE: usize = 4;
/// Tiles per row: two rows of five classes.
pub const COLUMNS: usize = 5;
/// Space around each tile.
const PAD: usize = 8;
/// Width and height of the colour bar in the legend.
const BAR_W: usize = 256;
const BAR_H: usize = 12;
/// The title, then the colour bar over its three labels.
const HEADER_H: usize = PAD + LINE + PAD + BAR_H + 2 + LINE + PAD;

/// Full red: the largest positive weight.
pub const POSITIVE: [u8; 3] = [178, 24, 43];
/// Full blue: the largest negative weight.
pub const NEGATIVE: [u8; 3] = [33, 102, 172];
/// Zero.
pub const ZERO: [u8; 3] = [255, 255, 255];

/// The colour of `w` on a scale whose ends are `-scale` and `+scale`:
/// white at 0, mixed linearly towards [`POSITIVE`] or [`NEGATIVE`], clamped
/// beyond the ends. A NaN (never in a model softreg writes) is black.
pub fn diverging(w: f32, scale: f32) -> [u8; 3] {
    if w.is_nan() {
        return BLACK;
    }
    let t = if scale > 0.0 {
        (w / scale).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let end = if t >= 0.0 { POSITIVE } else { NEGATIVE };
    let t = t.abs();
    let mix = |zero: u8, end: u8| {
        (f32::from(zero) + t * (f32::from(end) - f32::from(zero))).round() as u8
    };
    [
        mix(ZERO[0], end[0]),
        mix(ZERO[1], end[1]),
        mix(ZERO[2], end[2]),
    ]
}

/// Picture size and where each class's tile lies, for images of `side x
/// side` inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Inputs per image row.
    pub side: usize,
}

impl Layout {
    fn tile_w(self) -> usize {
        self.side * SCALE + 2 * PAD
    }

    fn tile_h(self) -> usize {
        self.side * SCALE + PAD + LINE + PAD
    }

    /// Width and height of the whole picture.
    pub fn size(self) -> (usize, usize) {
        let rows = CLASSES.div_ceil(COLUMNS);
        (COLUMNS * self.tile_w(), HEADER_H + rows * self.tile_h())
    }

    /// Top-left corner of class `class`'s image: classes in order, left to
    /// right, then the next row.
    pub fn image_origin(self, class: usize) -> (usize, usize) {
        let (row, col) = (class / COLUMNS, class % COLUMNS);
        (col * self.tile_w() + PAD, HEADER_H + row * self.tile_h())
    }
}

/// The largest `|w|` among the finite weights: the ends of the colour scale.
pub fn scale_of<const IN: usize>(weights: &[[f32; IN]]) -> f32 {
    weights
        .iter()
        .flatten()
        .filter(|w| w.is_finite())
        .fold(0.0f32, |m, w| m.max(w.abs()))
}

/// The end of the scale as a label of at most 9 characters: 3 decimals
/// while it is below 1000 (every trained model's), scientific beyond.
fn number(scale: f32) -> String {
    if scale < 1000.0 {
        format!("{scale:.3}")
    } else {
        format!("{scale:.2e}")
    }
}

/// Draws the ten rows of `weights` (`IN = side * side` inputs each, row
/// by row as the images are) as `side x side` tiles captioned with the
/// class names, and encodes the PNG.
///
/// # Panics
/// If `IN` is not a square.
pub fn weights_png<const IN: usize>(
    out: &mut dyn Write,
    weights: &[[f32; IN]; CLASSES],
) -> Result<()> {
    let side = IN.isqrt();
    assert_eq!(
        side * side,
        IN,
        "the inputs of a template form a square image"
    );
    let layout = Layout { side };
    let (width, height) = layout.size();
    let mut canvas = Canvas::new(width, height);
    let scale = scale_of(weights);

    let title = format!("the rows of W as {side}x{side} images: red > 0 > blue");
    canvas.text(PAD, PAD, &title, BLACK);
    // The colour bar from -scale to +scale, labelled at both ends and 0.
    let bar_y = PAD + LINE + PAD;
    for x in 0..BAR_W {
        let w = scale * (2.0 * (x as f32 + 0.5) / BAR_W as f32 - 1.0);
        canvas.fill(PAD + x, bar_y, 1, BAR_H, diverging(w, scale));
    }
    let label_y = bar_y + BAR_H + 2;
    let (low, high) = (format!("-{}", number(scale)), format!("+{}", number(scale)));
    canvas.text(PAD, label_y, &low, BLACK);
    canvas.text(PAD + BAR_W / 2 - 4, label_y, "0", BLACK);
    let high_x = (PAD + BAR_W).saturating_sub(8 * high.len());
    canvas.text(high_x, label_y, &high, BLACK);

    for (class, row) in weights.iter().enumerate() {
        let (x0, y0) = layout.image_origin(class);
        for (i, &w) in row.iter().enumerate() {
            let (r, c) = (i / side, i % side);
            canvas.fill(
                x0 + c * SCALE,
                y0 + r * SCALE,
                SCALE,
                SCALE,
                diverging(w, scale),
            );
        }
        canvas.text(x0, y0 + side * SCALE + PAD, CLASS_NAMES[class], BLACK);
    }
    canvas.write_png(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::picture::DecodedRgb;

    /// Class `j`'s template is +2 on image row `j`, -1 on column `j`
    /// (where they cross too), 0 elsewhere: every tile shows its own class's
    /// row and column, so a tile drawn in the wrong place, flipped or
    /// transposed fails.
    fn check_pattern<const IN: usize>() {
        let side = IN.isqrt();
        let mut weights = [[0.0f32; IN]; CLASSES];
        for (j, w) in weights.iter_mut().enumerate() {
            for k in 0..side {
                w[j * side + k] = 2.0;
                w[k * side + j] = -1.0;
            }
        }
        let mut bytes = Vec::new();
        weights_png(&mut bytes, &weights).unwrap();
        let png = DecodedRgb::new(&bytes);
        let (width, height) = (png.width, png.height);
        let layout = Layout { side };
        assert_eq!((width, height), layout.size());
        // Two rows of five tiles of side * 4 pixels.
        assert!(width >= COLUMNS * side * SCALE);
        for class in 0..CLASSES {
            let (x0, y0) = layout.image_origin(class);
            for r in 0..side {
                for c in 0..side {
                    let want = if c == class {
                        // The scale ends at |2|, so -1 is half blue.
                        diverging(-1.0, 2.0)
                    } else if r == class {
                        POSITIVE
                    } else {
                        ZERO
                    };
                    // Corners and inside of the 4x4 block.
                    for (dy, dx) in [(0, 0), (SCALE - 1, SCALE - 1), (1, 2)] {
                        let got = png.pixel(x0 + c * SCALE + dx, y0 + r * SCALE + dy);
                        assert_eq!(got, want, "class {class}, row {r}, column {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_known_pattern_comes_out_in_class_order_32() {
        check_pattern::<1024>();
    }

    #[test]
    fn a_known_pattern_comes_out_in_class_order_28() {
        check_pattern::<784>();
    }

    #[test]
    fn huge_weights_still_make_a_picture() {
        let mut weights = [[0.0f32; 784]; CLASSES];
        weights[3][5] = -3e38;
        weights[4][6] = f32::MAX;
        let mut bytes = Vec::new();
        weights_png(&mut bytes, &weights).unwrap();
        let png = DecodedRgb::new(&bytes);
        let (width, height) = (png.width, png.height);
        assert_eq!((width, height), Layout { side: 28 }.size());
        assert_eq!(number(f32::MAX), "3.40e38");
        assert_eq!(number(0.5334), "0.533");
    }

    #[test]
    fn the_scale_is_symmetric_about_zero() {
        assert_eq!(diverging(0.0, 1.0), ZERO);
        assert_eq!(diverging(1.0, 1.0), POSITIVE);
        assert_eq!(diverging(-1.0, 1.0), NEGATIVE);
        assert_eq!(diverging(5.0, 1.0), POSITIVE);
        // Halfway is halfway to either end.
        assert_eq!(diverging(0.5, 1.0), [217, 140, 149]);
        assert_eq!(diverging(-0.5, 1.0), [144, 179, 214]);
        // The scale divides: -1 of 2 is half blue, 1 of 4 a quarter red.
        assert_eq!(diverging(-1.0, 2.0), [144, 179, 214]);
        assert_eq!(diverging(1.0, 4.0), [236, 197, 202]);
        // An all-zero model is white, not a division by zero.
        assert_eq!(diverging(0.0, 0.0), ZERO);
        assert_eq!(scale_of(&[[0.5f32, -3.0, f32::INFINITY]]), 3.0);
    }

    #[test]
    fn tiles_sit_in_two_rows_of_five_under_the_legend() {
        // 32x32 tiles: 128 pixels and 8 either side, 154 high with the
        // caption; 28x28: 128 and 138. The legend is 58 high.
        let (big, small) = (Layout { side: 32 }, Layout { side: 28 });
        assert_eq!((big.size(), small.size()), ((720, 366), (640, 334)));
        let origins = |layout: Layout| [0, 4, 5, 9].map(|class| layout.image_origin(class));
        assert_eq!(origins(big), [(8, 58), (584, 58), (8, 212), (584, 212)]);
        assert_eq!(origins(small), [(8, 58), (520, 58), (8, 196), (520, 196)]);
    }

    #[test]
    fn the_legend_and_captions_are_drawn_where_they_belong() {
        let mut weights = [[0.0f32; 1024]; CLASSES];
        weights[0][0] = 2.0;
        weights[1][0] = -1.0;
        let mut bytes = Vec::new();
        weights_png(&mut bytes, &weights).unwrap();
        let png = DecodedRgb::new(&bytes);
        let title = "the rows of W as 32x32 images: red > 0 > blue";
        assert!(png.shows_text(8, 8, title, BLACK));
        // The bar: 256 columns from x = 8, rows 26 to 37, each column the
        // colour of the weight at its middle, -2 to +2.
        for x in 0..256 {
            let w = 2.0 * ((2 * x + 1) as f32 / 256.0 - 1.0);
            assert_eq!(png.pixel(8 + x, 26), diverging(w, 2.0), "column {x}");
            assert_eq!(png.pixel(8 + x, 37), diverging(w, 2.0), "column {x}");
            assert_eq!(png.pixel(8 + x, 38), ZERO, "column {x}");
        }
        assert_eq!(png.pixel(8, 26), diverging(-255.0 / 128.0, 2.0));
        assert_ne!(png.pixel(8, 26), ZERO);
        assert_eq!((png.pixel(7, 26), png.pixel(264, 26)), (ZERO, ZERO));
        // Its labels, the right one ending where the bar does.
        assert!(png.shows_text(8, 40, "-2.000", BLACK));
        assert!(png.shows_text(132, 40, "0", BLACK));
        assert!(png.shows_text(216, 40, "+2.000", BLACK));
        // Each class's name under its tile.
        for (class, name) in CLASS_NAMES.iter().enumerate() {
            let (x, y) = (8 + 144 * (class % 5), 58 + 154 * (class / 5) + 136);
            assert!(png.shows_text(x, y, name, BLACK), "{name}");
        }
        // The one weight of each tile at its top-left block, nothing beside.
        assert_eq!(png.pixel(8, 58), POSITIVE);
        assert_eq!(png.pixel(152 + 3, 58 + 3), diverging(-1.0, 2.0));
        assert_eq!(png.pixel(12, 58), ZERO);
        assert_eq!(png.pixel(8, 62), ZERO);
    }

    #[test]
    fn scale_labels_switch_to_scientific_at_1000() {
        assert_eq!(number(999.0), "999.000");
        assert_eq!(number(1000.0), "1.00e3");
    }
}
