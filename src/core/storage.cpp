#include "gradstyle/core/storage.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <new>
#include <vector>

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

constexpr size_t kCacheMin = size_t(64) << 10;  // smaller blocks: the C allocator's own bins serve them well
constexpr size_t kPage = 4096;

void* host_alloc(size_t n) {
  // 64-byte alignment for SIMD; aligned_alloc needs a multiple of the alignment.
  void* p = std::aligned_alloc(64, (n + 63) / 64 * 64);
  if (!p) throw Error(err_msg("out of host memory allocating ", n, " bytes"));
  return p;
}

// Freed host blocks by size; insertion order kept for eviction (oldest first).
class HostCache {
 public:
  static HostCache& get() {
    static HostCache* c = new HostCache();  // never destroyed: storages may die during static destruction
    return *c;
  }
  // A block of at least n bytes (its size in *cap), from the cache when one fits.
  void* take(size_t n, size_t* cap) {
    if (n < kCacheMin) {
      *cap = n;
      return host_alloc(n);
    }
    n = (n + kPage - 1) / kPage * kPage;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = by_size_.lower_bound(n);
      if (it != by_size_.end() && it->first <= n + n / 4) {
        void* p = it->second.block;
        *cap = it->first;
        order_.erase(it->second.age);
        by_size_.erase(it);
        cached_ -= *cap;
        return p;
      }
    }
    *cap = n;
    try {
      return host_alloc(n);
    } catch (const Error&) {
      empty();  // give the cache back to the system and try once more
      return host_alloc(n);
    }
  }
  void give(void* p, size_t cap) {
    if (cap < kCacheMin) return std::free(p);
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cap > limit_) {
        evicted.push_back(p);
      } else {
        while (cached_ + cap > limit_ && !order_.empty()) {
          auto victim = order_.front();
          order_.pop_front();
          evicted.push_back(victim->second.block);
          cached_ -= victim->first;
          by_size_.erase(victim);
        }
        auto it = by_size_.emplace(cap, Entry{p, {}});
        order_.push_back(it);
        it->second.age = std::prev(order_.end());
        cached_ += cap;
      }
    }
    for (void* q : evicted) std::free(q);
  }
  void empty() {
    std::vector<void*> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [n, e] : by_size_) all.push_back(e.block);
      by_size_.clear();
      order_.clear();
      cached_ = 0;
    }
    for (void* q : all) std::free(q);
  }
  void set_limit(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      limit_ = bytes;
    }
    if (cached() > bytes) empty();
  }
  size_t limit() {
    std::lock_guard<std::mutex> lock(mu_);
    return limit_;
  }
  size_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

 private:
  struct Entry;
  using Map = std::multimap<size_t, Entry>;
  struct Entry {
    void* block;
    std::list<Map::iterator>::iterator age;
  };
  HostCache() {
    if (const char* e = std::getenv("GRADSTYLE_HOST_CACHE_MB"); e && *e) {
      char* end = nullptr;
      const double mb = std::strtod(e, &end);
      if (end && *end == '\0' && mb >= 0) limit_ = size_t(mb * 1048576.0);
    }
  }
  std::mutex mu_;
  Map by_size_;
  std::list<Map::iterator> order_;
  size_t cached_ = 0;
  size_t limit_ = size_t(4) << 30;
};
}  // namespace

void set_host_cache_limit(size_t bytes) { HostCache::get().set_limit(bytes); }
size_t host_cache_limit() { return HostCache::get().limit(); }
void empty_host_cache() { HostCache::get().empty(); }

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  size_t n = nbytes == 0 ? 1 : nbytes;
  if (device.is_cpu()) {
    data_ = HostCache::get().take(n, &capacity_);
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
    HostCache::get().give(data_, capacity_);
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
  return {meter(t).current.load(), meter(t).peak.load(),
          t == DeviceType::CPU ? int64_t(HostCache::get().cached()) : int64_t(0)};
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
