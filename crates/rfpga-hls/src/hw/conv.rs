//! `conv` (hls/rfpga_conv.h): its instantiation, schedule and resources.
//!
//! Structure: the padded input walked slot by slot, (H + 2P)(W + 2P) slots; a slot inside the
//! image reads one pixel as CIN/IN_G words (a loop pipelined at II = 1) into a K-row line buffer
//! in F = max(SIMD, IN_G) banks; a slot completing a window computes one output pixel in a loop
//! pipelined at II = 1 over COUT/PE groups × K·K·CIN/SIMD steps (PE·SIMD multipliers, one
//! packed weight word per cycle), writing each group's PE results as one word.

use rfpga_core::frozen::{Conv, Port};

use super::resources::{bram_blocks, control, conversion, memory, multiplier, rom, select, DspKind, Resources};
use super::{Op, Process};
use crate::{ConvCfg, Storage};

/// Cycles the MAC loop adds to its trip count per output pixel: its pipeline's fill (line
/// buffer and weight reads, operand select, multiply, the SIMD additions, accumulate, output
/// conversion) and the loop's entry and exit. At 10 ns: 8 register stages plus ~20 ns of logic
/// re-timed into stages, plus 2 ns per adder level of the SIMD chain; faster clocks need more
/// stages for the same logic. An assumption (docs/explanation/estimate-constants.md: the review put the
/// per-output overhead at 9-13 cycles at 10 ns), not a synthesis result.
pub fn mac_pipeline_depth(clock_ns: f64, simd: usize) -> u32 {
    let levels = (simd.max(1) as f64).log2().ceil();
    8 + ((20.0 + 2.0 * levels) / clock_ns).ceil() as u32
}

/// Cycles a word loop of more than one iteration adds (entry and exit).
pub const WORD_LOOP_OVERHEAD: u32 = 2;

/// The convolution's per-image schedule: per slot inside the image, its `words` reads (a
/// cycle each, plus the loop's overhead when more than one); per slot that completes a window
/// (one cycle if it read nothing) the MAC loop: the first group's word leaves after `steps`
/// cycles and the pipeline's `depth`, each later one `steps` cycles after the previous; any
/// other slot one cycle.
pub fn schedule(h: usize, w: usize, k: usize, stride: usize, words: usize, groups: usize, steps: usize, depth: u32) -> Vec<Op> {
    let pad = k / 2;
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    let mut ops = Vec::with_capacity(hp * wp * (2 * words + 2) + h * w * 2 * groups);
    for sy in 0..hp {
        for sx in 0..wp {
            let inside = sy >= pad && sy < h + pad && sx >= pad && sx < w + pad;
            let window = sy + 1 >= k && sx + 1 >= k && (sy + 1 - k) % stride == 0 && (sx + 1 - k) % stride == 0;
            if inside {
                for _ in 0..words {
                    ops.push(Op::Read(0));
                    ops.push(Op::Wait(1));
                }
                if words > 1 {
                    ops.push(Op::Wait(WORD_LOOP_OVERHEAD));
                }
            }
            if window {
                ops.push(Op::Wait(if inside { 0 } else { 1 }));
                for g in 0..groups {
                    ops.push(Op::Wait(steps as u32 + if g == 0 { depth } else { 0 }));
                    ops.push(Op::Write(0));
                }
            } else if !inside {
                ops.push(Op::Wait(1));
            }
        }
    }
    ops.retain(|op| *op != Op::Wait(0));
    ops
}

/// Whether a convolution's SIMD additions can run as a tree in one cycle: its accumulator wraps
/// and keeps every fraction bit of the products, so `acc += x·w` is a plain integer addition
/// (the `auto` accumulator is so). One that rounds or saturates makes each addition a
/// conversion on the loop-carried path: SIMD > 1 is refused for it.
pub fn simd_ok(accum: &rfpga_core::fixed::FixedFormat, input: &rfpga_core::fixed::FixedFormat, weight: &rfpga_core::fixed::FixedFormat) -> bool {
    accum.overflow == rfpga_core::fixed::Overflow::Wrap && accum.frac() >= input.frac() + weight.frac()
}

/// The line buffer's banks: SIMD reads and IN_G writes each touch distinct banks.
pub fn banks(simd: usize, in_g: usize) -> usize {
    simd.max(in_g)
}

