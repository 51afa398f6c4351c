//! Xilinx `ap_fixed` / `ap_ufixed` arithmetic, bit-exact: the one definition of fixed-point
//! semantics shared by the quantizer, the simulator and the code generator.
//!
//! The rules are those of `shared/notes/ap_fixed.md`, checked against the real Xilinx headers by
//! `make check-ap-vectors` (the vectors in `testdata/ap_fixed/`). Two things the notes do not
//! say, both found with the headers:
//! - a 1-bit signed `AP_SAT_SYM` type keeps −1 for negative values (the headers build "−max" as
//!   `100…0 | 1`, which for one bit is still −1) instead of 0;
//! - some rounding conversions abort a C-sim built without `NDEBUG` (an assertion in
//!   `ap_private`), see [`FixedFormat::assignment_asserts_in_cpp`].
//!
//! A raw value `v` of a format with `F` fraction bits stands for `v·2^−F`.

use std::fmt;
use std::str::FromStr;

/// Largest |I| accepted. Far beyond any use, and it keeps every quantum and every in-range
/// value a normal `f64`, so `to_f64` and `quantum` are exact and the headers' special
/// handling of subnormal doubles can never show.
pub const MAX_INT_BITS: i32 = 512;

/// The syntax every format error repeats, so that a wrong string is fixed in one go.
const EXPECTED: &str = "expected ap_fixed<W,I[,Q[,O]]> or ap_ufixed<W,I[,Q[,O]]> \
    (Q: AP_TRN, AP_TRN_ZERO, AP_RND, AP_RND_ZERO, AP_RND_MIN_INF, AP_RND_INF, AP_RND_CONV; \
    O: AP_WRAP, AP_SAT, AP_SAT_ZERO, AP_SAT_SYM)";

/// A malformed or unsupported format; `text` is the string (or the spelling of the format) as
/// given, so the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("format {text:?}: {message}")]
pub struct FormatError {
    pub text: String,
    pub message: String,
}

impl FormatError {
    fn new(text: impl Into<String>, message: impl Into<String>) -> Self {
        FormatError { text: text.into(), message: message.into() }
    }
}

/// Quantization mode (`ap_q_mode`): what happens to the bits below the new LSB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// `AP_TRN`: floor (toward −inf).
    Trn,
    /// `AP_TRN_ZERO`: toward zero.
    TrnZero,
    /// `AP_RND`: nearest, ties toward +inf.
    Rnd,
    /// `AP_RND_ZERO`: nearest, ties toward zero.
    RndZero,
    /// `AP_RND_MIN_INF`: nearest, ties toward −inf.
    RndMinInf,
    /// `AP_RND_INF`: nearest, ties away from zero.
    RndInf,
    /// `AP_RND_CONV`: nearest, ties to even.
    RndConv,
}

/// Overflow mode (`ap_o_mode`), applied after rounding. `AP_WRAP_SM` is not modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// `AP_WRAP`: keep the low W bits (two's complement).
    Wrap,
    /// `AP_SAT`: clamp to the range.
    Sat,
    /// `AP_SAT_ZERO`: 0 when out of range.
    SatZero,
    /// `AP_SAT_SYM`: clamp to ±max for signed types (the minimum itself becomes −max).
    SatSym,
}

impl Rounding {
    pub const ALL: [Rounding; 7] = [
        Rounding::Trn,
        Rounding::TrnZero,
        Rounding::Rnd,
        Rounding::RndZero,
        Rounding::RndMinInf,
        Rounding::RndInf,
        Rounding::RndConv,
    ];

    /// The C++ enumerator, e.g. `AP_RND_CONV`.
    pub fn cpp_name(self) -> &'static str {
        match self {
            Rounding::Trn => "AP_TRN",
            Rounding::TrnZero => "AP_TRN_ZERO",
            Rounding::Rnd => "AP_RND",
            Rounding::RndZero => "AP_RND_ZERO",
            Rounding::RndMinInf => "AP_RND_MIN_INF",
            Rounding::RndInf => "AP_RND_INF",
            Rounding::RndConv => "AP_RND_CONV",
        }
    }

    pub fn from_cpp_name(s: &str) -> Option<Self> {
        Rounding::ALL.into_iter().find(|q| q.cpp_name() == s)
    }

    /// The 0/1 added to the floored value. `qb`: the first dropped bit; `r`: OR of the dropped
    /// bits below it; `neg`: the exact value is negative; `odd`: the floored value is odd.
    fn increment(self, qb: bool, r: bool, neg: bool, odd: bool) -> bool {
        match self {
            Rounding::Trn => false,
            Rounding::TrnZero => neg && (qb || r),
            Rounding::Rnd => qb,
            Rounding::RndZero => qb && (neg || r),
            Rounding::RndMinInf => qb && r,
            Rounding::RndInf => qb && (!neg || r),
            Rounding::RndConv => qb && (odd || r),
        }
    }
}

impl Overflow {
    pub const ALL: [Overflow; 4] = [Overflow::Wrap, Overflow::Sat, Overflow::SatZero, Overflow::SatSym];

    /// The C++ enumerator, e.g. `AP_SAT_SYM`.
    pub fn cpp_name(self) -> &'static str {
        match self {
            Overflow::Wrap => "AP_WRAP",
            Overflow::Sat => "AP_SAT",
            Overflow::SatZero => "AP_SAT_ZERO",
            Overflow::SatSym => "AP_SAT_SYM",
        }
    }

    pub fn from_cpp_name(s: &str) -> Option<Self> {
        Overflow::ALL.into_iter().find(|o| o.cpp_name() == s)
    }
}

impl fmt::Display for Rounding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cpp_name())
    }
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cpp_name())
    }
}

impl FromStr for Rounding {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, FormatError> {
        Rounding::from_cpp_name(s.trim()).ok_or_else(|| {
            let names: Vec<&str> = Rounding::ALL.iter().map(|q| q.cpp_name()).collect();
            FormatError::new(s, format!("expected a quantization mode: one of {}", names.join(", ")))
        })
    }
}

impl FromStr for Overflow {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, FormatError> {
        let t = s.trim();
        if t == "AP_WRAP_SM" {
            return Err(FormatError::new(
                s,
                "AP_WRAP_SM is not supported (not modelled): use AP_WRAP, AP_SAT, AP_SAT_ZERO or AP_SAT_SYM",
            ));
        }
        Overflow::from_cpp_name(t)
            .ok_or_else(|| FormatError::new(s, "expected an overflow mode: AP_WRAP, AP_SAT, AP_SAT_ZERO or AP_SAT_SYM"))
    }
}

/// `ap_fixed<W,I,Q,O>` (signed) or `ap_ufixed<W,I,Q,O>`: W bits in all, I of them integer
/// (sign included), F = W − I fraction bits. Raw values are i64, so W is 1..=64 for signed
/// types and 1..=63 for unsigned ones; |I| ≤ [`MAX_INT_BITS`]. The fields are public: a format
/// built by hand should pass [`FixedFormat::validate`] before use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedFormat {
    pub signed: bool,
    pub width: u32,
    pub int: i32,
    pub rounding: Rounding,
    pub overflow: Overflow,
}

/// The value after rounding, in units of the target's LSB, before overflow handling.
enum Rounded {
    Exact(i128),
    /// Beyond i128 (only from a huge left shift): outside every range, and only its sign and
    /// low bits (for AP_WRAP) matter.
    Huge {
        negative: bool,
        low: u128,
    },
}

impl FixedFormat {
    /// A format with the default modes, AP_TRN and AP_WRAP.
    pub fn new(signed: bool, width: u32, int: i32) -> Result<Self, FormatError> {
        let f = FixedFormat { signed, width, int, rounding: Rounding::Trn, overflow: Overflow::Wrap };
        f.validate()?;
        Ok(f)
    }

    /// The same W, I and signedness with other modes.
    pub fn with_modes(self, rounding: Rounding, overflow: Overflow) -> Self {
        FixedFormat { rounding, overflow, ..self }
    }

    pub fn validate(&self) -> Result<(), FormatError> {
        let max_w = if self.signed { 64 } else { 63 };
        if self.width == 0 || self.width > max_w {
            let why = if self.signed { "" } else { " (raw values are i64, so 64-bit ap_ufixed is not supported)" };
            return Err(FormatError::new(
                self.to_string(),
                format!("width W = {} is out of range: expected 1..={max_w}{why}", self.width),
            ));
        }
        if !(-MAX_INT_BITS..=MAX_INT_BITS).contains(&self.int) {
            return Err(FormatError::new(
                self.to_string(),
                format!("integer bits I = {} is out of range: expected -{MAX_INT_BITS}..={MAX_INT_BITS}", self.int),
            ));
        }
        Ok(())
    }

