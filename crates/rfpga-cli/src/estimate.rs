//! `rfpga estimate` and `rfpga fit`: resources and throughput before synthesis.

use anyhow::{bail, Context, Result};
use clap::Args;
use rfpga_core::frozen::FrozenModel;
use rfpga_core::io::write_atomic;
use rfpga_estimate::{parts, Parallelism};
use std::path::PathBuf;

use crate::hls::{design_part, parse_multipliers, parse_parallelism, parse_simd, parse_storage, per_layer_map, read_design, simd_map};

#[derive(Args, Default)]
pub struct EstimateArgs {
    /// Frozen model folders or generated HLS projects (a project's frozen model, part, clock and
    /// parallelism are read from its rfpga.json); several are estimated one after another and
    /// drawn side by side by --plot.
    #[arg(required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// Part or board (xc7z020, xczu7ev-ffvc1156-2-e, pynq-z2, zcu104, …); default: the project's, else xc7z020.
    #[arg(long)]
    pub(crate) part: Option<String>,
    /// PE (output channels per cycle) per convolution: N or LAYER=N,… (default: the project's, else 1).
    #[arg(long)]
    pub(crate) parallelism: Option<String>,
    /// SIMD (input channels per cycle per PE) per convolution: N (where N does not divide a
    /// layer's input channels, the largest divisor below N) or LAYER=N,… (default: the project's, else 1).
    #[arg(long)]
    pub(crate) simd: Option<String>,
    /// Where convolution weights live: auto, bram, lutram, or LAYER=KIND,… (default: the project's, else auto).
    #[arg(long)]
    pub(crate) weight_storage: Option<String>,
    /// Where convolution multipliers go: auto, fabric, dsp, or LAYER=KIND,… (default: the project's, else auto).
    #[arg(long)]
    pub(crate) multipliers: Option<String>,
    /// A design file of `rfpga fit --out` (overrides --parallelism, --simd, --weight-storage and --multipliers).
    #[arg(long)]
    pub(crate) design: Option<PathBuf>,
    /// Clock period (default: the project's or the --design file's, else 10).
    #[arg(long)]
    pub(crate) clock_ns: Option<f64>,
    /// Also write the table (Markdown) to this file.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Draw utilization per resource against the part's capacity (SVG).
    #[arg(long)]
    pub(crate) plot: Option<PathBuf>,
    /// Also write the totals as JSON to this file (one object per path; what `rfpga sweep` collects).
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
}

/// The frozen model and the design settings of a frozen folder or a project, with the
/// command line's overrides.
pub(crate) fn design(a: &EstimateArgs, path: &PathBuf) -> Result<(FrozenModel, PathBuf, String, Parallelism, f64)> {
    let (frozen, mut part_name, mut par, mut clock) = if path.join("rfpga.json").exists() {
        let info = rfpga_hls::project_info(path)?;
        let par = Parallelism {
            default: 1,
            map: info.parallelism,
            simd: info.simd,
            storage: info.storage,
            multipliers: info.multipliers,
            fifo_depths: info.fifo_depths,
            fifo_storage: info.fifo_storage,
        };
        (info.frozen, info.part, par, info.clock_ns)
    } else {
        (path.clone(), "xc7z020".to_string(), Parallelism::default(), 10.0)
    };
    let model = FrozenModel::load(&frozen).with_context(|| format!("loading the frozen model of {}", path.display()))?;
    let is = |name: &str, kind: &str| model.layers.iter().any(|l| l.kind() == kind && l.name() == name);
    if let Some(p) = &a.part {
        part_name = p.clone();
    }
    if let Some(s) = &a.parallelism {
        let (default, map) = parse_parallelism(s)?;
        par.default = default;
        par.map = map;
        par.fifo_depths.clear(); // a different design: its streams are sized again
    }
    if let Some(s) = &a.simd {
        let (default, map) = parse_simd(s)?;
        par.simd = simd_map(&model, default, map);
        par.fifo_depths.clear();
    }
    if let Some(s) = &a.weight_storage {
        let (default, map) = parse_storage(s)?;
        par.storage = per_layer_map(&model, default, map);
    }
    if let Some(s) = &a.multipliers {
        let (default, map) = parse_multipliers(s)?;
        par.multipliers = per_layer_map(&model, default, map);
    }
    if let Some(d) = &a.design {
        let design = read_design(d)?;
        part_name = design_part(&design, a.part.as_deref(), d)?;
        (par.map, par.simd, par.storage, par.multipliers, par.fifo_depths, par.fifo_storage) =
            (design.parallelism, design.simd, design.storage, design.multipliers, design.fifo_depths, design.fifo_storage);
        if let Some(c) = design.clock_ns {
            clock = c; // the clock it was fitted at, unless --clock-ns says otherwise
        }
    }
    if let Some(c) = a.clock_ns {
        clock = c;
    }
    if !(clock > 0.0) {
        bail!("--clock-ns: expected a positive period, found {clock}");
    }
    for name in par.map.keys().chain(par.simd.keys()).chain(par.storage.keys()).chain(par.multipliers.keys()) {
        if !is(name, "conv") {
            bail!("`{name}` (in --parallelism, --simd, --weight-storage, --multipliers or --design) is not a convolution of {}", frozen.display());
        }
    }
    Ok((model, frozen, part_name, par, clock))
}

