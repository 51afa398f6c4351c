//! `rfpga codegen` and `rfpga csim`: the Vitis HLS project and its C simulation with g++.

use anyhow::{bail, Context, Result};
use clap::Args;
use rfpga_hls::{Multipliers, Options, Storage};
use rfpga_sim::Simulator;
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::fixedpoint::{export_vectors, load_test, simulate};

#[derive(Args)]
pub struct CodegenArgs {
    /// Frozen model folder (rfpga quantize --out).
    frozen: PathBuf,
    /// Project folder to write.
    #[arg(long)]
    out: PathBuf,
    /// FPGA part for build.tcl (default: the --design file's, else xc7z020clg400-1).
    #[arg(long)]
    part: Option<String>,
    /// Clock period for build.tcl.
    #[arg(long, default_value_t = 10.0)]
    clock_ns: f64,
    /// Output channels each convolution computes in parallel: N for all, or LAYER=N,… for some
    /// (e.g. `4` or `conv1=2,layer3.0.conv1=8`).
    #[arg(long, default_value = "1")]
    parallelism: String,
    /// Where convolution weights live: auto (Vitis decides), bram, lutram, or LAYER=KIND,….
    #[arg(long, default_value = "auto")]
    weight_storage: String,
    /// Where convolution multipliers go: auto (LUTs up to 10-bit operands, else DSPs), fabric,
    /// dsp, or LAYER=KIND,…; the generated code binds them so (BIND_OP).
    #[arg(long, default_value = "auto")]
    multipliers: String,
    /// A design file written by `rfpga fit --out` (parallelism, weight storage, multipliers per
    /// layer, and stream depths); overrides --parallelism, --weight-storage and --multipliers.
    /// Without stream depths in it, codegen sizes them with the dataflow model.
    #[arg(long)]
    design: Option<PathBuf>,
    /// Test images whose inputs and expected logits (from the simulator) go into PROJECT/vectors.
    #[arg(long, default_value_t = 100)]
    vectors: usize,
    #[arg(long, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// `N`, `LAYER=N,…`, or `@FILE` holding either.
pub fn parse_parallelism(s: &str) -> Result<(usize, BTreeMap<String, usize>)> {
    if let Some(path) = s.strip_prefix('@') {
        let text = std::fs::read_to_string(path).with_context(|| format!("--parallelism: reading {path}"))?;
        return parse_parallelism(text.trim());
    }
    let bad = |x: &str| anyhow::anyhow!("--parallelism: expected N or LAYER=N,… with N ≥ 1, found `{x}`");
    if let Ok(n) = s.parse::<usize>() {
        return if n >= 1 { Ok((n, BTreeMap::new())) } else { Err(bad(s)) };
    }
    let mut map = BTreeMap::new();
    for part in s.split(',') {
        let (layer, n) = part.split_once('=').ok_or_else(|| bad(part))?;
        let n: usize = n.parse().ok().filter(|&n| n >= 1).ok_or_else(|| bad(part))?;
        map.insert(layer.to_string(), n);
    }
    Ok((1, map))
}

/// A per-layer choice (`--weight-storage`, `--multipliers`): `KIND` for every convolution (an
/// empty map plus that default), or `LAYER=KIND,…` (the rest `auto`).
pub fn parse_per_layer<T: std::str::FromStr<Err = anyhow::Error>>(s: &str, flag: &str) -> Result<(T, BTreeMap<String, T>)> {
    if !s.contains('=') {
        return Ok((s.parse().context(flag.to_string())?, BTreeMap::new()));
    }
    let mut map = BTreeMap::new();
    for part in s.split(',') {
        let (layer, kind) = part.split_once('=').with_context(|| format!("{flag}: expected LAYER=KIND, found `{part}`"))?;
        map.insert(layer.to_string(), kind.parse().context(flag.to_string())?);
    }
    Ok(("auto".parse().context(flag.to_string())?, map))
}

pub fn parse_storage(s: &str) -> Result<(Storage, BTreeMap<String, Storage>)> {
    parse_per_layer(s, "--weight-storage")
}

pub fn parse_multipliers(s: &str) -> Result<(Multipliers, BTreeMap<String, Multipliers>)> {
    parse_per_layer(s, "--multipliers")
}

/// A design file of `rfpga fit --out`: `rfpga-design` v1 with `parallelism`, `weight_storage`
/// and (optional, `auto` when absent) `multipliers` by layer, and (optional, sized by codegen
/// when absent) `fifo_depths` by stream (`rfpga dataflow --size-fifos` writes them).
pub struct Design {
    pub part: String,
    pub parallelism: BTreeMap<String, usize>,
    pub storage: BTreeMap<String, Storage>,
    pub multipliers: BTreeMap<String, Multipliers>,
    pub fifo_depths: BTreeMap<String, usize>,
}

pub fn read_design(path: &std::path::Path) -> Result<Design> {
    let v: serde_json::Value = rfpga_core::io::read_json(path)?;
    if v.get("format").and_then(|f| f.as_str()) != Some("rfpga-design") {
        bail!("{}: field `format`: expected rfpga-design", path.display());
    }
    let field = |k: &str| v.get(k).cloned().with_context(|| format!("{}: field `{k}` is missing", path.display()));
    let parallelism: BTreeMap<String, usize> = serde_json::from_value(field("parallelism")?).with_context(|| format!("{}: field `parallelism`", path.display()))?;
    if let Some((layer, n)) = parallelism.iter().find(|(_, &n)| n == 0) {
        bail!("{}: field `parallelism.{layer}`: expected ≥ 1 lanes, found {n}", path.display());
    }
    let storage = serde_json::from_value(field("weight_storage")?).with_context(|| format!("{}: field `weight_storage`", path.display()))?;
    let multipliers = match v.get("multipliers") {
        Some(m) => serde_json::from_value(m.clone()).with_context(|| format!("{}: field `multipliers`", path.display()))?,
        None => BTreeMap::new(),
    };
    let fifo_depths: BTreeMap<String, usize> = match v.get("fifo_depths") {
        Some(m) => serde_json::from_value(m.clone()).with_context(|| format!("{}: field `fifo_depths`", path.display()))?,
        None => BTreeMap::new(),
    };
    if let Some((stream, _)) = fifo_depths.iter().find(|(_, &d)| d == 0) {
        bail!("{}: field `fifo_depths.{stream}`: expected a depth ≥ 1, found 0", path.display());
    }
    let part = field("part")?.as_str().map(str::to_string).with_context(|| format!("{}: field `part`: expected a string", path.display()))?;
    Ok(Design { part, parallelism, storage, multipliers, fifo_depths })
}

/// The part to use when a design file names one: the design's unless --part says the same
/// device (or nothing).
pub fn design_part(design: &Design, given: Option<&str>, file: &std::path::Path) -> Result<String> {
    match given {
        None => Ok(rfpga_estimate::parts::find(&design.part)?.part),
        Some(g) => {
            let (a, b) = (rfpga_estimate::parts::find(g)?, rfpga_estimate::parts::find(&design.part)?);
            if a.device != b.device {
                bail!("--part {g} differs from the part {} that {} was fitted for", design.part, file.display());
            }
            Ok(g.to_string())
        }
    }
}

/// Every convolution's choice: explicit ones, and `default` for the rest (nothing where the
/// default is `auto`).
pub fn per_layer_map<T: Copy + PartialEq + std::str::FromStr>(model: &rfpga_core::frozen::FrozenModel, default: T, mut map: BTreeMap<String, T>) -> BTreeMap<String, T> {
    if "auto".parse::<T>().ok() != Some(default) {
        for l in &model.layers {
            if l.kind() == "conv" {
                map.entry(l.name().to_string()).or_insert(default);
            }
        }
    }
    map
}

pub fn codegen(a: CodegenArgs) -> Result<()> {
    let (default_parallelism, mut parallelism) = parse_parallelism(&a.parallelism)?;
    let (default_storage, storage) = parse_storage(&a.weight_storage)?;
    let (default_mult, multipliers) = parse_multipliers(&a.multipliers)?;
    let model = rfpga_core::frozen::FrozenModel::load(&a.frozen)?;
    let mut storage = per_layer_map(&model, default_storage, storage);
    let mut multipliers = per_layer_map(&model, default_mult, multipliers);
    let mut part = a.part.clone().unwrap_or_else(|| "xc7z020clg400-1".into());
    let mut fifo_depths = BTreeMap::new();
    if let Some(d) = &a.design {
        let design = read_design(d)?;
        part = design_part(&design, a.part.as_deref(), d)?;
        (parallelism, storage, multipliers, fifo_depths) = (design.parallelism, design.storage, design.multipliers, design.fifo_depths);
    }
    if !(a.clock_ns > 0.0) {
        bail!("--clock-ns: expected a positive period, found {}", a.clock_ns);
    }
    let sized = fifo_depths.is_empty();
    let opts = Options { part, clock_ns: a.clock_ns, parallelism, default_parallelism, storage, multipliers, fifo_depths };
    let design = rfpga_hls::generate(&a.frozen, &a.out, &opts).with_context(|| format!("generating {}", a.out.display()))?;
    let deep: Vec<usize> = design.streams.iter().filter(|s| s.is_fifo() && s.depth > 2).map(|s| s.depth).collect();
    println!(
        "Wrote the Vitis HLS project {} (vitis_hls -f build.tcl); stream depths {}: {} of {} deeper than 2, the deepest {} (rfpga.json lists them)",
        a.out.display(),
        if sized { "sized by the dataflow model" } else { "from the design file" },
        deep.len(),
        design.streams.iter().filter(|s| s.is_fifo()).count(),
        deep.iter().max().unwrap_or(&2)
    );
    if a.vectors > 0 {
        let sim = Simulator::load(&a.frozen)?;
        let ds = load_test(&a.data_dir, Some(a.vectors))?;
        let (ev, _) = simulate(&sim, &ds);
        let dir = a.out.join("vectors");
        export_vectors(&sim, &ds, &ev, &dir)?;
        println!("Wrote {} test vectors to {} (simulated top-1 {:.2}%)", ev.labels.len(), dir.display(), ev.accuracy());
    }
    Ok(())
}

#[derive(Args)]
pub struct CsimArgs {
    /// Project folder (rfpga codegen --out).
    project: PathBuf,
    /// Test vectors (default: PROJECT/vectors).
    #[arg(long)]
    vectors: Option<PathBuf>,
    /// Simulate the first N images only.
    #[arg(long)]
    limit: Option<usize>,
    /// The ap_types headers (make setup-ap-types).
    #[arg(long, default_value = "third_party/ap_types")]
    ap_types: PathBuf,
    /// Run each dataflow process in its own thread, each stream blocking at its generated depth
    /// (Vitis's C simulation runs them one after another and cannot see a deadlock); a deadlock
    /// is reported with the processes and the streams they wait on.
    #[arg(long)]
    threads: bool,
}

pub fn csim(a: CsimArgs) -> Result<()> {
    let vectors = a.vectors.unwrap_or_else(|| a.project.join("vectors"));
    let r = rfpga_hls::csim_with(&a.project, &vectors, &a.ap_types, a.limit, a.threads, &BTreeMap::new())?;
    print!("{}", r.output);
    if r.failed > 0 {
        bail!("C simulation of {} differs from the simulator on {} of {} images", a.project.display(), r.failed, r.passed + r.failed);
    }
    Ok(())
}
