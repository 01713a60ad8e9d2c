#pragma once
// Private to cuda/ops/selective_attention*.cu: launch geometry, the argument block, the
// order-preserving keys and warp helpers of the threshold search, tile loads and the shared
// score fma chain, and the host-side argument checks. See selective_attention.cu for the design.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <mutex>

#include "../common/check.hpp"
#include "../common/context.hpp"
#include "backend/selective_attention_kernels.hpp"

namespace gradstyle::cuda::attn {

using backend::AttnGeometry;
using backend::StridedView;

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;
constexpr int kMaxAttnDevices = 64;  // as the runtime's per-device tables
// forward
constexpr int kQB = 32;   // query rows per CTA
constexpr int kKT = 128;  // keys per tile
// backward
constexpr int kBQ = 32;    // dQ kernel: query rows per CTA
constexpr int kBK = 64;    // dQ kernel: keys per tile
constexpr int kBKV = 32;   // dK/dV kernel: keys per CTA
constexpr int kBQ2 = 64;   // dK/dV kernel: queries per tile
constexpr int kLDP = 72;   // row stride of the probability / dS tiles (≡ 8 mod 32: conflict-free)

struct Args {
  const float* q;
  const float* k;
  const float* v;
  const float* o;
  const float* go;
  float* out;
  float* tau;
  float* lse;
  float* delta;
  float* dq;
  float* dk;
  float* dv;
  int64_t q_sb, q_sl, k_sb, k_sl, v_sb, v_sl, o_sb, o_sl, g_sb, g_sl;
  int B, H, Lq, Lk, ktop;
  float scale;
  bool vec;  // every row base is 16-byte aligned: float4 loads
};

// ---- order-preserving keys ------------------------------------------------------------------
// Unsigned keys whose integer order is the float order (-0.0 is folded onto +0.0 so that the key
// comparison agrees with the float comparison the CPU uses).
__device__ __forceinline__ uint32_t to_key(float f) {
  uint32_t u = __float_as_uint(f);
  if (u == 0x80000000u) u = 0u;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float from_key(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}
__device__ __forceinline__ uint64_t to_key(double f) {
  uint64_t u = uint64_t(__double_as_longlong(f));
  if (u == 0x8000000000000000ull) u = 0ull;
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}
__device__ __forceinline__ double from_key(uint64_t k) {
  return __longlong_as_double(
      (long long)((k & 0x8000000000000000ull) ? (k & 0x7fffffffffffffffull) : ~k));
}
__device__ __forceinline__ int clz_key(uint32_t x) { return __clz(x); }
__device__ __forceinline__ int clz_key(uint64_t x) { return __clzll((long long)x); }

template <class K>
__device__ __forceinline__ K warp_max(K v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    K w = __shfl_xor_sync(kFull, v, o);
    v = w > v ? w : v;
  }
  return v;
}
template <class K>
__device__ __forceinline__ K warp_min(K v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    K w = __shfl_xor_sync(kFull, v, o);
    v = w < v ? w : v;
  }
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// The k-th largest key of a warp-distributed row (padding keys are 0, below every real key;
// kmin/kmax are the row's warp-reduced extremes). Greedy bitwise search for the largest t with
// count(key >= t) >= k, starting below the bits shared by kmin and kmax, stopping as soon as
// exactly k keys are >= t (continuous scores get there after ~log2(L) + a few bits instead of
// 32). Every branch depends on warp-reduced values only, so the result is warp-uniform.
template <class K, int NPL>
__device__ __forceinline__ K kth_key(const K (&key)[NPL], int k, int n, K kmin, K kmax) {
  if (k == 1) return kmax;
  if (k == n) return kmin;
  const K diff = kmin ^ kmax;
  if (diff == 0) return kmax;
  constexpr int kBits = int(sizeof(K)) * 8;
  const int top = kBits - 1 - clz_key(diff);
  K t = kmax & ~((K(2) << top) - K(1));  // the common prefix; count(key >= t) = n >= k
  for (int bit = top; bit >= 0; --bit) {
    const K cand = t | (K(1) << bit);
    int c = 0;
#pragma unroll
    for (int i = 0; i < NPL; ++i) c += key[i] >= cand ? 1 : 0;
    c = __reduce_add_sync(kFull, c);
    if (c >= k) {
      t = cand;
      if (c == k) {  // exactly the top k keys are >= t: the k-th largest is their minimum
        K m = ~K(0);
#pragma unroll
        for (int i = 0; i < NPL; ++i) m = key[i] >= t && key[i] < m ? key[i] : m;
        return warp_min(m);
      }
    }
  }
  return t;
}

// ---- tile loads -----------------------------------------------------------------------------
// ROWS rows [r0, r0 + ROWS) of head h of a [B, L, C] tensor into shared memory (row stride
// D + 4 floats); rows >= L are zero-filled.
template <int D, int ROWS>
__device__ __forceinline__ void load_rows(float* dst, const float* src, int64_t sb, int64_t sl, int b, int h, int r0,
                                          int L, bool vec) {
  constexpr int LDR = D + 4;
  const float* base = src + int64_t(b) * sb + int64_t(h) * D;
  if (vec) {
    constexpr int V4 = D / 4;
    for (int e = threadIdx.x; e < ROWS * V4; e += kThreads) {
      const int r = e / V4, c = (e % V4) * 4, gr = r0 + r;
      float4 val = make_float4(0.f, 0.f, 0.f, 0.f);
      if (gr < L) val = __ldg(reinterpret_cast<const float4*>(base + int64_t(gr) * sl + c));
      *reinterpret_cast<float4*>(dst + r * LDR + c) = val;
    }
  } else {
    for (int e = threadIdx.x; e < ROWS * D; e += kThreads) {
      const int r = e / D, c = e % D, gr = r0 + r;
      dst[r * LDR + c] = gr < L ? __ldg(base + int64_t(gr) * sl + c) : 0.f;
    }
  }
}

__device__ __forceinline__ float4 ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }

