// rfpga HLS layer library: k×k convolution over a stream of channel groups, folded PE × SIMD.
// Computes exactly what crates/rfpga-sim/src/layers/conv.rs computes (see rfpga_layers.h).
//
// Hardware (its schedule and resources are modelled in crates/rfpga-hls/src/hw/conv.rs):
// the padded input is walked slot by slot in raster order, (H + 2·PAD) × (W + 2·PAD) slots.
// A slot inside the image reads one pixel, CIN/IN_G words of IN_G channels (the producer's
// width), into a line buffer of K rows. A slot that completes a window (every STRIDE-th, once
// K−1 rows and columns are in) computes one output pixel right away, in one loop pipelined at
// II = 1 over COUT/PE groups × K·K·CIN/SIMD steps: each cycle PE output channels take SIMD
// products each (SIMD consecutive input channels of one tap position), and after a group's
// last step its PE results leave as one stream word. So the stage reads one input pixel per
// output pixel it computes, and its consumer receives PE channels per word (FINN's MVAU
// folding: PE output channels, SIMD input elements per cycle).
//
// Weights are one packed word of PE·SIMD values per cycle (ARRAY_RESHAPE in the generated layer
// function that defines the ROM), biases one word of PE. Within a step the SIMD products are
// added to the accumulator one after another in (ci) order, each with ap_fixed's own
// conversion: exactly the simulator's order, for any accumulator format (with the default
// exact accumulator the chain is plain integer additions that synthesis may rebalance).
// Padding taps multiply a zero (adding nothing, exactly as the simulator skips them). Every
// index comes from a counter: no `/` or `%` of variables.
#ifndef RFPGA_CONV_H
#define RFPGA_CONV_H

#include "rfpga_common.h"

