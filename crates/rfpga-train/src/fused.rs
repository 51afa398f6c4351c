//! Hand-fused CPU kernels of the training step; autograd differentiates them like any libtorch op.
//!
//! - Training-mode BatchNorm fused with the skip sum and the ReLU after it
//!   (`csrc/batch_norm_act.cpp`): `relu(BN(y) + sc)` in two passes over the activations each way,
//!   instead of libtorch's BatchNorm (slow for 16–64 channels, channels-last) plus separate sum
//!   and ReLU passes and their backward passes. For channels-last float tensors on the CPU.
//! - QAT's fake quantization with its straight-through gradient (`csrc/fake_quant.cpp`): one
//!   pass each way instead of about a dozen, for float CPU tensors of saturating formats up to
//!   24 bits; the same grid values and gradients as `quant::fake_quant` and `quant::ste`.
//!
//! Everything else (CUDA, other layouts or formats, evaluation) takes libtorch's own ops.
//! [`set_enabled`]`(false)` forces libtorch's ops everywhere, for comparisons
//! (`rfpga bench-train --native-batch-norm`, the tests against libtorch).

use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

use rfpga_core::fixed::{FixedFormat, Overflow, Rounding};
use tch::{nn, Device, Kind, Tensor};

use crate::quant::SteRule;
use torch_sys::C_tensor;

extern "C" {
    fn rfpga_batch_norm_act(
        out: *mut *mut C_tensor,
        y: *const C_tensor,
        gamma: *const C_tensor,
        beta: *const C_tensor,
        sc: *const C_tensor,
        running_mean: *mut C_tensor,
        running_var: *mut C_tensor,
        relu: c_int,
        momentum: f64,
        eps: f64,
    ) -> *mut c_char;
}

extern "C" {
    fn rfpga_fake_quant(
        out: *mut *mut C_tensor,
        x: *const C_tensor,
        scale: f64,
        lo: f64,
        hi: f64,
        keep_lo: f64,
        keep_hi: f64,
        rounding: c_int,
        overflow: c_int,
        clipped: c_int,
    ) -> *mut c_char;
}

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the fused kernels on (the default) or off for the whole process.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

static FAKE_QUANT_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the fused fake quantization alone on (the default) or off, for comparisons
/// (`rfpga bench-train --qat F --native-fake-quant`).
pub fn set_fake_quant_enabled(on: bool) {
    FAKE_QUANT_ENABLED.store(on, Ordering::Relaxed);
}

/// Whether [`batch_norm_act`] takes `y` (training BN on a channels-last CPU float tensor).
pub fn applies(y: &Tensor) -> bool {
    enabled() && y.device() == Device::Cpu && y.kind() == Kind::Float && y.dim() == 4 && is_channels_last(y)
}

/// NHWC strides for an NCHW shape (tch has no memory-format query).
fn is_channels_last(t: &Tensor) -> bool {
    let (size, stride) = (t.size(), t.stride());
    let (c, h, w) = (size[1], size[2], size[3]);
    stride[1] == 1 && stride[3] == c && stride[2] == w * c && (size[0] == 1 || stride[0] == h * w * c)
}

/// `BN(y)` in training mode (batch statistics; running statistics updated with `momentum`),
/// then `+ sc` if given, then ReLU if `relu`. The caller checks [`applies`] first.
pub fn batch_norm_act(y: &Tensor, bn: &nn::BatchNorm, sc: Option<&Tensor>, relu: bool, momentum: f64, eps: f64) -> Tensor {
    let gamma = bn.ws.as_ref().expect("affine BatchNorm");
    let beta = bn.bs.as_ref().expect("affine BatchNorm");
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: every pointer is a live tensor owned by the caller for the duration of the call
    // (sc may be null); on success `out` is a fresh tensor we take ownership of.
    unsafe {
        let err = rfpga_batch_norm_act(
            &mut out,
            y.as_ptr(),
            gamma.as_ptr(),
            beta.as_ptr(),
            sc.map_or(std::ptr::null(), |s| s.as_ptr()),
            bn.running_mean.as_ptr() as *mut C_tensor,
            bn.running_var.as_ptr() as *mut C_tensor,
            relu as c_int,
            momentum,
            eps,
        );
        if !err.is_null() {
            let msg = CStr::from_ptr(err).to_string_lossy().into_owned();
            libc::free(err as *mut libc::c_void);
            // Shapes and kinds are checked by `applies` and the model's construction: a failure
            // here is a bug, reported the way tch reports libtorch errors.
            panic!("fused BatchNorm: {msg}");
        }
        Tensor::from_ptr(out)
    }
}

/// Whether [`fake_quant`] takes `x` in format `f`.
pub fn fake_quant_applies(x: &Tensor, f: &FixedFormat) -> bool {
    enabled() && FAKE_QUANT_ENABLED.load(Ordering::Relaxed) && x.device() == Device::Cpu && x.kind() == Kind::Float && f.width <= 24 && f.overflow != Overflow::Wrap
}

/// `quant::ste(x, f, rule)` in one pass each way. The caller checks [`fake_quant_applies`].
pub fn fake_quant(x: &Tensor, f: &FixedFormat, rule: SteRule) -> Tensor {
    let rounding = match f.rounding {
        Rounding::Trn => 0,
        Rounding::TrnZero => 1,
        Rounding::Rnd => 2,
        Rounding::RndZero => 3,
        Rounding::RndMinInf => 4,
        Rounding::RndInf => 5,
        Rounding::RndConv => 6,
    };
    let overflow = match f.overflow {
        Overflow::Sat => 0,
        Overflow::SatZero => 1,
        Overflow::SatSym => 2,
        Overflow::Wrap => unreachable!("fake_quant_applies excludes AP_WRAP"),
    };
    let (lo, hi) = crate::quant::saturated_raw_range(f);
    let ulp = 2f64.powi(-f.frac());
    let mut out: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: `x` is a live tensor for the duration of the call; on success `out` is a fresh
    // tensor we take ownership of.
    unsafe {
        let err = rfpga_fake_quant(
            &mut out,
            x.as_ptr(),
            2f64.powi(f.frac()),
            lo,
            hi,
            lo * ulp,
            hi * ulp,
            rounding,
            overflow,
            (rule == SteRule::Clipped) as c_int,
        );
        if !err.is_null() {
            let msg = CStr::from_ptr(err).to_string_lossy().into_owned();
            libc::free(err as *mut libc::c_void);
            panic!("fused fake quantization: {msg}");
        }
        Tensor::from_ptr(out)
    }
}