/// What the code generator instantiates and the estimate counts for convolution `l`.
pub fn process(l: &Conv, cfg: &ConvCfg, input: &Port, storage: Storage, dsp: DspKind, clock_ns: f64, call_args: (&str, &str)) -> Process {
    let [h, w, cin] = input.shape;
    let (k, cout) = (l.kernel as u64, l.out_ch as u64);
    let (pe, simd) = (cfg.pe as u64, cfg.simd as u64);
    let taps = k * k * cin as u64;
    let (groups, steps) = (cout / pe, taps / simd);
    let in_w = input.format.width as u64;
    // One packed word of PE·SIMD weights per cycle, and one of PE biases per group.
    let weights = rom(storage, groups * steps, pe * simd * l.weight.width as u64);
    let biases = rom(Storage::Auto, groups, pe * l.bias.width as u64);
    let f = banks(cfg.simd, cfg.in_g) as u64;
    let line_buffer = memory(k * w as u64 * cin as u64, in_w, f);
    // Per PE lane: SIMD multipliers, SIMD additions of the accumulator's width (the chain), the
    // accumulator register, ReLU and the conversion into the output.
    let products = multiplier(input.format.width, l.weight.width, cfg.mul_in_dsp, dsp).times(simd);
    let adds = Resources::logic(simd * l.accum.width as u64, l.accum.width as u64);
    let out = Resources::logic(conversion(&l.accum, &l.output) + if l.relu { l.output.width as u64 / 2 } else { 0 }, l.output.width as u64);
    let lanes = (products + adds + out).times(pe);
    // The operand select from the line buffer: each of the SIMD operands picks one of F/SIMD
    // banks, per bit; and each bank's write picks one of F/IN_G word positions.
    let operand_select = Resources::logic(select(in_w * simd, f / simd) + select(in_w * f, f / cfg.in_g as u64), in_w * simd);
    let res = weights + biases + line_buffer + lanes + operand_select + control("conv");
    let depth = mac_pipeline_depth(clock_ns, cfg.simd);
    let words = cin / cfg.in_g;
    let ops = schedule(h, w, l.kernel, l.stride, words, groups as usize, steps as usize, depth);
    let m = multiplier(input.format.width, l.weight.width, cfg.mul_in_dsp, dsp);
    let mult = if m.dsp > 0 { format!("{} DSP", m.dsp) } else { format!("{} LUT", m.lut) };
    let detail = format!(
        "PE {pe} × SIMD {simd} ({} mult: {mult} each), {} cycles/output pixel; weights {}×{} bits ({storage:?}) {} BRAM {} LUT; line buffer in {f} banks {} BRAM {} LUT",
        pe * simd,
        groups * steps + depth as u64 + 1,
        groups * steps,
        pe * simd * l.weight.width as u64,
        weights.bram_18k,
        weights.lut,
        line_buffer.bram_18k,
        line_buffer.lut
    );
    let call = format!("{}_layer({}, {})", cfg.id, call_args.0, call_args.1);
    Process { name: l.name.clone(), kind: "conv", call, inputs: vec![], outputs: vec![], ops, resources: res, detail }
}

/// BRAM_18K of a convolution's packed weight ROM in BRAM (for tests and docs).
pub fn weight_bram(cout: usize, taps: usize, pe: usize, simd: usize, weight_bits: u32) -> u64 {
    bram_blocks(((cout / pe) * (taps / simd)) as u64, (pe * simd) as u64 * weight_bits as u64)
}

