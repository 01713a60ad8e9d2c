// CPU GEMM through Eigen. Row-major operands are mapped without copies; a batch is split across
// OpenMP threads (inside a parallel region Eigen runs single-threaded), a single product lets
// Eigen parallelise internally.
#include <Eigen/Core>

#include "backend/kernels.hpp"

namespace gradstyle::cpu {

using backend::StridedView;

namespace {
template <class T>
void gemm_t(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, int64_t sa,
            const T* B, int64_t ldb, int64_t sb, T beta, T* C, int64_t ldc, int64_t sc, int64_t batch) {
  using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using CMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
  using MMap = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
  auto one = [&](int64_t i) {
    // op(A) is m x k; stored A is (ta ? k x m : m x k) with leading dim lda.
    CMap a(A + i * sa, ta ? k : m, ta ? m : k, Eigen::OuterStride<>(lda));
    CMap b(B + i * sb, tb ? n : k, tb ? k : n, Eigen::OuterStride<>(ldb));
    MMap c(C + i * sc, m, n, Eigen::OuterStride<>(ldc));
    if (beta == T(0)) {
      if (!ta && !tb) c.noalias() = alpha * (a * b);
      else if (ta && !tb) c.noalias() = alpha * (a.transpose() * b);
      else if (!ta && tb) c.noalias() = alpha * (a * b.transpose());
      else c.noalias() = alpha * (a.transpose() * b.transpose());
    } else {
      c *= beta;
      if (!ta && !tb) c.noalias() += alpha * (a * b);
      else if (ta && !tb) c.noalias() += alpha * (a.transpose() * b);
      else if (!ta && tb) c.noalias() += alpha * (a * b.transpose());
      else c.noalias() += alpha * (a.transpose() * b.transpose());
    }
  };
  if (batch == 1) {
    one(0);
  } else {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < batch; ++i) one(i);
  }
}
}  // namespace

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const StridedView& a, int64_t lda,
          int64_t sa, const StridedView& b, int64_t ldb, int64_t sb, double beta, const StridedView& c,
          int64_t ldc, int64_t sc, int64_t batch) {
  if (c.dtype == DType::f32)
    return gemm_t<float>(ta, tb, m, n, k, float(alpha), static_cast<const float*>(a.data), lda, sa,
                         static_cast<const float*>(b.data), ldb, sb, float(beta), static_cast<float*>(c.data), ldc,
                         sc, batch);
  if (c.dtype == DType::f64)
    return gemm_t<double>(ta, tb, m, n, k, alpha, static_cast<const double*>(a.data), lda, sa,
                          static_cast<const double*>(b.data), ldb, sb, beta, static_cast<double*>(c.data), ldc, sc,
                          batch);
  throw DTypeError(err_msg("gemm: unsupported dtype ", dtype_name(c.dtype)));
}

}  // namespace gradstyle::cpu
