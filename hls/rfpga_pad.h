// rfpga HLS layer library: option-A shortcut (subsample, zero channels).
// Computes exactly what crates/rfpga-sim/src/layers/pad.rs computes (see rfpga_layers.h).
#ifndef RFPGA_PAD_H
#define RFPGA_PAD_H

#include "rfpga_common.h"

namespace rfpga {

// He et al.'s option A: every S-th pixel, (COUT − CIN)/2 zero channels before the input's and
// the rest after. Values keep their type. Per input pixel: its CIN/GI words into registers (a
// loop pipelined at II = 1); a kept pixel then leaves as COUT/GO words (another such loop), so
// the producer's and the consumer's widths may differ. Stride phases by counter.
template <int H, int W, int CIN, int COUT, int S, int GI, int GO, typename T>
void pad_shortcut(hls::stream<pixel<T, GI> > &in, hls::stream<pixel<T, GO> > &out) {
    const int before = (COUT - CIN) / 2;
    T px[CIN / GI][GI];
#pragma HLS ARRAY_PARTITION variable = px type = complete dim = 0
    ap_uint<counter_bits<W>::value> x = 0;
    ap_uint<counter_bits<S>::value> phase_x = 0, phase_y = 0;
    for (int p = 0; p < H * W; p++) {
#pragma HLS PIPELINE off
        for (ap_uint<counter_bits<CIN / GI>::value> j = 0; j < CIN / GI; j++) {
#pragma HLS PIPELINE II = 1
            pixel<T, GI> w = in.read();
            for (int c = 0; c < GI; c++) px[j][c] = w.v[c];
        }
        if (phase_y == 0 && phase_x == 0) {
            for (ap_uint<counter_bits<COUT / GO>::value> j = 0; j < COUT / GO; j++) {
#pragma HLS PIPELINE II = 1
                pixel<T, GO> o;
                for (int c = 0; c < GO; c++) {
                    const int ch = int(j) * GO + c - before;
                    const unsigned u = (unsigned)(ch < 0 ? 0 : ch);  // unsigned: / and % are shifts
                    o.v[c] = (ch >= 0 && ch < CIN) ? px[u / GI][u % GI] : T(0);
                }
                out.write(o);
            }
        }
        if (x == W - 1) {
            x = 0;
            phase_x = 0;
            phase_y = (phase_y == S - 1) ? 0 : int(phase_y) + 1;
        } else {
            x++;
            phase_x = (phase_x == S - 1) ? 0 : int(phase_x) + 1;
        }
    }
}

}  // namespace rfpga

#endif
