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
