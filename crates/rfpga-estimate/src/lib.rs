//! rfpga-estimate: resources and throughput of the design `rfpga codegen` generates, before
//! synthesis; the part catalog; a search for per-layer parallelism that fits a part.
//!
//! The model is the design the code generator emits, read from the same description
//! (`rfpga_hls::hw::Design`: one process per layer with its resources and schedule, the
//! streams with their depths); the interval and latency come from the cycle-level dataflow
//! simulation of that design (`rfpga_hls::dataflow`), not from "the slowest stage". Its
//! constants are assumptions, listed with their error ranges in docs/explanation/estimate.md.

pub mod design;
pub mod parts;
pub mod report;
pub use rfpga_hls::hw::resources;

use anyhow::{bail, Result};
use rfpga_core::frozen::{Analysis, FrozenModel, Layer};
use rfpga_hls::hw::{Design, FifoImpl, Role};
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
    /// Every FIFO: stream name, resources, and resources were it in URAM (what the fit moves
    /// between storages).
    pub fifos: Vec<(String, Resources, Resources)>,
}

impl Estimate {
    pub fn images_per_s(&self) -> f64 {
        1e9 / (self.interval as f64 * self.clock_ns)
    }

    /// Each resource as a share of the part's (percent: BRAM_18K, DSP, FF, LUT, URAM, and LUTs
    /// used as memory against the part's SLICEM LUTs), and whether all are ≤ 100 %.
    pub fn utilization(&self, part: &Part) -> ([f64; 6], bool) {
        let avail = part.available();
        let mut u = [0.0; 6];
        let pairs = self.total.named().map(|(_, v)| v).into_iter().chain([self.total.lut_mem]).zip(avail.named().map(|(_, v)| v).into_iter().chain([part.lut_mem]));
        for (i, (used, have)) in pairs.enumerate() {
            u[i] = if have == 0 { if used == 0 { 0.0 } else { f64::INFINITY } } else { 100.0 * used as f64 / have as f64 };
        }
        (u, u.iter().all(|&x| x <= 100.0))
    }

    /// The resource closest to its limit (its name and percent).
    pub fn binding(&self, part: &Part) -> (&'static str, f64) {
        let (u, _) = self.utilization(part);
        const NAMES: [&str; 6] = ["BRAM_18K", "DSP", "FF", "LUT", "URAM", "LUT as memory"];
        let i = (0..6).max_by(|&a, &b| u[a].total_cmp(&u[b])).expect("six");
        (NAMES[i], u[i])
    }
}

/// The per-layer design choices the code generator takes: lanes (`map[layer]`, else
/// `default`), weight storage (`storage[layer]`, else `Auto`), where the multipliers go
/// (`multipliers[layer]`, else `Auto`), and stream depths (`fifo_depths`; when empty, those
/// `rfpga_hls::dataflow::size_fifos` finds, as codegen does).
#[derive(Debug, Clone)]
pub struct Parallelism {
    pub default: usize,
    /// PE by convolution.
    pub map: BTreeMap<String, usize>,
    /// SIMD by convolution (1 where absent).
    pub simd: BTreeMap<String, usize>,
    pub storage: BTreeMap<String, Storage>,
    pub multipliers: BTreeMap<String, Multipliers>,
    pub fifo_depths: BTreeMap<String, usize>,
    pub fifo_storage: BTreeMap<String, FifoImpl>,
}

impl Default for Parallelism {
    fn default() -> Self {
        Parallelism {
            default: 1,
            map: BTreeMap::new(),
            simd: BTreeMap::new(),
            storage: BTreeMap::new(),
            multipliers: BTreeMap::new(),
            fifo_depths: BTreeMap::new(),
            fifo_storage: BTreeMap::new(),
        }
    }
}

impl Parallelism {
    pub fn of(&self, layer: &str) -> usize {
        *self.map.get(layer).unwrap_or(&self.default)
    }
    pub fn simd_of(&self, layer: &str) -> usize {
        *self.simd.get(layer).unwrap_or(&1)
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
            simd: self.simd.clone(),
            storage: self.storage.clone(),
            multipliers: self.multipliers.clone(),
            fifo_depths: self.fifo_depths.clone(),
            fifo_storage: self.fifo_storage.clone(),
        }
    }
}

/// The design `rfpga codegen` would generate with `par`: its streams at `par.fifo_depths`, or
/// sized by the dataflow model when none are given.
pub fn design(m: &FrozenModel, a: &Analysis, par: &Parallelism, part: &Part, clock_ns: f64) -> Result<Design> {
    Design::build_sized(m, a, &par.options(part, clock_ns), part.dsp(), "the frozen model")
}

