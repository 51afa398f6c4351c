//! rfpga-hls: a frozen model → a Vitis HLS project (askama templates in `templates/hls/`, the
//! hand-written layer library `hls/rfpga_layers.h`), and C simulation of that project with g++
//! against the real ap_types headers (`rfpga csim`). No libtorch.
//!
//! The generated top function is a DATAFLOW region with one process per layer and an
//! `hls::stream` of pixels between processes, described once by [`hw::Design`] (what each
//! layer kind instantiates, its schedule and its resources) and simulated cycle by cycle by
//! [`dataflow`]. Each layer kind maps to one template function of the layer library, which
//! computes in the order `rfpga_core::frozen` defines — the order the simulator follows — so C
//! simulation and `rfpga sim` agree bit for bit.

pub mod board;
pub mod dataflow;
pub mod hw;

use anyhow::{bail, ensure, Context, Result};
use askama::Template;
use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::{Analysis, FrozenModel, Layer, FROZEN_WEIGHTS};
use rfpga_core::io::write_atomic;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The hand-written layer library and the simulation-only stream header, embedded so a
/// generated project is complete wherever the binary runs.
/// One header per layer kind (named like its simulator kernel), plus what they share.
const LIBRARY: [(&str, &str); 7] = [
    ("rfpga_layers.h", include_str!("../../../hls/rfpga_layers.h")),
    ("rfpga_common.h", include_str!("../../../hls/rfpga_common.h")),
    ("rfpga_conv.h", include_str!("../../../hls/rfpga_conv.h")),
    ("rfpga_add.h", include_str!("../../../hls/rfpga_add.h")),
    ("rfpga_pad.h", include_str!("../../../hls/rfpga_pad.h")),
    ("rfpga_pool.h", include_str!("../../../hls/rfpga_pool.h")),
    ("rfpga_dense.h", include_str!("../../../hls/rfpga_dense.h")),
];
const SIM_STREAM_H: &str = include_str!("../../../hls/sim/hls_stream.h");
const SIM_AXI_H: &str = include_str!("../../../hls/sim/ap_axi_sdata.h");
const TESTBENCH_CPP: &str = include_str!("../../../testbench/testbench.cpp");

#[derive(Debug, Clone)]
pub struct Options {
    pub part: String,
    pub clock_ns: f64,
    /// PE by convolution name: output channels computed per cycle, and channels per word of
    /// its output stream (`default_parallelism` where absent).
    pub parallelism: BTreeMap<String, usize>,
    pub default_parallelism: usize,
    /// SIMD by convolution name: input channels consumed per cycle per PE (1 where absent).
    pub simd: BTreeMap<String, usize>,
    /// Where each convolution's weights live, by layer name; `Auto` (Vitis decides) elsewhere.
    pub storage: BTreeMap<String, Storage>,
    /// Where each convolution's multipliers go, by layer name; `Auto` elsewhere.
    pub multipliers: BTreeMap<String, Multipliers>,
    /// Stream depths by stream name (a design file's, sized by `rfpga dataflow --size-fifos`);
    /// when empty, `generate` sizes them itself.
    pub fifo_depths: BTreeMap<String, usize>,
    /// FIFO storage by stream name; by depth and width ([`hw::FifoImpl::of`]) elsewhere.
    pub fifo_storage: BTreeMap<String, hw::FifoImpl>,
}

impl Options {
    /// The PE of convolution `layer`.
    pub fn lanes(&self, layer: &str) -> usize {
        *self.parallelism.get(layer).unwrap_or(&self.default_parallelism)
    }

    /// The SIMD of convolution `layer`.
    pub fn simd_of(&self, layer: &str) -> usize {
        *self.simd.get(layer).unwrap_or(&1)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            part: "xc7z020clg400-1".into(),
            clock_ns: 10.0,
            parallelism: BTreeMap::new(),
            default_parallelism: 1,
            simd: BTreeMap::new(),
            storage: BTreeMap::new(),
            multipliers: BTreeMap::new(),
            fifo_depths: BTreeMap::new(),
            fifo_storage: BTreeMap::new(),
        }
    }
}

