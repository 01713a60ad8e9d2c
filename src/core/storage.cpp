#include "gradstyle/core/storage.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "backend/cuda_runtime.hpp"
#include "backend/kernels.hpp"
#include "gradstyle/core/error.hpp"

namespace gradstyle {

namespace {
struct Meter {
  std::atomic<int64_t> current{0}, peak{0};
  void add(int64_t n) {
    int64_t c = current.fetch_add(n) + n;
    int64_t p = peak.load();
    while (c > p && !peak.compare_exchange_weak(p, c)) {
    }
  }
};
Meter& meter(DeviceType t) {
  static Meter m[2];
  return m[t == DeviceType::CPU ? 0 : 1];
}
}  // namespace

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  size_t n = nbytes == 0 ? 1 : nbytes;
  if (device.is_cpu()) {
    // 64-byte alignment for SIMD; aligned_alloc needs a multiple of the alignment.
    data_ = std::aligned_alloc(64, (n + 63) / 64 * 64);
    if (!data_) throw Error(err_msg("out of host memory allocating ", nbytes, " bytes"));
  } else {
#if defined(GRADSTYLE_CUDA)
    cuda::DeviceGuard guard(device.index);  // the pool of cuda:N, not the current device's
    data_ = cuda::device_alloc(n);
#else
    backend::throw_no_cuda("Storage");
#endif
  }
  meter(device.type).add(int64_t(nbytes));
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    std::free(data_);
  } else {
#if defined(GRADSTYLE_CUDA)
    try {
      cuda::DeviceGuard guard(device_.index);
      cuda::device_free(data_);
    } catch (...) {  // a destructor must not throw; the guard cannot fail for a device we allocated on
    }
#endif
  }
  meter(device_.type).add(-int64_t(nbytes_));
}

MemoryStats memory_stats(DeviceType t) {
  return {meter(t).current.load(), meter(t).peak.load()};
}
void reset_peak_memory(DeviceType t) { meter(t).peak.store(meter(t).current.load()); }

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
#if defined(GRADSTYLE_CUDA)
  if (dst_dev.is_cuda() && src_dev.is_cpu()) {
    cuda::DeviceGuard guard(dst_dev.index);
    return cuda::memcpy_h2d(dst, src, nbytes);
  }
  if (dst_dev.is_cpu() && src_dev.is_cuda()) {
    cuda::DeviceGuard guard(src_dev.index);
    return cuda::memcpy_d2h(dst, src, nbytes);
  }
  return cuda::memcpy_peer(dst, dst_dev.index, src, src_dev.index, nbytes);
#else
  backend::throw_no_cuda("copy_bytes");
#endif
}

namespace backend {
void throw_no_cuda(const char* what) {
  throw DeviceError(err_msg(what, ": a CUDA tensor was used but gradstyle was built without CUDA "
                            "(reconfigure with -Dcuda=enabled on a machine with nvcc)"));
}
}  // namespace backend

}  // namespace gradstyle
