// rfpga HLS layer library: the skip sum.
// Computes exactly what crates/rfpga-sim/src/layers/add.rs computes (see rfpga_layers.h).
#ifndef RFPGA_ADD_H
#define RFPGA_ADD_H

#include "rfpga_common.h"

namespace rfpga {

// One channel's sum: the exact sum a + b (ap_fixed's own result type) converted once into
// sum_t, ReLU, out = s — what hls4ml's Add with result_t = sum_t computes.
template <bool RELU, typename a_t, typename b_t, typename sum_t, typename out_t>
inline out_t add_one(a_t a, b_t b) {
#pragma HLS INLINE
    sum_t s = a + b;
    if (RELU && s < 0) s = 0;
    return s;
}

// The skip sum over words of G channels (both inputs and the output carry the same G: the
// width of the convolution feeding it), one word per cycle in a loop pipelined at II = 1:
// G adders. Both reads in one cycle: neither is taken until both streams have a word.
template <int WORDS, int G, bool RELU, typename a_t, typename b_t, typename sum_t, typename out_t>
void add(hls::stream<pixel<a_t, G> > &a, hls::stream<pixel<b_t, G> > &b, hls::stream<pixel<out_t, G> > &out) {
    for (ap_uint<counter_bits<WORDS>::value> i = 0; i < WORDS; i++) {
#pragma HLS PIPELINE II = 1
        pixel<a_t, G> pa;
        pixel<b_t, G> pb;
        rfpga::read_both(a, pa, b, pb);
        pixel<out_t, G> po;
        for (int c = 0; c < G; c++) {
            po.v[c] = add_one<RELU, a_t, b_t, sum_t, out_t>(pa.v[c], pb.v[c]);
        }
        out.write(po);
    }
}

}  // namespace rfpga

#endif
