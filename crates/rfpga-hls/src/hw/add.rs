//! `add` (hls/rfpga_add.h): one pixel per cycle (a loop pipelined at II = 1 reading both
//! inputs), C sums in parallel: an adder of the exact sum's width, its one conversion into
//! `sum` (ReLU) and the conversion into the output. The skip FIFO in front of it is a stream
//! (`hw/fifo.rs`).

use rfpga_core::frozen::{Add, Port};

use super::resources::{stage_control, Resources};
use super::{pixel_loop, Process};

pub fn process(l: &Add, a: &Port, b: &Port, call: String) -> Process {
    let [h, w, c] = a.shape;
    let c = c as u64;
    // The analysis checked that the exact sum type exists (≤ 64 bits).
    let e = a.format.try_sum(&b.format).unwrap_or(l.sum);
    let exact = e.width as u64;
    // Converting into `sum` costs logic (rounding, saturation) only when `sum` cannot hold
    // every exact sum (with `--sum auto` it can: the conversion is wiring).
    let s = l.sum;
    let lossless = s.frac() >= e.frac() && (if s.signed == e.signed { s.int >= e.int } else { s.signed && s.int > e.int });
    let convert = if lossless { 0 } else { s.width as u64 };
    let res = Resources::logic(c * (exact + convert + l.output.width as u64), c * l.output.width as u64) + stage_control();
    Process {
        name: l.name.clone(),
        kind: "add",
        call,
        inputs: vec![],
        outputs: vec![],
        ops: pixel_loop(h * w, &[0, 1], |_| vec![0]),
        resources: res,
        detail: format!("{c} adders of {exact} bits, into {} bits", l.sum.width),
    }
}
