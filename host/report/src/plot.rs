//! `--plot FILE.svg`: throughput, hand-off p99 and CPU per message against the swept value,
//! one series per backend (and per value of any other axis), drawn with `plotters`' SVG
//! backend (text as SVG `<text>`, no fonts needed). Each point is the median over the rounds
//! with its 95 % interval as an error bar (drawn at opacity [`ERROR_BAR_OPACITY`], three lines
//! each, so a reader of the SVG can count them). Series differ in colour (Okabe and Ito's
//! colour-blind-safe palette), marker and dash, so none depends on colour alone. Log axes where
//! every value is a positive number spanning more than a factor of 10.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::{Report, RunReport, cpu_per_message_ns, median_interval};

/// The opacity of the error bars' lines (and only theirs).
pub const ERROR_BAR_OPACITY: f64 = 0.85;

/// Okabe and Ito's palette, without its yellow (too faint on white): told apart by people
/// with any common colour-vision deficiency.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x00, 0x00, 0x00), // black
];

/// A plotted point: x, the median, and its interval's low and high ends.
type Point = (f64, f64, f64, f64);

/// One figure to draw.
struct Panel {
    title: &'static str,
    unit: &'static str,
    get: fn(&RunReport) -> f64,
}

const PANELS: [Panel; 3] = [
    Panel {
        title: "throughput",
        unit: "messages/s",
        get: |r| r.msgs_per_s,
    },
    Panel {
        title: "hand-off p99",
        unit: "ns",
        get: |r| r.latency_ns.p99 as f64,
    },
    Panel {
        title: "CPU per message",
        unit: "ns",
        get: cpu_per_message_ns,
    },
];

