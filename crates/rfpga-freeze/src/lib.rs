//! rfpga-freeze: a trained run (float weights + BatchNorm) → a frozen integer model
//! (`rfpga_core::frozen`): BN folded into each convolution exactly as the QAT forward pass folds
//! it (same f32 operations, so the same integers), every weight and bias converted to its
//! `ap_fixed` format as `ap_fixed(double)` does, and every intermediate format chosen — `auto`
//! meaning wide enough that nothing can round or overflow. Then a calibration pass through the
//! simulator measures what each layer really produces against its format.

use anyhow::{bail, Context, Result};
use rfpga_core::fixed::{FixedFormat, Overflow, Rounding};
use rfpga_core::frozen::{self, AvgPool, Conv, Dense, FrozenModel, InputLayer, Layer, PadShortcut, INPUT};
use rfpga_core::tensors::{ACT_FORMAT_KEY, BIAS_FORMAT_KEY, INPUT_FORMAT_KEY, WEIGHT_FORMAT_KEY};
use rfpga_core::{IntTensorFile, ModelSpec, Skip, TensorFile};
use rfpga_sim::layers::{max_abs, LayerStats};
use rfpga_sim::Simulator;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// BatchNorm's ε, as in PyTorch and the trainer.
const BN_EPS: f32 = 1e-5;

/// A format given explicitly or derived from the data (`auto`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice {
    Auto,
    Fixed(FixedFormat),
}

impl std::str::FromStr for Choice {
    type Err = rfpga_core::fixed::FormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            Ok(Choice::Auto)
        } else {
            FixedFormat::parse(s).map(Choice::Fixed)
        }
    }
}

/// What the user asked for; `None` takes the run's QAT format, then the documented default.
#[derive(Debug, Clone)]
pub struct Request {
    pub weights: Option<FixedFormat>,
    pub bias: Option<Choice>,
    pub act: Option<FixedFormat>,
    pub input: Option<FixedFormat>,
    pub accum: Choice,
    pub sum: Choice,
    /// `auto` accumulators wider than this are an error (48: a DSP48's accumulator).
    pub max_accum_width: u32,
    /// Keep short skips as adds instead of folding them into their convolutions.
    pub keep_adds: bool,
}

impl Default for Request {
    fn default() -> Self {
        Request { weights: None, bias: None, act: None, input: None, accum: Choice::Auto, sum: Choice::Auto, max_accum_width: 48, keep_adds: false }
    }
}

pub const DEFAULT_ACT: &str = "ap_fixed<16,6,AP_RND,AP_SAT>";
pub const DEFAULT_INPUT: &str = "ap_fixed<16,4,AP_RND,AP_SAT>";

/// How one weight or bias tensor fits its format.
#[derive(Debug, Clone)]
pub struct TensorReport {
    pub name: String,
    pub format: FixedFormat,
    pub min: f32,
    pub max: f32,
    pub clipped: usize,
    pub total: usize,
}

pub struct Frozen {
    pub model: FrozenModel,
    pub weights: IntTensorFile,
    pub tensors: Vec<TensorReport>,
    /// Where each global format came from ("weights ap_fixed<8,3> (run's QAT)").
    pub origins: Vec<String>,
}

/// `ap_fixed(double)` of `x`, and whether it was clipped (out of the format's range).
fn to_raw(f: &FixedFormat, x: f32) -> (i64, bool) {
    let raw = f.from_f64(x as f64);
    let wide = FixedFormat { signed: true, width: 64, int: 64 - f.frac(), rounding: f.rounding, overflow: Overflow::Sat };
    (raw, wide.from_f64(x as f64) != raw)
}

/// Bits of a signed format holding every |v| ≤ bound.
fn signed_bits(bound: i128) -> u32 {
    (128 - bound.leading_zeros()).max(1) + 1
}

struct Builder<'a> {
    run: &'a Path,
    spec: &'a ModelSpec,
    float: HashMap<&'a str, &'a [f32]>,
    weight: FixedFormat,
    bias: Choice,
    act: FixedFormat,
    req: &'a Request,
    layers: Vec<Layer>,
    ints: IntTensorFile,
    reports: Vec<TensorReport>,
    /// Output format of every layer so far (and of the input).
    formats: HashMap<String, FixedFormat>,
}

