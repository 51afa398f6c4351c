//! `rfpga export qonnx`: a frozen model as a QONNX graph — every tensor's `ap_fixed` format a
//! `Quant` node (scale 2^−F, zero point 0, bit width W, signed, narrow for AP_SAT_SYM, its
//! rounding mode) — that computes exactly what `rfpga sim` computes.
//!
//! Exactness is proven per layer from the formats and the actual weights before anything is
//! written, as the simulator's fast paths are. The accumulator must hold every partial sum
//! without rounding or overflow (QONNX's Conv and Gemm sum exactly; an `ap_fixed` accumulator
//! that rounds each product cannot be expressed). float32 holds an integer multiple of an LSB
//! exactly up to 2^24 of them: a layer whose sums stay below (ResNet-20 at `<8,3>` with a
//! `<16,6>` bias) is a plain `Conv`/`Gemm` + `Quant` graph in float32, the form hls4ml's and
//! FINN's front ends read. A wider one (`<16,4>`: sums of ~30 bits) is computed in float64
//! instead: ONNX Runtime has no float64 Conv, so one `MatMul` per kernel tap on strided slices
//! of the padded NHWC input, summed; since QONNX's `Quant` returns float32, values wider than
//! float32 (the sums, an `auto` bias at the product's LSB) keep no `Quant` where no conversion
//! changes them, and get one at the first conversion that rounds into a format float32 holds.
//! A layer that fails any of this is refused with its name and the reason.
//!
//! Rounding: `Quant` rounds `x/scale` with FLOOR (AP_TRN), DOWN (AP_TRN_ZERO), HALF_DOWN
//! (AP_RND_ZERO), HALF_UP (AP_RND_INF) or ROUND (half to even: AP_RND_CONV). AP_RND (ties toward
//! +∞) is an `Add` of half an LSB and FLOOR; AP_RND_MIN_INF an `Add` of −½ LSB and CEIL.
//! Overflow: AP_SAT clips (QONNX clips before rounding, which gives the same integers since the
//! bounds are integers and rounding is monotone), AP_SAT_SYM clips narrow; AP_WRAP and
//! AP_SAT_ZERO have no QONNX form and are refused where a value can leave the range.

use anyhow::{bail, Context, Result};
use rfpga_core::fixed::{FixedFormat, Overflow, Rounding};
use rfpga_core::frozen::{FrozenModel, Layer, FROZEN_WEIGHTS};
use std::path::Path;

use super::{attr_int, attr_ints, attr_string, dim, float_value, Graph};

/// QONNX's operator domain (its `Quant`).
pub const QONNX_DOMAIN: &str = "qonnx.custom_op.general";
/// Integer multiples of one LSB float32 holds exactly.
const F32_EXACT: i128 = 1 << 24;

/// A value in the graph: its name, its LSB 2^−frac, the largest |value| in LSBs, and whether it
/// is known to be ≥ 0.
#[derive(Debug, Clone)]
struct Val {
    name: String,
    frac: i32,
    bound: i128,
    nonneg: bool,
    /// A float64 tensor (the sums of layers too wide for float32).
    double: bool,
}

fn pow2(e: i32) -> f32 {
    2f32.powi(e)
}

/// b·2^s for s ≥ 0, saturating (a bound that large is refused later anyway).
fn shl(b: i128, s: i32) -> i128 {
    let s = s.max(0) as u32;
    if s >= 100 || b > (i128::MAX >> s) {
        i128::MAX
    } else {
        b << s
    }
}

struct Export<'a> {
    g: Graph,
    source: &'a str,
}

