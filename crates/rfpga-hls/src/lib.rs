//! rfpga-hls: a frozen model → a Vitis HLS project (askama templates in `templates/hls/`, the
//! hand-written layer library `hls/rfpga_layers.h`), and C simulation of that project with g++
//! against the real ap_types headers (`rfpga csim`). No libtorch.
//!
//! The generated top function is a DATAFLOW region with one stage per layer and an
//! `hls::stream` of pixels between stages. Each layer kind maps to one template function of the
//! layer library, which computes in the order `rfpga_core::frozen` defines — the order the
//! simulator follows — so C simulation and `rfpga sim` agree bit for bit.

use anyhow::{bail, ensure, Context, Result};
use askama::Template;
use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::{Analysis, FrozenModel, Layer, Port, FROZEN_WEIGHTS};
use rfpga_core::io::write_atomic;
use rfpga_core::IntTensorFile;
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
const TESTBENCH_CPP: &str = include_str!("../../../testbench/testbench.cpp");

#[derive(Debug, Clone)]
pub struct Options {
    pub part: String,
    pub clock_ns: f64,
    /// Multiply-accumulate lanes of each convolution, by layer name; `default_parallelism`
    /// elsewhere.
    pub parallelism: BTreeMap<String, usize>,
    pub default_parallelism: usize,
    /// Where each convolution's weights live, by layer name; `Auto` (Vitis decides) elsewhere.
    pub storage: BTreeMap<String, Storage>,
    /// Where each convolution's multipliers go, by layer name; `Auto` elsewhere.
    pub multipliers: BTreeMap<String, Multipliers>,
}

impl Options {
    /// The lanes of convolution `layer`.
    pub fn lanes(&self, layer: &str) -> usize {
        *self.parallelism.get(layer).unwrap_or(&self.default_parallelism)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            part: "xc7z020clg400-1".into(),
            clock_ns: 10.0,
            parallelism: BTreeMap::new(),
            default_parallelism: 1,
            storage: BTreeMap::new(),
            multipliers: BTreeMap::new(),
        }
    }
}

/// The memory a convolution's weight ROM is bound to (`#pragma HLS BIND_STORAGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// No pragma: Vitis chooses (small arrays LUTRAM, larger BRAM).
    Auto,
    Bram,
    Lutram,
    Uram,
}

impl std::str::FromStr for Storage {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Storage::Auto),
            "bram" => Ok(Storage::Bram),
            "lutram" => Ok(Storage::Lutram),
            "uram" => Ok(Storage::Uram),
            _ => bail!("weight storage: expected auto, bram, lutram or uram, found `{s}`"),
        }
    }
}

impl Storage {
    fn pragma_impl(self) -> Option<&'static str> {
        match self {
            Storage::Auto => None,
            Storage::Bram => Some("bram"),
            Storage::Lutram => Some("lutram"),
            Storage::Uram => Some("uram"),
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
fn ident(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// The smallest C integer type holding every raw value of `f`.
fn raw_ctype(f: &FixedFormat) -> &'static str {
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

pub struct TypeDef {
    pub name: String,
    pub cpp: String,
}

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
    pub unroll: usize,
    pub ii: usize,
    pub mul_in_dsp: bool,
    pub in_t: String,
    pub w_raw: &'static str,
    pub b_raw: &'static str,
}

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
}

pub struct StreamDecl {
    pub name: String,
    pub ty: String,
    pub depth: usize,
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
    arrays: &'a [RawArray],
}

#[derive(Template)]
#[template(path = "hls/rfpga_top.h", escape = "none")]
struct TopH<'a> {
    input_px: &'a str,
    output_px: &'a str,
}

#[derive(Template)]
#[template(path = "hls/rfpga_top.cpp", escape = "none")]
struct TopCpp<'a> {
    streams: &'a [StreamDecl],
    calls: &'a [String],
    /// (array, impl) of `#pragma HLS BIND_STORAGE`.
    bindings: &'a [(String, &'static str)],
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
}

