#pragma once
// Inverted dropout. Training: each element is kept with probability 1 - p and scaled by
// 1 / (1 - p), else zeroed; p = 1 zeroes everything. Evaluation (training = false) or p = 0:
// returns x itself.
//
// The mask comes from the counter-based Philox generator: element i is kept when the i-th
// uniform of the draw (in (0, 1], rounded to x's dtype) is > p. One call consumes x.numel()
// counters of gen, and the same seed and offset give the same mask on the CPU and on CUDA.
//
// Differentiable to any order (the gradient is g * mask). x: float32/float64, any shape/device.
// Throws: DTypeError (not float), ValueError (p outside [0, 1]).
#include "gradstyle/core/rng.hpp"
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

}  // namespace gradstyle