/// Draws `report`'s sweep along its first axis into `path`.
pub fn plot(report: &Report, path: &Path) -> anyhow::Result<()> {
    let svg = svg(report)?;
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

/// The SVG of [`plot`], as text.
pub fn svg(report: &Report) -> anyhow::Result<String> {
    let mut text = String::new();
    draw(report, &mut text)?;
    Ok(text)
}

fn draw(report: &Report, out: &mut String) -> anyhow::Result<()> {
    let axis = report
        .runs
        .iter()
        .find_map(|r| r.sweep.keys().next().cloned())
        .context("--plot needs a sweep: the scenario has no [sweep] table")?;
    // The axis's values in run order, each once.
    let mut values: Vec<String> = Vec::new();
    for r in report.measured() {
        if let Some(v) = r.sweep.get(&axis)
            && !values.contains(v)
        {
            values.push(v.clone());
        }
    }
    let numeric: Option<Vec<f64>> = values.iter().map(|v| v.parse::<f64>().ok()).collect();
    // x positions: the values themselves when numeric, else their index.
    let xs: Vec<f64> = match &numeric {
        Some(n) => n.clone(),
        None => (0..values.len()).map(|i| i as f64).collect(),
    };
    // Series: backend plus the other axes' values; points (x, median over repeats).
    let mut series: BTreeMap<String, Vec<(usize, Vec<&RunReport>)>> = BTreeMap::new();
    for r in report.measured().filter(|r| r.ok) {
        let Some(v) = r.sweep.get(&axis) else {
            continue;
        };
        let i = values.iter().position(|x| x == v).unwrap_or(0);
        let rest: Vec<String> = r
            .sweep
            .iter()
            .filter(|(k, _)| **k != axis)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let name = if rest.is_empty() {
            r.backend.clone()
        } else {
            format!("{} {}", r.backend, rest.join(","))
        };
        let points = series.entry(name).or_default();
        match points.iter_mut().find(|(j, _)| *j == i) {
            Some((_, runs)) => runs.push(r),
            None => points.push((i, vec![r])),
        }
    }
    let root = SVGBackend::with_string(out, (900, 1200)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((PANELS.len(), 1));
    let (xmin, xmax) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let log_x = numeric.is_some() && xmin > 0.0 && xmax / xmin > 10.0;
    for (panel, area) in PANELS.iter().zip(&panels) {
        // Per series, its points: (x, median, lo, hi) over the ok rounds.
        let mut lines: Vec<(String, Vec<Point>)> = Vec::new();
        for (name, points) in &series {
            let mut line: Vec<Point> = points
                .iter()
                .filter_map(|(i, runs)| {
                    let v: Vec<f64> = runs.iter().map(|r| (panel.get)(r)).collect();
                    let m = median_interval(&v)?;
                    Some((xs[*i], m.median, m.lo, m.hi))
                })
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            lines.push((name.clone(), line));
        }
        let ys: Vec<f64> = lines
            .iter()
            .flat_map(|(_, l)| l.iter().flat_map(|p| [p.2, p.3]))
            .collect();
        let ymin = ys.iter().copied().fold(f64::INFINITY, f64::min).max(1e-9);
        let ymax = ys
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
            .max(ymin * 1.01);
        let log_y = ymax / ymin > 10.0;
        let caption = format!("{} ({}) against {axis}", panel.title, panel.unit);
        let mut builder = ChartBuilder::on(area);
        builder
            .caption(caption, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(80);
        let (x0, x1) = if log_x {
            (xmin / 1.5, xmax * 1.5)
        } else {
            (xmin - 0.5, xmax + 0.5)
        };
        let labels = values.clone();
        let x_fmt = move |x: &f64| {
            if numeric_label(x, &labels) {
                human(*x)
            } else {
                // A categorical axis: the label of the nearest index.
                labels
                    .iter()
                    .enumerate()
                    .find(|(i, _)| (*i as f64 - x).abs() < 0.5)
                    .map(|(_, l)| l.clone())
                    .unwrap_or_default()
            }
        };
        // Four combinations of log and linear axes, one drawing routine.
        macro_rules! draw {
            ($x:expr, $y:expr) => {{
                let mut chart = builder.build_cartesian_2d($x, $y)?;
                chart
                    .configure_mesh()
                    .x_desc(axis.as_str())
                    .y_desc(panel.unit)
                    .x_labels(8)
                    .y_labels(6)
                    .label_style(("sans-serif", 15))
                    .axis_desc_style(("sans-serif", 16))
                    .x_label_formatter(&x_fmt)
                    .y_label_formatter(&|y| human(*y))
                    .draw()?;
                for (k, (name, line)) in lines.iter().enumerate() {
                    let color = PALETTE[k % PALETTE.len()];
                    let style = color.stroke_width(2);
                    let mids = line.iter().map(|p| (p.0, p.1));
                    // The dash tells series apart where colours do not: solid, dashed, dotted.
                    let series = match k % 3 {
                        0 => chart.draw_series(LineSeries::new(mids, style))?,
                        1 => chart.draw_series(DashedLineSeries::new(mids, 10, 6, style))?,
                        _ => chart.draw_series(DashedLineSeries::new(mids, 3, 4, style))?,
                    };
                    series.label(name.as_str()).legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(-8, 0), (16, 0)], style)
                            + Polygon::new(marker_outline(k, (4, 0)), color.filled())
                    });
                    let bar = color.mix(ERROR_BAR_OPACITY).stroke_width(1);
                    chart.draw_series(
                        line.iter()
                            .map(|p| ErrorBar::new_vertical(p.0, p.2, p.1, p.3, bar, 10)),
                    )?;
                    let at = |p: &Point| EmptyElement::at((p.0, p.1));
                    let filled = color.filled();
                    match k % 4 {
                        0 => chart.draw_series(
                            line.iter().map(|p| at(p) + Circle::new((0, 0), 5, filled)),
                        )?,
                        1 => chart.draw_series(
                            line.iter()
                                .map(|p| at(p) + TriangleMarker::new((0, 0), 6, filled)),
                        )?,
                        2 => chart.draw_series(
                            line.iter()
                                .map(|p| at(p) + Rectangle::new([(-5, -5), (5, 5)], filled)),
                        )?,
                        _ => {
                            chart
                                .draw_series(line.iter().map(|p| {
                                    at(p) + Cross::new((0, 0), 5, color.stroke_width(2))
                                }))?
                        }
                    };
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()?;
            }};
        }
        let (y0, y1) = if log_y {
            (ymin / 1.5, ymax * 1.5)
        } else {
            (0.0, ymax * 1.1)
        };
        match (log_x, log_y) {
            (true, true) => draw!((x0..x1).log_scale(), (y0..y1).log_scale()),
            (true, false) => draw!((x0..x1).log_scale(), y0..y1),
            (false, true) => draw!(x0..x1, (y0..y1).log_scale()),
            (false, false) => draw!(x0..x1, y0..y1),
        }
    }
    root.present().context("drawing the plot")?;
    drop(panels);
    drop(root);
    Ok(())
}

/// The outline of series `k`'s marker centred on `at` (pixels), for its legend entry: an
/// octagon for the circle, the triangle, the square, a plus for the cross.
fn marker_outline(k: usize, at: (i32, i32)) -> Vec<(i32, i32)> {
    let shape: &[(i32, i32)] = match k % 4 {
        0 => &[
            (-2, -5),
            (2, -5),
            (5, -2),
            (5, 2),
            (2, 5),
            (-2, 5),
            (-5, 2),
            (-5, -2),
        ],
        1 => &[(0, -6), (6, 5), (-6, 5)],
        2 => &[(-5, -5), (5, -5), (5, 5), (-5, 5)],
        _ => &[
            (-1, -5),
            (1, -5),
            (1, -1),
            (5, -1),
            (5, 1),
            (1, 1),
            (1, 5),
            (-1, 5),
            (-1, 1),
            (-5, 1),
            (-5, -1),
            (-1, -1),
        ],
    };
    shape.iter().map(|(x, y)| (at.0 + x, at.1 + y)).collect()
}

/// Whether the x labels are the numbers themselves (numeric axis).
fn numeric_label(_x: &f64, labels: &[String]) -> bool {
    labels.iter().all(|l| l.parse::<f64>().is_ok())
}

/// `4.1k`, `1.0M`, `64`: a number for an axis label.
fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
