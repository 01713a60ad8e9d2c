// libFuzzer target: the image wrapper (format check, header limits, stb PNG/JPEG/BMP decoding)
// and the resizer on whatever decodes.
#include <cstddef>
#include <cstdint>

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gradstyle::io::ImageLoadOptions opts;
  opts.max_dimension = 4096;
  opts.max_pixels = 1 << 20;  // bounded work per input
  try {
    auto img = gradstyle::io::decode_image({data, size}, "fuzz.img", opts);
    if (img.width <= 512 && img.height <= 512) (void)gradstyle::io::resize_pil(img, 7, 5);
  } catch (const gradstyle::Error&) {
  }
  return 0;
}