/// The memory a convolution's weight ROM is bound to (a BIND_STORAGE pragma in the generated
/// layer function that defines the ROM). Never UltraRAM: it has no initial contents (UG573, UG901), so a ROM there would
/// hold zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// No pragma: Vitis chooses (small arrays LUTRAM, larger BRAM).
    Auto,
    Bram,
    Lutram,
}

impl std::str::FromStr for Storage {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Storage::Auto),
            "bram" => Ok(Storage::Bram),
            "lutram" => Ok(Storage::Lutram),
            "uram" => bail!("weight storage `uram`: UltraRAM has no initial contents (UG573), so weights (ROMs) cannot live there; use auto, bram or lutram"),
            _ => bail!("weight storage: expected auto, bram or lutram, found `{s}`"),
        }
    }
}

impl Storage {
    pub fn pragma_impl(self) -> Option<&'static str> {
        match self {
            Storage::Auto => None,
            Storage::Bram => Some("bram"),
            Storage::Lutram => Some("lutram"),
        }
    }
}

/// Products of at most this many bits on both operands go to LUTs under `Multipliers::Auto`,
/// wider ones to DSP slices.
pub const LUT_MULT_MAX_BITS: u32 = 10;

/// Where a convolution's multipliers are implemented. The generated code always binds them
/// (`#pragma HLS BIND_OP op=mul impl=fabric|dsp`): left alone, Vitis fuses a narrow
/// multiply-add into a DSP48 on its own (UG1399, DSP multi-operation matching), and an estimate
/// could not know which it picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Multipliers {
    /// LUTs when both operands have at most `LUT_MULT_MAX_BITS` bits, else DSPs.
    Auto,
    /// LUTs (fabric), whatever the width.
    Fabric,
    /// DSP slices, whatever the width.
    Dsp,
}

impl std::str::FromStr for Multipliers {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Multipliers::Auto),
            "fabric" | "lut" => Ok(Multipliers::Fabric),
            "dsp" => Ok(Multipliers::Dsp),
            _ => bail!("multipliers: expected auto, fabric or dsp, found `{s}`"),
        }
    }
}

impl Multipliers {
    /// Whether an `a_bits × b_bits` product goes to a DSP slice.
    pub fn in_dsp(self, a_bits: u32, b_bits: u32) -> bool {
        match self {
            Multipliers::Auto => a_bits.max(b_bits) > LUT_MULT_MAX_BITS,
            Multipliers::Fabric => false,
            Multipliers::Dsp => true,
        }
    }
}

/// A C identifier for a layer name (`layer1.0.conv1` → `layer1_0_conv1`).
pub fn ident(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// The smallest C integer type holding every raw value of `f`.
pub(crate) fn raw_ctype(f: &FixedFormat) -> &'static str {
    match f.width + (!f.signed) as u32 {
        0..=8 => "int8_t",
        9..=16 => "int16_t",
        17..=32 => "int32_t",
        _ => "int64_t",
    }
}

fn literals(values: &[i64], ctype: &str) -> String {
    let suffix = if ctype == "int64_t" { "LL" } else { "" };
    let mut s = String::with_capacity(values.len() * 5);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push_str(if i % 32 == 0 { ",\n    " } else { ", " });
        }
        s.push_str(&v.to_string());
        s.push_str(suffix);
    }
    s
}

#[derive(Debug, Clone)]
pub struct TypeDef {
    pub name: String,
    pub cpp: String,
}

#[derive(Debug, Clone)]
pub struct ConvCfg {
    pub id: String,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
    pub relu: bool,
    /// Output channels per cycle (and per output word), input channels per cycle, input
    /// channels per input word, line-buffer banks, COUT/PE, K·K·CIN/SIMD.
    pub pe: usize,
    pub simd: usize,
    pub in_g: usize,
    pub banks: usize,
    pub groups: usize,
    pub steps: usize,
    pub storage: Storage,
    pub mul_in_dsp: bool,
    pub in_t: String,
    pub w_raw: &'static str,
    pub b_raw: &'static str,
}

#[derive(Debug, Clone)]
pub struct DenseCfg {
    pub id: String,
    pub mul_in_dsp: bool,
    pub inputs: usize,
    pub outputs: usize,
    pub in_t: String,
    pub w_raw: &'static str,
    pub b_raw: &'static str,
}