    /// Parses the C++ spelling: `ap_fixed<8,3>`, `ap_ufixed<8,0>`, `ap_fixed<9,3,AP_RND,AP_SAT>`;
    /// spaces are allowed around every token. Mode names are case-sensitive, as in C++.
    pub fn parse(s: &str) -> Result<Self, FormatError> {
        let bad = |detail: String| FormatError::new(s, format!("{EXPECTED}; {detail}"));
        let t = s.trim();
        let (signed, rest) = if let Some(r) = t.strip_prefix("ap_fixed") {
            (true, r)
        } else if let Some(r) = t.strip_prefix("ap_ufixed") {
            (false, r)
        } else {
            return Err(bad("it does not start with ap_fixed or ap_ufixed".into()));
        };
        let inner = rest
            .trim_start()
            .strip_prefix('<')
            .and_then(|r| r.strip_suffix('>'))
            .ok_or_else(|| bad("the parameters must be enclosed in <...>".into()))?;
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        if parts.len() < 2 || parts.len() > 4 {
            let extra = if parts.len() == 5 { " (the saturation-bits parameter N is not supported)" } else { "" };
            return Err(bad(format!("found {} parameters{extra}", parts.len())));
        }
        let width: u32 = match parts[0] {
            "" => return Err(bad("W is empty".into())),
            w => w.parse().map_err(|_| bad(format!("W must be a positive integer, found `{w}`")))?,
        };
        let int: i32 = match parts[1] {
            "" => return Err(bad("I is empty".into())),
            i => i.parse().map_err(|_| bad(format!("I must be an integer, found `{i}`")))?,
        };
        let rounding = match parts.get(2) {
            None => Rounding::Trn,
            Some(q) => Rounding::from_cpp_name(q).ok_or_else(|| bad(format!("unknown quantization mode `{q}`")))?,
        };
        let overflow = match parts.get(3) {
            None => Overflow::Wrap,
            Some(&"AP_WRAP_SM") => {
                return Err(FormatError::new(
                    s,
                    "AP_WRAP_SM is not supported (not modelled): use AP_WRAP, AP_SAT, AP_SAT_ZERO or AP_SAT_SYM",
                ))
            }
            Some(o) => Overflow::from_cpp_name(o).ok_or_else(|| bad(format!("unknown overflow mode `{o}`")))?,
        };
        let f = FixedFormat { signed, width, int, rounding, overflow };
        f.validate().map_err(|e| FormatError::new(s, e.message))?;
        Ok(f)
    }

    /// F = W − I; negative when the LSB weighs more than 1, larger than W when |value| < 1/2.
    pub fn frac(&self) -> i32 {
        self.width as i32 - self.int
    }

    pub fn min_raw(&self) -> i64 {
        if self.signed {
            i64::MIN >> (64 - self.width)
        } else {
            0
        }
    }

    pub fn max_raw(&self) -> i64 {
        if self.signed {
            i64::MAX >> (64 - self.width)
        } else {
            (u64::MAX >> (64 - self.width)) as i64
        }
    }

    pub fn contains_raw(&self, raw: i64) -> bool {
        (self.min_raw()..=self.max_raw()).contains(&raw)
    }

    /// The weight of the LSB, 2^−F (exact).
    pub fn quantum(&self) -> f64 {
        pow2(-self.frac())
    }

    /// The low W bits of a raw value, as C++ writes them (`w.range(W-1,0) = 0x...`).
    pub fn to_bits(&self, raw: i64) -> u64 {
        (raw as u64) & (u64::MAX >> (64 - self.width))
    }

    /// The raw value whose low W bits are `bits` (higher bits ignored).
    pub fn from_bits(&self, bits: u64) -> i64 {
        self.wrap(bits as u128)
    }

    /// The value `v·2^−src_frac` converted to this format, as C++ assignment does: floor to the
    /// new LSB, add the rounding increment of `self.rounding`, then apply `self.overflow`.
    /// A left shift (`src_frac < frac`) loses no bits and only overflow applies.
    pub fn convert_raw(&self, v: i128, src_frac: i32) -> i64 {
        self.accumulate(0, v, src_frac)
    }

    /// `dst = x` in C++ for x of format `src` with raw value `raw`: [`FixedFormat::convert_raw`].
    pub fn convert_from(&self, src: &FixedFormat, raw: i64) -> i64 {
        self.convert_raw(raw as i128, src.frac())
    }

    /// `acc += p` in C++: the exact sum of `acc_raw` (this format) and `p_raw·2^−p_frac`, then
    /// ONE conversion into this format with its modes.
    pub fn accumulate(&self, acc_raw: i64, p_raw: i128, p_frac: i32) -> i64 {
        debug_assert!(self.contains_raw(acc_raw), "{acc_raw} is not a raw value of {self}");
        self.apply_overflow(self.rounded_sum(acc_raw as i128, p_raw, p_frac))
    }

    /// What `ap_fixed<..>(double)` gives. The double is exact; decoding follows the headers
    /// bit for bit: ±0 → 0; otherwise the value is taken as ±(2^52 + mantissa)·2^(e − 1075)
    /// with e the 11-bit exponent field. For finite normal doubles that is the exact value.
    /// Consequences for the other encodings, all identical to C++:
    /// - ±inf acts as ±2^1024 and NaN as ±(1 + m/2^52)·2^1024 with the NaN's sign bit: under
    ///   AP_WRAP both give 0 (every bit of them lies above any format's W bits); under AP_SAT
    ///   they give max (positive) or min (negative); AP_SAT_ZERO gives 0; AP_SAT_SYM ±max.
    /// - subnormals are taken as (1 + m/2^52)·2^−1023 rather than their true value; with
    ///   F ≤ 576 both lie far below half an LSB, so the result is the same as for the true value.
    ///
    /// Use [`FixedFormat::checked_from_f64`] to reject non-finite inputs instead.
    pub fn from_f64(&self, x: f64) -> i64 {
        let bits = x.to_bits();
        if bits << 1 == 0 {
            return 0;
        }
        let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
        let mantissa = ((bits & ((1u64 << 52) - 1)) | (1u64 << 52)) as i128;
        let v = if bits >> 63 == 1 { -mantissa } else { mantissa };
        self.convert_raw(v, 52 - exponent)
    }

    /// [`FixedFormat::from_f64`] for finite inputs only.
    pub fn checked_from_f64(&self, x: f64) -> Result<i64, FormatError> {
        if x.is_finite() {
            Ok(self.from_f64(x))
        } else {
            Err(FormatError::new(self.to_string(), format!("cannot convert the non-finite value {x}")))
        }
    }

    /// raw·2^−F, rounded to nearest only when |raw| > 2^53 (the scaling itself is exact).
    pub fn to_f64(&self, raw: i64) -> f64 {
        raw as f64 * pow2(-self.frac())
    }

    /// The exact product type, `<W1+W2, I1+I2>`, signed if either is, TRN/WRAP.
    ///
    /// # Panics
    /// When that type is beyond the supported range (W > 64); see [`FixedFormat::try_product`].
    pub fn product(&self, other: &Self) -> Self {
        self.try_product(other).unwrap_or_else(|e| panic!("product of {self} and {other}: {e}"))
    }

    pub fn try_product(&self, other: &Self) -> Result<Self, FormatError> {
        let f = FixedFormat {
            signed: self.signed || other.signed,
            width: self.width + other.width,
            int: self.int + other.int,
            rounding: Rounding::Trn,
            overflow: Overflow::Wrap,
        };
        f.validate()?;
        Ok(f)
    }

    /// The exact sum type: I = max(I1+(S2&&!S1), I2+(S1&&!S2)) + 1, F = max(F1,F2), TRN/WRAP.
    ///
    /// # Panics
    /// When that type is beyond the supported range (W > 64); see [`FixedFormat::try_sum`].
    pub fn sum(&self, other: &Self) -> Self {
        self.try_sum(other).unwrap_or_else(|e| panic!("sum of {self} and {other}: {e}"))
    }

    pub fn try_sum(&self, other: &Self) -> Result<Self, FormatError> {
        let int = (self.int + (other.signed && !self.signed) as i32).max(other.int + (self.signed && !other.signed) as i32) + 1;
        let frac = self.frac().max(other.frac());
        let f = FixedFormat {
            signed: self.signed || other.signed,
            width: (int + frac) as u32,
            int,
            rounding: Rounding::Trn,
            overflow: Overflow::Wrap,
        };
        f.validate()?;
        Ok(f)
    }

    /// Whether the C++ assignment `self = x`, x of format `src`, aborts in a C-sim build without
    /// `NDEBUG`. The headers read the first dropped bit with `ap_private::get_bit`, which asserts
    /// when that bit lies above the source's MSB (F_src − F > W_src), although they then use the
    /// sign instead; so only when rounding is active (not AP_TRN, nor AP_TRN_ZERO from an
    /// unsigned source). Built with `NDEBUG` the result is [`FixedFormat::convert_raw`]'s.
    /// Conversions from `double` and `acc += p` never trip it. A code generator should not emit
    /// such a conversion (checked with g++ on every type pair of `testdata/ap_fixed`).
    pub fn assignment_asserts_in_cpp(&self, src: &FixedFormat) -> bool {
        let rounds = match self.rounding {
            Rounding::Trn => false,
            Rounding::TrnZero => src.signed,
            _ => true,
        };
        rounds && src.frac() as i64 - self.frac() as i64 > src.width as i64
    }

