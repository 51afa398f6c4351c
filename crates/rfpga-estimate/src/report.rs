//! Synthesis reports: Vitis HLS's `<solution>/syn/report/<top>_csynth.xml` and Vivado's
//! `report_utilization` text reports ([`read_utilization`]).
//!
//! csynth.xml (shared/notes/
//! fpga-parts.md): `AreaEstimates/Resources` and `AreaEstimates/AvailableResources` (BRAM_18K,
//! DSP or DSP48E, FF, LUT, URAM), `PerformanceEstimates/SummaryOfOverallLatency` (cycles),
//! `PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod`, `UserAssignments`
//! (Part, TopModelName, TargetClockPeriod).

use anyhow::{anyhow, bail, Context, Result};
use roxmltree::{Document, Node};
use std::path::Path;

use crate::resources::Resources;

#[derive(Debug, Clone, PartialEq)]
pub struct SynthReport {
    pub part: String,
    pub top: String,
    pub target_clock_ns: f64,
    pub estimated_clock_ns: f64,
    /// None where Vitis writes `undef` or `-` (a latency it cannot bound: variable trip counts,
    /// some dataflow regions).
    pub latency_worst: Option<u64>,
    pub interval_max: Option<u64>,
    pub resources: Resources,
    pub available: Resources,
}

fn child<'a, 'i>(n: Node<'a, 'i>, path: &str, file: &Path) -> Result<Node<'a, 'i>> {
    let mut cur = n;
    for name in path.split('/') {
        cur = cur
            .children()
            .find(|c| c.has_tag_name(name))
            .ok_or_else(|| anyhow!("{}: element `{path}` is missing", file.display()))?;
    }
    Ok(cur)
}

fn text<'a>(n: Node<'a, '_>, path: &str, file: &Path) -> Result<&'a str> {
    Ok(child(n, path, file)?.text().unwrap_or("").trim())
}

fn number<T: std::str::FromStr>(n: Node, path: &str, file: &Path) -> Result<T> {
    let t = text(n, path, file)?;
    t.parse().map_err(|_| anyhow!("{}: element `{path}`: expected a number, found `{t}`", file.display()))
}

/// A number that Vitis may write as `undef`, `-` or `N/A` when it cannot bound it.
fn maybe_number(n: Node, path: &str, file: &Path) -> Result<Option<u64>> {
    match text(n, path, file)? {
        "undef" | "-" | "N/A" | "" => Ok(None),
        _ => number(n, path, file).map(Some),
    }
}

fn resources(n: Node, path: &str, file: &Path) -> Result<Resources> {
    let r = child(n, path, file)?;
    // Older reports say DSP48E, newer DSP.
    let dsp = if r.children().any(|c| c.has_tag_name("DSP")) { "DSP" } else { "DSP48E" };
    let get = |name: &str| number::<u64>(n, &format!("{path}/{name}"), file);
    Ok(Resources {
        bram_18k: get("BRAM_18K")?,
        dsp: get(dsp)?,
        ff: get("FF")?,
        lut: get("LUT")?,
        uram: if r.children().any(|c| c.has_tag_name("URAM")) { get("URAM")? } else { 0 },
        // csynth reports no LUT-as-memory figure.
        lut_mem: 0,
    })
}

pub fn read_csynth(file: &Path) -> Result<SynthReport> {
    let xml = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let doc = Document::parse(&xml).map_err(|e| anyhow!("{}: not well-formed XML: {e}", file.display()))?;
    let root = doc.root_element();
    if !root.has_tag_name("profile") {
        bail!("{}: expected a Vitis HLS csynth report (root element `profile`), found `{}`", file.display(), root.tag_name().name());
    }
    let perf = child(root, "PerformanceEstimates", file)?;
    Ok(SynthReport {
        part: text(root, "UserAssignments/Part", file)?.to_string(),
        top: text(root, "UserAssignments/TopModelName", file)?.to_string(),
        target_clock_ns: number(root, "UserAssignments/TargetClockPeriod", file)?,
        estimated_clock_ns: number(perf, "SummaryOfTimingAnalysis/EstimatedClockPeriod", file)?,
        latency_worst: maybe_number(perf, "SummaryOfOverallLatency/Worst-caseLatency", file)?,
        interval_max: maybe_number(perf, "SummaryOfOverallLatency/Interval-max", file)?,
        resources: resources(root, "AreaEstimates/Resources", file)?,
        available: resources(root, "AreaEstimates/AvailableResources", file)?,
    })
}