pub struct RawArray {
    pub name: String,
    pub ctype: &'static str,
    /// C array dimensions, e.g. `[16][144]`.
    pub dims: String,
    pub values: String,
    /// `#pragma HLS` lines for it (in the function that defines it, where they apply).
    pub pragmas: Vec<String>,
}

/// A generated layer function: the dataflow process of a layer with weights, its ROMs defined
/// inside it (so their storage and reshape pragmas bind them: UG1399), calling the library.
pub struct LayerFn {
    pub name: String,
    pub comment: String,
    pub args: String,
    pub arrays: Vec<RawArray>,
    pub call: String,
}


#[derive(Template)]
#[template(path = "hls/parameters.h", escape = "none")]
struct ParametersH<'a> {
    source: &'a str,
    types: &'a [TypeDef],
    convs: &'a [ConvCfg],
    denses: &'a [DenseCfg],
}

#[derive(Template)]
#[template(path = "hls/weights.h", escape = "none")]
struct WeightsH<'a> {
    functions: &'a [LayerFn],
}

#[derive(Template)]
#[template(path = "hls/rfpga_top.h", escape = "none")]
struct TopH<'a> {
    in_word: u32,
    out_word: u32,
    in_bits: u32,
    in_t: &'a str,
    out_t: &'a str,
    out_signed: bool,
    in_pixels: usize,
    in_channels: usize,
    classes: usize,
}

#[derive(Template)]
#[template(path = "hls/rfpga_top.cpp", escape = "none")]
struct TopCpp<'a> {
    streams: &'a [&'a hw::Stream],
    processes: &'a [hw::Process],
}

#[derive(Template)]
#[template(path = "hls/build.tcl", escape = "none")]
struct BuildTcl<'a> {
    part: &'a str,
    clock_ns: f64,
}

#[derive(Template)]
#[template(path = "hls/README.md", escape = "none")]
struct ProjectReadme<'a> {
    source: &'a str,
    model: &'a str,
    part: &'a str,
    clock_ns: f64,
    layers: usize,
    in_word: u32,
    out_word: u32,
    in_bits: u32,
    in_channels: usize,
    in_pixels: usize,
    in_format: String,
    out_format: String,
    classes: usize,
}

