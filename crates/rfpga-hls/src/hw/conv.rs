//! `conv` (hls/rfpga_conv.h): its instantiation, schedule and resources.
//!
//! Structure: the padded input walked slot by slot, (H + 2P)(W + 2P) slots; a slot inside the
//! image reads one pixel into a K-row line buffer (K·W words of the input type per channel,
//! partitioned by channel); a slot completing a window computes one output pixel in a loop
//! pipelined at II = 1 over COUT/UNROLL lane groups × K·K·CIN taps (UNROLL multiply-accumulate
//! lanes; weights `[COUT][K·K·CIN]` and biases partitioned UNROLL ways, cyclic over output
//! channels), then writes it.

use rfpga_core::frozen::{Conv, Port};


use super::resources::{accumulator, memory, memory_as, multiplier, select, stage_control, DspKind, Resources};
use super::{Op, Process};
use crate::{ConvCfg, Storage};

/// Cycles the MAC loop adds to its trip count per output pixel: its pipeline's fill (line
/// buffer read, operand select, multiply, accumulate) and the loop's entry and exit. An
/// assumption (docs/estimate.md), not a synthesis result.
pub const MAC_PIPELINE_DEPTH: u32 = 8;

/// The convolution's per-image schedule: per slot, a read when the slot is inside the image,
/// one cycle, and when the slot completes a window the MAC loop and the output write.
pub fn schedule(h: usize, w: usize, k: usize, stride: usize, groups: usize, taps: usize) -> Vec<Op> {
    let pad = k / 2;
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    let mac = (groups * taps) as u32 + MAC_PIPELINE_DEPTH;
    let mut ops = Vec::with_capacity(hp * wp * 3);
    for sy in 0..hp {
        for sx in 0..wp {
            let inside = sy >= pad && sy < h + pad && sx >= pad && sx < w + pad;
            let window = sy + 1 >= k && sx + 1 >= k && (sy + 1 - k) % stride == 0 && (sx + 1 - k) % stride == 0;
            if inside {
                ops.push(Op::Read(0));
            }
            if window {
                ops.push(Op::Wait(1 + mac));
                ops.push(Op::Write(0));
            } else {
                ops.push(Op::Wait(1));
            }
        }
    }
    ops
}

/// What the code generator instantiates and the estimate counts for convolution `l`.
pub fn process(l: &Conv, cfg: &ConvCfg, input: &Port, storage: Storage, dsp: DspKind, call_args: (&str, &str)) -> Process {
    let [h, w, cin] = input.shape;
    let (k, cout, p) = (l.kernel as u64, l.out_ch as u64, cfg.unroll as u64);
    let taps = k * k * cin as u64;
    let in_w = input.format.width;
    let weights = memory_as(storage, cout * taps, l.weight.width as u64, p);
    let line_buffer = memory(k * w as u64 * cin as u64, in_w as u64, cin as u64);
    let biases = memory(cout, l.bias.width as u64, p);
    let mut lane = multiplier(in_w, l.weight.width, cfg.mul_in_dsp, dsp) + accumulator(l.accum.width);
    lane.lut += l.accum.width as u64; // the conversion of the product into the accumulator
    // ReLU and the conversion to the output type, per lane.
    lane += Resources::logic((l.accum.width + l.output.width) as u64, 0);
    let lanes = Resources { dsp: lane.dsp * p, ff: lane.ff * p, lut: lane.lut * p, ..Default::default() };
    // The output pixel register, and the operand select from the line buffer (CIN:1 per bit).
    let output = Resources::logic(0, l.output.width as u64 * cout);
    let select = Resources::logic(select(in_w as u64, cin as u64), in_w as u64);
    let res = weights + line_buffer + biases + lanes + output + select + stage_control();
    let groups = cout / p;
    let ops = schedule(h, w, l.kernel, l.stride, groups as usize, taps as usize);
    let m = multiplier(in_w, l.weight.width, cfg.mul_in_dsp, dsp);
    let mult = if m.dsp > 0 { format!("{} DSP", m.dsp) } else { format!("{} LUT", m.lut) };
    let detail = format!(
        "{p} lanes ({in_w}×{} mult: {mult} each), {} cycles/pixel; weights ({storage:?}) {} BRAM {} LUT; line buffer {} BRAM {} LUT",
        l.weight.width,
        groups * taps + MAC_PIPELINE_DEPTH as u64 + 1,
        weights.bram_18k,
        weights.lut,
        line_buffer.bram_18k,
        line_buffer.lut
    );
    let id = &cfg.id;
    let call = format!("rfpga::conv2d<{id}_cfg>({}, {}, w_{id}, b_{id})", call_args.0, call_args.1);
    Process { name: l.name.clone(), kind: "conv", call, inputs: vec![], outputs: vec![], ops, resources: res, detail }
}

/// The schedule of the convolution as the layer library had it before the stall-free one, kept
/// only to compare the two in `rfpga dataflow --old-library` (docs/estimate.md): each input
/// row read in a burst (a pixel per cycle), then every output row it completes, each output
/// pixel taking a bias loop and an output loop of (COUT/UNROLL)² cycles (II = COUT/UNROLL
/// with UNROLL lanes), the taps at II = COUT/UNROLL, and 8 cycles of fill — during which the
/// stage reads nothing.
pub fn legacy_schedule(h: usize, w: usize, k: usize, stride: usize, groups: usize, taps: usize) -> Vec<Op> {
    let (pad, oh, ow) = (k / 2, (h + 2 * (k / 2) - k) / stride + 1, (w + 2 * (k / 2) - k) / stride + 1);
    let pixel = (2 * groups * groups + taps * groups) as u32 + MAC_PIPELINE_DEPTH;
    let mut ops = Vec::new();
    let mut oy = 0;
    for r in 0..h {
        for _ in 0..w {
            ops.push(Op::Read(0));
            ops.push(Op::Wait(1));
        }
        while oy < oh && (oy * stride + pad).min(h - 1) <= r {
            for _ in 0..ow {
                ops.push(Op::Wait(pixel));
                ops.push(Op::Write(0));
            }
            oy += 1;
        }
    }
    ops
}
