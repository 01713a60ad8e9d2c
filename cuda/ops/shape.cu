// CUDA index_select / index_add along one dim of a dense tensor viewed as [outer, n, inner]
// (same contracts as src/cpu/shape.cpp). Indices are int64 or int32 and were range-checked on the
// host by the op. index_add uses atomicAdd, so with repeated indices the order of the additions
// (and the last bits of float results) may differ from the CPU's.
#include "backend/kernels.hpp"
#include "../common/launch.cuh"

namespace gradstyle::cuda {

using backend::StridedView;

namespace {

__device__ __forceinline__ int64_t load_index(const StridedView& idx, int64_t j) {
  int64_t off = view_offset(idx, j);
  return idx.dtype == DType::i64 ? static_cast<const int64_t*>(idx.data)[off]
                                 : int64_t(static_cast<const int32_t*>(idx.data)[off]);
}

// out[o, j, i] = in[o, idx[j], i], moving E-sized elements; t runs over out = [outer, n_idx, inner].
template <class E>
__global__ void index_select_kernel(E* out, const E* in, StridedView idx, int64_t n_in, int64_t n_idx, int64_t inner,
                                    int64_t total) {
  GS_GRID_LOOP(t, total) {
    const int64_t row = t / inner, i = t - row * inner;
    const int64_t o = row / n_idx, j = row - o * n_idx;
    out[t] = in[(o * n_in + load_index(idx, j)) * inner + i];
  }
}

// out[o, idx[j], i] += src[o, j, i]; t runs over src = [outer, n_idx, inner].
template <class T>
__global__ void index_add_kernel(T* out, const T* src, StridedView idx, int64_t n_out, int64_t n_idx, int64_t inner,
                                 int64_t total) {
  GS_GRID_LOOP(t, total) {
    const int64_t row = t / inner, i = t - row * inner;
    const int64_t o = row / n_idx, j = row - o * n_idx;
    atomicAdd(out + (o * n_out + load_index(idx, j)) * inner + i, src[t]);
  }
}

void check_index_view(const StridedView& idx, const char* op) {
  GS_CHECK(idx.dtype == DType::i64 || idx.dtype == DType::i32, DTypeError, op,
           " (cuda): index must be int64 or int32, got ", dtype_name(idx.dtype));
}

}  // namespace

void index_select(const StridedView& out, const StridedView& in, const StridedView& idx_in, int64_t outer,
                  int64_t n_in, int64_t inner) {
  check_index_view(idx_in, "index_select");
  GS_CHECK(out.dtype == in.dtype, DTypeError, "index_select (cuda): output ", dtype_name(out.dtype), " vs input ",
           dtype_name(in.dtype));
  const int64_t n_idx = idx_in.numel;
  const int64_t total = outer * n_idx * inner;
  if (total == 0) return;
  const StridedView idx = coalesced(idx_in);
  cudaStream_t s = stream();
  const unsigned grid = grid_for(total);
  switch (dtype_size(in.dtype)) {
    case 1:
      index_select_kernel<uint8_t><<<grid, kBlock, 0, s>>>(static_cast<uint8_t*>(out.data),
                                                           static_cast<const uint8_t*>(in.data), idx, n_in, n_idx,
                                                           inner, total);
      break;
    case 2:
      index_select_kernel<uint16_t><<<grid, kBlock, 0, s>>>(static_cast<uint16_t*>(out.data),
                                                            static_cast<const uint16_t*>(in.data), idx, n_in, n_idx,
                                                            inner, total);
      break;
    case 4:
      index_select_kernel<uint32_t><<<grid, kBlock, 0, s>>>(static_cast<uint32_t*>(out.data),
                                                            static_cast<const uint32_t*>(in.data), idx, n_in, n_idx,
                                                            inner, total);
      break;
    default:
      index_select_kernel<uint64_t><<<grid, kBlock, 0, s>>>(static_cast<uint64_t*>(out.data),
                                                            static_cast<const uint64_t*>(in.data), idx, n_in, n_idx,
                                                            inner, total);
      break;
  }
  GS_CUDA_CHECK_LAUNCH("index_select_kernel");
}

void index_add(const StridedView& out, const StridedView& src, const StridedView& idx_in, int64_t outer,
               int64_t n_out, int64_t inner) {
  check_index_view(idx_in, "index_add");
  GS_CHECK(out.dtype == src.dtype, DTypeError, "index_add (cuda): output ", dtype_name(out.dtype), " vs source ",
           dtype_name(src.dtype));
  const int64_t n_idx = idx_in.numel;
  const int64_t total = outer * n_idx * inner;
  if (total == 0) return;
  const StridedView idx = coalesced(idx_in);
  cudaStream_t s = stream();
  const unsigned grid = grid_for(total);
  if (out.dtype == DType::f32) {
    index_add_kernel<float><<<grid, kBlock, 0, s>>>(static_cast<float*>(out.data), static_cast<const float*>(src.data),
                                                    idx, n_out, n_idx, inner, total);
  } else if (out.dtype == DType::f64) {
    index_add_kernel<double><<<grid, kBlock, 0, s>>>(static_cast<double*>(out.data),
                                                     static_cast<const double*>(src.data), idx, n_out, n_idx, inner,
                                                     total);
  } else {
    throw DTypeError(err_msg("index_add (cuda): unsupported dtype ", dtype_name(out.dtype)));
  }
  GS_CUDA_CHECK_LAUNCH("index_add_kernel");
}

}  // namespace gradstyle::cuda
