// Perspective warp op, homography solver and random homography sampler (SPEC B.7).
#include "gradstyle/ops/perspective_warp.hpp"

#include <cmath>
#include <memory>

#include "backend/perspective_warp_kernels.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::record;
using backend::make_view;
using namespace ops_detail;
using V = std::vector<Tensor>;

Tensor random_warp_corners(int64_t batch, Generator& gen, const RandomHomographyOptions& o) {
  GS_CHECK(batch >= 0, ValueError, "random_warp_corners: batch must be >= 0, got ", batch);
  GS_CHECK(o.distortion >= 0.0 && o.distortion < 1.0, ValueError,
           "random_warp_corners: distortion must be in [0, 1), got ", o.distortion);
  GS_CHECK(o.prob >= 0.0 && o.prob <= 1.0, ValueError, "random_warp_corners: prob must be in [0, 1], got ", o.prob);
  // source corners TL, TR, BR, BL and the inward signs
  static const double cx[4] = {-1, 1, 1, -1}, cy[4] = {-1, -1, 1, 1};
  const uint64_t seed = gen.seed(), base = gen.advance(uint64_t(9 * batch));
  std::vector<double> out(size_t(batch * 8));
  for (int64_t b = 0; b < batch; ++b) {
    const uint64_t c0 = uint64_t(9 * b);
    const bool warp = philox_uniform(seed, base, c0) <= o.prob;
    for (int k = 0; k < 4; ++k) {
      const double ux = philox_uniform(seed, base, c0 + 1 + 2 * uint64_t(k));
      const double uy = philox_uniform(seed, base, c0 + 2 + 2 * uint64_t(k));
      out[size_t(b * 8 + 2 * k)] = warp ? cx[k] - cx[k] * o.distortion * ux : cx[k];
      out[size_t(b * 8 + 2 * k + 1)] = warp ? cy[k] - cy[k] * o.distortion * uy : cy[k];
    }
  }
  return Tensor::from_vector(out, {batch, 4, 2});
}

namespace {

// Solves the 8 x 8 system for h (h22 = 1) with H (u, v, 1) ∝ (x, y, 1) for the four pairs.
void solve_homography(const double* dst, const double* src, double* h) {
  double A[8][9];
  for (int k = 0; k < 4; ++k) {
    const double u = dst[2 * k], v = dst[2 * k + 1], x = src[2 * k], y = src[2 * k + 1];
    double r0[9] = {u, v, 1, 0, 0, 0, -u * x, -v * x, x};
    double r1[9] = {0, 0, 0, u, v, 1, -u * y, -v * y, y};
    for (int j = 0; j < 9; ++j) A[2 * k][j] = r0[j], A[2 * k + 1][j] = r1[j];
  }
  for (int c = 0; c < 8; ++c) {
    int piv = c;
    for (int r = c + 1; r < 8; ++r)
      if (std::abs(A[r][c]) > std::abs(A[piv][c])) piv = r;
    GS_CHECK(std::abs(A[piv][c]) > 1e-12, ValueError,
             "homography_from_corners: degenerate corners (three of them collinear or repeated)");
    if (piv != c)
      for (int j = 0; j < 9; ++j) std::swap(A[c][j], A[piv][j]);
    for (int r = 0; r < 8; ++r) {
      if (r == c) continue;
      const double f = A[r][c] / A[c][c];
      for (int j = c; j < 9; ++j) A[r][j] -= f * A[c][j];
    }
  }
  for (int i = 0; i < 8; ++i) h[i] = A[i][8] / A[i][i];
  h[8] = 1.0;
}

// Inverse of a 3x3 matrix (adjugate / determinant); ValueError when singular.
void inverse3(const double* m, double* r, const char* op) {
  const double c00 = m[4] * m[8] - m[5] * m[7], c01 = m[5] * m[6] - m[3] * m[8], c02 = m[3] * m[7] - m[4] * m[6];
  const double det = m[0] * c00 + m[1] * c01 + m[2] * c02;
  GS_CHECK(std::isfinite(det) && det != 0.0, ValueError, op, ": singular or non-finite homography (det ", det, ")");
  const double id = 1.0 / det;
  r[0] = c00 * id, r[1] = (m[2] * m[7] - m[1] * m[8]) * id, r[2] = (m[1] * m[5] - m[2] * m[4]) * id;
  r[3] = c01 * id, r[4] = (m[0] * m[8] - m[2] * m[6]) * id, r[5] = (m[2] * m[3] - m[0] * m[5]) * id;
  r[6] = c02 * id, r[7] = (m[1] * m[6] - m[0] * m[7]) * id, r[8] = (m[0] * m[4] - m[1] * m[3]) * id;
}

// The homographies of one warp, on the host and (as dense [B, 9] float64) on the data's device.
struct Homs {
  int64_t batch = 0;
  Tensor h, hinv;
};
using HomsPtr = std::shared_ptr<const Homs>;

HomsPtr make_homs(const Tensor& H, int64_t batch, Device dev, const char* op) {
  check_defined(H, op, "H");
  check_float(H, op);
  GS_CHECK(H.dim() == 3 && H.size(0) == batch && H.size(1) == 3 && H.size(2) == 3, ShapeError, op, ": H must be [",
           batch, ", 3, 3] for a batch of ", batch, ", got ", shape_str(H.shape()));
  GS_CHECK(!(autograd::is_grad_enabled() && H.requires_grad()), AutogradError, op,
           ": no gradient with respect to H is provided; pass H.detach()");
  std::vector<double> h = H.to_vector<double>(), hi(h.size());
  for (int64_t b = 0; b < batch; ++b) {
    for (int j = 0; j < 9; ++j)
      GS_CHECK(std::isfinite(h[size_t(9 * b + j)]), ValueError, op, ": H[", b, "] has a non-finite entry");
    inverse3(h.data() + 9 * b, hi.data() + 9 * b, op);
  }
  auto r = std::make_shared<Homs>();
  r->batch = batch;
  r->h = Tensor::from_vector(h, {batch, 9}, dev);
  r->hinv = Tensor::from_vector(hi, {batch, 9}, dev);
  return r;
}

backend::WarpLevels levels_of(const std::vector<Tensor>& src, const std::vector<Tensor>& dst, size_t i0, size_t n) {
  backend::WarpLevels lv;
  lv.n = int(n);
  for (size_t l = 0; l < n; ++l) {
    const Tensor& s = src[i0 + l];
    lv.src[l] = s.raw_data();
    lv.dst[l] = dst[i0 + l].raw_data();
    lv.C[l] = s.size(1), lv.H[l] = s.size(2), lv.W[l] = s.size(3);
  }
  return lv;
}

// Raw forward (adjoint = false) or adjoint (gradient) warp of dense maps, in groups of 4 levels.
std::vector<Tensor> run_raw(const std::vector<Tensor>& xs, const Homs& hm, bool adjoint) {
  std::vector<Tensor> src, dst;
  for (const Tensor& x : xs) {
    src.push_back(x.detach().contiguous());
    dst.push_back(Tensor::empty(x.shape(), {x.dtype(), x.device()}));
  }
  if (src.empty() || hm.batch == 0) return dst;
  const Device dev = src[0].device();
  const DType dt = src[0].dtype();
  for (size_t i0 = 0; i0 < src.size(); i0 += backend::kMaxWarpLevels) {
    const size_t n = std::min<size_t>(backend::kMaxWarpLevels, src.size() - i0);
    backend::WarpLevels lv = levels_of(src, dst, i0, n);
    if (adjoint)
      GS_DISPATCH(dev, perspective_warp_backward, lv, make_view(hm.h), make_view(hm.hinv), hm.batch, dt);
    else
      GS_DISPATCH(dev, perspective_warp_forward, lv, make_view(hm.h), hm.batch, dt);
  }
  return dst;
}

Tensor warp_apply(const Tensor& x, const HomsPtr& hm, bool adjoint);

// Records out = warp(x) (or its adjoint); the backward of either is the other, so every order of
// derivative is exact.
void record_warp(Tensor& out, const Tensor& x, const HomsPtr& hm, bool adjoint) {
  if (!any_requires_grad({&x})) return;
  record(adjoint ? "perspective_warp_backward" : "perspective_warp", out, {x},
         [hm, adjoint](const Tensor& g) { return V{warp_apply(g, hm, !adjoint)}; });
}

Tensor warp_apply(const Tensor& x, const HomsPtr& hm, bool adjoint) {
  Tensor out = run_raw({x}, *hm, adjoint)[0];
  record_warp(out, x, hm, adjoint);
  return out;
}

void check_map(const Tensor& x, int64_t batch, DType dt, Device dev, const char* op) {
  GS_CHECK(x.size(0) == batch, ShapeError, op, ": maps disagree in batch size: ", shape_str(x.shape()), " vs batch ",
           batch);
  GS_CHECK(x.dtype() == dt, DTypeError, op, ": maps disagree in dtype: ", dtype_name(x.dtype()), " vs ",
           dtype_name(dt));
  GS_CHECK(x.device() == dev, DeviceError, op, ": maps disagree in device: ", x.device().str(), " vs ", dev.str());
}

}  // namespace

