// rfpga's HLS layer library: header-only, hand-written, one function template per layer kind.
//
// Every kernel computes exactly what rfpga's simulator computes (crates/rfpga-sim/src/layers/,
// same file names), in the order docs/reference/formats.md defines:
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

// One header per layer kind, named like the simulator kernel it must agree with
// (crates/rfpga-sim/src/layers/<kind>.rs).
#include "rfpga_common.h"
#include "rfpga_conv.h"
#include "rfpga_add.h"
#include "rfpga_pad.h"
#include "rfpga_pool.h"
#include "rfpga_dense.h"

#endif
