// rfpga HLS layer library: the dense layer.
// Computes exactly what crates/rfpga-sim/src/layers/dense.rs computes (see rfpga_layers.h).
#ifndef RFPGA_DENSE_H
#define RFPGA_DENSE_H

#include "rfpga_common.h"

namespace rfpga {

// Dense: acc = bias; acc += x[i] * w[o][i] in order; out = acc. One multiply-accumulate per
// cycle: a single loop over OUT·IN products pipelined at II = 1, indices from counters.
template <class CFG>
void dense(hls::stream<pixel<typename CFG::in_t, CFG::IN> > &in, hls::stream<pixel<typename CFG::out_t, CFG::OUT> > &out,
           const typename CFG::weight_raw_t w[CFG::OUT * CFG::IN], const typename CFG::bias_raw_t b[CFG::OUT]) {
    typedef typename CFG::accum_t acc_t;
    // Inputs and results in registers (plain partitioned arrays, not the streams' structs).
    pixel<typename CFG::in_t, CFG::IN> px = in.read();
    typename CFG::in_t x[CFG::IN];
#pragma HLS ARRAY_PARTITION variable = x type = complete
    for (int i = 0; i < CFG::IN; i++) {
#pragma HLS UNROLL
        x[i] = px.v[i];
    }
    typename CFG::out_t y[CFG::OUT];
#pragma HLS ARRAY_PARTITION variable = y type = complete
    acc_t acc = 0;
    int o = 0, i = 0;
    for (int n = 0; n < CFG::OUT * CFG::IN; n++) {
#pragma HLS PIPELINE II = 1
        acc_t a = (i == 0) ? acc_t(from_raw<typename CFG::bias_t>(b[o])) : acc;
        mac<CFG::MUL_IN_DSP>::template run<typename CFG::product_t>(a, x[i], from_raw<typename CFG::weight_t>(w[n]));
        acc = a;
        if (i == CFG::IN - 1) {
            y[o] = a;
            i = 0;
            o++;
        } else {
            i++;
        }
    }
    pixel<typename CFG::out_t, CFG::OUT> py;
    for (int o = 0; o < CFG::OUT; o++) {
#pragma HLS UNROLL
        py.v[o] = y[o];
    }
    out.write(py);
}

}  // namespace rfpga

#endif
