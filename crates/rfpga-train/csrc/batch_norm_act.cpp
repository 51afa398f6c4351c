// Training-mode BatchNorm fused with the skip sum and the ReLU that follow it, forward and
// backward, for channels-last CPU tensors: out = relu(BN(y) [+ sc]).
//
// Why by hand: libtorch's channels-last BatchNorm runs far below memory speed for the narrow
// layers of a CIFAR ResNet (16–64 channels), and the ReLU, the skip sum and their backward
// passes each add a trip over the activations. Here each direction is two passes: statistics,
// then one elementwise pass that also does the sum and the ReLU (forward) or the ReLU mask and
// the shortcut's gradient (backward). Arithmetic as in PyTorch's batch_norm (biased variance
// to normalize, unbiased for the running estimate, momentum update); statistics accumulate in
// float over 128-row chunks and merge in double in a fixed order, so a result does not depend
// on the number of threads.
//
// Exposed to Rust as one C function returning a tensor that autograd differentiates like any
// other (a torch::autograd::Function); errors come back as a message, never as an exception.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "common.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

constexpr int64_t kChunk = 128;  // rows per partial sum


// Chunks [k0, k1): per channel Σ(x − shift) and Σ(x − shift)², shift = the chunk's first row.
RFPGA_KERNEL void moment_chunks(const float* __restrict x, int64_t rows, int64_t C, int64_t k0, int64_t k1,
                                float* __restrict part_s, float* __restrict part_q) {
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t r0 = k * kChunk, r1 = std::min(rows, r0 + kChunk);
    const float* __restrict shift = x + r0 * C;
    float* __restrict s = part_s + k * C;
    float* __restrict q = part_q + k * C;
    for (int64_t c = 0; c < C; ++c) s[c] = q[c] = 0.f;
    for (int64_t r = r0 + 1; r < r1; ++r) {
      const float* __restrict row = x + r * C;
      for (int64_t c = 0; c < C; ++c) {
        const float d = row[c] - shift[c];
        s[c] += d;
        q[c] += d * d;
      }
    }
  }
}

// Chunks [k0, k1): per channel Σ gz and Σ gz·(y − μ), gz = out ? g·[out > 0] : g.
RFPGA_KERNEL void grad_sum_chunks(const float* __restrict g, const float* __restrict y, const float* __restrict out,
                                  const float* __restrict mu, int64_t rows, int64_t C, int64_t k0, int64_t k1,
                                  float* __restrict part_g, float* __restrict part_gy) {
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t r0 = k * kChunk, r1 = std::min(rows, r0 + kChunk);
    float* __restrict sg = part_g + k * C;
    float* __restrict sgy = part_gy + k * C;
    for (int64_t c = 0; c < C; ++c) sg[c] = sgy[c] = 0.f;
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict gr = g + r * C;
      const float* __restrict yr = y + r * C;
      if (out) {
        const float* __restrict orow = out + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const float gv = gr[c];
          const float gz = orow[c] > 0.f ? gv : 0.f;
          sg[c] += gz;
          sgy[c] += gz * (yr[c] - mu[c]);
        }
      } else {
        for (int64_t c = 0; c < C; ++c) {
          sg[c] += gr[c];
          sgy[c] += gr[c] * (yr[c] - mu[c]);
        }
      }
    }
  }
}

// Rows [r0, r1): out = max'(y·a + b [+ sc], floor), floor 0 for a ReLU, −∞ without one
// (v > floor ? v : floor keeps a NaN a NaN, as libtorch's ReLU does).
RFPGA_KERNEL void forward_rows(const float* __restrict y, const float* __restrict sc, const float* __restrict a,
                               const float* __restrict b, float floor, int64_t C, int64_t r0, int64_t r1,
                               float* __restrict out) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* __restrict yr = y + r * C;
    float* __restrict orow = out + r * C;
    if (sc) {
      const float* __restrict srow = sc + r * C;
      for (int64_t c = 0; c < C; ++c) {
        const float v = yr[c] * a[c] + b[c] + srow[c];
        orow[c] = v > floor ? v : floor;
      }
    } else {
      for (int64_t c = 0; c < C; ++c) {
        const float v = yr[c] * a[c] + b[c];
        orow[c] = v > floor ? v : floor;
      }
    }
  }
}