/// Writes a complete Vitis HLS project for the frozen model in `frozen` into `out`. Without
/// `opts.fifo_depths`, the streams get the depths [`dataflow::size_fifos`] finds.
pub fn generate(frozen: &Path, out: &Path, opts: &Options) -> Result<hw::Design> {
    rfpga_core::io::claim_output_dir(out, "codegen", &["rfpga.json"])?;
    let model = FrozenModel::load(frozen)?;
    let wpath = frozen.join(FROZEN_WEIGHTS);
    let weights = model.load_weights(&wpath)?;
    let a = model.analyze(&frozen.display().to_string())?;
    // The DSP kind only shapes the resource figures, which codegen does not use.
    let design = hw::Design::build_sized(&model, &a, opts, hw::DspKind::Dsp48E1, &frozen.display().to_string())?;

    let mut functions = Vec::new();
    for layer in &model.layers {
        let id = ident(layer.name());
        let weight = |name: &str| weights.get(name).expect("checked strictly");
        match layer {
            Layer::Conv(c) => {
                let cfg = design.convs.iter().find(|x| x.id == id).expect("every convolution configured");
                // Weights in the order the kernel reads them, one row per cycle:
                // row g·STEPS + step holds, at u·SIMD + s, the weight of output channel g·PE + u
                // for tap step·SIMD + s, taps in (ky, kx, ci) order.
                let src = weight(&format!("{}.weight", c.name));
                let (k, cin) = (c.kernel, c.in_ch);
                let (pe, simd) = (cfg.pe, cfg.simd);
                let mut t = Vec::with_capacity(src.len());
                for g in 0..cfg.groups {
                    for step in 0..cfg.steps {
                        for u in 0..pe {
                            for s in 0..simd {
                                let (co, tap) = (g * pe + u, step * simd + s);
                                let (ky, kx, ci) = (tap / (k * cin), (tap / cin) % k, tap % cin);
                                t.push(src[((co * cin + ci) * k + ky) * k + kx]);
                            }
                        }
                    }
                }
                let (wt, bt) = (raw_ctype(&c.weight), raw_ctype(&c.bias));
                let mut w_pragmas = vec!["ARRAY_RESHAPE variable = w type = complete dim = 2".to_string()];
                if let Some(imp) = cfg.storage.pragma_impl() {
                    w_pragmas.push(format!("BIND_STORAGE variable = w type = rom_1p impl = {imp}"));
                }
                let p = design.processes.iter().find(|p| p.name == c.name).expect("a process per layer");
                let (sin, sout) = (&design.streams[p.inputs[0]], &design.streams[p.outputs[0]]);
                functions.push(LayerFn {
                    name: format!("{id}_layer"),
                    comment: format!("{}: PE {pe} × SIMD {simd}; weights one word of {} bits per cycle", c.name, pe * simd * c.weight.width as usize),
                    args: format!("hls::stream<{} > &in, hls::stream<{} > &out", sin.ty, sout.ty),
                    arrays: vec![
                        RawArray { name: "w".into(), ctype: wt, dims: format!("[{}][{}]", cfg.groups * cfg.steps, pe * simd), values: literals(&t, wt), pragmas: w_pragmas },
                        RawArray {
                            name: "b".into(),
                            ctype: bt,
                            dims: format!("[{}][{pe}]", cfg.groups),
                            values: literals(weight(&format!("{}.bias", c.name)), bt),
                            pragmas: vec!["ARRAY_RESHAPE variable = b type = complete dim = 2".into()],
                        },
                    ],
                    call: format!("rfpga::conv2d<{id}_cfg>(in, out, w, b)"),
                });
            }
            Layer::Dense(d) => {
                let (wt, bt) = (raw_ctype(&d.weight), raw_ctype(&d.bias));
                let p = design.processes.iter().find(|p| p.name == d.name).expect("a process per layer");
                let (sin, sout) = (&design.streams[p.inputs[0]], &design.streams[p.outputs[0]]);
                let ws = weight(&format!("{}.weight", d.name));
                let bs = weight(&format!("{}.bias", d.name));
                functions.push(LayerFn {
                    name: format!("{id}_layer"),
                    comment: format!("{}: one multiply-accumulate per cycle", d.name),
                    args: format!("hls::stream<{} > &in, hls::stream<{} > &out", sin.ty, sout.ty),
                    arrays: vec![
                        RawArray { name: "w".into(), ctype: wt, dims: format!("[{}]", ws.len()), values: literals(ws, wt), pragmas: vec![] },
                        RawArray { name: "b".into(), ctype: bt, dims: format!("[{}]", bs.len()), values: literals(bs, bt), pragmas: vec![] },
                    ],
                    call: format!("rfpga::dense<{id}_cfg>(in, out, w, b)"),
                });
            }
            _ => {}
        }
    }

    // Recorded absolute, so the project can be used from any folder.
    let source = std::fs::canonicalize(frozen).with_context(|| format!("resolving {}", frozen.display()))?.display().to_string();
    let fw = out.join("firmware");
    let mut files: Vec<(PathBuf, String)> = LIBRARY.iter().map(|(name, text)| (fw.join(name), text.to_string())).collect();
    let fifos: Vec<&hw::Stream> = design.streams.iter().filter(|s| s.is_fifo()).collect();
    let top_h = TopH {
        in_word: design.in_word,
        out_word: design.out_word,
        in_bits: a.ports[0].format.width,
        in_t: &design.in_t,
        out_t: &design.out_t,
        out_signed: design.out_signed,
        in_pixels: design.in_pixels,
        in_channels: design.in_channels,
        classes: design.classes,
    };
    let readme = ProjectReadme {
        source: &source,
        model: &model.model.name(),
        part: &opts.part,
        clock_ns: opts.clock_ns,
        layers: model.layers.len(),
        in_word: design.in_word,
        out_word: design.out_word,
        in_bits: a.ports[0].format.width,
        in_channels: design.in_channels,
        in_pixels: design.in_pixels,
        in_format: a.ports[0].format.to_string(),
        out_format: a.ports[a.ports.len() - 1].format.to_string(),
        classes: design.classes,
    };
    files.extend([
        (fw.join("parameters.h"), ParametersH { source: &source, types: &design.types, convs: &design.convs, denses: &design.denses }.render()?),
        (fw.join("weights.h"), WeightsH { functions: &functions }.render()?),
        (fw.join("rfpga_top.h"), top_h.render()?),
        (fw.join("rfpga_top.cpp"), TopCpp { streams: &fifos, processes: &design.processes }.render()?),
        (out.join("csim").join("hls_stream.h"), SIM_STREAM_H.to_string()),
        (out.join("csim").join("ap_axi_sdata.h"), SIM_AXI_H.to_string()),
        (out.join("tb").join("testbench.cpp"), TESTBENCH_CPP.to_string()),
        (out.join("build.tcl"), BuildTcl { part: &opts.part, clock_ns: opts.clock_ns }.render()?),
        (out.join("README.md"), readme.render()?),
    ]);
    for (path, text) in files {
        write_atomic(&path, text.as_bytes())?;
    }
    let meta = serde_json::json!({
        "format": PROJECT_FORMAT, "version": PROJECT_VERSION,
        "frozen": source, "frozen_fingerprint": fingerprint(frozen)?, "part": opts.part, "clock_ns": opts.clock_ns,
        "parallelism": design.lanes,
        "simd": design.simd,
        "weight_storage": opts.storage,
        "fifo_storage": design.fifo_storage(),
        "multipliers": opts.multipliers,
        "fifo_depths": design.depths(),
    });
    write_atomic(&out.join("rfpga.json"), (serde_json::to_string_pretty(&meta)? + "\n").as_bytes())?;
    Ok(design)
}

