// The per-device cuDNN handle (handle.hpp).
#include "handle.hpp"

#include <cudnn.h>

#include <atomic>
#include <mutex>

#include "../common/check.hpp"
#include "../common/context.hpp"
#include "gradstyle/core/error.hpp"

namespace gradstyle::cuda {

namespace {
constexpr int kMaxDevices = 64;
std::atomic<cudnnContext*> g_handles[kMaxDevices];
std::mutex g_mutex;  // guards creation only
}  // namespace

cudnnContext* cudnn() {
  int dev = 0;
  GS_CUDA_CHECK(cudaGetDevice(&dev));
  GS_CHECK(dev >= 0 && dev < kMaxDevices, CudaError, "CUDA device ", dev, " is beyond the supported ", kMaxDevices);
  cudnnContext* h = g_handles[dev].load(std::memory_order_acquire);
  if (h) return h;
  cudaStream_t s = stream();  // creates the device context first (outside our lock)
  std::lock_guard<std::mutex> lock(g_mutex);
  h = g_handles[dev].load(std::memory_order_relaxed);
  if (h) return h;
  cudnnHandle_t handle = nullptr;
  GS_CUDNN_CHECK(cudnnCreate(&handle));
  GS_CUDNN_CHECK(cudnnSetStream(handle, s));
  g_handles[dev].store(handle, std::memory_order_release);
  return handle;
}

}  // namespace gradstyle::cuda
