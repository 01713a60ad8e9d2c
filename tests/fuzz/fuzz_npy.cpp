// libFuzzer target: .npy header parsing / decoding and .npz archives.
#include <cstddef>
#include <cstdint>

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)gradstyle::io::parse_npy({data, size}, "fuzz.npy");
  } catch (const gradstyle::Error&) {
  }
  try {
    (void)gradstyle::io::parse_npz({data, size}, "fuzz.npz");
  } catch (const gradstyle::Error&) {
  }
  return 0;
}
