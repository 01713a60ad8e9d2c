#include "gradstyle/ops/linalg.hpp"


#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::record;
using backend::make_view;
using namespace ops_detail;
using V = std::vector<Tensor>;

namespace {
// A matrix operand for GEMM: the last two dims must be row-major (stride 1 in the last dim) or
// transposed (stride 1 in the second to last); otherwise it is copied.
struct Operand {
  Tensor t;
  bool trans = false;
  int64_t ld = 0;
};
Operand as_operand(const Tensor& x) {
  int64_t r = x.size(-2), c = x.size(-1);
  int64_t sr = x.strides()[size_t(x.dim() - 2)], sc = x.strides()[size_t(x.dim() - 1)];
  // batch dims (if any) must be dense over the matrix for a constant batch stride
  bool batch_ok = true;
  if (x.dim() > 2) {
    int64_t expect = r * c;
    for (int64_t i = x.dim() - 3; i >= 0; --i) {
      if (x.size(i) != 1 && x.strides()[size_t(i)] != expect) batch_ok = false;
      expect *= x.size(i);
    }
  }
  if (batch_ok && (sc == 1 || c == 1) && sr >= std::max<int64_t>(c, 1)) return {x, false, sr == 0 ? 1 : std::max(sr, c)};
  if (batch_ok && (sr == 1 || r == 1) && sc >= std::max<int64_t>(r, 1)) return {x, true, std::max(sc, r)};
  Tensor cx = x.contiguous();
  return {cx, false, std::max<int64_t>(c, 1)};
}

// [B, n, k] @ [B, k, m] -> [B, n, m] with B shared; b_batch=false means b is one matrix.
Tensor bmm_raw(const Tensor& a, const Tensor& b, int64_t batch) {
  int64_t n = a.size(-2), k = a.size(-1), m = b.size(-1);
  Operand oa = as_operand(a), ob = as_operand(b);
  Tensor out = Tensor::empty({batch, n, m}, {a.dtype(), a.device()});
  if (out.numel() == 0) return out;
  if (k == 0) return out.fill_(0.0);
  int64_t sa = a.dim() > 2 ? n * k : 0, sb = b.dim() > 2 ? k * m : 0;
  GS_DISPATCH(a.device(), gemm, oa.trans, ob.trans, n, m, k, 1.0, make_view(oa.t), oa.ld, sa, make_view(ob.t), ob.ld,
              sb, 0.0, make_view(out), m, n * m, batch);
  return out;
}
}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  check_float(a_in, "matmul");
  check_same(a_in, b_in, "matmul");
  GS_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, ShapeError, "matmul: 0-d operand (shapes ", shape_str(a_in.shape()),
           " and ", shape_str(b_in.shape()), ")");
  // NumPy rules for 1-D operands.
  if (a_in.dim() == 1 || b_in.dim() == 1) {
    Tensor a = a_in.dim() == 1 ? unsqueeze(a_in, 0) : a_in;
    Tensor b = b_in.dim() == 1 ? unsqueeze(b_in, -1) : b_in;
    Tensor r = matmul(a, b);
    if (b_in.dim() == 1) r = squeeze(r, -1);
    if (a_in.dim() == 1) r = squeeze(r, r.dim() == 1 ? 0 : -2);
    return r;
  }
  const Tensor& a = a_in;
  const Tensor& b = b_in;
  int64_t n = a.size(-2), k = a.size(-1), k2 = b.size(-2), m = b.size(-1);
  GS_CHECK(k == k2, ShapeError, "matmul: inner dimensions differ: ", shape_str(a.shape()), " @ ", shape_str(b.shape()),
           " (", k, " vs ", k2, ")");
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape bs = broadcast_shapes(ba, bb, "matmul");
  int64_t batch = shape_numel(bs);
  Tensor ad = a.detach(), bd = b.detach();
  Tensor out;
  if (ba == bs && bb.empty()) {
    // [..., n, k] @ [k, m]: fold the batch into the rows when the rows are dense.
    Tensor a2 = reshape(ad, {batch * n, k});
    out = reshape(bmm_raw(a2, bd, 1), [&] { Shape s = bs; s.push_back(n); s.push_back(m); return s; }());
  } else {
    Shape ea = bs, eb = bs;
    ea.push_back(n); ea.push_back(k);
    eb.push_back(k); eb.push_back(m);
    Tensor a3 = ba == bs ? reshape(ad, {batch, n, k}) : reshape(expand(ad, ea).contiguous(), {batch, n, k});
    Tensor b3 = bb.empty() ? bd : (bb == bs ? reshape(bd, {batch, k, m}) : reshape(expand(bd, eb).contiguous(), {batch, k, m}));
    Shape os = bs;
    os.push_back(n);
    os.push_back(m);
    out = reshape(bmm_raw(a3, b3, batch), os);
  }
  if (any_requires_grad({&a, &b})) {
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record("matmul", out, {a, b}, [a, b, ga, gb](const Tensor& g) {
      Tensor da = ga ? sum_to(matmul(g, transpose(b, -1, -2)), a.shape()) : Tensor();
      Tensor db = gb ? sum_to(matmul(transpose(a, -1, -2), g), b.shape()) : Tensor();
      return V{da, db};
    });
  }
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  GS_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0), ShapeError, "bmm: expected [B,n,k] and [B,k,m], got ",
           shape_str(a.shape()), " and ", shape_str(b.shape()));
  return matmul(a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_float(x, "linear");
  check_same(x, weight, "linear");
  GS_CHECK(weight.dim() == 2, ShapeError, "linear: weight must be [out, in], got ", shape_str(weight.shape()));
  GS_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), ShapeError, "linear: input has ", x.dim() ? x.size(-1) : 0,
           " features but weight ", shape_str(weight.shape()), " expects ", weight.size(1), " (input ",
           shape_str(x.shape()), ")");
  Tensor y = matmul(x, transpose(weight, 0, 1));
  if (bias.defined()) {
    check_same(x, bias, "linear");
    GS_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), ShapeError, "linear: bias ", shape_str(bias.shape()),
             " does not match weight ", shape_str(weight.shape()));
    y = add(y, bias);
  }
  return y;
}

}  // namespace gradstyle
