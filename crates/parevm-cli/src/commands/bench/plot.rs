//! `parevm bench --plot`: horizontal bars of the speedup per case and
//! thread count, as SVG or PNG.
//!
//! plotters is built without its default features (no fontconfig, no system
//! fonts), so text is rendered with DejaVu Sans, which ships with the binary
//! (Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`).

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Row;

const FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
/// Bar colours per thread count (red is kept for results that differ).
const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Registers the bundled font once per process.
fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    anyhow::ensure!(
        ok,
        "the bundled font assets/DejaVuSans.ttf could not be loaded"
    );
    Ok(())
}

enum Format {
    Svg,
    Png,
}

fn format_of(path: &Path) -> anyhow::Result<Format> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("svg") => Ok(Format::Svg),
        Some("png") => Ok(Format::Png),
        _ => anyhow::bail!(
            "--plot {}: the file name must end in .svg or .png",
            path.display()
        ),
    }
}

/// Fails early (before measuring) on a plot path plotters cannot write.
pub(crate) fn check_extension(path: &Path) -> anyhow::Result<()> {
    format_of(path).map(|_| ())
}

/// Draws the speedups of `rows` into `path`.
pub(crate) fn write(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    register_font()?;
    let format = format_of(path)?;
    let mut cases: Vec<String> = Vec::new();
    let mut threads: Vec<usize> = Vec::new();
    for r in rows {
        let label = r.label();
        if !cases.contains(&label) {
            cases.push(label);
        }
        if !threads.contains(&r.threads) {
            threads.push(r.threads);
        }
    }
    threads.sort_unstable();
    let band = 12 * threads.len() as u32 + 10;
    let size = (1000u32, (120 + band * cases.len() as u32).max(300));
    let result = match format {
        Format::Svg => draw(
            SVGBackend::new(path, size).into_drawing_area(),
            rows,
            &cases,
            &threads,
        )
        .map_err(|e| e.to_string()),
        Format::Png => draw(
            BitMapBackend::new(path, size).into_drawing_area(),
            rows,
            &cases,
            &threads,
        )
        .map_err(|e| e.to_string()),
    };
    result.map_err(|e| anyhow::anyhow!("--plot {}: {e}", path.display()))
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    rows: &[Row],
    cases: &[String],
    threads: &[usize],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let n = cases.len();
    let max_speedup = rows.iter().map(|r| r.speedup).fold(2.0f64, f64::max) * 1.1;
    // Case i is drawn at y = n - 1 - i, so the first case is at the top.
    let y_of = |case: usize| (n - 1 - case) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "parevm: speedup of parallel over sequential execution",
            (FAMILY, 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(170)
        .build_cartesian_2d(0f64..max_speedup, -0.5f64..n as f64 - 0.5)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("speedup (median sequential time / median parallel time)")
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .draw()?;
    let slot = 0.8 / threads.len() as f64;
    for (t_index, &t) in threads.iter().enumerate() {
        let color = COLORS[t_index % COLORS.len()];
        let bars = rows.iter().filter(|r| r.threads == t).filter_map(|r| {
            let case = cases.iter().position(|c| *c == r.label())?;
            // A result that differs from the sequential one is drawn in red.
            // Thread counts top to bottom within a case's band.
            let top = y_of(case) + 0.4 - t_index as f64 * slot;
            let fill = if r.identical {
                color.filled()
            } else {
                RED.filled()
            };
            Some(Rectangle::new(
                [(0.0, top - slot * 0.9), (r.speedup, top)],
                fill,
            ))
        });
        let name = if t == 1 {
            "1 thread".to_owned()
        } else {
            format!("{t} threads")
        };
        chart
            .draw_series(bars)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    // Case names left of the axis, centred on their band.
    let label_style =
        TextStyle::from((FAMILY, 12).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (case, name) in cases.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, y_of(case)));
        root.draw(&Text::new(name.clone(), (x - 8, y), label_style.clone()))?;
    }
    chart.draw_series(LineSeries::new(
        [(1.0, -0.5), (1.0, n as f64 - 0.5)],
        BLACK.stroke_width(1),
    ))?;
    chart
        .configure_series_labels()
        .label_font((FAMILY, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()
}
