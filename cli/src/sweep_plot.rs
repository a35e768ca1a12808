//! `sweep.svg`: a sweep's final validation loss (left) and accuracy (right)
//! against the learning rate, on a log scale, one line per batch size.

use anyhow::{anyhow, Result};
use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

/// One run of a sweep: its settings and what its last epoch measured (NaN
/// for a run that diverged).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepPoint {
    /// Learning rate.
    pub lr: f32,
    /// Batch size.
    pub batch_size: u32,
    /// Mean training loss of the last epoch.
    pub train_loss: f64,
    /// Validation loss after the last epoch.
    pub val_loss: f64,
    /// Validation accuracy after the last epoch.
    pub val_acc: f64,
    /// Wall time of the run.
    pub seconds: f64,
    /// The loss became NaN or infinite and the run stopped.
    pub diverged: bool,
}

/// Picture size in pixels.
const SIZE: (u32, u32) = (900, 380);

/// The colours of the batch sizes' lines, in the order given.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// A learning rate on the axis as a person would write it: the tick at 0.3
/// is computed as 0.30000000000000004, so it is rounded to four significant
/// digits first, then printed in the shortest form that reads back the same.
fn lr_label(lr: f64) -> String {
    let rounded: f64 = format!("{lr:.3e}").parse().unwrap_or(lr);
    format!("{rounded}")
}

/// Renders the sweep as an SVG document.
pub fn sweep_svg(points: &[SweepPoint], epochs: u32) -> Result<String> {
    let mut svg = String::new();
    draw(&mut svg, points, epochs).map_err(|e| anyhow!("cannot draw sweep.svg: {e}"))?;
    Ok(svg)
}

