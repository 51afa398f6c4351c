//! `dense`: `acc = bias[o]` converted into `accum`; `acc += x[i]·w[o][i]` for i in order (exact
//! product, one conversion into `accum` each); conversion into `output` (no ReLU: these are the
//! logits). Small enough to always run step by step.

use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::{Dense, Port};

use super::{Kernel, LayerStats, Scratch};
use crate::convert::Conversion;

pub struct DenseKernel {
    inputs: usize,
    w: Vec<i64>,
    bias_acc: Vec<i64>,
    accum: FixedFormat,
    prod_frac: i32,
    out: Conversion,
}

impl DenseKernel {
    pub fn new(l: &Dense, input: &Port, weight: &[i64], bias: &[i64]) -> Self {
        let to_acc = Conversion::new(l.bias.frac(), l.accum);
        DenseKernel {
            inputs: l.in_features,
            w: weight.to_vec(),
            bias_acc: bias.iter().map(|&b| to_acc.apply(b).0).collect(),
            accum: l.accum,
            prod_frac: input.format.frac() + l.weight.frac(),
            out: Conversion::new(l.accum.frac(), l.output),
        }
    }
}

impl Kernel for DenseKernel {
    fn run(&self, inputs: &[&[i64]], out: &mut [i64], _: &mut Scratch, stats: &mut LayerStats) {
        let x = inputs[0];
        for (o, row) in self.w.chunks(self.inputs).enumerate() {
            let mut acc = self.bias_acc[o];
            for (&xi, &wi) in x.iter().zip(row) {
                acc = self.accum.accumulate(acc, xi as i128 * wi as i128, self.prod_frac);
            }
            out[o] = stats.convert(&self.out, acc);
        }
    }

    fn engine(&self) -> String {
        "step by step".into()
    }

    fn stats_frac(&self) -> i32 {
        self.accum.frac()
    }
}
