//! `rfpga summarize`: the results of a sweep's runs aggregated per configuration (all settings
//! but the seed): run count, mean and sample standard deviation of the trained (float or QAT)
//! and the frozen, simulated top-1, resources and fit per part. Tables in Markdown and CSV;
//! the figures are drawn by the CLI from [`Summary`].

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

use crate::plan::RunConfig;

/// Mean, sample standard deviation (None for one value), count, lowest and highest value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(values: &[f64]) -> Stat {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n.max(1) as f64;
        let std = (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Stat { mean, std, n, min, max }
    }
}

#[derive(Debug, Clone)]
pub struct PartSummary {
    pub part: String,
    pub device: String,
    /// BRAM_18K, DSP, FF, LUT, URAM utilization in % (mean over runs).
    pub utilization: [f64; 5],
    /// Runs whose design fits, of all.
    pub fits: usize,
    pub images_per_s: f64,
    /// BRAM_18K of the skip FIFOs (mean).
    pub skip_fifo_bram: f64,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub config: RunConfig,
    pub runs: Vec<String>,
    pub trained: Stat,
    pub frozen: Stat,
    pub frozen_images: usize,
    pub test_images: usize,
    pub parts: Vec<PartSummary>,
    /// Training wall time per run in minutes, when every run of the group recorded it.
    pub train_minutes: Option<Stat>,
    /// Mean accuracy (%) and its spread (min, max) against skips changed, over the group's runs.
    pub skip_curve: Vec<(usize, Stat)>,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub groups: Vec<Group>,
}

fn num(v: &Value, path: &Path, field: &str) -> Result<f64> {
    let mut cur = v;
    for key in field.split('.') {
        cur = &cur[key];
    }
    cur.as_f64().with_context(|| format!("{}: `{field}`: expected a number, found {cur}", path.display()))
}

const RESOURCES: [&str; 5] = ["bram_18k", "dsp", "ff", "lut", "uram"];

/// Depth, shortcut, float before fixed point and narrow before wide, skips kept, shortened,
/// removed.
fn order_key(c: &RunConfig) -> (usize, String, u32, String, usize, String) {
    let width = if c.format == "float" { 0 } else { rfpga_core::fixed::FixedFormat::parse(&c.format).map_or(u32::MAX, |f| f.width) };
    let skip_rank = ["keep", "shorten", "remove"].iter().position(|s| *s == c.skips).unwrap_or(3);
    (c.depth, c.shortcut.clone(), width, c.format.clone(), skip_rank, c.kd.clone().unwrap_or_default())
}

