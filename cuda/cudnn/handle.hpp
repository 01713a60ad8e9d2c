#pragma once
// Private to cuda/: the cuDNN handle of the current device, created lazily on first use, bound
// to the library stream (gradstyle::cuda::stream()) and kept until process exit, like the
// cuBLAS handle in common/context.hpp. Keeps cudnn.h out of everything that does not need it.
struct cudnnContext;  // = *cudnnHandle_t

namespace gradstyle::cuda {

// Throws CudaError when no device can be used or cuDNN cannot be initialised.
cudnnContext* cudnn();

}  // namespace gradstyle::cuda
