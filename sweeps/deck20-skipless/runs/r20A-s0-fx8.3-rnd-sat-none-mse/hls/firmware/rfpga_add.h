// rfpga HLS layer library: the skip sum.
// Computes exactly what crates/rfpga-sim/src/layers/add.rs computes (see rfpga_layers.h).
#ifndef RFPGA_ADD_H
#define RFPGA_ADD_H

#include "rfpga_common.h"

namespace rfpga {

// The skip sum: the exact sum a + b (ap_fixed's own result type) converted once into sum_t,
// ReLU, out = s — what hls4ml's Add with result_t = sum_t computes.
template <int PIXELS, int C, bool RELU, typename a_t, typename b_t, typename sum_t, typename out_t>
void add(hls::stream<pixel<a_t, C> > &a, hls::stream<pixel<b_t, C> > &b, hls::stream<pixel<out_t, C> > &out) {
    for (int p = 0; p < PIXELS; p++) {
#pragma HLS PIPELINE II = 1
        pixel<a_t, C> pa = a.read();
        pixel<b_t, C> pb = b.read();
        pixel<out_t, C> po;
        for (int c = 0; c < C; c++) {
            sum_t s = pa.v[c] + pb.v[c];
            if (RELU && s < 0) s = 0;
            po.v[c] = s;
        }
        out.write(po);
    }
}

}  // namespace rfpga

#endif
