//! `conv`: k×k convolution, stride s, zero padding k/2, folded BN bias, optional ReLU.
//!
//! Order (shared with the HLS template): `acc = bias[co]` converted into `accum`; for each tap in
//! (ky, kx, ci) order `acc += x·w` (exact product, one conversion into `accum`); ReLU; conversion
//! into `output`. Padding taps add 0, which leaves any accumulator unchanged, so they are skipped.
//!
//! Engines, chosen when the formats and the actual weights prove them bit-identical:
//! - when no tap can round (accum has at least the product's fraction bits) and no partial sum
//!   can leave the accumulator's range (bound from the actual weights and the input format's
//!   range) — or the accumulator wraps, which is modular arithmetic — the tap order does not
//!   matter and the convolution is an integer dot product: i16 operands read directly from the
//!   zero-padded input (`direct::dot_i16`, taps split into blocks whose partial sums fit i32),
//!   or an i32×i32→i64 GEMM over im2col patches for wider operands;
//! - otherwise, for i16 operands and accumulators of up to 31 bits that saturate or wrap and
//!   round by floor (AP_TRN, AP_RND, AP_RND_MIN_INF): the accumulator stepped tap by tap in the
//!   fixed order on i32 lanes, across output channels (`direct::accumulate_lanes`);
//! - everything else tap by tap through `FixedFormat::accumulate`.

use anyhow::{ensure, Result};
use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::{Conv, Port};
use std::ops::Range;

use super::{fits_i16, fits_i32, max_abs, Kernel, LayerStats, Scratch};
use crate::convert::Conversion;
use crate::direct::{self, Geometry, StepRule, LANES};
use crate::gemm::gemm_i32;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Engine {
    /// Exact u8×i8 dot products on the padded input (8-bit formats, AVX-512 VNNI): signed
    /// inputs are offset by 128 into u8, the offset's contribution subtracted after.
    Direct8 { offset: i64 },
    /// Exact i16 dot products on the padded input, one i32 sum per block of taps.
    Direct16 { blocks: Vec<Range<usize>> },
    /// Exact i32×i32→i64 GEMM over im2col patches.
    I32,
    /// The accumulator stepped tap by tap on i32 lanes.
    Lanes(StepRule),
    Stepwise,
}

pub struct ConvKernel {
    in_shape: [usize; 3],
    out_shape: [usize; 3],
    k: usize,
    stride: usize,
    pad: usize,
    /// Reduction length k·k·cin.
    taps: usize,
    engine: Engine,
    /// Weights as [co][ky][kx][ci], raw.
    w: Vec<i64>,
    /// Direct engines: channels per pixel of the padded input (cin rounded up to even), its
    /// width, each output pixel's and each tap's offset in it, output channels rounded up to
    /// LANES.
    cin_e: usize,
    padded_w: usize,
    pixel_off: Vec<usize>,
    tap_off: Vec<usize>,
    cp: usize,
    /// Direct16: weights packed per block of taps; Direct8: packed weights and offset·Σw per
    /// output channel; Lanes: packed weights and bias.
    w16: Vec<Vec<i16>>,
    w8: Vec<i8>,
    offset_sum: Vec<i32>,
    wl: Vec<i32>,
    bias_lanes: Vec<i32>,
    w32: Vec<i32>,
    bias_acc: Vec<i64>,
    accum: FixedFormat,
    prod_frac: i32,
    /// accum.frac − prod_frac, for the exact engines (≥ 0).
    shift: u32,
    /// The accumulator may overflow (exact engines: only with AP_WRAP).
    may_overflow: bool,
    relu: bool,
    out: Conversion,
}

