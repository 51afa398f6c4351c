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

// The skip sum, LANES channels per cycle (LANES divides C). LANES == C: a whole pixel per cycle
// (a loop pipelined at II = 1). LANES < C ("folded"): C / LANES cycles per pixel, since the
// convolutions feeding it deliver a pixel only every few thousand cycles at one lane; the two
// input pixels wait in registers and each lane picks its channel with a select.
template <int PIXELS, int C, int LANES, bool RELU, typename a_t, typename b_t, typename sum_t, typename out_t>
void add(hls::stream<pixel<a_t, C> > &a, hls::stream<pixel<b_t, C> > &b, hls::stream<pixel<out_t, C> > &out) {
    static_assert(LANES >= 1 && C % LANES == 0, "add: LANES must divide C");
    const int GROUPS = C / LANES;
    if (GROUPS == 1) {
        for (int p = 0; p < PIXELS; p++) {
#pragma HLS PIPELINE II = 1
            pixel<a_t, C> pa = a.read();
            pixel<b_t, C> pb = b.read();
            pixel<out_t, C> po;
            for (int c = 0; c < C; c++) {
                po.v[c] = add_one<RELU, a_t, b_t, sum_t, out_t>(pa.v[c], pb.v[c]);
            }
            out.write(po);
        }
    } else {
        // Plain partitioned arrays (registers), not the stream's struct (see rfpga_conv.h),
        // indexed [group][lane]: each lane's operand is a select of one of GROUPS registers.
        a_t va[GROUPS][LANES];
        b_t vb[GROUPS][LANES];
        out_t vo[GROUPS][LANES];
#pragma HLS ARRAY_PARTITION variable = va type = complete dim = 0
#pragma HLS ARRAY_PARTITION variable = vb type = complete dim = 0
#pragma HLS ARRAY_PARTITION variable = vo type = complete dim = 0
        int g = 0;
        for (int i = 0; i < PIXELS * GROUPS; i++) {
#pragma HLS PIPELINE II = 1
            if (g == 0) {
                // Both reads in one cycle: neither is taken until both streams have a pixel.
                pixel<a_t, C> pa = a.read();
                pixel<b_t, C> pb = b.read();
                for (int c = 0; c < C; c++) {
#pragma HLS UNROLL
                    va[c / LANES][c % LANES] = pa.v[c];
                    vb[c / LANES][c % LANES] = pb.v[c];
                }
            }
            for (int k = 0; k < LANES; k++) {
#pragma HLS UNROLL
                vo[g][k] = add_one<RELU, a_t, b_t, sum_t, out_t>(va[g][k], vb[g][k]);
            }
            if (g == GROUPS - 1) {
                pixel<out_t, C> po;
                for (int c = 0; c < C; c++) {
#pragma HLS UNROLL
                    po.v[c] = vo[c / LANES][c % LANES];
                }
                out.write(po);
                g = 0;
            } else {
                g++;
            }
        }
    }
}

}  // namespace rfpga

#endif
