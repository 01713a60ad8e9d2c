#pragma once
// Internal: kernel entry points of the bias_act family (StyleGAN2's fused bias + activation +
// gain + clamp): gradstyle::cpu::X in src/cpu/bias_act.cpp, gradstyle::cuda::X in
// cuda/ops/bias_act.cu; op code (src/ops/bias_act.cpp) calls GS_DISPATCH(device, X, ...).
// Every view is dense (contiguous); all views of one call share one dtype (f32 or f64).
#include "backend/kernels.hpp"

namespace gradstyle::backend {

enum class BiasActKind : int { Linear = 0, LRelu = 1 };

}  // namespace gradstyle::backend

#define GS_BIAS_ACT_KERNEL_DECLS                                                                               \
  /* y = clamp(act(x + bias[c]) * gain, -clamp, clamp) with x viewed as [outer, channels, inner] and   */      \
  /* bias [channels] (bias.data == nullptr: no bias; clamp < 0: no clamp). act lrelu: v > 0 ? v :      */      \
  /* alpha*v; linear: v. */                                                                                    \
  void bias_act(backend::BiasActKind act, const backend::StridedView& y, const backend::StridedView& x,        \
                const backend::StridedView& bias, int64_t channels, int64_t inner, double alpha, double gain,  \
                double clamp);                                                                                 \
  /* dx = dy * d y/d(x+bias), read from the forward output yref: gain * (lrelu: yref*gain > 0 ? 1 :    */      \
  /* alpha) * (clamp < 0 || |yref| < clamp ? 1 : 0). All three views have the same shape.              */      \
  void bias_act_grad(backend::BiasActKind act, const backend::StridedView& dx, const backend::StridedView& dy, \
                     const backend::StridedView& yref, double alpha, double gain, double clamp);

namespace gradstyle::cpu {
GS_BIAS_ACT_KERNEL_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_BIAS_ACT_KERNEL_DECLS
}  // namespace gradstyle::cuda
#endif
