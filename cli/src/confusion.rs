//! `confusion.png`: the confusion matrix as a heat map. Row `i` is the
//! images of true class `i`, column `j` how many of them the model took for
//! class `j`; each cell shows its count, and its colour is the count's share
//! of its row (the rows are normalised: a dark diagonal cell is a class the
//! model gets right, a dark cell off it a confusion, whatever the class
//! sizes).

use crate::picture::{Canvas, BLACK, GLYPH, LINE, WHITE};
use anyhow::Result;
use softreg::fashion_mnist::{CLASSES, CLASS_NAMES};
use std::io::Write;

/// A cell: ten glyphs ("ankle boot", the longest column heading) and a margin.
pub const CELL_W: usize = 10 * GLYPH + 4;
/// Height of a cell.
pub const CELL_H: usize = 28;
/// Space around the parts of the picture.
const PAD: usize = 8;
/// Left of the grid: the vertical "true", then the row names.
const LEFT: usize = PAD + GLYPH + PAD + 10 * GLYPH + PAD;
/// Above the grid: two title lines, "predicted", then the column names.
const TOP: usize = PAD + 2 * LINE + PAD + LINE + PAD + LINE + PAD;

/// The colour of a full row: every image of the class in this cell.
pub const FULL: [u8; 3] = [8, 48, 107];

/// The colour of a cell holding `share` (0 to 1) of its row: white to
/// [`FULL`].
pub fn shade(share: f64) -> [u8; 3] {
    let t = share.clamp(0.0, 1.0);
    let mix = |end: u8| (255.0 + t * (f64::from(end) - 255.0)).round() as u8;
    [mix(FULL[0]), mix(FULL[1]), mix(FULL[2])]
}

/// Width and height of the picture.
pub fn size() -> (usize, usize) {
    (LEFT + CLASSES * CELL_W + PAD, TOP + CLASSES * CELL_H + PAD)
}

/// Top-left corner of the cell of true class `truth` and predicted class
/// `predicted`.
pub fn cell_origin(truth: usize, predicted: usize) -> (usize, usize) {
    (LEFT + predicted * CELL_W, TOP + truth * CELL_H)
}

/// Where a cell's count starts: centred in the cell.
pub fn count_origin(truth: usize, predicted: usize, digits: usize) -> (usize, usize) {
    let (x, y) = cell_origin(truth, predicted);
    (x + (CELL_W - digits * GLYPH) / 2, y + (CELL_H - GLYPH) / 2)
}