/// The heading's parallelism, compact: each lane count with how many layers use it (the table
/// lists them per layer), e.g. "1 (17 layers), 4 (2 layers)".
fn parallelism_summary(default: usize, map: &std::collections::BTreeMap<String, usize>, model: &FrozenModel) -> String {
    let mut counts = std::collections::BTreeMap::<usize, usize>::new();
    let convs: Vec<&str> = model.layers.iter().filter(|l| l.kind() == "conv").map(|l| l.name()).collect();
    let mut given = 0;
    for (_, &v) in map.iter().filter(|(n, _)| convs.contains(&n.as_str())) {
        *counts.entry(v).or_default() += 1;
        given += 1;
    }
    let rest = convs.len().saturating_sub(given);
    if rest > 0 {
        *counts.entry(default).or_default() += rest;
    }
    if counts.len() <= 1 {
        return counts.keys().next().copied().unwrap_or(default).to_string();
    }
    let mut groups: Vec<(usize, usize)> = counts.into_iter().collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let plural = |n: usize| if n == 1 { "layer" } else { "layers" };
    groups.iter().map(|&(v, n)| format!("{v} ({n} {})", plural(n))).collect::<Vec<_>>().join(", ")
}

pub fn estimate(a: EstimateArgs) -> Result<()> {
    use crate::output::{check_all, Kind};
    check_all("estimate", [(a.out.as_deref(), Kind::Text("Estimate of ")), (a.json.as_deref(), Kind::Json), (a.plot.as_deref(), Kind::Svg)])?;
    let mut text = String::new();
    let mut bars = Vec::new();
    let mut device = String::new();
    let mut docs = Vec::new();
    for path in &a.paths {
        let (model, frozen, part_name, par, clock) = design(&a, path)?;
        let part = parts::find(&part_name)?;
        let analysis = model.analyze(&frozen.display().to_string())?;
        let e = rfpga_estimate::estimate(&model, &analysis, &par, &part, clock)?;
        text += &format!(
            "Estimate of {} ({}) on {} ({}), {clock} ns clock, PE {}, SIMD {}:\n\n{}\n",
            frozen.display(),
            model.model.name(),
            part.device,
            part.boards.join(", "),
            parallelism_summary(par.default, &par.map, &model),
            parallelism_summary(1, &par.simd, &model),
            rfpga_estimate::table(&e, &part)
        );
        let label = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let (util, fits) = e.utilization(&part);
        bars.push((label, [util[0], util[1], util[2], util[3], util[4]]));
        device = part.device.clone();
        let named = |r: &rfpga_estimate::resources::Resources| -> serde_json::Value {
            r.named().iter().map(|(k, v)| (k.to_ascii_lowercase(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>().into()
        };
        let percent: serde_json::Map<_, _> = e.total.named().iter().zip(util).map(|((k, _), u)| (k.to_ascii_lowercase(), serde_json::Value::from(u))).collect();
        docs.push(serde_json::json!({
            "frozen": frozen,
            "model": model.model.name(),
            "part": part_name,
            "device": part.device,
            "clock_ns": clock,
            "parallelism": par.default,
            "lanes": par.map,
            "simd": par.simd,
            "weight_storage": par.storage,
            "multipliers": par.multipliers,
            "used": named(&e.total),
            "available": named(&part.available()),
            "utilization_percent": percent,
            "fits": fits,
            "interval_cycles": e.interval,
            "slowest_stage_cycles": e.slowest_stage,
            "latency_cycles": e.latency,
            "fifo_depths": e.fifo_depths,
            "images_per_s": e.images_per_s(),
            "skip_fifos": named(&e.skip_fifos),
        }));
    }
    print!("{text}");
    if let Some(out) = &a.out {
        write_atomic(out, text.as_bytes())?;
    }
    if let Some(path) = &a.json {
        let doc = if docs.len() == 1 { docs.remove(0) } else { serde_json::Value::Array(docs) };
        rfpga_core::io::write_json_atomic(path, &doc)?;
    }
    if let Some(svg) = &a.plot {
        crate::plot::plot_utilization(&bars, &device, svg)?;
        println!("Wrote {}", svg.display());
    }
    Ok(())
}

#[derive(Args)]
pub struct ReportArgs {
    /// A generated HLS project after `vitis_hls -f build.tcl` (csynth).
    project: PathBuf,
    /// The csynth report (default: PROJECT/rfpga_prj/solution1/syn/report/rfpga_top_csynth.xml).
    #[arg(long)]
    csynth: Option<PathBuf>,
    /// A Vivado utilization report (`report_utilization`, synthesized or placed) of the exported
    /// design: shown as a further column; without --csynth it is the only one.
    #[arg(long)]
    utilization: Option<PathBuf>,
}

/// The catalog's part for a report's part name; Vivado writes `7z020clg400-1` for xc7z020.
fn report_part(name: &str) -> Result<rfpga_estimate::Part> {
    parts::find(name).or_else(|e| parts::find(&format!("xc{name}")).map_err(|_| e))
}

/// `rfpga report`: synthesis reports next to the estimate, with the estimate's error per resource.
pub fn report(a: ReportArgs) -> Result<()> {
    let default_csynth = a.project.join("rfpga_prj/solution1/syn/report/rfpga_top_csynth.xml");
    let csynth_file = match (&a.csynth, &a.utilization) {
        (Some(f), _) => Some(f.clone()),
        (None, None) => Some(default_csynth),
        (None, Some(_)) => default_csynth.exists().then_some(default_csynth),
    };
    let args = EstimateArgs::default();
    let (model, frozen, part_name, par, clock) = design(&args, &a.project)?;
    let part = parts::find(&part_name)?;
    let mismatch = |file: &std::path::Path, what: &str| {
        anyhow::anyhow!("{}: {what}, but {} is `rfpga_top` for {}: not this project's report", file.display(), a.project.display(), part_name)
    };
    let mut columns: Vec<(String, rfpga_estimate::Resources)> = Vec::new();
    let mut csynth = None;
    if let Some(file) = &csynth_file {
        let r = rfpga_estimate::report::read_csynth(file)?;
        let synth_part = report_part(&r.part).with_context(|| format!("{}: UserAssignments/Part", file.display()))?;
        if synth_part.device != part.device || r.top != "rfpga_top" {
            return Err(mismatch(file, &format!("synthesized `{}` for {}", r.top, r.part)));
        }
        columns.push(("HLS csynth".into(), r.resources));
        csynth = Some(r);
    }
    if let Some(file) = &a.utilization {
        let u = rfpga_estimate::report::read_utilization(file)?;
        if let Some(d) = &u.device {
            let p = report_part(d).with_context(|| format!("{}: Device", file.display()))?;
            if p.device != part.device {
                return Err(mismatch(file, &format!("a design for {d}")));
            }
        }
        columns.push(("Vivado".into(), u.resources));
    }
    let analysis = model.analyze(&frozen.display().to_string())?;
    let e = rfpga_estimate::estimate(&model, &analysis, &par, &part, clock)?;
    println!("{}: reports against rfpga's estimate ({} on {}):\n", a.project.display(), model.model.name(), part.device);
    let head: Vec<String> = columns.iter().map(|(l, _)| format!("{l} | estimate error vs {l}")).collect();
    println!("| resource | estimate | {} | available |", head.join(" | "));
    println!("|---|---:|{}---:|", "---:|---:|".repeat(columns.len()));
    let avail = part.available();
    for (k, (name, est)) in e.total.named().iter().enumerate() {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, r)| {
                let got = r.named()[k].1;
                let err = if got == 0 { if *est == 0 { "0 %".to_string() } else { "-".to_string() } } else { format!("{:+.0} %", 100.0 * (*est as f64 - got as f64) / got as f64) };
                format!("{got} | {err}")
            })
            .collect();
        println!("| {name} | {est} | {} | {} |", cells.join(" | "), avail.named()[k].1);
    }
    // LUT as memory: only Vivado reports it (csynth does not).
    let cells: Vec<String> = columns
        .iter()
        .map(|(l, r)| {
            if l == "Vivado" && r.lut_mem > 0 {
                format!("{} | {:+.0} %", r.lut_mem, 100.0 * (e.total.lut_mem as f64 - r.lut_mem as f64) / r.lut_mem as f64)
            } else {
                "- | -".to_string()
            }
        })
        .collect();
    println!("| LUT as memory | {} | {} | {} |", e.total.lut_mem, cells.join(" | "), part.lut_mem);
    if let Some(r) = &csynth {
        let hls = match r.interval_max {
            Some(i) => format!("HLS {i} ({:+.0} %)", 100.0 * (e.interval as f64 - i as f64) / i.max(1) as f64),
            None => "HLS undef (Vitis could not bound it; rfpga dataflow gives the model's)".to_string(),
        };
        println!("\nInterval: estimate {} cycles, {hls}. Clock: target {} ns, HLS estimate {} ns.", e.interval, r.target_clock_ns, r.estimated_clock_ns);
        println!("HLS estimates are not place-and-route results, LUTs least of all (docs/explanation/estimate-sources.md: one public design's csynth LUTs were 2× its placed count).");
    }
    Ok(())
}

#[derive(Args)]
pub struct FitArgs {
    /// Frozen model folder.
    frozen: PathBuf,
    /// Part or board to fit (`rfpga parts` lists them).
    #[arg(long, default_value = "xc7z020")]
    part: String,
    /// Clock period in ns, or several (`10,6.67,5`): each is searched and the fastest design that
    /// fits at any of them is chosen — a faster clock deepens the pipelines the cycle model
    /// uses and needs fewer lanes for the same images/s. Whether the design closes timing at a
    /// clock is not estimated (no place and route here).
    #[arg(long, value_delimiter = ',', default_value = "10")]
    clock_ns: Vec<f64>,
    /// The largest share of each resource a design may use, in percent. 80 by default: placement
    /// and routing rarely close timing on a part filled beyond ~80 % (routing congestion), and
    /// these figures are estimates, not placed designs.
    #[arg(long, default_value_t = 80.0)]
    budget: f64,
    /// Write the chosen design (PE, SIMD, weight storage, multipliers per layer, FIFO depths and storage) to this file, for
    /// `rfpga codegen --design FILE` and `rfpga estimate --design FILE`.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn fit(a: FitArgs) -> Result<()> {
    crate::output::check_all("fit", [(a.out.as_deref(), crate::output::Kind::Design)])?;
    if let Some(c) = a.clock_ns.iter().find(|c| !(**c > 0.0)) {
        bail!("--clock-ns: expected positive periods, found {c}");
    }
    let part = parts::find(&a.part)?;
    let model = FrozenModel::load(&a.frozen)?;
    let analysis = model.analyze(&a.frozen.display().to_string())?;
    if !(a.budget > 0.0 && a.budget <= 100.0) {
        bail!("--budget: expected a percentage in (0, 100], found {}", a.budget);
    }
    let mut searched = Vec::new();
    for &clock in &a.clock_ns {
        let candidates = rfpga_estimate::fit(&model, &analysis, &part, clock, a.budget)?;
        print_pareto(&a, &part, clock, &candidates);
        searched.push((clock, candidates));
    }
    // The fastest design that fits at any clock; of equally fast ones, the first (cheapest) visited.
    let mut best: Option<(f64, &rfpga_estimate::Candidate)> = None;
    for (clock, candidates) in &searched {
        for c in candidates.iter().filter(|c| c.fits) {
            if best.is_none_or(|(_, b)| c.estimate.images_per_s() > b.estimate.images_per_s()) {
                best = Some((*clock, c));
            }
        }
    }
    let Some((clock, best)) = best else {
        let first = &searched[0].1[0];
        let (u, _) = first.estimate.utilization(&part);
        let over: Vec<String> = first.estimate.total.named().iter().zip(u).filter(|(_, p)| *p > a.budget).map(|((n, _), p)| format!("{n} {p:.0} %")).collect();
        // The largest users of the first resource over budget.
        let k = u.iter().position(|&p| p > a.budget).unwrap_or(0).min(4);
        let what = first.estimate.total.named()[k].0;
        let heavy: Vec<String> = {
            let mut rows: Vec<_> = first.estimate.rows.iter().collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.resources.named()[k].1));
            rows.iter().take(4).map(|r| format!("{} {} {what}", r.name, r.resources.named()[k].1)).collect()
        };
        bail!(
            "no configuration fits {}{}: even with PE = SIMD = 1 everywhere the design needs {} (largest users: {}). Narrower weights or activations, or removing skips, shrink it; or choose a larger part.",
            part.device,
            if a.budget < 100.0 { format!(" within {} % of each resource", a.budget) } else { String::new() },
            over.join(", "),
            heavy.join(", ")
        );
    };
    chosen(&a, &part, clock, best)
}