/// The schedule of the convolution as the layer library had it before the stall-free one, kept
/// only to compare the two in `rfpga dataflow --old-library` (docs/explanation/estimate.md): each input
/// row read in a burst (a pixel per cycle), then every output row it completes, each output
/// pixel taking a bias loop and an output loop of (COUT/UNROLL)² cycles (II = COUT/UNROLL
/// with UNROLL lanes), the taps at II = COUT/UNROLL, and 8 cycles of fill — during which the
/// stage reads nothing.
pub fn legacy_schedule(h: usize, w: usize, k: usize, stride: usize, groups: usize, taps: usize) -> Vec<Op> {
    let (pad, oh, ow) = (k / 2, (h + 2 * (k / 2) - k) / stride + 1, (w + 2 * (k / 2) - k) / stride + 1);
    let pixel = (2 * groups * groups + taps * groups) as u32 + 8;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cycles(ops: &[Op]) -> u64 {
        ops.iter().map(|op| if let Op::Wait(n) = op { *n as u64 } else { 0 }).sum()
    }

    /// Cycles per image of a 3×3 convolution over 8×8×16 → 8×8×16 (stride 1, pad 1: 10×10
    /// slots, 64 inside, 64 windows), summed by hand at several (PE, SIMD) pairs.
    #[test]
    fn conv_cycles_by_hand() {
        let (h, w, k, cin, cout) = (8, 8, 3, 16, 16);
        let taps = k * k * cin; // 144
        for (pe, simd, in_g) in [(1, 1, 16), (4, 1, 16), (4, 4, 4), (16, 16, 16), (2, 8, 1)] {
            let (groups, steps) = (cout / pe, taps / simd);
            let depth = mac_pipeline_depth(10.0, simd);
            let words = cin / in_g;
            let ops = schedule(h, w, k, 1, words, groups, steps, depth);
            // 36 padding slots: a cycle each. 64 inside slots: `words` cycles (+2 when > 1).
            // 64 windows, all on inside slots: groups·steps + depth each.
            let read = words as u64 + if words > 1 { 2 } else { 0 };
            let want = 36 + 64 * read + 64 * ((groups * steps) as u64 + depth as u64);
            assert_eq!(cycles(&ops), want, "PE {pe} SIMD {simd} IN_G {in_g}");
            assert_eq!(ops.iter().filter(|o| **o == Op::Read(0)).count(), 64 * words);
            assert_eq!(ops.iter().filter(|o| **o == Op::Write(0)).count(), 64 * groups);
        }
        // PE 1 × SIMD 1: 144·16 = 2,304 cycles of MACs per output pixel; PE 4 × SIMD 4: 144.
        assert_eq!(mac_pipeline_depth(10.0, 1), 10);
        assert_eq!(mac_pipeline_depth(10.0, 16), 11);
        assert_eq!(mac_pipeline_depth(5.0, 1), 12);
    }

    /// Stride 2 over 8×8 with a 3×3 kernel: windows on every other slot from (2, 2) of the 10×10
    /// padded grid: 4 × 4 = 16 outputs, the last row and column of windows on padding slots.
    #[test]
    fn strided_conv_writes_each_output_once() {
        let ops = schedule(8, 8, 3, 2, 1, 2, 9, 10);
        assert_eq!(ops.iter().filter(|o| **o == Op::Write(0)).count(), 16 * 2);
        assert_eq!(ops.iter().filter(|o| **o == Op::Read(0)).count(), 64);
    }

    /// The packed weight ROM: COUT/PE · TAPS/SIMD words of PE·SIMD·8 bits, in the cheapest
    /// BRAM_18K shape — capacity, not banks.
    #[test]
    fn packed_weight_bram_by_hand() {
        // 16×144 weights at PE 1 × SIMD 1: 2,304 words of 8 bits → 9-wide shape, ⌈2304/2048⌉ = 2.
        assert_eq!(weight_bram(16, 144, 1, 1, 8), 2);
        // PE 4 × SIMD 4: 144 words of 128 bits → 36-wide shape: ⌈128/36⌉ = 4 × ⌈144/512⌉ = 1.
        assert_eq!(weight_bram(16, 144, 4, 4, 8), 4);
        // 64×576 weights (36,864 bytes) at PE 4 × SIMD 4: 2,304 words of 128 bits → 4 × 5 = 20
        // (a cyclic partition by 16 would take 16 banks of 2,304 bytes: 16 × 2 = 32).
        assert_eq!(weight_bram(64, 576, 4, 4, 8), 20);
        // PE 8 × SIMD 2: 2,304 words of 128 bits: the same 20.
        assert_eq!(weight_bram(64, 576, 8, 2, 8), 20);
        // PE 1 × SIMD 2: 18,432 words of 16 bits → 18-wide shape, ⌈18432/1024⌉ = 18.
        assert_eq!(weight_bram(64, 576, 1, 2, 8), 18);
    }
}
