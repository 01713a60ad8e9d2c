// CUDA selective (top-k) attention: one fused forward kernel, a delta kernel and two backward
// kernels (dQ over query blocks, dK/dV over key blocks, FlashAttention-2 style: deterministic,
// no atomics). Exact float32 on CUDA cores. Design notes: docs/kernels.md, PERFORMANCE.md §6.3.
//
// Forward, one CTA (256 threads) per (batch, head, block of 32 query rows):
//   1. scores: Q block (32 x d) stays in shared memory, K streams through in tiles of 128 keys;
//      each thread computes a 4 x 4 micro-tile with the fma chain shared by every kernel
//      (backend/selective_attention_kernels.hpp); the 32 x Lk score rows stay in shared memory
//      (128 KB at Lk = 1024) and never go to global memory;
//   2. threshold: one warp per row holds the row as order-preserving uint32 keys in registers and
//      finds the k-th largest key by a bitwise binary search over the key bits that differ
//      between the row's min and max (one warp-reduced count per bit, early exit once exactly k
//      keys are above the prefix; exact, tie-correct);
//   3. masked softmax: p = exp(s - max) on s >= tau, normalised in place (P overwrites S);
//   4. O = P V: V streams through in tiles of 128 keys; four thread groups each take 32 keys of
//      a tile and the four partial outputs are summed in a fixed order at the end.
// Saved: tau and lse per row ([B, heads, Lq]).
// Backward recomputes S bit-identically (same fma chain), so the mask is exactly the forward's.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "../common/check.hpp"
#include "../common/context.hpp"
#include "backend/cuda_runtime.hpp"
#include "backend/selective_attention_kernels.hpp"