fn draw(
    svg: &mut String,
    points: &[SweepPoint],
    epochs: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!("validation after {epochs} epochs, by learning rate and batch size");
    let root = root.titled(&title, ("sans-serif", 18))?;
    let panels = root.split_evenly((1, 2));

    // The axis spans the runs that have points to show (all, if none has;
    // the chapter's 0.1 if there are no runs, where an empty range would
    // leave plotters looking for ticks for ever).
    let shown = || points.iter().filter(|p| !p.diverged);
    let lrs: Vec<f64> = if shown().next().is_some() {
        shown().map(|p| f64::from(p.lr)).collect()
    } else if !points.is_empty() {
        points.iter().map(|p| f64::from(p.lr)).collect()
    } else {
        vec![0.1]
    };
    let lrs = lrs.into_iter();
    let lo = lrs.clone().fold(f64::INFINITY, f64::min);
    let hi = lrs.fold(0.0f64, f64::max);
    // One learning rate alone still needs a range around it.
    let (lo, hi) = if lo < hi {
        (lo / 1.5, hi * 1.5)
    } else {
        (lo / 3.0, lo * 3.0)
    };
    let mut batch_sizes: Vec<u32> = Vec::new();
    for p in points {
        if !batch_sizes.contains(&p.batch_size) {
            batch_sizes.push(p.batch_size);
        }
    }

    type Metric = fn(&SweepPoint) -> f64;
    let metrics: [(&str, Metric); 2] = [("val loss", |p| p.val_loss), ("val acc", |p| p.val_acc)];
    for (panel, (name, value)) in panels.iter().zip(metrics) {
        let top = points
            .iter()
            .map(value)
            .filter(|v| v.is_finite())
            .fold(1.0f64, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..top * 1.05)?;
        chart
            .configure_mesh()
            .x_desc("learning rate (log scale)")
            .y_desc(name)
            .x_label_formatter(&|&x| lr_label(x))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, &batch_size) in batch_sizes.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let mut line: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.batch_size == batch_size && value(p).is_finite())
                .map(|p| (f64::from(p.lr), value(p)))
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(
                    line.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(format!("batch {batch_size}"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::svg_shapes::{axes, centres, circles, fraction, legend_strokes, texts};

    fn point(lr: f32, batch_size: u32, val_loss: f64, val_acc: f64) -> SweepPoint {
        SweepPoint {
            lr,
            batch_size,
            train_loss: val_loss,
            val_loss,
            val_acc,
            seconds: 1.0,
            diverged: !val_loss.is_finite(),
        }
    }

    /// Where learning rate `lr` falls on a log axis from `lo` to `hi`.
    fn log_fraction(lr: f64, lo: f64, hi: f64) -> f64 {
        (lr / lo).ln() / (hi / lo).ln()
    }

    #[test]
    fn each_batch_size_is_a_line_over_the_learning_rates_that_converged() {
        let points = [
            point(0.01, 64, 0.9, 0.70),
            point(0.1, 64, 0.5, 0.80),
            point(1.0, 64, 2.0, 0.60),
            point(10.0, 64, f64::NAN, f64::NAN),
            point(0.01, 256, 1.2, 0.65),
            point(0.1, 256, 0.6, 0.78),
        ];
        let svg = sweep_svg(&points, 5).unwrap();
        let words = texts(&svg);
        for text in [
            "validation after 5 epochs, by learning rate and batch size",
            "batch 64",
            "batch 256",
            "learning rate (log scale)",
        ] {
            assert!(words.iter().any(|w| w == text), "{text} in {words:?}");
        }
        let panels = axes(&svg);
        assert_eq!(panels.len(), 2, "{panels:?}");
        // The axis runs from 0.01 / 1.5 to 1.5: the diverged run at 10 is
        // left out. Losses up to 1.05 x 2.0, accuracies up to 1.05.
        let (lo, hi) = (0.01 / 1.5, 1.0 * 1.5);
        let blue = centres(&svg, "#1F77B4");
        let red = centres(&svg, "#D62728");
        assert_eq!((blue.len(), red.len()), (6, 4), "a point in each panel");
        for (panel, (left, right, top, bottom)) in panels.into_iter().enumerate() {
            let in_panel = |c: &&(i32, i32)| c.0 >= left && c.0 <= right;
            let blue: Vec<_> = blue.iter().filter(in_panel).collect();
            let red: Vec<_> = red.iter().filter(in_panel).collect();
            assert_eq!((blue.len(), red.len()), (3, 2), "panel {panel}");
            let (values, top_value): ([f64; 3], f64) = if panel == 0 {
                ([0.9, 0.5, 2.0], 2.1)
            } else {
                ([0.70, 0.80, 0.60], 1.05)
            };
            for ((c, lr), v) in blue.iter().zip([0.01, 0.1, 1.0]).zip(values) {
                let x = fraction(c.0, left, right);
                assert!(
                    (x - log_fraction(lr, lo, hi)).abs() < 0.01,
                    "panel {panel}: {x}"
                );
                let y = fraction(c.1, bottom, top);
                assert!((y - v / top_value).abs() < 0.01, "panel {panel}: {y}");
            }
        }
    }

    #[test]
    fn learning_rates_are_labelled_as_written() {
        assert_eq!(lr_label(0.1 + 0.2), "0.3");
        assert_eq!(lr_label(0.01), "0.01");
        assert_eq!(lr_label(2.0), "2");
        assert_eq!(lr_label(0.00123456), "0.001235");
    }

    #[test]
    fn one_learning_rate_is_drawn_in_the_middle_of_its_axis() {
        let svg = sweep_svg(&[point(0.1, 256, 0.5, 0.8)], 1).unwrap();
        // The axis runs from a third of it to three times it: ticks at
        // 0.1, 0.2 and 0.3 in each panel, after the loss and accuracy ticks.
        let words = texts(&svg);
        let ticks: Vec<&str> = words
            .iter()
            .map(String::as_str)
            .filter(|w| ["0.1", "0.2", "0.3"].contains(w))
            .collect();
        assert_eq!(ticks.len(), 2 * (3 + 3), "{words:?}");
        assert_eq!(words.iter().filter(|w| *w == "0.3").count(), 4, "{words:?}");
        let panels = axes(&svg);
        let blue = centres(&svg, "#1F77B4");
        assert_eq!(blue.len(), 2);
        for ((left, right, _, _), c) in panels.into_iter().zip(blue) {
            assert!((fraction(c.0, left, right) - 0.5).abs() < 0.01);
        }
    }

    #[test]
    fn only_diverged_runs_still_make_axes_without_points() {
        let svg = sweep_svg(&[point(0.1, 256, f64::NAN, f64::NAN)], 1).unwrap();
        assert_eq!(axes(&svg).len(), 2);
        assert!(circles(&svg).is_empty());
        // No runs at all: the same axes, around 0.1, and no legend.
        let empty = sweep_svg(&[], 1).unwrap();
        assert_eq!(axes(&empty), axes(&svg));
        assert!(circles(&empty).is_empty());
        assert!(!texts(&empty).iter().any(|w| w.starts_with("batch")));
    }

    #[test]
    fn seven_batch_sizes_take_the_six_colours_then_start_again() {
        let points: Vec<SweepPoint> = (0..7).map(|i| point(0.1, 8 << i, 0.5, 0.8)).collect();
        let svg = sweep_svg(&points, 1).unwrap();
        // The legend: a 20-pixel stroke per batch size, in each panel.
        let strokes = legend_strokes(&svg);
        let mut want: Vec<String> = COLOURS
            .iter()
            .chain(&COLOURS[..1])
            .map(|c| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2))
            .collect();
        want.extend(want.clone());
        assert_eq!(strokes, want);
    }
}
