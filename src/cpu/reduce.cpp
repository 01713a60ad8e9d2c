// CPU reductions, softmax rows, index_select / index_add.
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/kernels.hpp"

namespace gradstyle::cpu {

using backend::ReduceOp;
using backend::StridedView;

namespace {
template <class T>
void reduce_t(ReduceOp op, T* out, const T* in, int64_t outer, int64_t n) {
#pragma omp parallel for if (outer * n > (1 << 15)) schedule(static)
  for (int64_t r = 0; r < outer; ++r) {
    const T* row = in + r * n;
    if (op == ReduceOp::Sum) {
      // pairwise-ish: accumulate in double for float32 to keep large sums accurate
      double acc = 0;
      for (int64_t j = 0; j < n; ++j) acc += double(row[j]);
      out[r] = T(acc);
    } else {
      T best = op == ReduceOp::Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
      bool nan = false;
      for (int64_t j = 0; j < n; ++j) {
        T v = row[j];
        nan = nan || v != v;
        best = op == ReduceOp::Max ? (v > best ? v : best) : (v < best ? v : best);
      }
      out[r] = nan ? std::numeric_limits<T>::quiet_NaN() : best;
    }
  }
}

template <class T>
void softmax_t(T* out, const T* in, int64_t outer, int64_t n, bool log) {
#pragma omp parallel for if (outer * n > (1 << 14)) schedule(static)
  for (int64_t r = 0; r < outer; ++r) {
    const T* x = in + r * n;
    T* y = out + r * n;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
    double s = 0;
    for (int64_t j = 0; j < n; ++j) s += std::exp(double(x[j] - m));
    if (log) {
      T ls = T(std::log(s));
      for (int64_t j = 0; j < n; ++j) y[j] = x[j] - m - ls;
    } else {
      T inv = T(1.0 / s);
      for (int64_t j = 0; j < n; ++j) y[j] = std::exp(x[j] - m) * inv;
    }
  }
}

int64_t load_index(const StridedView& idx, int64_t j) {
  int64_t off = backend::offset_of(idx, j);
  return idx.dtype == DType::i64 ? static_cast<const int64_t*>(idx.data)[off]
                                 : int64_t(static_cast<const int32_t*>(idx.data)[off]);
}
}  // namespace

void reduce_rows(ReduceOp op, const StridedView& out, const StridedView& in, int64_t outer, int64_t n) {
  if (in.dtype == DType::f32) return reduce_t(op, static_cast<float*>(out.data), static_cast<const float*>(in.data), outer, n);
  if (in.dtype == DType::f64) return reduce_t(op, static_cast<double*>(out.data), static_cast<const double*>(in.data), outer, n);
  throw DTypeError(err_msg("reduce: unsupported dtype ", dtype_name(in.dtype)));
}

void softmax_rows(const StridedView& out, const StridedView& in, int64_t outer, int64_t n, bool log) {
  if (in.dtype == DType::f32) return softmax_t(static_cast<float*>(out.data), static_cast<const float*>(in.data), outer, n, log);
  if (in.dtype == DType::f64) return softmax_t(static_cast<double*>(out.data), static_cast<const double*>(in.data), outer, n, log);
  throw DTypeError(err_msg("softmax: unsupported dtype ", dtype_name(in.dtype)));
}

void index_select(const StridedView& out, const StridedView& in, const StridedView& idx, int64_t outer,
                  int64_t n_in, int64_t inner) {
  const int64_t n_idx = idx.numel;
  const size_t es = dtype_size(in.dtype);
  const char* src = static_cast<const char*>(in.data);
  char* dst = static_cast<char*>(out.data);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n_idx; ++j) {
      int64_t k = load_index(idx, j);
      std::memcpy(dst + ((o * n_idx + j) * inner) * int64_t(es), src + ((o * n_in + k) * inner) * int64_t(es),
                  size_t(inner) * es);
    }
}

void index_add(const StridedView& out, const StridedView& src, const StridedView& idx, int64_t outer,
               int64_t n_out, int64_t inner) {
  const int64_t n_idx = idx.numel;
  auto run = [&](auto* o, const auto* s) {
    for (int64_t b = 0; b < outer; ++b)
      for (int64_t j = 0; j < n_idx; ++j) {
        int64_t k = load_index(idx, j);
        auto* orow = o + (b * n_out + k) * inner;
        const auto* srow = s + (b * n_idx + j) * inner;
        for (int64_t i = 0; i < inner; ++i) orow[i] += srow[i];
      }
  };
  if (out.dtype == DType::f32) return run(static_cast<float*>(out.data), static_cast<const float*>(src.data));
  if (out.dtype == DType::f64) return run(static_cast<double*>(out.data), static_cast<const double*>(src.data));
  throw DTypeError(err_msg("index_add: unsupported dtype ", dtype_name(out.dtype)));
}

}  // namespace gradstyle::cpu
