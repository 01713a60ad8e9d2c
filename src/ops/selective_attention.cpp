// Selective (top-k) attention op: argument checks, dispatch to the fused kernels, autograd.
#include "gradstyle/ops/selective_attention.hpp"

#include <cmath>
#include <limits>

#include "backend/selective_attention_kernels.hpp"
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/linalg.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/ops/softmax.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::is_grad_enabled;
using autograd::record;
using backend::make_view;
using namespace ops_detail;
using V = std::vector<Tensor>;

int64_t selective_topk(double mu, int64_t length) {
  GS_CHECK(mu > 0.0 && mu <= 1.0, ValueError, "selective_attention: mu must be in (0, 1], got ", mu);
  GS_CHECK(length >= 1, ValueError, "selective_attention: need at least one key, got length ", length);
  double kk = std::ceil(mu * double(length));
  return std::min<int64_t>(length, std::max<int64_t>(1, int64_t(kk)));
}

namespace {

struct Dims {
  int64_t B, Lq, Lk, C, H, D, ktop;
};

Dims check_args(const Tensor& q, const Tensor& k, const Tensor& v, double mu, int64_t heads, const char* op) {
  check_defined(q, op, "q");
  check_defined(k, op, "k");
  check_defined(v, op, "v");
  check_float(q, op);
  check_same(q, k, op);
  check_same(q, v, op);
  GS_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3, ShapeError, op, ": q, k, v must be [B, L, C], got q ",
           shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ", shape_str(v.shape()));
  GS_CHECK(q.size(0) == k.size(0) && q.size(0) == v.size(0) && q.size(2) == k.size(2) && q.size(2) == v.size(2) &&
               k.size(1) == v.size(1),
           ShapeError, op, ": q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ",
           shape_str(v.shape()), " must agree in batch and channels, and k, v in length");
  GS_CHECK(heads >= 1, ValueError, op, ": heads must be >= 1, got ", heads);
  GS_CHECK(q.size(2) % heads == 0 && q.size(2) > 0, ShapeError, op, ": ", q.size(2),
           " channels are not divisible into ", heads, " heads (q ", shape_str(q.shape()), ")");
  Dims d{q.size(0), q.size(1), k.size(1), q.size(2), heads, q.size(2) / heads, 0};
  d.ktop = selective_topk(mu, d.Lk);
  return d;
}

// Unit channel stride (the kernels' requirement); otherwise a dense copy.
Tensor unit_channel(const Tensor& x) { return (x.strides()[2] == 1 || x.size(2) == 1) ? x : x.contiguous(); }

backend::AttnGeometry geometry(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v) {
  backend::AttnGeometry g;
  g.batch = d.B;
  g.lq = d.Lq;
  g.lk = d.Lk;
  g.heads = d.H;
  g.dk = d.D;
  g.k_top = d.ktop;
  g.scale = 1.0 / std::sqrt(double(d.D));
  g.q_sb = q.strides()[0], g.q_sl = q.strides()[1];
  g.k_sb = k.strides()[0], g.k_sl = k.strides()[1];
  g.v_sb = v.strides()[0], g.v_sl = v.strides()[1];
  return g;
}

// [B, L, H*D] -> [B, H, L, D] (a view)
Tensor split_heads(const Tensor& x, int64_t H) {
  return permute(reshape(x, {x.size(0), x.size(1), H, x.size(2) / H}), {0, 2, 1, 3});
}
// [B, H, L, D] -> [B, L, H*D]
Tensor merge_heads(const Tensor& x) {
  return reshape(permute(x, {0, 2, 1, 3}), {x.size(0), x.size(2), x.size(1) * x.size(3)});
}

// Masked softmax probabilities [B, H, Lq, Lk] from differentiable ops.
Tensor unfused_probs(const Tensor& qh, const Tensor& kh, int64_t ktop, double scale) {
  Tensor s = mul_scalar(matmul(qh, transpose(kh, -1, -2)), scale);
  Tensor th = rows_kth_largest(s.detach(), ktop);
  Tensor neg_inf = scalar_like(-std::numeric_limits<double>::infinity(), s);
  return softmax(where(ge(s.detach(), th), s, neg_inf), -1);
}

// Gradients of <selective_attention(q,k,v), g> from differentiable ops (double backward).
V composite_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, int64_t H, int64_t ktop) {
  const double scale = 1.0 / std::sqrt(double(q.size(2) / H));
  Tensor qh = split_heads(q, H), kh = split_heads(k, H), vh = split_heads(v, H), gh = split_heads(g, H);
  Tensor p = unfused_probs(qh, kh, ktop, scale);                  // [B, H, Lq, Lk]
  Tensor dv = matmul(transpose(p, -1, -2), gh);                    // [B, H, Lk, D]
  Tensor dp = matmul(gh, transpose(vh, -1, -2));                   // [B, H, Lq, Lk]
  Tensor ds = mul(p, sub(dp, sum(mul(dp, p), {-1}, true)));        // zero off the mask
  Tensor dq = mul_scalar(matmul(ds, kh), scale);
  Tensor dk = mul_scalar(matmul(transpose(ds, -1, -2), qh), scale);
  return V{q.requires_grad() ? merge_heads(dq) : Tensor(), k.requires_grad() ? merge_heads(dk) : Tensor(),
           v.requires_grad() ? merge_heads(dv) : Tensor()};
}

}  // namespace

