//! `rfpga plot-skips`: test accuracy against the number of skips changed, one line per run (its
//! `skips.csv`), with the teacher's accuracy as a reference line — the deck's figure.

use anyhow::{bail, Result};
use clap::Args;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct PlotArgs {
    /// Run folders with a skips.csv (from `rfpga distill --skip-policy remove|shorten`).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Output SVG file.
    #[arg(long)]
    out: PathBuf,
    /// Reference accuracy in % (default: the first run's teacher's final test accuracy).
    #[arg(long)]
    teacher_acc: Option<f64>,
}

pub fn run(a: PlotArgs) -> Result<()> {
    crate::output::check(&a.out, "plot-skips", crate::output::Kind::Svg)?;
    plot_skip_runs(&a.runs, &a.out, a.teacher_acc)?;
    println!("{} written", a.out.display());
    Ok(())
}

/// One run's series: (skips changed, accuracy %) right after each change and at the end of each
/// interval; point 0 is the accuracy before the first change.
struct Series {
    label: String,
    after: Vec<(f64, f64)>,
    end: Vec<(f64, f64)>,
}

fn read_series(run: &Path) -> Result<Series> {
    let path = run.join("skips.csv");
    let rows = rfpga_core::skips::read(&path)?;
    let Some(first) = rows.first() else { bail!("{}: no skip changes recorded", path.display()) };
    let before = (0.0, 100.0 * first.acc_before);
    let after = std::iter::once(before).chain(rows.iter().map(|r| (r.step as f64, 100.0 * r.acc_after))).collect();
    let end = std::iter::once(before).chain(rows.iter().filter_map(|r| Some((r.step as f64, 100.0 * r.acc_end?)))).collect();
    let verb = if first.to == "short" { "shortened" } else { "removed" };
    let name = run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Series { label: format!("{name} ({verb})"), after, end })
}

/// The final test accuracy (%) of the teacher of `run`, from the teacher's metrics.
fn teacher_accuracy(run: &Path) -> Option<f64> {
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("train.json")).ok()?).ok()?;
    let teacher = PathBuf::from(cfg["distill"]["teacher"].as_str()?);
    let metrics = std::fs::read_to_string(teacher.join("metrics.jsonl")).ok()?;
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last()?).ok()?;
    Some(100.0 * last["test_acc"].as_f64()?)
}

/// The chart of test accuracy (%) against skips changed that both skip plots draw into: axes
/// from -0.3 to `xmax` + 0.3 and over `lo..hi` with room below for the legend, the series
/// `draw` adds, the legend in the lower left; drawn into memory, then written atomically.
type SkipChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>;

fn skip_chart(out: &Path, caption: &str, caption_size: u32, xmax: f64, (lo, hi): (f64, f64), draw: impl FnOnce(&mut SkipChart) -> Result<()>) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", out.display());
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", caption_size))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            // Room below the curves (which fall to the right) for the legend in the lower left.
            .build_cartesian_2d(-0.3..xmax + 0.3, (lo - 0.4 * (hi - lo) - 1.0).floor().max(0.0)..(hi + 1.0).ceil().min(100.0))
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("skips changed")
            .y_desc("test top-1 (%)")
            .x_labels(xmax as usize + 1)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(|e| err(&e))?;
        draw(&mut chart)?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerLeft)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    rfpga_core::io::write_atomic(out, svg.as_bytes())?;
    Ok(())
}

