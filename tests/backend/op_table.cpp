// The op-case table. One row = one public op in one situation: its inputs (seeded shapes, layouts,
// value domains), the call, what it declares (first / second order), tolerances. Shapes are small
// so that finite differences stay cheap; awkward cases (views, broadcasting, odd sizes, negative
// values, ties) are rows of their own. How to add a row: docs/testing.md.
#include <cmath>
#include <limits>

#include "gradstyle/ops/bias_act.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/dropout.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/grid_sample.hpp"
#include "gradstyle/ops/interpolate.hpp"
#include "gradstyle/ops/linalg.hpp"
#include "gradstyle/ops/loss.hpp"
#include "gradstyle/ops/minibatch_std.hpp"
#include "gradstyle/ops/modulated_conv.hpp"
#include "gradstyle/ops/norm.hpp"
#include "gradstyle/ops/pad.hpp"
#include "gradstyle/ops/perspective_warp.hpp"
#include "gradstyle/ops/pool.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/selective_attention.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/ops/softmax.hpp"
#include "gradstyle/ops/upfirdn2d.hpp"
#include "op_table.hpp"

namespace gsbackend {
namespace {

using V = std::vector<Tensor>;
constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor f64_randn(const Shape& s, uint64_t seed) { return Tensor::randn(s, seed, {DType::f64}); }

// The values of seed b, except that every `every`-th element equals that element of seed a: a
// differentiable input with exact ties against X(s, a).
In tied_with(const Shape& s, uint64_t a, uint64_t b, int every) {
  return Made(s, [s, a, b, every] {
    auto va = f64_randn(s, a).to_vector<double>(), vb = f64_randn(s, b).to_vector<double>();
    for (size_t i = 0; i < vb.size(); i += size_t(every)) vb[i] = va[i];
    return Tensor::from_vector(vb, s);
  }, true);
}

// Rows of the last dim with exactly two equal maxima and two equal minima (a 2-way tie: central
// differences then give 1/2, which is the even split the reductions promise).
In two_way_ties(const Shape& s, uint64_t seed) {
  return Made(s, [s, seed] {
    auto v = f64_randn(s, seed).to_vector<double>();
    size_t n = size_t(s.back());
    for (size_t r = 0; r + n <= v.size(); r += n) {
      size_t imax = r, imin = r;
      for (size_t j = r; j < r + n; ++j) {
        if (v[j] > v[imax]) imax = j;
        if (v[j] < v[imin]) imin = j;
      }
      size_t other = r + (imax - r + n / 2) % n;
      if (other == imin) other = r + (other - r + 1) % n;
      v[other] = v[imax];
      size_t other_min = r + (imin - r + 1) % n;
      if (other_min == imax || other_min == other) other_min = r + (imin - r + n - 1) % n;
      v[other_min] = v[imin];
    }
    return Tensor::from_vector(v, s);
  }, true);
}

// Small integers (many ties), for max pooling and top-k.
In small_ints(const Shape& s, uint64_t seed) {
  return Made(s, [s, seed] {
    auto v = f64_randn(s, seed).to_vector<double>();
    for (double& e : v) e = std::round(2 * e);
    return Tensor::from_vector(v, s);
  }, true);
}

In bool_mask(const Shape& s, uint64_t seed) {
  return Made(s, [s, seed] { return gt(f64_randn(s, seed), Tensor::scalar(0.0, {DType::f64})); }, false, false);
}

In uniform(const Shape& s, uint64_t seed, double lo, double hi, bool grad = true) {
  return Made(s, [s, seed, lo, hi] { return add_scalar(mul_scalar(Tensor::rand(s, seed, {DType::f64}), hi - lo), lo); },
              grad);
}

In values(const Shape& s, std::vector<double> v) {
  return Made(s, [s, v] { return Tensor::from_vector(v, s); }, false);
}

// Row checks ------------------------------------------------------------------------------------

// A probability-p dropout keeps x / (1 - p) or writes 0, and keeps about 1 - p of the elements.
void dropout_values(const Ctx& c, double p) {
  auto x = c.xs[0].to_vector<double>(), y = c.y.to_vector<double>();
  int kept = 0;
  double tol = c.dtype == DType::f32 ? 1e-6 : 1e-12;
  for (size_t i = 0; i < x.size(); ++i) {
    if (y[i] == 0.0) continue;
    ++kept;
    INFO("element " << i << ": " << y[i] << " should be 0 or " << x[i] / (1 - p));
    CHECK(std::abs(y[i] - x[i] / (1 - p)) <= tol * (1 + std::abs(x[i])));
  }
  double frac = double(kept) / double(x.size());
  CHECK(frac > 1 - p - 0.15);
  CHECK(frac < 1 - p + 0.15);
}

// H maps destination corner k to source corner k: H (u, v, 1) ~ (sx, sy, 1).
void homography_maps_corners(const Tensor& corners, const Tensor& H) {
  auto c = corners.to_vector<double>(), h = H.to_vector<double>();
  const double src[4][2] = {{-1, -1}, {1, -1}, {1, 1}, {-1, 1}};
  for (size_t b = 0; b < h.size() / 9; ++b)
    for (int k = 0; k < 4; ++k) {
      double u = c[b * 8 + k * 2], v = c[b * 8 + k * 2 + 1];
      const double* m = &h[b * 9];
      double w = m[6] * u + m[7] * v + m[8];
      CHECK(std::abs((m[0] * u + m[1] * v + m[2]) / w - src[k][0]) < 1e-5);
      CHECK(std::abs((m[3] * u + m[4] * v + m[5]) / w - src[k][1]) < 1e-5);
    }
}

Tensor identity_h(int64_t b) {
  std::vector<double> v;
  for (int64_t i = 0; i < b; ++i) v.insert(v.end(), {1, 0, 0, 0, 1, 0, 0, 0, 1});
  return Tensor::from_vector(v, {b, 3, 3});
}

}  // namespace

const std::vector<Exclusion>& table_exclusions() {
  static const std::vector<Exclusion> e = {
      // Integer arithmetic on the host, no tensor: covered by tests/ops/test_selective_attention.cpp
      // and used by every selective_attention row through the kept-key count.
      {"selective_topk", "integer host arithmetic (no tensor, no backend)"},
  };
  return e;
}

std::vector<OpCase> op_table() {
  std::vector<OpCase> t;
  auto row = [&t](OpCase c) { t.push_back(std::move(c)); };
  const unsigned G = kGrad, GG = kGradGrad, F = kForward;

  // ---- elementwise ------------------------------------------------------------------------
  row({"add", "broadcast [2,3,4] + [3,1]", {X({2, 3, 4}, 1), X({3, 1}, 2)}, [](const V& x) { return add(x[0], x[1]); }, GG});
  row({"add", "transposed + strided views", {X({3, 4}, 3).T(), X({4}, 4).S()}, [](const V& x) { return add(x[0], x[1]); }, GG});
  row({"sub", "broadcast [2,1,4] - [3,1], strided", {X({2, 1, 4}, 5).S(), X({3, 1}, 6)}, [](const V& x) { return sub(x[0], x[1]); }, GG});
  row({"mul", "with a 0-d tensor", {X({3, 5}, 7), X({}, 8)}, [](const V& x) { return mul(x[0], x[1]); }, GG});
  row({"mul", "broadcast both ways, transposed", {X({2, 4, 1}, 9), X({4, 5}, 10).T()}, [](const V& x) { return mul(x[0], x[1]); }, GG});
  row({"div", "broadcast, denominator away from 0", {X({2, 3, 4}, 11), Nz({2, 1, 4}, 12)}, [](const V& x) { return div(x[0], x[1]); }, GG});
  row({"maximum", "exact ties (gradient split evenly)", {X({3, 6}, 13), tied_with({3, 6}, 13, 14, 3)}, [](const V& x) { return maximum(x[0], x[1]); }, G});
  row({"minimum", "exact ties", {X({3, 6}, 15), tied_with({3, 6}, 15, 16, 2)}, [](const V& x) { return minimum(x[0], x[1]); }, G});
  row({"pow", "tensor exponent, positive base", {Pos({3, 4}, 17), X({3, 4}, 18)}, [](const V& x) { return pow(x[0], x[1]); }, GG});
  row({"pow", "integer exponent 3 of negative values", {X({2, 5}, 19)}, [](const V& x) { return pow(x[0], 3.0); }, GG});
  row({"pow", "exponents 0.5 and -2", {Pos({7}, 20), Nz({7}, 21)}, [](const V& x) { return add(pow(x[0], 0.5), pow(x[1], -2.0)); }, GG});
  row({"add_scalar", "odd size", {X({7, 3}, 22)}, [](const V& x) { return add_scalar(x[0], -1.25); }, GG});
  row({"mul_scalar", "strided", {X({3, 5}, 23).S()}, [](const V& x) { return mul_scalar(x[0], 3.5); }, GG});
  row({"neg", "transposed", {X({3, 4}, 24).T()}, [](const V& x) { return neg(x[0]); }, GG});
  row({"exp", "", {X({3, 5}, 25)}, [](const V& x) { return exp(x[0]); }, GG});
  row({"log", "positive", {Pos({3, 5}, 26)}, [](const V& x) { return log(x[0]); }, GG});
  row({"sqrt", "positive, strided", {Pos({3, 5}, 27).S()}, [](const V& x) { return sqrt(x[0]); }, GG});
  row({"rsqrt", "positive", {Pos({11}, 28)}, [](const V& x) { return rsqrt(x[0]); }, GG});
  row({"abs", "negative values", {X({3, 5}, 29)}, [](const V& x) { return abs(x[0]); }, GG});
  row({"square", "", {X({2, 3, 4}, 30).T()}, [](const V& x) { return square(x[0]); }, GG});
  row({"reciprocal", "away from 0", {Nz({3, 5}, 31)}, [](const V& x) { return reciprocal(x[0]); }, GG});
  row({"sin", "", {X({3, 5}, 32)}, [](const V& x) { return sin(mul_scalar(x[0], 2.0)); }, GG});
  row({"cos", "", {X({3, 5}, 33)}, [](const V& x) { return cos(mul_scalar(x[0], 2.0)); }, GG});
  row({"sign", "negative values (not differentiable)", {X({3, 5}, 34).T()}, [](const V& x) { return sign(x[0]); }, F});
  row({"clamp", "two-sided", {X({4, 5}, 35)}, [](const V& x) { return clamp(x[0], -0.5, 0.7); }, GG});
  row({"clamp", "one-sided (-inf)", {X({4, 5}, 36).T()}, [](const V& x) { return clamp(x[0], -kInf, 0.3); }, GG});
  row({"where", "bool condition, three-way broadcast", {bool_mask({3, 1}, 37), X({3, 4}, 38), X({4}, 39)},
       [](const V& x) { return where(x[0], x[1], x[2]); }, GG});
  row({"relu", "", {X({3, 7}, 40)}, [](const V& x) { return relu(x[0]); }, GG});
  row({"leaky_relu", "slope 0.2, transposed", {X({4, 5}, 41).T()}, [](const V& x) { return leaky_relu(x[0], 0.2); }, GG});
  row({"sigmoid", "", {X({3, 5}, 42)}, [](const V& x) { return sigmoid(mul_scalar(x[0], 3.0)); }, GG});
  row({"tanh", "", {X({3, 5}, 43).S()}, [](const V& x) { return tanh(x[0]); }, GG});
  row({"softplus", "beta 2, threshold 1 (both branches)", {X({4, 5}, 44)}, [](const V& x) { return softplus(x[0], 2.0, 1.0); }, GG});
  row({"softplus", "defaults, large values", {X({9}, 45)}, [](const V& x) { return softplus(mul_scalar(x[0], 15.0)); }, GG});
  row({"gt", "ties", {X({3, 6}, 46), tied_with({3, 6}, 46, 47, 2)}, [](const V& x) { return gt(x[0], x[1]); }, F});
  row({"lt", "broadcast", {X({3, 6}, 48), X({6}, 49)}, [](const V& x) { return lt(x[0], x[1]); }, F});
  row({"ge", "ties", {X({3, 6}, 50), tied_with({3, 6}, 50, 51, 2)}, [](const V& x) { return ge(x[0], x[1]); }, F});
  row({"le", "ties, transposed", {X({3, 6}, 52).T(), tied_with({3, 6}, 52, 53, 2)},
       [](const V& x) { return le(x[0], x[1]); }, F});
  row({"eq", "ties", {X({3, 6}, 54), tied_with({3, 6}, 54, 55, 2)}, [](const V& x) { return eq(x[0], x[1]); }, F});
  row({"ne", "ties", {X({3, 6}, 56), tied_with({3, 6}, 56, 57, 3)}, [](const V& x) { return ne(x[0], x[1]); }, F});
  row({"scalar_like", "dtype and device of the argument", {X({3, 4}, 58)}, [](const V& x) { return mul(x[0], scalar_like(-1.5, x[0])); }, GG});

  // ---- reductions -------------------------------------------------------------------------
  row({"sum", "all dims", {X({3, 4, 5}, 60)}, [](const V& x) { return sum(x[0]); }, GG});
  row({"sum", "dims {0,2}, keepdim, transposed", {X({3, 4, 5}, 61).T()}, [](const V& x) { return sum(x[0], {0, 2}, true); }, GG});
  row({"mean", "dim 1, strided", {X({3, 4, 5}, 62).S()}, [](const V& x) { return mean(x[0], {1}); }, GG});
  row({"amax", "last dim, 2-way ties", {two_way_ties({4, 5}, 63)}, [](const V& x) { return amax(x[0], {-1}); }, G});
  row({"amax", "all dims", {X({3, 7}, 64)}, [](const V& x) { return amax(x[0]); }, GG});
  row({"amin", "dim 1 keepdim, 2-way ties", {two_way_ties({4, 6}, 65)}, [](const V& x) { return amin(x[0], {1}, true); }, G});
  row({"var", "unbiased, dim 1", {X({3, 5}, 66)}, [](const V& x) { return var(x[0], {1}); }, GG});
  row({"var", "biased, all dims, keepdim, transposed", {X({4, 3}, 67).T()}, [](const V& x) { return var(x[0], {}, false, true); }, GG});
  row({"sum_to", "[2,3,4] -> [3,1]", {X({2, 3, 4}, 68)}, [](const V& x) { return sum_to(x[0], {3, 1}); }, GG});

  // ---- shape ------------------------------------------------------------------------------
  row({"reshape", "non-contiguous (copies), -1", {X({3, 4}, 70).T()}, [](const V& x) { return reshape(x[0], {2, -1}); }, GG});
  row({"view", "contiguous", {X({2, 3, 4}, 71)}, [](const V& x) { return view(x[0], {6, 4}); }, GG});
  row({"permute", "3-D", {X({2, 3, 4}, 72)}, [](const V& x) { return mul_scalar(permute(x[0], {2, 0, 1}), 2.0); }, GG});
  row({"transpose", "then an elementwise op", {X({2, 3, 4}, 73)}, [](const V& x) { return exp(transpose(x[0], 0, 2)); }, GG});
  row({"narrow", "middle", {X({3, 5}, 74)}, [](const V& x) { return square(narrow(x[0], 1, 1, 3)); }, GG});
  row({"slice", "negative start, step 2, end clamped", {X({2, 7}, 75)}, [](const V& x) { return square(slice(x[0], -1, -6, 100, 2)); }, GG});
  row({"select", "middle dim", {X({2, 3, 4}, 76)}, [](const V& x) { return square(select(x[0], 1, 2)); }, GG});
  row({"expand", "new leading dim", {X({3, 1}, 77)}, [](const V& x) { return mul(expand(x[0], {2, 3, 4}), Tensor::arange(4).to(x[0].dtype()).to(x[0].device())); }, GG});
  row({"broadcast_to", "", {X({1, 4}, 78)}, [](const V& x) { return square(broadcast_to(x[0], {3, 4})); }, GG});
  row({"unsqueeze", "", {X({3, 4}, 79)}, [](const V& x) { return square(unsqueeze(x[0], 1)); }, GG});
  row({"squeeze", "size-1 dim and no-op", {X({2, 1, 3}, 80)}, [](const V& x) { return square(squeeze(squeeze(x[0], 1), 0)); }, GG});
  row({"flatten", "middle dims, transposed", {X({2, 3, 4, 5}, 81).T()}, [](const V& x) { return square(flatten(x[0], 1, 2)); }, GG});
  row({"cat", "dim 1, a transposed part", {X({2, 1, 3}, 82), X({2, 2, 3}, 83).T(), X({2, 3, 3}, 84)},
       [](const V& x) { return cat({x[0], x[1], x[2]}, 1); }, GG});
  row({"stack", "dim 1", {X({2, 3}, 85), X({2, 3}, 86).S()}, [](const V& x) { return stack({x[0], x[1]}, 1); }, GG});
  row({"split", "uneven last piece", {X({7, 3}, 87)}, [](const V& x) {
         auto p = split(x[0], 3, 0);
         return pack({p[0], mul_scalar(p[1], 2.0), mul_scalar(p[2], -3.0)});
       }, GG});
  row({"chunk", "uneven, dim 1", {X({2, 7}, 88)}, [](const V& x) {
         auto p = chunk(x[0], 3, 1);
         return pack({square(p[0]), p[1], mul_scalar(p.back(), 0.5)});
       }, GG});
  row({"index_select", "repeated int64 indices", {X({5, 3}, 89), Index({4, 0, 4, 2})}, [](const V& x) { return index_select(x[0], 0, x[1]); }, GG});
  row({"index_select", "int32 indices, dim 1", {X({3, 5}, 90), Made({3}, [] { return Tensor::from_vector(std::vector<int32_t>{1, 1, 4}, {3}); }, false, false)},
       [](const V& x) { return index_select(x[0], 1, x[1]); }, GG});
  row({"index_add", "repeated indices accumulate", {X({5, 3}, 91), Index({1, 3, 1}), X({3, 3}, 92)},
       [](const V& x) { return index_add(x[0], 0, x[1], x[2]); }, GG});
  row({"flip", "dims {0,2}", {X({2, 3, 4}, 93)}, [](const V& x) { return square(flip(x[0], {0, 2})); }, GG});
  row({"repeat", "adds a leading dim", {X({2, 3}, 94)}, [](const V& x) { return square(repeat(x[0], {2, 1, 2})); }, GG});

  // ---- linalg -----------------------------------------------------------------------------
  row({"matmul", "2-D, transposed left operand", {X({3, 4}, 100).T(), X({4, 5}, 101)}, [](const V& x) { return matmul(x[0], x[1]); }, GG});
  row({"matmul", "broadcast batch dims", {X({2, 1, 3, 4}, 102), X({3, 4, 2}, 103)}, [](const V& x) { return matmul(x[0], x[1]); }, GG});
  row({"matmul", "vector-matrix, matrix-vector, dot", {X({4}, 104), X({4, 5}, 105), X({3, 4}, 106)}, [](const V& x) {
         return pack({matmul(x[0], x[1]), matmul(x[2], x[0]), matmul(x[0], x[0])});
       }, GG});
  row({"bmm", "strided right operand", {X({2, 3, 4}, 107), X({2, 4, 5}, 108).S()}, [](const V& x) { return bmm(x[0], x[1]); }, GG});
  row({"linear", "3-D input with bias", {X({2, 3, 4}, 109), X({5, 4}, 110), X({5}, 111)}, [](const V& x) { return linear(x[0], x[1], x[2]); }, GG});
  row({"linear", "no bias, transposed input", {X({3, 4}, 112).T(), X({2, 4}, 113)}, [](const V& x) { return linear(x[0], x[1]); }, GG});

  // ---- softmax, losses --------------------------------------------------------------------
  row({"softmax", "last dim", {X({3, 5}, 120)}, [](const V& x) { return softmax(x[0], -1); }, GG});
  row({"softmax", "dim 0 of a transposed view", {X({3, 4}, 121).T()}, [](const V& x) { return softmax(x[0], 0); }, GG});
  row({"softmax", "large logits (stability)", {X({2, 6}, 122)}, [](const V& x) { return softmax(mul_scalar(x[0], 40.0), 1); }, GG,
       {}, {1e-4, 1e-2}});
  row({"log_softmax", "middle dim", {X({2, 3, 4}, 123)}, [](const V& x) { return log_softmax(x[0], 1); }, GG});
  row({"mse_loss", "mean / sum / none", {X({3, 4}, 124), X({3, 4}, 125)}, [](const V& x) {
         return pack({mse_loss(x[0], x[1]), mse_loss(x[0], x[1], Reduction::Sum), mse_loss(x[0], x[1], Reduction::None)});
       }, GG});
  row({"l1_loss", "mean / sum / none, transposed", {X({3, 4}, 126).T(), X({3, 4}, 127)}, [](const V& x) {
         return pack({l1_loss(x[0], x[1]), l1_loss(x[0], x[1], Reduction::Sum), l1_loss(x[0], x[1], Reduction::None)});
       }, GG});

  // ---- normalisation ----------------------------------------------------------------------
  row({"batch_norm", "training, affine, running stats updated", {X({4, 3, 2, 2}, 130), X({3}, 131), X({3}, 132), C({3}, 133), C({3}, 134, Init::Positive)},
       [](const V& x) { return batch_norm(x[0], x[3], x[4], x[1], x[2], true); }, GG});
  row({"batch_norm", "evaluation with running stats, 3-D", {X({2, 3, 5}, 135), X({3}, 136), X({3}, 137), C({3}, 138), C({3}, 139, Init::Positive)},
       [](const V& x) { return batch_norm(x[0], x[3], x[4], x[1], x[2], false); }, GG});
  row({"batch_norm", "training, no affine, strided", {X({3, 2, 5}, 140).S()},
       [](const V& x) { return batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true); }, GG});
  row({"prelu", "per-channel slope", {X({2, 3, 4}, 141), X({3}, 142)}, [](const V& x) { return prelu(x[0], x[1]); }, GG});
  row({"prelu", "one shared slope, 1-D input", {X({5}, 143), X({1}, 144)}, [](const V& x) { return prelu(x[0], x[1]); }, GG});
  row({"layer_norm", "last two dims, affine", {X({2, 3, 4}, 145), X({3, 4}, 146), X({3, 4}, 147)},
       [](const V& x) { return layer_norm(x[0], {3, 4}, x[1], x[2]); }, GG});
  row({"layer_norm", "last dim, no affine, transposed", {X({2, 5, 3}, 148).T()}, [](const V& x) { return layer_norm(x[0], {3}); }, GG});
  row({"pixel_norm", "dim 1", {X({2, 4, 3}, 149)}, [](const V& x) { return pixel_norm(x[0]); }, GG});
  row({"pixel_norm", "last dim, strided", {X({3, 5}, 150).S()}, [](const V& x) { return pixel_norm(x[0], -1); }, GG});

