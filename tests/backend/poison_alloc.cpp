// NaN-poisoned CPU allocations for this test binary. Every CPU Storage is allocated with
// std::aligned_alloc; this definition replaces glibc's for the whole executable (the library is
// linked statically into it) and, while a PoisonScope is open, fills each fresh block with 0xFF
// bytes, which read as NaN in float32 and float64. An output element that a kernel forgets to
// write therefore stays NaN, and the runner's "no NaN out of NaN-free inputs" check fails.
#include "poison_alloc.hpp"

#include <atomic>
#include <cstring>
#include <limits>

namespace {
std::atomic<int> g_depth{0};
}

// AddressSanitizer owns the allocator (and poisons fresh memory itself): no replacement then.
#if defined(__SANITIZE_ADDRESS__)
#define GS_POISON_ALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GS_POISON_ALLOC 0
#endif
#endif
#ifndef GS_POISON_ALLOC
#define GS_POISON_ALLOC 1
#endif

#if GS_POISON_ALLOC
extern "C" void* __libc_memalign(size_t alignment, size_t size);

extern "C" void* aligned_alloc(size_t alignment, size_t size) noexcept {
  void* p = __libc_memalign(alignment, size);
  if (p && g_depth.load(std::memory_order_relaxed) > 0) std::memset(p, 0xFF, size);
  return p;
}
#endif

namespace gsbackend {

PoisonScope::PoisonScope() { g_depth.fetch_add(1); }
PoisonScope::~PoisonScope() { g_depth.fetch_sub(1); }

bool cpu_poison_built() { return GS_POISON_ALLOC != 0; }

bool cpu_poison_works() {
  PoisonScope s;
  Tensor t = Tensor::empty({7}, {DType::f32});
  for (float v : t.to_vector<float>())
    if (v == v) return false;
  return true;
}

void prepoison_device(Device d, const std::vector<size_t>& byte_sizes) {
  if (!d.is_cuda()) return;
  autograd::NoGradGuard ng;
  std::vector<Tensor> blocks;
  for (size_t b : byte_sizes)
    blocks.push_back(Tensor::full({int64_t((b + 3) / 4)}, std::numeric_limits<double>::quiet_NaN(), {DType::f32, d}));
  (void)blocks.back().cpu();  // the fills have run before the blocks go back to the pool
}

}  // namespace gsbackend