/// [`estimate`] with the FIFOs sized by peak occupancy (one dataflow simulation instead of a
/// search: depths at least those codegen picks, so the resources err high): for searches.
pub fn estimate_quick(m: &FrozenModel, a: &Analysis, par: &Parallelism, part: &Part, clock_ns: f64) -> Result<Estimate> {
    let mut d = Design::build(m, a, &par.options(part, clock_ns), part.dsp(), "the frozen model")?;
    if par.fifo_depths.is_empty() {
        d.set_sized_depths(rfpga_hls::dataflow::size_fifos_by_peak(&d, rfpga_hls::dataflow::SIZING_IMAGES)?);
    }
    estimate_design(&d, clock_ns)
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
                ports.detail = format!("in: {} words of {} bits; out: {} words of {} bits, TLAST where the input's was", d.in_pixels, d.in_word, d.classes, d.out_word);
            }
            _ => rows.push(Row { name: p.name.clone(), kind: p.kind.to_string(), resources: p.resources, cycles: p.cycles(), detail: p.detail.clone() }),
        }
    }
    rows.push(ports);
    let fifos = d
        .streams
        .iter()
        .filter(|s| s.is_fifo())
        .map(|s| (s.name.clone(), s.resources(), rfpga_hls::hw::fifo::resources(s.depth as u64, s.bits, FifoImpl::Uram)))
        .collect();
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
        fifos,
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
    let _ = writeln!(s, "LUT as memory (LUTRAM and shift registers, SLICEM only): {} of the part's {} SLICEM LUTs ({}).", t.lut_mem, part.lut_mem, pct(u[5]));
    let mut over: Vec<&str> = t.named().iter().zip(u).filter(|(_, p)| *p > 100.0).map(|((n, _), _)| *n).collect();
    if u[5] > 100.0 {
        over.push("LUT as memory");
    }
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
    /// The `--simd` argument.
    pub fn simd_argument(&self) -> String {
        let s: Vec<String> = self.config.simd.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if s.is_empty() {
            "1".into()
        } else {
            s.join(",")
        }
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

/// DSP-first multiplier binding: convolutions (most multipliers first) get DSP slices while
/// they fit within `budget` percent of the part's DSPs (the dense layer's one multiplier
/// counted first); the rest are built from LUTs. A known, exact DSP count.
pub fn bind_dsp_first(m: &FrozenModel, a: &Analysis, par: &mut Parallelism, part: &Part, budget: f64) {
    let dsp_kind = part.dsp();
    let mut left = (part.dsp as f64 * budget / 100.0).floor() as u64;
    let mut convs: Vec<(String, u64, u64)> = Vec::new();
    for (i, l) in m.layers.iter().enumerate() {
        let x = a.ports[a.inputs[i][0]].format.width;
        match l {
            Layer::Conv(c) => {
                let per = resources::multiplier(x, c.weight.width, true, dsp_kind).dsp;
                convs.push((c.name.clone(), (par.of(&c.name) * par.simd_of(&c.name)) as u64, per));
            }
            Layer::Dense(d) => {
                if Multipliers::Auto.in_dsp(x, d.weight.width) {
                    left = left.saturating_sub(resources::multiplier(x, d.weight.width, true, dsp_kind).dsp);
                }
            }
            _ => {}
        }
    }
    convs.sort_by_key(|(_, n, _)| std::cmp::Reverse(*n));
    for (name, n, per) in convs {
        let need = n * per;
        let kind = if need <= left {
            left -= need;
            Multipliers::Dsp
        } else {
            Multipliers::Fabric
        };
        par.multipliers.insert(name, kind);
    }
}

/// Searches per-convolution folding (PE × SIMD), multiplier binding, weight and FIFO storage
/// for designs that fit `part` within `budget` percent of every resource: from PE = SIMD = 1
/// everywhere, the slowest stage's parallelism doubles while the design fits — SIMD (input
/// channels per cycle) when it is below PE or the convolution's PE is tied to others (outputs
/// that meet at a skip add share one PE: [`rfpga_hls::hw::pe_classes`]), else PE for the
/// convolution and every one tied to it. After each step the multipliers are bound DSP-first
/// ([`bind_dsp_first`]); a design over its BRAM_18K budget is relieved by moving the largest
/// BRAM FIFOs to URAM (parts that have it) and then the weight ROMs that free the most BRAM per
/// LUT to LUTs, as many as the excess needs, while URAM and LUTs stay a tenth below the budget
/// (within it for the first design).
/// Candidates are estimated with FIFOs sized by peak occupancy (quick; erring high); one still
/// over budget after relief, and the fastest that fits, as codegen sizes them. Returns every
/// design visited, in order; the fastest that fits is the answer.
pub fn fit(m: &FrozenModel, a: &Analysis, part: &Part, clock_ns: f64, budget: f64) -> Result<Vec<Candidate>> {
    let classes = rfpga_hls::hw::pe_classes(m, a);
    let convs: BTreeMap<String, (usize, usize)> = m
        .layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| if let Layer::Conv(c) = l { Some((c.name.clone(), (a.ports[a.inputs[i][0]].shape[2], c.out_ch))) } else { None })
        .collect();
    // Convolutions whose accumulator allows SIMD > 1 (rfpga_hls::hw::conv::simd_ok).
    let simd_allowed: BTreeMap<String, bool> = m
        .layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| if let Layer::Conv(c) = l { Some((c.name.clone(), rfpga_hls::hw::conv::simd_ok(&c.accum, &a.ports[a.inputs[i][0]].format, &c.weight))) } else { None })
        .collect();
    let kernel: BTreeMap<String, usize> = m.layers.iter().filter_map(|l| if let Layer::Conv(c) = l { Some((c.name.clone(), c.kernel)) } else { None }).collect();
    let weight_bits: BTreeMap<String, u64> = m.layers.iter().filter_map(|l| if let Layer::Conv(c) = l { Some((c.name.clone(), c.weight.width as u64)) } else { None }).collect();
    let mut config = Parallelism { map: convs.keys().map(|n| (n.clone(), 1)).collect(), ..Default::default() };
    // Candidates with FIFOs sized by peak occupancy (quick, erring high); one over budget so is
    // estimated again with the sizing codegen uses (so that no decision, and no storage move,
    // rests on the quick sizing's excess), and the design chosen again below.
    let quick = |c: &Parallelism| -> Result<Candidate> {
        let e = estimate_quick(m, a, c, part, clock_ns)?;
        let fits = e.utilization(part).0.iter().all(|&u| u <= budget);
        Ok(Candidate { config: c.clone(), estimate: e, fits })
    };
    let confirm = |cand: Candidate| -> Result<Candidate> {
        if cand.fits {
            return Ok(cand);
        }
        // Codegen's sizing changes FIFO depths only (never deeper than the quick sizing's): a
        // design over budget without any FIFO cannot fit with it.
        let mut rest = cand.estimate.clone();
        for (_, r, _) in &cand.estimate.fifos {
            rest.total.bram_18k -= r.bram_18k;
            rest.total.ff -= r.ff;
            rest.total.lut -= r.lut;
            rest.total.lut_mem -= r.lut_mem;
            rest.total.uram -= r.uram;
        }
        if rest.utilization(part).0.iter().any(|&u| u > budget) {
            return Ok(cand);
        }
        let e = estimate(m, a, &cand.config, part, clock_ns)?;
        let fits = e.utilization(part).0.iter().all(|&u| u <= budget);
        Ok(Candidate { config: cand.config, estimate: e, fits })
    };
    let eval = |c: &Parallelism| -> Result<Candidate> { confirm(quick(c)?) };
    // BRAM relief, in batches: the moves that free the BRAM_18K over budget, counted from the
    // estimate's own per-FIFO and per-ROM figures (storage does not change FIFO depths), then
    // one estimate; again while that is still over and something can move. URAM and LUTs are
    // filled up to `cap_share` percent: `room` (a tenth below the budget, left for the steps after)
    // once a design has fitted, the whole budget for the first design.
    let relieve = |next: &mut Parallelism, mut cand: Candidate, cap_share: f64| -> Result<Candidate> {
        while !cand.fits {
            let (u, _) = cand.estimate.utilization(part);
            if u[0] <= budget {
                break;
            }
            let (avail, t) = (part.available(), cand.estimate.total);
            let cap = |have: u64, share: f64| share / 100.0 * have as f64;
            let mut excess = t.bram_18k as f64 - cap(avail.bram_18k, budget);
            let mut moved = false;
            // FIFOs to URAM (largest BRAM first) while URAM stays within `cap_share`.
            if part.uram > 0 {
                let mut uram = t.uram as f64;
                let mut fifos: Vec<&(String, Resources, Resources)> = cand.estimate.fifos.iter().filter(|(n, r, _)| r.bram_18k > 0 && !next.fifo_storage.contains_key(n)).collect();
                fifos.sort_by_key(|(n, r, _)| (std::cmp::Reverse(r.bram_18k), n.clone()));
                for (n, r, in_uram) in fifos {
                    if excess <= 0.0 {
                        break;
                    }
                    if uram + in_uram.uram as f64 > cap(avail.uram, cap_share) {
                        continue;
                    }
                    uram += in_uram.uram as f64;
                    excess -= r.bram_18k as f64;
                    next.fifo_storage.insert(n.clone(), FifoImpl::Uram);
                    moved = true;
                }
            }
            // Then weight ROMs to LUTs, those that free the most BRAM per LUT they then cost
            // first (a wide, shallow ROM of a fast layer takes many blocks for little
            // capacity), while LUTs stay within `cap_share`.
            let mut lut = t.lut as f64;
            let mut roms: Vec<(String, u64, u64)> = convs
                .iter()
                .filter(|(n, _)| next.storage_of(n) == Storage::Auto)
                .filter_map(|(n, &(cin, cout))| {
                    let (pe, simd, k, wbits) = (next.of(n), next.simd_of(n), kernel[n], weight_bits[n]);
                    let (rows, width) = (((cout / pe) * (k * k * cin / simd)) as u64, (pe * simd) as u64 * wbits);
                    let bram = resources::rom(Storage::Bram, rows, width).bram_18k;
                    let lut = resources::rom(Storage::Lutram, rows, width).lut;
                    (bram > 1 && resources::rom(Storage::Auto, rows, width).bram_18k > 0).then(|| (n.clone(), bram, lut))
                })
                .collect();
            roms.sort_by(|a, b| (b.1 as f64 / b.2 as f64).total_cmp(&(a.1 as f64 / a.2 as f64)).then(a.0.cmp(&b.0)));
            for (n, bram, cost) in roms {
                if excess <= 0.0 {
                    break;
                }
                if lut + cost as f64 > cap(avail.lut, cap_share) {
                    continue;
                }
                lut += cost as f64;
                excess -= bram as f64;
                next.storage.insert(n, Storage::Lutram);
                moved = true;
            }
            if !moved {
                break;
            }
            cand = eval(next)?;
        }
        Ok(cand)
    };
    bind_dsp_first(m, a, &mut config, part, budget);
    let room = 0.9 * budget;
    let first = eval(&config)?;
    let mut current = relieve(&mut config, first, budget)?;
    let mut out = vec![current.clone()];
    if !current.fits {
        return Ok(out);
    }
    loop {
        // Every convolution within 10 % of the slowest stage steps at once (each would be the
        // bottleneck next): fewer designs to visit, the same end point.
        let slowest = current.estimate.slowest_stage;
        let stages: Vec<String> = current.estimate.rows.iter().filter(|r| r.kind == "conv" && r.cycles as f64 >= 0.9 * slowest as f64).map(|r| r.name.clone()).collect();
        if current.estimate.rows.iter().any(|r| r.cycles == slowest && r.kind != "conv") {
            break; // a stage the fit does not fold is the slowest
        }
        let mut next = config.clone();
        let mut stepped = false;
        for bottleneck in &stages {
            let (cin, cout) = convs[bottleneck];
            let class = classes.iter().find(|k| k.contains(bottleneck)).cloned().unwrap_or_else(|| vec![bottleneck.clone()]);
            let (pe, simd) = (next.of(bottleneck), next.simd_of(bottleneck));
            let simd_ok = cin % (2 * simd) == 0 && simd_allowed[bottleneck];
            let pe_ok = class.iter().all(|n| convs[n].1 % (2 * next.of(n)) == 0) && 2 * pe <= cout;
            if simd_ok && (simd < pe || class.len() > 1 || !pe_ok) {
                next.simd.insert(bottleneck.clone(), 2 * simd);
                stepped = true;
            } else if pe_ok && config.of(bottleneck) == pe {
                for n in &class {
                    let p = next.of(n);
                    next.map.insert(n.clone(), 2 * p);
                }
                stepped = true;
            }
        }
        if !stepped {
            break;
        }
        next.multipliers.clear();
        bind_dsp_first(m, a, &mut next, part, budget);
        let cand = eval(&next)?;
        let cand = relieve(&mut next, cand, room)?;
        out.push(cand.clone());
        if !cand.fits {
            break;
        }
        config = next;
        current = cand;
    }
    // The fastest design that fits, as codegen will size it (its FIFOs no deeper than the
    // quick sizing's, so it still fits).
    if let Some(k) = out.iter().rposition(|c| c.fits) {
        let e = estimate(m, a, &out[k].config, part, clock_ns)?;
        let fits = e.utilization(part).0.iter().all(|&u| u <= budget);
        out[k] = Candidate { config: out[k].config.clone(), estimate: e, fits };
    }
    Ok(out)
}
