// toyfaces renderer (docs/toyfaces.md). Layers are painted back to front onto a float canvas;
// every shape is an implicit function f (negative inside, roughly a distance in image units) and
// its pixel coverage is clamp(0.5 - f / |grad f| / pixel, 0, 1), with grad f by forward
// differences: analytic-coverage anti-aliasing with one evaluation point per pixel.
//
// Face-surface features (eyes, brows, mouth, freckles, wrinkles, glasses) are defined in frontal
// coordinates (X, Y) relative to the head centre and drawn through a cylinder model of the head:
// a pixel column x maps to X = rx sin(asin((x - cx) / rx) - yaw), so yaw shifts and compresses
// them horizontally. The nose tip stands off the cylinder and so moves further with yaw.
#include "gradstyle/data/toyfaces.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <nlohmann/json.hpp>

#include "gradstyle/core/error.hpp"
#include "gradstyle/core/rng.hpp"

namespace gradstyle::data::toyfaces {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kMaxYaw = 30.0 * kPi / 180.0;  // yaw = +-1
constexpr uint64_t kIdentityStream = 1, kEditStream = 2;

double clamp01(double v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }
double sq(double v) { return v * v; }
// sqrt(x^2 + y^2) without std::hypot's overflow care (values here are O(1); hypot is 3x slower).
double norm2(double x, double y) { return std::sqrt(x * x + y * y); }
double smoothstep(double a, double b, double v) {
  const double t = clamp01((v - a) / (b - a));
  return t * t * (3 - 2 * t);
}
Rgb mix(const Rgb& a, const Rgb& b, double t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}
Rgb scale(const Rgb& a, double k) { return {clamp01(a.r * k), clamp01(a.g * k), clamp01(a.b * k)}; }
Rgb hsv(double h, double s, double v) {
  h = (h - std::floor(h)) * 6;
  const int i = int(h) % 6;
  const double f = h - std::floor(h), p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (i) {
    case 0: return {v, t, p};
    case 1: return {q, v, p};
    case 2: return {p, v, t};
    case 3: return {p, q, v};
    case 4: return {t, p, v};
    default: return {v, p, q};
  }
}

// Draws of one (seed, index, stream): the k-th draw uses Philox counter (index, stream << 32 | k)
// and key seed, so any identity is available on its own and the streams never overlap.
class Draws {
 public:
  Draws(uint64_t seed, uint64_t index, uint64_t stream) : seed_(seed), index_(index), stream_(stream) {}
  double u() {  // (0, 1]
    const Philox4 r = philox4x32(index_, (stream_ << 32) | k_++, seed_);
    return philox_uniform01(r.v[0], r.v[1]);
  }
  double range(double lo, double hi) { return lo + (hi - lo) * u(); }
  int pick(int n) { return std::min(n - 1, int(u() * n)); }
  bool chance(double p) { return u() <= p; }
  // Index into cumulative weights.
  int weighted(std::initializer_list<double> w) {
    double total = 0;
    for (double x : w) total += x;
    double t = u() * total, acc = 0;
    int i = 0;
    for (double x : w) {
      acc += x;
      if (t <= acc) return i;
      ++i;
    }
    return i - 1;
  }
  uint32_t bits() {
    const Philox4 r = philox4x32(index_, (stream_ << 32) | k_++, seed_);
    return r.v[0];
  }
  Rgb jitter(const Rgb& c, double amount) {
    return {clamp01(c.r + range(-amount, amount)), clamp01(c.g + range(-amount, amount)),
            clamp01(c.b + range(-amount, amount))};
  }

