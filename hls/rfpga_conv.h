// rfpga HLS layer library: k×k convolution over a pixel stream with a line buffer.
// Computes exactly what crates/rfpga-sim/src/layers/conv.rs computes (see rfpga_layers.h).
#ifndef RFPGA_CONV_H
#define RFPGA_CONV_H

#include "rfpga_common.h"

namespace rfpga {

// One output row of a k×k convolution from the K input rows held in `lines`.
template <class CFG>
void conv_row(int oy, typename CFG::in_t lines[CFG::K][CFG::W][CFG::CIN],
              hls::stream<pixel<typename CFG::out_t, CFG::COUT> > &out,
              const typename CFG::weight_raw_t w[CFG::COUT * CFG::K * CFG::K * CFG::CIN],
              const typename CFG::bias_raw_t b[CFG::COUT]) {
    typedef typename CFG::accum_t acc_t;
    for (int ox = 0; ox < CFG::OW; ox++) {
        pixel<typename CFG::out_t, CFG::COUT> px;
        for (int co = 0; co < CFG::COUT; co++) {
#pragma HLS UNROLL factor = CFG::UNROLL
            acc_t acc = from_raw<typename CFG::bias_t>(b[co]);
            for (int ky = 0; ky < CFG::K; ky++) {
                const int iy = oy * CFG::STRIDE + ky - CFG::PAD;
                if (iy < 0 || iy >= CFG::H) continue;  // zero padding adds nothing
                for (int kx = 0; kx < CFG::K; kx++) {
                    const int ix = ox * CFG::STRIDE + kx - CFG::PAD;
                    if (ix < 0 || ix >= CFG::W) continue;
                    for (int ci = 0; ci < CFG::CIN; ci++) {
                        const typename CFG::weight_t wv =
                            from_raw<typename CFG::weight_t>(w[((co * CFG::K + ky) * CFG::K + kx) * CFG::CIN + ci]);
                        acc += lines[iy % CFG::K][ix][ci] * wv;
                    }
                }
            }
            if (CFG::RELU && acc < 0) acc = 0;
            px.v[co] = acc;
        }
        out.write(px);
    }
}

// k×k convolution, stride S, zero padding k/2, over a pixel stream, with a line buffer of K
// rows: an output row is computed as soon as the last input row it needs has arrived.
template <class CFG>
void conv2d(hls::stream<pixel<typename CFG::in_t, CFG::CIN> > &in,
            hls::stream<pixel<typename CFG::out_t, CFG::COUT> > &out,
            const typename CFG::weight_raw_t w[CFG::COUT * CFG::K * CFG::K * CFG::CIN],
            const typename CFG::bias_raw_t b[CFG::COUT]) {
    static typename CFG::in_t lines[CFG::K][CFG::W][CFG::CIN];
    int oy = 0;
    for (int r = 0; r < CFG::H; r++) {
        for (int x = 0; x < CFG::W; x++) {
#pragma HLS PIPELINE II = 1
            pixel<typename CFG::in_t, CFG::CIN> px = in.read();
            for (int c = 0; c < CFG::CIN; c++) lines[r % CFG::K][x][c] = px.v[c];
        }
        while (oy < CFG::OH) {
            int last = oy * CFG::STRIDE + CFG::PAD;
            if (last > CFG::H - 1) last = CFG::H - 1;
            if (last > r) break;
            conv_row<CFG>(oy, lines, out, w, b);
            oy++;
        }
    }
}

}  // namespace rfpga

#endif
