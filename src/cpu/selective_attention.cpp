// CPU selective (top-k) attention: the oracle for the CUDA kernels, in float32 and float64.
//
// Forward, per (batch, head, query row):
//   s_j   = scale * fma-chain(q, k_j)           (see backend/selective_attention_kernels.hpp)
//   tau   = k_top-th largest s_j                (bitwise search on order-preserving keys)
//   p_j   = s_j >= tau ? exp(s_j - max) : 0 ;   out = sum_j p_j v_j / sum_j p_j
//   lse   = max + log(sum_j p_j)                (saved with tau for the backward)
// Backward recomputes the row's scores with the same routine, so the mask is bit-identical:
//   P = exp(s - lse) on kept entries; dP_j = dout . v_j; D = dout . out; dS = P (dP - D)
//   dq = scale * sum_j dS_j k_j ; dk_j += scale * dS_j q ; dv_j += P_j dout
// Only kept entries are visited after the scores, so the softmax and P.V cost ~ k_top / Lk of a
// dense pass. Parallel over (batch, head, block of query rows) forward and over (batch, head)
// backward (each head owns its slice of dk and dv, so no two threads write the same element).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/selective_attention_kernels.hpp"

namespace gradstyle::cpu {

using backend::AttnGeometry;
using backend::StridedView;

namespace {

constexpr int64_t kRowBlock = 64;            // query rows per forward task
constexpr int64_t kParallelWork = 1 << 20;   // multiply-adds below which one thread is faster

// K of head (b, h) transposed into kt [dk][lk] so the score loop runs over contiguous keys.
template <class T>
void transpose_keys(const AttnGeometry& g, const T* k, int64_t b, int64_t h, T* kt) {
  for (int64_t j = 0; j < g.lk; ++j) {
    const T* kr = k + b * g.k_sb + j * g.k_sl + h * g.dk;
    for (int64_t c = 0; c < g.dk; ++c) kt[c * g.lk + j] = kr[c];
  }
}

// Scores of RB query rows against every key: s[r][j] (row stride lk). Each score is the fma
// chain over c = 0..dk-1 starting from 0, then times scale; vectorised over keys, so the order
// of operations per score does not depend on j or on the row block.
template <class T, int RB>
void block_scores(const T* const* qrows, const T* kt, int64_t lk, int64_t dk, T scale, T* s) {
  constexpr int64_t JB = 64 / int64_t(sizeof(T));
  for (int64_t j0 = 0; j0 < lk; j0 += JB) {
    const int64_t jn = std::min(JB, lk - j0);
    T acc[RB][JB] = {};
    if (jn == JB) {
      for (int64_t c = 0; c < dk; ++c) {
        const T* kr = kt + c * lk + j0;
#pragma GCC unroll 4
        for (int r = 0; r < RB; ++r) {
          const T qv = qrows[r][c];
#pragma GCC unroll 16
          for (int64_t jj = 0; jj < JB; ++jj) acc[r][jj] = std::fma(qv, kr[jj], acc[r][jj]);
        }
      }
    } else {
      for (int64_t c = 0; c < dk; ++c) {
        const T* kr = kt + c * lk + j0;
        for (int r = 0; r < RB; ++r) {
          const T qv = qrows[r][c];
          for (int64_t jj = 0; jj < jn; ++jj) acc[r][jj] = std::fma(qv, kr[jj], acc[r][jj]);
        }
      }
    }
    for (int r = 0; r < RB; ++r)
      for (int64_t jj = 0; jj < jn; ++jj) s[r * lk + j0 + jj] = acc[r][jj] * scale;
  }
}

// Scores for rows [i0, i0+n) of head (b, h) into s (n rows of lk).
template <class T>
void rows_scores(const AttnGeometry& g, const T* q, int64_t b, int64_t h, int64_t i0, int64_t n, const T* kt,
                 T* s) {
  const T scale = T(g.scale);
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const T* rows[4];
    for (int u = 0; u < 4; ++u) rows[u] = q + b * g.q_sb + (i0 + r + u) * g.q_sl + h * g.dk;
    block_scores<T, 4>(rows, kt, g.lk, g.dk, scale, s + r * g.lk);
  }
  for (; r < n; ++r) {
    const T* rows[1] = {q + b * g.q_sb + (i0 + r) * g.q_sl + h * g.dk};
    block_scores<T, 1>(rows, kt, g.lk, g.dk, scale, s + r * g.lk);
  }
}

// Order-preserving unsigned keys (integer order = float order; -0.0 folded onto +0.0 so that
// key equality agrees with float equality). The same transform as the CUDA kernels.
template <class T>
struct KeyOf;
template <>
struct KeyOf<float> {
  using type = uint32_t;
};
template <>
struct KeyOf<double> {
  using type = uint64_t;
};
template <class T>
typename KeyOf<T>::type to_key(T f) {
  using K = typename KeyOf<T>::type;
  constexpr K sign = K(1) << (sizeof(K) * 8 - 1);
  K u;
  std::memcpy(&u, &f, sizeof(K));
  if (u == sign) u = 0;
  return (u & sign) ? ~u : (u | sign);
}
template <class T>
T from_key(typename KeyOf<T>::type k) {
  using K = typename KeyOf<T>::type;
  constexpr K sign = K(1) << (sizeof(K) * 8 - 1);
  const K u = (k & sign) ? (k & ~sign) : ~k;
  T f;
  std::memcpy(&f, &u, sizeof(K));
  return f;
}

// k-th largest of row[0..n) (1 <= k <= n), counted with multiplicity; NaN when the row has a NaN.
// Greedy bitwise search for the largest key t with count(key >= t) >= k over the bits below the
// common prefix of the row's min and max (each step one vectorised counting pass), stopping early
// once exactly k keys are >= t (then the answer is the smallest of them). Exact and branch-light.
// *row_max receives the row's maximum.
template <class T>
T kth_largest(const T* row, int64_t n, int64_t k, typename KeyOf<T>::type* keys, T* row_max = nullptr) {
  using K = typename KeyOf<T>::type;
  constexpr K sign = K(1) << (sizeof(K) * 8 - 1);
  K kmin = ~K(0), kmax = 0;
  int nan = 0;
  for (int64_t j = 0; j < n; ++j) {  // vectorised: bit transform, NaN flag, min and max
    const T x = row[j];
    nan |= x != x;
    K u;
    std::memcpy(&u, &x, sizeof(K));
    u = u == sign ? K(0) : u;
    const K kk = u ^ ((u & sign) ? ~K(0) : sign);
    keys[j] = kk;
    kmin = kk < kmin ? kk : kmin;
    kmax = kk > kmax ? kk : kmax;
  }
  if (nan) {
    if (row_max) *row_max = std::numeric_limits<T>::quiet_NaN();
    return std::numeric_limits<T>::quiet_NaN();
  }
  if (row_max) *row_max = from_key<T>(kmax);
  if (k == 1) return from_key<T>(kmax);
  if (k == n) return from_key<T>(kmin);
  const K diff = kmin ^ kmax;
  if (diff == 0) return from_key<T>(kmax);
  int top = int(sizeof(K) * 8) - 1;
  while (!((diff >> top) & 1)) --top;
  K t = kmax & ~((K(2) << top) - K(1));  // common prefix: every key is >= t
  for (int bit = top; bit >= 0; --bit) {
    const K cand = t | (K(1) << bit);
    int32_t c = 0;  // n <= 2^31 (checked by the caller's shapes); 32-bit lanes vectorise 8-wide
    for (int64_t j = 0; j < n; ++j) c += keys[j] >= cand ? 1 : 0;
    if (c >= k) {
      t = cand;
      if (c == k) {  // exactly the top k are >= t: the k-th largest is their minimum
        K m = ~K(0);
        for (int64_t j = 0; j < n; ++j) m = keys[j] >= t && keys[j] < m ? keys[j] : m;
        return from_key<T>(m);
      }
    }
  }
  return from_key<T>(t);
}

// y += w * x, vectorised. Not inlined: inlined into the key loop, GCC jams two keys into one
// scalar loop (it can no longer prove x and y disjoint).
template <class T>
__attribute__((noinline)) void axpy(T w, const T* __restrict x, T* __restrict y, int64_t n) {
  for (int64_t c = 0; c < n; ++c) y[c] = std::fma(w, x[c], y[c]);
}

// <a, b> with 8 interleaved partial sums (vectorises; the order is fixed, so results are
// reproducible). Used where the order does not feed the mask (the backward's dP and delta).
template <class T>
T dot8(const T* __restrict a, const T* __restrict b, int64_t n) {
  T part[8] = {};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int u = 0; u < 8; ++u) part[u] = std::fma(a[c + u], b[c + u], part[u]);
  for (; c < n; ++c) part[0] = std::fma(a[c], b[c], part[0]);
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

template <class T>
void forward_t(const AttnGeometry& g, const StridedView& qv, const StridedView& kv, const StridedView& vv,
               const StridedView& ov, const StridedView& tauv, const StridedView& lsev) {
  const T* q = static_cast<const T*>(qv.data);
  const T* k = static_cast<const T*>(kv.data);
  const T* v = static_cast<const T*>(vv.data);
  T* out = static_cast<T*>(ov.data);
  T* tau = static_cast<T*>(tauv.data);
  T* lse = static_cast<T*>(lsev.data);
  const int64_t nblk = (g.lq + kRowBlock - 1) / kRowBlock;
  const int64_t ntask = g.batch * g.heads * nblk;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const bool par = g.batch * g.heads * g.lq * g.lk * g.dk > kParallelWork && ntask > 1;
#pragma omp parallel if (par)
  {
    std::vector<T> kt(size_t(g.dk * g.lk)), s(size_t(kRowBlock * g.lk)), acc(size_t(g.dk));
    std::vector<typename KeyOf<T>::type> keys(static_cast<size_t>(g.lk));
    std::vector<int64_t> idx(static_cast<size_t>(g.lk));
    std::vector<T> e(static_cast<size_t>(g.lk));
    int64_t cur_bh = -1;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < ntask; ++t) {
      const int64_t bh = t / nblk, blk = t % nblk;
      const int64_t b = bh / g.heads, h = bh % g.heads;
      if (bh != cur_bh) {
        transpose_keys(g, k, b, h, kt.data());
        cur_bh = bh;
      }
      const int64_t i0 = blk * kRowBlock, n = std::min(kRowBlock, g.lq - i0);
      rows_scores(g, q, b, h, i0, n, kt.data(), s.data());
      for (int64_t r = 0; r < n; ++r) {
        const int64_t i = i0 + r;
        const T* srow = s.data() + r * g.lk;
        T* orow = out + b * g.o_sb + i * g.o_sl + h * g.dk;
        const int64_t si = (b * g.heads + h) * g.lq + i;
        T mx;
        const T th = kth_largest(srow, g.lk, g.k_top, keys.data(), &mx);
        if (std::isnan(th)) {
          for (int64_t c = 0; c < g.dk; ++c) orow[c] = nan;
          tau[si] = lse[si] = nan;
          continue;
        }
        // kept indices, compacted without branches (the mask is data-dependent)
        int64_t m = 0;
        for (int64_t j = 0; j < g.lk; ++j) {
          idx[size_t(m)] = j;
          m += srow[j] >= th ? 1 : 0;
        }
        double sum = 0;
        for (int64_t t = 0; t < m; ++t) {
          e[size_t(t)] = std::exp(srow[idx[size_t(t)]] - mx);
          sum += double(e[size_t(t)]);
        }
        T* __restrict a = acc.data();
        std::fill(a, a + g.dk, T(0));
        for (int64_t t = 0; t < m; ++t) {
          const T w = e[size_t(t)];
          axpy(w, v + b * g.v_sb + idx[size_t(t)] * g.v_sl + h * g.dk, a, g.dk);
        }
        const T inv = T(1.0 / sum);
        for (int64_t c = 0; c < g.dk; ++c) orow[c] = a[c] * inv;
        tau[si] = th;
        lse[si] = mx + T(std::log(sum));
      }
    }
  }
}

