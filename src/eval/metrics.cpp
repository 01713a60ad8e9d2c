#include "gradstyle/eval/metrics.hpp"

#include <algorithm>
#include <cmath>

#include "gradstyle/core/error.hpp"

namespace gradstyle::eval {

namespace {

// [B, C, H, W] -> contiguous float64 on the CPU, mapped from [-1, 1] to [0, 1].
std::vector<double> unit_range(const Tensor& t) {
  std::vector<double> v = t.detach().to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
  for (double& x : v) x = (x + 1.0) * 0.5;
  return v;
}

void check(const Tensor& x, const Tensor& y, const char* what) {
  GS_CHECK(x.dim() == 4 && x.shape() == y.shape(), ShapeError, "eval::", what, ": expected two [B, C, H, W] images of one shape, got ",
           shape_str(x.shape()), " and ", shape_str(y.shape()));
}

}  // namespace

std::vector<double> l2(const Tensor& x, const Tensor& y) {
  check(x, y, "l2");
  const auto a = unit_range(x), b = unit_range(y);
  const int64_t B = x.size(0), n = x.numel() / std::max<int64_t>(B, 1);
  std::vector<double> out(size_t(B), 0.0);
  for (int64_t i = 0; i < B; ++i) {
    double s = 0;
    for (int64_t k = 0; k < n; ++k) {
      const double d = 2.0 * (a[size_t(i * n + k)] - b[size_t(i * n + k)]);  // back to [-1, 1] units
      s += d * d;
    }
    out[size_t(i)] = s / double(n);
  }
  return out;
}

std::vector<double> psnr(const Tensor& x, const Tensor& y) {
  std::vector<double> m = l2(x, y);
  for (double& v : m) v = v / 4.0 <= 1e-10 ? 100.0 : 10.0 * std::log10(4.0 / v);  // MSE on [0, 1] = l2 / 4
  return m;
}

std::vector<double> ssim(const Tensor& x, const Tensor& y) {
  check(x, y, "ssim");
  constexpr int64_t kWin = 21;
  constexpr double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;
  const double N = double(kWin * kWin), cov_norm = N / (N - 1);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  GS_CHECK(H >= kWin && W >= kWin, ShapeError, "eval::ssim: images of ", H, " x ", W,
           " are smaller than the 21 x 21 window");
  const auto a = unit_range(x), b = unit_range(y);
  // Box sums of the five moment maps by separable running sums, "valid" positions only.
  const int64_t Ho = H - kWin + 1, Wo = W - kWin + 1;
  std::vector<double> out(size_t(B), 0.0);
  std::vector<double> rows(size_t(5 * H * Wo));
  for (int64_t n = 0; n < B; ++n) {
    double acc = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double* pa = a.data() + (n * C + c) * H * W;
      const double* pb = b.data() + (n * C + c) * H * W;
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          double m[5] = {0, 0, 0, 0, 0};
          for (int64_t k = 0; k < kWin; ++k) {
            const double u = pa[i * W + j + k], v = pb[i * W + j + k];
            m[0] += u;
            m[1] += v;
            m[2] += u * u;
            m[3] += v * v;
            m[4] += u * v;
          }
          for (int q = 0; q < 5; ++q) rows[size_t((q * H + i) * Wo + j)] = m[q];
        }
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          double m[5] = {0, 0, 0, 0, 0};
          for (int64_t k = 0; k < kWin; ++k)
            for (int q = 0; q < 5; ++q) m[q] += rows[size_t((q * H + i + k) * Wo + j)];
          for (double& v : m) v /= N;
          const double mu_a = m[0], mu_b = m[1];
          const double va = cov_norm * (m[2] - mu_a * mu_a), vb = cov_norm * (m[3] - mu_b * mu_b),
                       cov = cov_norm * (m[4] - mu_a * mu_b);
          acc += ((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a * mu_a + mu_b * mu_b + C1) * (va + vb + C2));
        }
    }
    out[size_t(n)] = acc / double(C * Ho * Wo);
  }
  return out;
}

Tensor quantize_u8(const Tensor& x) {
  std::vector<float> v = x.detach().to(Device::cpu()).to(DType::f32).contiguous().to_vector<float>();
  for (float& f : v) {
    const double u = std::min(1.0, std::max(0.0, (double(f) + 1.0) * 0.5));
    f = float(std::round(u * 255.0) / 255.0 * 2.0 - 1.0);
  }
  return Tensor::from_vector<float>(v, x.shape()).to(x.device());
}

double mean_of(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

}  // namespace gradstyle::eval
