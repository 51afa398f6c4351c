//! `dense` (hls/rfpga_dense.h): one multiply-accumulate per cycle (inner loop pipelined at
//! II = 1), weights in one memory.

use rfpga_core::frozen::{Dense, Port};

use super::Cost;
use crate::resources::{accumulator, memory, multiplier, stage_control, DspKind};

pub fn estimate(l: &Dense, input: &Port, dsp: DspKind) -> Cost {
    let (i, o) = (l.in_features as u64, l.out_features as u64);
    let weights = memory(i * o, l.weight.width as u64, 1) + memory(o, l.bias.width as u64, 1);
    let res = weights + multiplier(input.format.width, l.weight.width, rfpga_hls::Multipliers::Auto.in_dsp(input.format.width, l.weight.width), dsp) + accumulator(l.accum.width) + stage_control();
    Cost { resources: res, cycles: i * o, detail: format!("1 lane, {} weights", i * o) }
}
