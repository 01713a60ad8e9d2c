// libFuzzer target: zip central directory parsing, stored/deflated extraction and CRC checks.
#include <cstddef>
#include <cstdint>

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/zip.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    gradstyle::io::ZipArchive zip({data, size}, "fuzz.zip");
    for (const auto& e : zip.entries()) {
      try {
        if (e.size <= (16u << 20)) (void)zip.extract(e);
        zip.verify_crc(e);
      } catch (const gradstyle::Error&) {
      }
    }
  } catch (const gradstyle::Error&) {
  }
  return 0;
}
