//! Direct convolution on i16 operands, read straight from a zero-padded HWC image (no im2col
//! copy), vectorized across output channels: every output pixel is a sum over taps of a
//! contiguous run of `seg` input channels. Two kernels share that geometry:
//!
//! - [`dot_i16`]: exact integer sums, i16×i16 pairs summed in i32 (`vpmaddwd`, or `vpdpwssd`
//!   with AVX-512 VNNI), for when the formats prove the tap order does not matter and the
//!   caller proves every partial sum fits i32 (the caller splits the taps into blocks where
//!   they would not); [`dot_u8`]: the same on u8×i8 quads (`vpdpbusd`, AVX-512 VNNI only),
//!   twice the products per instruction;
//! - [`accumulate_lanes`]: the accumulator stepped tap by tap in the fixed order, each step
//!   `acc = overflow(acc + round(x·w))`, on i32 lanes: the per-tap rounding and saturation of
//!   narrow or saturating accumulators (see [`StepRule`] for when that equals the definition).
//!
//! The portable loops define the results; on x86-64 with AVX2 the same loops run as intrinsics,
//! and tests check both against each other and the conv kernel against `FixedFormat`'s
//! step-by-step definition.

/// Where the operands of each output pixel lie in the padded input.
pub struct Geometry<'a> {
    /// Offset of each output pixel's first tap in the input.
    pub pixels: &'a [usize],
    /// Offset of each tap relative to the pixel's, in the fixed tap order.
    pub taps: &'a [usize],
    /// Channels per tap (even for [`dot_i16`]: pairs feed `vpmaddwd`).
    pub seg: usize,
}

impl Geometry<'_> {
    fn check(&self, x_len: usize, pairs: bool) {
        let last = self.pixels.iter().max().copied().unwrap_or(0) + self.taps.iter().max().copied().unwrap_or(0) + self.seg;
        assert!(self.pixels.is_empty() || last <= x_len, "geometry reads past the input");
        assert!(!pairs || self.seg % 2 == 0, "dot_i16 needs an even channel run");
    }
}

/// Output channels per vector (i32 lanes of a 256-bit register); outputs are padded to this.
pub const LANES: usize = 8;

/// Packs weights `w[co][t·seg + j]` (co < cout) for [`dot_i16`]: `[pair][co padded][2]`.
pub fn pack_pairs(w: &[i64], cout: usize, k: usize) -> Vec<i16> {
    let cp = cout.div_ceil(LANES) * LANES;
    let pairs = k.div_ceil(2);
    let mut out = vec![0i16; pairs * cp * 2];
    for co in 0..cout {
        for kk in 0..k {
            out[(kk / 2 * cp + co) * 2 + kk % 2] = w[co * k + kk] as i16;
        }
    }
    out
}

/// Packs weights `w[co][k]` for [`accumulate_lanes`]: `[k][co padded]` as i32.
pub fn pack_lanes(w: &[i64], cout: usize, k: usize) -> Vec<i32> {
    let cp = cout.div_ceil(LANES) * LANES;
    let mut out = vec![0i32; k * cp];
    for co in 0..cout {
        for kk in 0..k {
            out[kk * cp + co] = w[co * k + kk] as i32;
        }
    }
    out
}

