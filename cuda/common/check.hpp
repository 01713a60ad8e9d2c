#pragma once
// Private to cuda/: error checking for CUDA runtime, cuBLAS and cuDNN calls. Every failure becomes
// a gradstyle::CudaError whose message names the failing statement, the error, file and line:
//
//   GS_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, s));
//   my_kernel<<<grid, block, 0, s>>>(...);
//   GS_CUDA_CHECK_LAUNCH("my_kernel");
//
// The throwing helpers live in runtime.cu / cudnn_error.cpp so this header needs no cuBLAS or
// cuDNN headers (their success codes are 0, compared as int).
#include <cuda_runtime_api.h>

namespace gradstyle::cuda::detail {
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* stmt, const char* file, int line);
[[noreturn]] void throw_cublas_error(int status, const char* stmt, const char* file, int line);
[[noreturn]] void throw_cudnn_error(int status, const char* stmt, const char* file, int line);
}  // namespace gradstyle::cuda::detail

#define GS_CUDA_CHECK(stmt)                                                                 \
  do {                                                                                      \
    cudaError_t gs_err_ = (stmt);                                                           \
    if (gs_err_ != cudaSuccess)                                                             \
      ::gradstyle::cuda::detail::throw_cuda_error(gs_err_, #stmt, __FILE__, __LINE__);      \
  } while (0)

#define GS_CUBLAS_CHECK(stmt)                                                               \
  do {                                                                                      \
    int gs_st_ = static_cast<int>(stmt);                                                    \
    if (gs_st_ != 0) ::gradstyle::cuda::detail::throw_cublas_error(gs_st_, #stmt, __FILE__, __LINE__); \
  } while (0)

#define GS_CUDNN_CHECK(stmt)                                                                \
  do {                                                                                      \
    int gs_st_ = static_cast<int>(stmt);                                                    \
    if (gs_st_ != 0) ::gradstyle::cuda::detail::throw_cudnn_error(gs_st_, #stmt, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: reports launch-configuration errors (and any earlier asynchronous fault).
#define GS_CUDA_CHECK_LAUNCH(name)                                                          \
  do {                                                                                      \
    cudaError_t gs_err_ = cudaGetLastError();                                               \
    if (gs_err_ != cudaSuccess)                                                             \
      ::gradstyle::cuda::detail::throw_cuda_error(gs_err_, "launch of " name, __FILE__, __LINE__); \
  } while (0)
