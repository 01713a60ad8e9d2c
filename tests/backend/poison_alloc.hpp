#pragma once
// Poisoned outputs for ops that have no out-variant: see poison_alloc.cpp.
#include <cstddef>
#include <vector>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/tensor.hpp"

namespace gsbackend {

using namespace gradstyle;

// While one is alive, every new CPU tensor storage starts filled with NaN.
class PoisonScope {
 public:
  PoisonScope();
  ~PoisonScope();
  PoisonScope(const PoisonScope&) = delete;
  PoisonScope& operator=(const PoisonScope&) = delete;
};

// True when the replacement allocator is in effect (checked by a test, so the poisoning cannot
// silently stop working).
bool cpu_poison_works();
// False under AddressSanitizer, whose allocator is left alone.
bool cpu_poison_built();

// CUDA storages come from the stream-ordered pool, which this binary cannot intercept. Best
// effort: allocate NaN-filled blocks of these sizes and free them, so the pool's next blocks of
// those sizes (the op's outputs) most likely start as NaN.
void prepoison_device(Device d, const std::vector<size_t>& byte_sizes);

}  // namespace gsbackend