impl Builder<'_> {
    fn tensor(&self, name: &str) -> &[f32] {
        self.float[name] // the file was checked strictly against the model's tensor list
    }

    fn quantize(&mut self, name: String, f: FixedFormat, shape: Vec<usize>, values: &[f32]) -> Vec<i64> {
        let (mut clipped, mut min, mut max) = (0, f32::INFINITY, f32::NEG_INFINITY);
        let raw: Vec<i64> = values
            .iter()
            .map(|&x| {
                let (r, c) = to_raw(&f, x);
                clipped += c as usize;
                min = min.min(x);
                max = max.max(x);
                r
            })
            .collect();
        self.reports.push(TensorReport { name: name.clone(), format: f, min, max, clipped, total: values.len() });
        self.ints.push(name, shape, raw.clone());
        raw
    }

    /// The bias format: explicit, or `auto` — the product's LSB (so it adds exactly) and
    /// enough integer bits for the largest bias.
    fn bias_format(&self, layer: &str, prod_frac: i32, values: &[f32]) -> Result<FixedFormat> {
        match self.bias {
            Choice::Fixed(f) => Ok(f),
            Choice::Auto => {
                let probe = FixedFormat { signed: true, width: 64, int: 64 - prod_frac, rounding: Rounding::Rnd, overflow: Overflow::Sat };
                let bound = values.iter().map(|&b| (probe.from_f64(b as f64) as i128).abs()).max().unwrap_or(0);
                let width = signed_bits(bound);
                if width > 64 {
                    bail!("{layer}: an `auto` bias needs {width} bits; give --bias explicitly");
                }
                let f = FixedFormat { signed: true, width, int: width as i32 - prod_frac, rounding: Rounding::Rnd, overflow: Overflow::Sat };
                f.validate().map_err(|e| anyhow::anyhow!("{layer}: the `auto` bias format {e}"))?;
                Ok(f)
            }
        }
    }

    /// The accumulator: explicit, or `auto` — no tap can round and no partial sum can
    /// overflow, bounded with the actual weights and the input format's range.
    /// `min_int`: integer bits the accumulator keeps at least (those of the format it converts
    /// into), so that conversion never drops more fraction bits than the accumulator has — a
    /// conversion the ap_fixed headers assert on (`FixedFormat::assignment_asserts_in_cpp`).
    fn accum_format(&self, layer: &str, x: &FixedFormat, w_raw: &[i64], taps: usize, bias: &FixedFormat, b_raw: &[i64], min_int: i32) -> Result<FixedFormat> {
        if let Choice::Fixed(f) = self.req.accum {
            return Ok(f);
        }
        let prod_frac = x.frac() + self.weight.frac();
        let frac = prod_frac.max(bias.frac());
        let bound = w_raw
            .chunks(taps)
            .zip(b_raw)
            .map(|(w, &b)| {
                let sum_w: i128 = w.iter().map(|&v| (v as i128).abs()).sum();
                ((b as i128).abs() << (frac - bias.frac())) + ((sum_w * max_abs(x)) << (frac - prod_frac))
            })
            .max()
            .unwrap_or(0);
        let width = (signed_bits(bound) as i32).max(min_int + frac) as u32;
        if width > self.req.max_accum_width {
            bail!(
                "{layer}: under --accum auto the accumulator must hold every partial sum of {taps} products of {x} × {} \
                 (|sum| ≤ {bound}·2^-{frac}), which needs {width} bits, more than --max-accum-width {}; \
                 use narrower formats, or give --accum explicitly",
                self.weight,
                self.req.max_accum_width
            );
        }
        let f = FixedFormat { signed: true, width, int: width as i32 - frac, rounding: Rounding::Trn, overflow: Overflow::Wrap };
        f.validate().map_err(|e| anyhow::anyhow!("{layer}: the exact accumulator {e}"))?;
        Ok(f)
    }

    /// A convolution with its BatchNorm folded in (f32, in the order the QAT forward uses).
    fn conv(&mut self, name: &str, weights: &str, bn: &str, input: &str, stride: usize, relu: bool) -> Result<String> {
        let spec = self.spec.tensors().into_iter().find(|t| t.name == format!("{weights}.weight")).expect("model tensor");
        let [cout, cin, k, _] = spec.shape[..] else { unreachable!("conv weights are 4-d") };
        let w = self.tensor(&format!("{weights}.weight")).to_vec();
        let (g, beta) = (self.tensor(&format!("{bn}.weight")).to_vec(), self.tensor(&format!("{bn}.bias")).to_vec());
        let (mean, var) = (self.tensor(&format!("{bn}.running_mean")).to_vec(), self.tensor(&format!("{bn}.running_var")).to_vec());
        let scale: Vec<f32> = (0..cout).map(|c| g[c] / (var[c] + BN_EPS).sqrt()).collect();
        let taps = cin * k * k;
        let wf: Vec<f32> = w.iter().enumerate().map(|(i, &v)| v * scale[i / taps]).collect();
        let bf: Vec<f32> = (0..cout).map(|c| beta[c] - mean[c] * scale[c]).collect();
        let x = self.formats[input];
        let w_raw = self.quantize(format!("{name}.weight"), self.weight, vec![cout, cin, k, k], &wf);
        let bias = self.bias_format(name, x.frac() + self.weight.frac(), &bf)?;
        let b_raw = self.quantize(format!("{name}.bias"), bias, vec![cout], &bf);
        let accum = self.accum_format(name, &x, &w_raw, taps, &bias, &b_raw, if relu { self.act.int } else { i32::MIN / 2 })?;
        let output = if relu { self.act } else { accum };
        self.push(Layer::Conv(Conv {
            name: name.into(),
            input: input.into(),
            in_ch: cin,
            out_ch: cout,
            kernel: k,
            stride,
            weight: self.weight,
            bias,
            accum,
            relu,
            output,
        }))
    }

    fn add(&mut self, name: &str, a: &str, b: &str) -> Result<String> {
        let sum = match self.req.sum {
            Choice::Fixed(f) => f,
            Choice::Auto => self.formats[a].try_sum(&self.formats[b]).with_context(|| format!("{name}: the exact sum format"))?,
        };
        self.push(Layer::Add(frozen::Add { name: name.into(), inputs: [a.into(), b.into()], sum, relu: true, output: self.act }))
    }

    fn push(&mut self, layer: Layer) -> Result<String> {
        let name = layer.name().to_string();
        let out = match &layer {
            Layer::Conv(l) => l.output,
            Layer::Add(l) => l.output,
            Layer::PadShortcut(l) => self.formats[&l.input],
            Layer::AvgPool(l) => l.output,
            Layer::Dense(l) => l.output,
        };
        self.formats.insert(name.clone(), out);
        self.layers.push(layer);
        Ok(name)
    }

    /// What the skip of block `p` carries: the input itself, option A, or the projection.
    fn shortcut(&mut self, pos: &rfpga_core::BlockPos, x: &str) -> Result<String> {
        let p = pos.prefix();
        if self.spec.has_projection(pos) {
            self.conv(&format!("{p}.shortcut"), &format!("{p}.shortcut.0"), &format!("{p}.shortcut.1"), x, pos.stride, false)
        } else if pos.changes_shape() {
            self.push(Layer::PadShortcut(PadShortcut { name: format!("{p}.shortcut"), input: x.into(), stride: pos.stride, out_ch: pos.out_ch }))
        } else {
            Ok(x.to_string())
        }
    }
}