namespace gradstyle::cuda {

using backend::AttnGeometry;
using backend::StridedView;

namespace {

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;
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

// ---- forward ----------------------------------------------------------------------------------
template <int D, int NPL>
__global__ void __launch_bounds__(kThreads) attn_fwd_kernel(Args a, int ldS) {
  constexpr int LDR = D + 4;
  constexpr int DPT = D / 8;  // output channels per thread in the P.V stage
  extern __shared__ float4 smem4[];
  float* sQ = reinterpret_cast<float*>(smem4);  // [kQB][LDR]
  float* sKV = sQ + kQB * LDR;                  // [kKT][LDR]: K tile, V tile, then partial outputs
  float* sS = sKV + kKT * LDR;                  // [kQB][ldS]: scores, then probabilities
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int nqb = (a.Lq + kQB - 1) / kQB;
  const int bh = blockIdx.x / nqb, q0 = (blockIdx.x % nqb) * kQB;
  const int b = bh / a.H, h = bh % a.H;
  const int ntiles = (a.Lk + kKT - 1) / kKT;
  const int lr = lane >> 3, lc = lane & 7;

  load_rows<D, kQB>(sQ, a.q, a.q_sb, a.q_sl, b, h, q0, a.Lq, a.vec);

  // 1. S = scale * Q K^T. Warp (wr, wc) owns rows wr*16 + lr + 4i and keys wc*32 + lc + 8j.
  {
    const int wr = warp >> 2, wc = warp & 3;
    for (int t = 0; t < ntiles; ++t) {
      const int k0 = t * kKT;
      __syncthreads();  // the previous tile is consumed
      load_rows<D, kKT>(sKV, a.k, a.k_sb, a.k_sl, b, h, k0, a.Lk, a.vec);
      __syncthreads();
      float acc[4][4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
#pragma unroll 2
      for (int d = 0; d < D; d += 4) {
        float4 qv[4], kv[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) qv[i] = ld4(sQ + (wr * 16 + lr + 4 * i) * LDR + d);
#pragma unroll
        for (int j = 0; j < 4; ++j) kv[j] = ld4(sKV + (wc * 32 + lc + 8 * j) * LDR + d);
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = dot4(qv[i], kv[j], acc[i][j]);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) sS[(wr * 16 + lr + 4 * i) * ldS + k0 + wc * 32 + lc + 8 * j] = __fmul_rn(acc[i][j], a.scale);
    }
  }
  __syncthreads();

  // 2 + 3. Per-row threshold and masked softmax; one warp per row.
  const int padded = ntiles * kKT;
  for (int r = warp; r < kQB; r += kThreads / 32) {
    float* srow = sS + r * ldS;
    const int qi = q0 + r;
    if (qi >= a.Lq) {
      for (int j = lane; j < padded; j += 32) srow[j] = 0.f;
      continue;
    }
    uint32_t key[NPL];
    bool nan = false;
    uint32_t kmax = 0u, kmin = 0xffffffffu;
#pragma unroll
    for (int i = 0; i < NPL; ++i) {
      const int j = lane + 32 * i;
      uint32_t kk = 0u;
      if (j < a.Lk) {
        const float f = srow[j];
        nan |= f != f;
        kk = to_key(f);
        kmax = kk > kmax ? kk : kmax;
        kmin = kk < kmin ? kk : kmin;
      }
      key[i] = kk;
    }
    const int64_t si = (int64_t(b) * a.H + h) * a.Lq + qi;
    if (__any_sync(kFull, nan)) {
      for (int j = lane; j < padded; j += 32) srow[j] = j < a.Lk ? __int_as_float(0x7fc00000) : 0.f;
      if (lane == 0) a.tau[si] = a.lse[si] = __int_as_float(0x7fc00000);
      continue;
    }
    kmax = warp_max(kmax);
    kmin = warp_min(kmin);
    const uint32_t th = kth_key<uint32_t, NPL>(key, a.ktop, a.Lk, kmin, kmax);
    const float mx = from_key(kmax);
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < NPL; ++i) {
      // padding keys are 0 < th (th >= the key of -inf), so they are never kept
      if (key[i] >= th) {
        const float e = expf(from_key(key[i]) - mx);
        sum += e;
        key[i] = __float_as_uint(e);
      } else {
        key[i] = 0u;  // 0.0f
      }
    }
    sum = warp_sum(sum);
    const float inv = 1.f / sum;
#pragma unroll
    for (int i = 0; i < NPL; ++i) {
      const int j = lane + 32 * i;
      if (j < a.Lk) srow[j] = __uint_as_float(key[i]) * inv;
    }
    for (int j = a.Lk + lane; j < padded; j += 32) srow[j] = 0.f;
    if (lane == 0) {
      a.tau[si] = from_key(th);
      a.lse[si] = mx + logf(sum);
    }
  }

  // 4. O = P V. Group g (64 threads) takes keys [32g, 32g + 32) of every tile; its warp wsub owns
  // rows wsub*16 + lr + 4i and channels lc*DPT .. lc*DPT + DPT - 1.
  const int g = tid >> 6, wsub = (tid >> 5) & 1, d0 = lc * DPT;
  float oacc[4][DPT];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int c = 0; c < DPT; ++c) oacc[i][c] = 0.f;
  for (int t = 0; t < ntiles; ++t) {
    const int k0 = t * kKT;
    __syncthreads();  // P complete (t = 0) / the previous V tile consumed
    load_rows<D, kKT>(sKV, a.v, a.v_sb, a.v_sl, b, h, k0, a.Lk, a.vec);
    __syncthreads();
#pragma unroll 4
    for (int jj = 0; jj < 32; ++jj) {
      const int j = g * 32 + jj;
      float p[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) p[i] = sS[(wsub * 16 + lr + 4 * i) * ldS + k0 + j];
      float vv[DPT];
#pragma unroll
      for (int c = 0; c < DPT; c += 4) {
        const float4 x = ld4(sKV + j * LDR + d0 + c);
        vv[c] = x.x, vv[c + 1] = x.y, vv[c + 2] = x.z, vv[c + 3] = x.w;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int c = 0; c < DPT; ++c) oacc[i][c] = fmaf(p[i], vv[c], oacc[i][c]);
    }
  }
  __syncthreads();
  float* sO = sKV;  // [4][kQB][D] partial outputs (4*kQB*D <= kKT*LDR)
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int c = 0; c < DPT; ++c) sO[(g * kQB + wsub * 16 + lr + 4 * i) * D + d0 + c] = oacc[i][c];
  __syncthreads();
  for (int e = tid; e < kQB * D; e += kThreads) {
    const int r = e / D, d = e % D, qi = q0 + r;
    if (qi >= a.Lq) continue;
    const float s = ((sO[r * D + d] + sO[(kQB + r) * D + d]) + sO[(2 * kQB + r) * D + d]) + sO[(3 * kQB + r) * D + d];
    a.out[int64_t(b) * a.o_sb + int64_t(qi) * a.o_sl + h * D + d] = s;
  }
}