// Rows [r0, r1): dy = a·gz + k·(y − μ) + k0, and (if dsc) the masked gradient gz itself.
RFPGA_KERNEL void backward_rows(const float* __restrict g, const float* __restrict y, const float* __restrict out,
                                const float* __restrict mu, const float* __restrict a, const float* __restrict k,
                                const float* __restrict k0, int64_t C, int64_t r0, int64_t r1,
                                float* __restrict dy, float* __restrict dsc) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* __restrict gr = g + r * C;
    const float* __restrict yr = y + r * C;
    float* __restrict dyr = dy + r * C;
    if (out) {
      const float* __restrict orow = out + r * C;
      if (dsc) {
        float* __restrict ds = dsc + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const float gv = gr[c];
          const float gz = orow[c] > 0.f ? gv : 0.f;
          ds[c] = gz;
          dyr[c] = a[c] * gz + k[c] * (yr[c] - mu[c]) + k0[c];
        }
      } else {
        for (int64_t c = 0; c < C; ++c) {
          const float gv = gr[c];
          const float gz = orow[c] > 0.f ? gv : 0.f;
          dyr[c] = a[c] * gz + k[c] * (yr[c] - mu[c]) + k0[c];
        }
      }
    } else {
      for (int64_t c = 0; c < C; ++c) dyr[c] = a[c] * gr[c] + k[c] * (yr[c] - mu[c]) + k0[c];
    }
  }
}

// Per-channel mean and M2 (sum of squared deviations) of a [rows, C] matrix: chunk moments
// (shifted by the chunk's first row: harmless cancellation), merged in double, in order
// (Chan et al.).
void moments(const float* x, int64_t rows, int64_t C, std::vector<double>& mean, std::vector<double>& m2) {
  const int64_t chunks = (rows + kChunk - 1) / kChunk;
  std::vector<float> part_s(chunks * C), part_q(chunks * C);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) { moment_chunks(x, rows, C, b, e, part_s.data(), part_q.data()); });
  mean.assign(C, 0.0);
  m2.assign(C, 0.0);
  double n = 0.0;
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t r0 = k * kChunk;
    const double nk = double(std::min(rows, r0 + kChunk) - r0);
    for (int64_t c = 0; c < C; ++c) {
      const double s = part_s[k * C + c], q = part_q[k * C + c];
      const double mk = double(x[r0 * C + c]) + s / nk;
      const double m2k = q - s * s / nk;
      const double delta = mk - mean[c];
      const double tot = n + nk;
      mean[c] += delta * nk / tot;
      m2[c] += m2k + delta * delta * n * nk / tot;
    }
    n += nk;
  }
}

// Per-channel Σ gz and Σ gz·(y − μ), chunk sums merged in double, in order.
void grad_sums(const float* g, const float* y, const float* out, const float* mu, int64_t rows, int64_t C,
               std::vector<double>& sum_g, std::vector<double>& sum_gy) {
  const int64_t chunks = (rows + kChunk - 1) / kChunk;
  std::vector<float> part_g(chunks * C), part_gy(chunks * C);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) { grad_sum_chunks(g, y, out, mu, rows, C, b, e, part_g.data(), part_gy.data()); });
  sum_g.assign(C, 0.0);
  sum_gy.assign(C, 0.0);
  for (int64_t k = 0; k < chunks; ++k)
    for (int64_t c = 0; c < C; ++c) {
      sum_g[c] += part_g[k * C + c];
      sum_gy[c] += part_gy[k * C + c];
    }
}

at::Tensor channels_last(const at::Tensor& t) { return t.contiguous(at::MemoryFormat::ChannelsLast); }

