// Direct convolution kernels: the CUDA fallback for configurations cuDNN refuses or cannot
// express (see cuda/cudnn/conv.cpp). One thread per output element, a plain loop over the
// defining sum; correct for every ConvGeom, not fast. Contracts in src/backend/conv_kernels.hpp.
#include "../common/launch.cuh"
#include "backend/conv_kernels.hpp"

namespace gradstyle::cuda::fallback {

using backend::ConvGeom;
using backend::StridedView;

namespace {

// y[n, k, oy, ox] = sum_{ci, p, q} w[k, ci, p, q] x[n, g*cg + ci, iy, ix] (+ bias[k])
template <class T>
__global__ void fwd_kernel(ConvGeom g, T* y, const T* x, const T* w, const T* bias) {
  const int64_t total = g.n * g.k * g.oh * g.ow;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups;
  GS_GRID_LOOP(i, total) {
    int64_t t = i;
    const int64_t ox = t % g.ow; t /= g.ow;
    const int64_t oy = t % g.oh; t /= g.oh;
    const int64_t k = t % g.k;
    const int64_t n = t / g.k;
    const int64_t c0 = (k / kg) * cg;
    T acc = bias ? bias[k] : T(0);
    for (int64_t ci = 0; ci < cg; ++ci) {
      const T* xc = x + ((n * g.c + c0 + ci) * g.h) * g.w;
      const T* wk = w + ((k * cg + ci) * g.r) * g.s;
      for (int64_t p = 0; p < g.r; ++p) {
        const int64_t iy = oy * g.stride_h - g.pad_h + p * g.dil_h;
        if (iy < 0 || iy >= g.h) continue;
        for (int64_t q = 0; q < g.s; ++q) {
          const int64_t ix = ox * g.stride_w - g.pad_w + q * g.dil_w;
          if (ix < 0 || ix >= g.w) continue;
          acc += wk[p * g.s + q] * xc[iy * g.w + ix];
        }
      }
    }
    y[i] = acc;
  }
}

// dx[n, c, iy, ix] = sum over (k in c's group, p, q) with iy = oy*sh - ph + p*dh (exactly) of
// w[k, ci, p, q] dy[n, k, oy, ox] (+ bias[c])
template <class T>
__global__ void bwd_data_kernel(ConvGeom g, T* dx, const T* dy, const T* w, const T* bias) {
  const int64_t total = g.n * g.c * g.h * g.w;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups;
  GS_GRID_LOOP(i, total) {
    int64_t t = i;
    const int64_t ix = t % g.w; t /= g.w;
    const int64_t iy = t % g.h; t /= g.h;
    const int64_t c = t % g.c;
    const int64_t n = t / g.c;
    const int64_t grp = c / cg, ci = c % cg;
    T acc = bias ? bias[c] : T(0);
    for (int64_t p = 0; p < g.r; ++p) {
      const int64_t ty = iy + g.pad_h - p * g.dil_h;
      if (ty < 0 || ty % g.stride_h) continue;
      const int64_t oy = ty / g.stride_h;
      if (oy >= g.oh) continue;
      for (int64_t q = 0; q < g.s; ++q) {
        const int64_t tx = ix + g.pad_w - q * g.dil_w;
        if (tx < 0 || tx % g.stride_w) continue;
        const int64_t ox = tx / g.stride_w;
        if (ox >= g.ow) continue;
        for (int64_t kk = 0; kk < kg; ++kk) {
          const int64_t k = grp * kg + kk;
          acc += w[((k * cg + ci) * g.r + p) * g.s + q] * dy[((n * g.k + k) * g.oh + oy) * g.ow + ox];
        }
      }
    }
    dx[i] = acc;
  }
}

// dw[k, ci, p, q] = sum_{n, oy, ox} x[n, g*cg + ci, iy, ix] dy[n, k, oy, ox]
template <class T>
__global__ void bwd_filter_kernel(ConvGeom g, T* dw, const T* x, const T* dy) {
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups;
  const int64_t total = g.k * cg * g.r * g.s;
  GS_GRID_LOOP(i, total) {
    int64_t t = i;
    const int64_t q = t % g.s; t /= g.s;
    const int64_t p = t % g.r; t /= g.r;
    const int64_t ci = t % cg;
    const int64_t k = t / cg;
    const int64_t c = (k / kg) * cg + ci;
    T acc = T(0);
    for (int64_t n = 0; n < g.n; ++n) {
      const T* xc = x + (n * g.c + c) * g.h * g.w;
      const T* dk = dy + (n * g.k + k) * g.oh * g.ow;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        const int64_t iy = oy * g.stride_h - g.pad_h + p * g.dil_h;
        if (iy < 0 || iy >= g.h) continue;
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          const int64_t ix = ox * g.stride_w - g.pad_w + q * g.dil_w;
          if (ix < 0 || ix >= g.w) continue;
          acc += xc[iy * g.w + ix] * dk[oy * g.ow + ox];
        }
      }
    }
    dw[i] = acc;
  }
}

