//! An SVG chart of a run: round-trip p50 and streaming GB/s against message
//! size, one line per transport (the same colour in both panels, listed once
//! in a legend beside them), both axes logarithmic, with the floor of each
//! panel drawn thick, black and dashed.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{BenchError, Result};
use crate::{Row, Scenario, TransportKind};

/// Twenty distinct colours (Tableau's "tab20"); past twenty, lines repeat a
/// colour with hollow markers.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

/// How a transport is drawn, the same in both panels.
#[derive(Clone, Copy)]
struct Look {
    color: RGBColor,
    hollow: bool,
    floor: bool,
}

/// Whether `transport` is a panel's floor (the cache line, or memcpy).
fn is_floor(transport: &str) -> bool {
    transport == TransportKind::FloorSpin.as_str() || transport.starts_with("floor: memcpy")
}

/// Every transport of `rows` in the order it first appears, with its look.
fn looks(rows: &[Row]) -> Vec<(String, Look)> {
    let mut out: Vec<(String, Look)> = Vec::new();
    let mut n = 0;
    for r in rows {
        if out.iter().any(|(t, _)| *t == r.transport) {
            continue;
        }
        let look = if is_floor(&r.transport) {
            Look {
                color: BLACK,
                hollow: false,
                floor: true,
            }
        } else {
            n += 1;
            Look {
                color: PALETTE[(n - 1) % PALETTE.len()],
                hollow: n > PALETTE.len(),
                floor: false,
            }
        };
        out.push((r.transport.clone(), look));
    }
    out
}

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

/// A size as people write it: 8 B, 64 B, 1 KiB, 64 KiB, 1 MiB.
pub(crate) fn size_label(bytes: f64) -> String {
    let b = bytes.round() as u64;
    let unit = |shift: u32, name: &str| {
        let v = b as f64 / (1u64 << shift) as f64;
        if v.fract() == 0.0 {
            format!("{v:.0} {name}")
        } else {
            format!("{v:.1} {name}")
        }
    };
    match b {
        0..1024 => format!("{b} B"),
        1024..1_048_576 => unit(10, "KiB"),
        1_048_576..1_073_741_824 => unit(20, "MiB"),
        _ => unit(30, "GiB"),
    }
}

/// A time in nanoseconds as ns, µs, ms or s, without needless decimals.
pub(crate) fn time_label(ns: f64) -> String {
    let (v, unit) = match ns {
        n if n < 1e3 => (n, "ns"),
        n if n < 1e6 => (n / 1e3, "µs"),
        n if n < 1e9 => (n / 1e6, "ms"),
        n => (n / 1e9, "s"),
    };
    format!("{} {unit}", plain(v))
}

/// A number without trailing zeros: 1, 30, 0.3, 0.03.
fn plain(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Tick values 1 and 3 times each power of ten within `lo..=hi`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut p = 10f64.powi(lo.log10().floor() as i32);
    while p <= hi {
        for m in [1.0, 3.0] {
            let v = p * m;
            if (lo..=hi).contains(&v) {
                out.push(v);
            }
        }
        p *= 10.0;
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    y_label: &dyn Fn(&f64) -> String,
    lines: &[(String, Vec<(f64, f64)>)],
    looks: &[(String, Look)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| plot(e);
    let ((x0, x1), (y0, y1)) = bounds(lines);
    let mut sizes: Vec<f64> = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x0..x1).log_scale().with_key_points(sizes),
            (y0..y1).log_scale().with_key_points(ticks(y0, y1)),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("message size")
        .y_desc(y_desc)
        .x_label_formatter(&|v| size_label(*v))
        .y_label_formatter(y_label)
        .draw()
        .map_err(e)?;
    // Floors last, so that they are drawn over the rest.
    let mut order: Vec<&(String, Vec<(f64, f64)>)> = lines.iter().collect();
    order.sort_by_key(|(name, _)| is_floor(name));
    for (name, pts) in order {
        let Some(look) = looks.iter().find(|(t, _)| t == name).map(|(_, l)| *l) else {
            continue;
        };
        if look.floor {
            chart
                .draw_series(DashedLineSeries::new(
                    pts.iter().copied(),
                    10,
                    6,
                    BLACK.stroke_width(4),
                ))
                .map_err(e)?;
            chart
                .draw_series(
                    pts.iter()
                        .map(|&p| Rectangle::new([p, p], BLACK.stroke_width(6))),
                )
                .map_err(e)?;
            continue;
        }
        let color = look.color;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(e)?;
        let style = if look.hollow {
            color.stroke_width(2)
        } else {
            color.filled()
        };
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, style)))
            .map_err(e)?;
    }
    Ok(())
}

