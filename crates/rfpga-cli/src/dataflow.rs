//! `rfpga dataflow`: the cycle-level simulation of the generated design (interval, latency,
//! each stream's peak occupancy, deadlocks) and FIFO sizing.

use anyhow::{bail, Result};
use clap::Args;
use rfpga_core::io::write_atomic;
use rfpga_estimate::design::{DESIGN_FORMAT, DESIGN_VERSION};
use rfpga_estimate::parts;
use rfpga_hls::dataflow;
use rfpga_hls::hw::Role;
use std::path::PathBuf;

use crate::estimate::{design, EstimateArgs};

#[derive(Args)]
pub struct DataflowArgs {
    /// A generated HLS project (its design, part, clock and stream depths from rfpga.json) or a
    /// frozen model folder.
    path: PathBuf,
    /// A design file of `rfpga fit --out` (parallelism, weight storage, multipliers, stream depths).
    #[arg(long)]
    design: Option<PathBuf>,
    /// Images run back to back (≥ 2: the interval is the time between the last two).
    #[arg(long, default_value_t = 2)]
    images: usize,
    /// Find the smallest stream depths that neither deadlock nor lengthen the interval (plus a
    /// margin of 1/8; at most 0.1 % of the interval given up to keep FIFOs out of BRAM) and write
    /// them into the --design file (created when missing).
    #[arg(long)]
    size_fifos: bool,
    /// Part (for the design file and the resources of the design it builds); default: the project's, else xc7z020.
    #[arg(long)]
    part: Option<String>,
    /// Clock period (default: the project's, else 10).
    #[arg(long)]
    clock_ns: Option<f64>,
    /// Simulate the layer library as it was before the stall-free convolution (row bursts,
    /// II² loops, depth-2 streams and the analytic skip FIFOs), for comparison.
    #[arg(long, conflicts_with = "size_fifos")]
    old_library: bool,
}

pub fn run(a: DataflowArgs) -> Result<()> {
    if a.images < 2 {
        bail!("--images: expected ≥ 2 (the interval is measured between the last two images), found {}", a.images);
    }
    if a.size_fifos && a.design.is_none() {
        bail!("--size-fifos writes the depths into a design file: pass --design FILE");
    }
    let args = EstimateArgs { part: a.part.clone(), clock_ns: a.clock_ns, design: a.design.clone().filter(|d| d.exists()), ..Default::default() };
    let (model, frozen, part_name, mut par, clock) = design(&args, &a.path)?;
    let part = parts::find(&part_name)?;
    let analysis = model.analyze(&frozen.display().to_string())?;
    let sized_by_design = !par.fifo_depths.is_empty();
    if a.size_fifos {
        par.fifo_depths.clear();
    }
    let d = if a.old_library {
        // Unsized: depth 2 everywhere but the analytic skip FIFOs, as the old code generator had.
        let mut d = rfpga_hls::hw::Design::build(&model, &analysis, &rfpga_estimate::Parallelism { fifo_depths: Default::default(), ..par.clone() }.options(&part, clock), part.dsp(), &frozen.display().to_string())?;
        for p in d.processes.iter_mut().filter(|p| p.kind == "conv") {
            let c = d.convs.iter().find(|c| c.id == rfpga_hls::ident(&p.name)).expect("a conv's configuration");
            p.ops = rfpga_hls::hw::conv::legacy_schedule(c.h, c.w, c.k, c.stride, c.cout / c.pe, c.k * c.k * c.cin);
        }
        d
    } else {
        rfpga_estimate::design(&model, &analysis, &par, &part, clock)?
    };
    let started = std::time::Instant::now();
    let sim = dataflow::simulate(&d, a.images);
    let seconds = started.elapsed().as_secs_f64();
    let slowest = d.slowest();
    println!(
        "Dataflow simulation of {} ({}, {} processes, {} streams; depths {}), {} images back to back, {:.2} s:",
        a.path.display(),
        model.model.name(),
        d.processes.len(),
        d.streams.iter().filter(|s| s.is_fifo()).count(),
        if a.old_library { "of the old library" } else if a.size_fifos || !sized_by_design { "sized by the dataflow model" } else { "as given" },
        a.images,
        seconds
    );
    if let Some(report) = sim.deadlock_report() {
        bail!("{}: {report}", a.path.display());
    }
    let interval = sim.interval().expect("no deadlock");
    println!(
        "  interval {interval} cycles/image = {:.1} images/s at {clock} ns; slowest stage {} ({} cycles): interval {:+.2} % over it",
        1e9 / (interval as f64 * clock),
        slowest.name,
        slowest.cycles(),
        100.0 * (interval as f64 / slowest.cycles() as f64 - 1.0)
    );
    println!("  latency {} cycles ({:.3} ms)", sim.latency().expect("no deadlock"), sim.latency().unwrap() as f64 * clock / 1e6);
    println!("\n| stream | writer → reader | role | bits | depth | peak occupancy |");
    println!("|---|---|---|---:|---:|---:|");
    let name = |p: Option<usize>| p.map_or("-", |p| d.processes[p].name.as_str());
    for (s, peak) in d.streams.iter().zip(&sim.peak) {
        if s.is_fifo() {
            let role = if s.role == Role::Skip { "skip" } else { "stream" };
            println!("| {} | {} → {} | {role} | {} | {} | {} |", s.name, name(s.writer), name(s.reader), s.bits, s.depth, peak);
        }
    }
    if a.size_fifos {
        let file = a.design.as_ref().expect("checked");
        let mut doc: serde_json::Value = if file.exists() {
            rfpga_core::io::read_json(file)?
        } else {
            serde_json::json!({
                "format": DESIGN_FORMAT, "version": DESIGN_VERSION, "frozen": frozen.display().to_string(), "part": part.part,
                "parallelism": par.map, "simd": par.simd, "weight_storage": par.storage, "multipliers": par.multipliers,
            })
        };
        // Not overwriting a file rfpga did not write.
        rfpga_core::io::check_header(file, &doc, DESIGN_FORMAT, DESIGN_VERSION)?;
        doc["fifo_depths"] = serde_json::to_value(d.depths())?;
        doc["images_per_s"] = serde_json::json!(1e9 / (interval as f64 * clock));
        write_atomic(file, (serde_json::to_string_pretty(&doc)? + "\n").as_bytes())?;
        println!("Wrote the stream depths into {} (rfpga codegen {} --design {0})", file.display(), frozen.display());
    }
    Ok(())
}
