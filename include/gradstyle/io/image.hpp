#pragma once
// Images (FORMATS.md §9): PNG, JPEG and BMP decoding through stb_image (headers checked and
// dimensions capped before decoding; never a partial image), PNG/JPEG encoding, PIL-exact
// resampling, [-1,1] NCHW conversion and a make_grid-style contact sheet.
#include <cstdint>
#include <string>
#include <vector>

#include "gradstyle/io/file.hpp"

namespace gradstyle::io {

// 8-bit interleaved pixels, row-major: pixels[(y * width + x) * channels + c].
struct Image {
  int width = 0, height = 0, channels = 3;
  std::vector<uint8_t> pixels;

  uint8_t at(int x, int y, int c) const { return pixels[(size_t(y) * size_t(width) + size_t(x)) * size_t(channels) + size_t(c)]; }
  uint8_t& at(int x, int y, int c) { return pixels[(size_t(y) * size_t(width) + size_t(x)) * size_t(channels) + size_t(c)]; }
  static Image blank(int width, int height, int channels = 3, uint8_t value = 0);
};

struct ImageLoadOptions {
  int max_dimension = 16384;
  int64_t max_pixels = int64_t(16384) * 16384;
};

// Decodes PNG, JPEG or BMP to RGB (3 channels): grayscale is replicated, alpha dropped, 16-bit
// samples keep their high byte, palettes are expanded (PIL's convert('RGB')). FormatError names
// the file and the decoder's reason; IOError when the file cannot be read.
Image decode_image(ByteSpan data, const std::string& name, const ImageLoadOptions& opts = {});
Image load_image(const std::string& path, const ImageLoadOptions& opts = {});

std::vector<uint8_t> encode_png(const Image& img);
std::vector<uint8_t> encode_jpeg(const Image& img, int quality = 95);
void save_png(const std::string& path, const Image& img);
void save_jpeg(const std::string& path, const Image& img, int quality = 95);
// PNG for ".png", JPEG for ".jpg"/".jpeg" (case-insensitive); ValueError otherwise.
void save_image(const std::string& path, const Image& img, int jpeg_quality = 95);

// PIL Image.resize with BILINEAR / BICUBIC / LANCZOS on 8-bit images: separable, antialiased when
// shrinking, 22-bit fixed-point weights, horizontal pass first into a uint8 intermediate. Matches
// Pillow 9.4 bit for bit on the fixtures (tests/io/test_image.cpp).
enum class ResampleFilter { Bilinear, Bicubic, Lanczos };
Image resize_pil(const Image& img, int out_width, int out_height, ResampleFilter filter = ResampleFilter::Bilinear);

// [1, C, H, W] float32 in [-1, 1]: x = (v/255 - 0.5)/0.5 (ToTensor then Normalize).
std::vector<float> image_to_nchw(const Image& img);
// How [-1, 1] becomes uint8 (values are clamped to [-1, 1] first).
enum class U8Rounding {
  Round,     // floor((x + 1) * 127.5 + 0.5)  (gradstyle default, NVIDIA, torchvision save_image)
  Truncate,  // floor(clip((x + 1) / 2, 0, 1) * 255)  (e4e / HFGI tensor2im)
};
// chw: C*H*W floats (one image of a batch). C is 1 or 3.
Image chw_to_image(const float* chw, int channels, int height, int width, U8Rounding rounding = U8Rounding::Round);

// torchvision make_grid layout for rows of images (e.g. source | reconstruction | edits): every
// image must have the same size; the grid has max(row length) columns; short rows are padded.
Image make_grid(const std::vector<std::vector<Image>>& rows, int padding = 2, uint8_t pad_value = 0);
void save_image_grid(const std::string& path, const std::vector<std::vector<Image>>& rows, int padding = 2,
                     uint8_t pad_value = 0);

}  // namespace gradstyle::io