/// Reads RUNS_DIR/runs/*/result.json (or RUNS_DIR/*/result.json) of finished runs.
pub fn summarize(dir: &Path) -> Result<Summary> {
    let runs_dir = if dir.join("runs").is_dir() { dir.join("runs") } else { dir.to_path_buf() };
    let mut results: Vec<(std::path::PathBuf, Value)> = Vec::new();
    let entries = std::fs::read_dir(&runs_dir).with_context(|| format!("reading {}", runs_dir.display()))?;
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path().join("result.json")).filter(|p| p.is_file()).collect();
    paths.sort();
    for p in paths {
        let done_path = p.with_file_name("done.json");
        if !done_path.is_file() {
            continue; // an unfinished run
        }
        // Only what the run produced: every recorded output must still have its SHA-256.
        let done = crate::run::read_done(&done_path)?;
        if !crate::run::outputs_intact(p.parent().expect("a run folder"), &done) {
            bail!("{}: the run's outputs changed since it finished (their SHA-256 no longer match); rerun it or remove the folder", done_path.display());
        }
        let v = rfpga_core::io::read_json_with_header(&p, crate::run::RESULT_FORMAT, crate::run::RESULT_VERSION)?;
        results.push((p, v));
    }
    if results.is_empty() {
        bail!("{}: no finished runs (no */result.json with done.json)", runs_dir.display());
    }
    let mut groups: BTreeMap<String, Vec<(std::path::PathBuf, Value, RunConfig)>> = BTreeMap::new();
    for (p, v) in results {
        let config: RunConfig = serde_json::from_value(v["config"].clone()).with_context(|| format!("{}: config", p.display()))?;
        groups.entry(config.group()).or_default().push((p, v, config));
    }
    let mut out = Vec::new();
    for (_, members) in groups {
        let config = members[0].2.clone();
        let mut trained = Vec::new();
        let mut frozen = Vec::new();
        let mut runs = Vec::new();
        for (p, v, _) in &members {
            trained.push(100.0 * num(v, p, "trained.top1")?);
            frozen.push(num(v, p, "frozen.top1")?);
            runs.push(v["run"].as_str().unwrap_or_default().to_string());
        }
        let (p0, v0, _) = &members[0];
        let frozen_images = num(v0, p0, "frozen.images")? as usize;
        let test_images = num(v0, p0, "trained.test_images")? as usize;
        let mut parts = Vec::new();
        let n_parts = v0["estimates"].as_array().map_or(0, Vec::len);
        for (p, v, _) in &members {
            if v["estimates"].as_array().map_or(0, Vec::len) != n_parts {
                bail!("{}: estimates: {} parts, but {} has {n_parts}: summarize runs of one sweep file", p.display(), v["estimates"].as_array().map_or(0, Vec::len), p0.display());
            }
        }
        for k in 0..n_parts {
            let e0 = &v0["estimates"][k];
            let part = e0["part"].as_str().unwrap_or_default().to_string();
            let mut util = [0.0; 5];
            let (mut fits, mut ips, mut fifo) = (0, 0.0, 0.0);
            for (p, v, _) in &members {
                let e = &v["estimates"][k];
                if e["part"].as_str() != Some(part.as_str()) {
                    bail!("{}: estimates[{k}].part: expected \"{part}\" as in the group's other runs, found {}", p.display(), e["part"]);
                }
                for (i, r) in RESOURCES.iter().enumerate() {
                    util[i] += num(e, p, &format!("utilization_percent.{r}"))? / members.len() as f64;
                }
                fits += usize::from(e["fits"].as_bool().unwrap_or(false));
                ips += num(e, p, "images_per_s")? / members.len() as f64;
                fifo += num(e, p, "skip_fifos.bram_18k")? / members.len() as f64;
            }
            parts.push(PartSummary { part, device: e0["device"].as_str().unwrap_or_default().to_string(), utilization: util, fits, images_per_s: ips, skip_fifo_bram: fifo });
        }
        // Skip curves: the points every run of the group has.
        let curves: Vec<Vec<(usize, f64)>> = members.iter().map(|(_, v, _)| serde_json::from_value(v["skip_curve"].clone()).unwrap_or_default()).collect();
        let len = curves.iter().map(Vec::len).min().unwrap_or(0);
        let skip_curve = (0..len).map(|i| (curves[0][i].0, Stat::of(&curves.iter().map(|c| 100.0 * c[i].1).collect::<Vec<_>>()))).collect();
        let minutes: Option<Vec<f64>> = members.iter().map(|(_, v, _)| v["trained"]["train_seconds"].as_f64().map(|s| s / 60.0)).collect();
        let train_minutes = minutes.map(|m| Stat::of(&m));
        out.push(Group { config, runs, trained: Stat::of(&trained), frozen: Stat::of(&frozen), frozen_images, test_images, parts, train_minutes, skip_curve });
    }
    out.sort_by_key(|g| order_key(&g.config));
    let parts_of = |g: &Group| g.parts.iter().map(|p| p.part.clone()).collect::<Vec<_>>();
    if let Some(g) = out.iter().find(|g| parts_of(g) != parts_of(&out[0])) {
        bail!("{}: runs {} and {} were estimated on different parts ({:?} vs {:?}): summarize runs of one sweep file", runs_dir.display(), g.runs[0], out[0].runs[0], parts_of(g), parts_of(&out[0]));
    }
    Ok(Summary { groups: out })
}

fn pm(s: &Stat) -> (String, String) {
    (format!("{:.2}", s.mean), s.std.map_or("—".into(), |d| format!("{d:.2}")))
}

fn model_name(c: &RunConfig) -> String {
    format!("ResNet-{}{}", c.depth, if c.shortcut == "A" { String::new() } else { format!(" ({})", c.shortcut) })
}

