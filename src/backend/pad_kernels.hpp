#pragma once
// Internal: kernel entry points of the pad family (constant and reflect padding of the last two
// dims): gradstyle::cpu::X in src/cpu/pad.cpp, gradstyle::cuda::X in cuda/ops/pad.cu; op code
// (src/ops/pad.cpp) calls GS_DISPATCH(device, X, args...). Every view passed here is dense (row-
// major contiguous) and f32 or f64; spatial tensors are NCHW planes, [planes, H, W] with planes =
// N*C. Kernels write every element of their output unless stated.
#include <cmath>
#include <cstdint>

#include "backend/kernels.hpp"
#include "gradstyle/core/host_device.hpp"  // GS_HD

namespace gradstyle::backend {

enum class PadMode : int { Constant = 0, Reflect = 1 };

// pad geometry on the last two dims: out[y, x] = in[y - top, x - left] (reflected at the borders
// in Reflect mode, `value` outside in Constant mode). Negative pads crop (Constant mode only).
struct Pad2dParams {
  int64_t planes = 0;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t left = 0, top = 0;
  PadMode mode = PadMode::Constant;
  double value = 0;
};

// ---- index math shared by the CPU and CUDA kernels ----

// Reflect-pad source index (pad < size guaranteed by the op).
GS_HD int64_t reflect_index(int64_t i, int64_t n) {
  if (i < 0) i = -i;
  if (i >= n) i = 2 * (n - 1) - i;
  return i;
}

// Source index of pad output index o along an axis padded by `before` (negative = crop), or -1
// where the output lies in a constant border.
GS_HD int64_t pad_src(int64_t o, int64_t before, int64_t in, PadMode mode) {
  const int64_t i = o - before;
  if (mode == PadMode::Reflect) return reflect_index(i, in);
  return (i >= 0 && i < in) ? i : -1;
}

}  // namespace gradstyle::backend

#define GS_PAD_KERNEL_DECLS                                                                                       \
  /* ---- pad ---- */                                                                                             \
  void pad2d_fwd(const backend::StridedView& out, const backend::StridedView& in, const backend::Pad2dParams& p); \
  /* gin = adjoint of pad2d with value 0 */                                                                       \
  void pad2d_bwd(const backend::StridedView& gin, const backend::StridedView& gout, const backend::Pad2dParams& p);

namespace gradstyle::cpu {
GS_PAD_KERNEL_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_PAD_KERNEL_DECLS
}  // namespace gradstyle::cuda
#endif
