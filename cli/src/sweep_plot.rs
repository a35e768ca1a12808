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

    // The axis spans the runs that have points to show (all, if none has).
    let shown = || points.iter().filter(|p| !p.diverged);
    let lrs: Vec<f64> = if shown().next().is_some() {
        shown().map(|p| f64::from(p.lr)).collect()
    } else {
        points.iter().map(|p| f64::from(p.lr)).collect()
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
            .x_label_formatter(&|x| format!("{x}"))
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
