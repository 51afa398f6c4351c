//! `pad_shortcut`: He et al.'s option A. Every `stride`-th pixel; ⌊Δ/2⌋ zero channels before the
//! input's and the rest after. No arithmetic: values keep their format.

use rfpga_core::frozen::{PadShortcut, Port};

use super::{Kernel, LayerStats, Scratch};

pub struct PadKernel {
    in_shape: [usize; 3],
    out_shape: [usize; 3],
    stride: usize,
    before: usize,
    frac: i32,
}

impl PadKernel {
    pub fn new(l: &PadShortcut, input: &Port) -> Self {
        let [h, w, c] = input.shape;
        PadKernel {
            in_shape: input.shape,
            out_shape: [h.div_ceil(l.stride), w.div_ceil(l.stride), l.out_ch],
            stride: l.stride,
            before: (l.out_ch - c) / 2,
            frac: input.format.frac(),
        }
    }
}

impl Kernel for PadKernel {
    fn run(&self, inputs: &[&[i64]], out: &mut [i64], _: &mut Scratch, _: &mut LayerStats) {
        let x = inputs[0];
        let [_, w, c] = self.in_shape;
        let [oh, ow, oc] = self.out_shape;
        out.fill(0);
        for oy in 0..oh {
            for ox in 0..ow {
                let src = ((oy * self.stride) * w + ox * self.stride) * c;
                let dst = (oy * ow + ox) * oc + self.before;
                out[dst..dst + c].copy_from_slice(&x[src..src + c]);
            }
        }
    }

    fn engine(&self) -> String {
        "copy".into()
    }

    fn stats_frac(&self) -> i32 {
        self.frac
    }
}
