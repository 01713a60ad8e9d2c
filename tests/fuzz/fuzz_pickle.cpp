// libFuzzer target: the data-only pickle VM on its own (both persistent-id styles).
#include <cstddef>
#include <cstdint>

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/pickle.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gradstyle::io;
  static const std::string name = "fuzz.pkl", what = "data.pkl";
  PickleLimits lim;
  lim.max_stack = 100000;
  lim.max_memo = 100000;
  for (auto style : {PersistentIdStyle::Zip, PersistentIdStyle::Legacy}) {
    try {
      PickleResult r = unpickle({data, size}, 0, name, what, style, lim);
      (void)r.value->repr(300);
    } catch (const gradstyle::Error&) {
    }
  }
  return 0;
}