  // ---- pooling, resampling, padding, sampling ---------------------------------------------
  row({"avg_pool2d", "k3 s2 p1, odd sizes", {X({1, 2, 7, 5}, 160)}, [](const V& x) { return avg_pool2d(x[0], {3}, {2}, {1}); }, GG});
  row({"avg_pool2d", "k{2,3} s{1,2}, transposed", {X({2, 1, 5, 6}, 161).T()}, [](const V& x) { return avg_pool2d(x[0], {2, 3}, {1, 2}); }, GG});
  row({"max_pool2d", "k{3,2} s{2,1} p{1,0}", {X({1, 2, 6, 5}, 162)}, [](const V& x) { return max_pool2d(x[0], {3, 2}, {2, 1}, {1, 0}); }, GG});
  // Ties route the whole gradient to the first maximum, which finite differences cannot see.
  row({"max_pool2d", "ties (first maximum wins)", {small_ints({1, 2, 5, 5}, 163)}, [](const V& x) { return max_pool2d(x[0], {2}); },
       G | kNoGradcheck});
  row({"adaptive_avg_pool2d", "5x7 -> 3x2", {X({1, 2, 5, 7}, 164)}, [](const V& x) { return adaptive_avg_pool2d(x[0], {3, 2}); }, GG});
  row({"adaptive_avg_pool2d", "2x2 -> 3x3 (overlapping bins)", {X({2, 1, 2, 2}, 165)}, [](const V& x) { return adaptive_avg_pool2d(x[0], {3}); }, GG});
  row({"interpolate", "bilinear up, align_corners false", {X({1, 2, 3, 4}, 170)}, [](const V& x) { return interpolate(x[0], {5, 7}, InterpolateMode::Bilinear); }, GG});
  row({"interpolate", "bilinear down, align_corners true", {X({1, 2, 5, 7}, 171)},
       [](const V& x) { return interpolate(x[0], {2, 3}, InterpolateMode::Bilinear, true); }, GG});
  row({"interpolate", "nearest, square size, transposed", {X({1, 1, 4, 3}, 172).T()}, [](const V& x) { return interpolate(x[0], {5}, InterpolateMode::Nearest); }, GG});
  row({"interpolate_scale", "bilinear x1.5", {X({1, 2, 4, 4}, 173)}, [](const V& x) { return interpolate_scale(x[0], 1.5, InterpolateMode::Bilinear); }, GG});
  row({"interpolate_scale", "nearest x2 / x0.5 per dim", {X({1, 2, 3, 6}, 174)},
       [](const V& x) { return interpolate_scale(x[0], 2.0, 0.5, InterpolateMode::Nearest); }, GG});
  row({"pad", "constant 0.5, last dim, 3-D", {X({2, 3, 4}, 180)}, [](const V& x) { return pad(x[0], {1, 2}, PadMode::Constant, 0.5); }, GG});
  row({"pad", "zeros with a negative (cropping) pad", {X({1, 2, 4, 5}, 181)}, [](const V& x) { return pad(x[0], {2, 1, -1, 3}); }, GG});
  row({"pad", "reflect, 4 pads, strided", {X({1, 1, 4, 5}, 182).S()}, [](const V& x) { return pad(x[0], {3, 1, 2, 2}, PadMode::Reflect); }, GG});
  row({"grid_sample", "align_corners false, taps outside", {X({1, 2, 4, 5}, 190), uniform({1, 3, 4, 2}, 191, -1.2, 1.2)},
       [](const V& x) { return grid_sample(x[0], x[1]); }, G | kGradGradThrows});
  row({"grid_sample", "align_corners true, batch 2", {X({2, 1, 3, 4}, 192), uniform({2, 2, 3, 2}, 193, -1.0, 1.0)},
       [](const V& x) { return grid_sample(x[0], x[1], true); }, G});

