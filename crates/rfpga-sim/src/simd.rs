//! Run-time choice of the widest vector instructions the CPU has, without building the whole
//! binary for them (it stays runnable on any x86-64 and on other architectures).

/// Calls `f` from a function compiled for AVX2 when the CPU has it, so the loops `f` inlines
/// (through `#[inline(always)]` helpers) use 256-bit registers; otherwise calls it as is.
#[inline(always)]
pub fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        unsafe fn call<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { call(f) };
    }
    f()
}
