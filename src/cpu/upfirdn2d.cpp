// CPU upfirdn2d (correlation form, see backend/upfirdn2d_kernels.hpp).
//
// Polyphase: for each output coordinate only the taps that land on real (not zero-inserted,
// not padding) input samples are visited, so nothing is multiplied by inserted zeros. Rows are
// independent: the work is split over (plane, output row) with OpenMP. Without horizontal
// upsampling the inner loop is a contiguous (or down_x-strided) axpy over the output row, which
// the compiler vectorises; with horizontal upsampling and no decimation it writes every up_x-th
// output; only up and down together on x use per-output tap tables.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "backend/upfirdn2d_kernels.hpp"

namespace gradstyle::cpu {

using backend::StridedView;
using backend::UpFirDnGeom;

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t pos_mod(int64_t a, int64_t b) { return ((a % b) + b) % b; }

// For each output coordinate o: the (tap, input index) pairs with input in range.
struct AxisTaps {
  std::vector<int64_t> start;  // size out + 1
  std::vector<int64_t> tap, idx;
};

AxisTaps axis_taps(int64_t in, int64_t out, int64_t up, int64_t down, int64_t pad0, int64_t k) {
  AxisTaps a;
  a.start.reserve(size_t(out + 1));
  for (int64_t o = 0; o < out; ++o) {
    a.start.push_back(int64_t(a.tap.size()));
    const int64_t base = o * down - pad0;  // upsampled coordinate of tap 0
    for (int64_t t = pos_mod(-base, up); t < k; t += up) {
      const int64_t i = (base + t) / up;  // exact: base + t is a multiple of up
      if (base + t >= 0 && i < in) {
        a.tap.push_back(t);
        a.idx.push_back(i);
      }
    }
  }
  a.start.push_back(int64_t(a.tap.size()));
  return a;
}

template <class T>
void upfirdn_t(const UpFirDnGeom& g, T* y, const T* x, const T* f) {
  const AxisTaps ty = axis_taps(g.h, g.oh, g.up_y, g.down_y, g.pad_y0, g.kh);
  const AxisTaps tx = (g.up_x == 1 || g.down_x == 1) ? AxisTaps{} : axis_taps(g.w, g.ow, g.up_x, g.down_x, g.pad_x0, g.kw);
  // Without horizontal upsampling: for tap kx, valid ox satisfy 0 <= ox*down_x + kx - pad_x0 < w.
  std::vector<int64_t> lo(size_t(g.kw)), hi(size_t(g.kw));
  if (g.up_x == 1) {
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const int64_t off = kx - g.pad_x0;
      int64_t l = off >= 0 ? 0 : floor_div(-off + g.down_x - 1, g.down_x);
      int64_t h = (g.w - 1 - off) < 0 ? 0 : std::min(g.ow, (g.w - 1 - off) / g.down_x + 1);
      l = std::min(l, g.ow);
      lo[size_t(kx)] = l;
      hi[size_t(kx)] = std::max(h, l);
    }
  }
  const int64_t rows = g.planes * g.oh;
#pragma omp parallel for schedule(static) if (rows * g.ow * g.kh * g.kw > (1 << 18))
  for (int64_t pr = 0; pr < rows; ++pr) {
    const int64_t p = pr / g.oh, oy = pr % g.oh;
    const T* xp = x + p * g.h * g.w;
    T* yr = y + pr * g.ow;
    if (g.up_x == 1) {
      std::fill(yr, yr + g.ow, T(0));
      for (int64_t j = ty.start[size_t(oy)]; j < ty.start[size_t(oy) + 1]; ++j) {
        const T* xr = xp + ty.idx[size_t(j)] * g.w;
        const T* fr = f + ty.tap[size_t(j)] * g.kw;
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const T c = fr[kx];
          const int64_t off = kx - g.pad_x0, l = lo[size_t(kx)], h = hi[size_t(kx)];
          if (g.down_x == 1) {
            const T* xs = xr + off;
            for (int64_t ox = l; ox < h; ++ox) yr[ox] += c * xs[ox];
          } else {
            for (int64_t ox = l; ox < h; ++ox) yr[ox] += c * xr[ox * g.down_x + off];
          }
        }
      }
    } else if (g.down_x == 1) {
      // Horizontal upsampling only: for tap kx the outputs that hit real samples are every
      // up_x-th one, reading consecutive inputs.
      std::fill(yr, yr + g.ow, T(0));
      for (int64_t j = ty.start[size_t(oy)]; j < ty.start[size_t(oy) + 1]; ++j) {
        const T* xr = xp + ty.idx[size_t(j)] * g.w;
        const T* fr = f + ty.tap[size_t(j)] * g.kw;
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const T c = fr[kx];
          const int64_t off = kx - g.pad_x0;  // u = ox + off must be a multiple of up_x in [0, w*up_x)
          const int64_t lo = std::max<int64_t>(0, -off), hi = std::min(g.ow, g.w * g.up_x - off);
          int64_t ox = lo + pos_mod(-(lo + off), g.up_x);
          for (int64_t ix = (ox + off) / g.up_x; ox < hi; ox += g.up_x, ++ix) yr[ox] += c * xr[ix];
        }
      }
    } else {
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        T acc = T(0);
        for (int64_t j = ty.start[size_t(oy)]; j < ty.start[size_t(oy) + 1]; ++j) {
          const T* xr = xp + ty.idx[size_t(j)] * g.w;
          const T* fr = f + ty.tap[size_t(j)] * g.kw;
          for (int64_t i = tx.start[size_t(ox)]; i < tx.start[size_t(ox) + 1]; ++i)
            acc += fr[tx.tap[size_t(i)]] * xr[tx.idx[size_t(i)]];
        }
        yr[ox] = acc;
      }
    }
  }
}

}  // namespace

void upfirdn2d(const UpFirDnGeom& g, const StridedView& y, const StridedView& x, const StridedView& f) {
  if (y.dtype == DType::f32)
    return upfirdn_t<float>(g, static_cast<float*>(y.data), static_cast<const float*>(x.data),
                            static_cast<const float*>(f.data));
  if (y.dtype == DType::f64)
    return upfirdn_t<double>(g, static_cast<double*>(y.data), static_cast<const double*>(x.data),
                             static_cast<const double*>(f.data));
  throw DTypeError(err_msg("upfirdn2d: unsupported dtype ", dtype_name(y.dtype)));
}

}  // namespace gradstyle::cpu
