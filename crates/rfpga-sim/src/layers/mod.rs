//! One module per layer kind: its simulator kernel, built from the frozen layer and checked
//! against it. Every kernel follows the arithmetic order documented in
//! `rfpga_core::frozen` (the order the generated HLS follows).

pub mod add;
pub mod conv;
pub mod dense;
pub mod pad;
pub mod pool;

use rfpga_core::fixed::{FixedFormat, Overflow};

use crate::convert::Conversion;

/// What a layer saw, over all images simulated: the values it converted into its output format
/// (in units of 2^−frac, before the conversion) and how many of them were out of range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerStats {
    pub values: u64,
    /// Values outside the output format's range (saturated, wrapped or zeroed).
    pub overflows: u64,
    pub min: i64,
    pub max: i64,
    /// The LSB of `min` and `max` is 2^−frac.
    pub frac: i32,
}

impl LayerStats {
    pub fn new(frac: i32) -> Self {
        LayerStats { values: 0, overflows: 0, min: i64::MAX, max: i64::MIN, frac }
    }

    pub fn merge(&mut self, o: &LayerStats) {
        self.values += o.values;
        self.overflows += o.overflows;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// The range seen, as real numbers (None when nothing was seen).
    pub fn range(&self) -> Option<(f64, f64)> {
        let s = 2f64.powi(-self.frac);
        (self.values > 0).then(|| (self.min as f64 * s, self.max as f64 * s))
    }

    /// Converts one value with `c`, recording it.
    #[inline]
    pub fn convert(&mut self, c: &Conversion, v: i64) -> i64 {
        self.values += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        let (r, overflow) = c.apply(v);
        self.overflows += overflow as u64;
        r
    }

    /// [`LayerStats::convert`] on a run of values.
    #[inline(always)]
    pub fn convert_slice(&mut self, c: &Conversion, src: &[i64], dst: &mut [i64]) {
        let (lo, hi, over) = c.apply_slice(src, dst);
        self.values += src.len() as u64;
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        self.overflows += over;
    }
}

/// Reusable buffers of one worker thread.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The zero-padded input of a direct convolution.
    pub x16: Vec<i16>,
    pub x8: Vec<u8>,
    /// Accumulators before the output conversion.
    pub acc: Vec<i64>,
    pub a32: Vec<i32>,
    pub d32: Vec<i32>,
    pub d64: Vec<i64>,
}

/// A layer ready to run on one image: `inputs` are its input ports (HWC, raw values), `out`
/// its output port, already sized.
pub trait Kernel: Send + Sync {
    fn run(&self, inputs: &[&[i64]], out: &mut [i64], scratch: &mut Scratch, stats: &mut LayerStats);
    /// How the kernel computes (for the report): which exact fast path, or step by step.
    fn engine(&self) -> String;
    /// The LSB of the values it converts into its output (for [`LayerStats`]).
    fn stats_frac(&self) -> i32;
}

/// The largest magnitude of any raw value of `f`.
pub fn max_abs(f: &FixedFormat) -> i128 {
    (f.max_raw() as i128).max(-(f.min_raw() as i128))
}

/// Whether every raw value of `f` fits in i16 / i32.
pub fn fits_i16(f: &FixedFormat) -> bool {
    f.min_raw() >= i16::MIN as i64 && f.max_raw() <= i16::MAX as i64
}
pub fn fits_i32(f: &FixedFormat) -> bool {
    f.min_raw() >= i32::MIN as i64 && f.max_raw() <= i32::MAX as i64
}

/// When `acc = bias; acc += x·w` over all taps equals `bias + (Σ x·w << shift)` computed in any
/// order: no tap rounds (the accumulator has at least the product's fraction bits) and no
/// partial sum leaves the accumulator (bound from each output's Σ|w| and the input's largest
/// magnitude), or the accumulator wraps, which is modular. Returns the shift and whether the
/// result must still be wrapped into the accumulator; None when taps must be followed one by one.
pub fn exact_sum(accum: &FixedFormat, prod_frac: i32, bias_acc: &[i64], sum_abs_w: &[i128], max_x: i128) -> Option<(u32, bool)> {
    let shift = accum.frac() - prod_frac;
    if !(0..62).contains(&shift) {
        return None;
    }
    let dot_bound = sum_abs_w.iter().copied().max().unwrap_or(0) * max_x;
    let acc_bound = bias_acc.iter().zip(sum_abs_w).map(|(&b, &s)| (b as i128).abs() + (s * max_x << shift)).max().unwrap_or(0);
    let may_overflow = !accum.signed || acc_bound > accum.max_raw() as i128;
    let ok = (!may_overflow || accum.overflow == Overflow::Wrap) && acc_bound < 1 << 62 && (dot_bound << shift) < 1 << 62;
    ok.then_some((shift as u32, may_overflow))
}
