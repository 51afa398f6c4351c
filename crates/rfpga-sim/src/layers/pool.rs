//! `avg_pool` (global): `s = Σ x` in `sum` (pixel by pixel, per channel), then the value s/n
//! (n a power of two: a shift of the binary point, no arithmetic) converted into `output`.

use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::{AvgPool, Port};

use super::{max_abs, Kernel, LayerStats, Scratch};
use crate::convert::Conversion;

pub struct PoolKernel {
    pixels: usize,
    channels: usize,
    x_frac: i32,
    sum: FixedFormat,
    /// Shift into the sum's LSB when no step can round or overflow.
    exact: Option<u32>,
    out: Conversion,
}

impl PoolKernel {
    pub fn new(l: &AvgPool, input: &Port, allow_fast: bool) -> Self {
        let [h, w, c] = input.shape;
        let n = h * w;
        let log2n = n.trailing_zeros() as i32;
        let sh = l.sum.frac() - input.format.frac();
        let exact = (allow_fast && sh >= 0 && sh < 62 && l.sum.signed && (max_abs(&input.format) * n as i128) << sh <= l.sum.max_raw() as i128)
            .then_some(sh as u32);
        PoolKernel { pixels: n, channels: c, x_frac: input.format.frac(), sum: l.sum, exact, out: Conversion::new(l.sum.frac() + log2n, l.output) }
    }
}

impl Kernel for PoolKernel {
    fn run(&self, inputs: &[&[i64]], out: &mut [i64], _: &mut Scratch, stats: &mut LayerStats) {
        let x = inputs[0];
        for c in 0..self.channels {
            let mut s = 0i64;
            for p in 0..self.pixels {
                let v = x[p * self.channels + c];
                s = match self.exact {
                    Some(sh) => s + (v << sh),
                    None => self.sum.accumulate(s, v as i128, self.x_frac),
                };
            }
            out[c] = stats.convert(&self.out, s);
        }
    }

    fn engine(&self) -> String {
        if self.exact.is_some() { "exact".into() } else { "step by step".into() }
    }

    fn stats_frac(&self) -> i32 {
        self.out.src_frac
    }
}