impl ConvKernel {
    /// `weight`: PyTorch order [co][ci][ky][kx]; raw values already checked against their formats.
    pub fn new(l: &Conv, input: &Port, weight: &[i64], bias: &[i64], allow_fast: bool) -> Result<Self> {
        let [h, w, cin] = input.shape;
        let (k, cout) = (l.kernel, l.out_ch);
        ensure!(weight.len() == cout * cin * k * k && bias.len() == cout, "{}: weight/bias sizes", l.name);
        let taps = k * k * cin;
        let mut wt = vec![0i64; cout * taps];
        for co in 0..cout {
            for ci in 0..cin {
                for ky in 0..k {
                    for kx in 0..k {
                        wt[co * taps + (ky * k + kx) * cin + ci] = weight[((co * cin + ci) * k + ky) * k + kx];
                    }
                }
            }
        }
        let x = input.format;
        let prod_frac = x.frac() + l.weight.frac();
        let to_acc = Conversion::new(l.bias.frac(), l.accum);
        let bias_acc: Vec<i64> = bias.iter().map(|&b| to_acc.apply(b).0).collect();
        let abs_w = |r: &[i64]| r.iter().map(|&v| (v as i128).abs()).sum::<i128>();
        let sum_abs_w: Vec<i128> = wt.chunks(taps).map(abs_w).collect();
        let exact_sum = super::exact_sum(&l.accum, prod_frac, &bias_acc, &sum_abs_w, max_abs(&x));
        let exact = allow_fast && exact_sum.is_some();
        let (shift, may_overflow) = exact_sum.unwrap_or((0, true));
        let narrow = fits_i16(&x) && fits_i16(&l.weight);
        let max_w = wt.iter().map(|&v| (v as i128).abs()).max().unwrap_or(0);
        let fits_i8 = |f: &FixedFormat| f.min_raw() >= -128 && f.max_raw() <= 127;
        let offset = if x.signed { 128 } else { 0 };
        let bytes = x.width <= 8 && fits_i8(&l.weight) && (255 + offset as i128) * sum_abs_w.iter().copied().max().unwrap_or(0) < 1 << 31;
        let engine = if exact && bytes && direct::has_vnni() {
            Engine::Direct8 { offset }
        } else if exact && narrow {
            // Blocks of whole taps (k·k positions × cin channels) whose |partial sums| < 2^31.
            let tap_bound: Vec<Vec<i128>> = wt.chunks(taps).map(|r| r.chunks(cin).map(|t| abs_w(t) * max_abs(&x)).collect()).collect();
            let mut blocks = vec![];
            let mut start = 0;
            while start < k * k {
                let mut end = start;
                while end < k * k && (0..cout).all(|co| tap_bound[co][start..=end].iter().sum::<i128>() < 1 << 31) {
                    end += 1;
                }
                if end == start {
                    blocks.clear();
                    break;
                }
                blocks.push(start..end);
                start = end;
            }
            if blocks.is_empty() && fits_i32(&x) { Engine::I32 } else if blocks.is_empty() { Engine::Stepwise } else { Engine::Direct16 { blocks } }
        } else if exact && fits_i32(&x) && fits_i32(&l.weight) {
            Engine::I32
        } else if let Some(rule) = (allow_fast && narrow).then(|| StepRule::new(&l.accum, prod_frac, max_w * max_abs(&x), 32)).flatten() {
            Engine::Lanes(rule)
        } else {
            Engine::Stepwise
        };
        let (stride, pad) = (l.stride, k / 2);
        let out_shape = [h.div_ceil(stride), w.div_ceil(stride), cout];
        let cin_e = if matches!(engine, Engine::Direct8 { .. }) { cin.div_ceil(4) * 4 } else { cin.div_ceil(2) * 2 };
        let padded_w = w + 2 * pad;
        let pixel_off = (0..out_shape[0] * out_shape[1]).map(|p| ((p / out_shape[1]) * stride * padded_w + (p % out_shape[1]) * stride) * cin_e).collect();
        let tap_off: Vec<usize> = (0..k * k).map(|t| ((t / k) * padded_w + t % k) * cin_e).collect();
        let cp = cout.div_ceil(LANES) * LANES;
        // Weights with the channel run padded to cin_e (zeros).
        let w_even = |t: &Range<usize>| -> Vec<i64> {
            let mut v = Vec::with_capacity(cout * t.len() * cin_e);
            for co in 0..cout {
                for tap in t.clone() {
                    v.extend((0..cin_e).map(|ci| if ci < cin { wt[co * taps + tap * cin + ci] } else { 0 }));
                }
            }
            v
        };
        let (mut w16, mut wl, mut bias_lanes, mut w32) = (vec![], vec![], vec![], vec![]);
        let (mut w8, mut offset_sum) = (vec![], vec![]);
        match &engine {
            Engine::Direct8 { offset } => {
                w8 = direct::pack_quads(&w_even(&(0..k * k)), cout, k * k * cin_e);
                offset_sum = (0..cp).map(|co| if co < cout { (offset * wt[co * taps..][..taps].iter().sum::<i64>()) as i32 } else { 0 }).collect();
            }
            Engine::Direct16 { blocks } => w16 = blocks.iter().map(|b| direct::pack_pairs(&w_even(b), cout, b.len() * cin_e)).collect(),
            Engine::Lanes(_) => {
                wl = direct::pack_lanes(&wt, cout, taps);
                bias_lanes = (0..cp).map(|co| bias_acc.get(co).copied().unwrap_or(0) as i32).collect();
            }
            Engine::I32 => w32 = wt.iter().map(|&v| v as i32).collect(),
            Engine::Stepwise => {}
        }
        Ok(ConvKernel {
            in_shape: [h, w, cin],
            out_shape,
            k,
            stride,
            pad,
            taps,
            engine,
            w: wt,
            cin_e,
            padded_w,
            pixel_off,
            tap_off,
            cp,
            w16,
            w8,
            offset_sum,
            wl,
            bias_lanes,
            w32,
            bias_acc,
            accum: l.accum,
            prod_frac,
            shift,
            may_overflow,
            relu: l.relu,
            out: Conversion::new(l.accum.frac(), l.output),
        })
    }

