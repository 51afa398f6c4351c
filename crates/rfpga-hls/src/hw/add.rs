//! `add` (hls/rfpga_add.h): words of G channels (the width both inputs arrive in), one per
//! cycle in a loop pipelined at II = 1 — G adders of the exact sum's width, each with its
//! conversion into `sum` (ReLU) and into the output. The skip FIFO in front of it is a stream
//! (`hw/fifo.rs`).

use rfpga_core::frozen::{Add, Port};

use super::resources::{control, conversion, Resources};
use super::{Op, Process, PIPELINE_DRAIN};

/// One image's schedule: `words` iterations, each reading both inputs and writing one word.
/// Both reads happen in one pipeline stage (in RTL neither is taken before both streams have
/// a word); the model reads the input that arrives last first (not the skip FIFO: the split
/// fills it before the convolutions can answer), which gives both reads that same cycle.
fn schedule(words: usize, skip_input: Option<u8>) -> Vec<Op> {
    let order = if skip_input == Some(0) { [Op::Read(1), Op::Read(0)] } else { [Op::Read(0), Op::Read(1)] };
    let mut ops = Vec::with_capacity(words * 4 + 1);
    for _ in 0..words {
        ops.extend(order);
        ops.extend([Op::Write(0), Op::Wait(1)]);
    }
    ops.push(Op::Wait(PIPELINE_DRAIN));
    ops
}

/// `g`: channels per word; `skip_input`: which input (0 or 1) the skip FIFO feeds, if any.
pub fn process(l: &Add, a: &Port, b: &Port, g: usize, skip_input: Option<u8>, call: String) -> Process {
    let [h, w, c] = a.shape;
    // The analysis checked that the exact sum type exists (≤ 64 bits).
    let e = a.format.try_sum(&b.format).unwrap_or(l.sum);
    let out_w = l.output.width as u64;
    let relu = if l.relu { l.sum.width as u64 / 2 } else { 0 };
    let lane = Resources::logic(e.width as u64 + conversion(&e, &l.sum) + relu + conversion(&l.sum, &l.output), out_w);
    let res = lane.times(g as u64) + control("add");
    Process {
        name: l.name.clone(),
        kind: "add",
        call,
        inputs: vec![],
        outputs: vec![],
        ops: schedule(h * w * c / g, skip_input),
        resources: res,
        detail: format!("{g} adders of {} bits, into {} bits", e.width, l.sum.width),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_by_hand() {
        // Two words: read both, write, a cycle each; then the drain.
        let ops = schedule(2, Some(1));
        let one = [Op::Read(0), Op::Read(1), Op::Write(0), Op::Wait(1)];
        assert_eq!(&ops[..4], &one);
        assert_eq!(&ops[4..8], &one);
        assert_eq!(ops[8], Op::Wait(PIPELINE_DRAIN));
        assert_eq!(ops.len(), 9);
        // What pixel_loop gives an II = 1 loop reading both and writing one.
        assert_eq!(schedule(3, None), super::super::pixel_loop(3, &[0, 1], |_| vec![0]));
        // The skip FIFO on input 0: the other input is read first.
        assert_eq!(&schedule(1, Some(0))[..2], &[Op::Read(1), Op::Read(0)]);
    }
}
