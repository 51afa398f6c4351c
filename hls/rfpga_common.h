// rfpga HLS layer library: what every layer kind shares — the pixel type, raw constants, the
// skip split.
#ifndef RFPGA_COMMON_H
#define RFPGA_COMMON_H

#include <stdint.h>

#include "ap_fixed.h"
#include "hls_stream.h"

namespace rfpga {

template <typename T, int N>
struct pixel {
    T v[N];
};

// The fixed-point value whose bits are the low T::width bits of `raw`.
template <typename T, typename R>
inline T from_raw(R raw) {
    T v;
    v.range(T::width - 1, 0) = ap_int<T::width>(raw);
    return v;
}

// Copies a stream to two consumers (the skip split).
template <typename T, int PIXELS>
void split(hls::stream<T> &in, hls::stream<T> &a, hls::stream<T> &b) {
    for (int p = 0; p < PIXELS; p++) {
#pragma HLS PIPELINE II = 1
        T v = in.read();
        a.write(v);
        b.write(v);
    }
}

// One multiply-accumulate, acc += x·w with the exact product, its multiplier bound to DSP
// slices or to LUTs as the configuration (and the resource estimate) says. Unbound, Vitis may
// fuse a narrow multiply-add into a DSP48 by itself (UG1399, DSP multi-operation matching).
// P is the exact product type (CFG::product_t), so acc += p is acc += x·w.
template <bool IN_DSP>
struct mac;

template <>
struct mac<true> {
    template <class P, class A, class X, class W>
    static void run(A &acc, const X &x, const W &w) {
#pragma HLS INLINE
        const P p = x * w;
#pragma HLS BIND_OP variable = p op = mul impl = dsp
        acc += p;
    }
};

template <>
struct mac<false> {
    template <class P, class A, class X, class W>
    static void run(A &acc, const X &x, const W &w) {
#pragma HLS INLINE
        const P p = x * w;
#pragma HLS BIND_OP variable = p op = mul impl = fabric
        acc += p;
    }
};

}  // namespace rfpga

#endif
