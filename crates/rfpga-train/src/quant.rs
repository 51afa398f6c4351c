//! Quantization-aware training: fake quantization onto the exact `ap_fixed` grid, with the
//! rounding and overflow rules of `rfpga_core::fixed` (shared/notes/ap_fixed.md), and a
//! straight-through estimator for the gradient.
//!
//! Exactness: for a value x and F fraction bits, s = x·2^F is exact in floating point (a power
//! of two), and so are floor(s) and s − floor(s); the tie and sticky bits of the notes follow from
//! that fraction. Formats wider than 24 bits are computed in f64 so every raw value is exact.

use rfpga_core::fixed::{FixedFormat, Overflow, Rounding};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// What QAT quantizes; `None` leaves that part in floating point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quant {
    /// Convolution weights (after BatchNorm folding) and dense weights.
    pub weight: Option<FixedFormat>,
    /// Activations: every ReLU output (what flows between layers on the FPGA).
    pub act: Option<FixedFormat>,
    /// Folded biases.
    pub bias: Option<FixedFormat>,
    /// The network's input: the normalized image, as the FPGA receives it.
    #[serde(default)]
    pub input: Option<FixedFormat>,
    /// The gradient rule; files written before it existed meant `identity`.
    #[serde(default)]
    pub ste: SteRule,
}

/// How the straight-through estimator passes the gradient through fake quantization.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SteRule {
    /// The identity everywhere, also where the value saturated.
    #[default]
    Identity,
    /// The identity inside the format's range, zero where a saturating format clips
    /// (wrapping formats keep the identity: there is no clipped side to stop at).
    Clipped,
}

impl std::fmt::Display for Quant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |x: &Option<FixedFormat>| x.map_or("float".to_string(), |x| x.to_string());
        write!(
            f,
            "input {}, weights {}, activations {}, biases {}",
            show(&self.input),
            show(&self.weight),
            show(&self.act),
            show(&self.bias)
        )?;
        if self.ste != SteRule::Identity && !self.is_float() {
            write!(f, ", clipped straight-through gradient")?;
        }
        Ok(())
    }
}

impl Quant {
    pub fn is_float(&self) -> bool {
        self.weight.is_none() && self.act.is_none() && self.bias.is_none() && self.input.is_none()
    }
}

/// The raw range a saturating overflow rule clamps to: SAT_SYM's minimum is −max (the headers
/// build it as 10…01), except that 1-bit signed keeps −1 (−1 | 1 = −1).
pub fn saturated_raw_range(f: &FixedFormat) -> (f64, f64) {
    let lo = if f.overflow == Overflow::SatSym && f.signed { f.min_raw() | 1 } else { f.min_raw() };
    (lo as f64, f.max_raw() as f64)
}

/// The values `ap_fixed(double)` gives for every element of `t`.
pub fn fake_quant(t: &Tensor, f: &FixedFormat) -> Tensor {
    let kind = t.kind();
    let work = if f.width > 24 { Kind::Double } else { Kind::Float };
    let x = t.to_kind(work);
    let scale = 2f64.powi(f.frac());
    let s = &x * scale;
    let base = s.floor();
    let fr = &s - &base; // in [0, 1)
    let qb = fr.ge(0.5);
    let r = fr.ne(0.0).logical_and(&fr.ne(0.5)); // any bit below the first dropped one
    let neg = s.lt(0.0);
    let add = match f.rounding {
        Rounding::Trn => fr.zeros_like().to_kind(Kind::Bool),
        Rounding::TrnZero => neg.logical_and(&fr.ne(0.0)),
        Rounding::Rnd => qb,
        Rounding::RndZero => qb.logical_and(&neg.logical_or(&r)),
        Rounding::RndMinInf => qb.logical_and(&r),
        Rounding::RndInf => qb.logical_and(&neg.logical_not().logical_or(&r)),
        Rounding::RndConv => {
            let odd = base.remainder(2.0).ne(0.0);
            qb.logical_and(&odd.logical_or(&r))
        }
    };
    let raw = base + add.to_kind(work);
    let (lo, hi) = (f.min_raw() as f64, f.max_raw() as f64);
    let raw = match f.overflow {
        Overflow::Wrap => {
            let span = 2f64.powi(f.width as i32);
            (raw - lo).remainder(span) + lo
        }
        Overflow::Sat => raw.clamp(lo, hi),
        Overflow::SatZero => {
            let inside = raw.ge(lo).logical_and(&raw.le(hi));
            raw.where_self(&inside, &raw.zeros_like())
        }
        Overflow::SatSym => {
            let (lo, hi) = saturated_raw_range(f);
            raw.clamp(lo, hi)
        }
    };
    (raw / scale).to_kind(kind)
}

impl std::str::FromStr for SteRule {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "identity" => Ok(SteRule::Identity),
            "clipped" => Ok(SteRule::Clipped),
            _ => anyhow::bail!("expected identity or clipped, found `{s}`"),
        }
    }
}

/// Fake quantization with a straight-through gradient: the forward value is on the grid, the
/// backward pass sees the identity (`SteRule::Identity`) or the identity masked to the
/// format's range (`SteRule::Clipped`). Written as `q + (t − t)` rather than `t + (q − t)` so
/// the forward value is exactly `q` (the latter rounds).
pub fn ste(t: &Tensor, f: &FixedFormat, rule: SteRule) -> Tensor {
    if crate::fused::fake_quant_applies(t, f) {
        return crate::fused::fake_quant(t, f, rule);
    }
    ste_tensor(t, f, rule)
}

/// [`ste`] in libtorch's tensor ops: any device, kind and format.
pub fn ste_tensor(t: &Tensor, f: &FixedFormat, rule: SteRule) -> Tensor {
    let pass = t - t.detach();
    let pass = match (rule, f.overflow) {
        (SteRule::Identity, _) | (SteRule::Clipped, Overflow::Wrap) => pass,
        (SteRule::Clipped, _) => {
            let ulp = 2f64.powi(-f.frac());
            let (lo, hi) = saturated_raw_range(f);
            let inside = t.ge(lo * ulp).logical_and(&t.le(hi * ulp)).to_kind(t.kind()).detach();
            pass * inside
        }
    };
    fake_quant(t, f).detach() + pass
}

/// Applies `f` when there is one, with `q`'s gradient rule.
pub fn maybe_ste(t: Tensor, f: Option<&FixedFormat>, q: &Quant) -> Tensor {
    match f {
        Some(f) => ste(&t, f, q.ste),
        None => t,
    }
}
