//! The AXI-stream ports (hls/rfpga_common.h: `axis_to_pixels`, `pixels_to_axis`): one word per
//! input pixel in, one word per logit out with TLAST on the last, one word per cycle.

use super::resources::{control, Resources};
use super::{pixel_loop, Op, Process, PIPELINE_DRAIN};

/// The AXI-stream word width for `bits` of payload: a power of two of at least 8 bits (what an
/// AXI DMA's stream port takes).
pub fn word_bits(bits: u32) -> u32 {
    bits.max(8).next_power_of_two()
}

pub fn input(pixels: usize, word: u32, call: String) -> Process {
    Process {
        name: "axis_in".into(),
        kind: "axis",
        call,
        inputs: vec![],
        outputs: vec![],
        ops: pixel_loop(pixels, &[0], |_| vec![0]),
        resources: control("axis") + Resources::logic(0, word as u64),
        detail: format!("{pixels} words of {word} bits per image"),
    }
}

pub fn output(classes: usize, word: u32, call: String) -> Process {
    let mut ops = vec![Op::Read(0)];
    for _ in 0..classes {
        ops.push(Op::Write(0));
        ops.push(Op::Wait(1));
    }
    ops.push(Op::Wait(PIPELINE_DRAIN));
    Process {
        name: "axis_out".into(),
        kind: "axis",
        call,
        inputs: vec![],
        outputs: vec![],
        ops,
        resources: control("axis") + Resources::logic(word as u64, word as u64),
        detail: format!("{classes} words of {word} bits per image, TLAST on the last"),
    }
}
