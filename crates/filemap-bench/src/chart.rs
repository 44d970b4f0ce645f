//! An SVG chart of a run: round-trip p50 and streaming GB/s against message
//! size, one line per transport, both axes logarithmic.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{BenchError, Result};
use crate::{Row, Scenario};

const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 0, 0),
    RGBColor(120, 120, 120),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(23, 190, 207),
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// One line: a transport's points (size, value), in the order of `rows`.
fn series(
    rows: &[Row],
    sc: Scenario,
    value: impl Fn(&Row) -> Option<f64>,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in rows.iter().filter(|r| r.scenario == sc) {
        let Some(v) = value(r).filter(|v| v.is_finite() && *v > 0.0) else {
            continue;
        };
        let p = (r.size as f64, v);
        match out.iter_mut().find(|(t, _)| *t == r.transport) {
            Some((_, pts)) => pts.push(p),
            None => out.push((r.transport.clone(), vec![p])),
        }
    }
    for (_, pts) in &mut out {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

fn bounds(lines: &[(String, Vec<(f64, f64)>)]) -> ((f64, f64), (f64, f64)) {
    let pts = lines.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return ((1.0, 10.0), (1.0, 10.0));
    }
    ((x0 / 1.5, x1 * 1.5), (y0 / 2.0, y1 * 2.0))
}

fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    lines: &[(String, Vec<(f64, f64)>)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| plot(e);
    let ((x0, x1), (y0, y1)) = bounds(lines);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("message size (bytes)")
        .y_desc(y_desc)
        .draw()
        .map_err(e)?;
    for (i, (name, pts)) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    Ok(())
}

/// Writes the chart of `rows` to `path`.
///
/// # Errors
/// The plotting library's error if the file cannot be written.
pub fn write_svg(rows: &[Row], path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1400, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(plot)?;
    let (left, right) = root.split_horizontally(700);
    let lat = series(rows, Scenario::Latency, |r| {
        r.latency_ns.map(|l| l[0] as f64)
    });
    draw(
        &left,
        "Round trip, p50 (lower is better)",
        "nanoseconds",
        &lat,
    )?;
    let thr = series(rows, Scenario::Stream, |r| r.gb_per_s);
    draw(&right, "One-way streaming (higher is better)", "GB/s", &thr)?;
    root.present().map_err(plot)
}

fn plot(e: impl std::fmt::Display) -> BenchError {
    BenchError::library("plotters", e)
}
