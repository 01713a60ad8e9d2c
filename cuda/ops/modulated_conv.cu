// CUDA fused epilogue of the modulated convolution: demodulation, noise injection, bias,
// leaky-ReLU * gain and clamp in one pass over the conv output (and the matching one-pass
// first-order backward). One thread per 4 consecutive elements of a (b, o) plane when the plane
// is float4-aligned, so loads and stores are 16-byte vectors; the per-element math is shared
// with the CPU (backend/modulated_conv_kernels.hpp).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "../common/check.hpp"
#include "../common/context.hpp"
#include "backend/modulated_conv_kernels.hpp"

namespace gradstyle::cuda {

using backend::ModconvEpilogue;
using backend::StridedView;

namespace {

constexpr int kThreads = 256;

template <class T>
struct EpiArgs {
  T* out;
  const T* y;
  const T* d;
  const T* noise;
  const T* nw;
  const T* bias;
  int64_t channels, hw, nbs, total;
  bool lrelu;
  T alpha, gain, clamp;
};

template <class T>
__device__ __forceinline__ T epi_at(const EpiArgs<T>& a, T nw, int64_t idx) {
  const int64_t bo = idx / a.hw, i = idx - bo * a.hw;
  const int64_t b = bo / a.channels, o = bo - b * a.channels;
  const T dc = a.d ? a.d[bo] : T(1), bc = a.bias ? a.bias[o] : T(0);
  const T nz = a.noise ? a.noise[b * a.nbs + i] : T(0);
  return backend::modconv_epilogue_value(a.y[idx], dc, nw, nz, bc, a.lrelu, a.alpha, a.gain, a.clamp);
}

template <class T>
__global__ void __launch_bounds__(kThreads) epilogue_fwd_kernel(EpiArgs<T> a) {
  const T nw = a.noise && a.nw ? *a.nw : T(0);
  for (int64_t idx = int64_t(blockIdx.x) * kThreads + threadIdx.x; idx < a.total; idx += int64_t(gridDim.x) * kThreads)
    a.out[idx] = epi_at(a, nw, idx);
}

// float, hw % 4 == 0 and 16-byte aligned buffers: 4 elements of one plane per thread.
__global__ void __launch_bounds__(kThreads) epilogue_fwd_vec4_kernel(EpiArgs<float> a) {
  const float nw = a.noise && a.nw ? *a.nw : 0.f;
  const int64_t n4 = a.total / 4;
  for (int64_t q = int64_t(blockIdx.x) * kThreads + threadIdx.x; q < n4; q += int64_t(gridDim.x) * kThreads) {
    const int64_t idx = q * 4, bo = idx / a.hw, i = idx - bo * a.hw;
    const int64_t b = bo / a.channels, o = bo - b * a.channels;
    const float dc = a.d ? a.d[bo] : 1.f, bc = a.bias ? a.bias[o] : 0.f;
    const float4 yv = *reinterpret_cast<const float4*>(a.y + idx);
    float4 nz = make_float4(0.f, 0.f, 0.f, 0.f);
    if (a.noise) nz = *reinterpret_cast<const float4*>(a.noise + b * a.nbs + i);
    float4 r;
    r.x = backend::modconv_epilogue_value(yv.x, dc, nw, nz.x, bc, a.lrelu, a.alpha, a.gain, a.clamp);
    r.y = backend::modconv_epilogue_value(yv.y, dc, nw, nz.y, bc, a.lrelu, a.alpha, a.gain, a.clamp);
    r.z = backend::modconv_epilogue_value(yv.z, dc, nw, nz.z, bc, a.lrelu, a.alpha, a.gain, a.clamp);
    r.w = backend::modconv_epilogue_value(yv.w, dc, nw, nz.w, bc, a.lrelu, a.alpha, a.gain, a.clamp);
    *reinterpret_cast<float4*>(a.out + idx) = r;
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) epilogue_bwd_kernel(T* dy, T* dpre, const T* g, const T* out, const T* d,
                                                                 int64_t hw, int64_t total, bool lrelu, T alpha, T gain,
                                                                 T clamp) {
  for (int64_t idx = int64_t(blockIdx.x) * kThreads + threadIdx.x; idx < total; idx += int64_t(gridDim.x) * kThreads) {
    const T dp = backend::modconv_epilogue_dpre(g[idx], out[idx], lrelu, alpha, gain, clamp);
    if (dpre) dpre[idx] = dp;
    dy[idx] = dp * (d ? d[idx / hw] : T(1));
  }
}

unsigned grid_of(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t(sm_count()) * 32)));
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <class T>
void forward_t(const ModconvEpilogue& e, const StridedView& out, const StridedView& y, const StridedView& d,
               const StridedView& noise, const StridedView& nw, const StridedView& bias) {
  EpiArgs<T> a{static_cast<T*>(out.data), static_cast<const T*>(y.data), static_cast<const T*>(d.data),
               static_cast<const T*>(noise.data), static_cast<const T*>(nw.data), static_cast<const T*>(bias.data),
               e.channels, e.hw, e.noise_batch_stride, e.batch * e.channels * e.hw, e.lrelu, T(e.alpha), T(e.gain),
               T(e.clamp)};
  if (a.total == 0) return;
  if constexpr (sizeof(T) == 4) {
    if (e.hw % 4 == 0 && aligned16(a.out) && aligned16(a.y) && (!a.noise || aligned16(a.noise))) {
      epilogue_fwd_vec4_kernel<<<grid_of(a.total / 4), kThreads, 0, stream()>>>(a);
      GS_CUDA_CHECK_LAUNCH("modulated_conv2d epilogue");
      return;
    }
  }
  epilogue_fwd_kernel<T><<<grid_of(a.total), kThreads, 0, stream()>>>(a);
  GS_CUDA_CHECK_LAUNCH("modulated_conv2d epilogue");
}

template <class T>
void backward_t(const ModconvEpilogue& e, const StridedView& dy, const StridedView& dpre, const StridedView& g,
                const StridedView& out, const StridedView& d) {
  const int64_t total = e.batch * e.channels * e.hw;
  if (total == 0) return;
  epilogue_bwd_kernel<T><<<grid_of(total), kThreads, 0, stream()>>>(
      static_cast<T*>(dy.data), static_cast<T*>(dpre.data), static_cast<const T*>(g.data),
      static_cast<const T*>(out.data), static_cast<const T*>(d.data), e.hw, total, e.lrelu, T(e.alpha), T(e.gain),
      T(e.clamp));
  GS_CUDA_CHECK_LAUNCH("modulated_conv2d epilogue backward");
}

}  // namespace

void modconv_epilogue_forward(const ModconvEpilogue& e, const StridedView& out, const StridedView& y,
                              const StridedView& d, const StridedView& noise, const StridedView& noise_weight,
                              const StridedView& bias) {
  if (y.dtype == DType::f32) return forward_t<float>(e, out, y, d, noise, noise_weight, bias);
  if (y.dtype == DType::f64) return forward_t<double>(e, out, y, d, noise, noise_weight, bias);
  throw DTypeError(err_msg("modulated_conv2d_epilogue: unsupported dtype ", dtype_name(y.dtype)));
}

void modconv_epilogue_backward(const ModconvEpilogue& e, const StridedView& dy, const StridedView& dpre,
                               const StridedView& g, const StridedView& out, const StridedView& d) {
  if (g.dtype == DType::f32) return backward_t<float>(e, dy, dpre, g, out, d);
  if (g.dtype == DType::f64) return backward_t<double>(e, dy, dpre, g, out, d);
  throw DTypeError(err_msg("modulated_conv2d_epilogue: unsupported dtype ", dtype_name(g.dtype)));
}

}  // namespace gradstyle::cuda