/// The layers reading each port (port 0: the input; port i+1: layer i's output), in order.
pub fn readers(a: &Analysis) -> Vec<Vec<usize>> {
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); a.ports.len()];
    for (i, ins) in a.inputs.iter().enumerate() {
        for &p in ins {
            readers[p].push(i);
        }
    }
    readers
}

/// Rows of port `target` that must have arrived before row `r` of port `p` can be produced,
/// following the layers between them (a k×k convolution with stride s needs input rows up to
/// r·s + k/2; it emits an output row once they are in its line buffer). None when `target` is
/// not upstream of `p` on a streaming path.
pub fn rows_needed(m: &FrozenModel, a: &Analysis, p: usize, r: usize, target: usize) -> Option<usize> {
    if p == target {
        return Some(r);
    }
    if p == 0 {
        return None;
    }
    let ins = &a.inputs[p - 1];
    let h_in = a.ports[ins[0]].shape[0];
    let r_in = match &m.layers[p - 1] {
        Layer::Conv(c) => (r * c.stride + c.kernel / 2).min(h_in - 1),
        Layer::PadShortcut(l) => r * l.stride,
        Layer::Add(_) => r,
        Layer::AvgPool(_) | Layer::Dense(_) => return None,
    };
    ins.iter().filter_map(|&q| rows_needed(m, a, q, r_in, target)).max()
}

/// The skip FIFO of an `add` with inputs `ins`: which input waits for the other, and a depth
/// (in pixels) that holds everything it receives while the other branch fills its line
/// buffers — from the split both branches start at, the rows the slower branch needs before
/// its first output, scaled by the faster branch's stride — plus one row of slack, since a
/// convolution emits its rows in bursts.
pub fn skip_fifo(m: &FrozenModel, a: &Analysis, readers: &[Vec<usize>], ins: &[usize]) -> Option<(usize, usize)> {
    let split = (0..ins[0].min(ins[1]) + 1)
        .rev()
        .find(|&t| readers[t].len() == 2 && ins.iter().all(|&q| rows_needed(m, a, q, 0, t).is_some()))?;
    let need: Vec<usize> = ins.iter().map(|&q| rows_needed(m, a, q, 0, split).expect("checked")).collect();
    let (fast, slow) = if need[0] <= need[1] { (0, 1) } else { (1, 0) };
    let q = ins[fast];
    let ratio = (a.ports[split].shape[0] / a.ports[q].shape[0]).max(1);
    let width = a.ports[q].shape[1];
    Some((q, ((need[slow] + 1).div_ceil(ratio) + 1) * width))
}

