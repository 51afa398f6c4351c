//! `add`: the skip sum. The exact sum of the two inputs (the type `a + b` has in C++, as
//! `FixedFormat::try_sum` gives it) converted once into `sum`, ReLU, conversion into `output`
//! — what hls4ml's Add with `result_t = sum` and any `sum_t s = a + b;` compute. When `sum` holds
//! the exact sum without rounding or overflow, that is `(a << sa) + (b << sb)`; otherwise the
//! exact sum is formed at the finer LSB and converted by the conversion rules.

use rfpga_core::fixed::FixedFormat;
use rfpga_core::frozen::{Add, Port};

use super::{max_abs, Kernel, LayerStats, Scratch};
use crate::convert::Conversion;

pub struct AddKernel {
    /// (shift of a, shift of b) into the sum's LSB when the sum is exact.
    exact: Option<(u32, u32)>,
    /// (shift of a, shift of b) to the finer of their LSBs, where the exact sum is formed.
    common: (u32, u32),
    sum: FixedFormat,
    /// The exact sum into `sum`: the one conversion.
    to_sum: Conversion,
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
        // The analysis checked that the exact sum type has at most 64 bits, so these shifts
        // and the sum fit an i128.
        let f = fa.frac().max(fb.frac());
        AddKernel {
            exact,
            common: ((f - fa.frac()) as u32, (f - fb.frac()) as u32),
            sum: l.sum,
            to_sum: Conversion::new(f, l.sum),
            relu: l.relu,
            out: Conversion::new(l.sum.frac(), l.output),
        }
    }
}

impl AddKernel {
    #[inline(always)]
    fn run_impl(&self, a: &[i64], b: &[i64], out: &mut [i64], s: &mut Scratch, stats: &mut LayerStats) {
        let sums = &mut s.acc;
        sums.clear();
        match self.exact {
            Some((sa, sb)) => sums.extend(a.iter().zip(b).map(|(&a, &b)| (a << sa) + (b << sb))),
            None => sums.extend(a.iter().zip(b).map(|(&a, &b)| {
                let v = ((a as i128) << self.common.0) + ((b as i128) << self.common.1);
                self.sum.convert_raw(v, self.to_sum.src_frac)
            })),
        }
        if self.relu {
            for v in sums.iter_mut() {
                *v = (*v).max(0);
            }
        }
        stats.convert_slice(&self.out, sums, out);
    }
}

crate::simd::avx2_or_plain! {
    fn run_add(k: &AddKernel, a: &[i64], b: &[i64], out: &mut [i64], s: &mut Scratch, stats: &mut LayerStats) {
        k.run_impl(a, b, out, s, stats)
    }
}

impl Kernel for AddKernel {
    fn run(&self, inputs: &[&[i64]], out: &mut [i64], s: &mut Scratch, stats: &mut LayerStats) {
        run_add(self, inputs[0], inputs[1], out, s, stats)
    }

    fn engine(&self) -> String {
        if self.exact.is_some() { "exact".into() } else { "one conversion of the exact sum".into() }
    }

    fn stats_frac(&self) -> i32 {
        self.sum.frac()
    }
}