/// The legend: each transport once, as its line and marker look.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    looks: &[(String, Look)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| plot(e);
    let font = ("sans-serif", 14).into_font();
    area.draw(&Text::new(
        "transports",
        (10, 20),
        font.clone().style(FontStyle::Bold),
    ))
    .map_err(e)?;
    for (i, (name, look)) in looks.iter().enumerate() {
        let y = 44 + 19 * i as i32;
        if look.floor {
            area.draw(&plotters::element::DashedPathElement::new(
                vec![(10, y), (44, y)],
                10,
                6,
                BLACK.stroke_width(4),
            ))
            .map_err(e)?;
        } else {
            area.draw(&PathElement::new(
                vec![(10, y), (44, y)],
                look.color.stroke_width(2),
            ))
            .map_err(e)?;
            let style = if look.hollow {
                look.color.stroke_width(2)
            } else {
                look.color.filled()
            };
            area.draw(&Circle::new((27, y), 4, style)).map_err(e)?;
        }
        area.draw(&Text::new(name.as_str(), (52, y - 7), font.clone()))
            .map_err(e)?;
    }
    Ok(())
}

/// Writes the chart of `rows` to `path`.
///
/// # Errors
/// The plotting library's error if the file cannot be written.
pub fn write_svg(rows: &[Row], path: &Path) -> Result<()> {
    let looks = looks(rows);
    let height = (60 + 19 * looks.len() as u32).max(620);
    let root = SVGBackend::new(path, (1700, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot)?;
    let (panels, side) = root.split_horizontally(1340);
    let (left, right) = panels.split_horizontally(670);
    let lat = series(rows, Scenario::Latency, |r| {
        r.latency_ns.map(|l| l[0] as f64)
    });
    draw(
        &left,
        "Round trip, p50 (lower is better; dashed: the floor)",
        "round trip",
        &|v| time_label(*v),
        &lat,
        &looks,
    )?;
    let thr = series(rows, Scenario::Stream, |r| r.gb_per_s);
    draw(
        &right,
        "One-way streaming (higher is better; dashed: memcpy)",
        "GB/s",
        &|v| plain(*v),
        &thr,
        &looks,
    )?;
    legend(&side, &looks)?;
    root.present().map_err(plot)
}

fn plot(e: impl std::fmt::Display) -> BenchError {
    BenchError::library("plotters", e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_read_as_people_write_sizes_and_times() {
        let sizes: Vec<String> = [8.0, 64.0, 1024.0, 65536.0, 1048576.0, 1536.0]
            .into_iter()
            .map(size_label)
            .collect();
        assert_eq!(
            sizes,
            ["8 B", "64 B", "1 KiB", "64 KiB", "1 MiB", "1.5 KiB"]
        );
        let times: Vec<String> = [100.0, 3000.0, 1e6, 2.5e7, 3e9]
            .into_iter()
            .map(time_label)
            .collect();
        assert_eq!(times, ["100 ns", "3 µs", "1 ms", "25 ms", "3 s"]);
        assert_eq!(ticks(50.0, 2000.0), [100.0, 300.0, 1000.0]);
    }
}
