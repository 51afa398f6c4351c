//! Training-mode BatchNorm fused with the skip sum and the ReLU after it (`csrc/batch_norm_act.cpp`):
//! `relu(BN(y) + sc)` in two passes over the activations each way, instead of libtorch's
//! BatchNorm (slow for 16–64 channels, channels-last) plus separate sum and ReLU passes and
//! their backward passes. Autograd differentiates it like any libtorch op.
//!
//! Used for channels-last float tensors on the CPU; everything else (CUDA, NCHW, evaluation)
//! takes libtorch's own ops. [`set_enabled`]`(false)` forces libtorch's ops everywhere, for
//! comparisons (`rfpga bench-train --native-batch-norm`, the tests against libtorch).

use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

use tch::{nn, Device, Kind, Tensor};
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

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the fused kernels on (the default) or off for the whole process.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
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
