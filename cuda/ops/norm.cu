// CUDA per-channel kernels behind batch_norm and prelu (same contracts as src/cpu/norm.cpp).
//
// Channel reductions (batch statistics, backward sums) are fused into two launches: a grid of
// (chunks x C) blocks each reduces a strided slice of one channel's N*S values to two double
// partial sums, then one thread per channel adds its chunks. The chunk count is chosen so that
// about 4 blocks per SM are busy even when C is small (C = 64 at [8, 64, 128, 128] would otherwise
// use half the SMs). The variance uses sums shifted by the channel's first value, which in double
// precision keeps float32 data accurate whatever its offset.
#include "backend/cuda_runtime.hpp"
#include "../common/grid_stride.cuh"
#include "backend/norm_kernels.hpp"

namespace gradstyle::cuda {

using backend::ChannelParams;
using backend::float_dispatch;
using backend::StridedView;

namespace {

// Double block sum of two values; the result is valid in thread 0.
__device__ __forceinline__ void block_sum2(double& a, double& b) {
  __shared__ double sa[32], sb[32];
  __syncthreads();  // a previous call's readers are done with sa / sb
  for (int o = 16; o > 0; o >>= 1) {
    a += __shfl_down_sync(0xffffffffu, a, o);
    b += __shfl_down_sync(0xffffffffu, b, o);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = (blockDim.x + 31) / 32;
  if (lane == 0) {
    sa[warp] = a;
    sb[warp] = b;
  }
  __syncthreads();
  if (warp == 0) {
    a = lane < nwarps ? sa[lane] : 0.0;
    b = lane < nwarps ? sb[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) {
      a += __shfl_down_sync(0xffffffffu, a, o);
      b += __shfl_down_sync(0xffffffffu, b, o);
    }
  }
}

enum class ChanSum : int { Moments, GradSums };

// part[(c * chunks + k) * 2 + {0, 1}]:
//   Moments:  sum (x - K), sum (x - K)^2 with K = the channel's first value;
//   GradSums: sum g, sum g * (x - center[c])   (a = g, b = x).
template <class T, ChanSum kind>
__global__ void channel_partial_k(double* part, const T* a, const T* b, const T* center, ChannelParams p) {
  const int64_t chunks = gridDim.x, m = p.n * p.s;
  for (int64_t c = blockIdx.y; c < p.c; c += gridDim.y) {  // gridDim.y is capped at 65535
    const double shift = kind == ChanSum::Moments ? double(a[c * p.s]) : double(center[c]);
    double s1 = 0, s2 = 0;
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < m; e += chunks * blockDim.x) {
      const int64_t off = ((e / p.s) * p.c + c) * p.s + e % p.s;
      if constexpr (kind == ChanSum::Moments) {
        const double d = double(a[off]) - shift;
        s1 += d;
        s2 += d * d;
      } else {
        const double g = double(a[off]);
        s1 += g;
        s2 += g * (double(b[off]) - shift);
      }
    }
    block_sum2(s1, s2);
    if (threadIdx.x == 0) {
      part[(c * chunks + blockIdx.x) * 2] = s1;
      part[(c * chunks + blockIdx.x) * 2 + 1] = s2;
    }
  }
}

template <class T, ChanSum kind>
__global__ void channel_finish_k(T* out1, T* out2, const double* part, const T* a, ChannelParams p, int64_t chunks) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= p.c) return;
  double s1 = 0, s2 = 0;
  for (int64_t k = 0; k < chunks; ++k) {
    s1 += part[(c * chunks + k) * 2];
    s2 += part[(c * chunks + k) * 2 + 1];
  }
  if constexpr (kind == ChanSum::Moments) {
    const double m = double(p.n * p.s), d = s1 / m;
    if (p.n * p.s == 0) {  // no values: undefined statistics (and no first value to read)
      out1[c] = out2[c] = T(NAN);
      return;
    }
    out1[c] = T(double(a[c * p.s]) + d);
    out2[c] = T(fmax(s2 / m - d * d, 0.0));
  } else {
    out1[c] = T(s1);
    out2[c] = T(s2);
  }
}

