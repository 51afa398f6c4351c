// rfpga HLS layer library: option-A shortcut (subsample, zero channels).
// Computes exactly what crates/rfpga-sim/src/layers/pad.rs computes (see rfpga_layers.h).
#ifndef RFPGA_PAD_H
#define RFPGA_PAD_H

#include "rfpga_common.h"

namespace rfpga {

// He et al.'s option A: every S-th pixel, (COUT − CIN)/2 zero channels before the input's and
// the rest after. Values keep their type. One input pixel per cycle; stride phases by counter.
template <int H, int W, int CIN, int COUT, int S, typename T>
void pad_shortcut(hls::stream<pixel<T, CIN> > &in, hls::stream<pixel<T, COUT> > &out) {
    const int before = (COUT - CIN) / 2;
    int x = 0, phase_x = 0, phase_y = 0;
    for (int p = 0; p < H * W; p++) {
#pragma HLS PIPELINE II = 1
        pixel<T, CIN> px = in.read();
        if (phase_y == 0 && phase_x == 0) {
            pixel<T, COUT> o;
            for (int c = 0; c < COUT; c++) o.v[c] = 0;
            for (int c = 0; c < CIN; c++) o.v[before + c] = px.v[c];
            out.write(o);
        }
        if (x == W - 1) {
            x = 0;
            phase_x = 0;
            phase_y = (phase_y == S - 1) ? 0 : phase_y + 1;
        } else {
            x++;
            phase_x = (phase_x == S - 1) ? 0 : phase_x + 1;
        }
    }
}

}  // namespace rfpga

#endif
