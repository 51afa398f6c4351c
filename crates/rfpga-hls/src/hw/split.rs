//! `split` (hls/rfpga_common.h): copies each pixel to two streams, one per cycle.

use super::resources::stage_control;
use super::{pixel_loop, Process};

pub fn process(port: &str, pixels: usize, call: String) -> Process {
    Process {
        name: format!("{port}.split"),
        kind: "split",
        call,
        inputs: vec![],
        outputs: vec![],
        ops: pixel_loop(pixels, &[0], |_| vec![0, 1]),
        resources: stage_control(),
        detail: "copies a stream to two".into(),
    }
}
