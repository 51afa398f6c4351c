// rfpga HLS layer library: k×k convolution over a pixel stream with a line buffer.
// Computes exactly what crates/rfpga-sim/src/layers/conv.rs computes (see rfpga_layers.h).
#ifndef RFPGA_CONV_H
#define RFPGA_CONV_H

#include "rfpga_common.h"

namespace rfpga {

// One output row of a k×k convolution from the K input rows held in `lines`.
// Hardware: per output pixel one pipelined loop over all K·K·CIN taps at II = COUT / UNROLL,
// UNROLL multiply-accumulate lanes serving the COUT output channels; taps in the zero padding
// take their cycle but add nothing. Each channel sums its taps in (ky, kx, ci) order — the
// simulator's order.
template <class CFG>
void conv_row(int oy, typename CFG::in_t lines[CFG::K][CFG::W][CFG::CIN],
              hls::stream<pixel<typename CFG::out_t, CFG::COUT> > &out,
              const typename CFG::weight_raw_t w[CFG::COUT][CFG::K * CFG::K * CFG::CIN],
              const typename CFG::bias_raw_t b[CFG::COUT]) {
#pragma HLS ARRAY_PARTITION variable = w cyclic factor = CFG::UNROLL dim = 1
    typedef typename CFG::accum_t acc_t;
    for (int ox = 0; ox < CFG::OW; ox++) {
        acc_t acc[CFG::COUT];
#pragma HLS ARRAY_PARTITION variable = acc cyclic factor = CFG::UNROLL
        for (int co = 0; co < CFG::COUT; co++) {
#pragma HLS PIPELINE II = CFG::II
#pragma HLS UNROLL factor = CFG::UNROLL
            acc[co] = from_raw<typename CFG::bias_t>(b[co]);
        }
        for (int tap = 0; tap < CFG::K * CFG::K * CFG::CIN; tap++) {
#pragma HLS PIPELINE II = CFG::II
#pragma HLS ALLOCATION operation instances = mul limit = CFG::UNROLL
            const int ky = tap / (CFG::K * CFG::CIN), kx = tap / CFG::CIN % CFG::K, ci = tap % CFG::CIN;
            const int iy = oy * CFG::STRIDE + ky - CFG::PAD;
            const int ix = ox * CFG::STRIDE + kx - CFG::PAD;
            if (iy < 0 || iy >= CFG::H || ix < 0 || ix >= CFG::W) continue;  // zero padding adds nothing
            const typename CFG::in_t x = lines[iy % CFG::K][ix][ci];
            for (int co = 0; co < CFG::COUT; co++) {
                mac<CFG::MUL_IN_DSP>::template run<typename CFG::product_t>(acc[co], x, from_raw<typename CFG::weight_t>(w[co][tap]));
            }
        }
        pixel<typename CFG::out_t, CFG::COUT> px;
        for (int co = 0; co < CFG::COUT; co++) {
#pragma HLS PIPELINE II = CFG::II
#pragma HLS UNROLL factor = CFG::UNROLL
            acc_t a = acc[co];
            if (CFG::RELU && a < 0) a = 0;
            px.v[co] = a;
        }
        out.write(px);
    }
}

// k×k convolution, stride S, zero padding k/2, over a pixel stream, with a line buffer of K
// rows: an output row is computed as soon as the last input row it needs has arrived.
template <class CFG>
void conv2d(hls::stream<pixel<typename CFG::in_t, CFG::CIN> > &in,
            hls::stream<pixel<typename CFG::out_t, CFG::COUT> > &out,
            const typename CFG::weight_raw_t w[CFG::COUT][CFG::K * CFG::K * CFG::CIN],
            const typename CFG::bias_raw_t b[CFG::COUT]) {
    static typename CFG::in_t lines[CFG::K][CFG::W][CFG::CIN];
    // One pixel (all channels) is written per cycle.
#pragma HLS ARRAY_PARTITION variable = lines complete dim = 3
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