template <class T>
const T* cptr(const StridedView& v) {
  return static_cast<const T*>(v.data);
}

void check_dtype(DType t, const char* op) {
  GS_CHECK(t == DType::f32 || t == DType::f64, DTypeError, op, " (cuda): unsupported dtype ", dtype_name(t));
}

}  // namespace

void conv2d_forward(const ConvGeom& g, const StridedView& y, const StridedView& x, const StridedView& w,
                    const StridedView& bias) {
  check_dtype(y.dtype, "conv2d");
  const int64_t total = g.n * g.k * g.oh * g.ow;
  if (total == 0) return;
  if (y.dtype == DType::f32)
    fwd_kernel<float><<<grid_for(total), kBlock, 0, stream()>>>(g, static_cast<float*>(y.data), cptr<float>(x),
                                                                 cptr<float>(w), cptr<float>(bias));
  else
    fwd_kernel<double><<<grid_for(total), kBlock, 0, stream()>>>(g, static_cast<double*>(y.data), cptr<double>(x),
                                                                  cptr<double>(w), cptr<double>(bias));
  GS_CUDA_CHECK_LAUNCH("conv2d fallback fwd_kernel");
}

void conv2d_backward_data(const ConvGeom& g, const StridedView& dx, const StridedView& dy, const StridedView& w,
                          const StridedView& bias) {
  check_dtype(dx.dtype, "conv2d_backward_data");
  const int64_t total = g.n * g.c * g.h * g.w;
  if (total == 0) return;
  if (dx.dtype == DType::f32)
    bwd_data_kernel<float><<<grid_for(total), kBlock, 0, stream()>>>(g, static_cast<float*>(dx.data), cptr<float>(dy),
                                                                      cptr<float>(w), cptr<float>(bias));
  else
    bwd_data_kernel<double><<<grid_for(total), kBlock, 0, stream()>>>(g, static_cast<double*>(dx.data),
                                                                       cptr<double>(dy), cptr<double>(w),
                                                                       cptr<double>(bias));
  GS_CUDA_CHECK_LAUNCH("conv2d fallback bwd_data_kernel");
}

void conv2d_backward_filter(const ConvGeom& g, const StridedView& dw, const StridedView& x, const StridedView& dy) {
  check_dtype(dw.dtype, "conv2d_backward_filter");
  const int64_t total = g.k * (g.c / g.groups) * g.r * g.s;
  if (total == 0) return;
  if (dw.dtype == DType::f32)
    bwd_filter_kernel<float><<<grid_for(total), kBlock, 0, stream()>>>(g, static_cast<float*>(dw.data), cptr<float>(x),
                                                                        cptr<float>(dy));
  else
    bwd_filter_kernel<double><<<grid_for(total), kBlock, 0, stream()>>>(g, static_cast<double*>(dw.data),
                                                                         cptr<double>(x), cptr<double>(dy));
  GS_CUDA_CHECK_LAUNCH("conv2d fallback bwd_filter_kernel");
}

}  // namespace gradstyle::cuda::fallback