template <class T>
void backward_t(const AttnGeometry& g, const StridedView& qv, const StridedView& kv, const StridedView& vv,
                const StridedView& ov, const StridedView& gv, const StridedView& tauv, const StridedView& lsev,
                const StridedView& dqv, const StridedView& dkv, const StridedView& dvv) {
  const T* q = static_cast<const T*>(qv.data);
  const T* k = static_cast<const T*>(kv.data);
  const T* v = static_cast<const T*>(vv.data);
  const T* out = static_cast<const T*>(ov.data);
  const T* dout = static_cast<const T*>(gv.data);
  const T* tau = static_cast<const T*>(tauv.data);
  const T* lse = static_cast<const T*>(lsev.data);
  T* dq = static_cast<T*>(dqv.data);
  T* dk = static_cast<T*>(dkv.data);
  T* dv = static_cast<T*>(dvv.data);
  const int64_t C = g.heads * g.dk;
  const T scale = T(g.scale);
  const int64_t nbh = g.batch * g.heads;
  const bool par = g.batch * g.heads * g.lq * g.lk * g.dk > kParallelWork && nbh > 1;
#pragma omp parallel if (par)
  {
    std::vector<T> kt(size_t(g.dk * g.lk)), s(size_t(kRowBlock * g.lk)), dqa(size_t(g.dk));
    std::vector<int64_t> idx(static_cast<size_t>(g.lk));
#pragma omp for schedule(dynamic, 1)
    for (int64_t bh = 0; bh < nbh; ++bh) {
      const int64_t b = bh / g.heads, h = bh % g.heads;
      transpose_keys(g, k, b, h, kt.data());
      // dk, dv: dense [B, Lk, C]; this head's slice starts at zero.
      for (int64_t j = 0; j < g.lk; ++j)
        for (int64_t c = 0; c < g.dk; ++c) {
          if (dk) dk[(b * g.lk + j) * C + h * g.dk + c] = T(0);
          if (dv) dv[(b * g.lk + j) * C + h * g.dk + c] = T(0);
        }
      for (int64_t i0 = 0; i0 < g.lq; i0 += kRowBlock) {
        const int64_t n = std::min(kRowBlock, g.lq - i0);
        rows_scores(g, q, b, h, i0, n, kt.data(), s.data());
        for (int64_t r = 0; r < n; ++r) {
          const int64_t i = i0 + r;
          const T* srow = s.data() + r * g.lk;
          const int64_t si = (b * g.heads + h) * g.lq + i;
          const T th = tau[si], ls = lse[si];
          const bool row_nan = std::isnan(th);
          const T* qrow = q + b * g.q_sb + i * g.q_sl + h * g.dk;
          const T* orow = out + b * g.o_sb + i * g.o_sl + h * g.dk;
          const T* grow = dout + b * g.g_sb + i * g.g_sl + h * g.dk;
          const T delta = dot8(grow, orow, g.dk);
          T* __restrict da = dqa.data();
          std::fill(da, da + g.dk, T(0));
          int64_t m = 0;  // kept keys, compacted without branches (all of them for a NaN row)
          for (int64_t j = 0; j < g.lk; ++j) {
            idx[size_t(m)] = j;
            m += (row_nan || srow[j] >= th) ? 1 : 0;
          }
          for (int64_t t = 0; t < m; ++t) {
            const int64_t j = idx[size_t(t)];
            const T p = row_nan ? std::numeric_limits<T>::quiet_NaN() : std::exp(srow[j] - ls);
            const T* __restrict vr = v + b * g.v_sb + j * g.v_sl + h * g.dk;
            const T* __restrict kr = k + b * g.k_sb + j * g.k_sl + h * g.dk;
            const T ds = p * (dot8(grow, vr, g.dk) - delta);
            if (dq) axpy(ds, kr, da, g.dk);
            if (dk) axpy(ds * scale, qrow, dk + (b * g.lk + j) * C + h * g.dk, g.dk);
            if (dv) axpy(p, grow, dv + (b * g.lk + j) * C + h * g.dk, g.dk);
          }
          if (dq) {
            T* dqr = dq + (b * g.lq + i) * C + h * g.dk;
            for (int64_t c = 0; c < g.dk; ++c) dqr[c] = da[c] * scale;
          }
        }
      }
    }
  }
}