    /// a (in units of self's LSB) + p·2^−p_frac, rounded to self's LSB by self.rounding.
    fn rounded_sum(&self, a: i128, p: i128, p_frac: i32) -> Rounded {
        let sh = p_frac as i64 - self.frac() as i64;
        if sh <= 0 {
            // p moves left: nothing is dropped, so no rounding.
            let k = (-sh) as u64;
            if p == 0 {
                return Rounded::Exact(a);
            }
            let shifted = if k < 127 { Some(p << k).filter(|s| s >> k == p) } else { None };
            if let Some(s) = shifted.and_then(|s| s.checked_add(a)) {
                return Rounded::Exact(s);
            }
            // |p·2^k| ≥ 2^126 ≫ |a|: the sign is p's; only the low bits matter for wrapping.
            let low = (a as u128).wrapping_add(if k < 128 { (p as u128) << k } else { 0 });
            return Rounded::Huge { negative: p < 0, low };
        }
        let s = sh as u64;
        let floor_p = if s >= 128 { p >> 127 } else { p >> s };
        // Bits s−1 and below of p, sign-extended beyond its 128 bits.
        let qb = if s - 1 >= 127 { p < 0 } else { (p >> (s - 1)) & 1 == 1 };
        let below = s - 1;
        let r = match below {
            0 => false,
            1..=127 => (p as u128) & ((1u128 << below) - 1) != 0,
            _ => p != 0,
        };
        // |a| < 2^63 and |floor_p| ≤ 2^126: no overflow. a is integral, so the exact sum is
        // negative exactly when its floor is.
        let base = a + floor_p;
        let inc = self.rounding.increment(qb, r, base < 0, base & 1 != 0);
        Rounded::Exact(base + inc as i128)
    }

    fn apply_overflow(&self, r: Rounded) -> i64 {
        let (min, max) = (self.min_raw() as i128, self.max_raw() as i128);
        // AP_SAT_SYM's lower bound is built as 100…0 | 1: −max, except −1 for a 1-bit type.
        let lower = match self.overflow {
            Overflow::SatSym if self.signed => min | 1,
            _ => min,
        };
        let (x, below, above) = match r {
            Rounded::Exact(x) => (x, x < lower, x > max),
            Rounded::Huge { negative, low } => {
                if self.overflow == Overflow::Wrap {
                    return self.wrap(low);
                }
                (0, negative, !negative)
            }
        };
        match self.overflow {
            Overflow::Wrap => self.wrap(x as u128),
            Overflow::Sat | Overflow::SatSym => {
                if above {
                    max as i64
                } else if below {
                    lower as i64
                } else {
                    x as i64
                }
            }
            Overflow::SatZero => {
                if above || below {
                    0
                } else {
                    x as i64
                }
            }
        }
    }

    /// The low W bits, sign-extended for signed formats.
    fn wrap(&self, low: u128) -> i64 {
        let sh = 128 - self.width;
        if self.signed {
            (((low << sh) as i128) >> sh) as i64
        } else {
            ((low << sh) >> sh) as i64
        }
    }
}

/// 2^k for −1022 ≤ k ≤ 1023 (the normal range), exact.
fn pow2(k: i32) -> f64 {
    assert!((-1022..=1023).contains(&k), "2^{k} is not a normal double");
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// The C++ spelling, trailing default modes omitted: `ap_fixed<8,3>`, `ap_fixed<8,3,AP_RND>`,
/// `ap_fixed<9,3,AP_RND,AP_SAT>`.
impl fmt::Display for FixedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.signed { "ap_fixed" } else { "ap_ufixed" };
        write!(f, "{name}<{},{}", self.width, self.int)?;
        if self.overflow != Overflow::Wrap {
            write!(f, ",{},{}", self.rounding, self.overflow)?;
        } else if self.rounding != Rounding::Trn {
            write!(f, ",{}", self.rounding)?;
        }
        f.write_str(">")
    }
}

impl FromStr for FixedFormat {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, FormatError> {
        FixedFormat::parse(s)
    }
}

/// Serialized as its C++ spelling, so JSON files read `"ap_fixed<8,3>"`.
impl serde::Serialize for FixedFormat {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for FixedFormat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        FixedFormat::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    fn f(s: &str) -> FixedFormat {
        FixedFormat::parse(s).unwrap()
    }

    /// The slow, obviously-correct model the fast code is checked against: the exact value in
    /// units of dst's LSB is n/d; floor by Euclidean division; a tie is 2·rem == d; overflow on
    /// the rounded integer by its definition. Needs v·2^shift within i128 (checked) and d ≤ 2^126.
    fn reference(dst: &FixedFormat, v: i128, src_frac: i32) -> i64 {
        let shift = dst.frac() - src_frac;
        let (n, d) = if shift >= 0 {
            assert!(shift <= 62, "reference: shift {shift} too large");
            (v.checked_mul(1i128 << shift).expect("reference: value too large"), 1i128)
        } else {
            assert!(-shift <= 126, "reference: shift {shift} too large");
            (v, 1i128 << -shift)
        };
        let q = n.div_euclid(d);
        let rem = n.rem_euclid(d);
        let neg = n < 0;
        let up = match dst.rounding {
            Rounding::Trn => false,
            Rounding::TrnZero => neg && rem != 0,
            _ if rem == 0 => false,
            _ => match (2 * rem).cmp(&d) {
                Ordering::Less => false,
                Ordering::Greater => true,
                Ordering::Equal => match dst.rounding {
                    Rounding::Rnd => true,
                    Rounding::RndZero => neg,
                    Rounding::RndMinInf => false,
                    Rounding::RndInf => !neg,
                    Rounding::RndConv => q.rem_euclid(2) == 1,
                    Rounding::Trn | Rounding::TrnZero => unreachable!(),
                },
            },
        };
        let x = q + up as i128;
        let (lo, hi) = (dst.min_raw() as i128, dst.max_raw() as i128);
        let y = match dst.overflow {
            Overflow::Wrap => {
                let m = 1i128 << dst.width;
                let y = x.rem_euclid(m);
                if dst.signed && y >= m / 2 {
                    y - m
                } else {
                    y
                }
            }
            Overflow::Sat => x.clamp(lo, hi),
            Overflow::SatZero => {
                if (lo..=hi).contains(&x) {
                    x
                } else {
                    0
                }
            }
            // A 1-bit signed type keeps −1: what the headers do (checked with g++).
            Overflow::SatSym if dst.signed && dst.width > 1 => x.clamp(-hi, hi),
            Overflow::SatSym => x.clamp(lo, hi),
        };
        y as i64
    }

    // ---- Hand-derived cases from shared/notes/ap_fixed.md ----

    #[test]
    fn ties_to_an_integer_under_every_rounding() {
        let table = [
            (Rounding::Rnd, 3, -2),
            (Rounding::RndZero, 2, -2),
            (Rounding::RndMinInf, 2, -3),
            (Rounding::RndInf, 3, -3),
            (Rounding::RndConv, 2, -2),
            (Rounding::Trn, 2, -3),
            (Rounding::TrnZero, 2, -2),
        ];
        for (q, pos, neg) in table {
            let dst = f("ap_fixed<8,8>").with_modes(q, Overflow::Wrap);
            assert_eq!(dst.from_f64(2.5), pos, "{dst} 2.5");
            assert_eq!(dst.from_f64(-2.5), neg, "{dst} -2.5");
            assert_eq!(dst.convert_raw(5, 1), pos, "{dst} raw 5/2");
            assert_eq!(dst.convert_raw(-5, 1), neg, "{dst} raw -5/2");
            // 3.5 and -3.5: RND_CONV goes to the even neighbour the other way.
            let conv = if q == Rounding::RndConv { Some((4, -4)) } else { None };
            if let Some((p, n)) = conv {
                assert_eq!((dst.from_f64(3.5), dst.from_f64(-3.5)), (p, n));
            }
        }
    }

    #[test]
    fn rounding_can_overflow() {
        let wrap = f("ap_fixed<8,3,AP_RND,AP_WRAP>");
        let sat = f("ap_fixed<8,3,AP_RND,AP_SAT>");
        assert_eq!(wrap.to_f64(wrap.from_f64(3.984375)), -4.0);
        assert_eq!(sat.to_f64(sat.from_f64(3.984375)), 3.96875);
    }

