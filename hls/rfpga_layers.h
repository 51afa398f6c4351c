// rfpga's HLS layer library: header-only, hand-written, one function template per layer kind.
//
// Every kernel computes exactly what rfpga's simulator computes (crates/rfpga-sim/src/layers/,
// same file names), in the order docs/formats.md defines:
//   conv/dense: acc = bias; for each tap in (ky, kx, ci) order: acc += x * w; ReLU; out = acc.
//   add:        s = a; s += b; ReLU; out = s.
// `acc += x * w` is ap_fixed's own arithmetic: the exact product, then one conversion into the
// accumulator's type with its rounding and overflow modes. Nothing here depends on whether the
// code is compiled by g++ (C simulation) or by Vitis HLS: no #ifdef changes arithmetic.
//
// Data moves between layers as hls::stream of pixels (all channels of one pixel), in raster
// order. Weights arrive as raw integers (the value times 2^F) and are reinterpreted bit for bit,
// so the constants are exact whatever their format.
#ifndef RFPGA_LAYERS_H
#define RFPGA_LAYERS_H

#include <stdint.h>

#include "ap_fixed.h"
#include "hls_stream.h"

namespace rfpga {

template <typename T, int N>
struct pixel {
    T v[N];
};

// The fixed-point value whose bits are the low T::width bits of `raw`.
template <typename T, typename R>
inline T from_raw(R raw) {
    T v;
    v.range(T::width - 1, 0) = ap_int<T::width>(raw);
    return v;
}

// Copies a stream to two consumers (the skip split).
template <typename T, int PIXELS>
void split(hls::stream<T> &in, hls::stream<T> &a, hls::stream<T> &b) {
    for (int p = 0; p < PIXELS; p++) {
#pragma HLS PIPELINE II = 1
        T v = in.read();
        a.write(v);
        b.write(v);
    }
}

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

// The skip sum: s = a; s += b; ReLU; out = s.
template <int PIXELS, int C, bool RELU, typename a_t, typename b_t, typename sum_t, typename out_t>
void add(hls::stream<pixel<a_t, C> > &a, hls::stream<pixel<b_t, C> > &b, hls::stream<pixel<out_t, C> > &out) {
    for (int p = 0; p < PIXELS; p++) {
#pragma HLS PIPELINE II = 1
        pixel<a_t, C> pa = a.read();
        pixel<b_t, C> pb = b.read();
        pixel<out_t, C> po;
        for (int c = 0; c < C; c++) {
            sum_t s = pa.v[c];
            s += pb.v[c];
            if (RELU && s < 0) s = 0;
            po.v[c] = s;
        }
        out.write(po);
    }
}

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

// Global average pooling over PIXELS = 2^LOG2N pixels: s += x per channel in sum_t, then the
// same bits read as mean_t (LOG2N fewer integer bits: exactly s / 2^LOG2N), converted to out_t.
template <int PIXELS, int C, typename in_t, typename sum_t, typename mean_t, typename out_t>
void avg_pool(hls::stream<pixel<in_t, C> > &in, hls::stream<pixel<out_t, C> > &out) {
    sum_t s[C];
    for (int c = 0; c < C; c++) s[c] = 0;
    for (int p = 0; p < PIXELS; p++) {
#pragma HLS PIPELINE II = 1
        pixel<in_t, C> px = in.read();
        for (int c = 0; c < C; c++) s[c] += px.v[c];
    }
    pixel<out_t, C> o;
    for (int c = 0; c < C; c++) {
        mean_t m;
        m.range(mean_t::width - 1, 0) = s[c].range(sum_t::width - 1, 0);
        o.v[c] = m;
    }
    out.write(o);
}

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
            acc += x.v[i] * from_raw<typename CFG::weight_t>(w[o * CFG::IN + i]);
        }
        y.v[o] = acc;
    }
    out.write(y);
}

}  // namespace rfpga

#endif
