#pragma once
// Internal wrappers around stb_image / stb_image_write, which are compiled (static, private) into
// stb_impl.cpp only: PNG, JPEG and BMP decoders, the PNG/JPEG encoders and stb's inflate (for PNG checks).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gradstyle/io/file.hpp"

namespace gradstyle::io::detail {

// stb's inflate of a zlib stream (2-byte header, as in PNG IDAT) into a fixed buffer: bytes
// produced, or -1 on error/overflow. Used only to check PNG data the way stb will decode it; zip
// members are inflated with zlib (zip.cpp).
long inflate_zlib(ByteSpan in, uint8_t* out, size_t out_size);

// Header-only query with the decoder of one format (0 PNG, 1 JPEG, 2 BMP), so that the failure
// reason is that decoder's. False when the header cannot be parsed.
bool stb_info(ByteSpan in, int format, int* w, int* h, int* comp, bool* is16);
// Decodes to 8-bit RGB (gray replicated, alpha dropped, 16-bit -> high byte). Empty on failure.
std::vector<uint8_t> stb_decode_rgb(ByteSpan in, int* w, int* h);
const char* stb_last_error();

std::vector<uint8_t> stb_encode_png(const uint8_t* rgb, int w, int h, int channels);
std::vector<uint8_t> stb_encode_jpeg(const uint8_t* rgb, int w, int h, int channels, int quality);

}  // namespace gradstyle::io::detail
