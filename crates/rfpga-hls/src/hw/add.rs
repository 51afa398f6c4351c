//! `add` (hls/rfpga_add.h): `lanes` channels per cycle. With every channel (the default) one
//! pixel per cycle: a loop pipelined at II = 1 reading both inputs, C sums in parallel — an
//! adder of the exact sum's width, its one conversion into `sum` (ReLU) and the conversion into
//! the output. Folded (`lanes` < C): C / lanes cycles per pixel, both input pixels held in
//! registers and each lane's operands picked by a select. The skip FIFO in front of it is a
//! stream (`hw/fifo.rs`).

use rfpga_core::frozen::{Add, Port};

use super::resources::{select, stage_control, Resources};
use super::{Op, Process, PIPELINE_DRAIN};

/// The channels per cycle of an add over `channels` channels when `asked` (`None`: all of
/// them); `asked` must divide `channels` (or reach it).
pub fn lanes(asked: Option<usize>, channels: usize) -> Result<usize, String> {
    match asked {
        None => Ok(channels),
        Some(k) if k >= channels => Ok(channels),
        Some(k) if k >= 1 && channels % k == 0 => Ok(k),
        Some(k) => Err(format!("expected lanes that divide its {channels} channels, found {k}")),
    }
}

/// One image's schedule: a loop pipelined at II = 1 over pixels × groups; both inputs read in
/// a pixel's first cycle, the output written in its last. Assumed (not checked by synthesis):
/// Vitis schedules both reads in one pipeline stage, so neither is taken before both streams
/// have a pixel. The model reads the input that arrives last first (not the skip FIFO: the
/// split fills it before the convolutions can answer), which gives both reads that same cycle.
fn schedule(pixels: usize, groups: usize, skip_input: Option<u8>) -> Vec<Op> {
    let order = if skip_input == Some(0) { [Op::Read(1), Op::Read(0)] } else { [Op::Read(0), Op::Read(1)] };
    let mut ops = Vec::with_capacity(pixels * 5 + 1);
    for _ in 0..pixels {
        ops.extend(order);
        if groups > 1 {
            ops.push(Op::Wait(groups as u32 - 1));
        }
        ops.extend([Op::Write(0), Op::Wait(1)]);
    }
    ops.push(Op::Wait(PIPELINE_DRAIN));
    ops
}

/// `skip_input`: which input (0 or 1) the skip FIFO feeds, if any.
pub fn process(l: &Add, a: &Port, b: &Port, lanes: usize, skip_input: Option<u8>, call: String) -> Process {
    let [h, w, c] = a.shape;
    let groups = c / lanes;
    let (c, k) = (c as u64, lanes as u64);
    // The analysis checked that the exact sum type exists (≤ 64 bits).
    let e = a.format.try_sum(&b.format).unwrap_or(l.sum);
    let exact = e.width as u64;
    // Converting into `sum` costs logic (rounding, saturation) only when `sum` cannot hold
    // every exact sum (with `--sum auto` it can: the conversion is wiring).
    let s = l.sum;
    let lossless = s.frac() >= e.frac() && (if s.signed == e.signed { s.int >= e.int } else { s.signed && s.int > e.int });
    let convert = if lossless { 0 } else { s.width as u64 };
    let out_w = l.output.width as u64;
    let operands = (a.format.width + b.format.width) as u64;
    let sums = Resources::logic(k * (exact + convert + out_w), 0);
    let res = if groups == 1 {
        // The output pixel's register.
        sums + Resources::logic(0, c * out_w)
    } else {
        // Both input pixels and the output pixel in registers, each lane's operands picked
        // from `groups` channels, and a write enable per group.
        sums + Resources::logic(k * select(operands, groups as u64) + groups as u64, c * (operands + out_w))
    } + stage_control();
    let detail = if groups == 1 {
        format!("{c} adders of {exact} bits, into {} bits", l.sum.width)
    } else {
        format!("{k} adders of {exact} bits, into {} bits, {groups} cycles/pixel", l.sum.width)
    };
    Process { name: l.name.clone(), kind: "add", call, inputs: vec![], outputs: vec![], ops: schedule(h * w, groups, skip_input), resources: res, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_divide_the_channels() {
        assert_eq!(lanes(None, 64), Ok(64));
        assert_eq!(lanes(Some(128), 64), Ok(64));
        assert_eq!(lanes(Some(4), 16), Ok(4));
        assert!(lanes(Some(3), 16).is_err());
        assert!(lanes(Some(0), 16).is_err());
    }

    #[test]
    fn folded_schedule_by_hand() {
        // Two pixels, 4 groups: read both, 3 more cycles, write in the 4th; then the drain.
        let ops = schedule(2, 4, Some(1));
        let one = [Op::Read(0), Op::Read(1), Op::Wait(3), Op::Write(0), Op::Wait(1)];
        assert_eq!(&ops[..5], &one);
        assert_eq!(&ops[5..10], &one);
        assert_eq!(ops[10], Op::Wait(PIPELINE_DRAIN));
        assert_eq!(ops.len(), 11);
        // Unfolded: what pixel_loop gives an II = 1 loop reading both and writing one.
        assert_eq!(schedule(3, 1, None), super::super::pixel_loop(3, &[0, 1], |_| vec![0]));
        // The skip FIFO on input 0: the other input is read first.
        assert_eq!(&schedule(1, 2, Some(0))[..2], &[Op::Read(1), Op::Read(0)]);
    }
}
