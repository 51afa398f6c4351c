//! `dense` (hls/rfpga_dense.h): one multiply-accumulate per cycle over OUT·IN products (one
//! loop pipelined at II = 1), weights in one memory.

use rfpga_core::frozen::{Dense, Port};

use super::resources::{accumulator, memory, multiplier, stage_control, DspKind};
use super::{Op, Process};

/// Cycles the MAC loop adds to its trip count (fill, entry, exit): an assumption.
pub const MAC_PIPELINE_DEPTH: u32 = 8;

pub fn schedule(inputs: usize, outputs: usize) -> Vec<Op> {
    vec![Op::Read(0), Op::Wait(1 + (inputs * outputs) as u32 + MAC_PIPELINE_DEPTH), Op::Write(0)]
}

pub fn process(l: &Dense, id: &str, input: &Port, in_dsp: bool, dsp: DspKind, call_args: (&str, &str)) -> Process {
    let (i, o) = (l.in_features as u64, l.out_features as u64);
    let weights = memory(i * o, l.weight.width as u64, 1) + memory(o, l.bias.width as u64, 1);
    let res = weights + multiplier(input.format.width, l.weight.width, in_dsp, dsp) + accumulator(l.accum.width) + stage_control();
    Process {
        name: l.name.clone(),
        kind: "dense",
        call: format!("rfpga::dense<{id}_cfg>({}, {}, w_{id}, b_{id})", call_args.0, call_args.1),
        inputs: vec![],
        outputs: vec![],
        ops: schedule(l.in_features, l.out_features),
        resources: res,
        detail: format!("1 lane, {} weights", i * o),
    }
}