    #[test]
    fn decimal_constants() {
        let trn = f("ap_fixed<8,3>");
        let rnd = f("ap_fixed<8,3,AP_RND>");
        assert_eq!(trn.to_f64(trn.from_f64(0.1)), 0.09375);
        assert_eq!(trn.to_f64(trn.from_f64(-0.1)), -0.125);
        assert_eq!(rnd.to_f64(rnd.from_f64(-0.1)), -0.09375);
        assert_eq!(trn.to_f64(trn.from_f64(5.0)), -3.0);
        let sat = f("ap_fixed<8,3,AP_TRN,AP_SAT>");
        assert_eq!(sat.to_f64(sat.from_f64(5.0)), 3.96875);
        assert_eq!(sat.to_f64(sat.from_f64(-5.0)), -4.0);
    }

    #[test]
    fn sat_zero_and_sat_sym() {
        let z = f("ap_fixed<8,3,AP_TRN,AP_SAT_ZERO>");
        assert_eq!(z.from_f64(5.0), 0);
        assert_eq!(z.from_f64(-5.0), 0);
        assert_eq!(z.from_f64(4.0), 0);
        assert_eq!(z.to_f64(z.from_f64(-4.0)), -4.0);
        assert_eq!(z.to_f64(z.from_f64(3.96875)), 3.96875);
        let zr = f("ap_fixed<8,3,AP_RND,AP_SAT_ZERO>");
        assert_eq!(zr.from_f64(3.984375), 0, "rounds to 4.0, out of range");
        let s = f("ap_fixed<8,3,AP_TRN,AP_SAT_SYM>");
        assert_eq!(s.to_f64(s.from_f64(-4.0)), -3.96875, "the minimum becomes -max");
        assert_eq!(s.to_f64(s.from_f64(-5.0)), -3.96875);
        assert_eq!(s.to_f64(s.from_f64(5.0)), 3.96875);
        assert_eq!(s.to_f64(s.from_f64(-3.96875)), -3.96875);
        assert_eq!(s.to_f64(s.from_f64(-3.97)), -3.96875, "TRN floors to -4.0, then -max");
        // Headers: a 1-bit signed type keeps -1 (−max is built as 100…0 | 1).
        let one = f("ap_fixed<1,1,AP_TRN,AP_SAT_SYM>");
        assert_eq!(one.from_f64(-1.0), -1);
        assert_eq!(one.from_f64(-7.0), -1);
        assert_eq!(one.from_f64(3.0), 0);
        // Unsigned AP_SAT_SYM is plain saturation.
        let u = f("ap_ufixed<4,2,AP_TRN,AP_SAT_SYM>");
        assert_eq!((u.from_f64(-1.0), u.from_f64(9.0)), (0, 15));
    }

    #[test]
    fn unsigned_formats() {
        let u = f("ap_ufixed<8,0>");
        assert_eq!((u.min_raw(), u.max_raw(), u.quantum()), (0, 255, 1.0 / 256.0));
        assert_eq!(u.from_f64(0.5), 128);
        assert_eq!(u.from_f64(1.0), 0, "wraps");
        assert_eq!(u.from_f64(-0.25), 192, "-64 mod 256");
        let sat = u.with_modes(Rounding::Trn, Overflow::Sat);
        assert_eq!((sat.from_f64(1.0), sat.from_f64(-0.25)), (255, 0));
        let r = f("ap_ufixed<4,4,AP_RND>");
        assert_eq!((r.from_f64(2.5), r.from_f64(2.4)), (3, 2));
        // Signed to unsigned, raw to raw: -1/16 in <6,2> → <4,4> TRN wraps to 15.
        assert_eq!(f("ap_ufixed<4,4>").convert_raw(-1, 4), 15);
        assert_eq!(f("ap_ufixed<4,4>").convert_from(&f("ap_fixed<6,2>"), -1), 15);
        assert_eq!(f("ap_ufixed<4,4,AP_TRN_ZERO>").convert_raw(-1, 4), 0);
    }

    #[test]
    fn product_and_sum_formats() {
        let a = f("ap_fixed<8,3>");
        let int = f("ap_fixed<32,32>");
        assert_eq!(a.product(&int), f("ap_fixed<40,35>"), "a*3");
        assert_eq!(a.product(&a), f("ap_fixed<16,6>"));
        assert_eq!(f("ap_fixed<8,3,AP_RND,AP_SAT>").product(&a), f("ap_fixed<16,6>"), "modes drop to TRN/WRAP");
        assert_eq!(a.product(&f("ap_ufixed<8,0>")), f("ap_fixed<16,3>"));
        assert_eq!(f("ap_ufixed<4,2>").product(&f("ap_ufixed<6,-1>")), f("ap_ufixed<10,1>"));
        assert_eq!(a.sum(&a), f("ap_fixed<9,4>"));
        assert_eq!(a.sum(&f("ap_ufixed<8,0>")), f("ap_fixed<12,4>"));
        assert_eq!(f("ap_ufixed<8,0>").sum(&a), f("ap_fixed<12,4>"));
        assert_eq!(f("ap_ufixed<8,2>").sum(&f("ap_ufixed<4,4>")), f("ap_ufixed<11,5>"));
        assert_eq!(f("ap_fixed<24,14,AP_RND,AP_SAT>").sum(&f("ap_fixed<16,6>")), f("ap_fixed<25,15>"));
        assert_eq!(f("ap_fixed<4,8>").sum(&f("ap_fixed<4,6>")), f("ap_fixed<7,9>"), "F = max(-4, -2)");
        assert!(f("ap_fixed<40,3>").try_product(&f("ap_fixed<32,3>")).is_err());
        assert!(f("ap_ufixed<63,3>").try_sum(&f("ap_ufixed<63,3>")).is_err());
    }

    #[test]
    fn ranges_and_bits() {
        let a = f("ap_fixed<8,3>");
        assert_eq!((a.frac(), a.min_raw(), a.max_raw(), a.quantum()), (5, -128, 127, 1.0 / 32.0));
        let w = f("ap_fixed<64,64>");
        assert_eq!((w.min_raw(), w.max_raw()), (i64::MIN, i64::MAX));
        let u = f("ap_ufixed<63,-2>");
        assert_eq!((u.min_raw(), u.max_raw(), u.frac()), (0, i64::MAX, 65));
        let one = f("ap_fixed<1,1>");
        assert_eq!((one.min_raw(), one.max_raw()), (-1, 0));
        assert_eq!(f("ap_fixed<4,8>").quantum(), 16.0);
        assert_eq!(a.to_bits(-13), 0xF3);
        assert_eq!(a.from_bits(0xF3), -13);
        assert_eq!(a.from_bits(0x1F3), -13, "high bits ignored");
        assert_eq!(w.to_bits(-1), u64::MAX);
        assert_eq!(f("ap_ufixed<8,0>").from_bits(0xF3), 0xF3);
    }

    #[test]
    fn assignments_that_assert_in_debug_cpp() {
        let src = f("ap_fixed<5,1>"); // F = 4
        assert!(f("ap_fixed<2,8,AP_RND>").assignment_asserts_in_cpp(&src), "shift 10 > 5");
        assert!(f("ap_fixed<2,4,AP_RND>").assignment_asserts_in_cpp(&src), "shift 6 > 5");
        assert!(!f("ap_fixed<3,4,AP_RND>").assignment_asserts_in_cpp(&src), "shift 5 = W: the sign bit is read");
        assert!(!f("ap_fixed<2,8>").assignment_asserts_in_cpp(&src), "TRN reads no bit");
        assert!(f("ap_fixed<2,8,AP_TRN_ZERO>").assignment_asserts_in_cpp(&src));
        assert!(!f("ap_fixed<2,8,AP_TRN_ZERO>").assignment_asserts_in_cpp(&f("ap_ufixed<5,1>")), "TRN_ZERO of unsigned = TRN");
        assert!(!f("ap_fixed<8,3,AP_RND>").assignment_asserts_in_cpp(&f("ap_fixed<24,14>")));
    }

