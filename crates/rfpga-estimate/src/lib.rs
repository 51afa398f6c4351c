//! rfpga-estimate: resources and throughput of the design `rfpga codegen` generates, before
//! synthesis; the part catalog; a search for per-layer parallelism that fits a part.
//!
//! The model is the design the code generator emits, read from the same description
//! (`rfpga_hls::hw::Design`: one process per layer with its resources and schedule, the
//! streams with their depths); the interval and latency come from the cycle-level dataflow
//! simulation of that design (`rfpga_hls::dataflow`), not from "the slowest stage". Its
//! constants are assumptions, listed with their error ranges in docs/estimate.md.

pub mod design;
pub mod parts;
pub mod report;
pub use rfpga_hls::hw::resources;

use anyhow::{bail, Result};
use rfpga_core::frozen::{Analysis, FrozenModel, Layer};
use rfpga_hls::hw::{Design, Role};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use parts::Part;
pub use resources::Resources;
pub use rfpga_hls::{Multipliers, Storage};

/// Images the dataflow simulation runs back to back for an estimate.
pub const DATAFLOW_IMAGES: usize = 3;

/// One row of the estimate.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub kind: String,
    pub resources: Resources,
    pub cycles: u64,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct Estimate {
    pub rows: Vec<Row>,
    pub total: Resources,
    /// Cycles between two images in the dataflow simulation.
    pub interval: u64,
    /// The slowest process and its cycles per image when never stalled.
    pub bottleneck: String,
    pub slowest_stage: u64,
    /// Cycles from the first input word to the first image's last logit (dataflow simulation).
    pub latency: u64,
    /// Every FIFO's depth, by stream name (as generated).
    pub fifo_depths: BTreeMap<String, usize>,
    pub clock_ns: f64,
    /// Skip FIFOs alone (what removing or shortening skips changes).
    pub skip_fifos: Resources,
}

impl Estimate {
    pub fn images_per_s(&self) -> f64 {
        1e9 / (self.interval as f64 * self.clock_ns)
    }

    /// Each resource as a share of the part's (percent), and whether all are ≤ 100 %.
    pub fn utilization(&self, part: &Part) -> ([f64; 5], bool) {
        let avail = part.available().named();
        let mut u = [0.0; 5];
        let mut fits = true;
        for (i, ((_, used), (_, have))) in self.total.named().iter().zip(avail.iter()).enumerate() {
            u[i] = if *have == 0 { if *used == 0 { 0.0 } else { f64::INFINITY } } else { 100.0 * *used as f64 / *have as f64 };
            fits &= u[i] <= 100.0;
        }
        (u, fits)
    }
}

/// The per-layer design choices the code generator takes: lanes (`map[layer]`, else
/// `default`), weight storage (`storage[layer]`, else `Auto`), where the multipliers go
/// (`multipliers[layer]`, else `Auto`), and stream depths (`fifo_depths`; when empty, those
/// `rfpga_hls::dataflow::size_fifos` finds, as codegen does).
#[derive(Debug, Clone)]
pub struct Parallelism {
    pub default: usize,
    pub map: BTreeMap<String, usize>,
    pub storage: BTreeMap<String, Storage>,
    pub multipliers: BTreeMap<String, Multipliers>,
    pub fifo_depths: BTreeMap<String, usize>,
}

impl Default for Parallelism {
    fn default() -> Self {
        Parallelism { default: 1, map: BTreeMap::new(), storage: BTreeMap::new(), multipliers: BTreeMap::new(), fifo_depths: BTreeMap::new() }
    }
}

impl Parallelism {
    pub fn of(&self, layer: &str) -> usize {
        *self.map.get(layer).unwrap_or(&self.default)
    }
    pub fn storage_of(&self, layer: &str) -> Storage {
        *self.storage.get(layer).unwrap_or(&Storage::Auto)
    }
    pub fn multipliers_of(&self, layer: &str) -> Multipliers {
        *self.multipliers.get(layer).unwrap_or(&Multipliers::Auto)
    }
    /// The code generator's options for these choices.
    pub fn options(&self, part: &Part, clock_ns: f64) -> rfpga_hls::Options {
        rfpga_hls::Options {
            part: part.part.clone(),
            clock_ns,
            parallelism: self.map.clone(),
            default_parallelism: self.default,
            storage: self.storage.clone(),
            multipliers: self.multipliers.clone(),
            fifo_depths: self.fifo_depths.clone(),
        }
    }
}

