// rfpga HLS layer library: the dense layer.
// Computes exactly what crates/rfpga-sim/src/layers/dense.rs computes (see rfpga_layers.h).
#ifndef RFPGA_DENSE_H
#define RFPGA_DENSE_H

#include "rfpga_common.h"

namespace rfpga {

// Dense: acc = bias; acc += x[i] * w[o][i] in order; out = acc.
template <class CFG>
void dense(hls::stream<pixel<typename CFG::in_t, CFG::IN> > &in, hls::stream<pixel<typename CFG::out_t, CFG::OUT> > &out,
           const typename CFG::weight_raw_t w[CFG::OUT * CFG::IN], const typename CFG::bias_raw_t b[CFG::OUT]) {
    pixel<typename CFG::in_t, CFG::IN> x = in.read();
    pixel<typename CFG::out_t, CFG::OUT> y;
    for (int o = 0; o < CFG::OUT; o++) {
        typename CFG::accum_t acc = from_raw<typename CFG::bias_t>(b[o]);
        for (int i = 0; i < CFG::IN; i++) {
#pragma HLS PIPELINE II = CFG::REUSE
            mac<CFG::MUL_IN_DSP>::template run<typename CFG::product_t>(acc, x.v[i], from_raw<typename CFG::weight_t>(w[o * CFG::IN + i]));
        }
        y.v[o] = acc;
    }
    out.write(y);
}

}  // namespace rfpga

#endif
