#pragma once
// Internal: kernel entry points of the upfirdn2d family (StyleGAN2's upsample - FIR - downsample):
// gradstyle::cpu::X in src/cpu/upfirdn2d.cpp, gradstyle::cuda::X in cuda/ops/upfirdn2d.cu; op code
// (src/ops/upfirdn2d.cpp) calls GS_DISPATCH(device, X, ...).
// Every view is dense (contiguous); all views of one call share one dtype (f32 or f64).
#include "backend/kernels.hpp"

namespace gradstyle::backend {

// upfirdn2d in "correlation form" on planes of a [planes, h, w] tensor:
//   y[p, oy, ox] = sum_{ky, kx} f[ky, kx] * U[p, oy*down_y + ky - pad_y0, ox*down_x + kx - pad_x0]
// where U is x zero-upsampled by (up_y, up_x): U[p, u, v] = x[p, u/up_y, v/up_x] when both
// divide exactly and are in range, else 0. f is already flipped and gain-scaled by the op code
// (a "true convolution" passes flip(f)), so kernels never see flip or gain.
// Output size: oh = (h*up_y + pad_y0 + pad_y1 - kh) / down_y + 1, likewise ow.
struct UpFirDnGeom {
  int64_t planes = 0, h = 0, w = 0;
  int64_t up_x = 1, up_y = 1, down_x = 1, down_y = 1;
  int64_t pad_x0 = 0, pad_x1 = 0, pad_y0 = 0, pad_y1 = 0;  // negative pads crop
  int64_t kh = 1, kw = 1;
  int64_t oh = 0, ow = 0;
};

}  // namespace gradstyle::backend

#define GS_UPFIRDN2D_KERNEL_DECLS                                                                             \
  /* y [planes, oh, ow] = upfirdn2d(x [planes, h, w], f [kh, kw]); y overwritten */                           \
  void upfirdn2d(const backend::UpFirDnGeom& g, const backend::StridedView& y, const backend::StridedView& x, \
                 const backend::StridedView& f);

namespace gradstyle::cpu {
GS_UPFIRDN2D_KERNEL_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_UPFIRDN2D_KERNEL_DECLS
}  // namespace gradstyle::cuda
#endif
