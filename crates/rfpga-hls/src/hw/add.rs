//! `add` (hls/rfpga_add.h): one pixel per cycle (a loop pipelined at II = 1 reading both
//! inputs), C sums in parallel. The skip FIFO in front of it is a stream (`hw/fifo.rs`).

use rfpga_core::frozen::{Add, Port};

use super::resources::{stage_control, Resources};
use super::{pixel_loop, Process};

pub fn process(l: &Add, input: &Port, call: String) -> Process {
    let [h, w, c] = input.shape;
    let c = c as u64;
    let res = Resources::logic(c * (l.sum.width + l.output.width) as u64, c * l.output.width as u64) + stage_control();
    Process {
        name: l.name.clone(),
        kind: "add",
        call,
        inputs: vec![],
        outputs: vec![],
        ops: pixel_loop(h * w, &[0, 1], |_| vec![0]),
        resources: res,
        detail: format!("{c} adders of {} bits", l.sum.width),
    }
}