/// The design `rfpga codegen` would generate with `par`: its streams at `par.fifo_depths`, or
/// sized by the dataflow model when none are given.
pub fn design(m: &FrozenModel, a: &Analysis, par: &Parallelism, part: &Part, clock_ns: f64) -> Result<Design> {
    Design::build_sized(m, a, &par.options(part, clock_ns), part.dsp(), "the frozen model")
}

pub fn estimate(m: &FrozenModel, a: &Analysis, par: &Parallelism, part: &Part, clock_ns: f64) -> Result<Estimate> {
    let d = design(m, a, par, part, clock_ns)?;
    estimate_design(&d, clock_ns)
}

/// The estimate of a built design: its processes' and streams' resources, and the interval and
/// latency of its dataflow simulation.
pub fn estimate_design(d: &Design, clock_ns: f64) -> Result<Estimate> {
    let mut rows = Vec::new();
    let (mut ports, mut splits) = (Row { name: "axis ports".into(), kind: "axis".into(), resources: Resources::default(), cycles: 0, detail: String::new() }, Resources::default());
    for p in &d.processes {
        match p.kind {
            "split" => splits += p.resources,
            "axis" => {
                ports.resources += p.resources;
                ports.cycles = ports.cycles.max(p.cycles());
                ports.detail = format!("in: {} words of {} bits; out: {} words of {} bits with TLAST", d.in_pixels, d.in_word, d.classes, d.out_word);
            }
            _ => rows.push(Row { name: p.name.clone(), kind: p.kind.to_string(), resources: p.resources, cycles: p.cycles(), detail: p.detail.clone() }),
        }
    }
    rows.push(ports);
    let (mut streams, mut skip_fifos) = (Resources::default(), Resources::default());
    let (mut n_streams, mut n_skip) = (0, 0);
    for s in &d.streams {
        match s.role {
            Role::Skip => {
                skip_fifos += s.resources();
                n_skip += 1;
            }
            Role::Stream => {
                streams += s.resources();
                n_streams += 1;
            }
            _ => {}
        }
    }
    let deep = d.streams.iter().filter(|s| s.role == Role::Stream && s.depth > 2).count();
    rows.push(Row {
        name: "streams".into(),
        kind: "fifo".into(),
        resources: streams + splits,
        cycles: 0,
        detail: format!("{n_streams} stream FIFOs ({deep} deeper than 2) and the skip splits"),
    });
    rows.push(Row { name: "skip FIFOs".into(), kind: "fifo".into(), resources: skip_fifos, cycles: 0, detail: format!("{n_skip} deep FIFOs holding skip activations") });
    let total = rows.iter().fold(Resources::default(), |t, r| t + r.resources);
    let slowest = d.slowest();
    let sim = rfpga_hls::dataflow::simulate(d, DATAFLOW_IMAGES);
    if let Some(report) = sim.deadlock_report() {
        bail!("the design deadlocks at its FIFO depths ({report}); size them with `rfpga dataflow --size-fifos`");
    }
    Ok(Estimate {
        interval: sim.interval().expect("no deadlock"),
        bottleneck: slowest.name.clone(),
        slowest_stage: slowest.cycles(),
        latency: sim.latency().expect("no deadlock"),
        fifo_depths: d.depths(),
        total,
        rows,
        clock_ns,
        skip_fifos,
    })
}