namespace rfpga {

// One output pixel from the window whose top-left input pixel is (iy0, ix0) (negative or past
// the edge in the padding); `lrow0` is the line-buffer row holding input row iy0.
template <class CFG>
void conv_window(typename CFG::in_t lines[CFG::K][CFG::W][CFG::CIN / CFG::BANKS][CFG::BANKS], int lrow0, int iy0, int ix0,
                 hls::stream<pixel<typename CFG::out_t, CFG::PE> > &out,
                 const typename CFG::weight_raw_t w[CFG::ROWS][CFG::PE * CFG::SIMD],
                 const typename CFG::bias_raw_t b[CFG::GROUPS][CFG::PE]) {
#pragma HLS INLINE
    typedef typename CFG::accum_t acc_t;
    typedef typename CFG::in_t in_t;
    const int F = CFG::BANKS, QS = CFG::CIN / CFG::BANKS;
    acc_t acc[CFG::PE];
#pragma HLS ARRAY_PARTITION variable = acc type = complete
    ap_uint<counter_bits<CFG::STEPS>::value> step = 0;
    ap_uint<counter_bits<CFG::GROUPS>::value> g = 0;
    ap_uint<counter_bits<QS>::value> cq = 0;  // the input channel ci = cq·F + csel·SIMD
    ap_uint<counter_bits<F / CFG::SIMD>::value> csel = 0;
    ap_uint<counter_bits<CFG::K>::value> kx = 0, ly = lrow0;
    int iy = iy0, ix = ix0;
    for (ap_uint<counter_bits<CFG::ROWS>::value> i = 0; i < CFG::ROWS; i++) {
#pragma HLS PIPELINE II = 1
        const bool inside = iy >= 0 && iy < CFG::H && ix >= 0 && ix < CFG::W;
        // Every bank read at a constant index, then each operand picked from the F/SIMD banks
        // it can come from (csel: which group of SIMD banks this step reads).
        in_t row[F];
#pragma HLS ARRAY_PARTITION variable = row type = complete
        for (int f = 0; f < F; f++) row[f] = lines[ly][ix][cq][f];
        in_t x[CFG::SIMD];
#pragma HLS ARRAY_PARTITION variable = x type = complete
        for (int s = 0; s < CFG::SIMD; s++) {
            x[s] = inside ? row[(CFG::SIMD == F) ? s : int(csel) * CFG::SIMD + s] : in_t(0);
        }
        pixel<typename CFG::out_t, CFG::PE> po;
        for (int u = 0; u < CFG::PE; u++) {
            acc_t a = (step == 0) ? acc_t(from_raw<typename CFG::bias_t>(b[g][u])) : acc[u];
            for (int s = 0; s < CFG::SIMD; s++) {
                mac<CFG::MUL_IN_DSP>::template run<typename CFG::product_t>(a, x[s], from_raw<typename CFG::weight_t>(w[i][u * CFG::SIMD + s]));
            }
            acc[u] = a;
            if (CFG::RELU && a < 0) a = 0;
            po.v[u] = a;
        }
        // The next step: SIMD channels on, then the next tap position (kx, then ky); after a
        // group's last step its word leaves and the next group starts over.
        if (step == CFG::STEPS - 1) {
            out.write(po);
            step = 0;
            g++;
            cq = 0;
            csel = 0;
            kx = 0;
            ly = lrow0;
            iy = iy0;
            ix = ix0;
        } else {
            step++;
            if (CFG::SIMD == F || csel == F / CFG::SIMD - 1) {
                csel = 0;
                if (cq == QS - 1) {
                    cq = 0;
                    if (kx == CFG::K - 1) {
                        kx = 0;
                        ix = ix0;
                        iy++;
                        ly = (ly == CFG::K - 1) ? 0 : int(ly) + 1;
                    } else {
                        kx++;
                        ix++;
                    }
                } else {
                    cq++;
                }
            } else {
                csel++;
            }
        }
    }
}

// k×k convolution, stride S, zero padding PAD = k/2, over a stream of IN_G-channel words
// (see the top). Called from the generated layer function that defines `w` and `b`.
template <class CFG>
void conv2d(hls::stream<pixel<typename CFG::in_t, CFG::IN_G> > &in,
            hls::stream<pixel<typename CFG::out_t, CFG::PE> > &out,
            const typename CFG::weight_raw_t w[CFG::ROWS][CFG::PE * CFG::SIMD],
            const typename CFG::bias_raw_t b[CFG::GROUPS][CFG::PE]) {
#pragma HLS INLINE
    const int K = CFG::K, HP = CFG::H + 2 * CFG::PAD, WP = CFG::W + 2 * CFG::PAD;
    const int F = CFG::BANKS, QS = CFG::CIN / CFG::BANKS;
    // The line buffer in F banks (F = max(SIMD, IN_G)): channel ci in bank ci mod F, so a
    // step's SIMD reads and a word's IN_G writes each touch distinct banks.
    typename CFG::in_t lines[CFG::K][CFG::W][QS][F];
#pragma HLS ARRAY_PARTITION variable = lines type = complete dim = 4
    // wrow: the line-buffer row of input row sy − PAD, i.e. (sy − PAD) mod K, by counter.
    ap_uint<counter_bits<CFG::K>::value> wrow = (CFG::PAD == 0) ? 0 : K - CFG::PAD;
    // Stride phases: 0 on the slots that complete a window.
    ap_uint<counter_bits<CFG::STRIDE>::value> phase_y = 0;
    // The slot loops are never pipelined (that would unroll the loops inside): one slot at a
    // time, the word loop and the MAC loop each pipelined within it.
    for (int sy = 0; sy < HP; sy++) {
#pragma HLS PIPELINE off
        ap_uint<counter_bits<CFG::STRIDE>::value> phase_x = 0;
        for (int sx = 0; sx < WP; sx++) {
#pragma HLS PIPELINE off
            const int iy = sy - CFG::PAD, ix = sx - CFG::PAD;
            if (iy >= 0 && iy < CFG::H && ix >= 0 && ix < CFG::W) {
                // Each bank written at a constant index, enabled when the word's group (wsel)
                // is the bank's: one store per bank per cycle.
                ap_uint<counter_bits<QS>::value> wq = 0;
                ap_uint<counter_bits<F / CFG::IN_G>::value> wsel = 0;
                for (ap_uint<counter_bits<CFG::CIN / CFG::IN_G>::value> j = 0; j < CFG::CIN / CFG::IN_G; j++) {
#pragma HLS PIPELINE II = 1
                    pixel<typename CFG::in_t, CFG::IN_G> px = in.read();
                    for (int f = 0; f < F; f++) {
                        if (CFG::IN_G == F || f / CFG::IN_G == int(wsel)) lines[wrow][ix][wq][f] = px.v[f % CFG::IN_G];
                    }
                    if (CFG::IN_G == F || wsel == F / CFG::IN_G - 1) {
                        wsel = 0;
                        wq++;
                    } else {
                        wsel++;
                    }
                }
            }
            if (sy >= K - 1 && sx >= K - 1 && phase_y == 0 && phase_x == 0) {
                // Window row 0 is input row iy − (K − 1), held in row (wrow + 1) mod K.
                conv_window<CFG>(lines, (wrow == K - 1) ? 0 : int(wrow) + 1, iy - (K - 1), ix - (K - 1), out, w, b);
            }
            if (sx >= K - 1) phase_x = (phase_x == CFG::STRIDE - 1) ? 0 : int(phase_x) + 1;
        }
        if (sy >= K - 1) phase_y = (phase_y == CFG::STRIDE - 1) ? 0 : int(phase_y) + 1;
        wrow = (wrow == K - 1) ? 0 : int(wrow) + 1;
    }
}

}  // namespace rfpga

#endif