/// What a Vivado `report_utilization` text report says: resources used and available, as
/// BRAM_18K-equivalents (a `Block RAM Tile` is 36 Kb: two BRAM_18K), DSP, FF, LUT, URAM.
#[derive(Debug, Clone, PartialEq)]
pub struct UtilizationReport {
    /// The `Device` line of the header, when present (e.g. `7z020clg400-1`).
    pub device: Option<String>,
    pub resources: Resources,
    pub available: Resources,
}

/// Reads a Vivado utilization report (`report_utilization`, synthesized or placed; 7-series or
/// UltraScale+). Tables are matched by row name, not section number (the numbers differ
/// between synthesized and placed reports): `Slice LUTs`/`CLB LUTs`,
/// `Slice Registers`/`CLB Registers`, `Block RAM Tile`, `DSPs`, `URAM` and `LUT as Memory`
/// (optional), each with its
/// `Used` and `Available` columns found by the table's header row.
pub fn read_utilization(file: &Path) -> Result<UtilizationReport> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut device = None;
    let mut columns: Option<(usize, usize)> = None; // (Used, Available) of the current table
    let mut rows: std::collections::HashMap<String, (f64, f64)> = Default::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("| Device") {
            device = rest.trim_start().strip_prefix(':').map(|d| d.trim().to_string());
            continue;
        }
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.first() == Some(&"Site Type") {
            let at = |name: &str| cells.iter().position(|c| *c == name);
            columns = match (at("Used"), at("Available")) {
                (Some(u), Some(a)) => Some((u, a)),
                _ => bail!("{}: line {}: a `Site Type` header without `Used` and `Available` columns", file.display(), n + 1),
            };
            continue;
        }
        let Some((used_col, avail_col)) = columns else { continue };
        let name = cells[0].trim_end_matches('*').trim().to_string();
        if !["Slice LUTs", "CLB LUTs", "LUT as Memory", "Slice Registers", "CLB Registers", "Block RAM Tile", "DSPs", "URAM"].contains(&name.as_str()) {
            continue;
        }
        let num = |col: usize, what: &str| -> Result<f64> {
            let cell = cells.get(col).copied().unwrap_or("");
            cell.parse::<f64>().map_err(|_| anyhow!("{}: line {}: `{name}` {what}: expected a number, found `{cell}`", file.display(), n + 1))
        };
        rows.entry(name.clone()).or_insert((num(used_col, "Used")?, num(avail_col, "Available")?));
    }
    let get = |names: &[&str], required: bool| -> Result<(f64, f64)> {
        match names.iter().find_map(|n| rows.get(*n)) {
            Some(v) => Ok(*v),
            None if required => bail!("{}: no `{}` row (is this a Vivado report_utilization report?)", file.display(), names.join("` or `")),
            None => Ok((0.0, 0.0)),
        }
    };
    let (lut, ff, bram, dsp, uram) = (
        get(&["Slice LUTs", "CLB LUTs"], true)?,
        get(&["Slice Registers", "CLB Registers"], true)?,
        get(&["Block RAM Tile"], true)?,
        get(&["DSPs"], true)?,
        get(&["URAM"], false)?,
    );
    let lut_mem = get(&["LUT as Memory"], false)?;
    let pick = |f: fn((f64, f64)) -> f64| Resources {
        bram_18k: (2.0 * f(bram)).round() as u64,
        dsp: f(dsp).round() as u64,
        ff: f(ff).round() as u64,
        lut: f(lut).round() as u64,
        uram: f(uram).round() as u64,
        lut_mem: f(lut_mem).round() as u64,
    };
    Ok(UtilizationReport { device, resources: pick(|p| p.0), available: pick(|p| p.1) })
}