    #[test]
    fn huge_shifts() {
        let rnd = f("ap_fixed<8,3,AP_RND>");
        assert_eq!(rnd.convert_raw(1, 1000), 0);
        assert_eq!(rnd.convert_raw(-1, 1000), 0, "qb and r are sign bits: -tiny rounds to 0");
        assert_eq!(f("ap_fixed<8,3>").convert_raw(-1, 1000), -1, "TRN floors");
        assert_eq!(f("ap_fixed<8,3,AP_TRN_ZERO>").convert_raw(-1, 1000), 0);
        assert_eq!(f("ap_fixed<8,3,AP_RND_INF>").convert_raw(i128::MIN, 200), 0);
        assert_eq!(f("ap_fixed<8,3>").convert_raw(i128::MIN, 200), -1);
        assert_eq!(f("ap_fixed<8,3,AP_RND_MIN_INF>").convert_raw(i128::MIN, 133), -1, "-2^127·2^-128: a tie at -0.5 LSB");
        assert_eq!(f("ap_fixed<8,3,AP_RND_ZERO>").convert_raw(i128::MIN, 133), 0);
        assert_eq!(f("ap_fixed<8,3,AP_RND_ZERO>").convert_raw(i128::MIN, 132), -1, "exactly -1 LSB");
        for (o, pos, neg) in
            [(Overflow::Wrap, 0, 0), (Overflow::Sat, 127, -128), (Overflow::SatZero, 0, 0), (Overflow::SatSym, 127, -127)]
        {
            let d = f("ap_fixed<8,3>").with_modes(Rounding::Trn, o);
            assert_eq!((d.convert_raw(1, -1000), d.convert_raw(-1, -1000)), (pos, neg), "{d}");
            assert_eq!((d.convert_raw(3, -125), d.convert_raw(-3, -125)), (pos, neg), "{d}");
        }
        let w = f("ap_fixed<64,64>");
        assert_eq!(w.convert_raw(i128::MAX, 0), -1, "low 64 bits");
        assert_eq!(w.convert_raw(i128::MIN, 0), 0);
        assert_eq!(w.convert_raw(3, -63), i64::MIN);
        let ws = w.with_modes(Rounding::Trn, Overflow::Sat);
        assert_eq!((ws.convert_raw(i128::MAX, 0), ws.convert_raw(i128::MIN, 0)), (i64::MAX, i64::MIN));
        // Wrapping keeps the low bits of a huge left shift: 3·2^62 → bit 62 set, bit 63 wraps to sign.
        assert_eq!(w.convert_raw(3, -62), i64::MIN + (1 << 62));
    }

    #[test]
    fn non_finite_and_special_doubles() {
        for o in Overflow::ALL {
            let d = f("ap_fixed<8,3>").with_modes(Rounding::Rnd, o);
            let (pos, neg) = match o {
                Overflow::Wrap | Overflow::SatZero => (0, 0),
                Overflow::Sat => (127, -128),
                Overflow::SatSym => (127, -127),
            };
            assert_eq!((d.from_f64(f64::INFINITY), d.from_f64(f64::NEG_INFINITY)), (pos, neg), "{d}");
            assert_eq!((d.from_f64(f64::NAN), d.from_f64(-f64::NAN)), (pos, neg), "{d} NaN by sign bit");
            assert_eq!((d.from_f64(0.0), d.from_f64(-0.0)), (0, 0));
            assert_eq!(d.from_f64(f64::from_bits(1)), 0);
            assert!(d.checked_from_f64(f64::NAN).is_err());
            assert_eq!(d.checked_from_f64(1.5), Ok(48));
        }
        assert_eq!(f("ap_fixed<8,3>").from_f64(-f64::from_bits(1)), -1, "TRN floors a negative subnormal");
    }

    #[test]
    fn accumulation_rounds_and_wraps_per_step() {
        // acc <6,3> (F=3), products with F=4: each += drops one bit.
        let acc = f("ap_fixed<6,3>");
        let p_frac = 4;
        let step = |a, p| acc.accumulate(a, p, p_frac);
        assert_eq!(step(0, 1), 0, "1/16 floors to 0");
        assert_eq!(step(0, -1), -1, "-1/16 floors to -1/8");
        let rnd = acc.with_modes(Rounding::Rnd, Overflow::Wrap);
        assert_eq!(rnd.accumulate(1, 1, p_frac), 2, "1/8 + 1/16 = 3/16 ties up to 2/8");
        // 3.875 + 0.25 wraps under AP_WRAP, saturates under AP_SAT.
        assert_eq!(step(31, 4), -31);
        assert_eq!(acc.with_modes(Rounding::Trn, Overflow::Sat).accumulate(31, 4, p_frac), 31);
        // Per-step rounding is not the same as rounding once: 4 × (1/16) in TRN stays 0.
        let mut a = 0;
        for _ in 0..4 {
            a = step(a, 1);
        }
        assert_eq!(a, 0);
        assert_eq!(acc.convert_raw(4, p_frac), 2);
        // A product coarser than the accumulator: exact left shift.
        assert_eq!(f("ap_fixed<20,4>").accumulate(3, -5, 14), 3 - 5 * 4);
        assert_eq!(f("ap_fixed<20,4>").accumulate(3, -5, -2), 3 - 5 * (1 << 18) + (1 << 20), "wraps");
    }

    // ---- Parsing, printing, serde ----

    #[test]
    fn display_and_parse() {
        for (text, canon) in [
            ("ap_fixed<8,3>", "ap_fixed<8,3>"),
            ("ap_fixed<8,3,AP_TRN,AP_WRAP>", "ap_fixed<8,3>"),
            ("ap_fixed<8,3,AP_TRN>", "ap_fixed<8,3>"),
            ("ap_fixed<8,3,AP_RND>", "ap_fixed<8,3,AP_RND>"),
            ("ap_fixed<8,3,AP_RND,AP_WRAP>", "ap_fixed<8,3,AP_RND>"),
            ("ap_fixed<9,3,AP_RND,AP_SAT>", "ap_fixed<9,3,AP_RND,AP_SAT>"),
            ("ap_fixed<8,3,AP_TRN,AP_SAT>", "ap_fixed<8,3,AP_TRN,AP_SAT>"),
            ("ap_ufixed<8,0>", "ap_ufixed<8,0>"),
            ("  ap_ufixed < 8 , -2 , AP_RND_CONV , AP_SAT_SYM >  ", "ap_ufixed<8,-2,AP_RND_CONV,AP_SAT_SYM>"),
            ("ap_fixed<\t64,+512>", "ap_fixed<64,512>"),
        ] {
            let p = FixedFormat::parse(text).unwrap();
            assert_eq!(p.to_string(), canon, "{text:?}");
            assert_eq!(text.parse::<FixedFormat>().unwrap(), p);
        }
        let p = f("ap_fixed<9,3,AP_RND_MIN_INF,AP_SAT_ZERO>");
        assert_eq!((p.signed, p.width, p.int, p.rounding, p.overflow), (true, 9, 3, Rounding::RndMinInf, Overflow::SatZero));
        assert_eq!(FixedFormat::new(true, 8, 3).unwrap(), f("ap_fixed<8,3>"));
    }

    #[test]
    fn malformed_formats_are_explained() {
        let msg = |s: &str| FixedFormat::parse(s).unwrap_err().to_string();
        let m = msg("ap_fixed<8,>");
        assert!(m.starts_with("format \"ap_fixed<8,>\": expected ap_fixed<W,I[,Q[,O]]>"), "{m}");
        assert!(m.contains("I is empty"), "{m}");
        for (bad, why) in [
            ("ap_fixed<8>", "found 1 parameters"),
            ("ap_fixed<8,3,AP_RND,AP_SAT,2>", "N is not supported"),
            ("ap_fixed<8,3,AP_TRN,AP_WRAP_SM>", "AP_WRAP_SM is not supported"),
            ("ap_fixed<8,3,AP_RND_EVEN>", "unknown quantization mode `AP_RND_EVEN`"),
            ("ap_fixed<8,3,ap_rnd>", "unknown quantization mode"),
            ("ap_fixed<8,3,AP_RND,AP_SATURATE>", "unknown overflow mode"),
            ("ap_fixed<0,3>", "width W = 0 is out of range: expected 1..=64"),
            ("ap_fixed<65,3>", "expected 1..=64"),
            ("ap_ufixed<64,3>", "64-bit ap_ufixed is not supported"),
            ("ap_fixed<8,513>", "expected -512..=512"),
            ("ap_fixed<-8,3>", "W must be a positive integer, found `-8`"),
            ("ap_fixed<8,x>", "I must be an integer"),
            ("ap_int<8>", "does not start with ap_fixed"),
            ("ap_fixed 8,3", "<...>"),
            ("ap_fixed<8,3>x", "<...>"),
            ("", "does not start"),
        ] {
            let m = msg(bad);
            assert!(m.starts_with(&format!("format {bad:?}: ")), "{m}");
            assert!(m.contains(why), "{bad:?}: {m}");
        }
        assert!(FixedFormat::new(false, 64, 0).is_err());
        assert!(FixedFormat::new(true, 8, -513).unwrap_err().to_string().contains("ap_fixed<8,-513>"));
        assert!("AP_WRAP_SM".parse::<Overflow>().unwrap_err().to_string().contains("not supported"));
        assert_eq!("AP_RND_CONV".parse::<Rounding>(), Ok(Rounding::RndConv));
    }

