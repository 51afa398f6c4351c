//! `conv` (hls/rfpga_conv.h): a K-row line buffer (K·W words of the input type per channel,
//! partitioned by channel), weights `[COUT][K·K·CIN]` partitioned UNROLL ways (cyclic over
//! output channels), UNROLL multiply-accumulate lanes, COUT accumulator registers, biases. Per
//! output pixel: the bias loop and the output loop (COUT/UNROLL cycles each) and one pipelined
//! loop over all K·K·CIN taps at II = COUT/UNROLL (padding taps take their cycle), plus the
//! pipeline's fill; each input row is read once, a pixel per cycle.

use rfpga_core::frozen::{Conv, Port};

use super::Cost;
use crate::resources::{accumulator, memory, memory_as, multiplier, stage_control, DspKind, Resources};

/// Cycles to fill the tap loop's pipeline (read, multiply, accumulate), an assumption.
pub const TAP_PIPELINE_DEPTH: u64 = 8;

pub fn estimate(l: &Conv, input: &Port, out: &Port, unroll: usize, storage: rfpga_hls::Storage, in_dsp: bool, dsp: DspKind) -> Cost {
    let [h, w, cin] = input.shape;
    let (k, cout, p) = (l.kernel as u64, l.out_ch as u64, unroll as u64);
    let taps = k * k * cin as u64;
    let in_w = input.format.width;
    let weights = memory_as(storage, cout * taps, l.weight.width as u64, p);
    let line_buffer = memory(k * w as u64 * cin as u64, in_w as u64, cin as u64);
    let biases = memory(cout, l.bias.width as u64, 1);
    let mut lane = multiplier(in_w, l.weight.width, in_dsp, dsp) + accumulator(l.accum.width);
    lane.lut += l.accum.width as u64; // the conversion of the product into the accumulator
    let lanes = Resources { dsp: lane.dsp * p, ff: lane.ff * p, lut: lane.lut * p, ..Default::default() };
    let accumulators = Resources::logic(0, cout * l.accum.width as u64);
    // ReLU and the conversion to the output type, one channel at a time.
    let output = Resources::logic((l.accum.width + l.output.width) as u64, l.output.width as u64 * cout);
    let res = weights + line_buffer + biases + lanes + accumulators + output + stage_control();
    let ii = cout / p;
    let pixels = (out.shape[0] * out.shape[1]) as u64;
    let cycles = (h * w) as u64 + pixels * (taps * ii + 2 * ii + TAP_PIPELINE_DEPTH);
    let m = multiplier(in_w, l.weight.width, in_dsp, dsp);
    let mult = if m.dsp > 0 { format!("{} DSP", m.dsp) } else { format!("{} LUT", m.lut) };
    let detail = format!(
        "{p} lanes ({in_w}×{} mult: {mult} each), II {ii}; weights ({storage:?}) {} BRAM {} URAM {} LUT; line buffer {} BRAM {} LUT",
        l.weight.width, weights.bram_18k, weights.uram, weights.lut, line_buffer.bram_18k, line_buffer.lut
    );
    Cost { resources: res, cycles, detail }
}
