#include "backend/view.hpp"

namespace gradstyle::backend {

StridedView make_view(const Tensor& t) {
  StridedView v;
  GS_CHECK(t.dim() <= kMaxDims, ShapeError, "tensor has ", t.dim(), " dims; at most ", kMaxDims,
           " are supported");
  v.data = t.raw_data();
  v.dtype = t.dtype();
  v.ndim = int(t.dim());
  v.numel = t.numel();
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = t.shape()[size_t(i)];
    v.strides[i] = t.strides()[size_t(i)];
  }
  v.contiguous = t.is_contiguous();
  return v;
}

StridedView make_broadcast_view(const Tensor& t, const Shape& out) {
  StridedView v;
  GS_CHECK(int64_t(out.size()) <= kMaxDims && t.dim() <= int64_t(out.size()), ShapeError,
           "cannot broadcast ", shape_str(t.shape()), " to ", shape_str(out));
  v.data = t.raw_data();
  v.dtype = t.dtype();
  v.ndim = int(out.size());
  v.numel = shape_numel(out);
  size_t lead = out.size() - size_t(t.dim());
  for (size_t i = 0; i < out.size(); ++i) {
    v.shape[i] = out[i];
    if (i < lead) {
      v.strides[i] = 0;
    } else {
      int64_t s = t.shape()[i - lead];
      GS_CHECK(s == out[i] || s == 1, ShapeError, "cannot broadcast ", shape_str(t.shape()), " to ",
               shape_str(out));
      v.strides[i] = (s == 1 && out[i] != 1) ? 0 : t.strides()[i - lead];
    }
  }
  v.contiguous = t.shape() == out && t.is_contiguous();
  return v;
}

}  // namespace gradstyle::backend
