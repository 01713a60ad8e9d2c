// libFuzzer target: PyTorch .pt end to end (sniffing, zip directory, legacy stream, pickle VM,
// storage resolution, view materialisation).
#include <cstddef>
#include <cstdint>

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/torch_pt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gradstyle::io::PtLoadOptions opts;
  opts.max_tensor_bytes = 16 << 20;  // keep each run small; the limit itself is what is tested
  opts.verify_crc = size % 2 == 0;
  try {
    auto ck = gradstyle::io::parse_pt({data, size}, "fuzz.pt", opts);
    (void)ck.root_value().repr(200);
    (void)ck.flat_tensors();
  } catch (const gradstyle::Error&) {
  }
  return 0;
}
