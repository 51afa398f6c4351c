//! rfpga-estimate: resources and throughput of the design `rfpga codegen` generates, before
//! synthesis; the part catalog; a search for per-layer parallelism that fits a part.
//!
//! The model follows the generated architecture: one dataflow stage per layer with the
//! hardware structure of its HLS header (formulas in `layers/`, one per kind), the stream
//! FIFOs between stages with the skip-FIFO depths the code generator chose
//! (`rfpga_hls::skip_fifo`), the same per-layer parallelism. Its constants are assumptions,
//! listed with their error ranges in docs/estimate.md. Throughput of a dataflow pipeline is set
//! by its slowest stage.

pub mod layers;
pub mod parts;
pub mod report;
pub mod resources;

use anyhow::Result;
use rfpga_core::frozen::{Analysis, FrozenModel, Layer};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use parts::Part;
pub use resources::Resources;
pub use rfpga_hls::{Multipliers, Storage};

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
    /// Cycles between two images (the slowest stage) and its name.
    pub interval: u64,
    pub bottleneck: String,
    /// Cycles from the first input pixel to the logits, at most (stages one after another).
    pub latency: u64,
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
/// `default`), weight storage (`storage[layer]`, else `Auto`) and where the multipliers go
/// (`multipliers[layer]`, else `Auto`).
#[derive(Debug, Clone)]
pub struct Parallelism {
    pub default: usize,
    pub map: BTreeMap<String, usize>,
    pub storage: BTreeMap<String, Storage>,
    pub multipliers: BTreeMap<String, Multipliers>,
}

