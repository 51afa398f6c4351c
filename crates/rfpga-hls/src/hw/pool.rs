//! `avg_pool` (hls/rfpga_pool.h): C running sums (registers) updated G channels per cycle; the
//! mean is the same bits (no divider), written as one word of all C channels.

use rfpga_core::frozen::{AvgPool, Port};

use super::resources::{control, select, Resources};
use super::{pixel_loop, Op, Process};

pub fn process(l: &AvgPool, input: &Port, g: usize, call: String) -> Process {
    let [h, w, c] = input.shape;
    let mut ops = pixel_loop(h * w * (c / g), &[0], |_| vec![]);
    ops.push(Op::Wait(1));
    ops.push(Op::Write(0));
    let (c, g) = (c as u64, g as u64);
    let sum = l.sum.width as u64;
    // G adders, each reading one of C/G sums (a select) and the sums' registers; the output
    // conversion per channel (wiring: the same bits).
    let res = Resources::logic(g * (sum + select(sum, c / g)) + c * l.output.width as u64, c * sum) + control("avg_pool");
    Process { name: l.name.clone(), kind: "avg_pool", call, inputs: vec![], outputs: vec![], ops, resources: res, detail: format!("{c} sums of {sum} bits, {g} per cycle") }
}