/// What the skip of a foldable add is, relative to its convolution's input.
enum SkipKind {
    Identity,
    /// The option-A shortcut layer (its index).
    Pad(usize),
    /// The option-B projection convolution (its index).
    Projection(usize),
}

impl Builder<'_> {
    fn ints_mut(&mut self, name: &str) -> &mut Vec<i64> {
        &mut self.ints.tensors.iter_mut().find(|t| t.0 == name).expect("every layer's tensors are in the file").2
    }

    fn readers(&self, name: &str) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Conv(c) => (c.input == name) as usize,
                Layer::Add(a) => a.inputs.iter().filter(|i| *i == name).count(),
                Layer::PadShortcut(p) => (p.input == name) as usize,
                Layer::AvgPool(p) => (p.input == name) as usize,
                Layer::Dense(d) => (d.input == name) as usize,
            })
            .sum()
    }

    /// The add `i` as a short skip: (its convolution's index, the skip), when one input is a
    /// convolution without ReLU read by nothing else and the other that convolution's input,
    /// its option-A subsample, or an option-B projection of it.
    fn short_skip(&self, i: usize) -> Option<(usize, SkipKind)> {
        let Layer::Add(add) = &self.layers[i] else { return None };
        let index = |name: &str| self.layers.iter().position(|l| l.name() == name);
        for (c, other) in [(&add.inputs[0], &add.inputs[1]), (&add.inputs[1], &add.inputs[0])] {
            let Some(ci) = index(c) else { continue };
            let Layer::Conv(conv) = &self.layers[ci] else { continue };
            if conv.relu || self.readers(c) != 1 {
                continue;
            }
            if *other == conv.input {
                return Some((ci, SkipKind::Identity));
            }
            match index(other).map(|k| (k, &self.layers[k])) {
                Some((k, Layer::PadShortcut(p))) if p.input == conv.input && p.stride == conv.stride && p.out_ch == conv.out_ch => return Some((ci, SkipKind::Pad(k))),
                Some((k, Layer::Conv(p))) if p.input == conv.input && p.stride == conv.stride && p.kernel == 1 && p.out_ch == conv.out_ch && !p.relu => {
                    return Some((ci, SkipKind::Projection(k)))
                }
                _ => {}
            }
        }
        None
    }

    /// Folds every short skip into its convolution (structural re-parameterization): the skip
    /// is a linear term before the add's ReLU, so after BatchNorm folding it is +1 on the
    /// centre tap (identity; option A on the channel the zero padding shifts it to), or the
    /// projection's weights and bias (option B). Exact in integers — the folded convolution
    /// computes the add's exact sum, then its ReLU and conversion — and refused, naming the
    /// layer, where it would not be.
    fn fold_short_skips(&mut self) -> Result<Vec<frozen::Fold>> {
        let mut folds = Vec::new();
        while let Some((ai, (ci, skip))) = (0..self.layers.len()).find_map(|i| self.short_skip(i).map(|s| (i, s))) {
            let Layer::Add(add) = self.layers[ai].clone() else { unreachable!() };
            let Layer::Conv(conv) = self.layers[ci].clone() else { unreachable!() };
            let refuse = |why: String| anyhow::anyhow!("folding `{}` into `{}`: {why}; freeze with --keep-adds to keep the add", add.name, conv.name);
            let [a_f, b_f] = [&self.formats[&add.inputs[0]], &self.formats[&add.inputs[1]]];
            if a_f.try_sum(b_f).ok() != Some(add.sum) {
                return Err(refuse(format!("its sum format {} is not the exact sum of its inputs (--sum auto)", add.sum)));
            }
            if !matches!(self.req.accum, Choice::Auto) || conv.output != conv.accum {
                return Err(refuse("the convolution's accumulator is not exact (--accum auto)".into()));
            }
            if conv.weight.frac() < 0 || !conv.weight.contains_raw(1i64 << conv.weight.frac()) {
                return Err(refuse(format!("1.0 is not a value of its weight format {}", conv.weight)));
            }
            let one = 1i64 << conv.weight.frac();
            let (k, cin, cout) = (conv.kernel, conv.in_ch, conv.out_ch);
            let centre = |co: usize, ci: usize| ((co * cin + ci) * k + k / 2) * k + k / 2;
            let wname = format!("{}.weight", conv.name);
            let bname = format!("{}.bias", conv.name);
            let mut w = self.ints_mut(&wname).clone();
            let mut bias = conv.bias;
            let mut b = self.ints_mut(&bname).clone();
            let (kind, gone) = match skip {
                SkipKind::Identity => {
                    if cin != cout || conv.stride != 1 {
                        return Err(refuse(format!("an identity skip needs {cin} = {cout} channels and stride 1")));
                    }
                    (0..cout).for_each(|c| w[centre(c, c)] += one);
                    ("identity".to_string(), None)
                }
                SkipKind::Pad(pi) => {
                    let before = (cout - cin) / 2;
                    (0..cin).for_each(|c| w[centre(c + before, c)] += one);
                    ("option A".to_string(), Some(pi))
                }
                SkipKind::Projection(pi) => {
                    let Layer::Conv(p) = self.layers[pi].clone() else { unreachable!() };
                    if p.weight != conv.weight || p.output != p.accum {
                        return Err(refuse(format!("the projection `{}` has another weight format ({}) or an inexact output", p.name, p.weight)));
                    }
                    let wp = self.ints_mut(&format!("{}.weight", p.name)).clone();
                    let bp = self.ints_mut(&format!("{}.bias", p.name)).clone();
                    for co in 0..cout {
                        for ci in 0..cin {
                            w[centre(co, ci)] += wp[co * cin + ci];
                        }
                    }
                    // Both biases on the finer grid, then the format that holds their sums.
                    let frac = bias.frac().max(p.bias.frac());
                    b = b.iter().zip(&bp).map(|(&x, &y)| (x << (frac - bias.frac())) + (y << (frac - p.bias.frac()))).collect();
                    bias = match self.bias {
                        Choice::Fixed(f) if f.frac() == frac => f,
                        Choice::Fixed(f) => return Err(refuse(format!("the biases of `{}` and `{}` sum on another grid than --bias {f}", conv.name, p.name))),
                        Choice::Auto => {
                            let width = signed_bits(b.iter().map(|&v| (v as i128).abs()).max().unwrap_or(0));
                            FixedFormat { signed: true, width, int: width as i32 - frac, rounding: Rounding::Rnd, overflow: Overflow::Sat }
                        }
                    };
                    if let Some((c, &v)) = b.iter().enumerate().find(|(_, &v)| !bias.contains_raw(v)) {
                        return Err(refuse(format!("bias [{c}] = {} is outside {bias}", bias.to_f64(v))));
                    }
                    (format!("option B `{}`", p.name), Some(pi))
                }
            };
            if let Some((i, &v)) = w.iter().enumerate().find(|(_, &v)| !conv.weight.contains_raw(v)) {
                let (co, ci, ky, kx) = (i / (cin * k * k), i / (k * k) % cin, i / k % k, i % k);
                return Err(refuse(format!("weight [{co}, {ci}, {ky}, {kx}] becomes {}, outside {}", conv.weight.to_f64(v), conv.weight)));
            }
            let x = self.formats[&conv.input];
            let accum = self.accum_format(&conv.name, &x, &w, cin * k * k, &bias, &b, add.output.int)?;
            *self.ints_mut(&wname) = w;
            *self.ints_mut(&bname) = b;
            if let Layer::Conv(c) = &mut self.layers[ci] {
                (c.bias, c.accum, c.relu, c.output) = (bias, accum, add.relu, add.output);
            }
            self.formats.insert(conv.name.clone(), add.output);
            // Every reader of the add reads the convolution; the add, and a skip layer nothing
            // else reads, are gone.
            for l in &mut self.layers {
                let rename = |s: &mut String| {
                    if *s == add.name {
                        *s = conv.name.clone();
                    }
                };
                match l {
                    Layer::Conv(c) => rename(&mut c.input),
                    Layer::Add(a) => a.inputs.iter_mut().for_each(rename),
                    Layer::PadShortcut(p) => rename(&mut p.input),
                    Layer::AvgPool(p) => rename(&mut p.input),
                    Layer::Dense(d) => rename(&mut d.input),
                }
            }
            self.layers.remove(ai);
            if let Some(pi) = gone {
                let name = self.layers[if pi > ai { pi - 1 } else { pi }].name().to_string();
                if self.readers(&name) == 0 {
                    self.layers.retain(|l| l.name() != name);
                    self.ints.tensors.retain(|t| !t.0.starts_with(&format!("{name}.")));
                }
            }
            folds.push(frozen::Fold { add: add.name.clone(), conv: conv.name.clone(), skip: kind });
        }
        Ok(folds)
    }
}