 private:
  uint64_t seed_, index_, stream_;
  uint32_t k_ = 0;
};

// ---- implicit shapes (negative inside; about a distance in the units of the arguments) ------
double circle(double x, double y, double cx, double cy, double r) { return norm2(x - cx, y - cy) - r; }
// Ellipse distance, first-order approximation f / |grad f| of |p / r| - 1.
double ellipse(double x, double y, double cx, double cy, double rx, double ry) {
  const double px = (x - cx) / rx, py = (y - cy) / ry;
  const double k0 = std::sqrt(px * px + py * py);
  const double k1 = std::sqrt(sq(px / rx) + sq(py / ry));
  if (k1 < 1e-12) return -std::min(rx, ry);
  return k0 * (k0 - 1) / k1;
}
double segment(double x, double y, double ax, double ay, double bx, double by, double r) {
  const double dx = bx - ax, dy = by - ay;
  const double l2 = dx * dx + dy * dy;
  const double t = l2 > 0 ? std::clamp(((x - ax) * dx + (y - ay) * dy) / l2, 0.0, 1.0) : 0.0;
  return norm2(x - ax - t * dx, y - ay - t * dy) - r;
}
double round_box(double x, double y, double cx, double cy, double hw, double hh, double r) {
  const double qx = std::abs(x - cx) - hw + r, qy = std::abs(y - cy) - hh + r;
  return norm2(std::max(qx, 0.0), std::max(qy, 0.0)) + std::min(std::max(qx, qy), 0.0) - r;
}

uint32_t hash32(uint32_t x) {  // integer finaliser (bijective mix of 32 bits)
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
double lattice(uint32_t seed, int ix, int iy) {
  return double(hash32(seed ^ hash32(uint32_t(ix) * 0x9E3779B1u ^ hash32(uint32_t(iy) + 0x85EBCA6Bu)))) / 4294967295.0;
}
double value_noise(uint32_t seed, double x, double y) {
  const double fx = std::floor(x), fy = std::floor(y);
  const int ix = int(fx), iy = int(fy);
  double tx = x - fx, ty = y - fy;
  tx = tx * tx * (3 - 2 * tx);
  ty = ty * ty * (3 - 2 * ty);
  const double a = lattice(seed, ix, iy), b = lattice(seed, ix + 1, iy);
  const double c = lattice(seed, ix, iy + 1), d = lattice(seed, ix + 1, iy + 1);
  return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

// ---- canvas --------------------------------------------------------------------------------
struct Canvas {
  int S;
  double pw;               // pixel width in image units
  std::vector<float> rgb;  // [S, S, 3] interleaved

  explicit Canvas(int size) : S(size), pw(1.0 / size), rgb(size_t(size) * size * 3, 0.f) {}
  double cx(int px) const { return (px + 0.5) * pw; }
  void blend(int px, int py, const Rgb& c, double a) {
    if (a <= 0) return;
    float* p = &rgb[(size_t(py) * S + px) * 3];
    p[0] += float((c.r - p[0]) * a);
    p[1] += float((c.g - p[1]) * a);
    p[2] += float((c.b - p[2]) * a);
  }
  // Pixel index range covering image-space [lo, hi] plus a pixel of margin.
  void span(double lo, double hi, int& p0, int& p1) const {
    p0 = std::max(0, int(std::floor(lo * S)) - 1);
    p1 = std::min(S - 1, int(std::ceil(hi * S)) + 1);
  }
  double coverage(double f, double gx, double gy) const {
    const double g = std::sqrt(gx * gx + gy * gy);
    if (!(g > 1e-12)) return f < 0 ? 1.0 : 0.0;
    return clamp01(0.5 - f / g / pw);
  }
  // Image-space shape with f(x, y) inside the box [x0,x1] x [y0,y1].
  template <class F>
  void fill(double x0, double y0, double x1, double y1, const Rgb& c, double alpha, F&& f) {
    int px0, px1, py0, py1;
    span(x0, x1, px0, px1);
    span(y0, y1, py0, py1);
    const double h = 0.25 * pw;
    for (int py = py0; py <= py1; ++py) {
      const double y = cx(py);
      for (int px = px0; px <= px1; ++px) {
        const double x = cx(px);
        const double f0 = f(x, y);
        if (f0 > 2 * pw) continue;
        // Deep inside: full coverage whenever |grad f| <= 8 (every shape here), no gradient needed.
        if (f0 < -4 * pw) {
          blend(px, py, c, alpha);
          continue;
        }
        const double cov = coverage(f0, (f(x + h, y) - f0) / h, (f(x, y + h) - f0) / h);
        blend(px, py, c, alpha * cov);
      }
    }
  }
  // Image-space soft layer: a(x, y) is the opacity itself.
  template <class A>
  void soft(double x0, double y0, double x1, double y1, const Rgb& c, A&& a) {
    int px0, px1, py0, py1;
    span(x0, x1, px0, px1);
    span(y0, y1, py0, py1);
    for (int py = py0; py <= py1; ++py)
      for (int px = px0; px <= px1; ++px) blend(px, py, c, a(cx(px), cx(py)));
  }
};

// The head as a vertical cylinder of radius rx turned by the yaw angle: per pixel column, the
// frontal coordinate X on the face surface and dX/dx.
struct Surface {
  double hx, hy, rx, theta;
  std::vector<double> X, J;  // per column; J = 0 where the column misses the visible surface

  Surface(const Canvas& cv, double hx_, double hy_, double rx_, double theta_)
      : hx(hx_), hy(hy_), rx(rx_), theta(theta_), X(size_t(cv.S)), J(size_t(cv.S)) {
    for (int px = 0; px < cv.S; ++px) {
      const double s = (cv.cx(px) - hx) / rx;
      X[px] = 0;
      J[px] = 0;
      if (std::abs(s) >= 0.995) continue;
      const double psi = std::asin(s), phi = psi - theta;
      if (std::cos(phi) < 0.05) continue;
      X[px] = rx * std::sin(phi);
      J[px] = std::min(20.0, std::cos(phi) / std::cos(psi));
    }
  }
  // Image x of frontal X at stand-off depth (1 = on the surface, > 1 in front of it).
  double project(double Xf, double depth = 1.0) const {
    const double phi = std::asin(std::clamp(Xf / rx, -1.0, 1.0));
    return hx + rx * depth * std::sin(phi + theta);
  }
  // Horizontal compression of a small feature at frontal X.
  double squeeze(double Xf) const {
    const double phi = std::asin(std::clamp(Xf / rx, -0.99, 0.99));
    return std::max(0.0, std::cos(phi + theta)) / std::cos(phi);
  }
  // Shape f(X, Y) in frontal coordinates (Y = y - hy) within the frontal box.
  template <class F>
  void fill(Canvas& cv, double X0, double Y0, double X1, double Y1, const Rgb& c, double alpha, F&& f) const {
    if (alpha <= 0) return;
    int py0, py1;
    cv.span(hy + Y0, hy + Y1, py0, py1);
    const double h = 0.25 * cv.pw, m = 2 * cv.pw;
    for (int px = 0; px < cv.S; ++px) {
      if (J[px] <= 0 || X[px] < X0 - m * J[px] || X[px] > X1 + m * J[px]) continue;
      const double Xp = X[px];
      for (int py = py0; py <= py1; ++py) {
        const double Y = cv.cx(py) - hy;
        const double f0 = f(Xp, Y);
        if (f0 > m * std::max(1.0, J[px])) continue;
        if (f0 < -2 * m * std::max(1.0, J[px])) {
          cv.blend(px, py, c, alpha);
          continue;
        }
        const double cov = cv.coverage(f0, (f(Xp + h, Y) - f0) / h * J[px], (f(Xp, Y + h) - f0) / h);
        cv.blend(px, py, c, alpha * cov);
      }
    }
  }
  template <class A>
  void soft(Canvas& cv, double X0, double Y0, double X1, double Y1, const Rgb& c, A&& a) const {
    int py0, py1;
    cv.span(hy + Y0, hy + Y1, py0, py1);
    for (int px = 0; px < cv.S; ++px) {
      if (J[px] <= 0 || X[px] < X0 || X[px] > X1) continue;
      for (int py = py0; py <= py1; ++py) cv.blend(px, py, c, a(X[px], cv.cx(py) - hy));
    }
  }
};

// Antialiased 0/1 pattern of stripes with period 1/freq along t (image units), faded to its mean
// when the period nears two pixels (no moire at small sizes).
double stripe(double t, double freq, double pw) {
  const double fr = t * freq - std::floor(t * freq);
  const double d = (std::abs(fr - 0.25) - 0.25) / freq;
  const double cov = clamp01(0.5 - d / pw);
  const double period_px = 1.0 / (freq * pw);
  return cov + (0.5 - cov) * clamp01((4.0 - period_px) / 2.0);
}

void paint_background(Canvas& cv, const ToyIdentity& id) {
  const double ca = std::cos(id.bg_angle), sa = std::sin(id.bg_angle), f = id.bg_frequency;
  for (int py = 0; py < cv.S; ++py) {
    const double y = cv.cx(py);
    for (int px = 0; px < cv.S; ++px) {
      const double x = cv.cx(px);
      const double u = x * ca + y * sa, v = -x * sa + y * ca;
      double t = 0;
      switch (id.background) {
        case Background::Stripes: t = stripe(u, f, cv.pw); break;
        case Background::Checker: {
          const double a = stripe(u, f * 0.5, cv.pw), b = stripe(v, f * 0.5, cv.pw);
          t = a + b - 2 * a * b;
          break;
        }
        case Background::Dots: {
          const double gu = (std::floor(u * f) + 0.5) / f, gv = (std::floor(v * f) + 0.5) / f;
          const double d = norm2(u - gu, v - gv) - 0.25 / f;
          t = clamp01(0.5 - d / cv.pw);
          t += (0.196 - t) * clamp01((5.0 - 1.0 / (f * cv.pw)) / 2.0);  // 0.196 = dot area fraction
          break;
        }
        case Background::Noise:
          t = (value_noise(id.bg_seed, u * f, v * f) * 2 + value_noise(id.bg_seed ^ 0xA5A5u, u * f * 2, v * f * 2)) / 3;
          t = smoothstep(0.25, 0.75, t);
          break;
      }
      Rgb c = mix(id.bg_color_a, id.bg_color_b, t);
      c = scale(c, 1.06 - 0.12 * y);  // soft vertical light falloff
      float* p = &cv.rgb[(size_t(py) * cv.S + px) * 3];
      p[0] = float(c.r);
      p[1] = float(c.g);
      p[2] = float(c.b);
    }
  }
}

Rgb aged_hair(const ToyIdentity& id, double age) { return mix(id.hair, Rgb{0.74, 0.74, 0.76}, 0.7 * age); }

struct HairGeom {
  double hx, hy, rx, ry, e;
};

// Hair behind the head (image space).
void paint_hair_back(Canvas& cv, const ToyIdentity& id, const HairGeom& g, const Rgb& col) {
  const double hx = g.hx, hy = g.hy, rx = g.rx, ry = g.ry, e = g.e;
  const double cy = hy - 0.12 * ry, arx = rx + e, ary = 0.92 * ry + e;
  switch (id.hair_style) {
    case HairStyle::Bald: return;
    case HairStyle::Short:
    case HairStyle::SidePart:
    case HairStyle::Bun:
      cv.fill(hx - arx, cy - ary, hx + arx, hy + 0.2 * ry, col, 1.0, [&](double x, double y) {
        return std::max(ellipse(x, y, hx, cy, arx, ary), y - (hy + 0.15 * ry));
      });
      if (id.hair_style == HairStyle::Bun) {
        const double r = 0.055 + 0.025 * id.hair_volume, by = cy - ary - 0.35 * r;
        cv.fill(hx - r, by - r, hx + r, by + r, col, 1.0, [&](double x, double y) { return circle(x, y, hx, by, r); });
      }
      return;
    case HairStyle::Long: {
      const double w = arx + 0.01, bottom = hy + 1.25 * ry;
      cv.fill(hx - w, cy - ary, hx + w, bottom, col, 1.0, [&](double x, double y) {
        const double top = ellipse(x, y, hx, cy, w, ary);
        const double body = round_box(x, y, hx, (cy + bottom) / 2, w * (0.96 + 0.04 * (y - cy) / (bottom - cy)),
                                      (bottom - cy) / 2, 0.04);
        return std::min(top, std::max(body, cy - y));
      });
      return;
    }
    case HairStyle::Bob: {
      const double w = arx + 0.02, h = ry + e;
      cv.fill(hx - w, hy - 0.05 * ry - h, hx + w, hy + 0.75 * ry, col, 1.0, [&](double x, double y) {
        return std::max(ellipse(x, y, hx, hy - 0.05 * ry, w, h), y - (hy + 0.7 * ry));
      });
      return;
    }
    case HairStyle::Curly: {
      const double w = 1.22 * rx + e, h = 1.02 * ry + e, ccy = hy - 0.15 * ry;
      const double phase = double(id.bg_seed % 628) / 100.0;
      cv.fill(hx - w - 0.02, ccy - h - 0.02, hx + w + 0.02, hy + 0.5 * ry, col, 1.0, [&](double x, double y) {
        const double a = std::atan2(y - ccy, x - hx);
        return std::max(ellipse(x, y, hx, ccy, w, h) - 0.012 * std::sin(13 * a + phase), y - (hy + 0.45 * ry));
      });
      return;
    }
  }
}

// Fringe over the forehead (image space), bounded below by the style's hairline.
double hairline(const ToyIdentity& id, double dx, double rx, double ry, double hy) {
  const double q = dx / rx, q4 = q * q * q * q;
  switch (id.hair_style) {
    case HairStyle::Short: return hy - ry * (0.55 - 0.5 * q4);
    case HairStyle::Long: return hy - ry * (0.5 - 0.12 * std::abs(q) - 0.4 * q4);
    case HairStyle::Bob: return hy - 0.3 * ry + 0.9 * ry * smoothstep(0.72, 0.98, std::abs(q)) + 0.02 * ry * std::sin(40 * dx);
    case HairStyle::SidePart: return hy - ry * (0.64 - 0.22 * clamp01((q + 1) / 2) - 0.45 * q4);
    case HairStyle::Curly: return hy - ry * (0.5 - 0.45 * q4) + 0.012 * std::sin(90 * dx);
    case HairStyle::Bun: return hy - ry * (0.62 - 0.5 * q4);
    case HairStyle::Bald: break;
  }
  return -1;
}

void paint_hair_front(Canvas& cv, const ToyIdentity& id, const HairGeom& g, double hxf, const Rgb& col) {
  if (id.hair_style == HairStyle::Bald) return;
  const double hy = g.hy, rx = g.rx, ry = g.ry, e = 0.5 * g.e;
  const double cy = hy - 0.12 * ry, arx = rx + e, ary = 0.92 * ry + e;
  cv.fill(hxf - arx, cy - ary, hxf + arx, hy + 0.7 * ry, col, 1.0, [&](double x, double y) {
    return std::max(ellipse(x, y, hxf, cy, arx, ary), y - hairline(id, x - hxf, rx, ry, hy));
  });
  // A few darker strands for texture.
  const Rgb dark = scale(col, 0.72);
  for (int k = -2; k <= 2; ++k) {
    const double x0 = hxf + k * 0.3 * rx, top = cy - ary * 0.9;
    const double y1 = hairline(id, x0 + 0.1 * rx * k - hxf, rx, ry, hy) - 0.02;
    if (y1 <= top + 0.02) continue;
    cv.fill(x0 - 0.2 * rx, top, x0 + 0.2 * rx, y1, dark, 0.35, [&](double x, double y) {
      return std::max(segment(x, y, x0, top + 0.03, x0 + 0.1 * rx * k, y1, 0.004),
                      ellipse(x, y, hxf, cy, arx - 0.01, ary - 0.01));
    });
  }
}

void paint_hat(Canvas& cv, const ToyIdentity& id, double hx, double hy, double rx, double ry) {
  const double cy = hy - 0.3 * ry, w = 1.12 * rx + 0.01, h = 0.82 * ry + 0.01, band = hy - 0.45 * ry;
  const double top = cy - h, stripe_h = (band - top) / id.hat_stripes;
  // Dome in colour a, stripes of colour b over it (antialiased along y).
  auto dome = [&](double x, double y) { return std::max(ellipse(x, y, hx, cy, w, h), y - band); };
  cv.fill(hx - w, top, hx + w, band, id.hat_color_a, 1.0, dome);
  for (int k = 1; k < id.hat_stripes; k += 2) {
    const double y0 = top + k * stripe_h, y1 = y0 + stripe_h;
    cv.fill(hx - w, y0, hx + w, y1, id.hat_color_b, 1.0,
            [&](double x, double y) { return std::max(dome(x, y), std::abs(y - (y0 + y1) / 2) - stripe_h / 2); });
  }
  const Rgb cuff = scale(id.hat_color_a, 0.8);
  const double ch = 0.08 * ry + 0.008, cw = w + 0.012;
  cv.fill(hx - cw, band - ch, hx + cw, band + ch, cuff, 1.0,
          [&](double x, double y) { return round_box(x, y, hx, band, cw, ch, 0.015); });
  const double pr = 0.04;
  cv.fill(hx - pr, top - pr, hx + pr, top + pr, id.hat_color_b, 1.0,
          [&](double x, double y) { return circle(x, y, hx, top, pr); });
}

}  // namespace

// ---- names, ranges ---------------------------------------------------------------------------
const char* name(HairStyle s) {
  switch (s) {
    case HairStyle::Bald: return "bald";
    case HairStyle::Short: return "short";
    case HairStyle::Long: return "long";
    case HairStyle::Bob: return "bob";
    case HairStyle::SidePart: return "side_part";
    case HairStyle::Curly: return "curly";
    case HairStyle::Bun: return "bun";
  }
  return "?";
}
const char* name(Glasses g) {
  switch (g) {
    case Glasses::None: return "none";
    case Glasses::Round: return "round";
    case Glasses::Square: return "square";
  }
  return "?";
}
const char* name(Earrings e) {
  switch (e) {
    case Earrings::None: return "none";
    case Earrings::Stud: return "stud";
    case Earrings::Hoop: return "hoop";
  }
  return "?";
}
const char* name(Background b) {
  switch (b) {
    case Background::Stripes: return "stripes";
    case Background::Checker: return "checker";
    case Background::Dots: return "dots";
    case Background::Noise: return "noise";
  }
  return "?";
}

const std::vector<EditRange>& edit_ranges() {
  static const std::vector<EditRange> r = {
      {"yaw", -1, 1}, {"smile", -1, 1}, {"eye_openness", 0, 1}, {"age", 0, 1}};
  return r;
}

double& edit_field(ToyEdit& e, const std::string& attr) {
  if (attr == "yaw") return e.yaw;
  if (attr == "smile") return e.smile;
  if (attr == "eye_openness") return e.eye_openness;
  if (attr == "age") return e.age;
  throw ValueError("toyfaces: unknown edit attribute '" + attr + "' (expected yaw, smile, eye_openness or age)");
}
double edit_field(const ToyEdit& e, const std::string& attr) { return edit_field(const_cast<ToyEdit&>(e), attr); }

void check_edit(const ToyEdit& e) {
  for (const EditRange& r : edit_ranges()) {
    const double v = edit_field(e, r.name);
    GS_CHECK(v >= r.lo && v <= r.hi, ValueError, "toyfaces: edit ", r.name, " must be in [", r.lo, ", ", r.hi,
             "], got ", v);
  }
}

uint64_t train_index(uint64_t k) {
  GS_CHECK(k < kHeldoutBegin, ValueError, "toyfaces: training identity ", k, " is past the training range [0, ",
           kHeldoutBegin, ")");
  return k;
}

// ---- sampling --------------------------------------------------------------------------------
ToyIdentity sample_identity(uint64_t seed, uint64_t index) {
  Draws d(seed, index, kIdentityStream);
  ToyIdentity id;
  id.head_x = 0.5 + d.range(-0.02, 0.02);
  id.head_y = 0.46 + d.range(-0.02, 0.02);
  id.face_rx = d.range(0.2, 0.255);
  id.face_ry = std::min(0.33, id.face_rx * d.range(1.18, 1.38));
  id.jaw = d.u();

  static const std::array<Rgb, 6> skins = {{{0.98, 0.87, 0.78}, {0.95, 0.79, 0.66}, {0.87, 0.66, 0.5},
                                            {0.72, 0.52, 0.37}, {0.55, 0.38, 0.26}, {0.4, 0.27, 0.19}}};
  {
    const double t = d.u() * 5;
    const int i = std::min(4, int(t));
    id.skin = d.jitter(mix(skins[i], skins[i + 1], t - i), 0.02);
  }

  id.hair_style = HairStyle(d.weighted({6, 24, 22, 14, 14, 10, 10}));
  static const std::array<Rgb, 9> hairs = {{{0.08, 0.07, 0.07},
                                            {0.24, 0.15, 0.09},
                                            {0.45, 0.3, 0.17},
                                            {0.86, 0.72, 0.44},
                                            {0.72, 0.32, 0.13},
                                            {0.5, 0.2, 0.12},
                                            {0.92, 0.9, 0.82},
                                            {0.22, 0.36, 0.78},
                                            {0.86, 0.4, 0.62}}};
  id.hair = d.jitter(hairs[d.weighted({22, 22, 18, 13, 8, 8, 3, 3, 3})], 0.04);
  id.hair_volume = d.u();

  static const std::array<Rgb, 6> irises = {{{0.36, 0.2, 0.1},
                                             {0.18, 0.11, 0.07},
                                             {0.3, 0.52, 0.82},
                                             {0.3, 0.56, 0.34},
                                             {0.52, 0.42, 0.2},
                                             {0.55, 0.6, 0.66}}};
  id.eye_color = d.jitter(irises[d.weighted({30, 15, 20, 12, 13, 10})], 0.04);
  id.eye_size = d.range(0.17, 0.22);
  id.eye_spacing = d.range(0.37, 0.46);
  id.eye_height = d.range(-0.17, -0.07);

  id.brow_thickness = d.range(0.008, 0.017);
  id.brow_tilt = d.range(-0.15, 0.25);
  id.brow_arch = d.u();
  id.brow_color = scale(mix(id.hair, Rgb{0.1, 0.07, 0.05}, 0.35), 0.85);

  id.nose_length = d.range(0.22, 0.34);
  id.nose_width = d.range(0.12, 0.2);
  id.mouth_width = d.range(0.3, 0.42);
  id.lip_thickness = d.range(0.011, 0.018);
  id.lip_color = d.jitter(mix(id.skin, Rgb{0.75, 0.3, 0.32}, d.range(0.45, 0.75)), 0.03);

  if (d.chance(0.35)) {
    const int n = 10 + d.pick(26);
    for (int k = 0; k < n; ++k) {
      Spot s;
      const bool nose = d.chance(0.2);
      const double side = d.chance(0.5) ? 1 : -1;
      s.u = nose ? d.range(-0.12, 0.12) : side * d.range(0.12, 0.66);
      s.v = id.eye_height + (nose ? d.range(0.1, 0.26) : d.range(0.12, 0.42));
      s.radius = d.range(0.0045, 0.0075);
      id.freckles.push_back(s);
    }
  }
  const int moles = d.weighted({50, 30, 15, 5});
  for (int k = 0; k < moles; ++k) {
    Spot s;
    s.u = d.range(-0.72, 0.72);
    s.v = d.range(-0.45, 0.8);
    s.radius = d.range(0.007, 0.012);
    id.moles.push_back(s);
  }

  id.earrings = Earrings(d.weighted({60, 20, 20}));
  id.earring_color = d.chance(0.5) ? Rgb{0.93, 0.76, 0.3} : Rgb{0.82, 0.83, 0.88};
  id.glasses = Glasses(d.weighted({70, 15, 15}));
  static const std::array<Rgb, 4> frames = {{{0.08, 0.08, 0.1}, {0.4, 0.24, 0.12}, {0.7, 0.12, 0.14}, {0.15, 0.25, 0.6}}};
  id.glasses_color = frames[d.pick(4)];
  id.hat = d.chance(0.25);
  {
    const double h = d.u();
    id.hat_color_a = hsv(h, d.range(0.45, 0.85), d.range(0.45, 0.85));
    id.hat_color_b = hsv(h + d.range(0.25, 0.75), d.range(0.1, 0.7), d.range(0.75, 1.0));
    id.hat_stripes = 3 + d.pick(4);
  }

  id.background = Background(d.pick(4));
  {
    const double h = d.u();
    id.bg_color_a = hsv(h, d.range(0.15, 0.5), d.range(0.55, 0.9));
    id.bg_color_b = hsv(h + d.range(-0.15, 0.15), d.range(0.1, 0.5), d.range(0.3, 0.95));
  }
  id.bg_frequency = d.range(3, 7);
  id.bg_angle = d.range(0, kPi);
  id.bg_seed = d.bits();
  id.shirt = hsv(d.u(), d.range(0.2, 0.8), d.range(0.3, 0.9));
  return id;
}

ToyEdit sample_edit(uint64_t seed, uint64_t index) {
  Draws d(seed, index, kEditStream);
  ToyEdit e;
  e.yaw = d.range(-1, 1);
  e.smile = d.range(-1, 1);
  const double u = d.u();
  e.eye_openness = 1 - 0.9 * u * u;
  e.age = d.u();
  return e;
}

// ---- geometry shared by layout() and render() -------------------------------------------------
namespace {

struct Geometry {
  double theta, s;          // yaw angle, sin(yaw angle)
  double face_cx;           // face outline centre (shifts a little with yaw)
  double eye_Y, eye_X, ew;  // frontal eye line, |X| of the eye centres, eye half-width
  double nose_tip_Y, mouth_Y, mouth_W;
};

Geometry geometry(const ToyIdentity& id, const ToyEdit& e) {
  Geometry g;
  g.theta = e.yaw * kMaxYaw;
  g.s = std::sin(g.theta);
  g.face_cx = id.head_x + 0.15 * id.face_rx * g.s;
  g.eye_Y = id.eye_height * id.face_ry;
  g.eye_X = id.eye_spacing * id.face_rx;
  g.ew = id.eye_size * id.face_rx;
  g.nose_tip_Y = g.eye_Y + id.nose_length * id.face_ry;
  g.mouth_Y = g.nose_tip_Y + 0.22 * id.face_ry;
  g.mouth_W = id.mouth_width * id.face_rx;
  return g;
}

}  // namespace

FeatureLayout layout(const ToyIdentity& id, const ToyEdit& e) {
  check_edit(e);
  const Geometry g = geometry(id, e);
  Canvas dummy(16);
  const Surface sf(dummy, id.head_x, id.head_y, id.face_rx, g.theta);
  FeatureLayout l;
  l.eye_l_x = sf.project(-g.eye_X);
  l.eye_r_x = sf.project(g.eye_X);
  l.eye_y = id.head_y + g.eye_Y;
  l.nose_x = sf.project(0, 1.22);
  l.nose_y = id.head_y + g.nose_tip_Y;
  l.mouth_x = sf.project(0, 1.04);
  l.mouth_y = id.head_y + g.mouth_Y;
  l.mouth_half_width = 0.5 * (sf.project(g.mouth_W) - sf.project(-g.mouth_W));
  l.hairline_y = id.hair_style == HairStyle::Bald ? id.head_y - id.face_ry
                                                  : hairline(id, 0, id.face_rx, id.face_ry, id.head_y);
  return l;
}

// ---- rendering -------------------------------------------------------------------------------
namespace {

void paint(Canvas& cv, const ToyIdentity& id, const ToyEdit& e) {
  const Geometry g = geometry(id, e);
  const double hx = id.head_x, hy = id.head_y, rx = id.face_rx, ry = id.face_ry, s = g.s;
  const double smile = e.smile, open = e.eye_openness, age = e.age, pw = cv.pw;
  const double lift = std::max(0.0, smile);
  const Rgb hair = aged_hair(id, age);
  const Rgb skin = id.skin;

  paint_background(cv, id);

  // Shoulders and neck.
  cv.fill(hx - 0.5, hy + ry * 1.05, hx + 0.5, 1.0, id.shirt, 1.0,
          [&](double x, double y) { return ellipse(x, y, hx, hy + ry + 0.36, 0.44, 0.24); });
  const Rgb neck = scale(skin, 0.82);
  cv.fill(hx - 0.45 * rx, hy, hx + 0.45 * rx, hy + ry + 0.16, neck, 1.0,
          [&](double x, double y) { return round_box(x, y, hx, hy + 0.5 * ry + 0.05, 0.42 * rx, 0.5 * ry + 0.08, 0.03); });

  HairGeom hg{hx - 0.1 * rx * s, hy, rx, ry, 0.02 + 0.035 * id.hair_volume};
  paint_hair_back(cv, id, hg, hair);

  // Ears, behind the face: the one turning towards the viewer widens and moves in, the other hides.
  const double ear_y = hy + g.eye_Y + 0.12 * ry, ear_ry = 0.17 * ry;
  for (int side : {-1, 1}) {
    const double t = -side * s;
    const double w = 0.2 * rx * (1 + 0.6 * t);
    const double ex = g.face_cx + side * rx * (0.96 + 0.25 * std::min(t, 0.0) - 0.08 * std::max(t, 0.0));
    cv.fill(ex - w, ear_y - ear_ry, ex + w, ear_y + ear_ry, skin, 1.0,
            [&](double x, double y) { return ellipse(x, y, ex, ear_y, w, ear_ry); });
    cv.fill(ex - w, ear_y - ear_ry, ex + w, ear_y + ear_ry, scale(skin, 0.75), 0.8, [&](double x, double y) {
      return ellipse(x, y, ex + side * 0.25 * w, ear_y - 0.05 * ear_ry, 0.45 * w, 0.6 * ear_ry);
    });
    if (id.earrings != Earrings::None && w > 0.12 * rx) {
      const double lx = ex + side * 0.3 * w, ly = ear_y + 0.85 * ear_ry;
      if (id.earrings == Earrings::Stud) {
        cv.fill(lx - 0.02, ly - 0.02, lx + 0.02, ly + 0.02, id.earring_color, 1.0,
                [&](double x, double y) { return circle(x, y, lx, ly, 0.011); });
      } else {
        const double r = 0.022;
        cv.fill(lx - r - 0.01, ly, lx + r + 0.01, ly + 2 * r + 0.01, id.earring_color, 1.0,
                [&](double x, double y) { return std::abs(circle(x, y, lx, ly + r, r)) - 0.0045; });
      }
    }
  }

  // Face outline: ellipse above the centre, superellipse below (exponent from the jaw).
  const double n_low = 1.7 + 1.4 * id.jaw, fcx = g.face_cx;
  auto face = [&](double x, double y) {
    if (y <= hy) return ellipse(x, y, fcx, hy, rx, ry);
    // g = (a^n + b^n)^(1/n); distance ~ (g - 1) / |grad g|, powers through exp/log (pow is slow).
    const double a = std::max(std::abs(x - fcx) / rx, 1e-9), b = std::max((y - hy) / ry, 1e-9);
    const double an = std::exp(n_low * std::log(a)), bn = std::exp(n_low * std::log(b));
    const double sn = an + bn;
    const double gval = std::exp(std::log(sn) / n_low);
    const double k = gval / sn;  // sn^(1/n - 1)
    const double gx = k * (an / a) / rx, gy = k * (bn / b) / ry;
    return (gval - 1) / std::max(1e-9, norm2(gx, gy));
  };
  cv.fill(fcx - rx, hy - ry, fcx + rx, hy + ry, skin, 1.0, face);
  // Rounded shading towards the outline.
  const Rgb shade = scale(skin, 0.72);
  cv.soft(fcx - rx, hy - ry, fcx + rx, hy + ry, shade, [&](double x, double y) {
    const double f = face(x, y);
    if (f >= 0) return 0.0;
    return 0.35 * sq(clamp01(1 + f / (0.3 * rx))) * clamp01(0.5 - f / pw);
  });

  const Surface sf(cv, hx, hy, rx, g.theta);

  // Cheeks: blush that rises and strengthens with a smile.
  const Rgb blush = mix(skin, Rgb{0.9, 0.35, 0.35}, 0.6);
  const double cheek_Y = g.eye_Y + 0.3 * ry - 0.08 * ry * lift, cheek_X = g.eye_X * 1.05, cr = 0.22 * rx;
  sf.soft(cv, -rx, cheek_Y - 2 * cr, rx, cheek_Y + 2 * cr, blush, [&](double X, double Y) {
    const double dd = std::min(sq(X - cheek_X), sq(X + cheek_X)) + sq(Y - cheek_Y);
    return (0.1 + 0.28 * lift) * std::exp(-dd / (cr * cr));
  });
  const Rgb cheek_hi = mix(skin, Rgb{1, 1, 1}, 0.5);
  sf.soft(cv, -rx, cheek_Y - 2 * cr, rx, cheek_Y + cr, cheek_hi, [&](double X, double Y) {
    const double dd = std::min(sq(X - cheek_X), sq(X + cheek_X)) + sq((Y - cheek_Y + 0.35 * cr) * 1.6);
    return 0.3 * lift * std::exp(-dd / (0.5 * cr * cr));
  });

  // Freckles and moles, fixed on the surface.
  const Rgb freckle = mix(skin, Rgb{0.45, 0.25, 0.12}, 0.55), mole = {0.26, 0.15, 0.1};
  for (const auto* list : {&id.freckles, &id.moles}) {
    const bool is_mole = list == &id.moles;
    for (const Spot& sp : *list) {
      const double X = sp.u * rx, Y = sp.v * ry, r = sp.radius;
      sf.fill(cv, X - r, Y - r, X + r, Y + r, is_mole ? mole : freckle, is_mole ? 0.9 : 0.7,
              [&](double x, double y) { return circle(x, y, X, Y, r); });
    }
  }

  // Age lines: forehead, crow's feet, under the eyes, nose-to-mouth folds (the last also deepen with
  // a smile).
  const Rgb line = scale(skin, 0.62);
  const double lt = 0.0035 + 0.0015 * age;
  if (age > 0) {
    for (int k = 0; k < 3; ++k) {
      const double Y = g.eye_Y - 0.42 * ry - k * 0.085 * ry, W = (0.42 - 0.06 * k) * rx;
      sf.fill(cv, -W, Y - 0.04, W, Y + 0.04, line, 0.75 * age, [&](double X, double y) {
        return std::max(std::abs(y - Y - 0.1 * W * sq(X / W) - 0.006 * std::sin(X * 60)) - lt, std::abs(X) - W);
      });
    }
    for (int side : {-1, 1}) {
      const double cxo = side * (g.eye_X + 1.1 * g.ew), cyo = g.eye_Y;
      for (int k = -1; k <= 1; ++k) {
        const double ax = cxo, ay = cyo + k * 0.02, bx = cxo + side * 0.04, by = cyo + k * 0.035;
        sf.fill(cv, std::min(ax, bx) - 0.01, std::min(ay, by) - 0.01, std::max(ax, bx) + 0.01,
                std::max(ay, by) + 0.01, line, 0.8 * age,
                [&](double X, double Y) { return segment(X, Y, ax, ay, bx, by, lt * 0.9); });
      }
      const double bag_Y = g.eye_Y + 0.75 * g.ew, bx0 = side * g.eye_X;
      sf.fill(cv, bx0 - g.ew, bag_Y - 0.02, bx0 + g.ew, bag_Y + 0.02, line, 0.6 * age, [&](double X, double Y) {
        const double t = (X - bx0) / (0.8 * g.ew);
        return std::max(std::abs(Y - bag_Y + 0.3 * g.ew * (1 - t * t)) - lt * 0.8, std::abs(X - bx0) - 0.8 * g.ew);
      });
    }
  }
  const double fold = clamp01(0.8 * age + 0.45 * lift);
  if (fold > 0) {
    for (int side : {-1, 1}) {
      const double ax = side * id.nose_width * rx * 1.3, ay = g.nose_tip_Y - 0.02;
      const double bx = side * (g.mouth_W + 0.012), by = g.mouth_Y - 0.012 * lift + 0.01;
      const double mx = side * (std::abs(bx) + 0.02 + 0.01 * lift), my = (ay + by) / 2;
      sf.fill(cv, std::min({ax, bx, mx}) - 0.02, ay - 0.02, std::max({ax, bx, mx}) + 0.02, by + 0.02, line, 0.7 * fold,
              [&](double X, double Y) {
                return std::min(segment(X, Y, ax, ay, mx, my, lt), segment(X, Y, mx, my, bx, by, lt));
              });
    }
  }

  // Eyes: sclera (almond: two half-ellipses), iris and pupil clipped to it, lash line, highlight.
  const double ht = g.ew * 0.62 * open, hb = g.ew * 0.48 * open * (1 - 0.35 * lift);
  const double gaze = 0.25 * g.ew * s;
  for (int side : {-1, 1}) {
    const double ex = side * g.eye_X, ey = g.eye_Y, ew = g.ew;
    auto sclera = [&](double X, double Y) {
      return ellipse(X, Y, ex, ey, ew, std::max(Y < ey ? ht : hb, 1e-4));
    };
    const double x0 = ex - 1.3 * ew, x1 = ex + 1.3 * ew, y0 = ey - ew, y1 = ey + ew;
    if (open > 0.02) {
      sf.fill(cv, x0, y0, x1, y1, Rgb{0.96, 0.95, 0.93}, 1.0, sclera);
      const double ir = 0.5 * ew;
      sf.fill(cv, x0, y0, x1, y1, id.eye_color, 1.0,
              [&](double X, double Y) { return std::max(circle(X, Y, ex + gaze, ey, ir), sclera(X, Y)); });
      sf.fill(cv, x0, y0, x1, y1, Rgb{0.05, 0.04, 0.04}, 1.0,
              [&](double X, double Y) { return std::max(circle(X, Y, ex + gaze, ey, 0.45 * ir), sclera(X, Y)); });
      sf.fill(cv, x0, y0, x1, y1, Rgb{1, 1, 1}, 0.85, [&](double X, double Y) {
        return std::max(circle(X, Y, ex + gaze + 0.3 * ir, ey - 0.3 * ir, 0.22 * ir), sclera(X, Y));
      });
    }
    // Upper lid line (the whole closed eye when openness is 0), lower lid faint.
    const double lash = 0.0045;
    sf.fill(cv, x0, y0, x1, y1, Rgb{0.1, 0.07, 0.06}, 1.0, [&](double X, double Y) {
      const double top = ellipse(X, Y, ex, ey, ew * 1.04, std::max(ht, 0.002) + 0.001);
      return std::max(std::abs(top) - lash, Y - ey - lash);
    });
    sf.fill(cv, x0, y0, x1, y1, scale(skin, 0.6), 0.5, [&](double X, double Y) {
      const double bot = ellipse(X, Y, ex, ey, ew * 1.0, std::max(hb, 0.002));
      return std::max(std::abs(bot) - 0.6 * lash, ey - Y);
    });
    // Brow (fixed; independent of the eye edits).
    const double bx = ex, by = ey - 0.72 * ew - 0.05 * ry, L = 1.2 * ew;
    const Rgb brow = mix(id.brow_color, Rgb{0.7, 0.7, 0.7}, 0.4 * age);
    sf.fill(cv, bx - L, by - 0.5 * L, bx + L, by + 0.3 * L, brow, 1.0, [&](double X, double Y) {
      const double t = side * (X - bx) / L;  // +1 at the outer end
      const double c = by - id.brow_arch * 0.22 * L * (1 - t * t) - id.brow_tilt * 0.25 * L * t;
      const double th = id.brow_thickness * (0.75 - 0.3 * t);
      return std::max(std::abs(Y - c) - th * 0.5, std::abs(X - bx) - L);
    });
  }

  // Nose (image space from projected points: the tip stands off the surface).
  {
    const double nw = id.nose_width * rx;
    const double tip_x = sf.project(0, 1.22), tip_y = hy + g.nose_tip_Y;
    const double top_x = sf.project(0, 1.03), top_y = hy + g.eye_Y + 0.05 * ry;
    const double k = sf.squeeze(0);
    const Rgb nshade = scale(skin, 0.7);
    // Shadowed flank on the side turned away (or the right side when frontal).
    const double side = s >= 0 ? -1 : 1;
    const double fx = tip_x + side * 0.45 * nw * k, fy = tip_y - 0.01;
    cv.fill(std::min(top_x, fx) - 0.02, top_y - 0.02, std::max(top_x, fx) + 0.02, fy + 0.02, nshade,
            0.35 + 0.4 * std::abs(s), [&](double x, double y) {
              return segment(x, y, top_x + side * 0.2 * nw * k, top_y, fx, fy, 0.0035 + 0.006 * std::abs(s));
            });
    cv.fill(tip_x - nw, tip_y - 0.03, tip_x + nw, tip_y + 0.03, nshade, 0.45, [&](double x, double y) {
      return ellipse(x, y, tip_x, tip_y + 0.006, nw * (0.55 + 0.45 * k), 0.016);
    });
    for (int sd : {-1, 1}) {
      const double nx = tip_x + sd * 0.42 * nw * (0.4 + 0.6 * sf.squeeze(sd * 0.4 * nw)) + 0.2 * nw * s;
      cv.fill(nx - 0.02, tip_y - 0.02, nx + 0.02, tip_y + 0.03, Rgb{0.25, 0.12, 0.1}, 0.55,
              [&](double x, double y) { return ellipse(x, y, nx, tip_y + 0.01, 0.011 * (0.5 + 0.5 * k), 0.0065); });
    }
  }

  // Mouth (frontal): centre line c(t), t = X / W; corners rise with smile, a broad smile opens it.
  {
    const double W = g.mouth_W, Ym = g.mouth_Y, lip = id.lip_thickness;
    const double o = 0.32 * W * smoothstep(0.3, 1.0, smile);  // opening height at the centre
    auto c = [&](double t) { return Ym - smile * 0.32 * W * t * t + smile * 0.08 * W; };
    auto taper = [&](double t) { return std::sqrt(std::max(0.0, 1 - t * t)); };
    auto outer = [&](double X, double Y) {
      const double t = X / W, up = c(t) - 0.9 * lip * taper(t), lo = c(t) + o * (1 - t * t) + 1.1 * lip * taper(t);
      return std::max({up - Y, Y - lo, std::abs(X) - W});
    };
    const double y0 = Ym - W, y1 = Ym + W;
    sf.fill(cv, -W, y0, W, y1, id.lip_color, 1.0, outer);
    // Lower lip a touch lighter.
    sf.fill(cv, -W, y0, W, y1, scale(id.lip_color, 1.12), 0.6, [&](double X, double Y) {
      const double t = X / W;
      return std::max(outer(X, Y), c(t) + o * (1 - t * t) + 0.2 * lip * taper(t) - Y);
    });
    if (o > 0) {
      auto inner = [&](double X, double Y) {
        const double t = X / W;
        return std::max({c(t) - Y, Y - (c(t) + o * (1 - t * t)), std::abs(X) - 0.92 * W});
      };
      sf.fill(cv, -W, y0, W, y1, Rgb{0.28, 0.05, 0.07}, 1.0, inner);
      sf.fill(cv, -W, y0, W, y1, Rgb{0.96, 0.94, 0.88}, 1.0, [&](double X, double Y) {
        const double t = X / W;
        return std::max({inner(X, Y), Y - (c(t) + 0.45 * o * (1 - t * t)), std::abs(X) - 0.7 * W});
      });
    }
    sf.fill(cv, -W, y0, W, y1, scale(id.lip_color, 0.45), 0.9, [&](double X, double Y) {
      return std::max(std::abs(Y - c(X / W)) - 0.0035, std::abs(X) - 1.02 * W);
    });
  }

  // Hair over the forehead, then hat and glasses.
  paint_hair_front(cv, id, hg, hx + 0.04 * rx * s, hair);
  if (id.hat) paint_hat(cv, id, hx + 0.03 * rx * s, hy, rx, ry);

  if (id.glasses != Glasses::None) {
    const double ew = g.ew, fr = 0.0055;
    const double lr = 1.45 * ew, lw = 1.5 * ew, lh = 1.1 * ew;
    for (int side : {-1, 1}) {
      const double ex = side * g.eye_X, ey = g.eye_Y;
      auto lens = [&](double X, double Y) {
        return id.glasses == Glasses::Round ? circle(X, Y, ex, ey, lr) : round_box(X, Y, ex, ey, lw, lh, 0.4 * ew);
      };
      const double x0 = ex - 1.7 * ew, x1 = ex + 1.7 * ew, y0 = ey - 1.7 * ew, y1 = ey + 1.7 * ew;
      sf.fill(cv, x0, y0, x1, y1, id.glasses_color, 0.12, lens);
      sf.fill(cv, x0, y0, x1, y1, id.glasses_color, 1.0,
              [&](double X, double Y) { return std::abs(lens(X, Y)) - fr; });
      const double outer_x = ex + side * (id.glasses == Glasses::Round ? lr : lw);
      const double temple_x = side * 0.97 * rx;
      sf.fill(cv, std::min(outer_x, temple_x), ey - 0.6 * ew, std::max(outer_x, temple_x), ey, id.glasses_color, 1.0,
              [&](double X, double Y) { return segment(X, Y, outer_x, ey - 0.3 * ew, temple_x, ey - 0.35 * ew, fr); });
    }
    const double inner = g.eye_X - (id.glasses == Glasses::Round ? lr : lw);
    sf.fill(cv, -inner, g.eye_Y - ew, inner, g.eye_Y, id.glasses_color, 1.0, [&](double X, double Y) {
      return segment(X, Y, -inner, g.eye_Y - 0.3 * ew, inner, g.eye_Y - 0.3 * ew, fr);
    });
  }
}

}  // namespace

void render_into(const ToyIdentity& id, const ToyEdit& e, int size, float* chw) {
  GS_CHECK(size >= 16 && size <= 4096, ValueError, "toyfaces::render: size must be in [16, 4096], got ", size);
  check_edit(e);
  Canvas cv(size);
  paint(cv, id, e);
  const size_t n = size_t(size) * size_t(size);
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) chw[c * n + i] = std::clamp(cv.rgb[i * 3 + c], 0.f, 1.f);
}

Tensor render(const ToyIdentity& id, const ToyEdit& e, int size) {
  GS_CHECK(size >= 16 && size <= 4096, ValueError, "toyfaces::render: size must be in [16, 4096], got ", size);
  std::vector<float> chw(size_t(3) * size * size);
  render_into(id, e, size, chw.data());
  return Tensor::from_vector(chw, {3, int64_t(size), int64_t(size)});
}

io::Image render_image(const ToyIdentity& id, const ToyEdit& e, int size) {
  GS_CHECK(size >= 16 && size <= 4096, ValueError, "toyfaces::render_image: size must be in [16, 4096], got ", size);
  std::vector<float> chw(size_t(3) * size * size);
  render_into(id, e, size, chw.data());
  io::Image img = io::Image::blank(size, size, 3);
  const size_t n = size_t(size) * size_t(size);
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) img.pixels[i * 3 + c] = uint8_t(std::lround(chw[c * n + i] * 255.f));
  return img;
}