Tensor homography_from_corners(const Tensor& dst_corners) {
  check_float(dst_corners, "homography_from_corners");
  GS_CHECK(dst_corners.dim() == 3 && dst_corners.size(1) == 4 && dst_corners.size(2) == 2, ShapeError,
           "homography_from_corners: corners must be [B, 4, 2], got ", shape_str(dst_corners.shape()));
  static const double src[8] = {-1, -1, 1, -1, 1, 1, -1, 1};
  const int64_t B = dst_corners.size(0);
  std::vector<double> d = dst_corners.to_vector<double>(), h(size_t(9 * B));
  for (int64_t b = 0; b < B; ++b) solve_homography(d.data() + 8 * b, src, h.data() + 9 * b);
  return Tensor::from_vector(h, {B, 3, 3});
}

Tensor random_homographies(int64_t batch, Generator& gen, const RandomHomographyOptions& o) {
  return homography_from_corners(random_warp_corners(batch, gen, o));
}

std::vector<Tensor> perspective_warp(const std::vector<Tensor>& xs, const Tensor& H) {
  const char* op = "perspective_warp";
  if (xs.empty()) return {};
  for (const Tensor& x : xs) {
    check_defined(x, op, "x");
    check_float(x, op);
    GS_CHECK(x.dim() == 4, ShapeError, op, ": x must be [B, C, H, W], got ", shape_str(x.shape()));
  }
  const int64_t B = xs[0].size(0);
  for (const Tensor& x : xs) check_map(x, B, xs[0].dtype(), xs[0].device(), op);
  HomsPtr hm = make_homs(H, B, xs[0].device(), op);
  std::vector<Tensor> outs = run_raw(xs, *hm, false);
  for (size_t i = 0; i < xs.size(); ++i) record_warp(outs[i], xs[i], hm, false);
  return outs;
}

Tensor perspective_warp(const Tensor& x, const Tensor& H) {
  check_defined(x, "perspective_warp", "x");
  return perspective_warp(std::vector<Tensor>{x}, H)[0];
}

}  // namespace gradstyle