/// Draws `confusion[true][predicted]` as a heat map, and encodes the PNG.
pub fn confusion_png(out: &mut dyn Write, confusion: &[[u32; CLASSES]; CLASSES]) -> Result<()> {
    let (width, height) = size();
    let mut canvas = Canvas::new(width, height);
    let total: u64 = confusion.iter().flatten().map(|&n| u64::from(n)).sum();
    canvas.text(
        PAD,
        PAD,
        &format!("confusion matrix of {total} validation images: counts"),
        BLACK,
    );
    canvas.text(
        PAD,
        PAD + LINE,
        "colour: rows: true class, normalised (share of the row)",
        BLACK,
    );

    let grid_w = CLASSES * CELL_W;
    let axis_y = PAD + 2 * LINE + PAD;
    canvas.text(LEFT + grid_w / 2 - 4 * GLYPH, axis_y, "predicted", BLACK);
    // "true", one letter under the other, beside the row names.
    let true_y = TOP + CLASSES * CELL_H / 2 - 2 * LINE;
    for (i, letter) in ["t", "r", "u", "e"].into_iter().enumerate() {
        canvas.text(PAD, true_y + i * LINE, letter, BLACK);
    }

    let heading_y = axis_y + LINE + PAD;
    for (class, name) in CLASS_NAMES.iter().enumerate() {
        let (x, _) = cell_origin(0, class);
        canvas.text(
            x + (CELL_W - name.len() * GLYPH) / 2,
            heading_y,
            name,
            BLACK,
        );
        let (_, y) = cell_origin(class, 0);
        let name_x = LEFT - PAD - name.len() * GLYPH;
        canvas.text(name_x, y + (CELL_H - GLYPH) / 2, name, BLACK);
    }

    for (truth, row) in confusion.iter().enumerate() {
        let row_total: u64 = row.iter().map(|&n| u64::from(n)).sum();
        for (predicted, &count) in row.iter().enumerate() {
            let share = if row_total == 0 {
                0.0
            } else {
                f64::from(count) / row_total as f64
            };
            let (x, y) = cell_origin(truth, predicted);
            canvas.fill(x, y, CELL_W, CELL_H, shade(share));
            let text = count.to_string();
            let ink = if share > 0.5 { WHITE } else { BLACK };
            let (tx, ty) = count_origin(truth, predicted, text.len());
            canvas.text(tx, ty, &text, ink);
        }
    }
    // Thin grey lines between the cells.
    for k in 0..=CLASSES {
        canvas.fill(LEFT + k * CELL_W, TOP, 1, CLASSES * CELL_H, [200; 3]);
        canvas.fill(LEFT, TOP + k * CELL_H, grid_w + 1, 1, [200; 3]);
    }
    canvas.write_png(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::picture::DecodedRgb as Decoded;

    impl Decoded {
        /// Whether the 8x8 square at `(x, y)` is exactly `glyph` drawn in
        /// anything but `background`.
        fn shows(&self, x: usize, y: usize, glyph: [u8; 8], background: [u8; 3]) -> bool {
            (0..GLYPH).all(|dy| {
                (0..GLYPH).all(|dx| {
                    let ink = self.pixel(x + dx, y + dy) != background;
                    ink == (glyph[dy] & (1 << dx) != 0)
                })
            })
        }

        /// Reads the count in a cell back from its pixels: the digits of
        /// the font, centred, on the cell's colour. The longest reading
        /// wins: the middle digit of "990" alone sits where a lone "9" would.
        fn count(&self, truth: usize, predicted: usize) -> Option<u32> {
            let (x, y) = cell_origin(truth, predicted);
            let background = self.pixel(x + 2, y + 2);
            (1..=6).rev().find_map(|digits| {
                let (tx, ty) = count_origin(truth, predicted, digits);
                let mut text = String::new();
                for i in 0..digits {
                    let digit = ('0'..='9').find(|&d| {
                        let glyph = font8x8::legacy::BASIC_LEGACY[d as usize];
                        self.shows(tx + i * GLYPH, ty, glyph, background)
                    })?;
                    text.push(digit);
                }
                text.parse().ok()
            })
        }
    }

    #[test]
    fn every_cell_shows_its_count_and_its_share_of_the_row() {
        // Counts of one to four digits, a row of zeros, a full diagonal cell.
        let mut confusion = [[0u32; CLASSES]; CLASSES];
        for (i, row) in confusion.iter_mut().enumerate() {
            for (j, n) in row.iter_mut().enumerate() {
                *n = ((i * 37 + j * 11) % 23) as u32 * [1, 7, 45][(i + j) % 3];
            }
        }
        confusion[3] = [0; CLASSES];
        confusion[5] = [0; CLASSES];
        confusion[5][5] = 1000;
        let mut bytes = Vec::new();
        confusion_png(&mut bytes, &confusion).unwrap();
        let png = Decoded::new(&bytes);
        assert_eq!((png.width, png.height), size());
        for (i, row) in confusion.iter().enumerate() {
            let total: u32 = row.iter().sum();
            for (j, &n) in row.iter().enumerate() {
                assert_eq!(png.count(i, j), Some(n), "cell ({i}, {j})");
                let share = if total == 0 {
                    0.0
                } else {
                    f64::from(n) / f64::from(total)
                };
                let (x, y) = cell_origin(i, j);
                assert_eq!(png.pixel(x + 2, y + 2), shade(share), "cell ({i}, {j})");
            }
        }
        assert_eq!(shade(1.0), FULL);
        assert_eq!(shade(0.0), WHITE);
    }

    #[test]
    fn the_labels_counts_and_grid_are_where_the_layout_puts_them() {
        let mut confusion = [[0u32; CLASSES]; CLASSES];
        confusion[5][5] = 1000; // all of its row: dark, white digits
        confusion[2] = [3; CLASSES]; // a tenth each: light, black digits
        confusion[7][1] = 4; // exactly half: still black digits
        confusion[7][7] = 4;
        let mut bytes = Vec::new();
        confusion_png(&mut bytes, &confusion).unwrap();
        let png = Decoded::new(&bytes);
        // 112 pixels of row names, ten 84x28 cells, 8 of margin; 72 above.
        assert_eq!((png.width, png.height), (960, 360));
        assert_eq!(
            (cell_origin(0, 0), cell_origin(3, 7)),
            ((112, 72), (700, 156))
        );
        let title = "confusion matrix of 1038 validation images: counts";
        assert!(png.shows_text(8, 8, title, BLACK));
        let colour = "colour: rows: true class, normalised (share of the row)";
        assert!(png.shows_text(8, 18, colour, BLACK));
        // "predicted" centred over the grid, "true" down its left.
        assert!(png.shows_text(500, 36, "predicted", BLACK));
        for (i, letter) in ["t", "r", "u", "e"].into_iter().enumerate() {
            assert!(png.shows_text(8, 192 + 10 * i, letter, BLACK), "{letter}");
        }
        for (class, name) in CLASS_NAMES.iter().enumerate() {
            // Headings centred over their columns, row names ending 8
            // pixels left of the grid.
            let heading_x = 112 + 84 * class + (84 - 8 * name.len()) / 2;
            assert!(png.shows_text(heading_x, 54, name, BLACK), "{name}");
            let name_x = 104 - 8 * name.len();
            assert!(
                png.shows_text(name_x, 82 + 28 * class, name, BLACK),
                "{name}"
            );
        }
        // Counts centred in their cells, white on a dark one.
        assert_eq!(count_origin(5, 5, 4), (558, 222));
        assert!(png.shows_text(558, 222, "1000", WHITE));
        assert!(png.shows_text(112 + 84 * 4 + 38, 138, "3", BLACK));
        assert!(png.shows_text(112 + 38, 72 + 10, "0", BLACK));
        assert!(png.shows_text(112 + 84 + 38, 72 + 28 * 7 + 10, "4", BLACK));
        assert!(png.shows_text(112 + 84 * 7 + 38, 72 + 28 * 7 + 10, "4", BLACK));
        // Grey lines round every cell, from the grid's corner to the other.
        let grey = [200; 3];
        for k in 0..=CLASSES {
            for y in [72, 200, 352] {
                assert_eq!(png.pixel(112 + 84 * k, y), grey, "line {k}");
            }
            for x in [112, 500, 952] {
                assert_eq!(png.pixel(x, 72 + 28 * k), grey, "line {k}");
            }
        }
        assert_eq!(png.pixel(111, 100), WHITE);
        assert_eq!(png.pixel(953, 100), WHITE);
        assert_eq!(png.pixel(500, 71), WHITE);
        assert_eq!(png.pixel(500, 353), WHITE);
        // The corners and the margin round the picture stay white.
        for (x, y) in [(0, 0), (959, 0), (0, 359), (959, 359), (956, 200)] {
            assert_eq!(png.pixel(x, y), WHITE, "({x}, {y})");
        }
    }

    #[test]
    fn shades_run_from_white_to_full_by_the_rows_share() {
        assert_eq!(shade(0.5), [132, 152, 181]);
        assert_eq!(shade(0.25), [193, 203, 218]);
        assert_eq!(shade(-1.0), WHITE);
        assert_eq!(shade(2.0), FULL);
    }
}
