#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12: false positives from avx512fintrin.h inlined into Eigen (PR 105593)
// CPU GEMM through Eigen (single-threaded Eigen kernels). Parallelism is ours: a batch is split
// across OpenMP threads, and a single large product is split into one block of output rows (or
// columns) per thread. Eigen's own OpenMP GEMM synchronises its threads many times per product
// with spin-waits; on a shared 2-core machine that made a 512^3 product ~8x slower with 2
// threads than with 1 (docs/perf.md), while one block per thread needs a single barrier.
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>

#include "backend/kernels.hpp"
#include "cpu/eigen_setup.hpp"

namespace gradstyle::cpu {

using backend::StridedView;

namespace {
template <class T>
void gemm_t(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, int64_t sa,
            const T* B, int64_t ldb, int64_t sb, T beta, T* C, int64_t ldc, int64_t sc, int64_t batch) {
  using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using CMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
  using MMap = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
  // C[i][r0:r0+rn, c0:c0+cn] = alpha * op(A[i])[r0:r0+rn, :] @ op(B[i])[:, c0:c0+cn] + beta * C.
  // Stored A is (ta ? k x m : m x k) row-major with leading dim lda; B likewise (k x n or n x k).
  auto block = [&](int64_t i, int64_t r0, int64_t rn, int64_t c0, int64_t cn) {
    const T* a0 = A + i * sa + (ta ? r0 : r0 * lda);
    const T* b0 = B + i * sb + (tb ? c0 * ldb : c0);
    CMap a(a0, ta ? k : rn, ta ? rn : k, Eigen::OuterStride<>(lda));
    CMap b(b0, tb ? cn : k, tb ? k : cn, Eigen::OuterStride<>(ldb));
    MMap c(C + i * sc + r0 * ldc + c0, rn, cn, Eigen::OuterStride<>(ldc));
    if (beta == T(0)) c.setZero();
    else c *= beta;
    if (!ta && !tb) c.noalias() += alpha * (a * b);
    else if (ta && !tb) c.noalias() += alpha * (a.transpose() * b);
    else if (!ta && tb) c.noalias() += alpha * (a * b.transpose());
    else c.noalias() += alpha * (a.transpose() * b.transpose());
  };
  // Eigen must not start its own OpenMP team inside a product (see above): we split the work.
  // cpu/eigen_setup.hpp sets Eigen single-threaded for the whole process before main()
  // (EIGEN_DONT_PARALLELIZE in one file would break the ODR of Eigen's inline GEMM templates).
  const double work = double(batch) * double(m) * double(n) * double(k);
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  // Small work stays on one thread: waking the team costs more than it saves.
  if (threads <= 1 || work < double(1 << 22)) {
    for (int64_t i = 0; i < batch; ++i) block(i, 0, m, 0, n);
    return;
  }
  if (batch >= threads) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < batch; ++i) block(i, 0, m, 0, n);
    return;
  }
  // Few large products: each thread takes one contiguous block of the larger output dim
  // (a multiple of 16 so that SIMD panels stay whole).
  const bool split_rows = m >= n;
  const int64_t len = split_rows ? m : n;
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t per = ((len + nt - 1) / nt + 15) / 16 * 16;
    const int64_t s0 = std::min(len, t * per), s1 = std::min(len, s0 + per);
    if (s0 < s1)
      for (int64_t i = 0; i < batch; ++i) {
        if (split_rows) block(i, s0, s1 - s0, 0, n);
        else block(i, 0, m, s0, s1 - s0);
      }
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
