// rfpga HLS layer library: global average pooling.
// Computes exactly what crates/rfpga-sim/src/layers/pool.rs computes (see rfpga_layers.h).
#ifndef RFPGA_POOL_H
#define RFPGA_POOL_H

#include "rfpga_common.h"

namespace rfpga {

// Global average pooling over PIXELS = 2^LOG2N pixels read as words of G channels: s += x per
// channel in sum_t, then the same bits read as mean_t (LOG2N fewer integer bits: exactly
// s / 2^LOG2N), converted to out_t and written as one word of all C channels (the dense layer
// reads a whole pixel). One word per cycle: G adders, each channel's sum a register picked
// by the word's group.
template <int PIXELS, int C, int G, typename in_t, typename sum_t, typename mean_t, typename out_t>
void avg_pool(hls::stream<pixel<in_t, G> > &in, hls::stream<pixel<out_t, C> > &out) {
    const int GROUPS = C / G;
    sum_t s[GROUPS][G];
#pragma HLS ARRAY_PARTITION variable = s type = complete dim = 0
    for (int g = 0; g < GROUPS; g++) {
#pragma HLS UNROLL
        for (int c = 0; c < G; c++) s[g][c] = 0;
    }
    ap_uint<counter_bits<GROUPS>::value> g = 0;
    for (ap_uint<counter_bits<PIXELS * GROUPS>::value> i = 0; i < PIXELS * GROUPS; i++) {
#pragma HLS PIPELINE II = 1
        pixel<in_t, G> px = in.read();
        for (int c = 0; c < G; c++) s[g][c] += px.v[c];
        g = (g == GROUPS - 1) ? 0 : int(g) + 1;
    }
    pixel<out_t, C> o;
    for (int c = 0; c < C; c++) {
#pragma HLS UNROLL
        mean_t m;
        m.range(mean_t::width - 1, 0) = s[c / G][c % G].range(sum_t::width - 1, 0);
        o.v[c] = m;
    }
    out.write(o);
}

}  // namespace rfpga

#endif
