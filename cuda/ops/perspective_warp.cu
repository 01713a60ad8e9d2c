// CUDA perspective warp. One launch warps every level (8, 16, 32 px maps) of a batch: each thread
// owns one output pixel and a group of 8 channels of one level, computes the sampling position
// inline from the sample's homography (no grid tensor), and reads the four neighbours of each of
// its channels; consecutive threads take consecutive pixels of a plane, so loads and stores are
// coalesced in NCHW. The backward is the deterministic gather of backend/perspective_warp_kernels.hpp
// with the same thread layout over input pixels. The per-element math is shared with the CPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "../common/check.hpp"
#include "../common/context.hpp"
#include "backend/perspective_warp_kernels.hpp"

namespace gradstyle::cuda {

using backend::StridedView;
using backend::WarpLevels;

namespace {

constexpr int kThreads = 256;
constexpr int kCPT = 8;  // channels per thread

template <class T>
struct LevelsDev {
  int n;
  const T* src[backend::kMaxWarpLevels];
  T* dst[backend::kMaxWarpLevels];
  int64_t C[backend::kMaxWarpLevels], H[backend::kMaxWarpLevels], W[backend::kMaxWarpLevels];
  int64_t ncg[backend::kMaxWarpLevels];        // channel groups
  int64_t start[backend::kMaxWarpLevels + 1];  // first work item of each level
};

// Work item t -> (level, b, channel group, y, x) with x fastest.
struct Item {
  int l;
  int64_t b, cg, y, x;
};
template <class T>
__device__ __forceinline__ Item decode(const LevelsDev<T>& lv, int64_t t) {
  Item it;
  it.l = 0;
  while (it.l + 1 < lv.n && t >= lv.start[it.l + 1]) ++it.l;
  int64_t i = t - lv.start[it.l];
  const int64_t W = lv.W[it.l], H = lv.H[it.l];
  it.x = i % W;
  i /= W;
  it.y = i % H;
  i /= H;
  it.cg = i % lv.ncg[it.l];
  it.b = i / lv.ncg[it.l];
  return it;
}

template <class T>
__global__ void __launch_bounds__(kThreads) warp_fwd_kernel(LevelsDev<T> lv, const double* hom) {
  const int64_t total = lv.start[lv.n];
  for (int64_t t = int64_t(blockIdx.x) * kThreads + threadIdx.x; t < total; t += int64_t(gridDim.x) * kThreads) {
    const Item it = decode(lv, t);
    const int64_t C = lv.C[it.l], H = lv.H[it.l], W = lv.W[it.l], P = H * W;
    const backend::WarpTaps<T> taps = backend::warp_taps<T>(backend::warp_tap(hom + 9 * it.b, it.x, it.y, W, H), W, H);
    const int64_t c0 = it.cg * kCPT, c1 = c0 + kCPT < C ? c0 + kCPT : C;
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t plane = (it.b * C + c) * P;
      lv.dst[it.l][plane + it.y * W + it.x] = backend::warp_apply(lv.src[it.l] + plane, taps);
    }
  }
}

// src = output gradients, dst = input gradients; one thread per input pixel and channel group.
template <class T>
__global__ void __launch_bounds__(kThreads) warp_bwd_kernel(LevelsDev<T> lv, const double* hom, const double* hinv) {
  const int64_t total = lv.start[lv.n];
  for (int64_t t = int64_t(blockIdx.x) * kThreads + threadIdx.x; t < total; t += int64_t(gridDim.x) * kThreads) {
    const Item it = decode(lv, t);
    const int64_t C = lv.C[it.l], H = lv.H[it.l], W = lv.W[it.l], P = H * W;
    const double* h = hom + 9 * it.b;
    int64_t ox0, ox1, oy0, oy1;
    backend::warp_gather_box(hinv + 9 * it.b, it.x, it.y, W, H, ox0, ox1, oy0, oy1);
    const int64_t c0 = it.cg * kCPT;
    const int nc = int(c0 + kCPT < C ? kCPT : C - c0);
    const T* g = lv.src[it.l] + (it.b * C + c0) * P;
    T acc[kCPT];
#pragma unroll
    for (int k = 0; k < kCPT; ++k) acc[k] = T(0);
    for (int64_t oy = oy0; oy <= oy1; ++oy)
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        const double w = backend::warp_weight_on(h, ox, oy, it.x, it.y, W, H);
        if (w == 0.0) continue;
        const T wt = T(w);
        const int64_t p = oy * W + ox;
#pragma unroll
        for (int k = 0; k < kCPT; ++k)
          if (k < nc) acc[k] = backend::warp_fma(wt, g[k * P + p], acc[k]);
      }
    T* d = lv.dst[it.l] + (it.b * C + c0) * P + it.y * W + it.x;
#pragma unroll
    for (int k = 0; k < kCPT; ++k)
      if (k < nc) d[k * P] = acc[k];
  }
}

template <class T>
LevelsDev<T> to_dev(const WarpLevels& lv, int64_t batch) {
  LevelsDev<T> d{};
  d.n = lv.n;
  d.start[0] = 0;
  for (int l = 0; l < lv.n; ++l) {
    d.src[l] = static_cast<const T*>(lv.src[l]);
    d.dst[l] = static_cast<T*>(lv.dst[l]);
    d.C[l] = lv.C[l], d.H[l] = lv.H[l], d.W[l] = lv.W[l];
    d.ncg[l] = (lv.C[l] + kCPT - 1) / kCPT;
    d.start[l + 1] = d.start[l] + batch * d.ncg[l] * lv.H[l] * lv.W[l];
  }
  return d;
}

unsigned grid_of(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(blocks, int64_t(sm_count()) * 32)));
}

template <class T>
void forward_t(const WarpLevels& lv, const double* hom, int64_t batch) {
  LevelsDev<T> d = to_dev<T>(lv, batch);
  if (d.start[d.n] == 0) return;
  warp_fwd_kernel<T><<<grid_of(d.start[d.n]), kThreads, 0, stream()>>>(d, hom);
  GS_CUDA_CHECK_LAUNCH("perspective_warp forward");
}

template <class T>
void backward_t(const WarpLevels& lv, const double* hom, const double* hinv, int64_t batch) {
  LevelsDev<T> d = to_dev<T>(lv, batch);
  if (d.start[d.n] == 0) return;
  warp_bwd_kernel<T><<<grid_of(d.start[d.n]), kThreads, 0, stream()>>>(d, hom, hinv);
  GS_CUDA_CHECK_LAUNCH("perspective_warp backward");
}

}  // namespace

void perspective_warp_forward(const WarpLevels& lv, const StridedView& hom, int64_t batch, DType dt) {
  const double* h = static_cast<const double*>(hom.data);
  if (dt == DType::f32) return forward_t<float>(lv, h, batch);
  if (dt == DType::f64) return forward_t<double>(lv, h, batch);
  throw DTypeError(err_msg("perspective_warp: unsupported dtype ", dtype_name(dt)));
}

void perspective_warp_backward(const WarpLevels& lv, const StridedView& hom, const StridedView& hinv, int64_t batch,
                               DType dt) {
  const double* h = static_cast<const double*>(hom.data);
  const double* hi = static_cast<const double*>(hinv.data);
  if (dt == DType::f32) return backward_t<float>(lv, h, hi, batch);
  if (dt == DType::f64) return backward_t<double>(lv, h, hi, batch);
  throw DTypeError(err_msg("perspective_warp: unsupported dtype ", dtype_name(dt)));
}

}  // namespace gradstyle::cuda
