#pragma once
// Internal: the CUDA runtime services the core needs (allocation from the stream-ordered pool,
// copies, device queries). Implemented in cuda/common/runtime.cu; never includes CUDA headers.
#include <cstddef>

namespace gradstyle::cuda {
int device_count();                      // 0 when no device or no driver
void* device_alloc(size_t nbytes);       // cudaMallocAsync on the current stream
void device_free(void* p) noexcept;      // cudaFreeAsync; never throws
void memcpy_h2d(void* dst, const void* src, size_t n);
void memcpy_d2h(void* dst, const void* src, size_t n);
void memcpy_d2d(void* dst, const void* src, size_t n);
void synchronize();
}  // namespace gradstyle::cuda
