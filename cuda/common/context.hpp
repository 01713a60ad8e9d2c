#pragma once
// Private to cuda/: the per-device library context. All gradstyle GPU work of a device runs in
// order on ONE non-blocking stream, so kernels, cuBLAS/cuDNN calls, copies and the stream-ordered
// allocator (cudaMallocAsync/cudaFreeAsync) never need events between them. Everything is created
// lazily on first use for the current device (cudaGetDevice) and lives until process exit (never
// destroyed, so tensors freed during static destruction stay safe).
#include <cuda_runtime_api.h>

struct cublasContext;  // = *cublasHandle_t; keeps cublas_v2.h out of kernel files

namespace gradstyle::cuda {

// The library stream of the current device. Throws CudaError if no device can be used.
cudaStream_t stream();
// The cuBLAS handle of the current device, bound to stream().
cublasContext* cublas();
// Multiprocessor count of the current device (for grid sizing).
int sm_count();
// Waits for the current device's stream and returns the pool's unused cached blocks to the
// driver, so that allocations outside the pool (cuBLAS/cuDNN internals) can succeed after a peak.
void trim_memory_pool();

}  // namespace gradstyle::cuda
