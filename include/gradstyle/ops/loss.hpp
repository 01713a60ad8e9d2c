#pragma once
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {
enum class Reduction { None, Mean, Sum };
// Shapes must match exactly (no broadcasting, as a guard against silent mistakes).
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r = Reduction::Mean);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction r = Reduction::Mean);
}  // namespace gradstyle
