// Fake quantization onto an ap_fixed grid with its straight-through gradient, forward and
// backward in one pass each, for float CPU tensors of saturating formats up to 24 bits.
//
// Why by hand: the tensor version (quant.rs `fake_quant` + `ste`) makes about a dozen passes
// over every activation and keeps as many temporaries, a large share of a QAT step on the CPU.
// Same arithmetic: s = x·2^F is exact in double, floor(s) and the fraction s − floor(s) are
// exact, and the rounding decision reads the first dropped bit (fraction ≥ ½) and whether any
// bit below it is set, as in shared/notes/ap_fixed.md; then the overflow rule. Wrapping formats,
// wider formats and other devices or kinds take the tensor version.
//
// Gradient: the incoming one (identity rule), or the incoming one where min ≤ x ≤ max and zero
// elsewhere (clipped rule; the mask is kept as one byte per value).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "common.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;


// Same order as rfpga_core::fixed::Rounding and Overflow (checked on the Rust side).
enum Rounding : int { Trn = 0, TrnZero, Rnd, RndZero, RndMinInf, RndInf, RndConv };
enum Overflow : int { Sat = 0, SatZero, SatSym };

struct Grid {
  double scale, inv_scale;  // 2^F, 2^−F
  double lo, hi;            // raw range after the overflow rule (SAT_SYM: lo = −hi)
  double keep_lo, keep_hi;  // the real range where the clipped gradient passes
  int rounding, overflow;
};

template <int R, int O>
RFPGA_KERNEL void quantize_rows(const float* __restrict x, float* __restrict out, uint8_t* __restrict mask, int64_t b, int64_t e,
                                Grid g) {
  for (int64_t i = b; i < e; ++i) {
    const double v = x[i];
    const double s = v * g.scale;
    const double base = std::floor(s);
    const double fr = s - base;
    const bool qb = fr >= 0.5;
    const bool r = fr != 0.0 && fr != 0.5;  // a set bit below the first dropped one
    const bool neg = s < 0.0;
    bool add;
    if (R == Trn) add = false;
    else if (R == TrnZero) add = neg && fr != 0.0;
    else if (R == Rnd) add = qb;
    else if (R == RndZero) add = qb && (neg || r);
    else if (R == RndMinInf) add = qb && r;
    else if (R == RndInf) add = qb && (!neg || r);
    else add = qb && (std::fmod(base, 2.0) != 0.0 || r);  // RndConv: ties to even
    double raw = base + (add ? 1.0 : 0.0);
    if (O == SatZero) {
      raw = (raw >= g.lo && raw <= g.hi) ? raw : 0.0;
    } else {
      // NaN stays NaN (as the tensor version's clamp), so a diverged loss is still seen.
      raw = raw < g.lo ? g.lo : (raw > g.hi ? g.hi : raw);
    }
    out[i] = float(raw * g.inv_scale);
    if (mask) mask[i] = (v >= g.keep_lo && v <= g.keep_hi) ? 1 : 0;
  }
}

template <int R>
void quantize_o(const float* x, float* out, uint8_t* mask, int64_t b, int64_t e, const Grid& g) {
  switch (g.overflow) {
    case Sat: return quantize_rows<R, Sat>(x, out, mask, b, e, g);
    case SatZero: return quantize_rows<R, SatZero>(x, out, mask, b, e, g);
    default: return quantize_rows<R, SatSym>(x, out, mask, b, e, g);
  }
}

void quantize(const float* x, float* out, uint8_t* mask, int64_t b, int64_t e, const Grid& g) {
  switch (g.rounding) {
    case Trn: return quantize_o<Trn>(x, out, mask, b, e, g);
    case TrnZero: return quantize_o<TrnZero>(x, out, mask, b, e, g);
    case Rnd: return quantize_o<Rnd>(x, out, mask, b, e, g);
    case RndZero: return quantize_o<RndZero>(x, out, mask, b, e, g);
    case RndMinInf: return quantize_o<RndMinInf>(x, out, mask, b, e, g);
    case RndInf: return quantize_o<RndInf>(x, out, mask, b, e, g);
    default: return quantize_o<RndConv>(x, out, mask, b, e, g);
  }
}

RFPGA_KERNEL void mask_rows(const float* __restrict g, const uint8_t* __restrict m, float* __restrict out, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) out[i] = m[i] ? g[i] : 0.f;
}

constexpr int64_t kGrain = 1 << 14;

// A dense tensor in its own layout (channels-last stays channels-last); output and mask share it,
// so element i of each storage is the same value.
at::Tensor dense(const at::Tensor& t) { return t.is_non_overlapping_and_dense() ? t : t.contiguous(); }

struct FakeQuant : public torch::autograd::Function<FakeQuant> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor x, double scale, double lo, double hi, double keep_lo, double keep_hi,
                            int64_t rounding, int64_t overflow, bool clipped) {
    x = dense(x);
    const Grid g{scale, 1.0 / scale, lo, hi, keep_lo, keep_hi, int(rounding), int(overflow)};
    at::Tensor out = at::empty_like(x);
    at::Tensor mask = clipped ? at::empty_like(x, x.options().dtype(at::kByte)) : at::Tensor();
    const float* xp = x.const_data_ptr<float>();
    float* op = out.data_ptr<float>();
    uint8_t* mp = clipped ? mask.data_ptr<uint8_t>() : nullptr;
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) { quantize(xp, op, mp, b, e, g); });
    ctx->save_for_backward({mask});
    ctx->saved_data["clipped"] = clipped;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    at::Tensor grad = grad_outputs[0];
    if (ctx->saved_data["clipped"].toBool()) {
      const at::Tensor mask = ctx->get_saved_variables()[0];
      // The incoming gradient in the mask's layout, so element i of each storage matches.
      at::Tensor g = grad.contiguous(mask.suggest_memory_format());
      if (g.strides() != mask.strides()) g = at::empty_like(mask, g.options()).copy_(grad);
      at::Tensor out = at::empty_like(g);
      const float* gp = g.const_data_ptr<float>();
      const uint8_t* mp = mask.const_data_ptr<uint8_t>();
      float* op = out.data_ptr<float>();
      at::parallel_for(0, g.numel(), kGrain, [&](int64_t b, int64_t e) { mask_rows(gp, mp, op, b, e); });
      grad = out;
    }
    return {grad, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

extern "C" {

// out = the grid value of every element of x (2^F = scale; raw range [lo, hi] after the overflow
// rule), differentiable with the identity or clipped ([keep_lo, keep_hi]) straight-through
// gradient. Returns null on success, else a message the caller frees with free().
char* rfpga_fake_quant(at::Tensor** out, const at::Tensor* x, double scale, double lo, double hi, double keep_lo, double keep_hi,
                       int rounding, int overflow, int clipped) {
  try {
    TORCH_CHECK(x->device().is_cpu() && x->scalar_type() == at::kFloat, "fused fake quantization takes a float CPU tensor");
    TORCH_CHECK(rounding >= 0 && rounding <= 6 && overflow >= 0 && overflow <= 2, "fused fake quantization: bad mode");
    *out = new at::Tensor(FakeQuant::apply(*x, scale, lo, hi, keep_lo, keep_hi, rounding, overflow, clipped != 0));
    return nullptr;
  } catch (const std::exception& e) {
    return rfpga_message(e.what());
  }
}

}  // extern "C"
