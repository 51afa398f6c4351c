//! Integer matrix products `out[i][j] = Σ_k a[i][k]·b[j][k]` (both operands row-major with the
//! reduction dimension contiguous) for operands wider than 16 bits: i32×i32 summed in i64,
//! exact when callers prove every partial sum fits i64. (16-bit and narrower operands go
//! through the direct convolution kernels, `crate::direct`.)

crate::simd::avx2_or_plain! {
    /// i32 × i32 summed in i64 (for formats wider than 16 bits).
    pub fn gemm_i32(a: &[i32], b: &[i32], k: usize, out: &mut [i64]) {
        gemm_i32_portable(a, b, k, out)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn dispatched_kernel_equals_the_definition(rows in 1usize..7, cols in 1usize..10, k in 1usize..70, seed in any::<u64>()) {
            let mut s = seed;
            let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (s >> 33) as i32 };
            let a: Vec<i32> = (0..rows * k).map(|_| next()).collect();
            let b: Vec<i32> = (0..cols * k).map(|_| next() >> 8).collect();
            let mut out = vec![0; rows * cols];
            gemm_i32(&a, &b, k, &mut out);
            for i in 0..rows {
                for j in 0..cols {
                    let want: i128 = (0..k).map(|t| a[i * k + t] as i128 * b[j * k + t] as i128).sum();
                    prop_assert_eq!(out[i * cols + j] as i128, want);
                }
            }
        }
    }
}