/// The estimate as a table (per layer and in total, counts and % of the part) with the verdict.
pub fn table(e: &Estimate, part: &Part) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| layer | kind | BRAM_18K | DSP | FF | LUT | URAM | cycles/image | structure |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---|");
    for r in &e.rows {
        let x = r.resources;
        let cycles = if r.cycles > 0 { r.cycles.to_string() } else { "-".into() };
        let _ = writeln!(s, "| {} | {} | {} | {} | {} | {} | {} | {} | {} |", r.name, r.kind, x.bram_18k, x.dsp, x.ff, x.lut, x.uram, cycles, r.detail);
    }
    let (u, fits) = e.utilization(part);
    let t = e.total;
    let _ = writeln!(s, "| **total** | | **{}** | **{}** | **{}** | **{}** | **{}** | | |", t.bram_18k, t.dsp, t.ff, t.lut, t.uram);
    let a = part.available();
    let _ = writeln!(s, "| {} available | | {} | {} | {} | {} | {} | | |", part.device, a.bram_18k, a.dsp, a.ff, a.lut, a.uram);
    let pct = |v: f64| if v.is_finite() { format!("{v:.1} %") } else { "∞ (none on this part)".into() };
    let _ = writeln!(s, "| **utilization** | | **{}** | **{}** | **{}** | **{}** | **{}** | | |", pct(u[0]), pct(u[1]), pct(u[2]), pct(u[3]), pct(u[4]));
    let _ = writeln!(s);
    let over: Vec<&str> = t.named().iter().zip(u).filter(|(_, p)| *p > 100.0).map(|((n, _), _)| *n).collect();
    let verdict = if fits { format!("**fits** {}", part.device) } else { format!("**does not fit** {}: {} over 100 %", part.device, over.join(", ")) };
    let _ = writeln!(
        s,
        "Verdict: {verdict}. Throughput (dataflow simulation, {DATAFLOW_IMAGES} images back to back): one image every {} cycles = {:.1} images/s at {} ns (slowest stage: {}, {} cycles; interval {:+.1} % over it); latency {} cycles ({:.2} ms). Skip FIFOs: {} BRAM_18K, {} LUT.",
        e.interval,
        e.images_per_s(),
        e.clock_ns,
        e.bottleneck,
        e.slowest_stage,
        100.0 * (e.interval as f64 / e.slowest_stage.max(1) as f64 - 1.0),
        e.latency,
        e.latency as f64 * e.clock_ns / 1e6,
        e.skip_fifos.bram_18k,
        e.skip_fifos.lut
    );
    s
}

/// One point of the fit search.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub config: Parallelism,
    pub estimate: Estimate,
    pub fits: bool,
}

impl Candidate {
    /// The `--parallelism` argument of `rfpga codegen` for this configuration.
    pub fn argument(&self) -> String {
        self.config.map.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
    }
    /// The `--weight-storage` argument (empty when every layer is `auto`).
    pub fn storage_argument(&self) -> String {
        self.config.storage.iter().map(|(k, v)| format!("{k}={}", format!("{v:?}").to_lowercase())).collect::<Vec<_>>().join(",")
    }
    /// The `--multipliers` argument (empty when every layer is `auto`).
    pub fn multipliers_argument(&self) -> String {
        self.config.multipliers.iter().map(|(k, v)| format!("{k}={}", format!("{v:?}").to_lowercase())).collect::<Vec<_>>().join(",")
    }
}

