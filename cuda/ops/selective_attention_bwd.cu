// CUDA selective (top-k) attention, backward (FlashAttention-2 style, deterministic, no atomics):
//   delta kernel : D[b, h, i] = <dout_i, out_i>, one warp per row;
//   dQ kernel    : one CTA per 32 query rows; K/V stream in tiles of 64 keys; recompute S with the
//                  forward's fma chain (so the mask s >= tau is bit-identical), P = exp(s - lse),
//                  dP = dout V^T, dS = P (dP - D), dQ += dS K;
//   dK/dV kernel : one CTA per 32 keys; queries stream in tiles of 64; dV += P^T dout, dK += dS^T Q.
// Nothing is stored by the forward but tau and lse per row.
#include "backend/cuda_runtime.hpp"
#include "selective_attention_common.cuh"

namespace gradstyle::cuda {

namespace attn {
namespace {

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

// P and dS of one (query row, key) pair; score and dP already computed. Masked and out-of-range
// pairs give p = -0.0f (kMaskedP, skipped by the dV/dK products) and ds = 0 chosen by select, not
// 0 * (dp - delta), so an inf/NaN in v or dout does not leak into keys that a row masks out.
__device__ __forceinline__ void prob_and_ds(float acc, float dp, float th, float ls, float del, float scale,
                                            bool valid, float& p, float& ds) {
  const float s = __fmul_rn(acc, scale);  // never contracted into a later add: the mask compares this
  const bool nan_row = th != th;          // a NaN row keeps every key, with p = NaN (as the CPU)
  if (!valid || !(nan_row || s >= th)) {
    p = __uint_as_float(kMaskedP);
    ds = 0.f;
    return;
  }
  p = nan_row ? __int_as_float(0x7fc00000) : expf(s - ls);
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
        if (is_masked(p)) continue;  // the query row masks this key out: no contribution at all
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

template <int D>
void launch_bwd(const Args& a, bool want_dq, bool want_dkv) {
  constexpr int LDR = D + 4;
  if (want_dq) {
    const size_t smem = size_t(2 * kBQ * LDR + 2 * kBK * LDR + kBQ * kLDP + 3 * kBQ) * sizeof(float);
    const unsigned grid = grid_of(int64_t(a.B) * a.H * ((a.Lq + kBQ - 1) / kBQ), "backward (dq)");
    static SmemLimit limit;  // the size depends on D only
    limit.ensure(attn_bwd_dq_kernel<D>, smem);
    attn_bwd_dq_kernel<D><<<grid, kThreads, smem, stream()>>>(a);
    GS_CUDA_CHECK_LAUNCH("selective_attention backward (dq)");
  }
  if (want_dkv) {
    const size_t smem = size_t(2 * kBKV * LDR + 2 * kBQ2 * LDR + 2 * kBKV * kLDP + 3 * kBQ2) * sizeof(float);
    const unsigned grid = grid_of(int64_t(a.B) * a.H * ((a.Lk + kBKV - 1) / kBKV), "backward (dk, dv)");
    static SmemLimit limit;  // the size depends on D only
    limit.ensure(attn_bwd_dkv_kernel<D>, smem);
    attn_bwd_dkv_kernel<D><<<grid, kThreads, smem, stream()>>>(a);
    GS_CUDA_CHECK_LAUNCH("selective_attention backward (dk, dv)");
  }
}

}  // namespace
}  // namespace attn

using namespace attn;

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

}  // namespace gradstyle::cuda