// ---- backward -------------------------------------------------------------------------------
// delta[b, h, i] = <dout[b, i, head h], out[b, i, head h]>; one warp per (b, i, h).
__global__ void __launch_bounds__(kThreads) attn_delta_kernel(Args a, int D) {
  const int64_t nrows = int64_t(a.B) * a.Lq * a.H;
  const int lane = threadIdx.x & 31;
  for (int64_t row = (int64_t(blockIdx.x) * kThreads + threadIdx.x) >> 5; row < nrows;
       row += (int64_t(gridDim.x) * kThreads) >> 5) {
    const int h = int(row % a.H);
    const int64_t bi = row / a.H;
    const int i = int(bi % a.Lq), b = int(bi / a.Lq);
    const float* g = a.go + int64_t(b) * a.g_sb + int64_t(i) * a.g_sl + h * D;
    const float* o = a.o + int64_t(b) * a.o_sb + int64_t(i) * a.o_sl + h * D;
    float s = 0.f;
    for (int c = lane; c < D; c += 32) s = fmaf(g[c], o[c], s);
    s = warp_sum(s);
    if (lane == 0) a.delta[(int64_t(b) * a.H + h) * a.Lq + i] = s;
  }
}

// P and dS of one (query row, key) pair; score and dP already computed. Invalid pairs give 0.
__device__ __forceinline__ void prob_and_ds(float acc, float dp, float th, float ls, float del, float scale,
                                            bool valid, float& p, float& ds) {
  if (!valid) {
    p = ds = 0.f;
    return;
  }
  const float s = __fmul_rn(acc, scale);  // never contracted into a later add: the mask compares this
  p = th != th ? __int_as_float(0x7fc00000) : (s >= th ? expf(s - ls) : 0.f);
  ds = p * (dp - del);
}

// dQ: one CTA per (batch, head, 32 query rows); keys stream in tiles of 64.
template <int D>
__global__ void __launch_bounds__(kThreads) attn_bwd_dq_kernel(Args a) {
  constexpr int LDR = D + 4;
  constexpr int RPT = kBQ * D / (kThreads * 4);  // dQ rows per thread (4 channels each)
  extern __shared__ float4 smem4[];
  float* sQ = reinterpret_cast<float*>(smem4);
  float* sG = sQ + kBQ * LDR;
  float* sK = sG + kBQ * LDR;
  float* sV = sK + kBK * LDR;
  float* sDS = sV + kBK * LDR;  // [kBQ][kLDP]
  float* sTau = sDS + kBQ * kLDP;
  float* sLse = sTau + kBQ;
  float* sDel = sLse + kBQ;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int nqb = (a.Lq + kBQ - 1) / kBQ;
  const int bh = blockIdx.x / nqb, q0 = (blockIdx.x % nqb) * kBQ;
  const int b = bh / a.H, h = bh % a.H;
  load_rows<D, kBQ>(sQ, a.q, a.q_sb, a.q_sl, b, h, q0, a.Lq, a.vec);
  load_rows<D, kBQ>(sG, a.go, a.g_sb, a.g_sl, b, h, q0, a.Lq, a.vec);
  if (tid < kBQ) {
    const int qi = q0 + tid;
    const int64_t si = (int64_t(b) * a.H + h) * a.Lq + qi;
    sTau[tid] = qi < a.Lq ? a.tau[si] : 0.f;
    sLse[tid] = qi < a.Lq ? a.lse[si] : 0.f;
    sDel[tid] = qi < a.Lq ? a.delta[si] : 0.f;
  }
  const int wr = warp >> 1, wc = warp & 1, lr = lane >> 3, lc = lane & 7;
  const int dg = tid % (D / 4), rg = tid / (D / 4);
  float dacc[RPT][4];
#pragma unroll
  for (int r = 0; r < RPT; ++r)
#pragma unroll
    for (int c = 0; c < 4; ++c) dacc[r][c] = 0.f;
  const int ntiles = (a.Lk + kBK - 1) / kBK;
  for (int t = 0; t < ntiles; ++t) {
    const int k0 = t * kBK;
    __syncthreads();
    load_rows<D, kBK>(sK, a.k, a.k_sb, a.k_sl, b, h, k0, a.Lk, a.vec);
    load_rows<D, kBK>(sV, a.v, a.v_sb, a.v_sl, b, h, k0, a.Lk, a.vec);
    __syncthreads();
    // rows wr*8 + lr + 4i (i < 2), keys wc*32 + lc + 8j (j < 4)
    float s[2][4], dp[2][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) s[i][j] = dp[i][j] = 0.f;
#pragma unroll 2
    for (int d = 0; d < D; d += 4) {
      float4 qv[2], gv[2], kv[4], vv[4];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        qv[i] = ld4(sQ + (wr * 8 + lr + 4 * i) * LDR + d);
        gv[i] = ld4(sG + (wr * 8 + lr + 4 * i) * LDR + d);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        kv[j] = ld4(sK + (wc * 32 + lc + 8 * j) * LDR + d);
        vv[j] = ld4(sV + (wc * 32 + lc + 8 * j) * LDR + d);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          s[i][j] = dot4(qv[i], kv[j], s[i][j]);
          dp[i][j] = dot4(gv[i], vv[j], dp[i][j]);
        }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int r = wr * 8 + lr + 4 * i, kc = wc * 32 + lc + 8 * j;
        float p, ds;
        prob_and_ds(s[i][j], dp[i][j], sTau[r], sLse[r], sDel[r], a.scale, q0 + r < a.Lq && k0 + kc < a.Lk, p, ds);
        sDS[r * kLDP + kc] = ds;
      }
    __syncthreads();
#pragma unroll 4
    for (int jj = 0; jj < kBK; ++jj) {
      const float4 kv = ld4(sK + jj * LDR + dg * 4);
#pragma unroll
      for (int r = 0; r < RPT; ++r) {
        const float ds = sDS[(rg * RPT + r) * kLDP + jj];
        dacc[r][0] = fmaf(ds, kv.x, dacc[r][0]);
        dacc[r][1] = fmaf(ds, kv.y, dacc[r][1]);
        dacc[r][2] = fmaf(ds, kv.z, dacc[r][2]);
        dacc[r][3] = fmaf(ds, kv.w, dacc[r][3]);
      }
    }
  }
  const int C = a.H * D;
