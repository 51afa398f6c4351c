//! The AXI-stream ports (hls/rfpga_common.h: `axis_to_pixels`, `pixels_to_axis`): one word per
//! input pixel in, one word per logit out, one word per cycle. The input port tells the output
//! port each image's framing (did it end its transfer, was it cut short) through the `frames`
//! stream: one element per image, written after the image's last pixel, read with its logits.

use super::resources::{control, Resources};
use super::{pixel_loop, Op, Process, PIPELINE_DRAIN};

/// The AXI-stream word width for `bits` of payload: a power of two of at least 8 bits (what an
/// AXI DMA's stream port takes).
pub fn word_bits(bits: u32) -> u32 {
    bits.max(8).next_power_of_two()
}

/// The output word for a `bits`-bit logit: one bit wider at least, so the partial-image marker
/// (only the top bit set) is no logit's sign or zero extension.
pub fn output_word_bits(bits: u32) -> u32 {
    word_bits(bits + 1)
}

/// The stream from the input port to the output port: 2 bits (ended the transfer, partial).
pub const FRAMES: &str = "frames";
pub const FRAME_TYPE: &str = "rfpga::frame";
pub const FRAME_BITS: u64 = 2;

/// Inputs: 0 the AXI stream. Outputs: 0 the pixels, 1 the frames.
pub fn input(pixels: usize, word: u32, call: String) -> Process {
    let mut ops = pixel_loop(pixels, &[0], |_| vec![0]);
    ops.push(Op::Write(1));
    Process {
        name: "axis_in".into(),
        kind: "axis",
        call,
        inputs: vec![],
        outputs: vec![],
        ops,
        // The word register, and the TLAST flags and their compare (a few LUTs, in `control`).
        resources: control("axis") + Resources::logic(0, word as u64 + FRAME_BITS),
        detail: format!("{pixels} words of {word} bits per image; TLAST ends a transfer"),
    }
}

/// Inputs: 0 the logits, 1 the frames. Outputs: 0 the AXI stream.
pub fn output(classes: usize, word: u32, call: String) -> Process {
    // The logits and the frame are read in one stage (`rfpga::read_both`).
    let mut ops = vec![Op::Read(0), Op::Read(1)];
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
        // The word's multiplexer (logit or marker) and register.
        resources: control("axis") + Resources::logic(2 * word as u64, word as u64 + FRAME_BITS),
        detail: format!("{classes} words of {word} bits per image, TLAST where the input's was"),
    }
}