/// FNV-1a (64-bit) of a frozen model's two files: whether a project still matches the frozen
/// model it was generated from.
pub fn fingerprint(frozen: &Path) -> Result<String> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for name in [rfpga_core::frozen::FROZEN_JSON, FROZEN_WEIGHTS] {
        let path = frozen.join(name);
        for b in std::fs::read(&path).with_context(|| format!("reading {}", path.display()))? {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    Ok(format!("{h:016x}"))
}

/// A generated project's `rfpga.json`: the frozen model, part, clock and parallelism it was
/// generated with. Fails when the frozen model changed since.
#[derive(Debug, Clone)]
pub struct ProjectInfo {
    pub frozen: PathBuf,
    pub part: String,
    pub clock_ns: f64,
    pub parallelism: BTreeMap<String, usize>,
    pub simd: BTreeMap<String, usize>,
    pub storage: BTreeMap<String, Storage>,
    pub multipliers: BTreeMap<String, Multipliers>,
    /// Stream depths as generated.
    pub fifo_depths: BTreeMap<String, usize>,
    pub fifo_storage: BTreeMap<String, hw::FifoImpl>,
}

/// The `format` and `version` of a project's rfpga.json (version 1 had no sized stream depths;
/// version 2 streamed whole pixels, before PE × SIMD folding; version 3 ended a transfer after
/// every image, with output words as wide as a logit).
pub const PROJECT_FORMAT: &str = "rfpga-hls-project";
pub const PROJECT_VERSION: u64 = 4;

pub fn project_info(project: &Path) -> Result<ProjectInfo> {
    rfpga_core::io::expect_folder(project, rfpga_core::io::FolderKind::Project)?;
    let path = project.join("rfpga.json");
    let v: serde_json::Value = rfpga_core::io::read_json(&path)?;
    if v.get("format").and_then(|f| f.as_str()) == Some(PROJECT_FORMAT) {
        match v.get("version").and_then(|x| x.as_u64()) {
            Some(old @ (1 | 2)) => bail!("{}: field `version`: expected {PROJECT_VERSION}, found {old} (a project from an older rfpga, whose layer library streamed whole pixels); run rfpga codegen again", path.display()),
            Some(3) => bail!("{}: field `version`: expected {PROJECT_VERSION}, found 3 (a project from an older rfpga, whose core ended a transfer after every image); run rfpga codegen again", path.display()),
            _ => {}
        }
    }
    rfpga_core::io::check_header(&path, &v, PROJECT_FORMAT, PROJECT_VERSION)?;
    let field = |k: &str| v.get(k).with_context(|| format!("{}: field `{k}` is missing", path.display()));
    let text = |k: &str| -> Result<String> { field(k)?.as_str().map(str::to_string).with_context(|| format!("{}: field `{k}`: expected a string", path.display())) };
    let frozen = PathBuf::from(text("frozen")?);
    let recorded = text("frozen_fingerprint")?;
    let now = fingerprint(&frozen).with_context(|| format!("{}: the frozen model it was generated from", path.display()))?;
    if now != recorded {
        bail!("{}: generated from a frozen model that has changed since (fingerprint {recorded}, now {now} in {}); run rfpga codegen again", path.display(), frozen.display());
    }
    let clock_ns = field("clock_ns")?.as_f64().with_context(|| format!("{}: field `clock_ns`: expected a number", path.display()))?;
    let parallelism = serde_json::from_value(field("parallelism")?.clone()).with_context(|| format!("{}: field `parallelism`", path.display()))?;
    let storage = match v.get("weight_storage") {
        Some(x) => serde_json::from_value(x.clone()).with_context(|| format!("{}: field `weight_storage`", path.display()))?,
        None => BTreeMap::new(),
    };
    let multipliers = match v.get("multipliers") {
        Some(x) => serde_json::from_value(x.clone()).with_context(|| format!("{}: field `multipliers`", path.display()))?,
        None => BTreeMap::new(),
    };
    let simd = serde_json::from_value(field("simd")?.clone()).with_context(|| format!("{}: field `simd`", path.display()))?;
    let fifo_storage = serde_json::from_value(field("fifo_storage")?.clone()).with_context(|| format!("{}: field `fifo_storage`", path.display()))?;
    let fifo_depths = match v.get("fifo_depths") {
        Some(x) => serde_json::from_value(x.clone()).with_context(|| format!("{}: field `fifo_depths`", path.display()))?,
        None => bail!("{}: no field `fifo_depths` (a project from an older rfpga, before its streams were sized); run rfpga codegen again", path.display()),
    };
    Ok(ProjectInfo { frozen, part: text("part")?, clock_ns, parallelism, simd, storage, multipliers, fifo_depths, fifo_storage })
}

/// What `rfpga csim` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsimResult {
    pub passed: usize,
    pub failed: usize,
    pub output: String,
}

