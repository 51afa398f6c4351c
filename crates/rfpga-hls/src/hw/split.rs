//! `split` (hls/rfpga_common.h): copies each word to two streams, one word per cycle.

use super::resources::control;
use super::{pixel_loop, Process};

pub fn process(port: &str, words: usize, call: String) -> Process {
    Process {
        name: format!("{port}.split"),
        kind: "split",
        call,
        inputs: vec![],
        outputs: vec![],
        ops: pixel_loop(words, &[0], |_| vec![0, 1]),
        resources: control("split"),
        detail: "copies a stream to two".into(),
    }
}
