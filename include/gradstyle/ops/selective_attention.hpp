#pragma once
// Selective (top-k) multi-head attention: the Aligner's S-Att (SPEC A.5 Eq. 9, B.5).
//
//   Tensor o = selective_attention(q, k, v, /*mu=*/0.25, /*heads=*/8);   // q,k,v: [B, L, 512]
//
// For every (batch b, head h, query row i), with d = C / heads and scale = 1/sqrt(d):
//   s_j  = scale * <q[b,i,h*d:(h+1)*d], k[b,j,h*d:(h+1)*d]>          j = 0..Lk-1
//   kk   = selective_topk(mu, Lk) = clamp(ceil(mu * Lk), 1, Lk)
//   tau  = the kk-th largest s_j of the row (counted with multiplicity)
//   keep = { j : s_j >= tau }                                           (tie rule: threshold)
//   out[b,i,h*d:(h+1)*d] = sum_{j in keep} softmax_{keep}(s)_j * v[b,j,h*d:(h+1)*d]
// Excluded keys get exactly zero weight (a -inf score, not a multiplication of the score by 0).
//
// Ties: every score equal to tau is kept, so a row keeps at least kk and possibly more keys
// (SPEC `topk_ties = threshold`, lancopku/Explicit-Sparse-Transformer). torch.topk + scatter
// would instead keep exactly kk, breaking ties by index. The rule is deterministic and identical
// on the CPU and on CUDA because every kernel computes each score with the same fma chain
// (equal keys give bit-equal scores); see docs/kernels.md.
// NaN: a query row with a NaN score gives a NaN output row (and NaN gradients).
//
// Layout: q [B, Lq, C], k and v [B, Lk, C] (Lq may differ from Lk), C = heads * d; head h owns
// channels [h*d, (h+1)*d) -- the layout a linear projection produces, so no head permute is
// needed. Inputs may be strided in batch and row (slices of a fused QKV projection are used as
// they are) but are copied if their channel stride is not 1. Output: dense [B, Lq, C].
// dtypes: float32 or float64 on the CPU; float32 on CUDA (d in {32, 64}, Lk <= 1024).
// Autograd: gradients with respect to q, k and v through the softmax over kept entries only
// (the mask is piecewise constant, hence treated as a constant). First-order backward runs the
// fused backward kernels; with create_graph=true the backward is built from differentiable ops
// (selective_attention_unfused's graph), so second derivatives are exact too.
// Throws: ShapeError (ranks, batch / channel / key-length mismatches, C % heads != 0),
// ValueError (mu outside (0, 1], heads < 1, Lk == 0; on CUDA d not in {32, 64} or Lk > 1024),
// DTypeError (non-float or mixed dtypes; float64 on CUDA), DeviceError (mixed devices).
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

// Number of keys a row keeps before ties: clamp(ceil(mu * length), 1, length), computed in
// double exactly as Python's math.ceil(mu * length). Throws ValueError unless 0 < mu <= 1 and
// length >= 1.
int64_t selective_topk(double mu, int64_t length);

struct SelectiveAttentionResult {
  Tensor out;  // [B, Lq, C], differentiable
  Tensor tau;  // [B, heads, Lq], the per-row threshold (no gradient)
  Tensor lse;  // [B, heads, Lq], log-sum-exp of the kept scaled scores (no gradient)
};

Tensor selective_attention(const Tensor& q, const Tensor& k, const Tensor& v, double mu, int64_t heads);

// The same, also returning the per-row statistics the backward uses.
SelectiveAttentionResult selective_attention_with_stats(const Tensor& q, const Tensor& k, const Tensor& v,
                                                        double mu, int64_t heads);

// The same function built from basic ops (head permute, matmul for scores, per-row k-th largest
// threshold, where(-inf), softmax, matmul): it writes the [B, heads, Lq, Lk] score matrix, like
// PyTorch's dense+mask formulation. Differentiable to any order. Its scores come from a GEMM, so
// near-ties (scores within rounding of tau) may resolve differently from the fused kernels;
// exact ties (equal keys) resolve identically. Used for double backward and as the lab baseline.
Tensor selective_attention_unfused(const Tensor& q, const Tensor& k, const Tensor& v, double mu, int64_t heads);

// The attention weights themselves, [B, heads, Lq, Lk]: row i of head h holds the softmax over the
// keys kept for query i (the top-k scores, ties kept) and 0 for the others, as the unfused form
// computes them (no gradient). For looking inside a model (`gradstyle explain`), not for training:
// it writes the whole score matrix.
Tensor selective_attention_weights(const Tensor& q, const Tensor& k, double mu, int64_t heads);

// Per-row k-th largest value along the last dim of x ([..., n] -> [..., 1]); NaN for a row with
// a NaN. Not differentiable (returns a constant). float32/float64, CPU or CUDA (n <= 1024 on CUDA).
Tensor rows_kth_largest(const Tensor& x, int64_t k);

}  // namespace gradstyle