impl Export<'_> {
    fn scalar(&mut self, name: &str, v: f32) -> String {
        self.g.float_tensor(name, &[], &[v])
    }

    /// `v` converted into `dst` as ap_fixed does, for `what` of `layer`: an optional `Add` of
    /// ±½ LSB and a `Quant`.
    fn convert(&mut self, v: &Val, dst: &FixedFormat, layer: &str, what: &str) -> Result<Val> {
        let sh = v.frac - dst.frac();
        let rounds = sh > 0;
        // The largest |raw| after rounding (one more for rounding up), before overflow.
        let rounded = if rounds { (v.bound >> sh) + 1 } else { shl(v.bound, -sh) };
        let (lo, hi) = (dst.min_raw() as i128, dst.max_raw() as i128);
        let fits = rounded <= hi && (v.nonneg || -rounded >= lo);
        if !fits && matches!(dst.overflow, Overflow::Wrap | Overflow::SatZero) {
            bail!(
                "{}: `{layer}`: {what} {dst} can overflow (values up to {} LSBs of 2^-{}) and {} has no QONNX form; choose AP_SAT or a wider format",
                self.source,
                v.bound,
                v.frac,
                if dst.overflow == Overflow::Wrap { "AP_WRAP" } else { "AP_SAT_ZERO" }
            );
        }
        // A conversion that neither rounds nor overflows changes no value: a float64 value too
        // wide for float32 (which QONNX's Quant returns) passes through as it is.
        if !rounds && fits && v.double && v.bound >= F32_EXACT {
            return Ok(Val { name: v.name.clone(), frac: dst.frac(), bound: shl(v.bound, -sh), nonneg: v.nonneg, double: true });
        }
        let mut x = v.name.clone();
        let n = self.g.value(&format!("{layer}.{what}"));
        let mode = if !rounds {
            "ROUND" // nothing to round: the values are on the grid
        } else {
            let half = match dst.rounding {
                Rounding::Rnd => Some(0.5f32),
                Rounding::RndMinInf => Some(-0.5f32),
                _ => None,
            };
            if let Some(h) = half {
                let exact = if v.double { 1i128 << 53 } else { F32_EXACT };
                if v.bound + (1i128 << (sh - 1)) >= exact {
                    bail!("{}: `{layer}`: {what}: adding half an LSB of {dst} to values of {} bits is not exact", self.source, v.bound.max(1).ilog2() + 1);
                }
                let c = if v.double {
                    self.g.double_tensor(&format!("{n}.half"), &[], &[h as f64 * 2f64.powi(-dst.frac())])
                } else {
                    self.scalar(&format!("{n}.half"), h * pow2(-dst.frac()))
                };
                let y = self.g.value(&format!("{layer}.{what}.rnd"));
                self.g.node("Add", &format!("{n}.rnd"), &[&x, &c], &[&y], vec![]);
                x = y;
            }
            match dst.rounding {
                Rounding::Trn | Rounding::Rnd => "FLOOR",
                Rounding::RndMinInf => "CEIL",
                Rounding::TrnZero => "DOWN",
                Rounding::RndZero => "HALF_DOWN",
                Rounding::RndInf => "HALF_UP",
                Rounding::RndConv => "ROUND",
            }
        };
        let scale = self.scalar(&format!("{n}.scale"), pow2(-dst.frac()));
        let zero = self.scalar(&format!("{n}.zeropt"), 0.0);
        let bits = self.scalar(&format!("{n}.bitwidth"), dst.width as f32);
        let narrow = dst.signed && dst.overflow == Overflow::SatSym;
        self.g.node_in(
            QONNX_DOMAIN,
            "Quant",
            &n,
            &[&x, &scale, &zero, &bits],
            &[&n],
            vec![attr_int("signed", dst.signed as i64), attr_int("narrow", narrow as i64), attr_string("rounding_mode", mode)],
        );
        // Non-negative values stay at most the largest positive one.
        let bound = if v.nonneg { rounded.min(hi) } else { rounded.min(hi.max(-lo)) };
        // Quant returns float32: exact when the significand fits (a value that only moved to a
        // finer LSB keeps its significand).
        let significand = if rounds { bound } else { v.bound };
        if significand >= F32_EXACT {
            bail!("{}: `{layer}`: {what} {dst}: values of up to {} significant bits do not fit float32, which QONNX's Quant returns", self.source, significand.max(1).ilog2() + 1);
        }
        Ok(Val { name: n, frac: dst.frac(), bound, nonneg: v.nonneg || !dst.signed, double: false })
    }

    /// A constant tensor of raw values in `f`, behind a `Quant` that states its format.
    fn constant(&mut self, name: &str, dims: &[usize], raw: &[i64], f: &FixedFormat, layer: &str, what: &str) -> Result<Val> {
        let bound = raw.iter().map(|v| (*v as i128).abs()).max().unwrap_or(0);
        if bound >= F32_EXACT {
            // Wider than float32 (an `auto` bias at the product's LSB, say): a float64
            // constant, exact on its format's grid, without a Quant (which returns float32).
            let data: Vec<f64> = raw.iter().map(|&v| v as f64 * 2f64.powi(-f.frac())).collect();
            let t = self.g.double_tensor(name, dims, &data);
            return Ok(Val { name: t, frac: f.frac(), bound, nonneg: raw.iter().all(|&v| v >= 0), double: true });
        }
        let data: Vec<f32> = raw.iter().map(|&v| v as f32 * pow2(-f.frac())).collect();
        let t = self.g.float_tensor(name, dims, &data);
        let v = Val { name: t, frac: f.frac(), bound, nonneg: raw.iter().all(|&v| v >= 0), double: false };
        self.convert(&v, f, layer, what)
    }

    fn op(&mut self, op: &str, name: &str, inputs: &[&str], attributes: Vec<super::proto::AttributeProto>) -> String {
        let y = self.g.value(name);
        self.g.node(op, name, inputs, &[&y], attributes);
        y
    }

    fn ints(&mut self, name: &str, v: &[i64]) -> String {
        self.g.int64_tensor(name, v)
    }

    /// Σ x·w + b in float64: a Gemm for a dense layer; for a convolution the padded input in
    /// NHWC, per tap a strided Slice times that tap's [Cin, Cout] weights (MatMul), summed,
    /// plus the bias, back to NCHW.
    fn double_mac(&mut self, layer: &str, x: &Val, w: &str, b: &str, wdims: &[usize], conv: Option<ConvGeometry>) -> Result<String> {
        let to_double = vec![attr_int("to", 11)];
        let xd = self.op("Cast", &format!("{layer}.x64"), &[&x.name], to_double.clone());
        let wd = self.op("Cast", &format!("{layer}.w64"), &[w], to_double.clone());
        let bd = self.op("Cast", &format!("{layer}.b64"), &[b], to_double);
        let Some(c) = conv else {
            return Ok(self.op("Gemm", layer, &[&xd, &wd, &bd], vec![attr_int("transB", 1)]));
        };
        let (cout, cin) = (wdims[0], wdims[1]);
        let p = (c.k / 2) as i64;
        let pads = self.ints(&format!("{layer}.pads"), &[0, 0, p, p, 0, 0, p, p]);
        let xp = self.op("Pad", &format!("{layer}.pad"), &[&xd, &pads], vec![attr_string("mode", "constant")]);
        let xt = self.op("Transpose", &format!("{layer}.nhwc"), &[&xp], vec![attr_ints("perm", &[0, 2, 3, 1])]);
        let wt = self.op("Transpose", &format!("{layer}.khwio"), &[&wd], vec![attr_ints("perm", &[2, 3, 1, 0])]);
        let shape = self.ints(&format!("{layer}.tap_shape"), &[cin as i64, cout as i64]);
        let (axes, steps) = (self.ints(&format!("{layer}.axes"), &[1, 2]), self.ints(&format!("{layer}.steps"), &[c.stride as i64, c.stride as i64]));
        let waxes = self.ints(&format!("{layer}.waxes"), &[0, 1]);
        let mut acc: Option<String> = None;
        for ky in 0..c.k {
            for kx in 0..c.k {
                let t = format!("{layer}.tap{ky}{kx}");
                let starts = self.ints(&format!("{t}.starts"), &[ky as i64, kx as i64]);
                let ends = self.ints(&format!("{t}.ends"), &[(ky + c.stride * (c.oh - 1) + 1) as i64, (kx + c.stride * (c.ow - 1) + 1) as i64]);
                let xs = self.op("Slice", &format!("{t}.x"), &[&xt, &starts, &ends, &axes, &steps], vec![]);
                let wends = self.ints(&format!("{t}.wends"), &[ky as i64 + 1, kx as i64 + 1]);
                let wk = self.op("Slice", &format!("{t}.w"), &[&wt, &starts, &wends, &waxes], vec![]);
                let wk = self.op("Reshape", &format!("{t}.w2"), &[&wk, &shape], vec![]);
                let pk = self.op("MatMul", &format!("{t}.mul"), &[&xs, &wk], vec![]);
                acc = Some(match acc {
                    None => pk,
                    Some(a) => self.op("Add", &format!("{t}.add"), &[&a, &pk], vec![]),
                });
            }
        }
        let acc = acc.expect("k ≥ 1");
        let acc = self.op("Add", &format!("{layer}.bias"), &[&acc, &bd], vec![]);
        Ok(self.op("Transpose", &format!("{layer}.nchw"), &[&acc], vec![attr_ints("perm", &[0, 3, 1, 2])]))
    }

    fn relu(&mut self, v: Val, name: &str) -> Val {
        let y = self.g.value(name);
        self.g.node("Relu", name, &[&v.name], &[&y], vec![]);
        Val { name: y, nonneg: true, ..v }
    }

    /// A convolution or dense layer: `x` times the raw `weight` (OIHW or [out][in]) plus the
    /// bias, accumulated exactly in `accum` (proven), then ReLU and the output conversion.
    #[allow(clippy::too_many_arguments)]
    fn mac_layer(
        &mut self,
        layer: &str,
        x: &Val,
        weight: (&[usize], &[i64], &FixedFormat),
        bias: (&[i64], &FixedFormat),
        accum: &FixedFormat,
        relu: bool,
        output: &FixedFormat,
        conv: Option<ConvGeometry>,
    ) -> Result<Val> {
        let (wdims, wraw, wf) = weight;
        let f_prod = x.frac + wf.frac();
        if accum.frac() < f_prod {
            bail!(
                "{}: `{layer}`: the accumulator {accum} rounds every product ({} fraction bits into {}); QONNX's Conv and Gemm sum exactly, so freeze with `--accum auto`",
                self.source,
                f_prod,
                accum.frac()
            );
        }
        let w = self.constant(&format!("{layer}.weight"), wdims, wraw, wf, layer, "weight")?;
        let b = self.constant(&format!("{layer}.bias"), &[bias.0.len()], bias.0, bias.1, layer, "bias")?;
        let b = self.convert(&b, accum, layer, "bias_into_accum")?;
        // The largest |sum| of any output, in the accumulator's LSB, from the actual weights.
        let out_ch = wdims[0];
        let per_out = wraw.len() / out_ch;
        let up = accum.frac() - f_prod;
        let worst = (0..out_ch)
            .map(|o| wraw[o * per_out..(o + 1) * per_out].iter().map(|&v| (v as i128).abs()).sum::<i128>().saturating_mul(x.bound))
            .max()
            .unwrap_or(0);
        let worst = shl(worst, up).saturating_add(b.bound);
        let (lo, hi) = (accum.min_raw() as i128, accum.max_raw() as i128);
        if worst > hi || -worst < lo {
            bail!("{}: `{layer}`: the accumulator {accum} can overflow (sums up to {worst} LSBs); QONNX's Conv cannot wrap or saturate per product", self.source);
        }
        if worst >= 1 << 53 {
            bail!("{}: `{layer}`: sums of up to {worst} LSBs are not exact even in float64", self.source);
        }
        if worst >= F32_EXACT || w.double || b.double {
            // Too wide for float32: the same sum in float64, one MatMul per tap (ONNX Runtime
            // has no float64 Conv). The accumulator keeps no Quant here: QONNX's Quant returns
            // float32, and the sum is exact anyway (proven above).
            let y = self.double_mac(layer, x, &w.name, &b.name, wdims, conv)?;
            let acc = Val { name: y, frac: accum.frac(), bound: worst, nonneg: false, double: true };
            let acc = if relu { self.relu(acc, &format!("{layer}.relu")) } else { acc };
            return self.convert(&acc, output, layer, "output");
        }
        let y = self.g.value(&format!("{layer}.sum"));
        match conv {
            Some(c) => {
                let (k, stride) = (c.k, c.stride);
                let p = (k / 2) as i64;
                self.g.node(
                    "Conv",
                    layer,
                    &[&x.name, &w.name, &b.name],
                    &[&y],
                    vec![attr_ints("kernel_shape", &[k as i64, k as i64]), attr_ints("strides", &[stride as i64, stride as i64]), attr_ints("pads", &[p, p, p, p]), attr_ints("dilations", &[1, 1]), attr_int("group", 1)],
                );
            }
            None => self.g.node("Gemm", layer, &[&x.name, &w.name, &b.name], &[&y], vec![attr_int("transB", 1)]),
        }
        let acc = self.convert(&Val { name: y, frac: accum.frac(), bound: worst, nonneg: false, double: false }, accum, layer, "accum")?;
        let acc = if relu { self.relu(acc, &format!("{layer}.relu")) } else { acc };
        self.convert(&acc, output, layer, "output")
    }
}