/// One clock's Pareto table: the cheapest design visited at each throughput.
fn print_pareto(a: &FitArgs, part: &rfpga_estimate::Part, clock: f64, candidates: &[rfpga_estimate::Candidate]) {
    println!(
        "Pareto set for {} on {} at {} ns within {} % of each resource: the cheapest design visited at each throughput (SIMD or PE of the slowest convolution doubled while it fits, multipliers DSP-first, BRAM FIFOs to URAM and weight ROMs to LUTs when BRAM overflows; {} designs visited):",
        a.frozen.display(),
        part.device,
        clock,
        a.budget,
        candidates.len()
    );
    println!("| step | images/s | BRAM_18K | DSP | FF | LUT | URAM | LUT as memory | binding | fits | slowest stage |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|");
    let mut best_rate = 0.0;
    for (i, c) in candidates.iter().enumerate() {
        let rate = c.estimate.images_per_s();
        if rate <= best_rate && c.fits {
            continue; // as fast as a cheaper design already shown
        }
        best_rate = rate;
        let (u, _) = c.estimate.utilization(&part);
        let bottleneck = &c.estimate.bottleneck;
        let fold = if c.config.map.contains_key(bottleneck) { format!(" (PE {} × SIMD {})", c.config.of(bottleneck), c.config.simd_of(bottleneck)) } else { String::new() };
        println!(
            "| {i} | {:.1} | {:.0} % | {:.0} % | {:.0} % | {:.0} % | {:.0} % | {:.0} % | {} | {} | {bottleneck}{fold} |",
            c.estimate.images_per_s(),
            u[0],
            u[1],
            u[2],
            u[3],
            u[4].min(999.0),
            u[5],
            c.estimate.binding(&part).0,
            if c.fits { "yes" } else { "no" },
        );
    }
}