/// What a C simulation found besides the logits: a deadlock of the threaded simulation, with
/// its report (each blocked process and the stream it waits on).
#[derive(Debug)]
pub struct Deadlock(pub String);

impl std::fmt::Display for Deadlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for Deadlock {}

/// Builds `project` with g++ -O2 against the ap_types headers in `ap_types` (the sources Vitis
/// would compile, plus the simulation `hls_stream.h` and `ap_axi_sdata.h`), then runs its
/// testbench on `vectors` (`rfpga sim --export-vectors`), at most `limit` images. `threaded`:
/// each dataflow process in its own thread and each stream blocking at its generated depth
/// (`depths` overrides some, by stream name); a deadlock is an error of type [`Deadlock`].
pub fn csim(project: &Path, vectors: &Path, ap_types: &Path, limit: Option<usize>) -> Result<CsimResult> {
    csim_with(project, vectors, ap_types, limit, false, &BTreeMap::new())
}

/// [`csim`], threaded or not, with stream depth overrides for the threaded simulation.
pub fn csim_with(project: &Path, vectors: &Path, ap_types: &Path, limit: Option<usize>, threaded: bool, depths: &BTreeMap<String, usize>) -> Result<CsimResult> {
    csim_framed(project, vectors, ap_types, limit, threaded, Framing::default(), depths)
}

/// How the testbench groups images into AXI-stream transfers (TLAST on the last word of each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Framing {
    /// Images per transfer; None: all of them in one.
    pub batch: Option<usize>,
    /// The first transfer's last image sent cut short, this many words and TLAST (an aborted
    /// transfer): its logits must be the partial-image marker, every later image exact.
    pub truncate: Option<usize>,
}

/// [`csim_with`] with the images sent in transfers as `framing` says.
pub fn csim_framed(
    project: &Path,
    vectors: &Path,
    ap_types: &Path,
    limit: Option<usize>,
    threaded: bool,
    framing: Framing,
    depths: &BTreeMap<String, usize>,
) -> Result<CsimResult> {
    // Every input first: a wrong folder is said before a minute of g++.
    check_csim_inputs(project, ap_types)?;
    let meta = vectors.join("vectors.json");
    ensure!(meta.exists(), "{}: no vectors.json (write it with `rfpga sim FROZEN --export-vectors DIR`)", vectors.display());
    rfpga_core::io::read_json_with_header(&meta, rfpga_core::frozen::VECTORS_FORMAT, rfpga_core::frozen::VECTORS_VERSION)?;
    if let Some(b) = framing.batch {
        ensure!(b >= 1, "--batch: expected at least 1 image per transfer");
    }
    if let Some(t) = framing.truncate {
        let info = project_info(project)?;
        let model = FrozenModel::load(&info.frozen)?;
        let pixels = model.input.shape[0] * model.input.shape[1];
        ensure!(t >= 1 && t < pixels, "--truncate {t}: expected 1 to {} words (fewer than an image's {pixels})", pixels - 1);
    }
    let exe = build_csim(project, ap_types, threaded)?;
    run_csim_framed(&exe, vectors, limit, framing, depths)
}

