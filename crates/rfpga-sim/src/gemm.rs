//! Integer matrix products `out[i][j] = Σ_k a[i][k]·b[j][k]` (both operands row-major with the
//! reduction dimension contiguous), exact by construction: callers pick the i16 kernel only when
//! the formats prove every partial sum fits in i32, and the i32×i32→i64 kernel only when they
//! fit in i64. The AVX2 kernel (`vpmaddwd`) is chosen at run time; the portable loop defines
//! the result and a test checks both agree.

/// The reduction length of the i16 kernel must be a multiple of this (pad with zeros).
pub const K_ALIGN: usize = 16;

/// i16 × i16 summed in i32. `a`: rows × k, `b`: cols × k, `out`: rows × cols.
pub fn gemm_i16(a: &[i16], b: &[i16], k: usize, out: &mut [i32]) {
    assert!(k % K_ALIGN == 0 && a.len() % k == 0 && b.len() % k == 0);
    let (rows, cols) = (a.len() / k, b.len() / k);
    assert_eq!(out.len(), rows * cols);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked above); bounds are asserted above.
        unsafe { avx2::gemm_i16(a, b, k, rows, cols, out) };
        return;
    }
    gemm_i16_portable(a, b, k, out);
}

pub fn gemm_i16_portable(a: &[i16], b: &[i16], k: usize, out: &mut [i32]) {
    let cols = b.len() / k;
    for (i, row) in a.chunks_exact(k).enumerate() {
        for (j, col) in b.chunks_exact(k).enumerate() {
            out[i * cols + j] = row.iter().zip(col).map(|(&x, &w)| x as i32 * w as i32).sum();
        }
    }
}

/// i32 × i32 summed in i64 (for formats wider than 16 bits).
pub fn gemm_i32(a: &[i32], b: &[i32], k: usize, out: &mut [i64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        /// The same loops, compiled for AVX2 (`vpmuldq`).
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(a: &[i32], b: &[i32], k: usize, out: &mut [i64]) {
            gemm_i32_portable(a, b, k, out)
        }
        // SAFETY: the CPU supports AVX2 (checked above).
        unsafe { avx2(a, b, k, out) };
        return;
    }
    gemm_i32_portable(a, b, k, out);
}

#[inline(always)]
fn gemm_i32_portable(a: &[i32], b: &[i32], k: usize, out: &mut [i64]) {
    let cols = b.len() / k;
    for (i, row) in a.chunks_exact(k).enumerate() {
        for (j, col) in b.chunks_exact(k).enumerate() {
            out[i * cols + j] = row.iter().zip(col).map(|(&x, &w)| x as i64 * w as i64).sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    unsafe fn hsum(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s)
    }

    /// 2 rows × 4 columns per step (8 accumulators, 6 loads per 8 `vpmaddwd`), scalar edges.
    #[target_feature(enable = "avx2")]
    pub unsafe fn gemm_i16(a: &[i16], b: &[i16], k: usize, rows: usize, cols: usize, out: &mut [i32]) {
        let load = |p: &[i16], off: usize| _mm256_loadu_si256(p.as_ptr().add(off) as *const __m256i);
        let mut i = 0;
        while i + 2 <= rows {
            let (r0, r1) = (i * k, (i + 1) * k);
            let mut j = 0;
            while j + 4 <= cols {
                let c = [j * k, (j + 1) * k, (j + 2) * k, (j + 3) * k];
                let mut acc = [_mm256_setzero_si256(); 8];
                let mut kk = 0;
                while kk < k {
                    let x0 = load(a, r0 + kk);
                    let x1 = load(a, r1 + kk);
                    for (n, &cn) in c.iter().enumerate() {
                        let w = load(b, cn + kk);
                        acc[n] = _mm256_add_epi32(acc[n], _mm256_madd_epi16(x0, w));
                        acc[4 + n] = _mm256_add_epi32(acc[4 + n], _mm256_madd_epi16(x1, w));
                    }
                    kk += 16;
                }
                for n in 0..4 {
                    out[i * cols + j + n] = hsum(acc[n]);
                    out[(i + 1) * cols + j + n] = hsum(acc[4 + n]);
                }
                j += 4;
            }
            for jj in j..cols {
                for r in [i, i + 1] {
                    out[r * cols + jj] = dot(&a[r * k..(r + 1) * k], &b[jj * k..(jj + 1) * k]);
                }
            }
            i += 2;
        }
        if i < rows {
            for jj in 0..cols {
                out[i * cols + jj] = dot(&a[i * k..(i + 1) * k], &b[jj * k..(jj + 1) * k]);
            }
        }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn dot(x: &[i16], w: &[i16]) -> i32 {
        let mut acc = _mm256_setzero_si256();
        for kk in (0..x.len()).step_by(16) {
            let a = _mm256_loadu_si256(x.as_ptr().add(kk) as *const __m256i);
            let b = _mm256_loadu_si256(w.as_ptr().add(kk) as *const __m256i);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
        }
        hsum(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn dispatched_kernel_equals_portable(rows in 1usize..7, cols in 1usize..10, k16 in 1usize..5, seed in any::<u64>()) {
            let k = k16 * K_ALIGN;
            // Small values: partial sums fit i32 as the callers guarantee.
            let mut s = seed;
            let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 33) % 512) as i16 - 256 };
            let a: Vec<i16> = (0..rows * k).map(|_| next()).collect();
            let b: Vec<i16> = (0..cols * k).map(|_| next()).collect();
            let mut fast = vec![0; rows * cols];
            let mut slow = vec![0; rows * cols];
            gemm_i16(&a, &b, k, &mut fast);
            gemm_i16_portable(&a, &b, k, &mut slow);
            prop_assert_eq!(&fast, &slow);
            let wide: Vec<i64> = slow.iter().map(|&v| v as i64).collect();
            let mut via32 = vec![0; rows * cols];
            let a32: Vec<i32> = a.iter().map(|&v| v as i32).collect();
            let b32: Vec<i32> = b.iter().map(|&v| v as i32).collect();
            gemm_i32(&a32, &b32, k, &mut via32);
            prop_assert_eq!(via32, wide);
        }
    }

    #[test]
    fn extreme_operands() {
        // −32768·−32768 + … : each vpmaddwd pair stays below 2^31 when k·max² does.
        let k = 16;
        let a = vec![i16::MIN; k];
        let b = vec![1i16; k];
        let mut out = vec![0; 1];
        gemm_i16(&a, &b, k, &mut out);
        assert_eq!(out[0], -32768 * 16);
    }
}
