#pragma once
// The minibatch standard-deviation layer of the StyleGAN2 discriminator (rosinality
// Discriminator, SPEC C.2):
//   G = min(B, group_size), B divisible by G; samples b and b' are in one group when
//   b mod (B/G) == b' mod (B/G) (x is viewed as [G, B/G, F, C/F, H, W]);
//   s = sqrt(biased variance over the group + eps), averaged over C/F, H and W -> [B/G, F];
//   s is tiled to [B, F, H, W] and concatenated after x's channels.
//
//   x [B, C, H, W] (float32/float64, CPU or CUDA)  ->  [B, C + F, H, W]  (F = num_features)
//
// Composed from differentiable ops (reshape, mean, sub, square, sqrt, repeat, cat), so it is
// differentiable to any order (the R1 penalty back-propagates through it twice).
// Throws: ShapeError (x not 4-D, B not divisible by G, C not divisible by F), ValueError
// (group_size or num_features < 1), DTypeError.
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

Tensor minibatch_stddev(const Tensor& x, int64_t group_size = 4, int64_t num_features = 1, double eps = 1e-8);

}  // namespace gradstyle
