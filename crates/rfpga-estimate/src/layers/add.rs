//! `add` (hls/rfpga_add.h): one pixel per cycle, C sums in parallel (convert a, add b, ReLU,
//! convert to the output). The skip FIFO in front of it is counted with the streams.

use rfpga_core::frozen::{Add, Port};

use super::Cost;
use crate::resources::{stage_control, Resources};

pub fn estimate(l: &Add, input: &Port) -> Cost {
    let [h, w, c] = input.shape;
    let c = c as u64;
    let res = Resources::logic(c * (l.sum.width + l.output.width) as u64, c * l.output.width as u64) + stage_control();
    Cost { resources: res, cycles: (h * w) as u64, detail: format!("{c} adders of {} bits", l.sum.width) }
}
