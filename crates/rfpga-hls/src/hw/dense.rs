//! `dense` (hls/rfpga_dense.h): one multiply-accumulate per cycle over OUT·IN products (one
//! loop pipelined at II = 1), weights in one ROM.

use rfpga_core::frozen::{Dense, Port};

use super::resources::{accumulator, control, conversion, multiplier, rom, DspKind, Resources};
use super::{Op, Process};
use crate::Storage;

pub fn schedule(inputs: usize, outputs: usize, depth: u32) -> Vec<Op> {
    vec![Op::Read(0), Op::Wait(1 + (inputs * outputs) as u32 + depth), Op::Write(0)]
}

pub fn process(l: &Dense, id: &str, input: &Port, in_dsp: bool, dsp: DspKind, clock_ns: f64, call_args: (&str, &str)) -> Process {
    let (i, o) = (l.in_features as u64, l.out_features as u64);
    let weights = rom(Storage::Auto, i * o, l.weight.width as u64) + rom(Storage::Auto, o, l.bias.width as u64);
    let out = Resources::logic(conversion(&l.accum, &l.output), o * l.output.width as u64);
    let res = weights + multiplier(input.format.width, l.weight.width, in_dsp, dsp) + accumulator(l.accum.width) + out + control("dense");
    Process {
        name: l.name.clone(),
        kind: "dense",
        call: format!("{id}_layer({}, {})", call_args.0, call_args.1),
        inputs: vec![],
        outputs: vec![],
        ops: schedule(l.in_features, l.out_features, super::conv::mac_pipeline_depth(clock_ns, 1)),
        resources: res,
        detail: format!("1 lane, {} weights", i * o),
    }
}
