#pragma once
// Plain, framework-free tensor value used by every reader and writer in io/: a dtype, a shape and
// contiguous row-major little-endian bytes. The bridge to gradstyle::Tensor lives in
// tensor_bridge.hpp so that the parsers (and the fuzzers) do not depend on the tensor core.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gradstyle/core/dtype.hpp"

namespace gradstyle::io {

struct RawTensor {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;  // empty = scalar (rank 0)
  std::vector<uint8_t> data;   // numel() * dtype_size(dtype) bytes, C order, little-endian

  int64_t numel() const;
  size_t nbytes() const { return data.size(); }
  std::string shape_str() const;  // "[1,18,512]"
  // Element i (flat index) converted to double; any dtype. Throws IndexError when out of range.
  double get(int64_t i) const;
  // Integer element (exact for i64); floats are truncated. Throws IndexError when out of range.
  int64_t get_int(int64_t i) const;
  // All elements converted to float32 (f16/bf16 widened exactly).
  std::vector<float> to_float32() const;
};

// A list of named tensors in file order (safetensors, npz, flattened state dicts).
using NamedTensors = std::vector<std::pair<std::string, RawTensor>>;

// Builds a tensor by copying numel(shape) * dtype_size(dtype) bytes from src.
RawTensor make_raw_tensor(DType dtype, std::vector<int64_t> shape, const void* src);
RawTensor raw_from_floats(std::vector<int64_t> shape, const std::vector<float>& values);
// Converts between dtypes (floats round to nearest even; float->int truncates like a C cast).
RawTensor convert_raw(const RawTensor& t, DType to);
// Finds a tensor by name; nullptr when absent.
const RawTensor* find_tensor(const NamedTensors& list, const std::string& name);

}  // namespace gradstyle::io
