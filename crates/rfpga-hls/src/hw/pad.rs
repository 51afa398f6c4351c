//! `pad_shortcut` (hls/rfpga_pad.h): reads every pixel (one per cycle), forwards every S-th
//! with zero channels; wires and counters.

use rfpga_core::frozen::{PadShortcut, Port};

use super::resources::stage_control;
use super::{pixel_loop, Process};

pub fn process(l: &PadShortcut, input: &Port, call: String) -> Process {
    let [h, w, _] = input.shape;
    let s = l.stride;
    Process {
        name: l.name.clone(),
        kind: "pad_shortcut",
        call,
        inputs: vec![],
        outputs: vec![],
        ops: pixel_loop(h * w, &[0], |p| if (p / w) % s == 0 && (p % w) % s == 0 { vec![0] } else { vec![] }),
        resources: stage_control(),
        detail: "subsample + zero channels".into(),
    }
}