    #[test]
    fn serde_uses_the_cpp_spelling() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Layer {
            weight: FixedFormat,
            acc: FixedFormat,
        }
        let l = Layer { weight: f("ap_fixed<8,3>"), acc: f("ap_fixed<24,14,AP_RND,AP_SAT>") };
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, r#"{"weight":"ap_fixed<8,3>","acc":"ap_fixed<24,14,AP_RND,AP_SAT>"}"#);
        assert_eq!(serde_json::from_str::<Layer>(&json).unwrap(), l);
        let e = serde_json::from_str::<Layer>(r#"{"weight":"ap_fixed<8,>","acc":"ap_fixed<8,3>"}"#).unwrap_err();
        assert!(e.to_string().contains("format \"ap_fixed<8,>\": expected"), "{e}");
    }

    // ---- Properties against the reference ----

    fn arb_modes() -> impl Strategy<Value = (Rounding, Overflow)> {
        (0..7usize, 0..4usize).prop_map(|(q, o)| (Rounding::ALL[q], Overflow::ALL[o]))
    }

    fn arb_format(int_lo: i32, int_hi: i32) -> impl Strategy<Value = FixedFormat> {
        arb_format_w(64, int_lo, int_hi)
    }

    fn arb_format_w(max_w: u32, int_lo: i32, int_hi: i32) -> impl Strategy<Value = FixedFormat> {
        (any::<bool>(), 1u32..=max_w, int_lo..=int_hi, arb_modes()).prop_map(|(signed, w, int, (q, o))| FixedFormat {
            signed,
            width: if signed { w } else { w.min(63) },
            int,
            rounding: q,
            overflow: o,
        })
    }

    fn arb_value() -> impl Strategy<Value = i128> {
        prop_oneof![
            -300i128..300,
            any::<i64>().prop_map(|v| v as i128),
            any::<u64>().prop_map(|v| v as i128),
            (any::<i64>(), 0u32..63).prop_map(|(v, s)| (v >> s) as i128),
        ]
    }

    fn arb_format_and_raw(int_lo: i32, int_hi: i32) -> impl Strategy<Value = (FixedFormat, i64)> {
        arb_format_and_raw_w(64, int_lo, int_hi)
    }

