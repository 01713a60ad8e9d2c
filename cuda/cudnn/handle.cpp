// The per-device pools of cuDNN handles (handle.hpp).
#include "handle.hpp"

#include <cudnn.h>

#include <mutex>
#include <vector>

#include "../common/check.hpp"
#include "../common/context.hpp"
#include "gradstyle/core/error.hpp"

namespace gradstyle::cuda {

namespace {
constexpr int kMaxDevices = 64;
std::mutex g_mutex;                        // guards the free lists
std::vector<cudnnContext*> g_free[kMaxDevices];  // idle handles per device (never destroyed)
}  // namespace

CudnnLease::CudnnLease() {
  GS_CUDA_CHECK(cudaGetDevice(&device_));
  GS_CHECK(device_ >= 0 && device_ < kMaxDevices, CudaError, "CUDA device ", device_, " is beyond the supported ",
           kMaxDevices);
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_free[device_].empty()) {
      handle_ = g_free[device_].back();
      g_free[device_].pop_back();
      return;
    }
  }
  cudaStream_t s = stream();  // creates the device context first
  cudnnHandle_t h = nullptr;
  GS_CUDNN_CHECK(cudnnCreate(&h));
  const cudnnStatus_t st = cudnnSetStream(h, s);
  if (st != CUDNN_STATUS_SUCCESS) {
    cudnnDestroy(h);
    GS_CUDNN_CHECK(st);
  }
  handle_ = h;
}

CudnnLease::~CudnnLease() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_free[device_].push_back(handle_);
}

}  // namespace gradstyle::cuda
