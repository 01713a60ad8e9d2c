// CUDA selective (top-k) attention, forward (the backward is in selective_attention_bwd.cu:
// a delta kernel and two kernels, dQ over query blocks and dK/dV over key blocks,
// FlashAttention-2 style: deterministic, no atomics). Exact float32 on CUDA cores. Design notes: docs/kernels.md, PERFORMANCE.md §6.3.
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
#include "selective_attention_common.cuh"

namespace gradstyle::cuda {

namespace attn {
namespace {

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
        key[i] = kMaskedP;  // -0.0f: masked, skipped by P.V
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
      for (int i = 0; i < 4; ++i) {
        if (is_masked(p[i])) continue;  // select, not 0 * v: a NaN/inf in a masked v stays out
#pragma unroll
        for (int c = 0; c < DPT; ++c) oacc[i][c] = fmaf(p[i], vv[c], oacc[i][c]);
      }
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

// Shared memory of the forward for score rows of stride ldS.
template <int D>
constexpr size_t fwd_smem(int ldS) {
  return size_t(kQB * (D + 4) + kKT * (D + 4) + kQB * ldS) * sizeof(float);
}
// The score-row stride for Lk keys (≡ 8 mod 32: conflict-free P reads).
constexpr int fwd_lds(int lk) { return ((lk + kKT - 1) / kKT) * kKT + 8; }

template <int D, int NPL>
void launch_fwd(const Args& a, int ldS) {
  const size_t smem = fwd_smem<D>(ldS);
  const unsigned grid = grid_of(int64_t(a.B) * a.H * ((a.Lq + kQB - 1) / kQB), "forward");
  static SmemLimit limit;  // this instance serves Lk <= min(32 * NPL, 1024)
  limit.ensure(attn_fwd_kernel<D, NPL>, fwd_smem<D>(fwd_lds(std::min(32 * NPL, 1024))));
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
}  // namespace attn

using namespace attn;

void selective_attention_forward(const AttnGeometry& g, const StridedView& q, const StridedView& k,
                                 const StridedView& v, const StridedView& out, const StridedView& tau,
                                 const StridedView& lse) {
  if (g.batch == 0 || g.lq == 0 || g.heads == 0) return;
  Args a = make_args(g, q, k, v);
  a.out = static_cast<float*>(out.data);
  a.tau = static_cast<float*>(tau.data);
  a.lse = static_cast<float*>(lse.data);
  const int ldS = fwd_lds(a.Lk);
  if (g.dk == 64) return launch_fwd_d<64>(a, ldS);
  return launch_fwd_d<32>(a, ldS);
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
