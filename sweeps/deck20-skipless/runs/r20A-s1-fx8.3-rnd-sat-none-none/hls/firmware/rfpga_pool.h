// rfpga HLS layer library: global average pooling.
// Computes exactly what crates/rfpga-sim/src/layers/pool.rs computes (see rfpga_layers.h).
#ifndef RFPGA_POOL_H
#define RFPGA_POOL_H

#include "rfpga_common.h"

namespace rfpga {

// Global average pooling over PIXELS = 2^LOG2N pixels: s += x per channel in sum_t, then the
// same bits read as mean_t (LOG2N fewer integer bits: exactly s / 2^LOG2N), converted to out_t.
// One pixel per cycle; the C sums are registers.
template <int PIXELS, int C, typename in_t, typename sum_t, typename mean_t, typename out_t>
void avg_pool(hls::stream<pixel<in_t, C> > &in, hls::stream<pixel<out_t, C> > &out) {
    sum_t s[C];
#pragma HLS ARRAY_PARTITION variable = s type = complete
    for (int c = 0; c < C; c++) {
#pragma HLS UNROLL
        s[c] = 0;
    }
    for (int p = 0; p < PIXELS; p++) {
#pragma HLS PIPELINE II = 1
        pixel<in_t, C> px = in.read();
        for (int c = 0; c < C; c++) s[c] += px.v[c];
    }
    pixel<out_t, C> o;
    for (int c = 0; c < C; c++) {
#pragma HLS UNROLL
        mean_t m;
        m.range(mean_t::width - 1, 0) = s[c].range(sum_t::width - 1, 0);
        o.v[c] = m;
    }
    out.write(o);
}

}  // namespace rfpga

#endif
