//! `avg_pool` (hls/rfpga_pool.h): C running sums (registers) updated one pixel per cycle; the
//! mean is the same bits (no divider).

use rfpga_core::frozen::{AvgPool, Port};

use super::resources::{stage_control, Resources};
use super::{pixel_loop, Op, Process};

pub fn process(l: &AvgPool, input: &Port, call: String) -> Process {
    let [h, w, c] = input.shape;
    let mut ops = pixel_loop(h * w, &[0], |_| vec![]);
    ops.push(Op::Wait(1));
    ops.push(Op::Write(0));
    let c = c as u64;
    let res = Resources::logic(c * (l.sum.width + l.output.width) as u64, c * l.sum.width as u64) + stage_control();
    Process { name: l.name.clone(), kind: "avg_pool", call, inputs: vec![], outputs: vec![], ops, resources: res, detail: format!("{c} sums of {} bits", l.sum.width) }
}
