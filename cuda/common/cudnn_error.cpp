// The cuDNN half of the error helpers (check.hpp), separate so that code using no cuDNN does not
// pull cuDNN symbols in from the static library.
#include <cudnn.h>

#include "check.hpp"
#include "gradstyle/core/error.hpp"

namespace gradstyle::cuda::detail {

void throw_cudnn_error(int status, const char* stmt, const char* file, int line) {
  throw CudaError(err_msg("cuDNN error ", status, " (", cudnnGetErrorString(static_cast<cudnnStatus_t>(status)),
                          ") in `", stmt, "` at ", file, ":", line));
}

}  // namespace gradstyle::cuda::detail
