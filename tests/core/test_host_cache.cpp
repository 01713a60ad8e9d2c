// The host block cache behind CPU storages (core/storage.hpp): a freed block of 64 KiB or more is
// handed to the next request it fits (within 1.25x), never to two live storages, small blocks are
// not cached, the limit bounds what is kept (oldest first out), and empty_host_cache returns it all.
#include <doctest/doctest.h>

#include <cstring>
#include <set>

#include "gradstyle/core/storage.hpp"
#include "gradstyle/core/tensor.hpp"

using namespace gradstyle;

namespace {
// Restores the limit (and empties the cache) whatever a case did.
struct LimitGuard {
  size_t saved = host_cache_limit();
  LimitGuard() { empty_host_cache(); }
  ~LimitGuard() {
    set_host_cache_limit(saved);
    empty_host_cache();
  }
};
int64_t cached() { return memory_stats(DeviceType::CPU).cached_bytes; }
}  // namespace

TEST_CASE("core/host_cache: a freed block serves the next request of its size, and only one storage at a time") {
  LimitGuard g;
  set_host_cache_limit(size_t(256) << 20);
  void* first = nullptr;
  {
    Storage s(1 << 20, Device::cpu());
    first = s.data();
    std::memset(s.data(), 1, s.nbytes());
  }
  CHECK(cached() == (1 << 20));
  {
    Storage a(1 << 20, Device::cpu());  // takes the cached block
    CHECK(a.data() == first);
    CHECK(cached() == 0);
    Storage b(1 << 20, Device::cpu());  // the cache is empty: a block of its own
    CHECK(b.data() != a.data());
    // Sizes within 1.25x share a block; a much smaller request does not take a big one.
  }
  CHECK(cached() == 2 * (1 << 20));
  {
    Storage c((1 << 20) - 4096 * 10, Device::cpu());  // within 1.25x of a cached 1 MiB block: takes one
    CHECK(cached() == (1 << 20));
    CHECK(c.nbytes() == (1 << 20) - 4096 * 10);
  }
  {
    Storage small(300 << 10, Device::cpu());  // 300 KiB: 1 MiB is more than 1.25x of it
    CHECK(cached() == 2 * (1 << 20));
  }
  // Many live storages of one size never share a block.
  {
    std::vector<std::unique_ptr<Storage>> live;
    std::set<void*> seen;
    for (int i = 0; i < 8; ++i) {
      live.push_back(std::make_unique<Storage>(size_t(1) << 20, Device::cpu()));
      CHECK(seen.insert(live.back()->data()).second);
    }
  }
  empty_host_cache();
  CHECK(cached() == 0);
}

TEST_CASE("core/host_cache: small blocks bypass it; the limit bounds it, oldest out; 0 turns it off") {
  LimitGuard g;
  { Storage s(1000, Device::cpu()); }
  { Tensor t = Tensor::zeros({100}); }
  CHECK(cached() == 0);
  set_host_cache_limit(size_t(3) << 20);
  { Storage a(1 << 20, Device::cpu()), b(1 << 20, Device::cpu()), c(1 << 20, Device::cpu()), d(1 << 20, Device::cpu()); }
  CHECK(cached() == 3 << 20);  // four freed, the first one evicted
  { Storage big(size_t(8) << 20, Device::cpu()); }  // larger than the limit: freed at once
  CHECK(cached() == 3 << 20);
  set_host_cache_limit(0);
  CHECK(cached() == 0);
  { Storage a(1 << 20, Device::cpu()); }
  CHECK(cached() == 0);
  // Tensors see nothing of it: values survive, fresh tensors are written before they are read.
  set_host_cache_limit(size_t(64) << 20);
  Tensor x = Tensor::full({512, 512}, 3.0);
  { Tensor y = Tensor::full({512, 512}, 7.0); }
  Tensor z = Tensor::zeros({512, 512});
  CHECK(x.sum().item() == doctest::Approx(3.0 * 512 * 512));
  CHECK(z.sum().item() == 0.0);
}