    fn arb_format_and_raw_w(max_w: u32, int_lo: i32, int_hi: i32) -> impl Strategy<Value = (FixedFormat, i64)> {
        arb_format_w(max_w, int_lo, int_hi).prop_flat_map(|f| {
            let (lo, hi) = (f.min_raw(), f.max_raw());
            let near = move |d: i64| if d < 0 { lo.saturating_sub(d + 1).min(hi) } else { hi.saturating_sub(d).max(lo) };
            (
                Just(f),
                prop_oneof![4 => lo..=hi, 1 => (-4i64..4).prop_map(near), 1 => (-3i64..=3).prop_map(move |v| v.clamp(lo, hi))],
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn convert_raw_matches_reference(dst in arb_format(-80, 140), v in arb_value(), sh in -60i32..=126) {
            let src_frac = dst.frac() + sh;
            prop_assert_eq!(dst.convert_raw(v, src_frac), reference(&dst, v, src_frac), "{} <- {}·2^-{}", dst, v, src_frac);
        }

        #[test]
        fn convert_wide_values_matches_reference(
            dst in arb_format(-80, 140),
            v in (any::<i128>(), 27u32..=127).prop_map(|(v, s)| v >> s),
            sh in -25i32..=126,
        ) {
            let src_frac = dst.frac() + sh;
            prop_assert_eq!(dst.convert_raw(v, src_frac), reference(&dst, v, src_frac), "{} <- {}·2^-{}", dst, v, src_frac);
        }

        #[test]
        fn raw_to_raw_matches_reference((src, raw) in arb_format_and_raw(-40, 100), dst in arb_format(0, 0), sh in -60i32..=126) {
            // dst gets the F that puts the shift within the reference's reach.
            let dst = FixedFormat { int: dst.width as i32 - (src.frac() - sh), ..dst };
            dst.validate().unwrap();
            let want = reference(&dst, raw as i128, src.frac());
            prop_assert_eq!(dst.convert_raw(raw as i128, src.frac()), want, "{} -> {} raw {}", src, dst, raw);
        }

        #[test]
        fn accumulate_matches_reference((acc, a) in arb_format_and_raw(-40, 100), p in arb_value(), d in -40i32..=60) {
            let p_frac = acc.frac() + d;
            let common = acc.frac().max(p_frac);
            let exact = ((a as i128) << (common - acc.frac())) + (p << (common - p_frac));
            let want = reference(&acc, exact, common);
            prop_assert_eq!(acc.accumulate(a, p, p_frac), want, "{} {} += {}·2^-{}", acc, a, p, p_frac);
        }

        #[test]
        fn from_f64_matches_exact_dyadic_value(
            dst in arb_format(-40, 100),
            m in prop_oneof![-(1i64 << 53) + 1..(1i64 << 53), -64i64..64],
            sh in -60i32..=126,
        ) {
            // x = m·2^-src_frac exactly (|m| < 2^53, exponent well inside the normal range).
            let src_frac = dst.frac() + sh;
            let x = m as f64 * pow2(-src_frac);
            prop_assert_eq!(dst.from_f64(x), reference(&dst, m as i128, src_frac), "{} <- {:e}", dst, x);
        }

        #[test]
        fn values_round_trip_through_f64((fmt, raw) in arb_format_and_raw(-MAX_INT_BITS, MAX_INT_BITS)) {
            prop_assume!(raw.unsigned_abs() <= 1 << 53);
            // Every raw value is in range; only AP_SAT_SYM moves one (the minimum).
            let fmt = fmt.with_modes(fmt.rounding, Overflow::Wrap);
            prop_assert_eq!(fmt.from_f64(fmt.to_f64(raw)), raw);
            prop_assert_eq!(fmt.from_bits(fmt.to_bits(raw)), raw);
        }

        #[test]
        fn parse_display_round_trip(fmt in arb_format(-MAX_INT_BITS, MAX_INT_BITS),
                                    spaces in prop::collection::vec(prop_oneof![Just(""), Just(" "), Just("\t"), Just("  ")], 12),
                                    explicit in 0..3usize) {
            let shown = fmt.to_string();
            prop_assert!(!shown.contains(' '));
            prop_assert_eq!(FixedFormat::parse(&shown).unwrap(), fmt);
            prop_assert_eq!(serde_json::from_str::<FixedFormat>(&serde_json::to_string(&fmt).unwrap()).unwrap(), fmt);
            // The same format written by hand: spaces anywhere, default modes spelled out or not.
            let s = &spaces;
            let name = if fmt.signed { "ap_fixed" } else { "ap_ufixed" };
            let mut text = format!("{}{}{}<{}{}{},{}{}{}", s[0], name, s[1], s[2], fmt.width, s[3], s[4], fmt.int, s[5]);
            let need = if fmt.overflow != Overflow::Wrap { 2 } else if fmt.rounding != Rounding::Trn { 1 } else { 0 };
            let n = need.max(explicit);
            if n >= 1 { text += &format!(",{}{}{}", s[6], fmt.rounding, s[7]); }
            if n >= 2 { text += &format!(",{}{}{}", s[8], fmt.overflow, s[9]); }
            text += &format!(">{}", s[10]);
            prop_assert_eq!(FixedFormat::parse(&text).unwrap(), fmt, "{:?}", text);
        }

        #[test]
        fn product_and_sum_types_hold_the_exact_results(
            (a, x) in arb_format_and_raw_w(24, -10, 20),
            (b, y) in arb_format_and_raw_w(24, -10, 20),
        ) {
            // Small enough that both types always exist (W ≤ 63).
            let p = a.product(&b);
            prop_assert_eq!(p.frac(), a.frac() + b.frac());
            let prod = x as i128 * y as i128;
            prop_assert!((p.min_raw() as i128..=p.max_raw() as i128).contains(&prod), "{} * {}", a, b);
            let s = a.sum(&b);
            let sum = ((x as i128) << (s.frac() - a.frac())) + ((y as i128) << (s.frac() - b.frac()));
            prop_assert!((s.min_raw() as i128..=s.max_raw() as i128).contains(&sum), "{} + {} = {}", a, b, s);
            // Converting into the sum type is exact (no rounding, no overflow), whatever its modes.
            prop_assert_eq!(s.convert_raw(x as i128, a.frac()) as i128, (x as i128) << (s.frac() - a.frac()));
        }
    }

    // ---- Test vectors shared with the real headers (testbench/ap_vectors.cpp) ----
    //
    // Regenerate with
    //   cargo test --release -p rfpga-core -- --ignored regenerate_ap_vectors
    // then check them against the headers with `make check-ap-vectors`.

    const VECTOR_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ap_fixed");
    const REGENERATE: &str = "cargo test --release -p rfpga-core -- --ignored regenerate_ap_vectors";

    /// splitmix64: a fixed, tiny generator so that the vectors never depend on a crate's version.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        /// Uniform in lo..=hi.
        fn range(&mut self, lo: i64, hi: i64) -> i64 {
            let span = (hi as i128 - lo as i128 + 1) as u128;
            (lo as i128 + (self.next() as u128 % span) as i128) as i64
        }
        fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
            xs[self.range(0, xs.len() as i64 - 1) as usize]
        }
    }

    fn all_modes() -> Vec<(Rounding, Overflow)> {
        Rounding::ALL.iter().flat_map(|&q| Overflow::ALL.iter().map(move |&o| (q, o))).collect()
    }

    /// `n` of the 28 mode pairs, starting at `*next` and moving on, so that every pair comes
    /// up again and again across shapes.
    fn some_modes(next: &mut usize, n: usize) -> Vec<(Rounding, Overflow)> {
        let all = all_modes();
        (0..n)
            .map(|_| {
                // Step 5 (coprime with 28 and 7) visits every pair and every rounding early.
                let m = all[*next % all.len()];
                *next += 5;
                m
            })
            .collect()
    }

    fn random_format(rng: &mut SplitMix) -> FixedFormat {
        let signed = rng.range(0, 3) != 0;
        let widths = [1u32, 2, 3, 4, 5, 7, 8, 12, 16, 17, 24, 31, 32, 33, 48, 62, 63, 64];
        let width = rng.pick(&widths).min(if signed { 64 } else { 63 });
        let int = match rng.range(0, 9) {
            0 => rng.range(-(MAX_INT_BITS as i64), MAX_INT_BITS as i64) as i32,
            1 => rng.pick(&[-MAX_INT_BITS, MAX_INT_BITS]),
            _ => rng.range(-8, width as i64 + 8) as i32,
        };
        FixedFormat::new(signed, width, int).unwrap()
    }

    /// Raw values worth trying in `f`: its ends, around zero, and random ones.
    fn some_raws(rng: &mut SplitMix, f: &FixedFormat, random: usize) -> Vec<i64> {
        let (lo, hi) = (f.min_raw(), f.max_raw());
        let mut v = vec![lo, hi, 0, lo.saturating_add(1).min(hi), hi.saturating_sub(1).max(lo), (-1i64).clamp(lo, hi), 1.min(hi)];
        for _ in 0..random {
            v.push(rng.range(lo, hi));
        }
        v.dedup();
        v
    }

    fn conversion_cases() -> Vec<(FixedFormat, FixedFormat, i64)> {
        let mut out = Vec::new();
        // Every raw value of a small source, every mode: each shape picks one corner of the
        // headers' conversion (narrowing, sign change, left shift, 1 bit, F < 0, the target
        // wholly below or above the source's bits, SAT_SYM's minimum).
        for (src, dst) in [
            ("ap_fixed<6,2>", "ap_fixed<4,1>"),
            ("ap_fixed<6,2>", "ap_ufixed<4,1>"),
            ("ap_ufixed<6,2>", "ap_fixed<4,1>"),
            ("ap_ufixed<5,1>", "ap_ufixed<2,0>"),
            ("ap_fixed<5,3>", "ap_fixed<6,1>"), // left shift
            ("ap_fixed<5,1>", "ap_fixed<5,1>"), // SAT_SYM's minimum
            ("ap_fixed<5,1>", "ap_fixed<1,1>"),
            ("ap_fixed<5,1>", "ap_ufixed<1,0>"),
            ("ap_fixed<5,1>", "ap_fixed<3,0>"),  // first dropped bit = the source's MSB
            ("ap_fixed<5,1>", "ap_fixed<3,1>"),  // new MSB just above the source's
            ("ap_fixed<5,1>", "ap_fixed<3,4>"),  // F < 0, shift = W_src
            ("ap_fixed<5,1>", "ap_fixed<2,4>"),  // shift = W_src + 1
            ("ap_fixed<5,1>", "ap_fixed<2,8>"),  // shift > W_src + 1
            ("ap_fixed<5,1>", "ap_fixed<3,-6>"), // the whole target below the source's LSB
        ] {
            let (src, dst) = (f(src), f(dst));
            for (q, o) in all_modes() {
                for raw in src.min_raw()..=src.max_raw() {
                    out.push((src, dst.with_modes(q, o), raw));
                }
            }
        }
        let mut rng = SplitMix(0x0a9f_1c5e);
        let mut next = 0;
        // Extremes: 64-bit types, shifts past 128 bits, |I| = 512, 63-bit unsigned.
        let extremes = [
            ("ap_fixed<64,64>", "ap_fixed<8,3>"),
            ("ap_fixed<64,0>", "ap_fixed<8,3>"),
            ("ap_fixed<64,-512>", "ap_fixed<16,512>"),
            ("ap_fixed<16,512>", "ap_fixed<64,-512>"),
            ("ap_ufixed<63,63>", "ap_fixed<64,64>"),
            ("ap_fixed<64,64>", "ap_ufixed<63,63>"),
            ("ap_ufixed<63,1>", "ap_ufixed<1,1>"),
            ("ap_fixed<64,10>", "ap_fixed<64,11>"),
            ("ap_fixed<64,33>", "ap_fixed<32,32>"),
            ("ap_fixed<1,1>", "ap_fixed<64,-20>"),
        ];
        let mut shapes: Vec<(FixedFormat, FixedFormat)> = extremes.iter().map(|(a, b)| (f(a), f(b))).collect();
        for _ in 0..48 {
            shapes.push((random_format(&mut rng), random_format(&mut rng)));
        }
        for (src, dst) in shapes {
            for (q, o) in some_modes(&mut next, 4) {
                for raw in some_raws(&mut rng, &src, 5) {
                    out.push((src, dst.with_modes(q, o), raw));
                }
            }
        }
        out
    }

    fn double_cases() -> Vec<(FixedFormat, f64)> {
        let mut rng = SplitMix(0xd0b1e);
        let mut next = 3;
        let mut dsts: Vec<FixedFormat> = all_modes().into_iter().map(|(q, o)| f("ap_fixed<8,3>").with_modes(q, o)).collect();
        dsts.extend(some_modes(&mut next, 7).into_iter().map(|(q, o)| f("ap_ufixed<8,0>").with_modes(q, o)));
        for s in [
            "ap_fixed<16,6>",
            "ap_fixed<12,-2>",
            "ap_fixed<24,14>",
            "ap_fixed<4,8>",
            "ap_fixed<64,32>",
            "ap_ufixed<63,10>",
            "ap_fixed<1,1>",
            "ap_fixed<10,512>",
            "ap_fixed<10,-500>",
            "ap_fixed<64,-512>",
            "ap_fixed<64,512>",
            "ap_fixed<32,0>",
        ] {
            dsts.extend(some_modes(&mut next, 4).into_iter().map(|(q, o)| f(s).with_modes(q, o)));
        }
        let specials = [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::from_bits(0xfff4_0000_0000_0000),
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::from_bits(1),
            -f64::from_bits(1),
            f64::from_bits(0x000f_ffff_ffff_ffff),
            f64::MAX,
            f64::MIN,
            0.1,
            -0.1,
            5.0,
            -5.0,
            3.984375,
            2.5,
            -2.5,
            1.0 / 3.0,
            -1.0 / 3.0,
            1.0,
            -1.0,
            0.5,
            -0.5,
        ];
        let mut out = Vec::new();
        for dst in dsts {
            let q = dst.quantum();
            let mut xs: Vec<f64> = specials.to_vec();
            // Grid points, exact ties (k + 1/2), one ulp either side of them, quarter points;
            // k within 52 bits so that (k + 1/2)·q is exact.
            let (lo, hi) = (dst.min_raw().max(-(1 << 51)), dst.max_raw().min(1 << 51));
            let mut ks = vec![lo, hi, 0, -1, lo - 1, hi + 1, lo - 2, hi + 2];
            for _ in 0..4 {
                ks.push(rng.range(lo - 3, hi + 3));
            }
            for k in ks {
                let t = (k as f64 + 0.5) * q;
                xs.extend([k as f64 * q, t, f64::from_bits(t.to_bits() + 1), f64::from_bits(t.to_bits() - 1)]);
                xs.extend([(k as f64 + 0.25) * q, (k as f64 + 0.75) * q]);
            }
            // Random doubles from 60 bits below the LSB to 10 bits above the range.
            for _ in 0..10 {
                let m = rng.range(-(1 << 53) + 1, (1 << 53) - 1) as f64;
                let e = rng.range(-(dst.frac() as i64) - 113, dst.int as i64 - 43) as i32;
                xs.push(m * pow2(e));
            }
            for x in xs {
                out.push((dst, x));
            }
        }
        out
    }

    fn accumulation_cases() -> Vec<(FixedFormat, FixedFormat, Vec<i64>)> {
        let mut rng = SplitMix(0xacc);
        let mut next = 1;
        let mut pairs: Vec<(FixedFormat, FixedFormat)> =
            all_modes().into_iter().map(|(q, o)| (f("ap_fixed<12,5>").with_modes(q, o), f("ap_fixed<16,6>"))).collect();
        pairs.push((f("ap_fixed<24,14>"), f("ap_fixed<16,6>")));
        for (acc, prod, n) in [
            ("ap_ufixed<10,5>", "ap_fixed<16,6>", 7),
            ("ap_fixed<8,3>", "ap_fixed<40,35>", 7),
            ("ap_fixed<20,4>", "ap_ufixed<12,2>", 4),
            ("ap_fixed<64,40>", "ap_fixed<64,30>", 4),
            ("ap_fixed<6,6>", "ap_fixed<9,-3>", 4),
        ] {
            for (q, o) in some_modes(&mut next, n) {
                pairs.push((f(acc).with_modes(q, o), f(prod)));
            }
        }
        let mut out = Vec::new();
        for (acc, prod) in pairs {
            for _ in 0..6 {
                let len = rng.range(1, 16) as usize;
                // Half of the sequences stay small, half use the whole range (overflow).
                let (lo, hi) = if rng.range(0, 1) == 0 {
                    (prod.min_raw(), prod.max_raw())
                } else {
                    (prod.min_raw().max(-64), prod.max_raw().min(64))
                };
                out.push((acc, prod, (0..len).map(|_| rng.range(lo, hi)).collect()));
            }
        }
        out
    }

    fn accumulate_all(acc: &FixedFormat, prod: &FixedFormat, raws: &[i64]) -> i64 {
        raws.iter().fold(0, |a, &p| acc.accumulate(a, p as i128, prod.frac()))
    }

    fn header(columns: &str, meaning: &str) -> String {
        format!("# {columns}\n# {meaning}\n# Raw values are signed decimal (value = raw·2^-F). Generated by `{REGENERATE}`.\n")
    }

    /// The C++ types each file needs, in order of first use: `testbench/ap_vectors.cpp`
    /// includes this, as formats are template arguments there.
    fn dispatch(conv: &[(String, String)], dbl: &[String], acc: &[(String, String)]) -> String {
        let mut s = String::from("// The ap_fixed types of the vector files, for testbench/ap_vectors.cpp.\n");
        s += &format!("// Generated by `{REGENERATE}`; do not edit.\n");
        s += "static const Conversion CONVERSIONS[] = {\n";
        for (a, b) in conv {
            s += &format!("    {{\"{a}\", \"{b}\", &convert<{a}, {b}>}},\n");
        }
        s += "};\nstatic const FromDouble DOUBLES[] = {\n";
        for d in dbl {
            s += &format!("    {{\"{d}\", &from_double<{d}>}},\n");
        }
        s += "};\nstatic const Accumulation ACCUMULATIONS[] = {\n";
        for (a, p) in acc {
            s += &format!("    {{\"{a}\", \"{p}\", &accumulate<{a}, {p}>}},\n");
        }
        s += "};\n";
        s
    }

    fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
        if !v.contains(&x) {
            v.push(x);
        }
    }

