// rfpga HLS layer library: k×k convolution over a pixel stream, stall-free.
// Computes exactly what crates/rfpga-sim/src/layers/conv.rs computes (see rfpga_layers.h).
//
// Hardware (its schedule and resources are modelled in crates/rfpga-hls/src/hw/conv.rs):
// the padded input is walked slot by slot in raster order, (H + 2·PAD) × (W + 2·PAD) slots.
// A slot inside the image reads one pixel into a line buffer of K rows; a slot that completes
// a window (every STRIDE-th, once K−1 rows and columns are in) computes one output pixel
// right away, in one loop pipelined at II = 1 over the COUT/UNROLL lane groups × K·K·CIN
// taps, and writes it. So the stage reads one input pixel per output pixel it computes: its
// producer never waits for it to finish a row. Padding taps multiply a zero (adding nothing,
// exactly as the simulator skips them). Every index comes from a counter: no `/` or `%`.
#ifndef RFPGA_CONV_H
#define RFPGA_CONV_H

#include "rfpga_common.h"

namespace rfpga {

// One output pixel from the window whose top-left input pixel is (iy0, ix0) (negative or past
// the edge in the padding); `lrow0` is the line-buffer row holding input row iy0. Each channel
// sums its taps in (ky, kx, ci) order — the simulator's order — one lane group after another.
template <class CFG>
void conv_window(typename CFG::in_t lines[CFG::K][CFG::W][CFG::CIN], int lrow0, int iy0, int ix0,
                 hls::stream<pixel<typename CFG::out_t, CFG::COUT> > &out,
                 const typename CFG::weight_raw_t w[CFG::COUT][CFG::K * CFG::K * CFG::CIN],
                 const typename CFG::bias_raw_t b[CFG::COUT]) {
#pragma HLS INLINE
    typedef typename CFG::accum_t acc_t;
    const int TAPS = CFG::K * CFG::K * CFG::CIN, GROUPS = CFG::COUT / CFG::UNROLL;
    acc_t acc[CFG::UNROLL];
#pragma HLS ARRAY_PARTITION variable = acc type = complete
    // Results in registers (a plain partitioned array, not the stream's struct, which Vitis
    // could map to a two-port RAM), packed into the output pixel after the loop.
    typename CFG::out_t res[CFG::COUT];
#pragma HLS ARRAY_PARTITION variable = res type = complete
    int t = 0, g = 0, ci = 0, kx = 0, ly = lrow0, iy = iy0, ix = ix0;
    for (int i = 0; i < GROUPS * TAPS; i++) {
#pragma HLS PIPELINE II = 1
        const bool inside = iy >= 0 && iy < CFG::H && ix >= 0 && ix < CFG::W;
        const typename CFG::in_t x = inside ? lines[ly][ix][ci] : typename CFG::in_t(0);
        for (int u = 0; u < CFG::UNROLL; u++) {
            const int co = g * CFG::UNROLL + u;
            acc_t a = (t == 0) ? acc_t(from_raw<typename CFG::bias_t>(b[co])) : acc[u];
            mac<CFG::MUL_IN_DSP>::template run<typename CFG::product_t>(a, x, from_raw<typename CFG::weight_t>(w[co][t]));
            acc[u] = a;
            if (t == TAPS - 1) {
                if (CFG::RELU && a < 0) a = 0;
                res[co] = a;
            }
        }
        // The next tap: ci, then kx, then ky; after the last one, the next lane group.
        if (t == TAPS - 1) {
            t = 0;
            g++;
            ci = 0;
            kx = 0;
            ly = lrow0;
            iy = iy0;
            ix = ix0;
        } else {
            t++;
            if (ci < CFG::CIN - 1) {
                ci++;
            } else {
                ci = 0;
                if (kx < CFG::K - 1) {
                    kx++;
                    ix++;
                } else {
                    kx = 0;
                    ix = ix0;
                    iy++;
                    ly = (ly == CFG::K - 1) ? 0 : ly + 1;
                }
            }
        }
    }
    pixel<typename CFG::out_t, CFG::COUT> po;
    for (int c = 0; c < CFG::COUT; c++) {
#pragma HLS UNROLL
        po.v[c] = res[c];
    }
    out.write(po);
}

// k×k convolution, stride S, zero padding PAD = k/2, over a pixel stream (see the top).
template <class CFG>
void conv2d(hls::stream<pixel<typename CFG::in_t, CFG::CIN> > &in,
            hls::stream<pixel<typename CFG::out_t, CFG::COUT> > &out,
            const typename CFG::weight_raw_t w[CFG::COUT][CFG::K * CFG::K * CFG::CIN],
            const typename CFG::bias_raw_t b[CFG::COUT]) {
#pragma HLS ARRAY_PARTITION variable = w type = cyclic factor = CFG::UNROLL dim = 1
#pragma HLS ARRAY_PARTITION variable = b type = cyclic factor = CFG::UNROLL dim = 1
    const int K = CFG::K, HP = CFG::H + 2 * CFG::PAD, WP = CFG::W + 2 * CFG::PAD;
    typename CFG::in_t lines[CFG::K][CFG::W][CFG::CIN];
    // A whole pixel (all channels) is written in one cycle.
#pragma HLS ARRAY_PARTITION variable = lines type = complete dim = 3
    // wrow: the line-buffer row of input row sy − PAD, i.e. (sy − PAD) mod K, by counter.
    int wrow = (CFG::PAD == 0) ? 0 : K - CFG::PAD;
    // Stride phases: 0 on the slots that complete a window.
    int phase_y = 0;
    // The slot loops are never pipelined (that would unroll the MAC loop inside): one slot at
    // a time, the MAC loop pipelined within it.
    for (int sy = 0; sy < HP; sy++) {
#pragma HLS PIPELINE off
        int phase_x = 0;
        for (int sx = 0; sx < WP; sx++) {
#pragma HLS PIPELINE off
            const int iy = sy - CFG::PAD, ix = sx - CFG::PAD;
            if (iy >= 0 && iy < CFG::H && ix >= 0 && ix < CFG::W) {
                pixel<typename CFG::in_t, CFG::CIN> px = in.read();
                for (int c = 0; c < CFG::CIN; c++) {
#pragma HLS UNROLL
                    lines[wrow][ix][c] = px.v[c];
                }
            }
            if (sy >= K - 1 && sx >= K - 1 && phase_y == 0 && phase_x == 0) {
                // Window row 0 is input row iy − (K − 1), held in row (wrow + 1) mod K.
                conv_window<CFG>(lines, (wrow == K - 1) ? 0 : wrow + 1, iy - (K - 1), ix - (K - 1), out, w, b);
            }
            if (sx >= K - 1) phase_x = (phase_x == CFG::STRIDE - 1) ? 0 : phase_x + 1;
        }
        if (sy >= K - 1) phase_y = (phase_y == CFG::STRIDE - 1) ? 0 : phase_y + 1;
        wrow = (wrow == K - 1) ? 0 : wrow + 1;
    }
}

}  // namespace rfpga

#endif
