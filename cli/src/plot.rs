//! `curves.svg`: train loss, validation loss and validation accuracy against
//! epoch on one pair of axes, like the chapter's progress board.

use crate::outputs::EpochMetrics;
use anyhow::{anyhow, Result};
use plotters::prelude::*;

/// Picture size in pixels (the SVG scales, but this sets the proportions).
const SIZE: (u32, u32) = (640, 420);

/// Picks one number out of an epoch's metrics.
type Metric = fn(&EpochMetrics) -> f64;

/// Renders the learning curves as an SVG document.
pub fn curves_svg(history: &[EpochMetrics]) -> Result<String> {
    let mut svg = String::new();
    draw(&mut svg, history).map_err(|e| anyhow!("cannot draw curves.svg: {e}"))?;
    Ok(svg)
}

fn draw(svg: &mut String, history: &[EpochMetrics]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;

    let last = history.last().map_or(1, |m| m.epoch);
    // Losses start near ln 10 = 2.3 at worst; accuracies live in [0, 1]. One
    // axis fits both, as in d2l, from 0 so that progress is not exaggerated.
    let top = history
        .iter()
        .flat_map(|m| [m.train_loss, m.val_loss])
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max);
    let x_range = if last == 1 {
        0.5..1.5
    } else {
        1.0..f64::from(last)
    };

    let mut chart = ChartBuilder::on(&root)
        .caption("softmax regression on Fashion-MNIST", ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(x_range, 0.0..top * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels(last.min(20) as usize)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;

    let series: [(&str, RGBColor, Metric); 3] = [
        ("train loss", RGBColor(31, 119, 180), |m| m.train_loss),
        ("val loss", RGBColor(214, 39, 40), |m| m.val_loss),
        ("val acc", RGBColor(44, 160, 44), |m| m.val_acc),
    ];
    for (label, color, value) in series {
        let points: Vec<(f64, f64)> = history
            .iter()
            .map(|m| (f64::from(m.epoch), value(m)))
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}

/// The shapes of a plotters SVG, read back for the plots' tests.
#[cfg(test)]
pub(crate) mod svg_shapes {
    /// The value of attribute `name` in the element text `element`.
    fn attr<'a>(element: &'a str, name: &str) -> &'a str {
        let key = format!(" {name}=\"");
        let start = element.find(&key).unwrap() + key.len();
        let len = element[start..].find('"').unwrap();
        &element[start..start + len]
    }

    /// Every element `<tag ...>` of the document, as its text.
    fn elements<'a>(svg: &'a str, tag: &str) -> Vec<&'a str> {
        let open = format!("<{tag} ");
        svg.match_indices(&open)
            .map(|(at, _)| &svg[at..at + svg[at..].find('>').unwrap()])
            .collect()
    }

    /// A polyline: its stroke colour (`#RRGGBB`) and its points.
    pub struct Polyline {
        pub stroke: String,
        pub points: Vec<(i32, i32)>,
    }

    pub fn polylines(svg: &str) -> Vec<Polyline> {
        elements(svg, "polyline")
            .into_iter()
            .map(|e| Polyline {
                stroke: attr(e, "stroke").to_owned(),
                points: attr(e, "points")
                    .split_whitespace()
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect(),
            })
            .collect()
    }

    /// A filled circle's colour and centre.
    pub fn circles(svg: &str) -> Vec<(String, (i32, i32))> {
        elements(svg, "circle")
            .into_iter()
            .map(|e| {
                let centre = (
                    attr(e, "cx").parse().unwrap(),
                    attr(e, "cy").parse().unwrap(),
                );
                (attr(e, "fill").to_owned(), centre)
            })
            .collect()
    }

    /// The centres of the filled circles of `colour`, in document order.
    pub fn centres(svg: &str, colour: &str) -> Vec<(i32, i32)> {
        circles(svg)
            .into_iter()
            .filter(|(c, _)| c == colour)
            .map(|(_, centre)| centre)
            .collect()
    }

    /// The colours of the legend's strokes, in document order: the
    /// two-point lines not in black, each checked to be 20 pixels across.
    pub fn legend_strokes(svg: &str) -> Vec<String> {
        polylines(svg)
            .into_iter()
            .filter(|l| l.stroke != "#000000" && l.points.len() == 2)
            .map(|l| {
                let [a, b] = l.points[..] else { unreachable!() };
                assert_eq!((b.0 - a.0, b.1 - a.1), (20, 0), "{}", l.stroke);
                l.stroke
            })
            .collect()
    }

    /// The words of every `<text>` element.
    pub fn texts(svg: &str) -> Vec<String> {
        svg.split("<text ")
            .skip(1)
            .map(|t| {
                t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()]
                    .trim()
                    .to_owned()
            })
            .collect()
    }

    /// Plot areas, left to right: each black `(left, right, top, bottom)`
    /// pair of a vertical axis and the horizontal axis that starts next to
    /// its foot (plotters leaves a pixel between them).
    pub fn axes(svg: &str) -> Vec<(i32, i32, i32, i32)> {
        let lines = polylines(svg);
        let black_long = |vertical: bool| -> Vec<((i32, i32), (i32, i32))> {
            lines
                .iter()
                .filter(|l| l.stroke == "#000000" && l.points.len() == 2)
                .map(|l| (l.points[0], l.points[1]))
                .filter(|(a, b)| {
                    let (along, across) = if vertical {
                        (b.1 - a.1, b.0 - a.0)
                    } else {
                        (b.0 - a.0, b.1 - a.1)
                    };
                    across == 0 && along > 100
                })
                .collect()
        };
        let mut areas: Vec<_> = black_long(true)
            .into_iter()
            .map(|(top, bottom)| {
                let (_, right) = black_long(false)
                    .into_iter()
                    .find(|(start, _)| {
                        (start.0 - top.0).abs() <= 1 && (start.1 - bottom.1).abs() <= 1
                    })
                    .expect("a horizontal axis at the foot of the vertical one");
                (top.0, right.0, top.1, bottom.1)
            })
            .collect();
        areas.sort_unstable();
        areas
    }

    /// Where `value` falls between `low` and `high`, 0 to 1.
    pub fn fraction(value: i32, low: i32, high: i32) -> f64 {
        f64::from(value - low) / f64::from(high - low)
    }
}

