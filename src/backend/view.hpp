#pragma once
// Internal: the plain-old-data description of a strided tensor that kernels receive. It is
// passed by value to CUDA kernels too, so it holds no pointers to host-side metadata.
#include <cstdint>

#include "gradstyle/core/tensor.hpp"

namespace gradstyle::backend {

struct StridedView {
  void* data = nullptr;  // first element of the view
  DType dtype = DType::f32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};  // elements; 0 on broadcast dims
  int64_t numel = 1;
  bool contiguous = true;  // row-major dense
};

// View of t as it is.
StridedView make_view(const Tensor& t);
// View of t broadcast to out_shape (t's shape must broadcast to it).
StridedView make_broadcast_view(const Tensor& t, const Shape& out_shape);

// Index math shared by CPU and CUDA kernels: element offset of linear index i.
#if defined(__CUDACC__)
__host__ __device__ __forceinline__
#else
inline
#endif
int64_t offset_of(const StridedView& v, int64_t i) {
  int64_t off = 0;
  for (int d = v.ndim - 1; d >= 0; --d) {
    int64_t s = v.shape[d];
    int64_t q = i / s;
    off += (i - q * s) * v.strides[d];
    i = q;
  }
  return off;
}

}  // namespace gradstyle::backend