SelectiveAttentionResult selective_attention_with_stats(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                                        double mu, int64_t heads) {
  const char* op = "selective_attention";
  Dims d = check_args(q_in, k_in, v_in, mu, heads, op);
  Tensor q = unit_channel(q_in.detach()), k = unit_channel(k_in.detach()), v = unit_channel(v_in.detach());
  const Options opt{q.dtype(), q.device()};
  Tensor out = Tensor::empty({d.B, d.Lq, d.C}, opt);
  Tensor tau = Tensor::empty({d.B, d.H, d.Lq}, opt);
  Tensor lse = Tensor::empty({d.B, d.H, d.Lq}, opt);
  backend::AttnGeometry g = geometry(d, q, k, v);
  g.o_sb = d.Lq * d.C, g.o_sl = d.C;
  if (out.numel() > 0)
    GS_DISPATCH(q.device(), selective_attention_forward, g, make_view(q), make_view(k), make_view(v), make_view(out),
                make_view(tau), make_view(lse));
  if (any_requires_grad({&q_in, &k_in, &v_in})) {
    Tensor o = out.detach();
    const int64_t H = d.H, ktop = d.ktop;
    record(op, out, {q_in, k_in, v_in}, [q_in, k_in, v_in, o, tau, lse, g, H, ktop](const Tensor& grad) -> V {
      if (is_grad_enabled()) return composite_backward(q_in, k_in, v_in, grad, H, ktop);
      const bool gq = q_in.requires_grad(), gk = k_in.requires_grad(), gv = v_in.requires_grad();
      Tensor q = unit_channel(q_in.detach()), k = unit_channel(k_in.detach()), v = unit_channel(v_in.detach());
      Tensor go = unit_channel(grad.detach());
      backend::AttnGeometry gg = g;
      gg.q_sb = q.strides()[0], gg.q_sl = q.strides()[1];
      gg.k_sb = k.strides()[0], gg.k_sl = k.strides()[1];
      gg.v_sb = v.strides()[0], gg.v_sl = v.strides()[1];
      gg.g_sb = go.strides()[0], gg.g_sl = go.strides()[1];
      const Options opt{q.dtype(), q.device()};
      Tensor dq = gq ? Tensor::empty(q.shape(), opt) : Tensor();
      Tensor dk = gk ? Tensor::empty(k.shape(), opt) : Tensor();
      Tensor dv = gv ? Tensor::empty(v.shape(), opt) : Tensor();
      backend::StridedView none;
      if (q.numel() > 0 || k.numel() > 0)
        GS_DISPATCH(q.device(), selective_attention_backward, gg, make_view(q), make_view(k), make_view(v),
                    make_view(o), make_view(go), make_view(tau), make_view(lse), gq ? make_view(dq) : none,
                    dk.defined() ? make_view(dk) : none, dv.defined() ? make_view(dv) : none);
      return V{dq, dk, dv};
    });
  }
  return {out, tau, lse};
}

Tensor selective_attention(const Tensor& q, const Tensor& k, const Tensor& v, double mu, int64_t heads) {
  return selective_attention_with_stats(q, k, v, mu, heads).out;
}

Tensor selective_attention_unfused(const Tensor& q, const Tensor& k, const Tensor& v, double mu, int64_t heads) {
  Dims d = check_args(q, k, v, mu, heads, "selective_attention_unfused");
  Tensor qh = split_heads(q, d.H), kh = split_heads(k, d.H), vh = split_heads(v, d.H);
  Tensor p = unfused_probs(qh, kh, d.ktop, 1.0 / std::sqrt(double(d.D)));
  return merge_heads(matmul(p, vh));
}

Tensor selective_attention_weights(const Tensor& q, const Tensor& k, double mu, int64_t heads) {
  Dims d = check_args(q, k, k, mu, heads, "selective_attention_weights");
  autograd::NoGradGuard ng;
  return unfused_probs(split_heads(q.detach(), d.H), split_heads(k.detach(), d.H), d.ktop, 1.0 / std::sqrt(double(d.D)));
}

Tensor rows_kth_largest(const Tensor& x_in, int64_t k) {
  check_float(x_in, "rows_kth_largest");
  GS_CHECK(x_in.dim() >= 1, ShapeError, "rows_kth_largest: need at least 1 dim, got ", shape_str(x_in.shape()));
  const int64_t n = x_in.size(-1);
  GS_CHECK(k >= 1 && k <= n, ValueError, "rows_kth_largest: k = ", k, " outside [1, ", n, "] for ",
           shape_str(x_in.shape()));
  Tensor x = x_in.detach().contiguous();
  Shape os = x.shape();
  os.back() = 1;
  Tensor out = Tensor::empty(os, {x.dtype(), x.device()});
  if (out.numel() > 0)
    GS_DISPATCH(x.device(), rows_kth_largest, make_view(out), make_view(x), out.numel(), n, k);
  return out;
}

}  // namespace gradstyle
