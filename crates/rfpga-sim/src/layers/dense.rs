//! `dense`: `acc = bias[o]` converted into `accum`; `acc += x[i]·w[o][i]` for i in order (exact
//! product, one conversion into `accum` each); conversion into `output` (no ReLU: these are the
//! logits). When the formats prove the order does not matter (`super::exact_sum`), a plain
//! i64 dot product; else, where `direct::StepRule` follows the definition on i64, its steps;
//! else `FixedFormat::accumulate` tap by tap.

use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::{Dense, Port};

use super::{exact_sum, max_abs, Kernel, LayerStats, Scratch};
use crate::direct::StepRule;
use crate::convert::Conversion;

pub struct DenseKernel {
    inputs: usize,
    w: Vec<i64>,
    bias_acc: Vec<i64>,
    accum: FixedFormat,
    prod_frac: i32,
    /// (shift, wrap) of the exact sum, when it applies.
    exact: Option<(u32, bool)>,
    step: Option<StepRule>,
    out: Conversion,
}

impl DenseKernel {
    pub fn new(l: &Dense, input: &Port, weight: &[i64], bias: &[i64], allow_fast: bool) -> Self {
        let to_acc = Conversion::new(l.bias.frac(), l.accum);
        let bias_acc: Vec<i64> = bias.iter().map(|&b| to_acc.apply(b).0).collect();
        let prod_frac = input.format.frac() + l.weight.frac();
        let sum_abs_w: Vec<i128> = weight.chunks(l.in_features).map(|r| r.iter().map(|&v| (v as i128).abs()).sum()).collect();
        let exact = exact_sum(&l.accum, prod_frac, &bias_acc, &sum_abs_w, max_abs(&input.format)).filter(|_| allow_fast);
        let max_w = weight.iter().map(|&v| (v as i128).abs()).max().unwrap_or(0);
        let step = StepRule::new(&l.accum, prod_frac, max_w * max_abs(&input.format), 64).filter(|_| allow_fast);
        DenseKernel {
            step,
            inputs: l.in_features,
            w: weight.to_vec(),
            bias_acc,
            accum: l.accum,
            prod_frac,
            exact,
            out: Conversion::new(l.accum.frac(), l.output),
        }
    }
}

impl Kernel for DenseKernel {
    fn run(&self, inputs: &[&[i64]], out: &mut [i64], _: &mut Scratch, stats: &mut LayerStats) {
        let x = inputs[0];
        for (o, row) in self.w.chunks(self.inputs).enumerate() {
            let mut acc = self.bias_acc[o];
            if let Some((shift, wrap)) = self.exact {
                acc += x.iter().zip(row).map(|(&xi, &wi)| xi * wi).sum::<i64>() << shift;
                if wrap {
                    acc = self.accum.from_bits(acc as u64);
                }
            } else if let Some(rule) = &self.step {
                for (&xi, &wi) in x.iter().zip(row) {
                    acc = rule.step(acc, xi * wi);
                }
            } else {
                for (&xi, &wi) in x.iter().zip(row) {
                    acc = self.accum.accumulate(acc, xi as i128 * wi as i128, self.prod_frac);
                }
            }
            out[o] = stats.convert(&self.out, acc);
        }
    }

    fn engine(&self) -> String {
        match (self.exact, self.step) {
            (Some(_), _) => "exact".into(),
            (None, Some(_)) => "tap by tap on i64".into(),
            _ => "tap by tap".into(),
        }
    }

    fn stats_frac(&self) -> i32 {
        self.accum.frac()
    }
}