/// Reads `run` (model.json + weights.safetensors, strictly) and freezes it.
pub fn freeze(run: &Path, req: &Request) -> Result<Frozen> {
    if !(2..=64).contains(&req.max_accum_width) {
        bail!("--max-accum-width: expected 2..=64 (raw values are 64-bit integers), found {}", req.max_accum_width);
    }
    rfpga_core::io::expect_folder(run, rfpga_core::io::FolderKind::Run)?;
    let spec = ModelSpec::load(&run.join("model.json"))?;
    let path = run.join("weights.safetensors");
    let file = TensorFile::load_strict(&path, &spec.tensors())?;
    let meta = |key: &str| -> Result<Option<FixedFormat>> {
        file.metadata.get(key).map(|s| FixedFormat::parse(s).with_context(|| format!("{}: metadata `{key}`", path.display()))).transpose()
    };
    let mut origins = Vec::new();
    let mut pick = |what: &str, given: Option<FixedFormat>, key: &str, default: Option<&str>| -> Result<FixedFormat> {
        let (f, from) = match (given, meta(key)?, default) {
            (Some(f), _, _) => (f, "given"),
            (None, Some(f), _) => (f, "the run's QAT format"),
            (None, None, Some(d)) => (FixedFormat::parse(d).expect("valid default"), "default"),
            (None, None, None) => bail!(
                "--{what} is required: {} holds float weights (no `{key}` in its metadata); e.g. --{what} 'ap_fixed<8,3,AP_RND,AP_SAT>'",
                path.display()
            ),
        };
        origins.push(format!("{what} {f} ({from})"));
        Ok(f)
    };
    let weight = pick("weight-format", req.weights, WEIGHT_FORMAT_KEY, None)?;
    let act = pick("act-format", req.act, ACT_FORMAT_KEY, Some(DEFAULT_ACT))?;
    let input = pick("input-format", req.input, INPUT_FORMAT_KEY, Some(DEFAULT_INPUT))?;
    let bias = match (req.bias, meta(BIAS_FORMAT_KEY)?) {
        (Some(b), _) => b,
        (None, Some(f)) => Choice::Fixed(f),
        (None, None) => Choice::Auto,
    };
    origins.push(match bias {
        Choice::Auto => "bias auto (each layer: the product's LSB, integer bits from its biases)".into(),
        Choice::Fixed(f) => format!("bias {f}"),
    });
    origins.push(match req.accum {
        Choice::Auto => format!("accum auto (exact; at most {} bits)", req.max_accum_width),
        Choice::Fixed(f) => format!("accum {f}"),
    });
    origins.push(match req.sum {
        Choice::Auto => "sum auto (exact)".into(),
        Choice::Fixed(f) => format!("sum {f}"),
    });

    let mut b = Builder {
        run,
        spec: &spec,
        float: file.tensors.iter().map(|t| (t.name.as_str(), t.data.as_slice())).collect(),
        weight,
        bias,
        act,
        req,
        layers: Vec::new(),
        ints: IntTensorFile::default(),
        reports: Vec::new(),
        formats: HashMap::from([(INPUT.to_string(), input)]),
    };
    let mut x = b.conv("conv1", "conv1", "bn1", INPUT, 1, true)?;
    for pos in spec.block_positions() {
        let p = pos.prefix();
        let (c1, bn1, c2, bn2) = (format!("{p}.conv1"), format!("{p}.bn1"), format!("{p}.conv2"), format!("{p}.bn2"));
        x = match spec.blocks[pos.index].skip {
            Skip::Long => {
                let sc = b.shortcut(&pos, &x)?;
                let h = b.conv(&c1, &c1, &bn1, &x, pos.stride, true)?;
                let r = b.conv(&c2, &c2, &bn2, &h, 1, false)?;
                b.add(&format!("{p}.add"), &r, &sc)?
            }
            Skip::Short => {
                let sc = b.shortcut(&pos, &x)?;
                let r1 = b.conv(&c1, &c1, &bn1, &x, pos.stride, false)?;
                let h = b.add(&format!("{p}.add1"), &r1, &sc)?;
                let r2 = b.conv(&c2, &c2, &bn2, &h, 1, false)?;
                b.add(&format!("{p}.add2"), &r2, &h)?
            }
            Skip::None => {
                let h = b.conv(&c1, &c1, &bn1, &x, pos.stride, true)?;
                b.conv(&c2, &c2, &bn2, &h, 1, true)?
            }
        };
    }
    // Global average pooling, exact: log2(n) more integer bits for the sum, then the same bits
    // read with log2(n) more fraction bits for the mean.
    let xf = b.formats[&x];
    let n = spec.input.height / 4 * (spec.input.width / 4);
    let log2n = n.trailing_zeros();
    if !n.is_power_of_two() {
        bail!("{}: global pooling over {n} pixels; only powers of two are supported", run.display());
    }
    let u = !xf.signed as u32;
    let sum = FixedFormat { signed: true, width: xf.width + log2n + u, int: xf.int + (log2n + u) as i32, rounding: Rounding::Trn, overflow: Overflow::Wrap };
    let mean = FixedFormat { int: xf.int + u as i32, ..sum };
    for f in [&sum, &mean] {
        f.validate().map_err(|e| anyhow::anyhow!("pool: the exact sum of {n} values of {xf}: {e}"))?;
    }
    let pool = b.push(Layer::AvgPool(AvgPool { name: "pool".into(), input: x, sum, output: mean }))?;
    let (classes, features) = (spec.num_classes, spec.widths[2]);
    let w = b.tensor("fc.weight").to_vec();
    let bf = b.tensor("fc.bias").to_vec();
    let w_raw = b.quantize("fc.weight".into(), weight, vec![classes, features], &w);
    let bias = b.bias_format("fc", mean.frac() + weight.frac(), &bf)?;
    let b_raw = b.quantize("fc.bias".into(), bias, vec![classes], &bf);
    let accum = b.accum_format("fc", &mean, &w_raw, features, &bias, &b_raw, i32::MIN / 2)?;
    b.push(Layer::Dense(Dense { name: "fc".into(), input: pool, in_features: features, out_features: classes, weight, bias, accum, output: accum }))?;
    let folded = if req.keep_adds { Vec::new() } else { b.fold_short_skips()? };
    if !folded.is_empty() {
        origins.push(format!("{} short skips folded into their convolutions (--keep-adds keeps them)", folded.len()));
    }

    let model = FrozenModel {
        format: frozen::FROZEN_FORMAT.into(),
        version: frozen::FROZEN_VERSION,
        model: spec.clone(),
        source: b.run.display().to_string(),
        input: InputLayer { shape: [spec.input.height, spec.input.width, spec.input.channels], format: input, mean: rfpga_data::MEAN.to_vec(), std: rfpga_data::STD.to_vec() },
        layers: b.layers,
        folded,
    };
    model.analyze("frozen model")?;
    Ok(Frozen { model, weights: b.ints, tensors: b.reports, origins })
}