  // ---- dropout (fixed seed) ---------------------------------------------------------------
  row({"dropout", "p 0.3 training: 0 or x/(1-p), about 1-p kept", {X({4, 5, 6}, 200)},
       [](const V& x) { Generator g(7); return dropout(x[0], 0.3, true, g); }, GG, {},
       {1e-4, 1e-3}, [](const Ctx& c) {
         dropout_values(c, 0.3);
         Generator g1(7), g2(7);
         Tensor a = dropout(c.xs[0], 0.3, true, g1), b = dropout(c.xs[0], 0.3, true, g2);
         CHECK(gstest::compare(a, b, {0.0, 0.0}).ok);  // same seed and offset: same mask
         CHECK(g1.offset() == uint64_t(c.xs[0].numel()));
         Tensor next = dropout(c.xs[0], 0.3, true, g1);  // the advanced generator draws a new mask
         CHECK_FALSE(gstest::compare(next, a, {0.0, 0.0}).ok);
       }});
  row({"dropout", "evaluation and p 0 return x; p 1 zeroes", {X({3, 4}, 201).T()},
       [](const V& x) {
         Generator g(3);
         return pack({dropout(x[0], 0.5, false, g), dropout(x[0], 0.0, true, g), dropout(x[0], 1.0, true, g)});
       }, GG, {}, {1e-4, 1e-3}, [](const Ctx& c) {
         Generator g(3);
         CHECK(dropout(c.xs[0], 0.5, false, g).same(c.xs[0]));
         auto y = c.y.to_vector<double>();
         auto x = reshape(c.xs[0], {-1}).to_vector<double>();
         for (size_t i = 0; i < x.size(); ++i) {
           CHECK(y[i] == x[i]);
           CHECK(y[x.size() + i] == x[i]);
           CHECK(y[2 * x.size() + i] == 0.0);
         }
       }});

