#pragma once
// Shape and indexing ops. reshape/view/permute/transpose/narrow/slice/select/expand/unsqueeze/
// squeeze/flatten are views (no copy) whenever the layout allows; cat/stack/index_select copy.
// All are differentiable to any order.
#include <vector>

#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

Tensor reshape(const Tensor& x, const Shape& shape);  // one entry may be -1
Tensor view(const Tensor& x, const Shape& shape);     // throws ShapeError if a copy is needed
Tensor permute(const Tensor& x, const Shape& dims);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
// Python-style slice x[..., start:end:step, ...] on one dim (negative start/end count from the
// end and are clamped like Python); step >= 1.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& x, int64_t dim, int64_t index);  // removes dim
Tensor expand(const Tensor& x, const Shape& shape);           // -1 keeps a size
Tensor broadcast_to(const Tensor& x, const Shape& shape);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);  // no-op when that dim is not 1
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim);
// index: 1-D int64 (or int32) tensor on x's device; values checked to be in range.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// x with src added at the positions of index along dim (out-of-place).
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor flip(const Tensor& x, const Shape& dims);
// Repeats the tensor like torch.Tensor.repeat.
Tensor repeat(const Tensor& x, const Shape& repeats);

}  // namespace gradstyle