template <class T>
void kth_rows_t(T* out, const T* in, int64_t outer, int64_t n, int64_t k) {
#pragma omp parallel if (outer * n > kParallelWork / 16)
  {
    std::vector<typename KeyOf<T>::type> keys(static_cast<size_t>(n));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < outer; ++r) out[r] = kth_largest(in + r * n, n, k, keys.data());
  }
}

void check_geometry(const AttnGeometry& g) {
  GS_CHECK(g.k_top >= 1 && g.k_top <= g.lk, ValueError, "selective_attention: k_top ", g.k_top,
           " outside [1, ", g.lk, "]");
}

}  // namespace

void selective_attention_forward(const AttnGeometry& g, const StridedView& q, const StridedView& k,
                                 const StridedView& v, const StridedView& out, const StridedView& tau,
                                 const StridedView& lse) {
  check_geometry(g);
  if (q.dtype == DType::f32) return forward_t<float>(g, q, k, v, out, tau, lse);
  if (q.dtype == DType::f64) return forward_t<double>(g, q, k, v, out, tau, lse);
  throw DTypeError(err_msg("selective_attention: unsupported dtype ", dtype_name(q.dtype)));
}

void selective_attention_backward(const AttnGeometry& g, const StridedView& q, const StridedView& k,
                                  const StridedView& v, const StridedView& out, const StridedView& dout,
                                  const StridedView& tau, const StridedView& lse, const StridedView& dq,
                                  const StridedView& dk, const StridedView& dv) {
  check_geometry(g);
  if (q.dtype == DType::f32) return backward_t<float>(g, q, k, v, out, dout, tau, lse, dq, dk, dv);
  if (q.dtype == DType::f64) return backward_t<double>(g, q, k, v, out, dout, tau, lse, dq, dk, dv);
  throw DTypeError(err_msg("selective_attention: unsupported dtype ", dtype_name(q.dtype)));
}

void rows_kth_largest(const StridedView& out, const StridedView& in, int64_t outer, int64_t n, int64_t k) {
  GS_CHECK(k >= 1 && k <= n, ValueError, "rows_kth_largest: k ", k, " outside [1, ", n, "]");
  if (in.dtype == DType::f32)
    return kth_rows_t(static_cast<float*>(out.data), static_cast<const float*>(in.data), outer, n, k);
  if (in.dtype == DType::f64)
    return kth_rows_t(static_cast<double*>(out.data), static_cast<const double*>(in.data), outer, n, k);
  throw DTypeError(err_msg("rows_kth_largest: unsupported dtype ", dtype_name(in.dtype)));
}

}  // namespace gradstyle::cpu
