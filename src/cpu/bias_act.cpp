// CPU bias_act and its gradient: one pass over the data each (see backend/bias_act_kernels.hpp).
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "backend/bias_act_kernels.hpp"

namespace gradstyle::cpu {

using backend::BiasActKind;
using backend::StridedView;

namespace {

constexpr int64_t kGrain = 1 << 16;  // elements below which one thread is faster

template <class T, bool kLRelu, bool kClamp>
void bias_act_t(T* y, const T* x, const T* b, int64_t n, int64_t channels, int64_t inner, T alpha, T gain, T clamp) {
  const int64_t rows = n / std::max<int64_t>(inner, 1);  // rows of length inner share one bias value
#pragma omp parallel for schedule(static) if (n > kGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T bias = b ? b[r % channels] : T(0);
    const T* xr = x + r * inner;
    T* yr = y + r * inner;
    for (int64_t i = 0; i < inner; ++i) {
      T v = xr[i] + bias;
      if constexpr (kLRelu) v = v > T(0) ? v : v * alpha;
      v *= gain;
      if constexpr (kClamp) v = v > clamp ? clamp : (v < -clamp ? -clamp : v);
      yr[i] = v;
    }
  }
}

template <class T, bool kLRelu, bool kClamp>
void bias_act_grad_t(T* dx, const T* dy, const T* yref, int64_t n, T alpha, T gain, T clamp) {
#pragma omp parallel for simd schedule(static) if (n > kGrain)
  for (int64_t i = 0; i < n; ++i) {
    const T r = yref[i];
    T d = dy[i] * gain;
    if constexpr (kLRelu) d = r * gain > T(0) ? d : d * alpha;
    if constexpr (kClamp) d = std::abs(r) < clamp ? d : T(0);
    dx[i] = d;
  }
}

template <class T>
void run_fwd(BiasActKind act, const StridedView& y, const StridedView& x, const StridedView& bias, int64_t channels,
             int64_t inner, double alpha, double gain, double clamp) {
  T* yp = static_cast<T*>(y.data);
  const T* xp = static_cast<const T*>(x.data);
  const T* bp = static_cast<const T*>(bias.data);
  const bool lrelu = act == BiasActKind::LRelu, cl = clamp >= 0;
  const int64_t n = y.numel;
  if (lrelu && cl) bias_act_t<T, true, true>(yp, xp, bp, n, channels, inner, T(alpha), T(gain), T(clamp));
  else if (lrelu) bias_act_t<T, true, false>(yp, xp, bp, n, channels, inner, T(alpha), T(gain), T(clamp));
  else if (cl) bias_act_t<T, false, true>(yp, xp, bp, n, channels, inner, T(alpha), T(gain), T(clamp));
  else bias_act_t<T, false, false>(yp, xp, bp, n, channels, inner, T(alpha), T(gain), T(clamp));
}

template <class T>
void run_grad(BiasActKind act, const StridedView& dx, const StridedView& dy, const StridedView& yref, double alpha,
              double gain, double clamp) {
  T* o = static_cast<T*>(dx.data);
  const T* g = static_cast<const T*>(dy.data);
  const T* r = static_cast<const T*>(yref.data);
  const bool lrelu = act == BiasActKind::LRelu, cl = clamp >= 0;
  const int64_t n = dx.numel;
  if (lrelu && cl) bias_act_grad_t<T, true, true>(o, g, r, n, T(alpha), T(gain), T(clamp));
  else if (lrelu) bias_act_grad_t<T, true, false>(o, g, r, n, T(alpha), T(gain), T(clamp));
  else if (cl) bias_act_grad_t<T, false, true>(o, g, r, n, T(alpha), T(gain), T(clamp));
  else bias_act_grad_t<T, false, false>(o, g, r, n, T(alpha), T(gain), T(clamp));
}

}  // namespace

void bias_act(BiasActKind act, const StridedView& y, const StridedView& x, const StridedView& bias, int64_t channels,
              int64_t inner, double alpha, double gain, double clamp) {
  if (y.dtype == DType::f32) return run_fwd<float>(act, y, x, bias, channels, inner, alpha, gain, clamp);
  if (y.dtype == DType::f64) return run_fwd<double>(act, y, x, bias, channels, inner, alpha, gain, clamp);
  throw DTypeError(err_msg("bias_act: unsupported dtype ", dtype_name(y.dtype)));
}

void bias_act_grad(BiasActKind act, const StridedView& dx, const StridedView& dy, const StridedView& yref,
                   double alpha, double gain, double clamp) {
  if (dx.dtype == DType::f32) return run_grad<float>(act, dx, dy, yref, alpha, gain, clamp);
  if (dx.dtype == DType::f64) return run_grad<double>(act, dx, dy, yref, alpha, gain, clamp);
  throw DTypeError(err_msg("bias_act_grad: unsupported dtype ", dtype_name(dx.dtype)));
}

}  // namespace gradstyle::cpu
