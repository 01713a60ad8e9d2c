#pragma once
// Internal helpers for the parsers: overflow-checked arithmetic and a bounds-checked little-endian
// cursor. Every failure throws FormatError whose message starts with the quoted file name.
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/file.hpp"

namespace gradstyle::io::detail {

inline bool add_ok(uint64_t a, uint64_t b, uint64_t* r) { return !__builtin_add_overflow(a, b, r); }
inline bool mul_ok(uint64_t a, uint64_t b, uint64_t* r) { return !__builtin_mul_overflow(a, b, r); }

inline uint16_t rd16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t rd32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline uint64_t rd64(const uint8_t* p) { return uint64_t(rd32(p)) | (uint64_t(rd32(p + 4)) << 32); }
inline void wr16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v); p[1] = uint8_t(v >> 8); }
inline void wr32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i)); }
inline void wr64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i)); }

// True when [off, off+len) lies inside a buffer of `size` bytes (overflow-safe).
inline bool in_range(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

[[noreturn]] inline void fail(const std::string& name, const std::string& reason) {
  throw FormatError(quoted(name) + ": " + reason);
}

// Sequential bounds-checked reader over a byte span.
class Cursor {
 public:
  Cursor(ByteSpan d, size_t pos, const std::string& name, const char* what)
      : d_(d), pos_(pos), name_(name), what_(what) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return pos_ <= d_.size() ? d_.size() - pos_ : 0; }
  bool at_end() const { return pos_ >= d_.size(); }
  const uint8_t* take(uint64_t n) {
    if (n > remaining())
      fail(name_, err_msg("truncated ", what_, ": needs ", n, " bytes at offset ", pos_, " but only ",
                          remaining(), " remain"));
    const uint8_t* p = d_.data() + pos_;
    pos_ += size_t(n);
    return p;
  }
  uint8_t u8() { return *take(1); }
  uint16_t u16() { return rd16(take(2)); }
  uint32_t u32() { return rd32(take(4)); }
  uint64_t u64() { return rd64(take(8)); }

 private:
  ByteSpan d_;
  size_t pos_;
  const std::string& name_;
  const char* what_;
};

}  // namespace gradstyle::io::detail
