// Pillow-exact resampling of 8-bit images (libImaging/Resample.c, FORMATS.md §9.3): separable
// convolution, support scaled by the downscale factor (antialiasing), weights normalised and
// converted to 22-bit fixed point, horizontal pass into a uint8 intermediate, then vertical.
#include <cmath>

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/image.hpp"

namespace gradstyle::io {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear_filter(double x) {
  if (x < 0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}
double bicubic_filter(double x) {
  const double a = -0.5;
  if (x < 0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}
double lanczos_filter(double x) {
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> xmin, xcount;
  std::vector<int32_t> k;  // out_size * ksize fixed-point weights
};

Coeffs precompute(int in_size, int out_size, ResampleFilter f) {
  double (*filter)(double) = bilinear_filter;
  double fsupport = 1.0;
  if (f == ResampleFilter::Bicubic) filter = bicubic_filter, fsupport = 2.0;
  if (f == ResampleFilter::Lanczos) filter = lanczos_filter, fsupport = 3.0;
  double scale = double(in_size) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = fsupport * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.xmin.resize(size_t(out_size));
  c.xcount.resize(size_t(out_size));
  c.k.assign(size_t(out_size) * size_t(c.ksize), 0);
  std::vector<double> w(size_t(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    double center = (xx + 0.5) * scale;
    double ss = 1.0 / filterscale, ww = 0.0;
    int xmin = int(center - support + 0.5);  // C cast truncates toward zero, as Pillow does
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      w[size_t(x)] = filter((x + xmin - center + 0.5) * ss);
      ww += w[size_t(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      double v = ww != 0.0 ? w[size_t(x)] / ww : w[size_t(x)];
      c.k[size_t(xx) * size_t(c.ksize) + size_t(x)] =
          v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits)) : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    c.xmin[size_t(xx)] = xmin;
    c.xcount[size_t(xx)] = xmax;
  }
  return c;
}

inline uint8_t clip8(int64_t acc) {
  int64_t v = acc >> kPrecisionBits;  // arithmetic shift = floor, as in Pillow
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

Image pass_horizontal(const Image& in, int out_w, ResampleFilter f) {
  Coeffs c = precompute(in.width, out_w, f);
  Image out = Image::blank(out_w, in.height, in.channels);
  const int ch = in.channels;
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* row = in.pixels.data() + size_t(y) * size_t(in.width) * size_t(ch);
    uint8_t* orow = out.pixels.data() + size_t(y) * size_t(out_w) * size_t(ch);
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &c.k[size_t(xx) * size_t(c.ksize)];
      const int xmin = c.xmin[size_t(xx)], n = c.xcount[size_t(xx)];
      for (int b = 0; b < ch; ++b) {
        int64_t acc = int64_t(1) << (kPrecisionBits - 1);
        for (int x = 0; x < n; ++x) acc += int64_t(row[size_t(x + xmin) * size_t(ch) + size_t(b)]) * k[x];
        orow[size_t(xx) * size_t(ch) + size_t(b)] = clip8(acc);
      }
    }
  }
  return out;
}

Image pass_vertical(const Image& in, int out_h, ResampleFilter f) {
  Coeffs c = precompute(in.height, out_h, f);
  Image out = Image::blank(in.width, out_h, in.channels);
  const size_t stride = size_t(in.width) * size_t(in.channels);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &c.k[size_t(yy) * size_t(c.ksize)];
    const int ymin = c.xmin[size_t(yy)], n = c.xcount[size_t(yy)];
    uint8_t* orow = out.pixels.data() + size_t(yy) * stride;
    for (size_t i = 0; i < stride; ++i) {
      int64_t acc = int64_t(1) << (kPrecisionBits - 1);
      for (int y = 0; y < n; ++y) acc += int64_t(in.pixels[size_t(y + ymin) * stride + i]) * k[y];
      orow[i] = clip8(acc);
    }
  }
  return out;
}

}  // namespace

Image resize_pil(const Image& img, int out_width, int out_height, ResampleFilter filter) {
  if (out_width <= 0 || out_height <= 0 || out_width > 65536 || out_height > 65536)
    throw ValueError(err_msg("resize_pil: invalid output size ", out_width, "x", out_height));
  if (img.width <= 0 || img.height <= 0 || img.channels < 1 || img.channels > 4 ||
      img.pixels.size() != size_t(img.width) * size_t(img.height) * size_t(img.channels))
    throw ValueError(err_msg("resize_pil: invalid input image ", img.width, "x", img.height, "x", img.channels));
  // Like Pillow, a pass whose size does not change is skipped.
  Image tmp = out_width != img.width ? pass_horizontal(img, out_width, filter) : img;
  return out_height != img.height ? pass_vertical(tmp, out_height, filter) : tmp;
}

}  // namespace gradstyle::io
