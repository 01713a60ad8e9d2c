#pragma once
// Shapes and strides are small vectors of int64 in elements (never bytes).
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace gradstyle {

using Shape = std::vector<int64_t>;

constexpr int kMaxDims = 8;

std::string shape_str(const Shape& s);               // "[1,3,256,256]"
int64_t shape_numel(const Shape& s);                 // product; 1 for a scalar []
Shape contiguous_strides(const Shape& s);            // row-major strides
// Wraps a possibly negative dim into [0, ndim); throws IndexError naming op otherwise.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
// NumPy broadcasting of two shapes; throws ShapeError naming op.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace gradstyle
