#pragma once
// A Storage is one owned allocation on one device. Tensors share storages through shared_ptr and
// view into them with (offset, shape, strides). Device buffers are move-only; the CUDA ones come
// from a stream-ordered pool (cudaMallocAsync) implemented in cuda/common.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "gradstyle/core/device.hpp"

namespace gradstyle {

class Storage {
 public:
  Storage(size_t nbytes, Device device);  // allocates (uninitialised)
  ~Storage();                             // never throws
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};
using StoragePtr = std::shared_ptr<Storage>;

// Bytes currently allocated by gradstyle storages, per device type (a simple memory meter).
struct MemoryStats {
  int64_t current_bytes = 0;
  int64_t peak_bytes = 0;
};
MemoryStats memory_stats(DeviceType t);
void reset_peak_memory(DeviceType t);

// Raw copies between devices (used by Tensor::to). Synchronous with respect to the host.
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes);

}  // namespace gradstyle
