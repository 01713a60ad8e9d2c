#pragma once
// Internal: kernel entry points of selective (top-k) attention. Declared twice with identical
// signatures, gradstyle::cpu (src/cpu/selective_attention.cpp) and gradstyle::cuda
// (cuda/ops/selective_attention.cu, selective_attention_bwd.cu); op code picks one with GS_DISPATCH.
//
// Layout: q [B, Lq, C], k and v [B, Lk, C], C = heads * d; head h owns channels [h*d, (h+1)*d).
// Each of q, k, v, out, dout has unit channel stride and its own batch / row strides (elements),
// so slices of a fused QKV projection need no copy. tau and lse are dense [B, heads, Lq].
//
// Score arithmetic (identical in every kernel, on every device, forward and backward):
//   acc = 0; for c in 0..d-1: acc = fma(q[c], k[c], acc);  s = acc * scale
// Because each score is the same fma chain, equal keys give bit-equal scores everywhere, so the
// tie rule below resolves identically on the CPU and on CUDA, and the backward recomputes
// exactly the forward's mask.
//
// Tie rule (SPEC B.5, topk_ties = threshold): tau = the k_top-th largest score of the row (with
// multiplicity); every score s >= tau is kept, so ties at tau may keep more than k_top keys.
// A row containing a NaN score yields NaN output, tau, lse and NaN gradients.
#include "backend/kernels.hpp"  // GS_DISPATCH
#include "backend/view.hpp"

namespace gradstyle::backend {

struct AttnGeometry {
  int64_t batch = 0, lq = 0, lk = 0, heads = 0, dk = 0;
  int64_t k_top = 1;    // 1 <= k_top <= lk
  double scale = 1.0;   // 1/sqrt(dk)
  // batch and row strides in elements (channel stride is 1)
  int64_t q_sb = 0, q_sl = 0, k_sb = 0, k_sl = 0, v_sb = 0, v_sl = 0;
  int64_t o_sb = 0, o_sl = 0, g_sb = 0, g_sl = 0;
};

}  // namespace gradstyle::backend

#define GS_SELECTIVE_ATTENTION_DECLS                                                               \
  /* out: [B, Lq, C] (strides o_sb, o_sl); tau, lse: dense [B, heads, Lq] */                       \
  void selective_attention_forward(const backend::AttnGeometry& g, const backend::StridedView& q,  \
                                   const backend::StridedView& k, const backend::StridedView& v,   \
                                   const backend::StridedView& out, const backend::StridedView& tau, \
                                   const backend::StridedView& lse);                               \
  /* dout (strides g_sb, g_sl), out as in the forward; dq dense [B, Lq, C], dk and dv dense      \
     [B, Lk, C]. A gradient whose view has data == nullptr is skipped. */                          \
  void selective_attention_backward(const backend::AttnGeometry& g, const backend::StridedView& q, \
                                    const backend::StridedView& k, const backend::StridedView& v,  \
                                    const backend::StridedView& out, const backend::StridedView& dout, \
                                    const backend::StridedView& tau, const backend::StridedView& lse, \
                                    const backend::StridedView& dq, const backend::StridedView& dk, \
                                    const backend::StridedView& dv);                               \
  /* out[r] = the k-th largest value of dense row r of in [outer, n] (NaN if the row has a NaN) */ \
  void rows_kth_largest(const backend::StridedView& out, const backend::StridedView& in, int64_t outer, \
                        int64_t n, int64_t k);

namespace gradstyle::cpu {
GS_SELECTIVE_ATTENTION_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_SELECTIVE_ATTENTION_DECLS
}  // namespace gradstyle::cuda
#endif