impl Frozen {
    /// Writes `dir/frozen.json` and `dir/weights.safetensors` (atomically each).
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        self.weights.save(&dir.join(frozen::FROZEN_WEIGHTS))?;
        self.model.save(dir)?;
        Ok(dir.to_path_buf())
    }

    pub fn simulator(&self) -> Result<Simulator> {
        Simulator::new(self.model.clone(), &self.weights, Path::new("frozen model"))
    }
}

fn pct(part: u64, total: u64) -> f64 {
    100.0 * part as f64 / total.max(1) as f64
}

/// The per-layer report: weights against their formats, and (after calibration) the values
/// each layer converted into its output format against that format's range.
pub fn report(frozen: &Frozen, sim: &Simulator, stats: Option<(&[LayerStats], usize)>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Frozen from {}: {}", frozen.model.source, frozen.model.model.name());
    for o in &frozen.origins {
        let _ = writeln!(s, "  {o}");
    }
    let _ = writeln!(s, "\nWeights and biases (float value range after BN folding, against the format's range):");
    let _ = writeln!(s, "  {:<24} {:<32} {:>22} {:>22} {:>10}", "tensor", "format", "values", "format range", "clipped");
    for t in &frozen.tensors {
        let f = t.format;
        let _ = writeln!(
            s,
            "  {:<24} {:<32} {:>22} {:>22} {:>9.3}%",
            t.name,
            f.to_string(),
            format!("[{:.4}, {:.4}]", t.min, t.max),
            format!("[{}, {}]", f.to_f64(f.min_raw()), f.to_f64(f.max_raw())),
            pct(t.clipped as u64, t.total as u64)
        );
    }
    let Some((stats, images)) = stats else { return s };
    let _ = writeln!(s, "\nLayers, calibrated on {images} training images (values converted into each output format):");
    let _ = writeln!(s, "  {:<22} {:<12} {:<16} {:<32} {:>24} {:>22} {:>10}", "layer", "kind", "engine", "output", "seen", "format range", "overflow");
    for (i, ((name, kind, engine), st)) in sim.engines().into_iter().zip(stats).enumerate() {
        let out = sim.analysis.ports[i + 1].format;
        let seen = st.range().map_or("-".into(), |(a, b)| format!("[{a:.4}, {b:.4}]"));
        let over = if kind == "pad_shortcut" { "-".into() } else { format!("{:.4}%", pct(st.overflows, st.values)) };
        let _ = writeln!(
            s,
            "  {:<22} {:<12} {:<16} {:<32} {:>24} {:>22} {:>10}",
            name,
            kind,
            engine,
            out.to_string(),
            seen,
            format!("[{}, {}]", out.to_f64(out.min_raw()), out.to_f64(out.max_raw())),
            over
        );
    }
    let total: u64 = stats.iter().map(|s| s.overflows).sum();
    let _ = writeln!(s, "\nPredicted overflow: {total} values out of their format's range over {images} images.");
    s
}
