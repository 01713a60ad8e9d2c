// libFuzzer target: safetensors header parsing and validation (rules 1-11), then copies.
#include <cstddef>
#include <cstdint>

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto h = gradstyle::io::parse_safetensors({data, size}, "fuzz.safetensors");
    // Offsets were validated to cover the buffer exactly: touching every byte must be safe.
    uint8_t acc = 0;
    for (const auto& e : h.tensors)
      for (uint64_t i = e.begin; i < e.end; ++i) acc ^= data[h.data_start + i];
    (void)acc;
  } catch (const gradstyle::Error&) {
  }
  return 0;
}
