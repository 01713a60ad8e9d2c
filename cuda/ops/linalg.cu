// CUDA GEMM through cuBLAS (same contract as src/cpu/linalg.cpp): row-major, optionally transposed
// operands, strided batches (a batch stride of 0 broadcasts one matrix over the batch).
//
// cuBLAS is column-major. A row-major matrix with leading dim ld is the column-major transpose
// with the same ld, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: cuBLAS's "A" is our
// B, its "B" our A, and m/n swap. float32 uses exact FP32 compute unless allow_tf32() is on.
#include <cublas_v2.h>

#include <climits>

#include "backend/kernels.hpp"
#include "gradstyle/core/settings.hpp"
#include "../common/launch.cuh"

namespace gradstyle::cuda {

using backend::StridedView;

namespace {

// C[b] = beta == 0 ? 0 : beta * C[b] for an [m, n] matrix with leading dim ldc (the k == 0 case,
// where cuBLAS's behaviour is not specified; beta == 0 must not read C, which may hold NaN).
template <class T>
__global__ void scale_c_kernel(T* c, int64_t m, int64_t n, int64_t ldc, int64_t sc, int64_t batch, T beta) {
  const int64_t total = batch * m * n;
  GS_GRID_LOOP(t, total) {
    const int64_t row = t / n, j = t - row * n;
    const int64_t b = row / m, i = row - b * m;
    T* p = c + b * sc + i * ldc + j;
    *p = beta == T(0) ? T(0) : beta * *p;
  }
}

int to_int(int64_t v, const char* what) {
  GS_CHECK(v >= 0 && v <= INT_MAX, ValueError, "gemm (cuda): ", what, " = ", v, " does not fit cuBLAS's int");
  return int(v);
}

}  // namespace

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const StridedView& a, int64_t lda,
          int64_t sa, const StridedView& b, int64_t ldb, int64_t sb, double beta, const StridedView& c, int64_t ldc,
          int64_t sc, int64_t batch) {
  GS_CHECK(c.dtype == DType::f32 || c.dtype == DType::f64, DTypeError, "gemm (cuda): unsupported dtype ",
           dtype_name(c.dtype));
  GS_CHECK(a.dtype == c.dtype && b.dtype == c.dtype, DTypeError, "gemm (cuda): dtypes ", dtype_name(a.dtype), ", ",
           dtype_name(b.dtype), " -> ", dtype_name(c.dtype));
  if (m == 0 || n == 0 || batch == 0) return;
  const bool f32 = c.dtype == DType::f32;
  if (k == 0) {
    cudaStream_t s = stream();
    if (f32)
      scale_c_kernel<float><<<grid_for(batch * m * n), kBlock, 0, s>>>(static_cast<float*>(c.data), m, n, ldc, sc, batch,
                                                                        float(beta));
    else
      scale_c_kernel<double><<<grid_for(batch * m * n), kBlock, 0, s>>>(static_cast<double*>(c.data), m, n, ldc, sc,
                                                                         batch, beta);
    GS_CUDA_CHECK_LAUNCH("scale_c_kernel");
    return;
  }
  const int cm = to_int(n, "n"), cn = to_int(m, "m"), ck = to_int(k, "k");
  const int clda = to_int(ldb, "ldb"), cldb = to_int(lda, "lda"), cldc = to_int(ldc, "ldc");
  const int cbatch = to_int(batch, "batch");
  const cublasOperation_t op_a = tb ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS A = our B
  const cublasOperation_t op_b = ta ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS B = our A
  cublasHandle_t h = cublas();
  auto run = [&] {
    if (f32) {
      const float al = float(alpha), be = float(beta);
      const cublasComputeType_t compute = allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
      return cublasGemmStridedBatchedEx(h, op_a, op_b, cm, cn, ck, &al, b.data, CUDA_R_32F, clda, sb, a.data,
                                        CUDA_R_32F, cldb, sa, &be, c.data, CUDA_R_32F, cldc, sc, cbatch, compute,
                                        CUBLAS_GEMM_DEFAULT);
    }
    return cublasGemmStridedBatchedEx(h, op_a, op_b, cm, cn, ck, &alpha, b.data, CUDA_R_64F, clda, sb, a.data,
                                      CUDA_R_64F, cldb, sa, &beta, c.data, CUDA_R_64F, cldc, sc, cbatch,
                                      CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT);
  };
  cublasStatus_t st = run();
  if (st == CUBLAS_STATUS_ALLOC_FAILED) {
    // cuBLAS allocates its workspace with cudaMalloc, outside our pool: after a peak the memory may
    // sit in the pool's cache. Give it back and try once more (nothing was written on failure).
    trim_memory_pool();
    st = run();
  }
  GS_CUBLAS_CHECK(st);
}

}  // namespace gradstyle::cuda
