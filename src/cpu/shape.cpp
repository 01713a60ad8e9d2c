// CPU index_select / index_add of the shape family (contracts in backend/kernels.hpp).
#include <cstring>

#include "backend/kernels.hpp"

namespace gradstyle::cpu {

using backend::StridedView;

namespace {
int64_t load_index(const StridedView& idx, int64_t j) {
  int64_t off = backend::offset_of(idx, j);
  return idx.dtype == DType::i64 ? static_cast<const int64_t*>(idx.data)[off]
                                 : int64_t(static_cast<const int32_t*>(idx.data)[off]);
}
}  // namespace

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
