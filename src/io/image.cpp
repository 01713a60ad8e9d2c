// Image decoding/encoding (stb), tensor conversion and grids. FORMATS.md §9.
#include "gradstyle/io/image.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "checked.hpp"
#include "gradstyle/io/zip.hpp"  // crc32
#include "stb_wrap.hpp"

namespace gradstyle::io {

using detail::fail;

Image Image::blank(int width, int height, int channels, uint8_t value) {
  Image im;
  im.width = width;
  im.height = height;
  im.channels = channels;
  im.pixels.assign(size_t(width) * size_t(height) * size_t(channels), value);
  return im;
}

namespace {

enum class ImgKind { Png, Jpeg, Bmp, Other };

ImgKind image_kind(ByteSpan d) {
  if (d.size() >= 8 && std::memcmp(d.data(), "\x89PNG\r\n\x1a\n", 8) == 0) return ImgKind::Png;
  if (d.size() >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return ImgKind::Jpeg;
  if (d.size() >= 2 && d[0] == 'B' && d[1] == 'M') return ImgKind::Bmp;
  return ImgKind::Other;
}

// Walks the JPEG marker segments before stb sees the file: every segment must fit, the file must
// reach its end-of-image marker (stb fills missing data with zeros instead of failing), and each
// DHT table may hold at most 256 codes (stb_image 2.27 does not check this and writes past its
// Huffman tables; found by tests/fuzz/fuzz_image).
void check_jpeg_structure(ByteSpan d, const std::string& name) {
  size_t pos = 2, n = d.size(), scans = 0;
  while (pos < n) {
    if (d[pos] != 0xFF) fail(name, err_msg("corrupt JPEG: expected a marker at offset ", pos));
    while (pos < n && d[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) break;
    uint8_t m = d[pos++];
    if (m == 0xD9) return;                                  // EOI
    if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;    // no length
    if (m == 0x00 || m == 0xD8) fail(name, err_msg("corrupt JPEG: unexpected marker 0x", std::hex, int(m), " at offset ", std::dec, pos - 1));
    if (n - pos < 2) break;
    size_t len = size_t(d[pos]) << 8 | d[pos + 1];
    if (len < 2 || len > n - pos) fail(name, err_msg("truncated JPEG: segment 0x", std::hex, int(m), std::dec, " at offset ", pos, " runs past the end"));
    if (m == 0xC4) {  // DHT: one or more tables of 1 + 16 + sum(counts) bytes
      size_t p = pos + 2, end = pos + len;
      while (p < end) {
        if (end - p < 17) fail(name, "corrupt JPEG: bad DHT header");
        size_t codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += d[p + i];
        if (codes > 256 || codes > end - p - 17) fail(name, err_msg("corrupt JPEG: bad DHT header (", codes, " codes)"));
        p += 17 + codes;
      }
    }
    pos += len;
    if (m == 0xDA && ++scans > 100)  // every scan walks the whole image: bound the work
      fail(name, "corrupt JPEG: more than 100 scans");
    if (m == 0xDA) {  // entropy-coded data until the next marker (FF00 and RSTn are data)
      while (pos + 1 < n && !(d[pos] == 0xFF && d[pos + 1] != 0x00 && !(d[pos + 1] >= 0xD0 && d[pos + 1] <= 0xD7))) ++pos;
      if (pos + 1 >= n) break;
    }
  }
  fail(name, "truncated JPEG (no end-of-image marker)");
}

// Walks the PNG chunks before stb sees the file: every chunk lies inside the file (stb grows its
// IDAT buffer from the declared chunk length before reading it; found by tests/fuzz/fuzz_image),
// CRCs match, IEND is present, and the image data inflates to no more than the IHDR size implies
// (stb's inflate would otherwise grow its output without bound: a decompression bomb).
void check_png_structure(ByteSpan d, const std::string& name, int64_t max_pixels) {
  size_t pos = 8, n = d.size();
  bool seen_ihdr = false;
  uint32_t w = 0, h = 0;
  uint8_t depth = 0, color = 0, interlace = 0;
  std::vector<uint8_t> idat;
  while (true) {
    if (n - pos < 12) fail(name, "truncated PNG (no IEND chunk)");
    uint32_t len = uint32_t(d[pos]) << 24 | uint32_t(d[pos + 1]) << 16 | uint32_t(d[pos + 2]) << 8 | d[pos + 3];
    const uint8_t* type = &d[pos + 4];
    if (len > 0x7FFFFFFFu || len > n - pos - 12)
      fail(name, err_msg("truncated or corrupt PNG: chunk '", std::string(reinterpret_cast<const char*>(type), 4),
                         "' of ", len, " bytes at offset ", pos, " runs past the end of the file"));
    const uint8_t* body = type + 4;
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // let the fuzzer reach the decoder
    uint32_t crc = uint32_t(body[len]) << 24 | uint32_t(body[len + 1]) << 16 | uint32_t(body[len + 2]) << 8 | body[len + 3];
    if (crc32(ByteSpan(type, size_t(len) + 4)) != crc)
      fail(name, "corrupt PNG: CRC mismatch in chunk '" + std::string(reinterpret_cast<const char*>(type), 4) + "'");
#endif
    if (!seen_ihdr) {
      if (std::memcmp(type, "IHDR", 4) != 0 || len != 13) fail(name, "corrupt PNG: first chunk is not IHDR");
      w = uint32_t(body[0]) << 24 | uint32_t(body[1]) << 16 | uint32_t(body[2]) << 8 | body[3];
      h = uint32_t(body[4]) << 24 | uint32_t(body[5]) << 16 | uint32_t(body[6]) << 8 | body[7];
      depth = body[8], color = body[9], interlace = body[12];
      seen_ihdr = true;
    } else if (std::memcmp(type, "IDAT", 4) == 0) {
      idat.insert(idat.end(), body, body + len);
    } else if (std::memcmp(type, "IEND", 4) == 0) {
      break;
    }
    pos += size_t(len) + 12;
  }
  // Bytes of filtered scanlines the IHDR implies (Adam7 passes when interlaced).
  int ch = color == 0 ? 1 : color == 2 ? 3 : color == 3 ? 1 : color == 4 ? 2 : color == 6 ? 4 : 0;
  if (ch == 0 || depth == 0 || depth > 16 || w == 0 || h == 0 || uint64_t(w) * uint64_t(h) > uint64_t(max_pixels))
    return;  // stb reports these with its own reason (or the size limits catch them)
  auto scan_bytes = [&](uint64_t cols, uint64_t rows) {
    return cols == 0 || rows == 0 ? 0 : rows * (1 + (cols * uint64_t(ch) * depth + 7) / 8);
  };
  uint64_t expect = 0;
  if (interlace) {
    const int xo[7] = {0, 4, 0, 2, 0, 1, 0}, yo[7] = {0, 0, 4, 0, 2, 0, 1}, xs[7] = {8, 8, 4, 4, 2, 2, 1},
              ys[7] = {8, 8, 8, 4, 4, 2, 2};
    for (int p = 0; p < 7; ++p)
      expect += scan_bytes((w > uint32_t(xo[p]) ? w - xo[p] + xs[p] - 1 : 0) / xs[p],
                           (h > uint32_t(yo[p]) ? h - yo[p] + ys[p] - 1 : 0) / ys[p]);
  } else {
    expect = scan_bytes(w, h);
  }
  if (idat.empty() || expect + 1 > uint64_t(0x7FFFFFFF)) return;
  std::vector<uint8_t> scratch(size_t(expect) + 1);
  long got = detail::inflate_zlib(ByteSpan(idat.data(), idat.size()), scratch.data(), scratch.size());
  if (got > long(expect) || (got < 0 && std::strcmp(detail::stb_last_error(), "output buffer limit") == 0))
    fail(name, "corrupt PNG: image data inflates to more than the " + std::to_string(expect) + " bytes its size implies");
}

// stb reads missing BMP pixel rows as zeros; check that uncompressed pixel data is all there.
void check_bmp_size(ByteSpan d, const std::string& name, int w, int h) {
  if (d.size() < 34) fail(name, "truncated BMP header");
  uint32_t off = detail::rd32(&d[10]);
  uint32_t hdr = detail::rd32(&d[14]);
  if (hdr < 40) return;  // old OS/2 headers: rely on stb
  uint16_t bpp = detail::rd16(&d[28]);
  uint32_t compression = detail::rd32(&d[30]);
  if (compression != 0 && compression != 3) return;
  uint64_t row = ((uint64_t(w) * bpp + 31) / 32) * 4, need = uint64_t(off) + row * uint64_t(h);
  if (need > d.size())
    fail(name, err_msg("truncated BMP: pixel data needs ", need, " bytes but the file has ", d.size()));
}

}  // namespace

Image decode_image(ByteSpan data, const std::string& name, const ImageLoadOptions& opts) {
  if (data.empty()) fail(name, "is empty (0 bytes)");
  ImgKind kind = image_kind(data);
  if (kind == ImgKind::Other) {
    std::string s;
    for (size_t k = 0; k < data.size() && k < 8; ++k) s += (data[k] >= 0x20 && data[k] < 0x7F) ? char(data[k]) : '.';
    fail(name, "is not a PNG, JPEG or BMP image (starts with '" + s + "')");
  }
  if (kind == ImgKind::Jpeg) check_jpeg_structure(data, name);  // before stb parses any marker
  if (kind == ImgKind::Png) check_png_structure(data, name, opts.max_pixels);
  int w = 0, h = 0, comp = 0;
  bool is16 = false;
  if (!detail::stb_info(data, int(kind), &w, &h, &comp, &is16))
    fail(name, std::string("corrupt or unsupported image header: ") + detail::stb_last_error());
  if (w <= 0 || h <= 0 || w > opts.max_dimension || h > opts.max_dimension || int64_t(w) * int64_t(h) > opts.max_pixels)
    fail(name, err_msg("image is ", w, "x", h, ", above the limit of ", opts.max_dimension, " per side and ",
                       opts.max_pixels, " pixels (corrupt?)"));
  if (kind == ImgKind::Bmp) check_bmp_size(data, name, w, h);
  int dw = 0, dh = 0;
  Image img;
  img.pixels = detail::stb_decode_rgb(data, &dw, &dh);
  if (img.pixels.empty()) fail(name, std::string("cannot decode image: ") + detail::stb_last_error());
  if (dw != w || dh != h) fail(name, "decoded size differs from the header");
  img.width = w;
  img.height = h;
  img.channels = 3;
  return img;
}

Image load_image(const std::string& path, const ImageLoadOptions& opts) {
  MappedFile f(path);
  return decode_image(f.bytes(), path, opts);
}

namespace {
void check_image(const Image& img, const char* fn) {
  if (img.width <= 0 || img.height <= 0 || img.channels < 1 || img.channels > 4 ||
      img.pixels.size() != size_t(img.width) * size_t(img.height) * size_t(img.channels))
    throw ValueError(err_msg(fn, ": invalid image ", img.width, "x", img.height, "x", img.channels, " with ",
                             img.pixels.size(), " bytes"));
  if (img.width > 65535 || img.height > 65535) throw ValueError(err_msg(fn, ": image too large to encode"));
}
}  // namespace

std::vector<uint8_t> encode_png(const Image& img) {
  check_image(img, "encode_png");
  auto out = detail::stb_encode_png(img.pixels.data(), img.width, img.height, img.channels);
  if (out.empty()) throw IOError("encode_png: encoder failed");
  return out;
}

std::vector<uint8_t> encode_jpeg(const Image& img, int quality) {
  check_image(img, "encode_jpeg");
  if (quality < 1 || quality > 100) throw ValueError(err_msg("encode_jpeg: quality ", quality, " not in 1..100"));
  if (img.channels == 2 || img.channels == 4) throw ValueError("encode_jpeg: JPEG has no alpha; pass 1 or 3 channels");
  auto out = detail::stb_encode_jpeg(img.pixels.data(), img.width, img.height, img.channels, quality);
  if (out.empty()) throw IOError("encode_jpeg: encoder failed");
  return out;
}

void save_png(const std::string& path, const Image& img) { atomic_write_file(path, encode_png(img)); }
void save_jpeg(const std::string& path, const Image& img, int quality) { atomic_write_file(path, encode_jpeg(img, quality)); }

void save_image(const std::string& path, const Image& img, int jpeg_quality) {
  std::string ext = path.substr(path.find_last_of('.') == std::string::npos ? path.size() : path.find_last_of('.'));
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (ext == ".png") return save_png(path, img);
  if (ext == ".jpg" || ext == ".jpeg") return save_jpeg(path, img, jpeg_quality);
  throw ValueError(quoted(path) + ": unknown image extension '" + ext + "' (use .png, .jpg or .jpeg)");
}

std::vector<float> image_to_nchw(const Image& img) {
  check_image(img, "image_to_nchw");
  const size_t hw = size_t(img.width) * size_t(img.height);
  std::vector<float> out(hw * size_t(img.channels));
  for (size_t p = 0; p < hw; ++p)
    for (int c = 0; c < img.channels; ++c) {
      float v = float(img.pixels[p * size_t(img.channels) + size_t(c)]) / 255.0f;  // ToTensor
      out[size_t(c) * hw + p] = (v - 0.5f) / 0.5f;                                 // Normalize
    }
  return out;
}

Image chw_to_image(const float* chw, int channels, int height, int width, U8Rounding rounding) {
  if ((channels != 1 && channels != 3) || height <= 0 || width <= 0)
    throw ValueError(err_msg("chw_to_image: expected [1 or 3, H, W], got [", channels, ",", height, ",", width, "]"));
  Image img = Image::blank(width, height, 3);
  const size_t hw = size_t(width) * size_t(height);
  for (size_t p = 0; p < hw; ++p)
    for (int c = 0; c < 3; ++c) {
      float x = chw[size_t(channels == 1 ? 0 : c) * hw + p];
      x = std::isnan(x) ? 0.0f : std::min(1.0f, std::max(-1.0f, x));
      float u = rounding == U8Rounding::Round ? std::floor((x + 1.0f) * 127.5f + 0.5f)
                                              : std::floor(std::min(1.0f, std::max(0.0f, (x + 1.0f) / 2.0f)) * 255.0f);
      img.pixels[p * 3 + size_t(c)] = uint8_t(std::min(255.0f, std::max(0.0f, u)));
    }
  return img;
}

Image make_grid(const std::vector<std::vector<Image>>& rows, int padding, uint8_t pad_value) {
  if (rows.empty()) throw ValueError("make_grid: no images");
  size_t cols = 0;
  const Image* first = nullptr;
  for (const auto& r : rows) {
    cols = std::max(cols, r.size());
    for (const auto& im : r) {
      check_image(im, "make_grid");
      if (!first) first = &im;
      if (im.width != first->width || im.height != first->height || im.channels != first->channels)
        throw ShapeError(err_msg("make_grid: images must share one size; got ", im.width, "x", im.height, "x",
                                 im.channels, " and ", first->width, "x", first->height, "x", first->channels));
    }
  }
  if (!first) throw ValueError("make_grid: no images");
  if (padding < 0 || padding > 1024) throw ValueError("make_grid: invalid padding");
  const int64_t W = first->width, H = first->height;
  const int64_t gw = int64_t(cols) * (W + padding) + padding, gh = int64_t(rows.size()) * (H + padding) + padding;
  if (gw > 65535 || gh > 65535) throw ValueError(err_msg("make_grid: grid of ", gw, "x", gh, " pixels is too large"));
  Image g = Image::blank(int(gw), int(gh), first->channels, pad_value);
  const size_t ch = size_t(first->channels);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < rows[r].size(); ++c) {
      const Image& im = rows[r][c];
      const int64_t x0 = int64_t(c) * (W + padding) + padding, y0 = int64_t(r) * (H + padding) + padding;
      for (int64_t y = 0; y < H; ++y)
        std::memcpy(&g.pixels[(size_t(y0 + y) * size_t(gw) + size_t(x0)) * ch], &im.pixels[size_t(y) * size_t(W) * ch],
                    size_t(W) * ch);
    }
  return g;
}

void save_image_grid(const std::string& path, const std::vector<std::vector<Image>>& rows, int padding,
                     uint8_t pad_value) {
  save_image(path, make_grid(rows, padding, pad_value));
}

}  // namespace gradstyle::io
