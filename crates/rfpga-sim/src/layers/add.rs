//! `add`: the skip sum. `s = a` converted into `sum`, `s += b`, ReLU, conversion into `output`.
//! When `sum` holds both inputs exactly and their sum cannot overflow it, that is
//! `(a << sa) + (b << sb)`; otherwise it runs through the conversion rules step by step.

use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::{Add, Port};

use super::{max_abs, Kernel, LayerStats, Scratch};
use crate::convert::Conversion;

pub struct AddKernel {
    /// (shift of a, shift of b) into the sum's LSB when the sum is exact.
    exact: Option<(u32, u32)>,
    sum: FixedFormat,
    a_to_sum: Conversion,
    b_frac: i32,
    relu: bool,
    out: Conversion,
}

impl AddKernel {
    pub fn new(l: &Add, a: &Port, b: &Port, allow_fast: bool) -> Self {
        let (fa, fb) = (a.format, b.format);
        let (sa, sb) = (l.sum.frac() - fa.frac(), l.sum.frac() - fb.frac());
        let exact = (allow_fast && sa >= 0 && sb >= 0 && sa < 62 && sb < 62 && l.sum.signed)
            .then(|| ((max_abs(&fa) << sa) + (max_abs(&fb) << sb) <= l.sum.max_raw() as i128).then_some((sa as u32, sb as u32)))
            .flatten();
        AddKernel {
            exact,
            sum: l.sum,
            a_to_sum: Conversion::new(fa.frac(), l.sum),
            b_frac: fb.frac(),
            relu: l.relu,
            out: Conversion::new(l.sum.frac(), l.output),
        }
    }
}

impl Kernel for AddKernel {
    fn run(&self, inputs: &[&[i64]], out: &mut [i64], _: &mut Scratch, stats: &mut LayerStats) {
        let (a, b) = (inputs[0], inputs[1]);
        for i in 0..out.len() {
            let mut s = match self.exact {
                Some((sa, sb)) => (a[i] << sa) + (b[i] << sb),
                None => self.sum.accumulate(self.a_to_sum.apply(a[i]).0, b[i] as i128, self.b_frac),
            };
            if self.relu {
                s = s.max(0);
            }
            out[i] = stats.convert(&self.out, s);
        }
    }

    fn engine(&self) -> String {
        if self.exact.is_some() { "exact".into() } else { "step by step".into() }
    }

    fn stats_frac(&self) -> i32 {
        self.sum.frac()
    }
}
