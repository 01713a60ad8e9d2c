#include "gradstyle/io/raw_tensor.hpp"

#include <cstring>
#include <limits>

#include "checked.hpp"
#include "gradstyle/core/error.hpp"

namespace gradstyle::io {

int64_t RawTensor::numel() const {
  uint64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0 || !detail::mul_ok(n, uint64_t(s), &n) || n > uint64_t(INT64_MAX))
      throw ShapeError("RawTensor: invalid shape " + shape_str());
  }
  return int64_t(n);
}

std::string RawTensor::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  s += ']';
  return s;
}

namespace {
// Float -> integer like a C cast, but saturating and NaN -> 0 (a plain cast is undefined there).
template <class T>
T sat_cast(double v) {
  if (!(v == v)) return 0;
  if (v <= double(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
  if (v >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return T(v);
}
template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
}  // namespace

double RawTensor::get(int64_t i) const {
  size_t es = dtype_size(dtype);
  if (i < 0 || uint64_t(i) >= data.size() / es)
    throw IndexError(err_msg("RawTensor::get: index ", i, " out of range for shape ", shape_str()));
  const uint8_t* p = data.data() + size_t(i) * es;
  switch (dtype) {
    case DType::f32: return load<float>(p);
    case DType::f64: return load<double>(p);
    case DType::f16: return half_to_float(load<uint16_t>(p));
    case DType::bf16: return bf16_to_float(load<uint16_t>(p));
    case DType::i64: return double(load<int64_t>(p));
    case DType::i32: return load<int32_t>(p);
    case DType::i16: return load<int16_t>(p);
    case DType::i8: return load<int8_t>(p);
    case DType::u8: return load<uint8_t>(p);
    case DType::boolean: return p[0] != 0 ? 1.0 : 0.0;
  }
  return 0;
}

int64_t RawTensor::get_int(int64_t i) const {
  if (dtype == DType::i64) {
    if (i < 0 || uint64_t(i) >= data.size() / 8)
      throw IndexError(err_msg("RawTensor::get_int: index ", i, " out of range for shape ", shape_str()));
    return load<int64_t>(data.data() + size_t(i) * 8);
  }
  return sat_cast<int64_t>(get(i));
}

std::vector<float> RawTensor::to_float32() const {
  size_t n = data.size() / dtype_size(dtype);
  std::vector<float> out(n);
  if (dtype == DType::f32) {
    if (n) std::memcpy(out.data(), data.data(), n * 4);
    return out;
  }
  for (size_t i = 0; i < n; ++i) out[i] = float(get(int64_t(i)));
  return out;
}

RawTensor make_raw_tensor(DType dtype, std::vector<int64_t> shape, const void* src) {
  RawTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  uint64_t bytes;
  if (!detail::mul_ok(uint64_t(t.numel()), dtype_size(dtype), &bytes)) throw ShapeError("make_raw_tensor: size overflow");
  t.data.resize(size_t(bytes));
  if (bytes) std::memcpy(t.data.data(), src, size_t(bytes));
  return t;
}

RawTensor raw_from_floats(std::vector<int64_t> shape, const std::vector<float>& values) {
  RawTensor t;
  t.shape = std::move(shape);
  if (uint64_t(t.numel()) != values.size())
    throw ShapeError(err_msg("raw_from_floats: shape ", t.shape_str(), " needs ", t.numel(), " values, got ", values.size()));
  t = make_raw_tensor(DType::f32, t.shape, values.data());
  return t;
}

RawTensor convert_raw(const RawTensor& t, DType to) {
  if (t.dtype == to) return t;
  RawTensor r;
  r.dtype = to;
  r.shape = t.shape;
  size_t n = t.data.size() / dtype_size(t.dtype);
  r.data.resize(n * dtype_size(to));
  uint8_t* o = r.data.data();
  for (size_t i = 0; i < n; ++i) {
    uint8_t* p = o + i * dtype_size(to);
    if (to == DType::i64 && t.dtype != DType::f32 && t.dtype != DType::f64) {
      int64_t v = t.get_int(int64_t(i));
      std::memcpy(p, &v, 8);
      continue;
    }
    double v = t.get(int64_t(i));
    switch (to) {
      case DType::f32: { float f = float(v); std::memcpy(p, &f, 4); break; }
      case DType::f64: std::memcpy(p, &v, 8); break;
      case DType::f16: { uint16_t h = float_to_half(float(v)); std::memcpy(p, &h, 2); break; }
      case DType::bf16: { uint16_t h = float_to_bf16(float(v)); std::memcpy(p, &h, 2); break; }
      case DType::i64: { int64_t x = sat_cast<int64_t>(v); std::memcpy(p, &x, 8); break; }
      case DType::i32: { int32_t x = sat_cast<int32_t>(v); std::memcpy(p, &x, 4); break; }
      case DType::i16: { int16_t x = sat_cast<int16_t>(v); std::memcpy(p, &x, 2); break; }
      case DType::i8: { int8_t x = sat_cast<int8_t>(v); std::memcpy(p, &x, 1); break; }
      case DType::u8: { uint8_t x = sat_cast<uint8_t>(v); std::memcpy(p, &x, 1); break; }
      case DType::boolean: p[0] = v != 0 ? 1 : 0; break;
    }
  }
  return r;
}

const RawTensor* find_tensor(const NamedTensors& list, const std::string& name) {
  for (const auto& [n, t] : list)
    if (n == name) return &t;
  return nullptr;
}

}  // namespace gradstyle::io
