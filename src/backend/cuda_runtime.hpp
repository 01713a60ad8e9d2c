#pragma once
// Internal: the CUDA runtime services the core needs (allocation from the stream-ordered pool,
// copies, device queries, the device guard). Implemented in cuda/common/runtime.cu; never
// includes CUDA headers.
//
// Every function below works on the CURRENT device (its stream, pool and handles); the device of a
// tensor is made current by a DeviceGuard, which GS_DISPATCH (backend/kernels.hpp) and the storage
// (src/core/storage.cpp) put around every launch, allocation, free and copy.
#include <cstddef>

namespace gradstyle::cuda {

int device_count();                      // 0 when no device or no driver (queried once)
void* device_alloc(size_t nbytes);       // cudaMallocAsync on the current stream; on OOM trims the pool and retries once
void device_free(void* p) noexcept;      // cudaFreeAsync; never throws
void memcpy_h2d(void* dst, const void* src, size_t n);
void memcpy_d2h(void* dst, const void* src, size_t n);
void memcpy_d2d(void* dst, const void* src, size_t n);  // both on the current device
// dst on device dst_index, src on device src_index (may differ): ordered after the work queued
// on both devices, complete on return when the devices differ.
void memcpy_peer(void* dst, int dst_index, const void* src, int src_index, size_t n);
void synchronize();                      // waits for the current device's library stream

// Makes CUDA device `index` current for the guard's lifetime and restores the previous current
// device on destruction. Throws DeviceError when `index` is not a visible device (so "cuda:3" on
// a one-GPU machine fails clearly instead of running on GPU 0).
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = -1;  // device to restore, -1 when the current one was already `index`
};

}  // namespace gradstyle::cuda