/// `out[p][co] = Σ_{t in taps} Σ_{j<seg} x[pixels[p] + t + j]·w[t·seg + j][co]` in i32 with
/// wrapping (the caller proves no partial sum leaves i32). `w` from [`pack_pairs`] over the
/// taps given; `out` is pixels × cout rounded up to [`LANES`].
pub fn dot_i16(x: &[i16], g: &Geometry, w: &[i16], out: &mut [i32]) {
    g.check(x.len(), true);
    let cp = out.len() / g.pixels.len().max(1);
    assert!(cp % LANES == 0 && out.len() == g.pixels.len() * cp && w.len() == g.taps.len() * g.seg / 2 * cp * 2);
    #[cfg(target_arch = "x86_64")]
    if has_vnni() {
        // SAFETY: AVX-512 VNNI and VL are present; every access is inside the slices (checked above).
        unsafe { vnni::dot_i16(x, g, w, cp, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present; every read and write is inside the slices (checked above).
        unsafe { avx2::dot_i16(x, g, w, cp, out) };
        return;
    }
    dot_i16_portable(x, g, w, out);
}

pub fn dot_i16_portable(x: &[i16], g: &Geometry, w: &[i16], out: &mut [i32]) {
    let cp = out.len() / g.pixels.len().max(1);
    for (p, &base) in g.pixels.iter().enumerate() {
        let o = &mut out[p * cp..(p + 1) * cp];
        o.fill(0);
        let mut kk = 0;
        for &t in g.taps {
            for j in (0..g.seg).step_by(2) {
                let (x0, x1) = (x[base + t + j] as i32, x[base + t + j + 1] as i32);
                for (co, o) in o.iter_mut().enumerate() {
                    let (w0, w1) = (w[(kk * cp + co) * 2] as i32, w[(kk * cp + co) * 2 + 1] as i32);
                    *o = o.wrapping_add((x0 * w0).wrapping_add(x1 * w1));
                }
                kk += 1;
            }
        }
    }
}

/// Whether [`dot_u8`] runs on vector instructions here (else it is the slow reference loop).
pub fn has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx512vnni") && std::is_x86_feature_detected!("avx512vl");
    #[allow(unreachable_code)]
    false
}

/// Packs weights `w[co][k]` (each within i8) for [`dot_u8`]: `[quad][co padded][4]`.
pub fn pack_quads(w: &[i64], cout: usize, k: usize) -> Vec<i8> {
    let cp = cout.div_ceil(LANES) * LANES;
    let mut out = vec![0i8; k.div_ceil(4) * cp * 4];
    for co in 0..cout {
        for kk in 0..k {
            out[(kk / 4 * cp + co) * 4 + kk % 4] = w[co * k + kk] as i8;
        }
    }
    out
}

/// [`dot_i16`] on unsigned bytes times signed bytes: `seg` a multiple of 4, `w` from
/// [`pack_quads`], every sum wrapping in i32 (the caller proves none leaves it).
pub fn dot_u8(x: &[u8], g: &Geometry, w: &[i8], out: &mut [i32]) {
    g.check(x.len(), true);
    let cp = out.len() / g.pixels.len().max(1);
    assert!(g.seg % 4 == 0 && cp % LANES == 0 && out.len() == g.pixels.len() * cp && w.len() == g.taps.len() * g.seg / 4 * cp * 4);
    #[cfg(target_arch = "x86_64")]
    if has_vnni() {
        // SAFETY: AVX-512 VNNI and VL are present; every access is inside the slices (checked above).
        unsafe { vnni::dot_u8(x, g, w, cp, out) };
        return;
    }
    dot_u8_portable(x, g, w, out);
}

pub fn dot_u8_portable(x: &[u8], g: &Geometry, w: &[i8], out: &mut [i32]) {
    let cp = out.len() / g.pixels.len().max(1);
    for (p, &base) in g.pixels.iter().enumerate() {
        let o = &mut out[p * cp..(p + 1) * cp];
        o.fill(0);
        let mut kk = 0;
        for &t in g.taps {
            for j in (0..g.seg).step_by(4) {
                for (co, o) in o.iter_mut().enumerate() {
                    let s: i32 = (0..4).map(|i| x[base + t + j + i] as i32 * w[(kk * cp + co) * 4 + i] as i32).sum();
                    *o = o.wrapping_add(s);
                }
                kk += 1;
            }
        }
    }
}

/// One accumulation step `acc = overflow(acc + round(p))` on integer lanes of `lane_bits` bits
/// (32: the vector kernel; 64: scalar), for `p = x·w` in units of 2^−prod_frac and `acc` in the
/// accumulator's. Equal to `FixedFormat::accumulate` when [`StepRule::new`] says so: rounding
/// the sum equals the accumulator plus the rounded product because the accumulator is a whole
/// number of its LSBs and the rounding modes allowed (floor-based: AP_TRN, AP_RND,
/// AP_RND_MIN_INF) commute with adding one; no intermediate leaves the lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepRule {
    /// Bits dropped from the product (> 0), or appended (≤ 0: a left shift by −shift).
    pub shift: i32,
    /// Added before the arithmetic right shift: 2^(shift−1) (AP_RND), 2^(shift−1) − 1
    /// (AP_RND_MIN_INF), 0 (AP_TRN).
    pub round_bias: i64,
    pub lo: i64,
    pub hi: i64,
    /// AP_WRAP: keep the low W bits (this width), sign-extended when signed; None: AP_SAT.
    pub wrap: Option<(u32, bool)>,
}

