// Minibatch standard deviation (contract in gradstyle/ops/minibatch_std.hpp), composed from
// differentiable ops so that double backward works without a rule of its own.
#include "gradstyle/ops/minibatch_std.hpp"

#include <algorithm>

#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using namespace ops_detail;

Tensor minibatch_stddev(const Tensor& x, int64_t group_size, int64_t num_features, double eps) {
  const char* op = "minibatch_stddev";
  check_float(x, op);
  GS_CHECK(x.dim() == 4, ShapeError, op, ": expected a 4-D input [B, C, H, W], got ", shape_str(x.shape()));
  GS_CHECK(group_size >= 1 && num_features >= 1, ValueError, op, ": group_size (", group_size,
           ") and num_features (", num_features, ") must be >= 1");
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t G = std::min(B, group_size);
  GS_CHECK(G >= 1 && B % G == 0, ShapeError, op, ": batch ", B, " is not divisible by the group size ", G,
           " (input ", shape_str(x.shape()), ")");
  GS_CHECK(C % num_features == 0, ShapeError, op, ": ", C, " channels are not divisible by num_features ",
           num_features, " (input ", shape_str(x.shape()), ")");
  const int64_t M = B / G, F = num_features;
  // y: [G, M, F, C/F, H, W]; statistics over the group dim 0.
  Tensor y = reshape(x, {G, M, F, C / F, H, W});
  Tensor centred = sub(y, mean(y, {0}, true));
  Tensor var = mean(square(centred), {0});          // [M, F, C/F, H, W], biased
  Tensor sd = sqrt(add_scalar(var, eps));
  Tensor s = mean(sd, {2, 3, 4});                   // [M, F]
  s = reshape(s, {M, F, 1, 1});
  Tensor tiled = repeat(s, {G, 1, H, W});           // [B, F, H, W]; sample b gets row b mod M
  return cat({x, tiled}, 1);
}

}  // namespace gradstyle