/// A convolution's kernel, stride and output size.
#[derive(Debug, Clone, Copy)]
struct ConvGeometry {
    k: usize,
    stride: usize,
    oh: usize,
    ow: usize,
}

/// Writes the frozen model in `frozen` as a QONNX graph to `out`. Input `input`: the image in
/// the input format's values (raw·2^−F; any float is converted by the first `Quant` as
/// `ap_fixed(double)` would), N×C×H×W float32 with N = `batch` (static: qonnx's executor and
/// hls4ml refuse a symbolic batch); output `logits`: the logits' values.
pub fn export_qonnx(frozen: &Path, out: &Path, batch: usize) -> Result<()> {
    anyhow::ensure!(batch >= 1, "--batch: expected ≥ 1, found {batch}");
    let model = FrozenModel::load(frozen)?;
    let source = frozen.display().to_string();
    let a = model.analyze(&source)?;
    let weights = model.load_weights(&frozen.join(FROZEN_WEIGHTS))?;
    let mut e = Export { g: Graph::default(), source: &source };
    let fin = model.input.format;
    let input = Val { name: "input".into(), frac: fin.frac(), bound: (fin.max_raw() as i128).max(-(fin.min_raw() as i128)), nonneg: !fin.signed, double: false };
    let mut ports: Vec<Val> = vec![e.convert(&input, &fin, "input", "input")?];
    for (i, layer) in model.layers.iter().enumerate() {
        let ins: Vec<Val> = a.inputs[i].iter().map(|&p| ports[p].clone()).collect();
        let name = layer.name();
        let v = match layer {
            Layer::Conv(c) => {
                let w = weights.get(&format!("{name}.weight")).expect("checked strictly");
                let b = weights.get(&format!("{name}.bias")).expect("checked strictly");
                let dims = [c.out_ch, c.in_ch, c.kernel, c.kernel];
                let [oh, ow, _] = a.ports[i + 1].shape;
                let geometry = ConvGeometry { k: c.kernel, stride: c.stride, oh, ow };
                e.mac_layer(name, &ins[0], (&dims, w, &c.weight), (b, &c.bias), &c.accum, c.relu, &c.output, Some(geometry))?
            }
            Layer::Dense(d) => {
                let flat = e.g.value(&format!("{name}.flatten"));
                e.g.node("Flatten", &format!("{name}.flatten"), &[&ins[0].name], &[&flat], vec![attr_int("axis", 1)]);
                let x = Val { name: flat, ..ins[0].clone() };
                let w = weights.get(&format!("{name}.weight")).expect("checked strictly");
                let b = weights.get(&format!("{name}.bias")).expect("checked strictly");
                e.mac_layer(name, &x, (&[d.out_features, d.in_features], w, &d.weight), (b, &d.bias), &d.accum, false, &d.output, None)?
            }
            Layer::Add(l) => {
                let (x, y) = (&ins[0], &ins[1]);
                let f = x.frac.max(y.frac);
                let bound = shl(x.bound, f - x.frac).saturating_add(shl(y.bound, f - y.frac));
                // In float32 when exact there, else in float64 (either input cast).
                let double = x.double || y.double || bound >= F32_EXACT;
                if bound >= 1 << 53 {
                    bail!("{source}: `{name}`: sums of up to {bound} LSBs are not exact even in float64");
                }
                let mut operand = |v: &Val, tag: &str| if double && !v.double { e.op("Cast", &format!("{name}.{tag}64"), &[&v.name], vec![attr_int("to", 11)]) } else { v.name.clone() };
                let (xa, ya) = (operand(x, "a"), operand(y, "b"));
                let s = e.g.value(&format!("{name}.exact"));
                e.g.node("Add", name, &[&xa, &ya], &[&s], vec![]);
                let s = e.convert(&Val { name: s, frac: f, bound, nonneg: x.nonneg && y.nonneg, double }, &l.sum, name, "sum")?;
                let s = if l.relu { e.relu(s, &format!("{name}.relu")) } else { s };
                e.convert(&s, &l.output, name, "output")?
            }
            Layer::PadShortcut(l) => {
                // Option A as a 1×1 convolution of stride S whose weights are 1 from input
                // channel c to output channel ⌊Δ/2⌋ + c and 0 elsewhere: every output is one
                // input times 1 (exact), and hls4ml's ONNX front end, which has no strided
                // Slice, takes a Conv.
                let x = &ins[0];
                let in_ch = a.ports[a.inputs[i][0]].shape[2];
                let before = (l.out_ch - in_ch) / 2;
                let mut w = vec![0i64; l.out_ch * in_ch];
                for c in 0..in_ch {
                    w[(before + c) * in_ch + c] = 1;
                }
                let one = FixedFormat::parse("ap_fixed<2,2>").expect("a valid format");
                let wq = e.constant(&format!("{name}.weight"), &[l.out_ch, in_ch, 1, 1], &w, &one, name, "weight")?;
                let y = e.g.value(name);
                e.g.node(
                    "Conv",
                    name,
                    &[&x.name, &wq.name],
                    &[&y],
                    vec![
                        attr_ints("kernel_shape", &[1, 1]),
                        attr_ints("strides", &[l.stride as i64, l.stride as i64]),
                        attr_ints("pads", &[0, 0, 0, 0]),
                        attr_ints("dilations", &[1, 1]),
                        attr_int("group", 1),
                    ],
                );
                Val { name: y, ..x.clone() }
            }
            Layer::AvgPool(l) => {
                let x = &ins[0];
                let port = &a.ports[a.inputs[i][0]];
                let n = (port.shape[0] * port.shape[1]) as i128;
                let log2n = n.trailing_zeros() as i32;
                // Σx must be exact in `sum` and in float32; the mean is the same bits read with
                // log2 n more fraction bits, which a power-of-two division gives exactly.
                let bound = shl(x.bound.saturating_mul(n), l.sum.frac() - x.frac);
                if l.sum.frac() < x.frac || bound > l.sum.max_raw() as i128 || bound >= F32_EXACT {
                    bail!("{source}: `{name}`: the pooling sum {} does not hold Σx exactly in float32; freeze with `--sum auto`", l.sum);
                }
                let y = e.g.value(&format!("{name}.mean"));
                e.g.node("GlobalAveragePool", name, &[&x.name], &[&y], vec![]);
                let mean_fmt = FixedFormat { int: l.sum.int - log2n, ..l.sum };
                let m = e.convert(&Val { name: y, frac: x.frac + log2n, bound: x.bound, nonneg: x.nonneg, double: false }, &mean_fmt, name, "mean")?;
                e.convert(&m, &l.output, name, "output")?
            }
        };
        ports.push(v);
    }
    let last = ports.last().expect("layers").clone();
    e.g.node("Identity", "logits", &[&last.name], &["logits"], vec![]);
    let batch = dim(batch as i64);
    let [h, w, c] = a.ports[0].shape;
    let classes = a.ports[a.ports.len() - 1].shape[2];
    let input = float_value("input", &[batch.clone(), dim(c as i64), dim(h as i64), dim(w as i64)]);
    // Logits wider than float32 holds leave in float64.
    let elem = if last.double { super::proto::data_type::DOUBLE } else { super::proto::data_type::FLOAT };
    let output = super::typed_value("logits", &[batch, dim(classes as i64)], elem);
    let doc = format!(
        "rfpga export qonnx of {source} ({}): every ap_fixed format a Quant node (but values wider than float32, which stay float64 where no conversion changes them); exact (proven per layer); input: raw·2^-{} of {}, N×C×H×W",
        model.model.name(),
        fin.frac(),
        fin
    );
    let bytes = e.g.into_model(&model.model.name(), &doc, input, output, &[QONNX_DOMAIN]);
    rfpga_core::io::write_atomic(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