// acc += <a, b> over 4 consecutive channels, in channel order (the shared score fma chain).
__device__ __forceinline__ float dot4(float4 a, float4 b, float acc) {
  acc = fmaf(a.x, b.x, acc);
  acc = fmaf(a.y, b.y, acc);
  acc = fmaf(a.z, b.z, acc);
  return fmaf(a.w, b.w, acc);
}


// ---- host side --------------------------------------------------------------------------------
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

inline Args make_args(const AttnGeometry& g, const StridedView& q, const StridedView& k, const StridedView& v) {
  GS_CHECK(q.dtype == DType::f32, DTypeError, "selective_attention: the CUDA kernels support float32 only, got ",
           dtype_name(q.dtype));
  GS_CHECK(g.dk == 32 || g.dk == 64, ValueError, "selective_attention: the CUDA kernels support head sizes 32 and 64, got ",
           g.dk);
  GS_CHECK(g.lk >= 1 && g.lk <= 1024, ValueError, "selective_attention: the CUDA kernels support 1..1024 keys, got ", g.lk);
  GS_CHECK(g.k_top >= 1 && g.k_top <= g.lk, ValueError, "selective_attention: k_top ", g.k_top, " outside [1, ", g.lk,
           "]");
  GS_CHECK(g.batch * g.heads * ((g.lq + kBQ - 1) / kBQ) < INT_MAX && g.lq < INT_MAX, ValueError,
           "selective_attention: batch * heads * query blocks exceeds the CUDA grid");
  Args a{};
  a.q = static_cast<const float*>(q.data);
  a.k = static_cast<const float*>(k.data);
  a.v = static_cast<const float*>(v.data);
  a.q_sb = g.q_sb, a.q_sl = g.q_sl, a.k_sb = g.k_sb, a.k_sl = g.k_sl, a.v_sb = g.v_sb, a.v_sl = g.v_sl;
  a.o_sb = g.o_sb, a.o_sl = g.o_sl, a.g_sb = g.g_sb, a.g_sl = g.g_sl;
  a.B = int(g.batch), a.H = int(g.heads), a.Lq = int(g.lq), a.Lk = int(g.lk), a.ktop = int(g.k_top);
  a.scale = float(g.scale);
  a.vec = aligned16(q.data) && aligned16(k.data) && aligned16(v.data) && g.q_sb % 4 == 0 && g.q_sl % 4 == 0 &&
          g.k_sb % 4 == 0 && g.k_sl % 4 == 0 && g.v_sb % 4 == 0 && g.v_sl % 4 == 0;
  return a;
}

// Masked-out keys carry p = -0.0f in the probability tiles (kept keys have p >= +0, or NaN in a
// NaN row): the P.V, dV and dK products SKIP them instead of multiplying by zero, so an inf/NaN in
// v or dout reaches exactly the rows that keep that key, as on the CPU.
constexpr uint32_t kMaskedP = 0x80000000u;
__device__ __forceinline__ bool is_masked(float p) { return __float_as_uint(p) == kMaskedP; }

// 1-D grid of `blocks` CTAs; throws ValueError naming the kernel when it exceeds the CUDA limit
// (2^31 - 1 blocks in x), instead of a silently wrapped int.
inline unsigned grid_of(int64_t blocks, const char* what) {
  GS_CHECK(blocks >= 1 && blocks <= int64_t(INT_MAX), ValueError, "selective_attention: the ", what, " grid needs ",
           blocks, " blocks, beyond the CUDA limit of ", INT_MAX, " (reduce batch * heads or the sequence length)");
  return unsigned(blocks);
}

// Per-device once-only raise of a kernel's dynamic shared-memory limit. Each launcher owns one
// (a function-local static of a distinct template instance, i.e. one per kernel) and passes the
// kernel's MAXIMUM size over every launch it can make, so concurrent host threads never race on
// the attribute and a later, larger launch never finds a lower limit.
struct SmemLimit {
  std::once_flag flag[kMaxAttnDevices];
  template <class Kern>
  void ensure(Kern kern, size_t max_bytes) {
    int dev = 0;
    GS_CUDA_CHECK(cudaGetDevice(&dev));
    GS_CHECK(dev >= 0 && dev < kMaxAttnDevices, CudaError, "CUDA device ", dev, " is beyond the supported ",
             kMaxAttnDevices);
    std::call_once(flag[dev], [&] {
      GS_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(max_bytes)));
    });
  }
};


}  // namespace gradstyle::cuda::attn