impl StepRule {
    /// The rule for accumulator `acc` and products at `prod_frac` whose magnitude is at most
    /// `max_prod`, or None where lanes of `lane_bits` cannot follow the definition exactly.
    pub fn new(acc: &rfpga_core::FixedFormat, prod_frac: i32, max_prod: i128, lane_bits: u32) -> Option<StepRule> {
        use rfpga_core::fixed::{Overflow, Rounding};
        let shift = prod_frac - acc.frac();
        let lane = lane_bits as i32;
        if acc.width as i32 > lane - 1 || max_prod >= 1i128 << (lane - 2) || !(-(lane - 2)..=lane - 2).contains(&shift) {
            return None;
        }
        let round_bias = match (acc.rounding, shift > 0) {
            (_, false) | (Rounding::Trn, true) => 0,
            (Rounding::Rnd, true) => 1 << (shift - 1),
            (Rounding::RndMinInf, true) => (1 << (shift - 1)) - 1,
            _ => return None,
        };
        let max_r = if shift > 0 { (max_prod >> shift) + 1 } else { max_prod << -shift };
        let max_acc = (acc.max_raw() as i128).max(-(acc.min_raw() as i128));
        if max_r + max_acc >= 1i128 << (lane - 1) {
            return None;
        }
        let wrap = match acc.overflow {
            Overflow::Sat => None,
            Overflow::Wrap => Some((acc.width, acc.signed)),
            _ => return None,
        };
        Some(StepRule { shift, round_bias, lo: acc.min_raw(), hi: acc.max_raw(), wrap })
    }

    #[inline(always)]
    pub fn step(&self, acc: i64, p: i64) -> i64 {
        let r = if self.shift > 0 { (p + self.round_bias) >> self.shift } else { p << -self.shift };
        let s = acc + r;
        match self.wrap {
            None => s.clamp(self.lo, self.hi),
            Some((w, true)) => (s << (64 - w)) >> (64 - w),
            Some((w, false)) => ((s as u64) << (64 - w) >> (64 - w)) as i64,
        }
    }
}

/// `out[p][co]`: `bias[co]` stepped by [`StepRule::step`] with `x[pixels[p] + t + j]·w[t·seg +
/// j][co]` for every tap t in order and j < `seg`. `w` from [`pack_lanes`]; `bias` and `out`
/// padded to [`LANES`] channels.
pub fn accumulate_lanes(x: &[i16], g: &Geometry, w: &[i32], bias: &[i32], rule: &StepRule, out: &mut [i32]) {
    g.check(x.len(), false);
    let cp = bias.len();
    assert!(cp % LANES == 0 && out.len() == g.pixels.len() * cp && w.len() == g.taps.len() * g.seg * cp);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present; every read and write is inside the slices (checked above).
        unsafe { avx2::accumulate_lanes(x, g, w, bias, rule, out) };
        return;
    }
    accumulate_lanes_portable(x, g, w, bias, rule, out);
}

pub fn accumulate_lanes_portable(x: &[i16], g: &Geometry, w: &[i32], bias: &[i32], rule: &StepRule, out: &mut [i32]) {
    let cp = bias.len();
    for (p, &base) in g.pixels.iter().enumerate() {
        let o = &mut out[p * cp..(p + 1) * cp];
        o.copy_from_slice(bias);
        let mut k = 0;
        for &t in g.taps {
            for j in 0..g.seg {
                let xv = x[base + t + j] as i32;
                for (co, acc) in o.iter_mut().enumerate() {
                    *acc = rule.step(*acc as i64, (xv * w[k * cp + co]) as i64) as i32;
                }
                k += 1;
            }
        }
    }
}

/// Output pixels per register block of the vector kernels: 4 pixels × 2 vectors of 8 channels
/// = 8 accumulators.
#[cfg(target_arch = "x86_64")]
const P: usize = 4;

/// Runs `$call` over pixel blocks of `P` (then 1) and channel blocks of 16 (then 8), with the
/// constants `Q` (pixels) and `V` (vectors of 8 channels) of the block in scope, and `$px` (the
/// block's pixel offsets), `$co` (its first channel) and `$p0` (its first pixel).
#[cfg(target_arch = "x86_64")]
macro_rules! tile {
    ($pixels:expr, $cp:expr, |$px:ident, $co:ident, $p0:ident| $call:expr) => {{
        let (pixels, cp): (&[usize], usize) = ($pixels, $cp);
        let mut $co = 0;
        while $co < cp {
            let two = $co + 2 * LANES <= cp;
            let mut $p0 = 0;
            while $p0 < pixels.len() {
                if $p0 + P <= pixels.len() {
                    let $px: [usize; P] = std::array::from_fn(|i| pixels[$p0 + i]);
                    if two {
                        const Q: usize = P;
                        const V: usize = 2;
                        $call
                    } else {
                        const Q: usize = P;
                        const V: usize = 1;
                        $call
                    }
                    $p0 += P;
                } else {
                    let $px = [pixels[$p0]];
                    if two {
                        const Q: usize = 1;
                        const V: usize = 2;
                        $call
                    } else {
                        const Q: usize = 1;
                        const V: usize = 1;
                        $call
                    }
                    $p0 += 1;
                }
            }
            $co += if two { 2 * LANES } else { LANES };
        }
    }};
}