#pragma unroll
  for (int r = 0; r < RPT; ++r) {
    const int qi = q0 + rg * RPT + r;
    if (qi >= a.Lq) continue;
    float* dst = a.dq + (int64_t(b) * a.Lq + qi) * C + h * D + dg * 4;
#pragma unroll
    for (int c = 0; c < 4; ++c) dst[c] = dacc[r][c] * a.scale;
  }
}

// dK and dV: one CTA per (batch, head, 32 keys); queries stream in tiles of 64.
template <int D>
__global__ void __launch_bounds__(kThreads) attn_bwd_dkv_kernel(Args a) {
  constexpr int LDR = D + 4;
  constexpr int KPT = kBKV * D / (kThreads * 4);  // keys per thread (4 channels each)
  extern __shared__ float4 smem4[];
  float* sK = reinterpret_cast<float*>(smem4);
  float* sV = sK + kBKV * LDR;
  float* sQ = sV + kBKV * LDR;
  float* sG = sQ + kBQ2 * LDR;
  float* sPT = sG + kBQ2 * LDR;  // [kBKV][kLDP]
  float* sDST = sPT + kBKV * kLDP;
  float* sTau = sDST + kBKV * kLDP;
  float* sLse = sTau + kBQ2;
  float* sDel = sLse + kBQ2;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int nkb = (a.Lk + kBKV - 1) / kBKV;
  const int bh = blockIdx.x / nkb, k0 = (blockIdx.x % nkb) * kBKV;
  const int b = bh / a.H, h = bh % a.H;
  load_rows<D, kBKV>(sK, a.k, a.k_sb, a.k_sl, b, h, k0, a.Lk, a.vec);
  load_rows<D, kBKV>(sV, a.v, a.v_sb, a.v_sl, b, h, k0, a.Lk, a.vec);
  const int wr = warp >> 1, wc = warp & 1, lr = lane >> 3, lc = lane & 7;
  const int dg = tid % (D / 4), kg = tid / (D / 4);
  float dkacc[KPT][4], dvacc[KPT][4];
#pragma unroll
  for (int r = 0; r < KPT; ++r)
#pragma unroll
    for (int c = 0; c < 4; ++c) dkacc[r][c] = dvacc[r][c] = 0.f;
  const int ntiles = (a.Lq + kBQ2 - 1) / kBQ2;
  for (int t = 0; t < ntiles; ++t) {
    const int q0 = t * kBQ2;
    __syncthreads();
    load_rows<D, kBQ2>(sQ, a.q, a.q_sb, a.q_sl, b, h, q0, a.Lq, a.vec);
    load_rows<D, kBQ2>(sG, a.go, a.g_sb, a.g_sl, b, h, q0, a.Lq, a.vec);
    if (tid < kBQ2) {
      const int qi = q0 + tid;
      const int64_t si = (int64_t(b) * a.H + h) * a.Lq + qi;
      sTau[tid] = qi < a.Lq ? a.tau[si] : 0.f;
      sLse[tid] = qi < a.Lq ? a.lse[si] : 0.f;
      sDel[tid] = qi < a.Lq ? a.delta[si] : 0.f;
    }
    __syncthreads();
    // keys wr*8 + lr + 4i (i < 2), queries wc*32 + lc + 8j (j < 4)
    float s[2][4], dp[2][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) s[i][j] = dp[i][j] = 0.f;
#pragma unroll 2
    for (int d = 0; d < D; d += 4) {
      float4 kv[2], vv[2], qv[4], gv[4];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        kv[i] = ld4(sK + (wr * 8 + lr + 4 * i) * LDR + d);
        vv[i] = ld4(sV + (wr * 8 + lr + 4 * i) * LDR + d);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        qv[j] = ld4(sQ + (wc * 32 + lc + 8 * j) * LDR + d);
        gv[j] = ld4(sG + (wc * 32 + lc + 8 * j) * LDR + d);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          s[i][j] = dot4(qv[j], kv[i], s[i][j]);  // same operand order as the forward
          dp[i][j] = dot4(gv[j], vv[i], dp[i][j]);
        }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int kr = wr * 8 + lr + 4 * i, qc = wc * 32 + lc + 8 * j;
        float p, ds;
        prob_and_ds(s[i][j], dp[i][j], sTau[qc], sLse[qc], sDel[qc], a.scale, q0 + qc < a.Lq && k0 + kr < a.Lk, p,
                    ds);
        sPT[kr * kLDP + qc] = p;
        sDST[kr * kLDP + qc] = ds;
      }
    __syncthreads();
#pragma unroll 4
    for (int qq = 0; qq < kBQ2; ++qq) {
      const float4 gv = ld4(sG + qq * LDR + dg * 4);
      const float4 qv = ld4(sQ + qq * LDR + dg * 4);
#pragma unroll
      for (int r = 0; r < KPT; ++r) {
        const float p = sPT[(kg * KPT + r) * kLDP + qq], ds = sDST[(kg * KPT + r) * kLDP + qq];
        dvacc[r][0] = fmaf(p, gv.x, dvacc[r][0]);
        dvacc[r][1] = fmaf(p, gv.y, dvacc[r][1]);
        dvacc[r][2] = fmaf(p, gv.z, dvacc[r][2]);
        dvacc[r][3] = fmaf(p, gv.w, dvacc[r][3]);
        dkacc[r][0] = fmaf(ds, qv.x, dkacc[r][0]);
        dkacc[r][1] = fmaf(ds, qv.y, dkacc[r][1]);
        dkacc[r][2] = fmaf(ds, qv.z, dkacc[r][2]);
        dkacc[r][3] = fmaf(ds, qv.w, dkacc[r][3]);
      }
    }
  }
  const int C = a.H * D;