/// Writes a complete Vitis HLS project for the frozen model in `frozen` into `out`.
pub fn generate(frozen: &Path, out: &Path, opts: &Options) -> Result<()> {
    let model = FrozenModel::load(frozen)?;
    let wpath = frozen.join(FROZEN_WEIGHTS);
    let weights = IntTensorFile::load_strict(&wpath, &model.tensors())?;
    let a = model.analyze(&frozen.display().to_string())?;
    for (option, names) in [
        ("--parallelism", opts.parallelism.keys().collect::<Vec<_>>()),
        ("--weight-storage", opts.storage.keys().collect()),
        ("--multipliers", opts.multipliers.keys().collect()),
    ] {
        for name in names {
            if !model.layers.iter().any(|l| matches!(l, Layer::Conv(c) if &c.name == name)) {
                bail!("{option}: `{name}` is not a convolution of {}", frozen.display());
            }
        }
    }
    ensure!(opts.default_parallelism >= 1, "--parallelism: expected ≥ 1");

    // What the templates cannot express, refused up front with the layer named.
    let mut ids = std::collections::HashMap::new();
    for (i, l) in model.layers.iter().enumerate() {
        if let Some(other) = ids.insert(ident(l.name()), l.name()) {
            bail!("{}: layers `{other}` and `{}` have the same C name `{}`", frozen.display(), l.name(), ident(l.name()));
        }
        let ins = &a.inputs[i];
        match l {
            Layer::Add(_) if ins[0] == ins[1] => bail!("{}: `{}` adds a value to itself; the HLS library needs two streams", frozen.display(), l.name()),
            Layer::Dense(_) if a.ports[ins[0]].shape[0] * a.ports[ins[0]].shape[1] != 1 => {
                bail!("{}: `{}` reads a {:?} feature map; dense layers read one pixel (after pooling)", frozen.display(), l.name(), a.ports[ins[0]].shape)
            }
            _ => {}
        }
        // A conversion the C-sim headers would abort on (see FixedFormat::assignment_asserts_in_cpp).
        let conversions: Vec<(FixedFormat, FixedFormat)> = match l {
            Layer::Conv(c) => vec![(c.bias, c.accum), (c.accum, c.output)],
            Layer::Dense(d) => vec![(d.bias, d.accum), (d.accum, d.output)],
            Layer::Add(s) => vec![(a.ports[ins[0]].format, s.sum), (s.sum, s.output)],
            Layer::AvgPool(p) => {
                let n = a.ports[ins[0]].shape[0] * a.ports[ins[0]].shape[1];
                vec![(FixedFormat { int: p.sum.int - n.trailing_zeros() as i32, ..p.sum }, p.output)]
            }
            Layer::PadShortcut(_) => vec![],
        };
        if let Some((src, dst)) = conversions.iter().find(|(src, dst)| dst.assignment_asserts_in_cpp(src)) {
            bail!(
                "{}: `{}` converts {src} to {dst}, which drops more fraction bits than the source has while rounding; the ap_fixed headers assert on it in C simulation. Choose formats closer together.",
                frozen.display(),
                l.name()
            );
        }
    }

    // Port 0 is the input, port i+1 layer i's output.
    let port_id = |p: usize| if p == 0 { "input".to_string() } else { ident(model.layers[p - 1].name()) };
    let mut types = Vec::new();
    let mut ty = |name: String, f: &FixedFormat| {
        types.push(TypeDef { name: name.clone(), cpp: f.to_string() });
        name
    };
    let mut port_t = Vec::new();
    for (p, port) in a.ports.iter().enumerate() {
        port_t.push(ty(format!("{}_t", port_id(p)), &port.format));
    }
    let px = |p: usize| format!("rfpga::pixel<{}, {}>", port_t[p], a.ports[p].shape[2]);

    // Who reads each port, in layer order; two readers → a split into two streams.
    let readers = readers(&a);
    let mut streams = Vec::new();
    let mut calls = Vec::new();
    // The stream layer `i` reads port `p` from.
    let mut stream_of: BTreeMap<(usize, usize), String> = BTreeMap::new();
    let last = a.ports.len() - 1;
    let stream_name = |p: usize| if p == 0 { "in".to_string() } else if p == last { "out".to_string() } else { format!("s_{}", port_id(p)) };
    for (p, rs) in readers.iter().enumerate() {
        match rs.len() {
            0 if p == last => {}
            0 => bail!("{}: the output of `{}` is never used", frozen.display(), port_id(p)),
            1 => {
                stream_of.insert((rs[0], p), stream_name(p));
            }
            2 => {
                let pixels = a.ports[p].shape[0] * a.ports[p].shape[1];
                let (sa, sb) = (format!("{}_a", stream_name(p)), format!("{}_b", stream_name(p)));
                calls.push(((p, 1), format!("rfpga::split<{}, {pixels}>({}, {sa}, {sb});", px(p), stream_name(p))));
                for (s, &r) in [&sa, &sb].into_iter().zip(rs) {
                    streams.push(StreamDecl { name: s.clone(), ty: px(p), depth: 0 });
                    stream_of.insert((r, p), s.clone());
                }
            }
            n => bail!("{}: `{}` feeds {n} layers; at most 2 are supported", frozen.display(), port_id(p)),
        }
        if p != 0 && p != last {
            streams.push(StreamDecl { name: stream_name(p), ty: px(p), depth: 0 });
        }
    }

    let mut convs = Vec::new();
    let mut denses = Vec::new();
    let mut bindings = Vec::new();
    let mut arrays = Vec::new();
    let raw = |name: &str, f: &FixedFormat, id: String| -> RawArray {
        let values = weights.get(name).expect("checked strictly");
        let ctype = raw_ctype(f);
        RawArray { name: id, ctype, dims: format!("[{}]", values.len()), values: literals(values, ctype) }
    };
    for (i, layer) in model.layers.iter().enumerate() {
        let id = ident(layer.name());
        let p_out = i + 1;
        let ins: Vec<usize> = a.inputs[i].clone();
        let input = |k: usize| stream_of[&(i, ins[k])].clone();
        let output = stream_name(p_out);
        let in_port: &Port = &a.ports[ins[0]];
        let call = match layer {
            Layer::Conv(c) => {
                ty(format!("{id}_weight_t"), &c.weight);
                ty(format!("{id}_bias_t"), &c.bias);
                ty(format!("{id}_accum_t"), &c.accum);
                let product = in_port.format.try_product(&c.weight).map_err(|e| anyhow::anyhow!("{}: `{}`: the product type: {e}", frozen.display(), c.name))?;
                ty(format!("{id}_product_t"), &product);
                let [h, w, cin] = in_port.shape;
                let [oh, ow, _] = a.ports[p_out].shape;
                let unroll = opts.lanes(&c.name);
                if c.out_ch % unroll != 0 {
                    bail!("--parallelism {unroll} for `{}`: must divide its {} output channels", c.name, c.out_ch);
                }
                convs.push(ConvCfg {
                    id: id.clone(),
                    h,
                    w,
                    cin,
                    cout: c.out_ch,
                    k: c.kernel,
                    stride: c.stride,
                    pad: c.kernel / 2,
                    oh,
                    ow,
                    relu: c.relu,
                    unroll,
                    ii: c.out_ch / unroll,
                    mul_in_dsp: opts.multipliers.get(&c.name).copied().unwrap_or(Multipliers::Auto).in_dsp(in_port.format.width, c.weight.width),
                    in_t: port_t[ins[0]].clone(),
                    w_raw: raw_ctype(&c.weight),
                    b_raw: raw_ctype(&c.bias),
                });
                // Weights in the order the kernel reads them: [co][ky][kx][ci].
                let src = weights.get(&format!("{}.weight", c.name)).expect("checked strictly");
                let (k, co_n) = (c.kernel, c.out_ch);
                let mut t = vec![0i64; src.len()];
                for co in 0..co_n {
                    for ci in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                t[((co * k + ky) * k + kx) * cin + ci] = src[((co * cin + ci) * k + ky) * k + kx];
                            }
                        }
                    }
                }
                let ctype = raw_ctype(&c.weight);
                let dims = format!("[{co_n}][{}]", k * k * cin);
                if let Some(imp) = opts.storage.get(&c.name).and_then(|s| s.pragma_impl()) {
                    bindings.push((format!("w_{id}"), imp));
                }
                arrays.push(RawArray { name: format!("w_{id}"), ctype, dims, values: literals(&t, ctype) });
                arrays.push(raw(&format!("{}.bias", c.name), &c.bias, format!("b_{id}")));
                format!("rfpga::conv2d<{id}_cfg>({}, {output}, w_{id}, b_{id});", input(0))
            }
            Layer::Add(l) => {
                let sum = ty(format!("{id}_sum_t"), &l.sum);
                let [h, w, c] = in_port.shape;
                // The input that arrives first waits in its stream for the other branch.
                if let Some((q, depth)) = skip_fifo(&model, &a, &readers, &ins) {
                    let name = &stream_of[&(i, q)];
                    if let Some(s) = streams.iter_mut().find(|s| &s.name == name) {
                        s.depth = depth;
                    }
                }
                format!(
                    "rfpga::add<{}, {c}, {}, {}, {}, {sum}, {}>({}, {}, {output});",
                    h * w,
                    l.relu,
                    port_t[ins[0]],
                    port_t[ins[1]],
                    port_t[p_out],
                    input(0),
                    input(1)
                )
            }
            Layer::PadShortcut(l) => {
                let [h, w, c] = in_port.shape;
                format!("rfpga::pad_shortcut<{h}, {w}, {c}, {}, {}, {}>({}, {output});", l.out_ch, l.stride, port_t[ins[0]], input(0))
            }
            Layer::AvgPool(l) => {
                let [h, w, c] = in_port.shape;
                let n = h * w;
                let sum = ty(format!("{id}_sum_t"), &l.sum);
                let mean = ty(format!("{id}_mean_t"), &FixedFormat { int: l.sum.int - n.trailing_zeros() as i32, ..l.sum });
                format!("rfpga::avg_pool<{n}, {c}, {}, {sum}, {mean}, {}>({}, {output});", port_t[ins[0]], port_t[p_out], input(0))
            }
            Layer::Dense(d) => {
                ty(format!("{id}_weight_t"), &d.weight);
                ty(format!("{id}_bias_t"), &d.bias);
                ty(format!("{id}_accum_t"), &d.accum);
                let product = in_port.format.try_product(&d.weight).map_err(|e| anyhow::anyhow!("{}: `{}`: the product type: {e}", frozen.display(), d.name))?;
                ty(format!("{id}_product_t"), &product);
                denses.push(DenseCfg {
                    id: id.clone(),
                    // The dense layer's one multiplier follows the default rule.
                    mul_in_dsp: Multipliers::Auto.in_dsp(in_port.format.width, d.weight.width),
                    inputs: d.in_features,
                    outputs: d.out_features,
                    in_t: port_t[ins[0]].clone(),
                    w_raw: raw_ctype(&d.weight),
                    b_raw: raw_ctype(&d.bias),
                });
                arrays.push(raw(&format!("{}.weight", d.name), &d.weight, format!("w_{id}")));
                arrays.push(raw(&format!("{}.bias", d.name), &d.bias, format!("b_{id}")));
                format!("rfpga::dense<{id}_cfg>({}, {output}, w_{id}, b_{id});", input(0))
            }
        };
        calls.push(((p_out, 0), call));
    }
    // A split runs right after the layer producing its port.
    calls.sort_by_key(|(p, _)| *p);
    let calls: Vec<String> = calls.into_iter().map(|(_, c)| c).collect();

    // Recorded absolute, so the project can be used from any folder.
    let source = std::fs::canonicalize(frozen).with_context(|| format!("resolving {}", frozen.display()))?.display().to_string();
    let fw = out.join("firmware");
    let mut files: Vec<(PathBuf, String)> = LIBRARY.iter().map(|(name, text)| (fw.join(name), text.to_string())).collect();
    files.extend([
        (fw.join("parameters.h"), ParametersH { source: &source, types: &types, convs: &convs, denses: &denses }.render()?),
        (fw.join("weights.h"), WeightsH { arrays: &arrays }.render()?),
        (fw.join("rfpga_top.h"), TopH { input_px: &px(0), output_px: &px(last) }.render()?),
        (fw.join("rfpga_top.cpp"), TopCpp { streams: &streams, calls: &calls, bindings: &bindings }.render()?),
        (out.join("csim").join("hls_stream.h"), SIM_STREAM_H.to_string()),
        (out.join("tb").join("testbench.cpp"), TESTBENCH_CPP.to_string()),
        (out.join("build.tcl"), BuildTcl { part: &opts.part, clock_ns: opts.clock_ns }.render()?),
        (
            out.join("README.md"),
            ProjectReadme { source: &source, model: &model.model.name(), part: &opts.part, clock_ns: opts.clock_ns, layers: model.layers.len() }.render()?,
        ),
    ]);
    for (path, text) in files {
        write_atomic(&path, text.as_bytes())?;
    }
    let meta = serde_json::json!({
        "format": "rfpga-hls-project", "version": 1,
        "frozen": source, "frozen_fingerprint": fingerprint(frozen)?, "part": opts.part, "clock_ns": opts.clock_ns,
        "parallelism": model.layers.iter().filter(|l| l.kind() == "conv").map(|l| (l.name(), opts.lanes(l.name()))).collect::<BTreeMap<_, _>>(),
        "weight_storage": opts.storage,
        "multipliers": opts.multipliers,
    });
    write_atomic(&out.join("rfpga.json"), (serde_json::to_string_pretty(&meta)? + "\n").as_bytes())?;
    Ok(())
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
    pub storage: BTreeMap<String, Storage>,
    pub multipliers: BTreeMap<String, Multipliers>,
}