// Frees a stream-ordered device buffer at scope exit (also when a launch check throws).
struct DeviceBuffer {
  void* p;
  explicit DeviceBuffer(size_t n) : p(device_alloc(n)) {}
  ~DeviceBuffer() { device_free(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

template <class T, ChanSum kind>
void channel_reduce(T* out1, T* out2, const T* a, const T* b, const T* center, const ChannelParams& p) {
  if (p.c == 0) return;
  const int64_t m = p.n * p.s;
  const int64_t want = (4 * int64_t(sm_count()) + p.c - 1) / p.c;  // blocks per channel
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(want, (m + 1023) / 1024));
  DeviceBuffer part(size_t(p.c * chunks * 2) * sizeof(double));
  auto* pp = static_cast<double*>(part.p);
  if (m > 0) {
    const unsigned gy = unsigned(std::min<int64_t>(p.c, 65535));
    channel_partial_k<T, kind><<<dim3(unsigned(chunks), gy), 256, 0, stream()>>>(pp, a, b, center, p);
    GS_CUDA_CHECK_LAUNCH("channel_partial_k");
  } else {
    GS_CUDA_CHECK(cudaMemsetAsync(pp, 0, size_t(p.c * chunks * 2) * sizeof(double), stream()));
  }
  channel_finish_k<T, kind><<<unsigned((p.c + 127) / 128), 128, 0, stream()>>>(out1, out2, pp, a, p, chunks);
  GS_CUDA_CHECK_LAUNCH("channel_finish_k");
}

template <class T>
__global__ void affine_k(T* out, const T* x, const T* scale, const T* shift, ChannelParams p, int64_t n) {
  GS_SAMPLING_LOOP(i, n) {
    const int64_t c = (i / p.s) % p.c;
    out[i] = x[i] * scale[c] + shift[c];
  }
}

template <class T>
__global__ void affine2_k(T* out, const T* a, const T* sa, const T* b, const T* sb, const T* shift, ChannelParams p,
                          int64_t n) {
  GS_SAMPLING_LOOP(i, n) {
    const int64_t c = (i / p.s) % p.c;
    out[i] = a[i] * sa[c] + b[i] * sb[c] + shift[c];
  }
}

template <class T>
__global__ void prelu_k(T* out, const T* x, const T* w, bool shared, ChannelParams p, int64_t n) {
  GS_SAMPLING_LOOP(i, n) {
    const T v = x[i];
    const T slope = w[shared ? 0 : (i / p.s) % p.c];
    out[i] = v > T(0) ? v : slope * v;
  }
}

template <class T>
const T* cp(const StridedView& v) {
  return static_cast<const T*>(v.data);
}

}  // namespace

void channel_moments(const StridedView& mean, const StridedView& var, const StridedView& x, const ChannelParams& p) {
  float_dispatch(x.dtype, "batch_norm statistics", [&](auto tag) {
    using T = decltype(tag);
    channel_reduce<T, ChanSum::Moments>(static_cast<T*>(mean.data), static_cast<T*>(var.data), cp<T>(x), nullptr,
                                        nullptr, p);
  });
}

void channel_grad_sums(const StridedView& sum_g, const StridedView& sum_gx, const StridedView& g, const StridedView& x,
                       const StridedView& center, const ChannelParams& p) {
  float_dispatch(g.dtype, "batch_norm backward", [&](auto tag) {
    using T = decltype(tag);
    channel_reduce<T, ChanSum::GradSums>(static_cast<T*>(sum_g.data), static_cast<T*>(sum_gx.data), cp<T>(g), cp<T>(x),
                                         cp<T>(center), p);
  });
}

void channel_affine(const StridedView& out, const StridedView& x, const StridedView& scale, const StridedView& shift,
                    const ChannelParams& p) {
  float_dispatch(x.dtype, "channel_affine", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(affine_k<T>, out.numel, static_cast<T*>(out.data), cp<T>(x), cp<T>(scale), cp<T>(shift), p,
                       out.numel);
  });
}

void channel_affine2(const StridedView& out, const StridedView& a, const StridedView& sa, const StridedView& b,
                     const StridedView& sb, const StridedView& shift, const ChannelParams& p) {
  float_dispatch(a.dtype, "channel_affine2", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(affine2_k<T>, out.numel, static_cast<T*>(out.data), cp<T>(a), cp<T>(sa), cp<T>(b), cp<T>(sb),
                       cp<T>(shift), p, out.numel);
  });
}

void prelu_fwd(const StridedView& out, const StridedView& x, const StridedView& w, const ChannelParams& p) {
  float_dispatch(x.dtype, "prelu", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(prelu_k<T>, out.numel, static_cast<T*>(out.data), cp<T>(x), cp<T>(w), w.numel == 1, p,
                       out.numel);
  });
}

}  // namespace gradstyle::cuda