  // ---- convolution ------------------------------------------------------------------------
  row({"conv2d", "stride 2, pad 1, bias, odd sizes", {X({2, 3, 7, 6}, 210), X({4, 3, 3, 3}, 211), X({4}, 212)},
       [](const V& x) { return conv2d(x[0], x[1], x[2], {.stride = {2, 2}, .padding = {1, 1}}); }, GG});
  row({"conv2d", "groups 2, dilation 2", {X({1, 4, 7, 7}, 213), X({6, 2, 3, 3}, 214)},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {.padding = {2, 2}, .dilation = {2, 2}, .groups = 2}); }, GG});
  row({"conv2d", "3x3 stride 1 (Winograd in f32), transposed input", {X({1, 2, 6, 5}, 215).T(), X({3, 2, 3, 3}, 216), X({3}, 217)},
       [](const V& x) { return conv2d(x[0], x[1], x[2], {.padding = {1, 1}}); }, GG, {}, {1e-3, 1e-3}});
  row({"conv2d", "1x1, stride {2,1}", {X({2, 3, 5, 4}, 218), X({2, 3, 1, 1}, 219)},
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {.stride = {2, 1}}); }, GG});
  row({"conv_transpose2d", "stride 2, pad 1, output_padding 1, groups 2, bias", {X({1, 4, 3, 4}, 220), X({4, 3, 3, 3}, 221), X({6}, 222)},
       [](const V& x) {
         return conv_transpose2d(x[0], x[1], x[2], {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}, .groups = 2});
       }, GG});
  row({"conv2d_input_grad", "stride 2, pad 1 (input 7x6)", {X({1, 4, 4, 3}, 223), X({4, 3, 3, 3}, 224)},
       [](const V& x) { return conv2d_input_grad(x[0], x[1], {7, 6}, {.stride = {2, 2}, .padding = {1, 1}}); }, GG});
  row({"conv2d_weight_grad", "stride 2, pad 1", {X({2, 3, 7, 6}, 225), X({2, 4, 4, 3}, 226)},
       [](const V& x) { return conv2d_weight_grad(x[0], x[1], {3, 3}, {.stride = {2, 2}, .padding = {1, 1}}); }, GG});

  // ---- StyleGAN2 ops ----------------------------------------------------------------------
  row({"upfirdn2d", "up 2, separable [1,3,3,1], gain 4", {X({1, 2, 4, 5}, 230), values({4}, {1, 3, 3, 1})},
       [](const V& x) { return upfirdn2d(x[0], mul_scalar(x[1], 1.0 / 8), 2, 1, {2, 1, 2, 1}, false, 4.0); }, GG});
  row({"upfirdn2d", "down 2, 2-D filter, flipped, strided", {X({1, 2, 7, 6}, 231).S(), C({3, 3}, 232)},
       [](const V& x) { return upfirdn2d(x[0], x[1], 1, 2, {1, 1, 1, 1}, true); }, GG});
  row({"upfirdn2d", "per-axis up/down, negative pad, 2x3 filter", {X({1, 1, 5, 4}, 233), C({2, 3}, 234)},
       [](const V& x) {
         return upfirdn2d(x[0], x[1], {.up_x = 2, .down_y = 2, .pad_x0 = -1, .pad_x1 = 2, .pad_y0 = 1, .pad_y1 = 0});
       }, GG});
  row({"bias_act", "lrelu, bias on dim 1, clamp", {X({2, 3, 4}, 240), X({3}, 241)},
       [](const V& x) { return bias_act(x[0], x[1], {.act = Activation::LeakyReLU, .clamp = 0.8}); }, GG});
  row({"bias_act", "linear, gain, bias on dim 2, transposed", {X({2, 5, 3}, 242).T(), X({3}, 243)},
       [](const V& x) { return bias_act(x[0], x[1], {.gain = 0.5, .dim = 2}); }, GG});
  row({"bias_act", "lrelu alpha 0.1, no bias", {X({3, 7}, 244)},
       [](const V& x) { return bias_act(x[0], Tensor(), {.act = Activation::LeakyReLU, .alpha = 0.1}); }, GG});
  row({"bias_act_grad", "from the lrelu output, clamped", {X({2, 3, 4}, 245),
        Made({2, 3, 4}, [] { return bias_act(f64_randn({2, 3, 4}, 246), f64_randn({3}, 247), {.act = Activation::LeakyReLU, .clamp = 0.8}); }, false)},
       [](const V& x) { return bias_act_grad(x[0], x[1], {.act = Activation::LeakyReLU, .clamp = 0.8}); }, GG});
  row({"minibatch_stddev", "group 2, 2 features", {X({4, 4, 3, 3}, 250)}, [](const V& x) { return minibatch_stddev(x[0], 2, 2); }, GG});
  row({"minibatch_stddev", "group larger than the batch", {X({2, 3, 2, 2}, 251)}, [](const V& x) { return minibatch_stddev(x[0]); }, GG});

  const auto mod_inputs = [](uint64_t s, int64_t hw, int64_t k) {
    return std::vector<In>{X({2, 3, hw, hw}, s), X({2, 3, k, k}, s + 1), X({2, 3}, s + 2)};
  };
  row({"modulated_conv2d", "demodulated, noise, bias, lrelu", {X({2, 3, 4, 4}, 260), X({2, 3, 3, 3}, 261), X({2, 3}, 262), X({2, 1, 4, 4}, 263), X({1}, 264), X({2}, 265)},
       [](const V& x) {
         ModulatedConv2dOptions o;
         o.noise = x[3], o.noise_weight = x[4], o.bias = x[5], o.act = Activation::LeakyReLU;
         return modulated_conv2d(x[0], x[1], x[2], o);
       }, GG});
  row({"modulated_conv2d", "up 2", mod_inputs(266, 3, 3), [](const V& x) { return modulated_conv2d(x[0], x[1], x[2], {.up = 2}); }, GG});
  row({"modulated_conv2d", "down 2", mod_inputs(269, 6, 3), [](const V& x) { return modulated_conv2d(x[0], x[1], x[2], {.down = 2}); }, GG});
  row({"modulated_conv2d", "ToRGB: 1x1, no demodulation, bias", {X({2, 3, 4, 4}, 272), X({2, 3, 1, 1}, 273), X({2, 3}, 274), X({2}, 275)},
       [](const V& x) {
         ModulatedConv2dOptions o;
         o.demodulate = false, o.bias = x[3];
         return modulated_conv2d(x[0], x[1], x[2], o);
       }, GG});
  row({"modulated_conv2d_grouped", "demodulated, noise, bias, lrelu", {X({2, 3, 4, 4}, 260), X({2, 3, 3, 3}, 261), X({2, 3}, 262), X({2, 1, 4, 4}, 263), X({1}, 264), X({2}, 265)},
       [](const V& x) {
         ModulatedConv2dOptions o;
         o.noise = x[3], o.noise_weight = x[4], o.bias = x[5], o.act = Activation::LeakyReLU;
         return modulated_conv2d_grouped(x[0], x[1], x[2], o);
       }, GG, {}, {1e-4, 1e-3}, [](const Ctx& c) {
         // The fused (non-grouped) formulation computes the same function.
         ModulatedConv2dOptions o;
         o.noise = c.xs[3], o.noise_weight = c.xs[4], o.bias = c.xs[5], o.act = Activation::LeakyReLU;
         GS_EXPECT_CLOSE(modulated_conv2d(c.xs[0], c.xs[1], c.xs[2], o).cpu(), c.y.cpu(), 1e-5, 1e-4);
       }});
  row({"modulated_conv2d_demod", "", {X({3, 2, 3, 3}, 276), X({2, 2}, 277)},
       [](const V& x) { return modulated_conv2d_demod(x[0], x[1]); }, GG});
  row({"modulated_conv2d_epilogue", "demod, shared noise, bias, lrelu, clamp", {X({2, 3, 4, 4}, 278), Pos({2, 3}, 279), X({1, 1, 4, 4}, 280), X({1}, 281), X({3}, 282)},
       [](const V& x) {
         return modulated_conv2d_epilogue(x[0], x[1], x[2], x[3], x[4], {.act = Activation::LeakyReLU, .clamp = 1.0});
       }, GG});
  row({"modulated_conv2d_epilogue", "no demod, no noise, linear", {X({2, 3, 3, 5}, 283).T(), X({3}, 284)},
       [](const V& x) { return modulated_conv2d_epilogue(x[0], Tensor(), Tensor(), Tensor(), x[1], {}); }, GG});

  // ---- selective attention (d = 32: a head size the CUDA kernels take) --------------------
  row({"selective_attention", "mu 0.5, Lq != Lk", {X({1, 3, 32}, 290), X({1, 5, 32}, 291), X({1, 5, 32}, 292)},
       [](const V& x) { return selective_attention(x[0], x[1], x[2], 0.5, 1); }, GG});
  // Duplicate keys give bit-equal scores: every key tied with the threshold is kept. k is a
  // constant so that finite differences do not break the ties.
  row({"selective_attention", "2 heads, tied keys (threshold rule)", {X({1, 4, 64}, 293),
        Made({1, 5, 64}, [] { return index_select(f64_randn({1, 3, 64}, 294), 1, Tensor::from_vector(std::vector<int64_t>{0, 1, 0, 2, 1}, {5})); }, false),
        X({1, 5, 64}, 295)},
       [](const V& x) { return selective_attention(x[0], x[1], x[2], 0.4, 2); }, G});
  row({"selective_attention", "slices of a fused QKV projection (row stride 96)", {X({2, 4, 96}, 296)},
       [](const V& x) {
         return selective_attention(narrow(x[0], 2, 0, 32), narrow(x[0], 2, 32, 32), narrow(x[0], 2, 64, 32), 0.3, 1);
       }, G});
  // tau and lse are returned without gradient, so the differentiable row takes `out` alone and the
  // statistics are compared across backends by a forward row.
  row({"selective_attention_with_stats", "out is differentiable", {X({1, 3, 32}, 297), X({1, 6, 32}, 298), X({1, 6, 32}, 299)},
       [](const V& x) { return selective_attention_with_stats(x[0], x[1], x[2], 0.5, 1).out; }, G, {}, {1e-4, 1e-3},
       [](const Ctx& c) { GS_EXPECT_CLOSE(selective_attention(c.xs[0], c.xs[1], c.xs[2], 0.5, 1).cpu(), c.y.cpu(), 0.0, 0.0); }});
  row({"selective_attention_with_stats", "tau is the kk-th largest score, lse its log-sum-exp", {X({1, 3, 32}, 297), X({1, 6, 32}, 298), X({1, 6, 32}, 299)},
       [](const V& x) {
         auto r = selective_attention_with_stats(x[0], x[1], x[2], 0.5, 1);
         return pack({r.out, r.tau, r.lse});
       }, F, {}, {1e-4, 1e-3}, [](const Ctx& c) {
         Tensor s = mul_scalar(matmul(c.xs[0], transpose(c.xs[1], 1, 2)), 1.0 / std::sqrt(32.0));  // [1, 3, 6]
         Tensor tau = rows_kth_largest(s, selective_topk(0.5, 6));                                   // [1, 3, 1]
         Tensor kept = where(ge(s, tau), s, scalar_like(-kInf, s));
         Tensor m = amax(kept, {-1}, true);
         Tensor lse = add(log(sum(exp(sub(kept, m)), {-1})), reshape(m, {1, 3}));
         GS_EXPECT_CLOSE(narrow(c.y, 0, 96, 3).cpu(), reshape(tau, {-1}).cpu(), 1e-5, 1e-4);
         GS_EXPECT_CLOSE(narrow(c.y, 0, 99, 3).cpu(), reshape(lse, {-1}).cpu(), 1e-5, 1e-4);
       }});
  row({"selective_attention_unfused", "2 heads", {X({1, 3, 64}, 300), X({1, 5, 64}, 301), X({1, 5, 64}, 302)},
       [](const V& x) { return selective_attention_unfused(x[0], x[1], x[2], 0.5, 2); }, GG, {}, {1e-4, 1e-3},
       [](const Ctx& c) { GS_EXPECT_CLOSE(selective_attention(c.xs[0], c.xs[1], c.xs[2], 0.5, 2).cpu(), c.y.cpu(), 1e-5, 1e-4); }});
  row({"selective_attention_weights", "2 heads, rows sum to 1 and rebuild the output",
       {X({1, 5, 8}, 304), X({1, 6, 8}, 305)},
       [](const V& x) { return selective_attention_weights(x[0], x[1], 0.5, 2); }, F, {}, {1e-4, 1e-3},
       [](const Ctx& c) {
         CHECK(c.y.shape() == Shape{1, 2, 5, 6});
         GS_EXPECT_CLOSE(sum(c.y, {-1}).cpu(), Tensor::ones({1, 2, 5}, {c.y.dtype()}), 1e-5, 1e-5);
         const Tensor vh = permute(reshape(c.xs[1], {1, 6, 2, 4}), {0, 2, 1, 3});  // keys as values
         const Tensor out = reshape(permute(matmul(c.y, vh), {0, 2, 1, 3}), {1, 5, 8});
         GS_EXPECT_CLOSE(out.cpu(), selective_attention(c.xs[0], c.xs[1], c.xs[1], 0.5, 2).cpu(), 1e-5, 1e-4);
       }});
  row({"rows_kth_largest", "ties", {small_ints({3, 6}, 303)}, [](const V& x) { return rows_kth_largest(x[0], 2); }, F});
  row({"rows_kth_largest", "a NaN row gives NaN", {values({2, 4}, {1, 2, std::nan(""), 4, 5, 6, 7, 8})},
       [](const V& x) { return rows_kth_largest(x[0], 3); }, F | kMayNaN, {}, {1e-4, 1e-3}, [](const Ctx& c) {
         auto y = c.y.to_vector<double>();
         CHECK(std::isnan(y[0]));
         CHECK(y[1] == 6.0);
       }});

  // ---- perspective warp -------------------------------------------------------------------
  const auto homographies = [](int64_t b, uint64_t seed) {
    return Made({b, 3, 3}, [b, seed] { Generator g(seed); return random_homographies(b, g, {.distortion = 0.3, .prob = 1.0}); }, false, false);
  };
  row({"perspective_warp", "random homographies, strided input", {X({2, 2, 5, 6}, 310).S(), homographies(2, 311)},
       [](const V& x) { return perspective_warp(x[0], x[1]); }, GG});
  row({"perspective_warp", "identity H reproduces x", {X({1, 2, 4, 3}, 312), Made({1, 3, 3}, [] { return identity_h(1); }, false, false)},
       [](const V& x) { return perspective_warp(x[0], x[1]); }, G, {}, {1e-4, 1e-3},
       [](const Ctx& c) { GS_EXPECT_CLOSE(c.y.cpu(), c.xs[0].cpu(), 1e-6, 1e-6); }});
  row({"perspective_warp", "several maps, one H (vector overload)", {X({2, 2, 4, 4}, 313), X({2, 1, 6, 5}, 314), homographies(2, 315)},
       [](const V& x) { return pack(perspective_warp(std::vector<Tensor>{x[0], x[1]}, x[2])); }, GG, {}, {1e-4, 1e-3},
       [](const Ctx& c) {
         Tensor one = perspective_warp(c.xs[1], c.xs[2]);
         GS_EXPECT_CLOSE(narrow(c.y, 0, 64, 60).cpu(), reshape(one, {-1}).cpu(), 0.0, 0.0);
       }});
  row({"homography_from_corners", "maps each corner", {Made({2, 4, 2}, [] { Generator g(316); return random_warp_corners(2, g, {.distortion = 0.4, .prob = 1.0}); }, false)},
       [](const V& x) { return homography_from_corners(x[0]); }, F | kFixedDtype, {}, {1e-4, 1e-3},
       [](const Ctx& c) {
         CHECK(c.y.dtype() == DType::f64);
         homography_maps_corners(c.xs[0], c.y);
       }});
  row({"random_warp_corners", "seeded, inward, 9 counters a sample", {},
       [](const V&) { Generator g(317); return random_warp_corners(3, g); }, F | kFixedDtype | kNoCuda, {}, {0.0, 0.0},
       [](const Ctx& c) {
         Generator g(317);
         Tensor again = random_warp_corners(3, g);
         CHECK(g.offset() == 27);
         CHECK(gstest::compare(again, c.y, {0.0, 0.0}).ok);
         for (double v : c.y.to_vector<double>()) CHECK(std::abs(v) <= 1.0);
       }});
  row({"random_homographies", "equals homography_from_corners(random_warp_corners)", {},
       [](const V&) { Generator g(318); return random_homographies(2, g); }, F | kFixedDtype | kNoCuda, {}, {0.0, 0.0},
       [](const Ctx& c) {
         Generator g(318);
         Tensor corners = random_warp_corners(2, g);
         CHECK(gstest::compare(homography_from_corners(corners), c.y, {0.0, 0.0}).ok);
       }});
  return t;
}

}  // namespace gsbackend
