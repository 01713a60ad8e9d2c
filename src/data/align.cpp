// FFHQ alignment without the detector: the quad from landmarks, the image procedure of align_face
// (shrink, crop, reflect padding with blur, QUAD transform, resize) and paste-back. The steps and
// their rounding follow the reference (numpy, scipy.ndimage, PIL) so that the aligned image
// matches it within one level; tools/reference/make_align_fixtures.py runs that reference.
#include "gradstyle/data/align.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gradstyle/core/error.hpp"

namespace gradstyle::align {

namespace {

double hypot(Point p) { return std::hypot(p.x, p.y); }

Point mean(const Landmarks& lm, int from, int to) {
  Point m;
  for (int i = from; i < to; ++i) m = m + lm[size_t(i)];
  return m * (1.0 / (to - from));
}

// A float RGB image (the numpy stage of the padding step).
struct FImage {
  int w = 0, h = 0;
  std::vector<float> v;  // (y * w + x) * 3 + c
  float& at(int x, int y, int c) { return v[(size_t(y) * size_t(w) + size_t(x)) * 3 + size_t(c)]; }
};

io::Image crop(const io::Image& img, int l, int t, int r, int b) {
  io::Image out = io::Image::blank(r - l, b - t, 3);
  for (int y = t; y < b; ++y)
    std::memcpy(&out.at(0, y - t, 0), &img.pixels[(size_t(y) * size_t(img.width) + size_t(l)) * 3], size_t(r - l) * 3);
  return out;
}

// numpy 'reflect' (the edge sample is not repeated: d c b | a b c d).
int reflect_np(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}
// scipy.ndimage 'reflect' (the edge sample is repeated: d c b a | a b c d).
int reflect_nd(int i, int n) {
  const int period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

// scipy.ndimage.gaussian_filter(img, [s, s, 0]) on float32: one 1-D pass per axis (rows, then
// columns), radius int(4 s + 0.5), each pass rounded to float32.
FImage gaussian(const FImage& in, double sigma) {
  const int radius = int(4.0 * sigma + 0.5);
  std::vector<double> k(size_t(2 * radius + 1));
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) sum += k[size_t(i + radius)] = std::exp(-0.5 * double(i) * double(i) / (sigma * sigma));
  for (auto& x : k) x /= sum;
  FImage a = in, b = in;
  // axis 0 (y)
  for (int y = 0; y < in.h; ++y)
    for (int x = 0; x < in.w; ++x)
      for (int c = 0; c < 3; ++c) {
        double s = 0;
        for (int i = -radius; i <= radius; ++i)
          s += k[size_t(i + radius)] * double(in.v[(size_t(reflect_nd(y + i, in.h)) * size_t(in.w) + size_t(x)) * 3 + size_t(c)]);
        a.at(x, y, c) = float(s);
      }
  // axis 1 (x)
  for (int y = 0; y < in.h; ++y)
    for (int x = 0; x < in.w; ++x)
      for (int c = 0; c < 3; ++c) {
        double s = 0;
        for (int i = -radius; i <= radius; ++i)
          s += k[size_t(i + radius)] * double(a.v[(size_t(y) * size_t(in.w) + size_t(reflect_nd(x + i, in.w))) * 3 + size_t(c)]);
        b.at(x, y, c) = float(s);
      }
  return b;
}

// The reflect padding of align_face with its blur towards the border and the fade to the median.
io::Image pad_and_blur(const io::Image& img, const int pad[4], double qsize) {
  FImage f;
  f.w = img.width + pad[0] + pad[2];
  f.h = img.height + pad[1] + pad[3];
  f.v.resize(size_t(f.w) * size_t(f.h) * 3);
  for (int y = 0; y < f.h; ++y)
    for (int x = 0; x < f.w; ++x)
      for (int c = 0; c < 3; ++c)
        f.at(x, y, c) = float(img.at(reflect_np(x - pad[0], img.width), reflect_np(y - pad[1], img.height), c));
  std::vector<float> mask(size_t(f.w) * size_t(f.h));
  for (int y = 0; y < f.h; ++y)
    for (int x = 0; x < f.w; ++x) {
      const float mx = 1.0f - std::min(float(x) / float(pad[0]), float(f.w - 1 - x) / float(pad[2]));
      const float my = 1.0f - std::min(float(y) / float(pad[1]), float(f.h - 1 - y) / float(pad[3]));
      mask[size_t(y) * size_t(f.w) + size_t(x)] = std::max(mx, my);
    }
  const FImage g = gaussian(f, qsize * 0.02);
  for (size_t p = 0; p < mask.size(); ++p) {
    const float m = std::clamp(mask[p] * 3.0f + 1.0f, 0.0f, 1.0f);
    for (size_t c = 0; c < 3; ++c) f.v[p * 3 + c] += (g.v[p * 3 + c] - f.v[p * 3 + c]) * m;
  }
  // np.median over the image, per channel (the mean of the two middle values for an even count).
  float median[3];
  for (size_t c = 0; c < 3; ++c) {
    std::vector<float> ch(mask.size());
    for (size_t p = 0; p < mask.size(); ++p) ch[p] = f.v[p * 3 + c];
    const size_t n = ch.size(), mid = n / 2;
    std::nth_element(ch.begin(), ch.begin() + long(mid), ch.end());
    double med = ch[mid];
    if (n % 2 == 0) med = 0.5 * (double(med) + double(*std::max_element(ch.begin(), ch.begin() + long(mid))));
    median[c] = float(med);
  }
  io::Image out = io::Image::blank(f.w, f.h, 3);
  for (size_t p = 0; p < mask.size(); ++p) {
    const float m = std::clamp(mask[p], 0.0f, 1.0f);
    for (size_t c = 0; c < 3; ++c) {
      const float v = f.v[p * 3 + c] + (median[c] - f.v[p * 3 + c]) * m;
      out.pixels[p * 3 + c] = uint8_t(std::clamp(std::nearbyint(v), 0.0f, 255.0f));
    }
  }
  return out;
}

// PIL Image.transform(size, QUAD, nw sw se ne, BILINEAR): output pixel centres map bilinearly onto
// the quad; samples outside the source are black.
io::Image quad_transform(const io::Image& src, int size, const double q[8]) {
  const double As = 1.0 / size, At = 1.0 / size;
  const double x0 = q[0], y0 = q[1];
  const double a[8] = {x0, (q[6] - x0) * As, (q[2] - x0) * At, (q[4] - q[2] - q[6] + x0) * As * At,
                       y0, (q[7] - y0) * As, (q[3] - y0) * At, (q[5] - q[3] - q[7] + y0) * As * At};
  io::Image out = io::Image::blank(size, size, 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const double xo = x + 0.5, yo = y + 0.5;
      double xin = a[0] + a[1] * xo + a[2] * yo + a[3] * xo * yo;
      double yin = a[4] + a[5] * xo + a[6] * yo + a[7] * xo * yo;
      if (xin < 0.0 || xin >= src.width || yin < 0.0 || yin >= src.height) continue;
      xin -= 0.5;
      yin -= 0.5;
      const int xi = int(std::floor(xin)), yi = int(std::floor(yin));
      const double dx = xin - xi, dy = yin - yi;
      const int xa = std::clamp(xi, 0, src.width - 1), xb = std::clamp(xi + 1, 0, src.width - 1);
      const int ya = std::clamp(yi, 0, src.height - 1), yb = std::clamp(yi + 1, 0, src.height - 1);
      for (int c = 0; c < 3; ++c) {
        const double top = src.at(xa, ya, c) + (src.at(xb, ya, c) - src.at(xa, ya, c)) * dx;
        const double bot = src.at(xa, yb, c) + (src.at(xb, yb, c) - src.at(xa, yb, c)) * dx;
        out.at(x, y, c) = uint8_t(std::clamp(top + (bot - top) * dy, 0.0, 255.0));  // PIL truncates
      }
    }
  return out;
}

}  // namespace

Alignment alignment_from_landmarks(const Landmarks& lm) {
  const Point eye_left = mean(lm, 36, 42), eye_right = mean(lm, 42, 48);
  const Point eye_avg = (eye_left + eye_right) * 0.5;
  const Point eye_to_eye = eye_right - eye_left;
  const Point mouth_avg = (lm[48] + lm[54]) * 0.5;
  const Point eye_to_mouth = mouth_avg - eye_avg;
  // x = eye_to_eye - flipud(eye_to_mouth) * [-1, 1]
  Point x{eye_to_eye.x + eye_to_mouth.y, eye_to_eye.y - eye_to_mouth.x};
  const double n = hypot(x);
  if (!(n > 0)) throw ValueError("face alignment: degenerate landmarks (eyes and mouth coincide)");
  x = x * (1.0 / n);
  x = x * std::max(hypot(eye_to_eye) * 2.0, hypot(eye_to_mouth) * 1.8);
  const Point y{-x.y, x.x};
  const Point c = eye_avg + eye_to_mouth * 0.1;
  Alignment a;
  a.quad = {c - x - y, c - x + y, c + x + y, c + x - y};
  a.qsize = hypot(x) * 2;
  return a;
}

io::Image align_image(const io::Image& photo, const Alignment& al, const AlignOptions& opt) {
  if (photo.channels != 3) throw ValueError("align_image: expects an RGB image");
  if (opt.output_size < 1 || opt.transform_size < 0) throw ValueError("align_image: sizes must be positive");
  const int transform_size = opt.transform_size > 0 ? opt.transform_size : opt.output_size;
  io::Image img = photo;
  Quad quad = al.quad;
  double qsize = al.qsize;
  auto bounds = [&](int& l, int& t, int& r, int& b) {
    double mnx = quad[0].x, mny = quad[0].y, mxx = quad[0].x, mxy = quad[0].y;
    for (const auto& p : quad) {
      mnx = std::min(mnx, p.x), mny = std::min(mny, p.y), mxx = std::max(mxx, p.x), mxy = std::max(mxy, p.y);
    }
    l = int(std::floor(mnx)), t = int(std::floor(mny)), r = int(std::ceil(mxx)), b = int(std::ceil(mxy));
  };
  // Shrink.
  const int shrink = int(std::floor(qsize / opt.output_size * 0.5));
  if (shrink > 1) {
    const int rw = int(std::nearbyint(double(img.width) / shrink)), rh = int(std::nearbyint(double(img.height) / shrink));
    img = io::resize_pil(img, std::max(rw, 1), std::max(rh, 1), io::ResampleFilter::Lanczos);
    for (auto& p : quad) p = p * (1.0 / shrink);
    qsize /= shrink;
  }
  // Crop.
  const int border = std::max(int(std::nearbyint(qsize * 0.1)), 3);
  int l, t, r, b;
  bounds(l, t, r, b);
  l = std::max(l - border, 0), t = std::max(t - border, 0);
  r = std::min(r + border, img.width), b = std::min(b + border, img.height);
  if (r <= l || b <= t) throw ValueError("face alignment: the face quad lies outside the image");
  if (r - l < img.width || b - t < img.height) {
    img = crop(img, l, t, r, b);
    for (auto& p : quad) p = p - Point{double(l), double(t)};
  }
  // Pad.
  bounds(l, t, r, b);
  int pad[4] = {std::max(-l + border, 0), std::max(-t + border, 0), std::max(r - img.width + border, 0),
                std::max(b - img.height + border, 0)};
  if (opt.enable_padding && *std::max_element(pad, pad + 4) > border - 4) {
    const int least = int(std::nearbyint(qsize * 0.3));
    for (int& p : pad) p = std::max(p, least);
    img = pad_and_blur(img, pad, qsize);
    for (auto& p : quad) p = p + Point{double(pad[0]), double(pad[1])};
  }
  // Transform.
  double q[8];
  for (size_t i = 0; i < 4; ++i) q[2 * i] = quad[i].x + 0.5, q[2 * i + 1] = quad[i].y + 0.5;
  img = quad_transform(img, transform_size, q);
  if (opt.output_size < transform_size)
    img = io::resize_pil(img, opt.output_size, opt.output_size, io::ResampleFilter::Lanczos);
  return img;
}

io::Image paste_back(const io::Image& photo, const io::Image& aligned, const Quad& quad, double feather) {
  if (photo.channels != 3 || aligned.channels != 3) throw ValueError("paste_back: expects RGB images");
  if (aligned.width != aligned.height || aligned.width < 1) throw ValueError("paste_back: the aligned face must be square");
  if (!(feather > 0 && feather <= 0.5)) throw ValueError("paste_back: feather must be in (0, 0.5]");
  // The quad is a square, so aligned (u, v) in [0, 1]^2 -> photo is affine: p = q0 + u (q3 - q0) + v (q1 - q0).
  const Point o = quad[0], eu = quad[3] - quad[0], ev = quad[1] - quad[0];
  const double det = eu.x * ev.y - eu.y * ev.x;
  if (!(std::abs(det) > 1e-9)) throw ValueError("paste_back: degenerate quad");
  double mnx = o.x, mny = o.y, mxx = o.x, mxy = o.y;
  for (const auto& p : quad) mnx = std::min(mnx, p.x), mny = std::min(mny, p.y), mxx = std::max(mxx, p.x), mxy = std::max(mxy, p.y);
  io::Image out = photo;
  const int S = aligned.width;
  const int x0 = std::max(0, int(std::floor(mnx))), x1 = std::min(photo.width, int(std::ceil(mxx)) + 1);
  const int y0 = std::max(0, int(std::floor(mny))), y1 = std::min(photo.height, int(std::ceil(mxy)) + 1);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      // Pixel centre in the photo (PIL's convention: pixel i covers [i, i + 1)).
      const double px = x + 0.5 - o.x, py = y + 0.5 - o.y;
      const double u = (px * ev.y - py * ev.x) / det, v = (eu.x * py - eu.y * px) / det;
      const double edge = std::min(std::min(u, 1.0 - u), std::min(v, 1.0 - v));
      if (edge <= 0) continue;
      const double m = std::min(1.0, edge / feather);
      // Bilinear sample of the aligned face at (u S, v S), pixel centres at i + 0.5.
      const double sx = std::clamp(u * S - 0.5, 0.0, double(S - 1)), sy = std::clamp(v * S - 0.5, 0.0, double(S - 1));
      const int ix = std::min(int(sx), S - 2 < 0 ? 0 : S - 2), iy = std::min(int(sy), S - 2 < 0 ? 0 : S - 2);
      const int jx = std::min(ix + 1, S - 1), jy = std::min(iy + 1, S - 1);
      const double dx = sx - ix, dy = sy - iy;
      for (int c = 0; c < 3; ++c) {
        const double top = aligned.at(ix, iy, c) * (1 - dx) + aligned.at(jx, iy, c) * dx;
        const double bot = aligned.at(ix, jy, c) * (1 - dx) + aligned.at(jx, jy, c) * dx;
        const double face = top * (1 - dy) + bot * dy;
        const double v8 = photo.at(x, y, c) * (1 - m) + face * m;
        out.at(x, y, c) = uint8_t(std::clamp(std::nearbyint(v8), 0.0, 255.0));
      }
    }
  return out;
}

}  // namespace gradstyle::align