/// Defines `$name::<Q, V>`: the dot products of pixels `p0..p0+Q` and channels `co..co+8V`,
/// `$e` operand elements per i32 lane, each step `acc = $op(acc, x, w)`.
#[cfg(target_arch = "x86_64")]
macro_rules! dot_block {
    ($name:ident, $xt:ty, $wt:ty, $e:expr, $op:path) => {
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name<const Q: usize, const V: usize>(x: &[$xt], px: [usize; Q], g: &Geometry, w: &[$wt], cp: usize, co: usize, out: &mut [i32], p0: usize) {
            let mut acc = [[_mm256_setzero_si256(); V]; Q];
            let xp = x.as_ptr();
            let mut wp = w.as_ptr().add(co * $e);
            for &t in g.taps {
                let mut j = 0;
                while j < g.seg {
                    let wv: [__m256i; V] = std::array::from_fn(|v| _mm256_loadu_si256(wp.add(v * LANES * $e) as *const __m256i));
                    for q in 0..Q {
                        let xv = _mm256_set1_epi32(std::ptr::read_unaligned(xp.add(px[q] + t + j) as *const i32));
                        for v in 0..V {
                            acc[q][v] = $op(acc[q][v], xv, wv[v]);
                        }
                    }
                    wp = wp.add(cp * $e);
                    j += $e;
                }
            }
            for q in 0..Q {
                for v in 0..V {
                    _mm256_storeu_si256(out.as_mut_ptr().add((p0 + q) * cp + co + v * LANES) as *mut __m256i, acc[q][v]);
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Geometry, StepRule, LANES, P};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_i16(x: &[i16], g: &Geometry, w: &[i16], cp: usize, out: &mut [i32]) {
        tile!(g.pixels, cp, |px, co, p0| block::<Q, V>(x, px, g, w, cp, co, out, p0))
    }

    /// `vpmaddwd` then `vpaddd`.
    #[inline(always)]
    unsafe fn madd_add(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(x, w))
    }
    dot_block!(block, i16, i16, 2, madd_add);

    #[target_feature(enable = "avx2")]
    pub unsafe fn accumulate_lanes(x: &[i16], g: &Geometry, w: &[i32], bias: &[i32], rule: &StepRule, out: &mut [i32]) {
        tile!(g.pixels, bias.len(), |px, co, p0| lanes::<Q, V>(x, px, g, w, bias, rule, co, out, p0))
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn lanes<const Q: usize, const V: usize>(x: &[i16], px: [usize; Q], g: &Geometry, w: &[i32], bias: &[i32], rule: &StepRule, co: usize, out: &mut [i32], p0: usize) {
        let cp = bias.len();
        let b: [__m256i; V] = std::array::from_fn(|v| _mm256_loadu_si256(bias.as_ptr().add(co + v * LANES) as *const __m256i));
        let mut acc = [b; Q];
        let xp = x.as_ptr();
        let mut wp = w.as_ptr().add(co);
        // StepRule::new(.., 32) proved every value fits i32.
        let (lo, hi) = (_mm256_set1_epi32(rule.lo as i32), _mm256_set1_epi32(rule.hi as i32));
        let rb = _mm256_set1_epi32(rule.round_bias as i32);
        let right = _mm_cvtsi32_si128(rule.shift.max(0));
        let left = _mm_cvtsi32_si128((-rule.shift).max(0));
        let (width, signed) = rule.wrap.unwrap_or((32, true));
        let wsh = _mm_cvtsi32_si128(32 - width as i32);
        for &t in g.taps {
            for j in 0..g.seg {
                let wv: [__m256i; V] = std::array::from_fn(|v| _mm256_loadu_si256(wp.add(v * LANES) as *const __m256i));
                for q in 0..Q {
                    let xv = _mm256_set1_epi32(*xp.add(px[q] + t + j) as i32);
                    for v in 0..V {
                        // |x·w| < 2^30 (StepRule::new): vpmulld is exact.
                        let prod = _mm256_mullo_epi32(xv, wv[v]);
                        let r = if rule.shift > 0 {
                            _mm256_sra_epi32(_mm256_add_epi32(prod, rb), right)
                        } else {
                            _mm256_sll_epi32(prod, left)
                        };
                        let s = _mm256_add_epi32(acc[q][v], r);
                        acc[q][v] = match rule.wrap {
                            None => _mm256_min_epi32(_mm256_max_epi32(s, lo), hi),
                            Some(_) if signed => _mm256_sra_epi32(_mm256_sll_epi32(s, wsh), wsh),
                            Some(_) => _mm256_srl_epi32(_mm256_sll_epi32(s, wsh), wsh),
                        };
                    }
                }
                wp = wp.add(cp);
            }
        }
        for q in 0..Q {
            for v in 0..V {
                _mm256_storeu_si256(out.as_mut_ptr().add((p0 + q) * cp + co + v * LANES) as *mut __m256i, acc[q][v]);
            }
        }
    }
}

/// The dot kernels with AVX-512 VNNI on 256-bit registers: `vpdpwssd` (i16 pairs) and
/// `vpdpbusd` (u8×i8 quads) multiply and add into the accumulator in one instruction.
#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{Geometry, LANES, P};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512vnni,avx512vl,avx2")]
    pub unsafe fn dot_i16(x: &[i16], g: &Geometry, w: &[i16], cp: usize, out: &mut [i32]) {
        tile!(g.pixels, cp, |px, co, p0| block16::<Q, V>(x, px, g, w, cp, co, out, p0))
    }

    #[target_feature(enable = "avx512vnni,avx512vl,avx2")]
    pub unsafe fn dot_u8(x: &[u8], g: &Geometry, w: &[i8], cp: usize, out: &mut [i32]) {
        tile!(g.pixels, cp, |px, co, p0| block8::<Q, V>(x, px, g, w, cp, co, out, p0))
    }

    dot_block!(block16, i16, i16, 2, _mm256_dpwssd_epi32);
    dot_block!(block8, u8, i8, 4, _mm256_dpbusd_epi32);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lcg(seed: u64) -> impl FnMut(i64) -> i64 {
        let mut s = seed;
        move |m| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) as i64 % (2 * m + 1)) - m
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Random geometries (pixel/channel remainders included), operands up to 8 bits so sums
        /// fit i32 as callers guarantee.
        #[test]
        fn dispatched_dot_equals_portable(npix in 1usize..11, ntaps in 1usize..5, seg2 in 1usize..6, cout in 1usize..40, seed in any::<u64>()) {
            let seg = seg2 * 2;
            let mut r = lcg(seed);
            let x: Vec<i16> = (0..npix * 3 + ntaps * 5 + seg).map(|_| r(128) as i16).collect();
            let pixels: Vec<usize> = (0..npix).map(|p| p * 3).collect();
            let taps: Vec<usize> = (0..ntaps).map(|t| t * 5).collect();
            let g = Geometry { pixels: &pixels, taps: &taps, seg };
            let k = ntaps * seg;
            let wt: Vec<i64> = (0..cout * k).map(|_| r(128)).collect();
            let w = pack_pairs(&wt, cout, k);
            let cp = cout.div_ceil(LANES) * LANES;
            let (mut fast, mut slow) = (vec![7; npix * cp], vec![7; npix * cp]);
            dot_i16(&x, &g, &w, &mut fast);
            dot_i16_portable(&x, &g, &w, &mut slow);
            prop_assert_eq!(&fast, &slow);
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                // The AVX2 kernel too, where VNNI took the dispatch.
                unsafe { avx2::dot_i16(&x, &g, &w, cp, &mut fast) };
                prop_assert_eq!(&fast, &slow);
            }
            // And against the plain definition.
            for p in 0..npix {
                for co in 0..cout {
                    let want: i64 = (0..k).map(|kk| x[pixels[p] + taps[kk / seg] + kk % seg] as i64 * wt[co * k + kk]).sum();
                    prop_assert_eq!(slow[p * cp + co] as i64, want);
                }
            }
        }

        /// One step on a lane against the definition, wherever `StepRule::new` accepts the format.
        #[test]
        fn step_rule_equals_the_definition(signed in any::<bool>(), width in 2u32..=31, int in -4i32..=20, q in 0usize..7, o in 0usize..4, prod_frac in -4i32..30, acc_seed in any::<u64>(), p in -(1i64 << 29)..(1i64 << 29)) {
            use rfpga_core::fixed::{FixedFormat, Overflow, Rounding};
            let acc_f = FixedFormat { signed, width, int, rounding: Rounding::ALL[q], overflow: [Overflow::Wrap, Overflow::Sat, Overflow::SatZero, Overflow::SatSym][o] };
            prop_assume!(acc_f.validate().is_ok());
            let (lo, hi) = (acc_f.min_raw(), acc_f.max_raw());
            let acc = lo + (acc_seed % (hi - lo + 1) as u64) as i64;
            for lane in [32, 64] {
                if let Some(rule) = StepRule::new(&acc_f, prod_frac, p.unsigned_abs() as i128, lane) {
                    let got = if lane == 32 { rule.step(acc as i32 as i64, p as i32 as i64) as i32 as i64 } else { rule.step(acc, p) };
                    prop_assert_eq!(got, acc_f.accumulate(acc, p as i128, prod_frac), "{} {:?}", acc_f, rule);
                }
            }
        }

        #[test]
        fn dispatched_u8_dot_equals_the_definition(npix in 1usize..11, ntaps in 1usize..5, seg4 in 1usize..5, cout in 1usize..40, seed in any::<u64>()) {
            let seg = seg4 * 4;
            let mut r = lcg(seed);
            let x: Vec<u8> = (0..npix * 3 + ntaps * 5 + seg).map(|_| (r(128) + 127) as u8).collect();
            let pixels: Vec<usize> = (0..npix).map(|p| p * 3).collect();
            let taps: Vec<usize> = (0..ntaps).map(|t| t * 5).collect();
            let g = Geometry { pixels: &pixels, taps: &taps, seg };
            let k = ntaps * seg;
            let wt: Vec<i64> = (0..cout * k).map(|_| r(128).min(127)).collect();
            let w = pack_quads(&wt, cout, k);
            let cp = cout.div_ceil(LANES) * LANES;
            let (mut fast, mut slow) = (vec![7; npix * cp], vec![7; npix * cp]);
            dot_u8(&x, &g, &w, &mut fast);
            dot_u8_portable(&x, &g, &w, &mut slow);
            prop_assert_eq!(&fast, &slow);
            for p in 0..npix {
                for co in 0..cout {
                    let want: i64 = (0..k).map(|kk| x[pixels[p] + taps[kk / seg] + kk % seg] as i64 * wt[co * k + kk]).sum();
                    prop_assert_eq!(slow[p * cp + co] as i64, want);
                }
            }
        }

        #[test]
        fn dispatched_lanes_equal_portable(npix in 1usize..11, ntaps in 1usize..4, seg in 1usize..7, cout in 1usize..40, shift in -3i32..8, q in 0usize..3, wrap in any::<bool>(), width in 4u32..14, seed in any::<u64>()) {
            let mut r = lcg(seed);
            let x: Vec<i16> = (0..npix * 2 + ntaps * 4 + seg).map(|_| r(300) as i16).collect();
            let pixels: Vec<usize> = (0..npix).map(|p| p * 2).collect();
            let taps: Vec<usize> = (0..ntaps).map(|t| t * 4).collect();
            let g = Geometry { pixels: &pixels, taps: &taps, seg };
            let k = ntaps * seg;
            let wt: Vec<i64> = (0..cout * k).map(|_| r(300)).collect();
            let w = pack_lanes(&wt, cout, k);
            let cp = cout.div_ceil(LANES) * LANES;
            let hi = (1i32 << (width - 1)) - 1;
            let bias: Vec<i32> = (0..cp).map(|_| r(hi as i64) as i32).collect();
            let rule = StepRule {
                shift,
                round_bias: if shift > 0 { [0, 1 << (shift - 1), (1 << (shift - 1)) - 1][q] } else { 0 },
                lo: -hi as i64 - 1,
                hi: hi as i64,
                wrap: wrap.then_some((width, true)),
            };
            let (mut fast, mut slow) = (vec![0; npix * cp], vec![0; npix * cp]);
            accumulate_lanes(&x, &g, &w, &bias, &rule, &mut fast);
            accumulate_lanes_portable(&x, &g, &w, &bias, &rule, &mut slow);
            prop_assert_eq!(fast, slow);
        }
    }
}
