// CPU fused epilogue of the modulated convolution (math shared with CUDA in
// backend/modulated_conv_kernels.hpp): one pass over the conv output per direction.
#include "backend/modulated_conv_kernels.hpp"

namespace gradstyle::cpu {

using backend::ModconvEpilogue;
using backend::StridedView;

namespace {

constexpr int64_t kParallelWork = 1 << 15;

template <class T>
void forward_t(const ModconvEpilogue& e, T* out, const T* y, const T* d, const T* noise, const T* nwp, const T* bias) {
  const T nw = nwp && noise ? *nwp : T(0);
  const T alpha = T(e.alpha), gain = T(e.gain), clamp = T(e.clamp);
  const int64_t planes = e.batch * e.channels, hw = e.hw;
#pragma omp parallel for schedule(static) if (planes * hw > kParallelWork)
  for (int64_t bo = 0; bo < planes; ++bo) {
    const int64_t b = bo / e.channels, o = bo % e.channels;
    const T dc = d ? d[bo] : T(1), bc = bias ? bias[o] : T(0);
    const T* nz = noise ? noise + b * e.noise_batch_stride : nullptr;
    const T* yp = y + bo * hw;
    T* op = out + bo * hw;
    if (e.lrelu) {
      for (int64_t i = 0; i < hw; ++i)
        op[i] = backend::modconv_epilogue_value(yp[i], dc, nw, nz ? nz[i] : T(0), bc, true, alpha, gain, clamp);
    } else {
      for (int64_t i = 0; i < hw; ++i)
        op[i] = backend::modconv_epilogue_value(yp[i], dc, nw, nz ? nz[i] : T(0), bc, false, alpha, gain, clamp);
    }
  }
}

template <class T>
void backward_t(const ModconvEpilogue& e, T* dy, T* dpre, const T* g, const T* out, const T* d) {
  const T alpha = T(e.alpha), gain = T(e.gain), clamp = T(e.clamp);
  const int64_t planes = e.batch * e.channels, hw = e.hw;
#pragma omp parallel for schedule(static) if (planes * hw > kParallelWork)
  for (int64_t bo = 0; bo < planes; ++bo) {
    const T dc = d ? d[bo] : T(1);
    const T* gp = g + bo * hw;
    const T* op = out + bo * hw;
    T* yp = dy + bo * hw;
    T* pp = dpre ? dpre + bo * hw : nullptr;
    for (int64_t i = 0; i < hw; ++i) {
      const T dp = backend::modconv_epilogue_dpre(gp[i], op[i], e.lrelu, alpha, gain, clamp);
      if (pp) pp[i] = dp;
      yp[i] = dp * dc;
    }
  }
}

template <class T>
const T* ptr(const StridedView& v) {
  return static_cast<const T*>(v.data);
}

}  // namespace

void modconv_epilogue_forward(const ModconvEpilogue& e, const StridedView& out, const StridedView& y,
                              const StridedView& d, const StridedView& noise, const StridedView& noise_weight,
                              const StridedView& bias) {
  if (y.dtype == DType::f32)
    return forward_t(e, static_cast<float*>(out.data), ptr<float>(y), ptr<float>(d), ptr<float>(noise),
                     ptr<float>(noise_weight), ptr<float>(bias));
  if (y.dtype == DType::f64)
    return forward_t(e, static_cast<double*>(out.data), ptr<double>(y), ptr<double>(d), ptr<double>(noise),
                     ptr<double>(noise_weight), ptr<double>(bias));
  throw DTypeError(err_msg("modulated_conv2d_epilogue: unsupported dtype ", dtype_name(y.dtype)));
}

void modconv_epilogue_backward(const ModconvEpilogue& e, const StridedView& dy, const StridedView& dpre,
                               const StridedView& g, const StridedView& out, const StridedView& d) {
  if (g.dtype == DType::f32)
    return backward_t(e, static_cast<float*>(dy.data), static_cast<float*>(dpre.data), ptr<float>(g), ptr<float>(out),
                      ptr<float>(d));
  if (g.dtype == DType::f64)
    return backward_t(e, static_cast<double*>(dy.data), static_cast<double*>(dpre.data), ptr<double>(g),
                      ptr<double>(out), ptr<double>(d));
  throw DTypeError(err_msg("modulated_conv2d_epilogue: unsupported dtype ", dtype_name(g.dtype)));
}

}  // namespace gradstyle::cpu