/// Prints the chosen design and writes its design file.
fn chosen(a: &FitArgs, part: &rfpga_estimate::Part, clock: f64, best: &rfpga_estimate::Candidate) -> Result<()> {
    let (u, _) = best.estimate.utilization(part);
    println!(
        "\nChosen (the cheapest of the fastest that fit{}, at {clock} ns; timing closure not estimated): {:.1} images/s, BRAM_18K {:.0} %, DSP {:.0} %, FF {:.0} %, LUT {:.0} %, URAM {:.0} %, LUT as memory {:.0} % (binding: {}); rfpga codegen {} --part {} --clock-ns {} --parallelism {} --simd {}",
        if a.budget < 100.0 { format!(" within {} % of each resource", a.budget) } else { String::new() },
        best.estimate.images_per_s(),
        u[0],
        u[1],
        u[2],
        u[3],
        u[4],
        u[5],
        best.estimate.binding(part).0,
        a.frozen.display(),
        part.part,
        clock,
        best.argument(),
        best.simd_argument()
    );
    if !best.config.storage.is_empty() {
        println!("  and --weight-storage {}", best.storage_argument());
    }
    if !best.config.multipliers.is_empty() {
        println!("  and --multipliers {}", best.multipliers_argument());
    }
    if let Some(out) = &a.out {
        let design = serde_json::json!({
            "format": rfpga_estimate::design::DESIGN_FORMAT, "version": rfpga_estimate::design::DESIGN_VERSION,
            "frozen": a.frozen.display().to_string(), "part": part.part,
            "clock_ns": clock,
            "parallelism": best.config.map, "simd": best.config.simd, "weight_storage": best.config.storage, "multipliers": best.config.multipliers,
            "fifo_depths": best.estimate.fifo_depths, "fifo_storage": best.config.fifo_storage,
            "images_per_s": best.estimate.images_per_s(),
        });
        write_atomic(out, (serde_json::to_string_pretty(&design)? + "\n").as_bytes())?;
        println!("Wrote {} (rfpga codegen {} --design {0})", out.display(), a.frozen.display());
    }
    Ok(())
}

/// `rfpga parts`: the catalog `--part` takes, as a table.
pub fn parts() {
    println!("| device | boards | full part (default) | DSP slice | BRAM_18K | DSP | FF | LUT | LUT as memory | URAM |");
    println!("|---|---|---|---|---:|---:|---:|---:|---:|---:|");
    for p in rfpga_estimate::parts::catalog() {
        println!("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |", p.device, p.boards.join(", "), p.part, p.dsp_kind, p.bram_18k, p.dsp, p.ff, p.lut, p.lut_mem, p.uram);
    }
    println!("\n--part takes a device, a board, or a full part name (a known device with a package and speed grade). Resources: the Available rows of published Vitis/Vivado reports (docs/explanation/estimate-constants.md).");
}
