//! One `dst = x` conversion between fixed-point formats, precomputed for a source LSB and a
//! destination format. The common modes (AP_TRN/AP_RND with AP_SAT/AP_WRAP) take a few integer
//! instructions; every other case goes through [`FixedFormat::convert_raw`], which defines the
//! semantics. A property test checks the two agree bit for bit.

use rfpga_core::fixed::{FixedFormat, Overflow, Rounding};

#[derive(Debug, Clone, Copy)]
pub struct Conversion {
    pub src_frac: i32,
    pub dst: FixedFormat,
    /// src_frac − dst.frac: bits dropped (> 0) or appended (< 0).
    shift: i32,
    fast: bool,
    lo: i64,
    hi: i64,
}

impl Conversion {
    pub fn new(src_frac: i32, dst: FixedFormat) -> Self {
        let shift = src_frac - dst.frac();
        let fast = matches!(dst.rounding, Rounding::Trn | Rounding::Rnd)
            && matches!(dst.overflow, Overflow::Sat | Overflow::Wrap)
            && (-62..=62).contains(&shift);
        Conversion { src_frac, dst, shift, fast, lo: dst.min_raw(), hi: dst.max_raw() }
    }

    pub fn from_format(src: &FixedFormat, dst: FixedFormat) -> Self {
        Self::new(src.frac(), dst)
    }

    /// Whether every value of `src` converts without rounding or overflow.
    pub fn is_exact_for(src: &FixedFormat, dst: &FixedFormat) -> bool {
        let sh = dst.frac() - src.frac();
        sh >= 0 && sh < 62 && dst.contains_raw(src.min_raw() << sh) && dst.contains_raw(src.max_raw() << sh)
    }

    /// The converted raw value and whether the value was out of the destination's range
    /// (saturated, wrapped or zeroed by the overflow mode).
    #[inline]
    pub fn apply(&self, v: i64) -> (i64, bool) {
        if self.fast {
            let r = if self.shift > 0 {
                match self.dst.rounding {
                    // floor(v/2^s + 1/2) = floor(v/2^s) + the first dropped bit, with no
                    // intermediate that can overflow (v may be i64::MAX).
                    Rounding::Rnd => (v >> self.shift) + ((v >> (self.shift - 1)) & 1),
                    _ => v >> self.shift,
                }
            } else {
                let k = -self.shift;
                let s = v << k;
                if s >> k != v {
                    return self.slow(v);
                }
                s
            };
            if r >= self.lo && r <= self.hi {
                return (r, false);
            }
            return match self.dst.overflow {
                Overflow::Sat => (r.clamp(self.lo, self.hi), true),
                _ => (self.dst.from_bits(r as u64), true),
            };
        }
        self.slow(v)
    }

    /// [`Conversion::apply`] on every value of `src` into `dst`; returns the smallest and
    /// largest source value and how many were out of range. Branch-free for the common modes
    /// (so the loop vectorizes where the caller is compiled for it); otherwise value by value.
    #[inline(always)]
    pub fn apply_slice(&self, src: &[i64], dst: &mut [i64]) -> (i64, i64, u64) {
        assert_eq!(src.len(), dst.len());
        if self.fast && self.shift >= 0 {
            let rnd = self.shift > 0 && self.dst.rounding == Rounding::Rnd;
            let sat = self.dst.overflow == Overflow::Sat;
            return match (rnd, sat) {
                (false, false) => self.slice_fast::<false, false>(src, dst),
                (false, true) => self.slice_fast::<false, true>(src, dst),
                (true, false) => self.slice_fast::<true, false>(src, dst),
                (true, true) => self.slice_fast::<true, true>(src, dst),
            };
        }
        let (mut lo, mut hi, mut over) = (i64::MAX, i64::MIN, 0);
        for (d, &v) in dst.iter_mut().zip(src) {
            lo = lo.min(v);
            hi = hi.max(v);
            let (r, o) = self.apply(v);
            over += o as u64;
            *d = r;
        }
        (lo, hi, over)
    }

    /// The fast modes with a right shift (or none): floor, plus the first dropped bit for
    /// AP_RND; clamp (AP_SAT) or keep the low W bits (AP_WRAP, a no-op in range).
    #[inline(always)]
    fn slice_fast<const RND: bool, const SAT: bool>(&self, src: &[i64], dst: &mut [i64]) -> (i64, i64, u64) {
        let (s, lo, hi) = (self.shift as u32, self.lo, self.hi);
        let w = 64 - self.dst.width;
        let signed = self.dst.signed;
        let (mut min, mut max, mut over) = (i64::MAX, i64::MIN, 0u64);
        for (d, &v) in dst.iter_mut().zip(src) {
            min = min.min(v);
            max = max.max(v);
            let r = if RND { (v >> s) + ((v >> (s - 1)) & 1) } else { v >> s };
            over += (r < lo || r > hi) as u64;
            *d = if SAT {
                r.clamp(lo, hi)
            } else if signed {
                (r << w) >> w
            } else {
                ((r as u64) << w >> w) as i64
            };
        }
        (min, max, over)
    }

    fn slow(&self, v: i64) -> (i64, bool) {
        let out = self.dst.convert_raw(v as i128, self.src_frac);
        // Out of range ⇔ the rounded value differs from what an unbounded format would hold.
        let wide = FixedFormat { signed: true, width: 64, int: 64 - self.dst.frac(), rounding: self.dst.rounding, overflow: Overflow::Sat };
        let unbounded = wide.convert_raw(v as i128, self.src_frac);
        (out, unbounded != out || !self.dst.contains_raw(unbounded))
    }
}