#pragma unroll
  for (int r = 0; r < KPT; ++r) {
    const int kj = k0 + kg * KPT + r;
    if (kj >= a.Lk) continue;
    const int64_t off = (int64_t(b) * a.Lk + kj) * C + h * D + dg * 4;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      if (a.dk) a.dk[off + c] = dkacc[r][c] * a.scale;
      if (a.dv) a.dv[off + c] = dvacc[r][c];
    }
  }
}

// ---- rows_kth_largest -------------------------------------------------------------------------
template <class T, class K, int NPL>
__global__ void __launch_bounds__(kThreads) kth_rows_kernel(T* out, const T* in, int64_t outer, int n, int k) {
  const int lane = threadIdx.x & 31;
  for (int64_t row = (int64_t(blockIdx.x) * kThreads + threadIdx.x) >> 5; row < outer;
       row += (int64_t(gridDim.x) * kThreads) >> 5) {
    const T* x = in + row * n;
    K key[NPL];
    bool nan = false;
    K kmax = K(0), kmin = ~K(0);
#pragma unroll
    for (int i = 0; i < NPL; ++i) {
      const int j = lane + 32 * i;
      K kk = K(0);
      if (j < n) {
        const T f = x[j];
        nan |= f != f;
        kk = to_key(f);
        kmax = kk > kmax ? kk : kmax;
        kmin = kk < kmin ? kk : kmin;
      }
      key[i] = kk;
    }
    if (__any_sync(kFull, nan)) {
      if (lane == 0) out[row] = T(NAN);
      continue;
    }
    kmax = warp_max(kmax);
    kmin = warp_min(kmin);
    const K th = kth_key<K, NPL>(key, k, n, kmin, kmax);
    if (lane == 0) out[row] = from_key(th);
  }
}

