//! Vitis HLS synthesis reports: `<solution>/syn/report/<top>_csynth.xml` (shared/notes/
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
    pub latency_worst: u64,
    pub interval_max: u64,
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
        latency_worst: number(perf, "SummaryOfOverallLatency/Worst-caseLatency", file)?,
        interval_max: number(perf, "SummaryOfOverallLatency/Interval-max", file)?,
        resources: resources(root, "AreaEstimates/Resources", file)?,
        available: resources(root, "AreaEstimates/AvailableResources", file)?,
    })
}
