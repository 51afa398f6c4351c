// rfpga HLS layer library: what every layer kind shares — the pixel type, raw constants, the
// skip split, the AXI-stream ports, the multiply-accumulate, and the dataflow process macros.
#ifndef RFPGA_COMMON_H
#define RFPGA_COMMON_H

#include <stdint.h>

#include "ap_axi_sdata.h"
#include "ap_fixed.h"
#include "hls_stream.h"

// A dataflow process and a stream depth, as Vitis sees them (a plain call; the depth is the
// STREAM pragma next to it). rfpga's threaded C simulation (-DRFPGA_THREADED_CSIM, with
// csim/hls_stream.h) runs each process in its own thread and blocks each stream at its depth;
// each thread handles rfpga_csim::images() images back to back, as the free-running core does.
#ifdef RFPGA_THREADED_CSIM
#define RFPGA_PROCESS(name, ...) \
    rfpga_csim::spawn(name, [&]() {                                          \
        for (int rfpga_image_ = 0; rfpga_image_ < rfpga_csim::images(); rfpga_image_++) { \
            __VA_ARGS__;                                                      \
        }                                                                     \
    })
#define RFPGA_END_DATAFLOW() rfpga_csim::join_all()
#define RFPGA_STREAM_DEPTH(s, d) (s).set_depth(d)
#else
#define RFPGA_PROCESS(name, ...) __VA_ARGS__
#define RFPGA_END_DATAFLOW()
#define RFPGA_STREAM_DEPTH(s, d)
#endif

namespace rfpga {

// One stream word: N channels of one pixel (N is the producer's channels per cycle: a whole
// pixel, or the PE output channels of a folded convolution), in channel order.
template <typename T, int N>
struct pixel {
    T v[N];
};

// Bits of an unsigned counter that holds 0..N: counters are ap_uint of this width, so Vitis
// never keeps a 32-bit `int` register and comparator where a few bits do.
template <unsigned N>
struct counter_bits {
    static const int value = (N < 2) ? 1 : 1 + counter_bits<N / 2>::value;
};
template <>
struct counter_bits<0> {
    static const int value = 1;
};

// The fixed-point value whose bits are the low T::width bits of `raw`.
template <typename T, typename R>
inline T from_raw(R raw) {
#pragma HLS INLINE
    T v;
    v.range(T::width - 1, 0) = ap_int<T::width>(raw);
    return v;
}

// Two writes (reads) in one pipeline stage: in RTL neither happens before both can. The
// threaded C simulation does the same (csim/hls_stream.h), so its FIFO minima are the RTL's;
// for Vitis these are the plain stream calls.
template <typename A, typename B>
inline void write_both(hls::stream<A> &a, const A &va, hls::stream<B> &b, const B &vb) {
#pragma HLS INLINE
#ifdef RFPGA_THREADED_CSIM
    rfpga_csim::write_both(a, va, b, vb);
#else
    a.write(va);
    b.write(vb);
#endif
}

template <typename A, typename B>
inline void read_both(hls::stream<A> &a, A &va, hls::stream<B> &b, B &vb) {
#pragma HLS INLINE
#ifdef RFPGA_THREADED_CSIM
    rfpga_csim::read_both(a, va, b, vb);
#else
    va = a.read();
    vb = b.read();
#endif
}

// Copies a stream to two consumers (the skip split): one word per cycle, both writes in the
// same cycle.
template <typename T, int WORDS>
void split(hls::stream<T> &in, hls::stream<T> &a, hls::stream<T> &b) {
    for (ap_uint<counter_bits<WORDS>::value> p = 0; p < WORDS; p++) {
#pragma HLS PIPELINE II = 1
        T v = in.read();
        rfpga::write_both(a, v, b, v);
    }
}

// What the input port learned of an image's framing, passed to the output port beside the
// pixels (a small FIFO the dataflow model sizes like any other stream).
struct frame {
    bool last;     // the image ended its input transfer (TLAST): TLAST on its last logit
    bool partial;  // TLAST came before its last word: the rest of it was zeros, its logits are marked
};

// The AXI-stream input: one word per pixel, channel c in bits [c·W, c·W + W) of TDATA (raw
// two's-complement bits of T), the rest ignored; one word per cycle. TLAST ends a transfer:
// on an image's last word it passes to that image's last logit (a batch is one transfer each
// way); earlier, the image is cut short — the core stops reading, completes it with zero
// pixels and marks it partial, so the next transfer starts on a fresh image.
template <int PIXELS, int C, typename T, int WORD>
void axis_to_pixels(hls::stream<ap_axiu<WORD, 0, 0, 0> > &in, hls::stream<pixel<T, C> > &out, hls::stream<frame> &frames) {
    bool ended = false, partial = false;
    for (ap_uint<counter_bits<PIXELS>::value> p = 0; p < PIXELS; p++) {
#pragma HLS PIPELINE II = 1
        pixel<T, C> px;
        for (int c = 0; c < C; c++) px.v[c] = 0;
        if (!ended) {
            ap_axiu<WORD, 0, 0, 0> word = in.read();
            for (int c = 0; c < C; c++) px.v[c].range(T::width - 1, 0) = word.data.range(c * T::width + T::width - 1, c * T::width);
            ended = word.last;
            partial = word.last && p != PIXELS - 1;
        }
        out.write(px);
    }
    frame f;
    f.last = ended;
    f.partial = partial;
    frames.write(f);
}

// The AXI-stream output: one word per logit, its raw bits sign-extended (SIGNED) or
// zero-extended to WORD bits, TKEEP/TSTRB all ones, TLAST on the last logit of an image whose
// input ended a transfer. A partial image's words are all the marker: only the top bit set,
// which no logit's extension has (the word is wider than the logit).
template <int C, typename T, bool SIGNED, int WORD>
void pixels_to_axis(hls::stream<pixel<T, C> > &in, hls::stream<frame> &frames, hls::stream<ap_axiu<WORD, 0, 0, 0> > &out) {
    static_assert(T::width < WORD, "the output word must be wider than a logit, for the partial-image marker");
    pixel<T, C> px;
    frame f;
    rfpga::read_both(in, px, frames, f);
    for (int c = 0; c < C; c++) {
#pragma HLS PIPELINE II = 1
        ap_axiu<WORD, 0, 0, 0> word;
        if (f.partial) {
            word.data = 0;
            word.data[WORD - 1] = 1;
        } else if (SIGNED) {
            ap_int<T::width> raw = px.v[c].range(T::width - 1, 0);
            word.data = ap_int<WORD>(raw);
        } else {
            ap_uint<T::width> raw = px.v[c].range(T::width - 1, 0);
            word.data = raw;
        }
        word.keep = -1;
        word.strb = -1;
        word.last = f.last && c == C - 1;
        out.write(word);
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