pub fn project_info(project: &Path) -> Result<ProjectInfo> {
    let path = project.join("rfpga.json");
    let v: serde_json::Value = rfpga_core::io::read_json(&path)?;
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
    Ok(ProjectInfo { frozen, part: text("part")?, clock_ns, parallelism, storage, multipliers })
}

/// What `rfpga csim` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsimResult {
    pub passed: usize,
    pub failed: usize,
    pub output: String,
}

/// Builds `project` with g++ -O2 against the ap_types headers in `ap_types` (the sources Vitis
/// would compile, plus the simulation `hls_stream.h`), then runs its testbench on `vectors`
/// (`rfpga sim --export-vectors`), at most `limit` images.
pub fn csim(project: &Path, vectors: &Path, ap_types: &Path, limit: Option<usize>) -> Result<CsimResult> {
    ensure!(ap_types.join("ap_fixed.h").exists(), "{}: no ap_fixed.h (run `make setup-ap-types`)", ap_types.display());
    ensure!(project.join("firmware/rfpga_top.cpp").exists(), "{}: not a generated project (no firmware/rfpga_top.cpp)", project.display());
    ensure!(vectors.join("vectors.json").exists(), "{}: no vectors.json (write it with `rfpga sim FROZEN --export-vectors DIR`)", vectors.display());
    let exe = project.join("csim").join("rfpga_csim");
    let status = Command::new("g++")
        // -Wno-(maybe-)uninitialized: false positives inside the headers, inlined into our code.
        .args(["-O2", "-std=c++14", "-Wall", "-Wno-unknown-pragmas", "-Wno-maybe-uninitialized", "-Wno-uninitialized"])
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
        .arg(&exe)
        .status()
        .context("running g++")?;
    ensure!(status.success(), "g++ failed on {}", project.display());
    let mut cmd = Command::new(&exe);
    cmd.arg(vectors);
    if let Some(n) = limit {
        cmd.arg(n.to_string());
    }
    let out = cmd.output().with_context(|| format!("running {}", exe.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
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
