//! `rfpga codegen` and `rfpga csim`: the Vitis HLS project and its C simulation with g++.

use anyhow::{bail, Context, Result};
use clap::Args;
use rfpga_hls::Options;
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
    /// FPGA part for build.tcl.
    #[arg(long, default_value = "xc7z020clg400-1")]
    part: String,
    /// Clock period for build.tcl.
    #[arg(long, default_value_t = 10.0)]
    clock_ns: f64,
    /// Output channels each convolution computes in parallel: N for all, or LAYER=N,… for some
    /// (e.g. `4` or `conv1=2,layer3.0.conv1=8`).
    #[arg(long, default_value = "1")]
    parallelism: String,
    /// Test images whose inputs and expected logits (from the simulator) go into PROJECT/vectors.
    #[arg(long, default_value_t = 100)]
    vectors: usize,
    #[arg(long, default_value = rfpga_data::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// `N`, `LAYER=N,…`, or `@FILE` holding either (as `rfpga fit --out` writes it).
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

pub fn codegen(a: CodegenArgs) -> Result<()> {
    let (default_parallelism, parallelism) = parse_parallelism(&a.parallelism)?;
    if !(a.clock_ns > 0.0) {
        bail!("--clock-ns: expected a positive period, found {}", a.clock_ns);
    }
    let opts = Options { part: a.part, clock_ns: a.clock_ns, parallelism, default_parallelism };
    rfpga_hls::generate(&a.frozen, &a.out, &opts).with_context(|| format!("generating {}", a.out.display()))?;
    println!("Wrote the Vitis HLS project {} (vitis_hls -f build.tcl)", a.out.display());
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
}

pub fn csim(a: CsimArgs) -> Result<()> {
    let vectors = a.vectors.unwrap_or_else(|| a.project.join("vectors"));
    let r = rfpga_hls::csim(&a.project, &vectors, &a.ap_types, a.limit)?;
    print!("{}", r.output);
    if r.failed > 0 {
        bail!("C simulation of {} differs from the simulator on {} of {} images", a.project.display(), r.failed, r.passed + r.failed);
    }
    Ok(())
}
