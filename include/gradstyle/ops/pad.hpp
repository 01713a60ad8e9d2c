#pragma once
// Padding of the last one or two dims (PyTorch's F.pad order: pads = {left, right} or
// {left, right, top, bottom}) of a float32/float64 tensor on the CPU or CUDA. Leading dims are
// batched over.
//
//  * Constant (alias Zeros): the border holds `value`. Negative pads crop, as in PyTorch.
//  * Reflect: mirror without repeating the edge (d c b | a b c d | c b a); every pad must be
//    >= 0 and smaller than the size of the dim it pads.
//
// Gradients: padding is linear in x (the value is a constant); the backward (which folds the
// reflected border back onto the source) is differentiable to any order.
//
// Throws: DTypeError, ShapeError (x has fewer dims than padded), ValueError (pads with other than
// 2 or 4 entries, reflect pad negative or >= the dim size, a constant pad leaving a negative size).
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

enum class PadMode { Constant = 0, Zeros = 0, Reflect = 1 };

Tensor pad(const Tensor& x, const Shape& pads, PadMode mode = PadMode::Constant, double value = 0.0);

}  // namespace gradstyle
