//! `conv`: k×k convolution, stride s, zero padding k/2, folded BN bias, optional ReLU.
//!
//! Order (shared with the HLS template): `acc = bias[co]` converted into `accum`; for each tap in
//! (ky, kx, ci) order `acc += x·w` (exact product, one conversion into `accum`); ReLU; conversion
//! into `output`. Padding taps add 0, which leaves any accumulator unchanged, so they are skipped.
//!
//! Fast paths, chosen when the formats prove them bit-identical: when no tap can round
//! (accum has at least the product's fraction bits) and no partial sum can leave the
//! accumulator's range (bound from the actual weights and the input format's range) — or the
//! accumulator wraps, which is modular arithmetic — the tap order does not matter, and the
//! convolution is an integer GEMM over im2col patches: i16×i16→i32 (AVX2 `vpmaddwd`) when the
//! bound is below 2^31, i32×i32→i64 otherwise. Everything else runs tap by tap.

use anyhow::{ensure, Result};
use rfpga_core::fixed::{FixedFormat, Overflow};
use rfpga_core::frozen::{Conv, Port};

use super::{fits_i16, fits_i32, max_abs, Kernel, LayerStats, Scratch};
use crate::convert::Conversion;
use crate::gemm::{gemm_i16, gemm_i32, K_ALIGN};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    I16,
    I32,
    Stepwise,
}

pub struct ConvKernel {
    in_shape: [usize; 3],
    out_shape: [usize; 3],
    k: usize,
    stride: usize,
    pad: usize,
    /// Reduction length k·k·cin, and padded to K_ALIGN for the i16 kernel.
    taps: usize,
    kp: usize,
    engine: Engine,
    /// Weights as [co][ky][kx][ci], raw.
    w: Vec<i64>,
    w16: Vec<i16>,
    w32: Vec<i32>,
    bias_acc: Vec<i64>,
    accum: FixedFormat,
    prod_frac: i32,
    /// accum.frac − prod_frac, for the fast paths (≥ 0).
    shift: u32,
    /// The accumulator may overflow (fast paths: only with AP_WRAP).
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
        let kp = taps.div_ceil(K_ALIGN) * K_ALIGN;
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
        let sum_abs_w: Vec<i128> = wt.chunks(taps).map(|r| r.iter().map(|&v| (v as i128).abs()).sum()).collect();
        let dot_bound = sum_abs_w.iter().copied().max().unwrap_or(0) * max_abs(&x);
        let shift = l.accum.frac() - prod_frac;
        let exact_taps = (0..62).contains(&shift);
        let (acc_bound, may_overflow) = if exact_taps {
            let b = (0..cout).map(|co| (bias_acc[co] as i128).abs() + (sum_abs_w[co] * max_abs(&x) << shift)).max().unwrap_or(0);
            (b, !l.accum.signed || b > l.accum.max_raw() as i128)
        } else {
            (i128::MAX, true)
        };
        let fast = allow_fast && exact_taps && (!may_overflow || l.accum.overflow == Overflow::Wrap) && acc_bound < 1 << 62 && (dot_bound << shift) < 1 << 62;
        let engine = if !fast {
            Engine::Stepwise
        } else if fits_i16(&x) && fits_i16(&l.weight) && dot_bound < 1 << 31 {
            Engine::I16
        } else if fits_i32(&x) && fits_i32(&l.weight) {
            Engine::I32
        } else {
            Engine::Stepwise
        };
        let pad_row = |r: &[i64]| r.iter().copied().chain(std::iter::repeat(0).take(kp - taps)).collect::<Vec<_>>();
        let (w16, w32) = match engine {
            Engine::I16 => (wt.chunks(taps).flat_map(|r| pad_row(r)).map(|v| v as i16).collect(), vec![]),
            Engine::I32 => (vec![], wt.iter().map(|&v| v as i32).collect()),
            Engine::Stepwise => (vec![], vec![]),
        };
        Ok(ConvKernel {
            in_shape: [h, w, cin],
            out_shape: [h.div_ceil(l.stride), w.div_ceil(l.stride), cout],
            k,
            stride: l.stride,
            pad: k / 2,
            taps,
            kp,
            engine,
            w: wt,
            w16,
            w32,
            bias_acc,
            accum: l.accum,
            prod_frac,
            shift: shift.max(0) as u32,
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

    /// im2col: one row of `row_len` values per output pixel, taps in (ky, kx, ci) order.
    fn patches<T: Copy + Default>(&self, x: &[i64], row_len: usize, buf: &mut Vec<T>, cast: impl Fn(i64) -> T) {
        let [oh, ow, _] = self.out_shape;
        let cin = self.in_shape[2];
        buf.clear();
        buf.resize(oh * ow * row_len, T::default());
        for oy in 0..oh {
            for ox in 0..ow {
                let row = &mut buf[(oy * ow + ox) * row_len..][..row_len];
                for ky in 0..self.k {
                    for kx in 0..self.k {
                        if let Some(s) = self.source(oy, ox, ky, kx) {
                            let d = (ky * self.k + kx) * cin;
                            for (o, &v) in row[d..d + cin].iter_mut().zip(&x[s..s + cin]) {
                                *o = cast(v);
                            }
                        }
                    }
                }
            }
        }
    }

    #[inline]
    fn finish(&self, co: usize, dot: i64, stats: &mut LayerStats) -> i64 {
        let mut acc = self.bias_acc[co] + (dot << self.shift);
        if self.may_overflow {
            acc = self.accum.from_bits(acc as u64);
        }
        if self.relu {
            acc = acc.max(0);
        }
        stats.convert(&self.out, acc)
    }
}

impl ConvKernel {
    /// [`ConvKernel::finish`] on every GEMM result, pixel-major.
    fn finish_all<D: Copy + Into<i64>>(&self, dots: &[D], out: &mut [i64], stats: &mut LayerStats) {
        let cout = self.out_shape[2];
        for (p, dot) in out.chunks_mut(cout).zip(dots.chunks(cout)) {
            for (co, (o, &d)) in p.iter_mut().zip(dot).enumerate() {
                *o = self.finish(co, d.into(), stats);
            }
        }
    }
}

impl Kernel for ConvKernel {
    fn run(&self, inputs: &[&[i64]], out: &mut [i64], s: &mut Scratch, stats: &mut LayerStats) {
        let x = inputs[0];
        let [oh, ow, cout] = self.out_shape;
        let pixels = oh * ow;
        match self.engine {
            Engine::I16 => {
                self.patches(x, self.kp, &mut s.a16, |v| v as i16);
                s.d32.resize(pixels * cout, 0);
                gemm_i16(&s.a16, &self.w16, self.kp, &mut s.d32);
                self.finish_all(&s.d32, out, stats);
            }
            Engine::I32 => {
                self.patches(x, self.taps, &mut s.a32, |v| v as i32);
                s.d64.resize(pixels * cout, 0);
                gemm_i32(&s.a32, &self.w32, self.taps, &mut s.d64);
                self.finish_all(&s.d64, out, stats);
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

    fn engine(&self) -> String {
        match self.engine {
            Engine::I16 => "exact i16 GEMM".into(),
            Engine::I32 => "exact i32 GEMM".into(),
            Engine::Stepwise => "tap by tap".into(),
        }
    }

    fn stats_frac(&self) -> i32 {
        self.accum.frac()
    }
}
