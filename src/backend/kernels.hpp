#pragma once
// Internal: dispatch, and the kernel entry points of the basic op families, which share this one
// header: elementwise (copy, fill, fill_random, unary, binary, where), reduce (reduce_rows, and
// softmax_rows of the softmax family), linalg (gemm) and shape (index_select, index_add). Every
// function exists twice with the same signature, gradstyle::cpu::X (src/cpu/<family>.cpp) and
// gradstyle::cuda::X (cuda/ops/<family>.cu); softmax_rows lives in the reduce files. The other
// families have their own src/backend/<family>_kernels.hpp (docs/adding-an-op.md).
// Op code calls GS_DISPATCH(device, X, args...) which picks one; in a build without CUDA the CUDA
// branch throws DeviceError and no CUDA symbol is referenced.
//
// Conventions: `out` views are dense (contiguous) unless stated; input views may have any
// strides, including 0 strides from broadcasting. Math kernels support f32 and f64.
#include "backend/view.hpp"
#if defined(GRADSTYLE_CUDA)
#include "backend/cuda_runtime.hpp"  // DeviceGuard
#endif

namespace gradstyle::backend {

enum class UnaryOp : int {
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Sign, Square, Relu, LeakyRelu /*p0=slope*/, Sigmoid, Tanh,
  Softplus /*p0=beta, p1=threshold*/, PowScalar /*p0=exponent*/, Clamp /*p0=lo, p1=hi*/,
  AddScalar /*p0*/, MulScalar /*p0*/, Reciprocal,
  // gradient helpers (still pure elementwise maps of one input)
  StepPositive /* x>0 ? 1 : 0 */, LeakyReluGrad /* x>0 ? 1 : p0 */,
  ClampMask /* lo<=x<=hi ? 1 : 0 with p0=lo,p1=hi */, Cos, Sin,
};
enum class BinaryOp : int {
  Add, Sub, Mul, Div, Maximum, Minimum, Pow,
  // comparisons produce 1/0 in the output dtype (or bool when out is boolean)
  Gt, Lt, Ge, Le, Eq, Ne,
};
enum class ReduceOp : int { Sum, Max, Min };

// Calls f(T{}) with T = float or double for the view's dtype; throws DTypeError naming op otherwise.
template <class F>
inline void float_dispatch(DType t, const char* op, F&& f) {
  if (t == DType::f32) return f(float{});
  if (t == DType::f64) return f(double{});
  throw DTypeError(err_msg(op, ": unsupported dtype ", dtype_name(t), " (float32 or float64 expected)"));
}

}  // namespace gradstyle::backend

#define GS_KERNEL_DECLS                                                                          \
  /* dst and src: same shape, any strides, any dtypes (converting copy) */                        \
  void copy(const backend::StridedView& dst, const backend::StridedView& src);                    \
  void fill(const backend::StridedView& dst, double value);                                       \
  /* fills a dense view with Philox numbers starting at counter offset */                         \
  void fill_random(const backend::StridedView& dst, uint64_t seed, uint64_t offset, bool normal); \
  void unary(backend::UnaryOp op, const backend::StridedView& out, const backend::StridedView& in,  \
             double p0, double p1);                                                               \
  void binary(backend::BinaryOp op, const backend::StridedView& out, const backend::StridedView& a, \
              const backend::StridedView& b);                                                     \
  /* out = cond != 0 ? a : b ; cond any dtype */                                                  \
  void where(const backend::StridedView& out, const backend::StridedView& cond,                   \
             const backend::StridedView& a, const backend::StridedView& b);                       \
  /* in: dense [outer, n] (the CPU kernel also takes any strides, read as [kept.., reduced..]); */ \
  /* out: dense [outer] */                                                                         \
  void reduce_rows(backend::ReduceOp op, const backend::StridedView& out,                         \
                   const backend::StridedView& in, int64_t outer, int64_t n);                     \
  /* C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b], row-major; batch strides in elements */    \
  void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,            \
            const backend::StridedView& a, int64_t lda, int64_t stride_a,                         \
            const backend::StridedView& b, int64_t ldb, int64_t stride_b, double beta,            \
            const backend::StridedView& c, int64_t ldc, int64_t stride_c, int64_t batch);         \
  /* softmax (or log-softmax) over rows of a dense [outer, n] view */                             \
  void softmax_rows(const backend::StridedView& out, const backend::StridedView& in,              \
                    int64_t outer, int64_t n, bool log);                                          \
  /* in viewed as [outer, n_in, inner], out as [outer, n_idx, inner] (dense), idx int64 */       \
  void index_select(const backend::StridedView& out, const backend::StridedView& in,              \
                    const backend::StridedView& idx, int64_t outer, int64_t n_in, int64_t inner); \
  /* out[outer, idx[j], inner] += src[outer, j, inner]; out dense and pre-initialised */          \
  void index_add(const backend::StridedView& out, const backend::StridedView& src,                \
                 const backend::StridedView& idx, int64_t outer, int64_t n_out, int64_t inner);

namespace gradstyle::cpu {
GS_KERNEL_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_KERNEL_DECLS
}  // namespace gradstyle::cuda
#endif

namespace gradstyle::backend {
[[noreturn]] void throw_no_cuda(const char* what);
}

#if defined(GRADSTYLE_CUDA)
// The CUDA branch makes the tensor's device current for the call (a temporary DeviceGuard lives
// to the end of the full expression), so the kernels, pool and handles of cuda:N are used.
#define GS_DISPATCH(dev, fn, ...)                                                               \
  ((dev).is_cuda() ? (::gradstyle::cuda::DeviceGuard((dev).index), ::gradstyle::cuda::fn(__VA_ARGS__)) \
                   : ::gradstyle::cpu::fn(__VA_ARGS__))
#else
#define GS_DISPATCH(dev, fn, ...) \
  ((dev).is_cuda() ? ::gradstyle::backend::throw_no_cuda(#fn) : ::gradstyle::cpu::fn(__VA_ARGS__))
#endif