pub fn plot_skip_runs(runs: &[PathBuf], out: &Path, teacher_acc: Option<f64>) -> Result<()> {
    let series = runs.iter().map(|r| read_series(r)).collect::<Result<Vec<_>>>()?;
    let teacher = teacher_acc.or_else(|| teacher_accuracy(&runs[0]));
    let all = series.iter().flat_map(|s| s.after.iter().chain(&s.end)).map(|p| p.1).chain(teacher);
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let xmax = series.iter().flat_map(|s| s.after.iter().map(|p| p.0)).fold(1.0, f64::max);
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", out.display());
    skip_chart(out, "Test accuracy while skips are changed one at a time", 22, xmax, (lo, hi), |chart| {
        if let Some(t) = teacher {
            chart
                .draw_series(LineSeries::new([(-0.3, t), (xmax + 0.3, t)], BLACK.stroke_width(1)))
                .map_err(|e| err(&e))?
                .label(format!("teacher {t:.2}%"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
        }
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(s.end.iter().copied(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(format!("{}: end of interval", s.label))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
            chart.draw_series(s.end.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| err(&e))?;
            chart
                .draw_series(s.after.iter().map(|&p| Cross::new(p, 4, color.stroke_width(1))))
                .map_err(|e| err(&e))?
                .label(format!("{}: right after the change", s.label))
                .legend(move |(x, y)| Cross::new((x + 10, y), 4, color));
        }
        Ok(())
    })
}

/// Each configuration's test top-1 as trained (tch) and frozen (simulated, bit-exact): bars at
/// the mean over seeds, whiskers from the lowest to the highest seed. `groups`: (label, trained
/// [mean, min, max], frozen [mean, min, max]) in %.
pub fn plot_accuracy_bars(groups: &[(String, [f64; 3], [f64; 3])], out: &Path) -> Result<()> {
    if groups.is_empty() {
        bail!("{}: no configurations to draw", out.display());
    }
    let lo = groups.iter().flat_map(|g| [g.1[1], g.2[1]]).fold(f64::MAX, f64::min);
    let hi = groups.iter().flat_map(|g| [g.1[2], g.2[2]]).fold(f64::MIN, f64::max);
    let (y0, y1) = ((lo - 0.25 * (hi - lo + 1.0)).max(0.0).floor(), (hi + 0.25 * (hi - lo + 1.0)).min(100.0).ceil());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", out.display());
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let n = groups.len();
        let labels: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption("Test top-1 per configuration (bars: mean over seeds, whiskers: min–max)", ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..n as f64, y0..y1)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 && i < labels.len() { labels[i].clone() } else { String::new() }
            })
            .y_desc("test top-1 (%)")
            .draw()
            .map_err(|e| err(&e))?;
        for (k, (name, color)) in [("trained (tch)", Palette99::pick(0).to_rgba()), ("frozen, simulated", Palette99::pick(1).to_rgba())].into_iter().enumerate() {
            let x0 = |i: usize| i as f64 + 0.15 + 0.35 * k as f64;
            let stat = |g: &(String, [f64; 3], [f64; 3])| if k == 0 { g.1 } else { g.2 };
            chart
                .draw_series(groups.iter().enumerate().map(|(i, g)| Rectangle::new([(x0(i), y0), (x0(i) + 0.3, stat(g)[0])], color.filled())))
                .map_err(|e| err(&e))?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
            chart
                .draw_series(groups.iter().enumerate().map(|(i, g)| PathElement::new([(x0(i) + 0.15, stat(g)[1]), (x0(i) + 0.15, stat(g)[2])], BLACK.stroke_width(2))))
                .map_err(|e| err(&e))?;
            chart
                .draw_series(groups.iter().enumerate().map(|(i, g)| Text::new(format!("{:.2}", stat(g)[0]), (x0(i) + 0.02, stat(g)[0]), ("sans-serif", 13))))
                .map_err(|e| err(&e))?;
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).position(SeriesLabelPosition::UpperRight).draw().map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    rfpga_core::io::write_atomic(out, svg.as_bytes())?;
    Ok(())
}

/// Utilization per resource against the part's capacity: one bar per resource (% of the part),
/// one group per design, the 100 % line marked. `designs`: (label, [BRAM, DSP, FF, LUT, URAM] %).
pub fn plot_utilization(designs: &[(String, [f64; 5])], part: &str, out: &Path) -> Result<()> {
    const NAMES: [&str; 5] = ["BRAM_18K", "DSP", "FF", "LUT", "URAM"];
    let top = designs.iter().flat_map(|d| d.1).filter(|v| v.is_finite()).fold(100.0f64, f64::max) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 480)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", out.display());
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let groups = NAMES.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Estimated utilization of {part} (% of the part)"), ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..groups, 0f64..top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(NAMES.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 && i < NAMES.len() { NAMES[i].to_string() } else { String::new() }
            })
            .y_desc("% of the part")
            .draw()
            .map_err(|e| err(&e))?;
        let n = designs.len().max(1) as f64;
        let width = 0.8 / n;
        for (d, (label, values)) in designs.iter().enumerate() {
            let color = Palette99::pick(d).to_rgba();
            chart
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    let x0 = i as f64 + 0.1 + d as f64 * width;
                    let v = if v.is_finite() { *v } else { top };
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v)], color.filled())
                }))
                .map_err(|e| err(&e))?
                .label(label.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        }
        chart
            .draw_series(LineSeries::new([(0.0, 100.0), (groups, 100.0)], RED.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label("capacity (100 %)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], RED.stroke_width(2)));
        chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).position(SeriesLabelPosition::UpperRight).draw().map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    rfpga_core::io::write_atomic(out, svg.as_bytes())?;
    Ok(())
}

/// Accuracy against skips changed, one line per configuration (mean over its seeds), with the
/// spread (min to max over seeds) as a vertical bar at each point — the sweep summary's figure.
/// `series`: (label, [(skips changed, mean %, min %, max %)]).
/// `references`: horizontal dashed lines (label, accuracy %), the first in black (the teacher),
/// the rest in grey with longer dashes (students that kept their skips).
pub fn plot_skip_summary(series: &[(String, Vec<(usize, f64, f64, f64)>)], references: &[(String, f64)], out: &Path) -> Result<()> {
    let values = series.iter().flat_map(|s| s.1.iter().flat_map(|p| [p.2, p.3])).chain(references.iter().map(|r| r.1));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        bail!("{}: no skip curves to draw", out.display());
    }
    let xmax = series.iter().flat_map(|s| s.1.iter().map(|p| p.0 as f64)).fold(1.0, f64::max);
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", out.display());
    skip_chart(out, "Test accuracy against skips changed (mean over seeds, bars: min–max)", 20, xmax, (lo, hi), |chart| {
        for (k, (label, acc)) in references.iter().enumerate() {
            let (acc, color, dash) = (*acc, if k == 0 { BLACK } else { RGBColor(130, 130, 130) }, if k == 0 { 0.1 } else { 0.25 });
            let dashes = (0..((xmax + 0.6) / dash) as usize).step_by(2).map(move |i| {
                let x = -0.3 + i as f64 * dash;
                PathElement::new([(x, acc), ((x + dash).min(xmax + 0.3), acc)], color.stroke_width(2))
            });
            chart
                .draw_series(dashes)
                .map_err(|e| err(&e))?
                .label(format!("{label}: {acc:.2} %"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        for (i, (label, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points.iter().map(|p| (p.0 as f64, p.1)), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
            chart
                .draw_series(points.iter().map(|p| PathElement::new([(p.0 as f64, p.2), (p.0 as f64, p.3)], color.stroke_width(1))))
                .map_err(|e| err(&e))?;
            chart.draw_series(points.iter().map(|p| Circle::new((p.0 as f64, p.1), 3, color.filled()))).map_err(|e| err(&e))?;
        }
        Ok(())
    })
}
