//! `pad_shortcut` (hls/rfpga_pad.h): reads every pixel, forwards every S-th with zero channels;
//! wires and a counter.

use rfpga_core::frozen::Port;

use super::Cost;
use crate::resources::stage_control;

pub fn estimate(input: &Port) -> Cost {
    let [h, w, _] = input.shape;
    Cost { resources: stage_control(), cycles: (h * w) as u64, detail: "subsample + zero channels".into() }
}