/// The project and the headers a C simulation compiles against are there.
fn check_csim_inputs(project: &Path, ap_types: &Path) -> Result<()> {
    rfpga_core::io::expect_folder(project, rfpga_core::io::FolderKind::Project)?;
    ensure!(ap_types.join("ap_fixed.h").exists(), "{}: no ap_fixed.h (run `make setup-ap-types` in the rfpga checkout, or point --ap-types or RFPGA_AP_TYPES at the headers)", ap_types.display());
    ensure!(project.join("firmware/rfpga_top.cpp").exists(), "{}: not a generated project (no firmware/rfpga_top.cpp)", project.display());
    Ok(())
}

/// Compiles the C simulation of `project` (once per mode; reused while its sources are older).
pub fn build_csim(project: &Path, ap_types: &Path, threaded: bool) -> Result<PathBuf> {
    check_csim_inputs(project, ap_types)?;
    let exe = project.join("csim").join(if threaded { "rfpga_csim_threaded" } else { "rfpga_csim" });
    let sources = ["firmware/rfpga_top.cpp", "firmware/weights.h", "firmware/parameters.h", "tb/testbench.cpp", "csim/hls_stream.h"];
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let Some(built) = modified(&exe) {
        if sources.iter().all(|f| modified(&project.join(f)).is_some_and(|m| m < built)) {
            return Ok(exe);
        }
    }
    let partial = exe.with_extension("partial");
    let mut cmd = Command::new("g++");
    // -Wno-(maybe-)uninitialized: false positives inside the headers, inlined into our code.
    cmd.args(["-O2", "-std=c++14", "-Wall", "-Wno-unknown-pragmas", "-Wno-maybe-uninitialized", "-Wno-uninitialized"]);
    if threaded {
        cmd.args(["-DRFPGA_THREADED_CSIM", "-pthread"]);
    }
    let status = cmd
        .arg("-I")
        .arg(project.join("csim"))
        .arg("-I")
        .arg(project.join("firmware"))
        // The vendor headers' own warnings are not ours to fix.
        .arg("-isystem")
        .arg(ap_types)
        .arg(project.join("tb/testbench.cpp"))
        .arg(project.join("firmware/rfpga_top.cpp"))
        .arg("-o")
        .arg(&partial)
        .status()
        .context("running g++")?;
    ensure!(status.success(), "g++ failed on {}", project.display());
    // Renamed only when complete: a link killed midway must not leave an executable newer
    // than its sources, which the check above would reuse.
    std::fs::rename(&partial, &exe).with_context(|| format!("renaming {} to {}", partial.display(), exe.display()))?;
    Ok(exe)
}

/// Runs a compiled C simulation on `vectors`; `depths` overrides stream depths by name (threaded only).
pub fn run_csim(exe: &Path, vectors: &Path, limit: Option<usize>, depths: &BTreeMap<String, usize>) -> Result<CsimResult> {
    run_csim_framed(exe, vectors, limit, Framing::default(), depths)
}

/// [`run_csim`] with the images sent in transfers as `framing` says.
pub fn run_csim_framed(exe: &Path, vectors: &Path, limit: Option<usize>, framing: Framing, depths: &BTreeMap<String, usize>) -> Result<CsimResult> {
    let mut cmd = Command::new(exe);
    cmd.arg(vectors);
    if let Some(n) = limit {
        cmd.arg(n.to_string());
    }
    if let Some(b) = framing.batch {
        cmd.args(["--batch".to_string(), b.to_string()]);
    }
    if let Some(t) = framing.truncate {
        cmd.args(["--truncate".to_string(), t.to_string()]);
    }
    if !depths.is_empty() {
        cmd.env("RFPGA_CSIM_DEPTHS", depths.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","));
    }
    let out = cmd.output().with_context(|| format!("running {}", exe.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        let report: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("deadlock")).collect();
        return Err(Deadlock(report.join("\n")).into());
    }
    let summary = text.lines().rev().find_map(|l| {
        let mut w = l.split_whitespace();
        let p = w.next()?.parse().ok()?;
        (w.next()? == "passed,").then_some(())?;
        let f = w.next()?.parse().ok()?;
        Some((p, f))
    });
    let Some((passed, failed)) = summary else { bail!("the testbench printed no `N passed, M failed` line:\n{text}") };
    Ok(CsimResult { passed, failed, output: text })
}
