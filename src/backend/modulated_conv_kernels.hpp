#pragma once
// Internal: the fused epilogue kernels of the modulated convolution (gradstyle::cpu in
// src/cpu/modulated_conv.cpp, gradstyle::cuda in cuda/ops/modulated_conv.cu) and the
// per-element math both share:
//   forward : v = fma(noise_weight, noise, y * d) + bias[o];  lrelu: v > 0 ? v : alpha v;
//             v *= gain;  clamp to [-clamp, clamp] when clamp >= 0
//   backward: dpre = g * gain;  lrelu: out * gain > 0 ? dpre : alpha dpre;
//             clamp: |out| < clamp ? dpre : 0;  dy = dpre * d
// (the same derivative rule as bias_act_grad: read from the output, alpha at the kink).
#include <cmath>
#include <cstdint>

#include "backend/kernels.hpp"  // GS_DISPATCH
#include "backend/view.hpp"
#include "gradstyle/core/host_device.hpp"  // GS_HD

namespace gradstyle::backend {

struct ModconvEpilogue {
  int64_t batch = 0, channels = 0, hw = 0;  // y, out, g, dy: dense [batch, channels, hw]
  int64_t noise_batch_stride = 0;           // 0: one noise map shared by the batch; hw: per sample
  bool lrelu = false;
  double alpha = 0.2, gain = 1.0, clamp = -1.0;
};

template <class T>
GS_HD T modconv_fma(T a, T b, T c) {
#if defined(__CUDA_ARCH__)
  return ::fma(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// One output element from the conv output y, its coefficient d (1 without demodulation), the
// noise term's factors nw and nz (0 without noise) and the bias b (0 without bias).
template <class T>
GS_HD T modconv_epilogue_value(T y, T d, T nw, T nz, T b, bool lrelu, T alpha, T gain, T clamp) {
  T v = modconv_fma(nw, nz, y * d) + b;
  if (lrelu) v = v > T(0) ? v : v * alpha;
  v = v * gain;
  if (clamp >= T(0)) v = v > clamp ? clamp : (v < -clamp ? -clamp : v);
  return v;
}

// Gradient with respect to the pre-activation from the output gradient g and the output.
template <class T>
GS_HD T modconv_epilogue_dpre(T g, T out, bool lrelu, T alpha, T gain, T clamp) {
  T dp = g * gain;
  if (lrelu) dp = out * gain > T(0) ? dp : dp * alpha;
  if (clamp >= T(0)) dp = (out < T(0) ? -out : out) < clamp ? dp : T(0);
  return dp;
}

}  // namespace gradstyle::backend

#define GS_MODCONV_DECLS                                                                           \
  /* out = epilogue(y); d [B, O] / noise [Bn, 1, HW] / noise_weight [1] / bias [O] may be empty   \
     views (data == nullptr). All views dense. */                                                  \
  void modconv_epilogue_forward(const backend::ModconvEpilogue& e, const backend::StridedView& out, \
                                const backend::StridedView& y, const backend::StridedView& d,      \
                                const backend::StridedView& noise,                                 \
                                const backend::StridedView& noise_weight,                          \
                                const backend::StridedView& bias);                                 \
  /* dy = dpre * d (d may be empty: dy = dpre); dpre is also written when its view is non-empty. */ \
  void modconv_epilogue_backward(const backend::ModconvEpilogue& e, const backend::StridedView& dy, \
                                 const backend::StridedView& dpre, const backend::StridedView& g,  \
                                 const backend::StridedView& out, const backend::StridedView& d);

namespace gradstyle::cpu {
GS_MODCONV_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_MODCONV_DECLS
}  // namespace gradstyle::cuda
#endif