Tensor to_network_input(const Tensor& images01) {
  GS_CHECK(images01.defined(), ValueError, "toyfaces::to_network_input: undefined tensor");
  GS_CHECK((images01.dim() == 3 && images01.size(0) == 3) || (images01.dim() == 4 && images01.size(1) == 3), ShapeError,
           "toyfaces::to_network_input: expected [3,H,W] or [N,3,H,W], got ", shape_str(images01.shape()));
  std::vector<float> v = images01.to_vector<float>();
  for (float& x : v) x = x * 2.f - 1.f;
  Shape shape = images01.shape();
  if (shape.size() == 3) shape.insert(shape.begin(), 1);
  return Tensor::from_vector(v, shape, images01.device());
}

// ---- labels ----------------------------------------------------------------------------------
static nlohmann::json to_json_object(const ToyIdentity& id, const ToyEdit& e) {
  using nlohmann::json;
  auto rgb = [](const Rgb& c) { return json::array({c.r, c.g, c.b}); };
  auto spots = [](const std::vector<Spot>& v) {
    json a = json::array();
    for (const Spot& s : v) a.push_back(json::array({s.u, s.v, s.radius}));
    return a;
  };
  json j;
  j["identity"] = {
      {"head_x", id.head_x},
      {"head_y", id.head_y},
      {"face_rx", id.face_rx},
      {"face_ry", id.face_ry},
      {"jaw", id.jaw},
      {"skin", rgb(id.skin)},
      {"hair_style", name(id.hair_style)},
      {"hair", rgb(id.hair)},
      {"hair_volume", id.hair_volume},
      {"eye_color", rgb(id.eye_color)},
      {"eye_size", id.eye_size},
      {"eye_spacing", id.eye_spacing},
      {"eye_height", id.eye_height},
      {"brow_thickness", id.brow_thickness},
      {"brow_tilt", id.brow_tilt},
      {"brow_arch", id.brow_arch},
      {"brow_color", rgb(id.brow_color)},
      {"nose_length", id.nose_length},
      {"nose_width", id.nose_width},
      {"mouth_width", id.mouth_width},
      {"lip_thickness", id.lip_thickness},
      {"lip_color", rgb(id.lip_color)},
      {"freckles", spots(id.freckles)},
      {"moles", spots(id.moles)},
      {"earrings", name(id.earrings)},
      {"earring_color", rgb(id.earring_color)},
      {"glasses", name(id.glasses)},
      {"glasses_color", rgb(id.glasses_color)},
      {"hat", id.hat},
      {"hat_color_a", rgb(id.hat_color_a)},
      {"hat_color_b", rgb(id.hat_color_b)},
      {"hat_stripes", id.hat_stripes},
      {"background", name(id.background)},
      {"bg_color_a", rgb(id.bg_color_a)},
      {"bg_color_b", rgb(id.bg_color_b)},
      {"bg_frequency", id.bg_frequency},
      {"bg_angle", id.bg_angle},
      {"bg_seed", id.bg_seed},
      {"shirt", rgb(id.shirt)},
  };
  j["edit"] = {{"yaw", e.yaw}, {"smile", e.smile}, {"eye_openness", e.eye_openness}, {"age", e.age}};
  return j;
}

std::string to_json(const ToyIdentity& id, const ToyEdit& e) { return to_json_object(id, e).dump(); }

}  // namespace gradstyle::data::toyfaces
