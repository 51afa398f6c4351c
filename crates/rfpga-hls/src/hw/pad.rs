//! `pad_shortcut` (hls/rfpga_pad.h): per input pixel, its CIN/GI words into registers; every
//! S-th pixel (both ways) then leaves as COUT/GO words with zero channels around it.

use rfpga_core::frozen::{PadShortcut, Port};

use super::conv::WORD_LOOP_OVERHEAD;
use super::resources::{control, select, Resources};
use super::{Op, Process};

pub fn schedule(h: usize, w: usize, s: usize, words_in: usize, words_out: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    for p in 0..h * w {
        for _ in 0..words_in {
            ops.extend([Op::Read(0), Op::Wait(1)]);
        }
        ops.push(Op::Wait(WORD_LOOP_OVERHEAD));
        if (p / w) % s == 0 && (p % w) % s == 0 {
            for _ in 0..words_out {
                ops.extend([Op::Write(0), Op::Wait(1)]);
            }
            ops.push(Op::Wait(WORD_LOOP_OVERHEAD));
        }
    }
    ops
}

pub fn process(l: &PadShortcut, input: &Port, gi: usize, go: usize, call: String) -> Process {
    let [h, w, cin] = input.shape;
    let bits = input.format.width as u64;
    // The input pixel in registers; each output lane picks one of the channels it can show.
    let res = Resources::logic(go as u64 * select(bits, (l.out_ch / go) as u64), cin as u64 * bits) + control("pad");
    Process {
        name: l.name.clone(),
        kind: "pad_shortcut",
        call,
        inputs: vec![],
        outputs: vec![],
        ops: schedule(h, w, l.stride, cin / gi, l.out_ch / go),
        resources: res,
        detail: format!("subsample + zero channels, {gi} → {go} channels per word"),
    }
}
