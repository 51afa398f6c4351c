//! `rfpga estimate` and `rfpga fit`: resources and throughput before synthesis.

use anyhow::{bail, Context, Result};
use clap::Args;
use rfpga_core::frozen::FrozenModel;
use rfpga_core::io::write_atomic;
use rfpga_estimate::{parts, Parallelism};
use std::path::PathBuf;

use crate::hls::parse_parallelism;

#[derive(Args)]
pub struct EstimateArgs {
    /// A frozen model folder, or a generated HLS project (its frozen model, part, clock and
    /// parallelism are read from its rfpga.json).
    path: PathBuf,
    /// Part or board (xc7z020, xczu7ev-ffvc1156-2-e, pynq-z2, zcu104, …); default: the project's, else xc7z020.
    #[arg(long)]
    part: Option<String>,
    /// Multiply-accumulate lanes per convolution: N or LAYER=N,… (default: the project's, else 1).
    #[arg(long)]
    parallelism: Option<String>,
    /// Clock period (default: the project's, else 10).
    #[arg(long)]
    clock_ns: Option<f64>,
    /// Also write the table (Markdown) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The frozen model and the design settings of a frozen folder or a project.
fn design(path: &PathBuf, part: Option<String>, parallelism: Option<String>, clock_ns: Option<f64>) -> Result<(FrozenModel, PathBuf, String, Parallelism, f64)> {
    let (frozen, mut part_name, mut par, mut clock) = if path.join("rfpga.json").exists() {
        let info = rfpga_hls::project_info(path)?;
        (info.frozen, info.part, Parallelism { default: 1, map: info.parallelism }, info.clock_ns)
    } else {
        (path.clone(), "xc7z020".to_string(), Parallelism { default: 1, map: Default::default() }, 10.0)
    };
    if let Some(p) = part {
        part_name = p;
    }
    if let Some(s) = parallelism {
        let (default, map) = parse_parallelism(&s)?;
        par = Parallelism { default, map };
    }
    if let Some(c) = clock_ns {
        clock = c;
    }
    if !(clock > 0.0) {
        bail!("--clock-ns: expected a positive period, found {clock}");
    }
    let model = FrozenModel::load(&frozen).with_context(|| format!("loading the frozen model of {}", path.display()))?;
    for name in par.map.keys() {
        if !model.layers.iter().any(|l| l.kind() == "conv" && l.name() == name) {
            bail!("--parallelism: `{name}` is not a convolution of {}", frozen.display());
        }
    }
    Ok((model, frozen, part_name, par, clock))
}

pub fn estimate(a: EstimateArgs) -> Result<()> {
    let (model, frozen, part_name, par, clock) = design(&a.path, a.part, a.parallelism, a.clock_ns)?;
    let part = parts::find(&part_name)?;
    let analysis = model.analyze(&frozen.display().to_string())?;
    let e = rfpga_estimate::estimate(&model, &analysis, &par, &part, clock)?;
    let text = format!(
        "Estimate of {} ({}) on {} ({}), {clock} ns clock, parallelism {}:\n\n{}",
        frozen.display(),
        model.model.name(),
        part.device,
        part.boards.join(", "),
        if par.map.is_empty() { par.default.to_string() } else { par.map.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",") },
        rfpga_estimate::table(&e, &part)
    );
    print!("{text}");
    if let Some(out) = &a.out {
        write_atomic(out, text.as_bytes())?;
    }
    Ok(())
}

#[derive(Args)]
pub struct FitArgs {
    /// Frozen model folder.
    frozen: PathBuf,
    #[arg(long, default_value = "xc7z020")]
    part: String,
    #[arg(long, default_value_t = 10.0)]
    clock_ns: f64,
    /// Write the chosen configuration's --parallelism argument to this file (for codegen: --parallelism @FILE).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn fit(a: FitArgs) -> Result<()> {
    let part = parts::find(&a.part)?;
    let model = FrozenModel::load(&a.frozen)?;
    let analysis = model.analyze(&a.frozen.display().to_string())?;
    let candidates = rfpga_estimate::fit(&model, &analysis, &part, a.clock_ns)?;
    println!(
        "Pareto set for {} on {}: the cheapest design visited at each throughput (lanes of the slowest convolution doubled while it fits; {} designs visited):",
        a.frozen.display(),
        part.device,
        candidates.len()
    );
    println!("| step | images/s | BRAM_18K | DSP | FF | LUT | URAM | fits | slowest stage |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---|---|");
    let mut best_rate = 0.0;
    for (i, c) in candidates.iter().enumerate() {
        let rate = c.estimate.images_per_s();
        if rate <= best_rate && c.fits {
            continue; // as fast as a cheaper design already shown
        }
        best_rate = rate;
        let (u, _) = c.estimate.utilization(&part);
        println!(
            "| {i} | {:.1} | {:.0} % | {:.0} % | {:.0} % | {:.0} % | {:.0} % | {} | {} |",
            c.estimate.images_per_s(),
            u[0],
            u[1],
            u[2],
            u[3],
            u[4].min(999.0),
            if c.fits { "yes" } else { "no" },
            c.estimate.bottleneck
        );
    }
    // The fastest design that fits; of equally fast ones, the first (cheapest) visited.
    let best = candidates.iter().filter(|c| c.fits).fold(None::<&rfpga_estimate::Candidate>, |b, c| match b {
        Some(b) if b.estimate.images_per_s() >= c.estimate.images_per_s() => Some(b),
        _ => Some(c),
    });
    let Some(best) = best else {
        let first = &candidates[0];
        let (u, _) = first.estimate.utilization(&part);
        let over: Vec<String> = first.estimate.total.named().iter().zip(u).filter(|(_, p)| *p > 100.0).map(|((n, _), p)| format!("{n} {p:.0} %")).collect();
        // The largest users of the first resource over budget.
        let k = u.iter().position(|&p| p > 100.0).unwrap_or(0);
        let what = first.estimate.total.named()[k].0;
        let heavy: Vec<String> = {
            let mut rows: Vec<_> = first.estimate.rows.iter().collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.resources.named()[k].1));
            rows.iter().take(4).map(|r| format!("{} {} {what}", r.name, r.resources.named()[k].1)).collect()
        };
        bail!(
            "no configuration fits {}: even with one lane per convolution the design needs {} (largest users: {}). Narrower weights or activations, or removing skips, shrink it; or choose a larger part.",
            part.device,
            over.join(", "),
            heavy.join(", ")
        );
    };
    let (u, _) = best.estimate.utilization(&part);
    println!(
        "\nChosen (the cheapest of the fastest that fit): {:.1} images/s, BRAM_18K {:.0} %, DSP {:.0} %, FF {:.0} %, LUT {:.0} %; rfpga codegen {} --parallelism {}",
        best.estimate.images_per_s(),
        u[0],
        u[1],
        u[2],
        u[3],
        a.frozen.display(),
        best.argument()
    );
    if let Some(out) = &a.out {
        write_atomic(out, (best.argument() + "\n").as_bytes())?;
        println!("Wrote {}", out.display());
    }
    Ok(())
}