struct BatchNormAct : public torch::autograd::Function<BatchNormAct> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor y, at::Tensor gamma, at::Tensor beta, std::optional<at::Tensor> sc_opt,
                            at::Tensor running_mean, at::Tensor running_var, bool relu, double momentum, double eps) {
    // An absent skip is an empty optional: autograd cannot take an undefined tensor input.
    const at::Tensor sc = sc_opt.has_value() ? *sc_opt : at::Tensor();
    y = channels_last(y);
    const int64_t C = y.size(1), rows = y.numel() / C;
    TORCH_CHECK(rows > 1, "BatchNorm in training needs more than one value per channel");
    const float* yp = y.const_data_ptr<float>();
    std::vector<double> mean, m2;
    moments(yp, rows, C, mean, m2);

    auto opts = y.options().memory_format(at::MemoryFormat::Contiguous);
    at::Tensor save_mean = at::empty({C}, opts), save_invstd = at::empty({C}, opts);
    at::Tensor var_unbiased = at::empty({C}, opts);
    auto g = gamma.contiguous(), bt = beta.contiguous();
    std::vector<float> a(C), b(C);
    for (int64_t c = 0; c < C; ++c) {
      const double var = m2[c] / double(rows);
      const double invstd = 1.0 / std::sqrt(var + eps);
      save_mean.data_ptr<float>()[c] = float(mean[c]);
      save_invstd.data_ptr<float>()[c] = float(invstd);
      var_unbiased.data_ptr<float>()[c] = float(m2[c] / double(rows - 1));
      a[c] = g.const_data_ptr<float>()[c] * float(invstd);
      b[c] = bt.const_data_ptr<float>()[c] - float(mean[c]) * a[c];
    }
    {
      at::NoGradGuard no_grad;
      running_mean.mul_(1.0 - momentum).add_(save_mean, momentum);
      running_var.mul_(1.0 - momentum).add_(var_unbiased, momentum);
    }

    at::Tensor out = at::empty_like(y, at::MemoryFormat::ChannelsLast);
    at::Tensor s = sc.defined() ? channels_last(sc) : at::Tensor();
    TORCH_CHECK(!s.defined() || s.sizes() == y.sizes(), "skip sum: shapes differ");
    const float* sp = s.defined() ? s.const_data_ptr<float>() : nullptr;
    float* op = out.data_ptr<float>();
    const float floor = relu ? 0.f : -INFINITY;
    at::parallel_for(0, rows, kChunk, [&](int64_t r0, int64_t r1) { forward_rows(yp, sp, a.data(), b.data(), floor, C, r0, r1, op); });

    ctx->save_for_backward({y, gamma, save_mean, save_invstd, relu ? out : at::Tensor()});
    ctx->saved_data["relu"] = relu;
    ctx->saved_data["has_sc"] = sc.defined();
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor y = saved[0], gamma = saved[1], mu = saved[2], invstd = saved[3], out = saved[4];
    const bool relu = ctx->saved_data["relu"].toBool(), has_sc = ctx->saved_data["has_sc"].toBool();
    const at::Tensor g = channels_last(grad_outputs[0]);
    const int64_t C = y.size(1), rows = y.numel() / C;
    const float* gp = g.const_data_ptr<float>();
    const float* yp = y.const_data_ptr<float>();
    const float* outp = relu ? out.const_data_ptr<float>() : nullptr;
    const float* mup = mu.const_data_ptr<float>();
    std::vector<double> sum_g, sum_gy;
    grad_sums(gp, yp, outp, mup, rows, C, sum_g, sum_gy);

    auto opts = y.options().memory_format(at::MemoryFormat::Contiguous);
    at::Tensor grad_gamma = at::empty({C}, opts), grad_beta = at::empty({C}, opts);
    auto gm = gamma.contiguous();
    // dy = a·gz + k·(y − μ) + k0, with a = γ·invstd, k = −a·invstd²·Σgz(y−μ)/M, k0 = −a·Σgz/M.
    std::vector<float> a(C), k(C), k0(C);
    for (int64_t c = 0; c < C; ++c) {
      const double is = invstd.const_data_ptr<float>()[c];
      const double ac = double(gm.const_data_ptr<float>()[c]) * is;
      grad_gamma.data_ptr<float>()[c] = float(sum_gy[c] * is);
      grad_beta.data_ptr<float>()[c] = float(sum_g[c]);
      a[c] = float(ac);
      k[c] = float(-ac * is * is * sum_gy[c] / double(rows));
      k0[c] = float(-ac * sum_g[c] / double(rows));
    }
    at::Tensor grad_y = at::empty_like(y, at::MemoryFormat::ChannelsLast);
    // The shortcut's gradient is the masked incoming one; without a ReLU it is the incoming one.
    at::Tensor grad_sc = has_sc ? (relu ? at::empty_like(y, at::MemoryFormat::ChannelsLast) : g) : at::Tensor();
    float* dyp = grad_y.data_ptr<float>();
    float* dsp = (has_sc && relu) ? grad_sc.data_ptr<float>() : nullptr;
    at::parallel_for(0, rows, kChunk, [&](int64_t r0, int64_t r1) {
      backward_rows(gp, yp, outp, mup, a.data(), k.data(), k0.data(), C, r0, r1, dyp, dsp);
    });
    return {grad_y, grad_gamma, grad_beta, grad_sc, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

extern "C" {

// out = relu?(BN(y) + sc?) in training mode, with running statistics updated in place. `sc` may
// be null. Returns null on success, else a message the caller frees with free().
char* rfpga_batch_norm_act(at::Tensor** out, const at::Tensor* y, const at::Tensor* gamma, const at::Tensor* beta,
                           const at::Tensor* sc, at::Tensor* running_mean, at::Tensor* running_var, int relu,
                           double momentum, double eps) {
  try {
    TORCH_CHECK(y->device().is_cpu() && y->scalar_type() == at::kFloat && y->dim() == 4,
                "fused BatchNorm takes a 4-d float CPU tensor");
    TORCH_CHECK(gamma->numel() == y->size(1) && beta->numel() == y->size(1), "BatchNorm parameters: wrong size");
    std::optional<at::Tensor> s;
    if (sc) s = *sc;
    *out = new at::Tensor(BatchNormAct::apply(*y, *gamma, *beta, s, *running_mean, *running_var, relu != 0, momentum, eps));
    return nullptr;
  } catch (const std::exception& e) {
    return rfpga_message(e.what());
  }
}

}  // extern "C"