    /// The input pixel feeding tap (ky, kx) of output (oy, ox), if not padding.
    #[inline]
    fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
        let [h, w, cin] = self.in_shape;
        let iy = (oy * self.stride + ky).checked_sub(self.pad)?;
        let ix = (ox * self.stride + kx).checked_sub(self.pad)?;
        (iy < h && ix < w).then_some((iy * w + ix) * cin)
    }

    /// The input cast to T, padded by `pad` on every side and channels padded to `cin_e`, with
    /// `zero` (the cast of 0).
    #[inline(always)]
    fn pad_input<T: Copy>(&self, x: &[i64], buf: &mut Vec<T>, zero: T, cast: impl Fn(i64) -> T) {
        let [h, w, cin] = self.in_shape;
        let (pw, ce, pad) = (self.padded_w, self.cin_e, self.pad);
        // Only the border is filled with zero: the interior is overwritten below.
        buf.resize((h + 2 * pad) * pw * ce, zero);
        buf[..pad * pw * ce].fill(zero);
        buf[(h + pad) * pw * ce..].fill(zero);
        for y in pad..h + pad {
            buf[y * pw * ce..][..pad * ce].fill(zero);
            buf[(y * pw + pad + w) * ce..][..pad * ce].fill(zero);
        }
        for y in 0..h {
            let row = &mut buf[((y + self.pad) * self.padded_w + self.pad) * self.cin_e..][..w * self.cin_e];
            let src = &x[y * w * cin..][..w * cin];
            if cin == self.cin_e {
                for (o, &v) in row.iter_mut().zip(src) {
                    *o = cast(v);
                }
            } else {
                for (o, s) in row.chunks_exact_mut(self.cin_e).zip(src.chunks_exact(cin)) {
                    o.fill(zero);
                    for (o, &v) in o.iter_mut().zip(s) {
                        *o = cast(v);
                    }
                }
            }
        }
    }

    /// im2col: one row of `taps` values per output pixel, taps in (ky, kx, ci) order.
    fn patches(&self, x: &[i64], buf: &mut Vec<i32>) {
        let [oh, ow, _] = self.out_shape;
        let cin = self.in_shape[2];
        buf.clear();
        buf.resize(oh * ow * self.taps, 0);
        for oy in 0..oh {
            for ox in 0..ow {
                let row = &mut buf[(oy * ow + ox) * self.taps..][..self.taps];
                for ky in 0..self.k {
                    for kx in 0..self.k {
                        if let Some(s) = self.source(oy, ox, ky, kx) {
                            let d = (ky * self.k + kx) * cin;
                            for (o, &v) in row[d..d + cin].iter_mut().zip(&x[s..s + cin]) {
                                *o = v as i32;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Exact dot products (`stride` values per pixel) → bias, accumulator wrap, ReLU → output.
    #[inline(always)]
    fn finish_dots<D: Copy + Into<i64>>(&self, dots: &[D], stride: usize, acc: &mut Vec<i64>, out: &mut [i64], stats: &mut LayerStats) {
        let cout = self.out_shape[2];
        // Every value is overwritten: grow only, never re-zero.
        if acc.len() < out.len() {
            acc.resize(out.len(), 0);
        }
        let acc = &mut acc[..out.len()];
        let wsh = 64 - self.accum.width;
        for (a, d) in acc.chunks_exact_mut(cout).zip(dots.chunks(stride)) {
            for ((a, &d), &b) in a.iter_mut().zip(d).zip(&self.bias_acc) {
                let mut v = b + (d.into() << self.shift);
                if self.may_overflow {
                    // AP_WRAP (the exact engines allow no other overflow): the low W bits.
                    v = if self.accum.signed { (v << wsh) >> wsh } else { ((v as u64) << wsh >> wsh) as i64 };
                }
                *a = if self.relu { v.max(0) } else { v };
            }
        }
        stats.convert_slice(&self.out, acc, out);
    }

    #[inline(always)]
    fn run_impl(&self, x: &[i64], out: &mut [i64], s: &mut Scratch, stats: &mut LayerStats) {
        let [oh, ow, cout] = self.out_shape;
        let pixels = oh * ow;
        let geometry = |seg| Geometry { pixels: &self.pixel_off, taps: &self.tap_off, seg };
        match &self.engine {
            Engine::Direct8 { offset } => {
                let off = *offset;
                self.pad_input(x, &mut s.x8, off as u8, |v| (v + off) as u8);
                s.d32.resize(pixels * self.cp, 0);
                direct::dot_u8(&s.x8, &geometry(self.cin_e), &self.w8, &mut s.d32);
                for p in s.d32.chunks_exact_mut(self.cp) {
                    for (d, &c) in p.iter_mut().zip(&self.offset_sum) {
                        *d -= c;
                    }
                }
                self.finish_dots(&s.d32, self.cp, &mut s.acc, out, stats);
            }
            Engine::Direct16 { blocks } => {
                self.pad_input(x, &mut s.x16, 0, |v| v as i16);
                s.d32.resize(pixels * self.cp, 0);
                if blocks.len() == 1 {
                    direct::dot_i16(&s.x16, &geometry(self.cin_e), &self.w16[0], &mut s.d32);
                    self.finish_dots(&s.d32, self.cp, &mut s.acc, out, stats);
                } else {
                    s.d64.clear();
                    s.d64.resize(pixels * self.cp, 0);
                    for (b, w) in blocks.iter().zip(&self.w16) {
                        let g = Geometry { pixels: &self.pixel_off, taps: &self.tap_off[b.clone()], seg: self.cin_e };
                        direct::dot_i16(&s.x16, &g, w, &mut s.d32);
                        for (t, &d) in s.d64.iter_mut().zip(&s.d32) {
                            *t += d as i64;
                        }
                    }
                    self.finish_dots(&s.d64, self.cp, &mut s.acc, out, stats);
                }
            }
            Engine::I32 => {
                self.patches(x, &mut s.a32);
                s.d64.resize(pixels * cout, 0);
                gemm_i32(&s.a32, &self.w32, self.taps, &mut s.d64);
                self.finish_dots(&s.d64, cout, &mut s.acc, out, stats);
            }
            Engine::Lanes(rule) => {
                self.pad_input(x, &mut s.x16, 0, |v| v as i16);
                s.d32.resize(pixels * self.cp, 0);
                // Padding taps step the accumulator by round(0) = 0, which leaves it unchanged.
                direct::accumulate_lanes(&s.x16, &geometry(self.in_shape[2]), &self.wl, &self.bias_lanes, rule, &mut s.d32);
                s.acc.clear();
                s.acc.extend(s.d32.chunks_exact(self.cp).flat_map(|p| p[..cout].iter().map(|&a| if self.relu { a.max(0) as i64 } else { a as i64 })));
                stats.convert_slice(&self.out, &s.acc, out);
            }
            Engine::Stepwise => {
                let cin = self.in_shape[2];
                for oy in 0..oh {
                    for ox in 0..ow {
                        for co in 0..cout {
                            let wrow = &self.w[co * self.taps..][..self.taps];
                            let mut acc = self.bias_acc[co];
                            for ky in 0..self.k {
                                for kx in 0..self.k {
                                    let Some(src) = self.source(oy, ox, ky, kx) else { continue };
                                    let d = (ky * self.k + kx) * cin;
                                    for ci in 0..cin {
                                        let p = x[src + ci] as i128 * wrow[d + ci] as i128;
                                        acc = self.accum.accumulate(acc, p, self.prod_frac);
                                    }
                                }
                            }
                            if self.relu {
                                acc = acc.max(0);
                            }
                            out[(oy * ow + ox) * cout + co] = stats.convert(&self.out, acc);
                        }
                    }
                }
            }
        }
    }
}

crate::simd::avx2_or_plain! {
    fn run_conv(k: &ConvKernel, x: &[i64], out: &mut [i64], s: &mut Scratch, stats: &mut LayerStats) {
        k.run_impl(x, out, s, stats)
    }
}

impl Kernel for ConvKernel {
    fn run(&self, inputs: &[&[i64]], out: &mut [i64], s: &mut Scratch, stats: &mut LayerStats) {
        run_conv(self, inputs[0], out, s, stats)
    }

    fn engine(&self) -> String {
        match &self.engine {
            Engine::Direct8 { .. } => "exact u8×i8 direct (VNNI)".into(),
            Engine::Direct16 { blocks } if blocks.len() == 1 => "exact i16 direct".into(),
            Engine::Direct16 { blocks } => format!("exact i16 direct, {} tap blocks", blocks.len()),
            Engine::I32 => "exact i32 GEMM".into(),
            Engine::Lanes(_) => "tap by tap on i32 lanes".into(),
            Engine::Stepwise => "tap by tap".into(),
        }
    }

    fn stats_frac(&self) -> i32 {
        self.accum.frac()
    }
}