impl Default for Parallelism {
    fn default() -> Self {
        Parallelism { default: 1, map: BTreeMap::new(), storage: BTreeMap::new(), multipliers: BTreeMap::new() }
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
}

pub fn estimate(m: &FrozenModel, a: &Analysis, par: &Parallelism, part: &Part, clock_ns: f64) -> Result<Estimate> {
    let dsp = part.dsp();
    let mut rows = Vec::new();
    for (i, layer) in m.layers.iter().enumerate() {
        let input = &a.ports[a.inputs[i][0]];
        let out = &a.ports[i + 1];
        let cost = match layer {
            Layer::Conv(c) => {
                let p = par.of(&c.name);
                anyhow::ensure!(p >= 1 && c.out_ch % p == 0, "parallelism {p} for `{}`: must divide its {} output channels", c.name, c.out_ch);
                let in_dsp = par.multipliers_of(&c.name).in_dsp(input.format.width, c.weight.width);
                layers::conv::estimate(c, input, out, p, par.storage_of(&c.name), in_dsp, dsp)
            }
            Layer::Add(l) => layers::add::estimate(l, input),
            Layer::PadShortcut(_) => layers::pad::estimate(input),
            Layer::AvgPool(l) => layers::pool::estimate(l, input),
            Layer::Dense(l) => layers::dense::estimate(l, input, dsp),
        };
        rows.push(Row { name: layer.name().to_string(), kind: layer.kind().to_string(), resources: cost.resources, cycles: cost.cycles, detail: cost.detail });
    }
    // Streams between stages, as the code generator lays them out.
    let readers = rfpga_hls::readers(a);
    let last = a.ports.len() - 1;
    let mut depth: BTreeMap<(usize, usize), u64> = BTreeMap::new(); // (reader, port) → depth
    for (i, layer) in m.layers.iter().enumerate() {
        if let Layer::Add(_) = layer {
            if let Some((q, d)) = rfpga_hls::skip_fifo(m, a, &readers, &a.inputs[i]) {
                depth.insert((i, q), d as u64);
            }
        }
    }
    let (mut streams, mut skip_fifos, mut splits) = (Resources::default(), Resources::default(), Resources::default());
    for (p, rs) in readers.iter().enumerate() {
        if p == 0 || p == last {
            continue; // the top function's AXI-stream ports
        }
        let width = (a.ports[p].shape[2] as u32 * a.ports[p].format.width) as u64;
        // As generated: one stream per port; with two readers a split and one stream per reader.
        // A stream feeding an add's waiting input is deep (a skip FIFO), the others depth 2.
        let mut add_stream = |reader: Option<usize>| {
            match reader.and_then(|r| depth.get(&(r, p))) {
                Some(&d) => skip_fifos += resources::fifo(d, width),
                None => streams += resources::fifo(2, width),
            }
        };
        if rs.len() == 2 {
            splits += resources::stage_control();
            add_stream(None);
            for &r in rs {
                add_stream(Some(r));
            }
        } else {
            add_stream(rs.first().copied());
        }
    }
    rows.push(Row { name: "streams".into(), kind: "fifo".into(), resources: streams + splits, cycles: 0, detail: "stream FIFOs (depth 2) and skip splits".into() });
    rows.push(Row { name: "skip FIFOs".into(), kind: "fifo".into(), resources: skip_fifos, cycles: 0, detail: "deep FIFOs holding skip activations".into() });
    let total = rows.iter().fold(Resources::default(), |t, r| t + r.resources);
    let slowest = rows.iter().max_by_key(|r| r.cycles).expect("layers");
    Ok(Estimate {
        interval: slowest.cycles,
        bottleneck: slowest.name.clone(),
        latency: rows.iter().map(|r| r.cycles).sum(),
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
        "Verdict: {verdict}. Throughput: one image every {} cycles (slowest stage: {}) = {:.1} images/s at {} ns; latency ≤ {} cycles ({:.2} ms). Skip FIFOs: {} BRAM_18K, {} LUT.",
        e.interval,
        e.bottleneck,
        e.images_per_s(),
        e.clock_ns,
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
/// moves to URAM (where the part has room) or LUTRAM (where LUTs have room); over LUT, the
/// multipliers of the convolution with the most lanes move from LUTs to DSP slices (while DSPs
/// have room). Returns every design visited, in order; the fastest that fits is the answer.
pub fn fit(m: &FrozenModel, a: &Analysis, part: &Part, clock_ns: f64) -> Result<Vec<Candidate>> {
    let convs: Vec<(String, usize)> = m.layers.iter().filter_map(|l| if let Layer::Conv(c) = l { Some((c.name.clone(), c.out_ch)) } else { None }).collect();
    // Operand widths of each convolution's products (input × weight).
    let operands: BTreeMap<&str, (u32, u32)> = m
        .layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| if let Layer::Conv(c) = l { Some((c.name.as_str(), (a.ports[a.inputs[i][0]].format.width, c.weight.width))) } else { None })
        .collect();
    let mut config = Parallelism { map: convs.iter().map(|(n, _)| (n.clone(), 1)).collect(), ..Default::default() };
    let mut out: Vec<Candidate> = Vec::new();
    let eval = |c: &Parallelism| -> Result<Candidate> {
        let e = estimate(m, a, c, part, clock_ns)?;
        let fits = e.utilization(part).1;
        Ok(Candidate { config: c.clone(), estimate: e, fits })
    };
    let relieve = |next: &mut Parallelism, mut cand: Candidate| -> Result<Candidate> {
        while !cand.fits {
            let (u, _) = cand.estimate.utilization(part);
            if u[0] > 100.0 {
                let moved = cand
                    .estimate
                    .rows
                    .iter()
                    .filter(|r| r.kind == "conv" && next.storage_of(&r.name) == Storage::Auto && r.resources.bram_18k > 1)
                    .max_by_key(|r| r.resources.bram_18k)
                    .map(|r| r.name.clone());
                let Some(layer) = moved else { break };
                let to = if part.uram > 0 && u[4] < 90.0 { Storage::Uram } else if u[3] < 90.0 { Storage::Lutram } else { break };
                next.storage.insert(layer, to);
            } else if u[3] > 100.0 && u[1] < 90.0 {
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
        let Some((_, cout)) = convs.iter().find(|(n, _)| *n == bottleneck) else { break };
        let p = config.map[&bottleneck];
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