/// Searches per-layer parallelism, weight storage and multiplier binding for designs that fit
/// `part`: from one lane everywhere, the slowest convolution's lanes double while the design
/// fits. A design over budget is first relieved: over BRAM_18K, the largest BRAM weight memory
/// moves to LUTRAM (where LUTs have room; never to URAM, which cannot hold a ROM); over LUT,
/// whole-pixel skip adds fold to one channel per cycle (once, where FFs have room: their input
/// pixels go to registers; not when `add_lanes` fixes them: `all`, or N to start from), then
/// the multipliers of the convolution with the most lanes move from LUTs to DSP slices (while
/// DSPs have room). A folded add that becomes the slowest stage has its lanes doubled like a
/// convolution's. A design fits when every resource is within `budget` percent of the part's
/// (100: all of it; less leaves room for place and route). Returns every design visited, in order; the
/// fastest that fits is the answer.
pub fn fit(m: &FrozenModel, a: &Analysis, part: &Part, clock_ns: f64, budget: f64, add_lanes: Option<design::AddLanes>) -> Result<Vec<Candidate>> {
    let room = 0.9 * budget;
    let convs: Vec<(String, usize)> = m.layers.iter().filter_map(|l| if let Layer::Conv(c) = l { Some((c.name.clone(), c.out_ch)) } else { None }).collect();
    // Folded adds (fewer lanes than channels) are stages whose lanes fit may double too.
    let adds: Vec<(String, usize)> = m.layers.iter().enumerate().filter_map(|(i, l)| if let Layer::Add(x) = l { Some((x.name.clone(), a.ports[a.inputs[i][0]].shape[2])) } else { None }).collect();
    // Operand widths of each convolution's products (input × weight).
    let operands: BTreeMap<&str, (u32, u32)> = m
        .layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| if let Layer::Conv(c) = l { Some((c.name.as_str(), (a.ports[a.inputs[i][0]].format.width, c.weight.width))) } else { None })
        .collect();
    let mut config = Parallelism { map: convs.iter().map(|(n, _)| (n.clone(), 1)).collect(), ..Default::default() };
    if let Some(k) = add_lanes {
        design::set_add_lanes(m, &mut config.map, k);
    }
    let mut out: Vec<Candidate> = Vec::new();
    let eval = |c: &Parallelism| -> Result<Candidate> {
        let e = estimate(m, a, c, part, clock_ns)?;
        let fits = e.utilization(part).0.iter().all(|&u| u <= budget);
        Ok(Candidate { config: c.clone(), estimate: e, fits })
    };
    let relieve = |next: &mut Parallelism, mut cand: Candidate| -> Result<Candidate> {
        while !cand.fits {
            let (u, _) = cand.estimate.utilization(part);
            // Folding frees LUTs: first when they overflow, or when BRAM relief (to LUTRAM)
            // needs LUT room.
            let can_fold = add_lanes.is_none() && u[2] < room && adds.iter().any(|(n, _)| !next.map.contains_key(n));
            if can_fold && (u[3] > budget || (u[0] > budget && u[3] >= room)) {
                for (n, _) in &adds {
                    next.map.entry(n.clone()).or_insert(1);
                }
            } else if u[0] > budget {
                let moved = cand
                    .estimate
                    .rows
                    .iter()
                    .filter(|r| r.kind == "conv" && next.storage_of(&r.name) == Storage::Auto && r.resources.bram_18k > 1)
                    .max_by_key(|r| r.resources.bram_18k)
                    .map(|r| r.name.clone());
                let Some(layer) = moved else { break };
                let to = if u[3] < room { Storage::Lutram } else { break };
                next.storage.insert(layer, to);
            } else if u[3] > budget && u[1] < room {
                let in_lut = |n: &str| {
                    let (x, w) = operands[n];
                    !next.multipliers_of(n).in_dsp(x, w)
                };
                let moved = convs.iter().filter(|(n, _)| in_lut(n)).max_by_key(|(n, _)| next.of(n)).map(|(n, _)| n.clone());
                let Some(layer) = moved else { break };
                next.multipliers.insert(layer, Multipliers::Dsp);
            } else {
                break;
            }
            cand = eval(next)?;
        }
        Ok(cand)
    };
    let first = eval(&config)?;
    let mut current = relieve(&mut config, first)?;
    out.push(current.clone());
    if !current.fits {
        return Ok(out);
    }
    loop {
        let bottleneck = current.estimate.bottleneck.clone();
        let Some((_, cout)) = convs.iter().chain(&adds).find(|(n, _)| *n == bottleneck) else { break };
        let Some(&p) = config.map.get(&bottleneck) else { break };
        if p * 2 > *cout || cout % (p * 2) != 0 {
            break;
        }
        let mut next = config.clone();
        next.map.insert(bottleneck, p * 2);
        let cand = eval(&next)?;
        let cand = relieve(&mut next, cand)?;
        out.push(cand.clone());
        if !cand.fits {
            break;
        }
        config = next;
        current = cand;
    }
    Ok(out)
}