    #[test]
    #[ignore = "writes testdata/ap_fixed; run on purpose"]
    fn regenerate_ap_vectors() {
        let mut conv = header(
            "SRC_FORMAT DST_FORMAT SRC_RAW DST_RAW",
            "DST_RAW: the raw value of DST_FORMAT(x) for the SRC_FORMAT value x with raw value SRC_RAW.",
        );
        for (src, dst, raw) in conversion_cases() {
            conv += &format!("{src} {dst} {raw} {}\n", dst.convert_raw(raw as i128, src.frac()));
        }
        let mut dbl = header(
            "DST_FORMAT DOUBLE_AS_HEX_BITS DST_RAW",
            "DST_RAW: the raw value of DST_FORMAT(d), d the double with these IEEE-754 bits \
             (ties, NaN, inf, subnormals included).",
        );
        for (dst, x) in double_cases() {
            dbl += &format!("{dst} {:#018x} {}\n", x.to_bits(), dst.from_f64(x));
        }
        let mut acc = header(
            "ACC_FORMAT PRODUCT_FORMAT RAW1,RAW2,... FINAL_RAW",
            "ACC_FORMAT acc = 0; then acc += PRODUCT_FORMAT(RAWi) for each raw in order; FINAL_RAW: acc's raw value.",
        );
        for (a, p, raws) in accumulation_cases() {
            let list: Vec<String> = raws.iter().map(|r| r.to_string()).collect();
            acc += &format!("{a} {p} {} {}\n", list.join(","), accumulate_all(&a, &p, &raws));
        }
        std::fs::create_dir_all(VECTOR_DIR).unwrap();
        let files = read_vectors_from(&conv, &dbl, &acc);
        for (name, text) in
            [("conversions.txt", &conv), ("doubles.txt", &dbl), ("accumulations.txt", &acc), ("dispatch.inc", &files.dispatch)]
        {
            std::fs::write(format!("{VECTOR_DIR}/{name}"), text).unwrap();
        }
    }

    struct Vectors {
        conv: Vec<(FixedFormat, FixedFormat, i64, i64)>,
        dbl: Vec<(FixedFormat, u64, i64)>,
        acc: Vec<(FixedFormat, FixedFormat, Vec<i64>, i64)>,
        dispatch: String,
    }

    fn data_lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
        text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(|l| l.split_whitespace().collect())
    }

    fn read_vectors_from(conv: &str, dbl: &str, acc: &str) -> Vectors {
        let int = |s: &str| s.parse::<i64>().unwrap_or_else(|_| panic!("bad integer {s:?}"));
        let mut v = Vectors { conv: vec![], dbl: vec![], acc: vec![], dispatch: String::new() };
        let (mut cp, mut dp, mut ap) = (vec![], vec![], vec![]);
        for c in data_lines(conv) {
            assert_eq!(c.len(), 4, "conversions: {c:?}");
            v.conv.push((f(c[0]), f(c[1]), int(c[2]), int(c[3])));
            push_unique(&mut cp, (c[0].to_string(), c[1].to_string()));
        }
        for c in data_lines(dbl) {
            assert_eq!(c.len(), 3, "doubles: {c:?}");
            let bits = u64::from_str_radix(c[1].trim_start_matches("0x"), 16).unwrap();
            v.dbl.push((f(c[0]), bits, int(c[2])));
            push_unique(&mut dp, c[0].to_string());
        }
        for c in data_lines(acc) {
            assert_eq!(c.len(), 4, "accumulations: {c:?}");
            v.acc.push((f(c[0]), f(c[1]), c[2].split(',').map(int).collect(), int(c[3])));
            push_unique(&mut ap, (c[0].to_string(), c[1].to_string()));
        }
        v.dispatch = dispatch(&cp, &dp, &ap);
        v
    }

    #[test]
    fn ap_vector_files_match_the_implementation() {
        let read = |n: &str| {
            std::fs::read_to_string(format!("{VECTOR_DIR}/{n}"))
                .unwrap_or_else(|e| panic!("{VECTOR_DIR}/{n}: {e} (regenerate: {REGENERATE})"))
        };
        let v = read_vectors_from(&read("conversions.txt"), &read("doubles.txt"), &read("accumulations.txt"));
        assert_eq!(read("dispatch.inc"), v.dispatch, "dispatch.inc is stale: {REGENERATE}");
        let mut bad = Vec::new();
        for (src, dst, raw, want) in &v.conv {
            assert!(src.contains_raw(*raw) && dst.contains_raw(*want));
            let got = dst.convert_raw(*raw as i128, src.frac());
            if got != *want {
                bad.push(format!("{src} {dst} {raw}: file {want}, implementation {got}"));
            }
        }
        for (dst, bits, want) in &v.dbl {
            let got = dst.from_f64(f64::from_bits(*bits));
            if got != *want {
                bad.push(format!("{dst} {bits:#018x}: file {want}, implementation {got}"));
            }
        }
        for (acc, prod, raws, want) in &v.acc {
            assert!(raws.iter().all(|r| prod.contains_raw(*r)));
            let got = accumulate_all(acc, prod, raws);
            if got != *want {
                bad.push(format!("{acc} {prod} {raws:?}: file {want}, implementation {got}"));
            }
        }
        assert!(bad.is_empty(), "{} mismatches, first: {:#?}", bad.len(), &bad[..bad.len().min(10)]);
        // Every rounding × overflow pair in each file.
        for modes in [
            v.conv.iter().map(|c| (c.1.rounding, c.1.overflow)).collect::<Vec<_>>(),
            v.dbl.iter().map(|c| (c.0.rounding, c.0.overflow)).collect(),
            v.acc.iter().map(|c| (c.0.rounding, c.0.overflow)).collect(),
        ] {
            assert!(all_modes().iter().all(|m| modes.contains(m)));
        }
        assert!(
            v.conv.len() > 15000 && v.dbl.len() > 5000 && v.acc.len() > 300,
            "{} {} {}",
            v.conv.len(),
            v.dbl.len(),
            v.acc.len()
        );
    }
}