/// `ap_fixed<..>(x)` for the f32 inputs of the network: a multiplication by 2^frac (exact), a
/// floor, and a range check for AP_TRN/AP_RND formats; every other case, and any value out of
/// the fast path's range, through [`FixedFormat::from_f64`], which defines the result.
#[derive(Debug, Clone, Copy)]
pub struct FromFloat {
    dst: FixedFormat,
    scale: f64,
    /// Added before the floor: 0.5 (AP_RND), 0 (AP_TRN); None: always the definition.
    half: Option<f64>,
    lo: i64,
    hi: i64,
}

impl FromFloat {
    pub fn new(dst: FixedFormat) -> Self {
        let frac = dst.frac();
        let half = match dst.rounding {
            Rounding::Trn => Some(0.0),
            Rounding::Rnd => Some(0.5),
            _ => None,
        };
        // In range, every overflow mode keeps the value, except AP_SAT_SYM's minimum (→ −max).
        let lo = if dst.overflow == Overflow::SatSym && dst.signed { dst.min_raw() | 1 } else { dst.min_raw() };
        FromFloat { dst, scale: 2f64.powi(frac.clamp(-1000, 1000)), half: half.filter(|_| (-60..=60).contains(&frac)), lo, hi: dst.max_raw() }
    }

    #[inline]
    pub fn apply(&self, x: f32) -> i64 {
        if let Some(half) = self.half {
            // x·2^frac is exact (a power-of-two scaling of a 24-bit significand); below 2^50 it
            // and its sum with 1/2 are exact in f64, so the floor is the exact floor.
            let v = x as f64 * self.scale;
            if v.abs() < (1u64 << 50) as f64 {
                let r = (v + half).floor() as i64;
                if r >= self.lo && r <= self.hi {
                    return r;
                }
            }
        }
        self.dst.from_f64(x as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn format() -> impl Strategy<Value = FixedFormat> {
        (any::<bool>(), 1u32..=40, -8i32..=24, 0usize..7, 0usize..4).prop_map(|(signed, width, int, q, o)| {
            let r = [Rounding::Trn, Rounding::Rnd, Rounding::TrnZero, Rounding::RndZero, Rounding::RndMinInf, Rounding::RndInf, Rounding::RndConv][q];
            let o = [Overflow::Sat, Overflow::Wrap, Overflow::SatZero, Overflow::SatSym][o];
            FixedFormat { signed, width, int, rounding: r, overflow: o }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn fast_path_equals_the_definition(dst in format(), src_frac in -10i32..40, v in prop_oneof![any::<i64>(), -5000i64..5000, (-(1i64 << 40))..(1i64 << 40)]) {
            let c = Conversion::new(src_frac, dst);
            let (got, overflow) = c.apply(v);
            prop_assert_eq!(got, dst.convert_raw(v as i128, src_frac));
            let slow = c.slow(v);
            prop_assert_eq!(overflow, slow.1);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]
        #[test]
        fn slice_equals_value_by_value(dst in format(), src_frac in -10i32..40, vs in proptest::collection::vec(prop_oneof![any::<i64>(), -5000i64..5000, (-(1i64 << 40))..(1i64 << 40)], 0..40)) {
            let c = Conversion::new(src_frac, dst);
            let mut out = vec![0; vs.len()];
            crate::simd::avx2_or_plain! {
                fn apply(c: &Conversion, vs: &[i64], out: &mut [i64]) -> (i64, i64, u64) {
                    c.apply_slice(vs, out)
                }
            }
            let (lo, hi, over) = apply(&c, &vs, &mut out);
            let each: Vec<(i64, bool)> = vs.iter().map(|&v| c.apply(v)).collect();
            prop_assert_eq!(out, each.iter().map(|e| e.0).collect::<Vec<_>>());
            prop_assert_eq!(over, each.iter().filter(|e| e.1).count() as u64);
            prop_assert_eq!(lo, vs.iter().copied().min().unwrap_or(i64::MAX));
            prop_assert_eq!(hi, vs.iter().copied().max().unwrap_or(i64::MIN));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn from_float_equals_the_definition(dst in format(), x in prop_oneof![any::<f32>(), -10f32..10f32, (-1e-3f32..1e-3f32)]) {
            prop_assert_eq!(FromFloat::new(dst).apply(x), dst.from_f64(x as f64), "{} {}", dst, x);
        }
    }

    #[test]
    fn hand_derived_cases() {
        // 3.984375 = 255/64 into ap_fixed<6,3,AP_RND,AP_SAT>: rounds up to 4.0, saturates to 3.875.
        let f = FixedFormat::parse("ap_fixed<6,3,AP_RND,AP_SAT>").unwrap();
        assert_eq!(Conversion::new(6, f).apply(255), (31, true));
        // Same with AP_WRAP: 4.0 wraps to −4.0.
        let f = FixedFormat::parse("ap_fixed<6,3,AP_RND,AP_WRAP>").unwrap();
        assert_eq!(Conversion::new(6, f).apply(255), (-32, true));
        // Ties: −2.5 LSB rounds to −2 under AP_RND (towards +∞), truncation gives −3.
        let f = FixedFormat::parse("ap_fixed<8,8,AP_RND>").unwrap();
        assert_eq!(Conversion::new(1, f).apply(-5), (-2, false));
        let f = FixedFormat::parse("ap_fixed<8,8>").unwrap();
        assert_eq!(Conversion::new(1, f).apply(-5), (-3, false));
        // The largest raw value rounds up without overflowing: (2^63 − 1)/2 + 1/2 = 2^62.
        let f = FixedFormat::parse("ap_fixed<64,64,AP_RND,AP_SAT>").unwrap();
        assert_eq!(Conversion::new(1, f).apply(i64::MAX), (1 << 62, false));
    }
}
