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
  size_t capacity_ = 0;  // bytes of the block (host blocks come from the cache, rounded up)
  Device device_;
};
using StoragePtr = std::shared_ptr<Storage>;

// Bytes currently allocated by gradstyle storages, per device type (a simple memory meter).
// cached_bytes: host blocks freed by storages and kept for reuse (below).
struct MemoryStats {
  int64_t current_bytes = 0;
  int64_t peak_bytes = 0;
  int64_t cached_bytes = 0;
};
MemoryStats memory_stats(DeviceType t);
void reset_peak_memory(DeviceType t);

// The host block cache. Host storages of 64 KiB and more take their memory from a cache of freed
// blocks (the smallest free block of at least the size and at most 1.25x it, sizes rounded up to
// 4 KiB) instead of the C allocator: glibc serves such sizes with fresh mmap()s, and faulting their
// pages in again on every forward pass cost 14 % of a StyleGAN2 256 px forward and 27 % of a
// discriminator forward + backward on this project's machine (docs/perf.md). The cache holds at
// most a limit of bytes (default 4 GiB; $GRADSTYLE_HOST_CACHE_MB at start-up, 0 turns caching
// off); blocks that would exceed it are freed, oldest first. Thread-safe.
void set_host_cache_limit(size_t bytes);
size_t host_cache_limit();
void empty_host_cache();  // frees every cached block

// Raw copies between devices (used by Tensor::to). Synchronous with respect to the host.
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes);

}  // namespace gradstyle
