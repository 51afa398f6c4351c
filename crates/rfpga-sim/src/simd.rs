//! Run-time choice of the widest vector instructions the CPU has, without building the whole
//! binary for them (it stays runnable on any x86-64 and on other architectures).

/// `avx2_or_plain!(fn name(args) { body })` defines `name`, which runs `body` compiled for
/// AVX-512 (F, VL, BW, DQ) or AVX2 when the CPU has them (with the `#[inline(always)]` helpers it calls, so their loops use
/// 256-bit registers), and as plain code otherwise.
macro_rules! avx2_or_plain {
    ($(#[$m:meta])* $vis:vis fn $name:ident $(<$($l:lifetime),*>)? ($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name $(<$($l),*>)? ($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            if $crate::simd::has_avx512() {
                // 64-bit lane min/max/arithmetic shift are native with AVX-512 (on 256-bit
                // registers too), emulated with AVX2.
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
                unsafe fn inner $(<$($l),*>)? ($($a: $t),*) $(-> $r)? $body
                // SAFETY: the CPU has these features (checked just above).
                return unsafe { inner($($a),*) };
            }
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                #[target_feature(enable = "avx2")]
                unsafe fn inner $(<$($l),*>)? ($($a: $t),*) $(-> $r)? $body
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { inner($($a),*) };
            }
            $body
        }
    };
}
pub(crate) use avx2_or_plain;

#[cfg(target_arch = "x86_64")]
pub fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512dq")
}
