#include "gradstyle/core/device.hpp"

#include "backend/cuda_runtime.hpp"
#include "gradstyle/core/error.hpp"

namespace gradstyle {

Device Device::parse(const std::string& s) {
  if (s == "cpu") return Device::cpu();
  if (s == "cuda") return Device::cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    std::string idx = s.substr(5);
    bool digits = !idx.empty() && idx.size() < 4;
    for (char c : idx) digits = digits && c >= '0' && c <= '9';
    if (digits) return Device::cuda(std::stoi(idx));
  }
  throw ValueError(err_msg("unknown device '", s, "' (expected cpu, cuda or cuda:N)"));
}

bool cuda_built() {
#if defined(GRADSTYLE_CUDA)
  return true;
#else
  return false;
#endif
}

bool cuda_available() {
#if defined(GRADSTYLE_CUDA)
  static const bool avail = cuda::device_count() > 0;
  return avail;
#else
  return false;
#endif
}

}  // namespace gradstyle