impl Summary {
    /// The accuracy table (shaped like the deck's: model, mean top-1, standard deviation) and
    /// one resource table per part.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s += "| Model | Weights | Skips | KD | Runs | Top-1 % trained (mean) | std | Top-1 % frozen, simulated (mean) | std |\n";
        s += "|---|---|---|---|---:|---:|---:|---:|---:|\n";
        for g in &self.groups {
            let c = &g.config;
            let (tm, ts) = pm(&g.trained);
            let (fm, fs) = pm(&g.frozen);
            s += &format!("| {} | {} | {} | {} | {} | {tm} | {ts} | {fm} | {fs} |\n", model_name(c), c.format, c.skips, c.kd.as_deref().unwrap_or("—"), g.trained.n);
        }
        if let Some(g) = self.groups.first() {
            s += &format!("\nTrained: the run's own test top-1 (float or QAT, libtorch) on {} test images; frozen: the ap_fixed model simulated bit-exactly on {} test images.\n", g.test_images, g.frozen_images);
        }
        s += &self.skip_markdown();
        let parts: Vec<(String, String)> = self.groups.first().map_or(Vec::new(), |g| g.parts.iter().map(|p| (p.part.clone(), p.device.clone())).collect());
        for (k, (part, device)) in parts.iter().enumerate() {
            let name = if part == device { part.clone() } else { format!("{part} ({device})") };
            s += &format!("\n**{name}**, estimated at 1 lane per convolution:\n\n");
            s += "| Model | Weights | Skips | KD | Runs | BRAM_18K % | DSP % | FF % | LUT % | URAM % | Skip FIFOs BRAM_18K | Fits | images/s |\n";
            s += "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
            for g in &self.groups {
                let c = &g.config;
                let p = &g.parts[k];
                let u = p.utilization;
                s += &format!(
                    "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {}/{} | {:.1} |\n",
                    model_name(c), c.format, c.skips, c.kd.as_deref().unwrap_or("—"), g.trained.n, u[0], u[1], u[2], u[3], u[4], p.skip_fifo_bram, p.fits, g.trained.n, p.images_per_s
                );
            }
        }
        s
    }

    /// The test top-1 after each skip change (mean ± std over seeds), for the groups that
    /// changed skips while training; empty when none did.
    fn skip_markdown(&self) -> String {
        let groups: Vec<&Group> = self.groups.iter().filter(|g| g.skip_curve.len() > 1).collect();
        let Some(longest) = groups.iter().map(|g| g.skip_curve.len()).max() else { return String::new() };
        let steps: Vec<usize> = groups.iter().find(|g| g.skip_curve.len() == longest).map_or(Vec::new(), |g| g.skip_curve.iter().map(|p| p.0).collect());
        let mut s = String::from("\nTop-1 % (test, during training) after each skip change, mean ± std over seeds (0: before the first change):\n\n| Model | Weights | Skips | KD | Runs |");
        for k in &steps {
            s += &format!(" {k} |");
        }
        s += "\n|---|---|---|---|---:|";
        s += &"---:|".repeat(steps.len());
        s.push('\n');
        for g in groups {
            let c = &g.config;
            s += &format!("| {} | {} | {} | {} | {} |", model_name(c), c.format, c.skips, c.kd.as_deref().unwrap_or("—"), g.trained.n);
            for k in &steps {
                match g.skip_curve.iter().find(|p| p.0 == *k) {
                    Some((_, st)) => s += &format!(" {:.2}{} |", st.mean, st.std.map_or(String::new(), |d| format!(" ± {d:.2}"))),
                    None => s += " — |",
                }
            }
            s.push('\n');
        }
        s
    }

    /// Training wall time per configuration (minutes per run: mean, lowest, highest; hours for
    /// all its runs). Apart from summary.md because it depends on the machine and the engine.
    pub fn timing_markdown(&self) -> String {
        let mut s = String::from("| Model | Weights | Skips | KD | Runs | Training min per run (mean) | lowest | highest | all runs (h) |\n|---|---|---|---|---:|---:|---:|---:|---:|\n");
        for g in &self.groups {
            let c = &g.config;
            let cells = g.train_minutes.map_or("— | — | — | —".to_string(), |m| format!("{:.2} | {:.2} | {:.2} | {:.2}", m.mean, m.min, m.max, m.mean * m.n as f64 / 60.0));
            s += &format!("| {} | {} | {} | {} | {} | {cells} |\n", model_name(c), c.format, c.skips, c.kd.as_deref().unwrap_or("—"), g.trained.n);
        }
        s += "\nWall time of the training epochs on the machine that ran them, summed over resumed attempts (train/summary.json); freezing, simulation, estimate and C-sim not included.\n";
        s
    }

    /// One row per configuration, every figure in its own column.
    pub fn csv(&self) -> String {
        let mut s = String::from("depth,shortcut,format,skips,kd,runs,trained_top1_mean,trained_top1_std,frozen_top1_mean,frozen_top1_std,test_images,frozen_images");
        let parts: Vec<String> = self.groups.first().map_or(Vec::new(), |g| g.parts.iter().map(|p| p.part.clone()).collect());
        for p in &parts {
            for r in RESOURCES {
                s += &format!(",{p}_{r}_percent");
            }
            s += &format!(",{p}_skip_fifo_bram_18k,{p}_fits,{p}_images_per_s");
        }
        s.push('\n');
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        for g in &self.groups {
            let c = &g.config;
            s += &format!(
                "{},{},\"{}\",{},{},{},{:.4},{},{:.4},{},{},{}",
                c.depth, c.shortcut, c.format, c.skips, c.kd.as_deref().unwrap_or(""), g.trained.n, g.trained.mean, opt(g.trained.std), g.frozen.mean, opt(g.frozen.std), g.test_images, g.frozen_images
            );
            for p in &g.parts {
                for u in p.utilization {
                    s += &format!(",{u:.4}"); // 4 decimals: readers round once, as summary.md does
                }
                s += &format!(",{:.1},{},{:.2}", p.skip_fifo_bram, p.fits, p.images_per_s);
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        // Hand-derived: mean 2, squared deviations 1+0+1 = 2, / (3−1) = 1.
        let s = Stat::of(&[1.0, 2.0, 3.0]);
        assert_eq!((s.mean, s.std, s.n), (2.0, Some(1.0), 3));
        assert_eq!(Stat::of(&[91.5]).std, None);
    }
}
