// torchvision RandomPerspective semantics as homographies (include/gradstyle/train/warp.hpp).
#include "gradstyle/train/warp.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gradstyle/core/error.hpp"

namespace gradstyle::train {

Tensor torchvision_homography(int64_t height, int64_t width, const double end[8]) {
  GS_CHECK(height >= 2 && width >= 2, ValueError, "torchvision warp: the map must be at least 2 x 2, got ", height,
           " x ", width);
  const int64_t W = width, H = height;
  // torchvision's coefficient space puts pixel i's centre at i + 0.5 (its base grid), so a corner
  // coordinate p is the normalised 2p / W - 1; the start corners are then (-1, -1), (1 - 2/W, -1),
  // (1 - 2/W, 1 - 2/H), (-1, 1 - 2/H). The affine A: x -> sx (x + 1) - 1 (likewise y) takes them
  // to (+-1, +-1), where homography_from_corners puts its sources.
  const double sx = 1.0 / (1.0 - 1.0 / double(W)), sy = 1.0 / (1.0 - 1.0 / double(H));
  std::vector<double> dst(8);
  for (int k = 0; k < 4; ++k) {
    dst[size_t(2 * k)] = sx * (2 * end[2 * k] / double(W)) - 1;
    dst[size_t(2 * k + 1)] = sy * (2 * end[2 * k + 1] / double(H)) - 1;
  }
  const Tensor h = homography_from_corners(Tensor::from_vector(dst, {1, 4, 2}));
  const std::vector<double> m = h.to_vector<double>();  // A(end) -> A(start)
  // A^-1 m A: normalised end corners -> normalised start corners.
  const double a[9] = {sx, 0, sx - 1, 0, sy, sy - 1, 0, 0, 1};
  const double ai[9] = {1 / sx, 0, 1 / sx - 1, 0, 1 / sy, 1 / sy - 1, 0, 0, 1};
  auto mul = [](const double* x, const double* y, double* out) {
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        out[3 * i + j] = 0;
        for (int k = 0; k < 3; ++k) out[3 * i + j] += x[3 * i + k] * y[3 * k + j];
      }
  };
  double ma[9], r[9];
  mul(m.data(), a, ma);
  mul(ai, ma, r);
  return Tensor::from_vector(std::vector<double>(r, r + 9), {1, 3, 3});
}

Tensor torchvision_perspective_homographies(int64_t batch, int64_t height, int64_t width, Generator& gen,
                                            const RandomHomographyOptions& o) {
  GS_CHECK(batch >= 0, ValueError, "torchvision warp: batch must be >= 0, got ", batch);
  GS_CHECK(height >= 2 && width >= 2, ValueError, "torchvision warp: the map must be at least 2 x 2, got ", height,
           " x ", width);
  GS_CHECK(o.distortion >= 0.0 && o.distortion < 1.0, ValueError, "torchvision warp: distortion must be in [0, 1), got ",
           o.distortion);
  GS_CHECK(o.prob >= 0.0 && o.prob <= 1.0, ValueError, "torchvision warp: prob must be in [0, 1], got ", o.prob);
  const uint64_t seed = gen.seed(), base = gen.advance(9);
  // torch.randint(lo, hi): an integer in [lo, hi), here from the uniform u in (0, 1].
  auto randint = [&](uint64_t i, int64_t lo, int64_t hi) {
    const double u = philox_uniform(seed, base, i);
    return lo + std::min(hi - lo - 1, int64_t(std::floor(u * double(hi - lo))));
  };
  const int64_t W = width, H = height;
  const int64_t dw = int64_t(o.distortion * double(W / 2)), dh = int64_t(o.distortion * double(H / 2));
  const bool apply = philox_uniform(seed, base, 0) <= o.prob;
  // end corners TL, TR, BR, BL in pixel coordinates, in get_params' order of draws
  double end[8] = {0, 0, double(W - 1), 0, double(W - 1), double(H - 1), 0, double(H - 1)};
  if (apply) {
    end[0] = double(randint(1, 0, dw + 1));
    end[1] = double(randint(2, 0, dh + 1));
    end[2] = double(randint(3, W - dw - 1, W));
    end[3] = double(randint(4, 0, dh + 1));
    end[4] = double(randint(5, W - dw - 1, W));
    end[5] = double(randint(6, H - dh - 1, H));
    end[6] = double(randint(7, 0, dw + 1));
    end[7] = double(randint(8, H - dh - 1, H));
  }
  const std::vector<double> r = torchvision_homography(H, W, end).to_vector<double>();
  std::vector<double> out;
  out.reserve(size_t(9 * batch));
  for (int64_t b = 0; b < batch; ++b) out.insert(out.end(), r.begin(), r.end());
  return Tensor::from_vector(out, {batch, 3, 3});
}

}  // namespace gradstyle::train
