// The one translation unit that compiles stb_image and stb_image_write. Everything is static
// (STB_*_STATIC) so no other library can clash with these symbols; only the wrappers in
// stb_wrap.hpp are visible. Decoders are limited to PNG, JPEG and BMP (FORMATS.md §9.1).
#include "stb_wrap.hpp"

#include <climits>
#include <cstring>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS 16384
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#pragma clang diagnostic ignored "-Wmissing-field-initializers"
#pragma clang diagnostic ignored "-Wsign-compare"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // stb internals, reported where inlined
#endif
#include <stb_image.h>
#include <stb_image_write.h>
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

namespace gradstyle::io::detail {

long inflate_zlib(ByteSpan in, uint8_t* out, size_t out_size) {
  if (in.size() > size_t(INT_MAX) || out_size > size_t(INT_MAX) || out_size == 0) return -1;
  return stbi_zlib_decode_buffer(reinterpret_cast<char*>(out), int(out_size), reinterpret_cast<const char*>(in.data()),
                                 int(in.size()));
}

bool stb_info(ByteSpan in, int format, int* w, int* h, int* comp, bool* is16) {
  if (in.size() > size_t(INT_MAX)) return false;
  const auto* p = reinterpret_cast<const stbi_uc*>(in.data());
  stbi__context s;
  stbi__start_mem(&s, p, int(in.size()));
  int ok = format == 0 ? stbi__png_info(&s, w, h, comp) : format == 1 ? stbi__jpeg_info(&s, w, h, comp)
                                                                      : stbi__bmp_info(&s, w, h, comp);
  if (!ok) return false;
  *is16 = stbi_is_16_bit_from_memory(p, int(in.size())) != 0;
  return true;
}

std::vector<uint8_t> stb_decode_rgb(ByteSpan in, int* w, int* h) {
  std::vector<uint8_t> out;
  if (in.size() > size_t(INT_MAX)) return out;
  int comp = 0;
  stbi_uc* px = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(in.data()), int(in.size()), w, h, &comp, 3);
  if (!px) return out;
  out.assign(px, px + size_t(*w) * size_t(*h) * 3);
  stbi_image_free(px);
  return out;
}

const char* stb_last_error() {
  const char* r = stbi_failure_reason();
  return r ? r : "unknown decoder error";
}

namespace {
void append_cb(void* ctx, void* data, int size) {
  auto* v = static_cast<std::vector<uint8_t>*>(ctx);
  const auto* p = static_cast<const uint8_t*>(data);
  v->insert(v->end(), p, p + size);
}
}  // namespace

std::vector<uint8_t> stb_encode_png(const uint8_t* rgb, int w, int h, int channels) {
  std::vector<uint8_t> out;
  if (!stbi_write_png_to_func(append_cb, &out, w, h, channels, rgb, w * channels)) out.clear();
  return out;
}

std::vector<uint8_t> stb_encode_jpeg(const uint8_t* rgb, int w, int h, int channels, int quality) {
  std::vector<uint8_t> out;
  if (!stbi_write_jpg_to_func(append_cb, &out, w, h, channels, rgb, quality)) out.clear();
  return out;
}

}  // namespace gradstyle::io::detail