// ---- host side ----------------------------------------------------------------------------------
bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

Args make_args(const AttnGeometry& g, const StridedView& q, const StridedView& k, const StridedView& v) {
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

template <class Kern>
void set_smem(Kern kern, size_t bytes) {
  GS_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

template <int D, int NPL>
void launch_fwd(const Args& a, int ldS) {
  constexpr int LDR = D + 4;
  const size_t smem = size_t(kQB * LDR + kKT * LDR + kQB * ldS) * sizeof(float);
  const unsigned grid = unsigned(a.B * a.H * ((a.Lq + kQB - 1) / kQB));
  set_smem(attn_fwd_kernel<D, NPL>, smem);
  attn_fwd_kernel<D, NPL><<<grid, kThreads, smem, stream()>>>(a, ldS);
  GS_CUDA_CHECK_LAUNCH("selective_attention forward");
}

template <int D>
void launch_fwd_d(const Args& a, int ldS) {
  const int npl = (a.Lk + 31) / 32;
  if (npl <= 1) return launch_fwd<D, 1>(a, ldS);
  if (npl <= 2) return launch_fwd<D, 2>(a, ldS);
  if (npl <= 4) return launch_fwd<D, 4>(a, ldS);
  if (npl <= 8) return launch_fwd<D, 8>(a, ldS);
  if (npl <= 16) return launch_fwd<D, 16>(a, ldS);
  return launch_fwd<D, 32>(a, ldS);
}

template <int D>
void launch_bwd(const Args& a, bool want_dq, bool want_dkv) {
  constexpr int LDR = D + 4;
  if (want_dq) {
    const size_t smem = size_t(2 * kBQ * LDR + 2 * kBK * LDR + kBQ * kLDP + 3 * kBQ) * sizeof(float);
    const unsigned grid = unsigned(a.B * a.H * ((a.Lq + kBQ - 1) / kBQ));
    set_smem(attn_bwd_dq_kernel<D>, smem);
    attn_bwd_dq_kernel<D><<<grid, kThreads, smem, stream()>>>(a);
    GS_CUDA_CHECK_LAUNCH("selective_attention backward (dq)");
  }
  if (want_dkv) {
    const size_t smem = size_t(2 * kBKV * LDR + 2 * kBQ2 * LDR + 2 * kBKV * kLDP + 3 * kBQ2) * sizeof(float);
    const unsigned grid = unsigned(a.B * a.H * ((a.Lk + kBKV - 1) / kBKV));
    set_smem(attn_bwd_dkv_kernel<D>, smem);
    attn_bwd_dkv_kernel<D><<<grid, kThreads, smem, stream()>>>(a);
    GS_CUDA_CHECK_LAUNCH("selective_attention backward (dk, dv)");
  }
}

template <class T, class K>
void launch_kth(T* out, const T* in, int64_t outer, int n, int k) {
  const int npl = (n + 31) / 32;
  const int64_t blocks = std::min<int64_t>((outer * 32 + kThreads - 1) / kThreads, int64_t(sm_count()) * 32);
  const unsigned grid = unsigned(std::max<int64_t>(1, blocks));
#define GS_KTH(N)                                                                  \
  kth_rows_kernel<T, K, N><<<grid, kThreads, 0, stream()>>>(out, in, outer, n, k); \
  GS_CUDA_CHECK_LAUNCH("rows_kth_largest");                                        \
  return
  if (npl <= 1) { GS_KTH(1); }
  if (npl <= 2) { GS_KTH(2); }
  if (npl <= 4) { GS_KTH(4); }
  if (npl <= 8) { GS_KTH(8); }
  if (npl <= 16) { GS_KTH(16); }
  GS_KTH(32);
#undef GS_KTH
}

}  // namespace

void selective_attention_forward(const AttnGeometry& g, const StridedView& q, const StridedView& k,
                                 const StridedView& v, const StridedView& out, const StridedView& tau,
                                 const StridedView& lse) {
  if (g.batch == 0 || g.lq == 0 || g.heads == 0) return;
  Args a = make_args(g, q, k, v);
  a.out = static_cast<float*>(out.data);
  a.tau = static_cast<float*>(tau.data);
  a.lse = static_cast<float*>(lse.data);
  const int ldS = ((a.Lk + kKT - 1) / kKT) * kKT + 8;  // ≡ 8 (mod 32): conflict-free P reads
  if (g.dk == 64) return launch_fwd_d<64>(a, ldS);
  return launch_fwd_d<32>(a, ldS);
}

void selective_attention_backward(const AttnGeometry& g, const StridedView& q, const StridedView& k,
                                  const StridedView& v, const StridedView& out, const StridedView& dout,
                                  const StridedView& tau, const StridedView& lse, const StridedView& dq,
                                  const StridedView& dk, const StridedView& dv) {
  if (g.batch == 0 || g.heads == 0) return;
  Args a = make_args(g, q, k, v);
  a.o = static_cast<const float*>(out.data);
  a.go = static_cast<const float*>(dout.data);
  a.tau = static_cast<float*>(tau.data);
  a.lse = static_cast<float*>(lse.data);
  a.dq = static_cast<float*>(dq.data);
  a.dk = static_cast<float*>(dk.data);
  a.dv = static_cast<float*>(dv.data);
  a.vec = a.vec && aligned16(dout.data) && g.g_sb % 4 == 0 && g.g_sl % 4 == 0;
  const bool want_dq = a.dq != nullptr && g.lq > 0, want_dkv = a.dk != nullptr || a.dv != nullptr;
  if (g.lq == 0) {  // no query rows: dk and dv are zero
    if (a.dk) GS_CUDA_CHECK(cudaMemsetAsync(a.dk, 0, size_t(g.batch * g.lk * g.heads * g.dk) * 4, stream()));
    if (a.dv) GS_CUDA_CHECK(cudaMemsetAsync(a.dv, 0, size_t(g.batch * g.lk * g.heads * g.dk) * 4, stream()));
    return;
  }
  // delta = rowsum(dout * out) per (b, h, i), in a scratch buffer from the stream-ordered pool
  const size_t nrows = size_t(g.batch * g.heads * g.lq);
  float* delta = static_cast<float*>(device_alloc(nrows * sizeof(float)));
  a.delta = delta;
  try {
    const int64_t blocks = std::min<int64_t>((int64_t(nrows) * 32 + kThreads - 1) / kThreads, int64_t(sm_count()) * 32);
    attn_delta_kernel<<<unsigned(std::max<int64_t>(1, blocks)), kThreads, 0, stream()>>>(a, int(g.dk));
    GS_CUDA_CHECK_LAUNCH("selective_attention backward (delta)");
    if (g.dk == 64) launch_bwd<64>(a, want_dq, want_dkv);
    else launch_bwd<32>(a, want_dq, want_dkv);
  } catch (...) {
    device_free(delta);
    throw;
  }
  device_free(delta);
}

void rows_kth_largest(const StridedView& out, const StridedView& in, int64_t outer, int64_t n, int64_t k) {
  GS_CHECK(n >= 1 && n <= 1024, ValueError, "rows_kth_largest: the CUDA kernel supports rows of 1..1024, got ", n);
  GS_CHECK(k >= 1 && k <= n, ValueError, "rows_kth_largest: k ", k, " outside [1, ", n, "]");
  if (outer == 0) return;
  if (in.dtype == DType::f32)
    return launch_kth<float, uint32_t>(static_cast<float*>(out.data), static_cast<const float*>(in.data), outer, int(n),
                                       int(k));
  if (in.dtype == DType::f64)
    return launch_kth<double, uint64_t>(static_cast<double*>(out.data), static_cast<const double*>(in.data), outer,
                                        int(n), int(k));
  throw DTypeError(err_msg("rows_kth_largest: unsupported dtype ", dtype_name(in.dtype)));
}

}  // namespace gradstyle::cuda
