//! `avg_pool` (hls/rfpga_pool.h): C running sums (registers) updated one pixel per cycle; the
//! mean is the same bits (no divider).

use rfpga_core::frozen::{AvgPool, Port};

use super::Cost;
use crate::resources::{stage_control, Resources};

pub fn estimate(l: &AvgPool, input: &Port) -> Cost {
    let [h, w, c] = input.shape;
    let c = c as u64;
    let res = Resources::logic(c * (l.sum.width + l.output.width) as u64, c * l.sum.width as u64) + stage_control();
    Cost { resources: res, cycles: (h * w) as u64 + c, detail: format!("{c} sums of {} bits", l.sum.width) }
}
