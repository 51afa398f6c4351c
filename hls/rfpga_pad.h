// rfpga HLS layer library: option-A shortcut (subsample, zero channels).
// Computes exactly what crates/rfpga-sim/src/layers/pad.rs computes (see rfpga_layers.h).
#ifndef RFPGA_PAD_H
#define RFPGA_PAD_H

#include "rfpga_common.h"

namespace rfpga {

// He et al.'s option A: every S-th pixel, (COUT − CIN)/2 zero channels before the input's and
// the rest after. Values keep their type.
template <int H, int W, int CIN, int COUT, int S, typename T>
void pad_shortcut(hls::stream<pixel<T, CIN> > &in, hls::stream<pixel<T, COUT> > &out) {
    const int before = (COUT - CIN) / 2;
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
#pragma HLS PIPELINE II = 1
            pixel<T, CIN> p = in.read();
            if (y % S == 0 && x % S == 0) {
                pixel<T, COUT> o;
                for (int c = 0; c < COUT; c++) o.v[c] = 0;
                for (int c = 0; c < CIN; c++) o.v[before + c] = p.v[c];
                out.write(o);
            }
        }
    }
}

}  // namespace rfpga

#endif