#[cfg(test)]
mod tests {
    use super::svg_shapes::{axes, centres, fraction, legend_strokes, texts};
    use super::*;

    const TRAIN: &str = "#1F77B4";
    const VAL_LOSS: &str = "#D62728";
    const VAL_ACC: &str = "#2CA02C";

    fn history(losses: &[f64]) -> Vec<EpochMetrics> {
        losses
            .iter()
            .enumerate()
            .map(|(i, &loss)| EpochMetrics {
                epoch: i as u32 + 1,
                train_loss: loss,
                val_loss: 1.0,
                val_acc: 0.5,
                seconds: 0.0,
            })
            .collect()
    }

    #[test]
    fn epochs_span_the_axis_and_the_highest_loss_sits_under_its_top() {
        let svg = curves_svg(&history(&[1.8, 1.3, 0.8])).unwrap();
        let [(left, right, top, bottom)] = axes(&svg)[..] else {
            panic!("one plot area")
        };
        // Epoch 1 at the left end, the last at the right, evenly between.
        let train = centres(&svg, TRAIN);
        let xs: Vec<f64> = train.iter().map(|c| fraction(c.0, left, right)).collect();
        for (x, want) in xs.iter().zip([0.0, 0.5, 1.0]) {
            assert!((x - want).abs() < 0.01, "{xs:?}");
        }
        // From 0 up to 1.05 times the highest loss, 1.8.
        let heights: Vec<f64> = train.iter().map(|c| fraction(c.1, bottom, top)).collect();
        for (h, loss) in heights.iter().zip([1.8, 1.3, 0.8]) {
            assert!((h - loss / 1.89).abs() < 0.01, "{heights:?}");
        }
        let acc = centres(&svg, VAL_ACC);
        assert_eq!(acc.len(), 3);
        assert!((fraction(acc[0].1, bottom, top) - 0.5 / 1.89).abs() < 0.01);
        assert_eq!(centres(&svg, VAL_LOSS).len(), 3);
    }

    #[test]
    fn one_epoch_is_drawn_in_the_middle() {
        let svg = curves_svg(&history(&[0.6])).unwrap();
        let [(left, right, top, bottom)] = axes(&svg)[..] else {
            panic!("one plot area")
        };
        let [(x, y)] = centres(&svg, TRAIN)[..] else {
            panic!("one point")
        };
        assert!((fraction(x, left, right) - 0.5).abs() < 0.01);
        // Losses below 1 keep the axis at 1.05 (accuracy reaches 1).
        assert!((fraction(y, bottom, top) - 0.6 / 1.05).abs() < 0.01);
    }

    #[test]
    fn a_non_finite_loss_does_not_stretch_the_axis() {
        let mut epochs = history(&[1.8, 1.3]);
        epochs[1].val_loss = f64::INFINITY;
        let svg = curves_svg(&epochs).unwrap();
        let [(_, _, top, bottom)] = axes(&svg)[..] else {
            panic!("one plot area")
        };
        let train = centres(&svg, TRAIN);
        assert!((fraction(train[0].1, bottom, top) - 1.0 / 1.05).abs() < 0.01);
    }

    #[test]
    fn the_legend_names_each_curve_beside_a_20_pixel_stroke() {
        let svg = curves_svg(&history(&[1.8, 1.3, 0.8])).unwrap();
        let words = texts(&svg);
        for name in ["train loss", "val loss", "val acc", "epoch"] {
            assert!(words.iter().any(|w| w == name), "{name} in {words:?}");
        }
        assert_eq!(legend_strokes(&svg), [TRAIN, VAL_LOSS, VAL_ACC]);
    }
}
