// CUDA bias_act and bias_act_grad (contracts in src/backend/bias_act_kernels.hpp): one
// elementwise pass each, templated on the activation and on whether a clamp is applied, like
// NVIDIA's kernel (PERFORMANCE.md 5.1). The gradient reads only the forward output.
#include "../common/launch.cuh"
#include "backend/bias_act_kernels.hpp"

namespace gradstyle::cuda {

using backend::BiasActKind;
using backend::StridedView;

namespace {

template <class T, bool kLRelu, bool kClamp>
__global__ void bias_act_kernel(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ b, int64_t n,
                                int64_t channels, int64_t inner, T alpha, T gain, T clamp) {
  GS_GRID_LOOP(i, n) {
    T v = x[i];
    if (b) v += b[(i / inner) % channels];
    if (kLRelu) v = v > T(0) ? v : v * alpha;
    v *= gain;
    if (kClamp) v = v > clamp ? clamp : (v < -clamp ? -clamp : v);
    y[i] = v;
  }
}

template <class T, bool kLRelu, bool kClamp>
__global__ void bias_act_grad_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ yref,
                                     int64_t n, T alpha, T gain, T clamp) {
  GS_GRID_LOOP(i, n) {
    const T r = yref[i];
    T d = dy[i] * gain;
    if (kLRelu) d = r * gain > T(0) ? d : d * alpha;
    if (kClamp) d = fabs(r) < clamp ? d : T(0);
    dx[i] = d;
  }
}

template <class T>
void launch_fwd(BiasActKind act, const StridedView& y, const StridedView& x, const StridedView& bias, int64_t channels,
                int64_t inner, double alpha, double gain, double clamp) {
  const int64_t n = y.numel;
  T* yp = static_cast<T*>(y.data);
  const T* xp = static_cast<const T*>(x.data);
  const T* bp = static_cast<const T*>(bias.data);
  const unsigned grid = grid_for(n);
  cudaStream_t s = stream();
  const bool lrelu = act == BiasActKind::LRelu, cl = clamp >= 0;
  const int64_t in = inner > 0 ? inner : 1;
  if (lrelu && cl) bias_act_kernel<T, true, true><<<grid, kBlock, 0, s>>>(yp, xp, bp, n, channels, in, T(alpha), T(gain), T(clamp));
  else if (lrelu) bias_act_kernel<T, true, false><<<grid, kBlock, 0, s>>>(yp, xp, bp, n, channels, in, T(alpha), T(gain), T(clamp));
  else if (cl) bias_act_kernel<T, false, true><<<grid, kBlock, 0, s>>>(yp, xp, bp, n, channels, in, T(alpha), T(gain), T(clamp));
  else bias_act_kernel<T, false, false><<<grid, kBlock, 0, s>>>(yp, xp, bp, n, channels, in, T(alpha), T(gain), T(clamp));
  GS_CUDA_CHECK_LAUNCH("bias_act_kernel");
}

template <class T>
void launch_grad(BiasActKind act, const StridedView& dx, const StridedView& dy, const StridedView& yref, double alpha,
                 double gain, double clamp) {
  const int64_t n = dx.numel;
  T* o = static_cast<T*>(dx.data);
  const T* g = static_cast<const T*>(dy.data);
  const T* r = static_cast<const T*>(yref.data);
  const unsigned grid = grid_for(n);
  cudaStream_t s = stream();
  const bool lrelu = act == BiasActKind::LRelu, cl = clamp >= 0;
  if (lrelu && cl) bias_act_grad_kernel<T, true, true><<<grid, kBlock, 0, s>>>(o, g, r, n, T(alpha), T(gain), T(clamp));
  else if (lrelu) bias_act_grad_kernel<T, true, false><<<grid, kBlock, 0, s>>>(o, g, r, n, T(alpha), T(gain), T(clamp));
  else if (cl) bias_act_grad_kernel<T, false, true><<<grid, kBlock, 0, s>>>(o, g, r, n, T(alpha), T(gain), T(clamp));
  else bias_act_grad_kernel<T, false, false><<<grid, kBlock, 0, s>>>(o, g, r, n, T(alpha), T(gain), T(clamp));
  GS_CUDA_CHECK_LAUNCH("bias_act_grad_kernel");
}

}  // namespace

void bias_act(BiasActKind act, const StridedView& y, const StridedView& x, const StridedView& bias, int64_t channels,
              int64_t inner, double alpha, double gain, double clamp) {
  if (y.numel == 0) return;
  if (y.dtype == DType::f32) return launch_fwd<float>(act, y, x, bias, channels, inner, alpha, gain, clamp);
  if (y.dtype == DType::f64) return launch_fwd<double>(act, y, x, bias, channels, inner, alpha, gain, clamp);
  throw DTypeError(err_msg("bias_act (cuda): unsupported dtype ", dtype_name(y.dtype)));
}

void bias_act_grad(BiasActKind act, const StridedView& dx, const StridedView& dy, const StridedView& yref,
                   double alpha, double gain, double clamp) {
  if (dx.numel == 0) return;
  if (dx.dtype == DType::f32) return launch_grad<float>(act, dx, dy, yref, alpha, gain, clamp);
  if (dx.dtype == DType::f64) return launch_grad<double>(act, dx, dy, yref, alpha, gain, clamp);
  throw DTypeError(err_msg("bias_act_grad (cuda): unsupported dtype ", dtype_name(dx.dtype)));
}

}  // namespace gradstyle::cuda
