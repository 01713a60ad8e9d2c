#pragma once
// Private to cuda/: cuDNN handles of the current device, bound to the library stream
// (gradstyle::cuda::stream()) and kept until process exit, like the cuBLAS handle in
// common/context.hpp. cuDNN allows several host threads only on DIFFERENT handles, so each call
// leases a handle of its own from a per-device free list (at most one handle per thread running
// cuDNN at the same time). Keeps cudnn.h out of everything that does not need it.
struct cudnnContext;  // = *cudnnHandle_t

namespace gradstyle::cuda {

// A cuDNN handle of the current device, used by this thread alone until the lease ends.
// Throws CudaError when no device can be used or cuDNN cannot be initialised.
class CudnnLease {
 public:
  CudnnLease();
  ~CudnnLease();
  CudnnLease(const CudnnLease&) = delete;
  CudnnLease& operator=(const CudnnLease&) = delete;
  cudnnContext* get() const { return handle_; }

 private:
  int device_ = 0;
  cudnnContext* handle_ = nullptr;
};

}  // namespace gradstyle::cuda
