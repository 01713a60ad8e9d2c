// Kernel lab: the perspective warp of the three GradStyle feature scales (batch 8, 512 channels,
// 8x8, 16x16 and 32x32, one homography per sample shared by the scales), CPU and CUDA, forward and
// forward + backward. Variants:
//   0 fused_all_scales : perspective_warp({f8, f16, f32}, H): one kernel launch for all scales
//   1 per_scale        : perspective_warp(f, H) once per scale
//   2 grid_sample      : the homography grid built with tensor ops, then grid_sample (the
//                        PyTorch-style formulation, with our own ops)
// Check before timing: every output (and input gradient) of the timed run against the float64
// CPU warp (1e-5 + 1e-4 |ref|). Counters: bytes moved (one read + one write of every map per
// direction) per second, and on CUDA floor_ms = those bytes at 3.0 TB/s (PERFORMANCE.md §7).
#include "gradstyle/ops/grid_sample.hpp"
#include "gradstyle/ops/perspective_warp.hpp"
#include "lab_common.hpp"

using namespace gradstyle;

namespace {

constexpr int64_t kB = 8, kC = 512;
const int64_t kSizes[3] = {8, 16, 32};

// grid [B, h, w, 2] = dehomogenised H (u, v, 1) at the pixel centres, from tensor ops
Tensor homography_grid(const Tensor& H, int64_t h, int64_t w) {
  std::vector<double> pts;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      pts.push_back((2.0 * double(x) + 1.0) / double(w) - 1.0);
      pts.push_back((2.0 * double(y) + 1.0) / double(h) - 1.0);
      pts.push_back(1.0);
    }
  Tensor P = Tensor::from_vector(pts, {h * w, 3}).to(H.dtype()).to(H.device());
  Tensor p = matmul(H, transpose(P, 0, 1));                          // [B, 3, hw]
  Tensor xy = div(narrow(p, 1, 0, 2), narrow(p, 1, 2, 1));           // [B, 2, hw]
  return reshape(permute(xy, {0, 2, 1}), {H.size(0), h, w, 2});
}

void BM_perspective_warp(benchmark::State& st) {
  const Device d = lab::dev_of(st.range(0));
  const int64_t variant = st.range(1);
  const bool bwd = st.range(2) != 0;
  if (lab::skip_device(st, d)) return;
  Generator gen(12345);
  Tensor H = random_homographies(kB, gen);  // default distortion 0.15, p = 0.9
  Tensor Hd = H.to(DType::f32).to(d);
  std::vector<Tensor> xs, gys;
  double bytes = 0;
  for (int i = 0; i < 3; ++i) {
    xs.push_back(Tensor::randn({kB, kC, kSizes[i], kSizes[i]}, 10 + i, {DType::f32, d}));
    gys.push_back(Tensor::randn({kB, kC, kSizes[i], kSizes[i]}, 20 + i, {DType::f32, d}));
    if (bwd) xs.back().requires_grad_();
    bytes += 2.0 * double(xs.back().numel()) * 4.0;
  }
  auto forward = [&]() -> std::vector<Tensor> {
    if (variant == 0) return perspective_warp(xs, H);
    std::vector<Tensor> r;
    for (int i = 0; i < 3; ++i)
      r.push_back(variant == 1 ? perspective_warp(xs[size_t(i)], H)
                               : grid_sample(xs[size_t(i)], homography_grid(Hd, kSizes[i], kSizes[i]), false));
    return r;
  };
  auto body = [&]() -> std::vector<Tensor> {
    if (!bwd) {
      autograd::NoGradGuard ng;
      return forward();
    }
    auto ys = forward();
    auto g = autograd::grad(ys, xs, gys);
    ys.insert(ys.end(), g.begin(), g.end());
    return ys;
  };
  {  // the gate
    auto got = body();
    double worst = 0;
    for (int i = 0; i < 3; ++i) {
      Tensor x64 = xs[size_t(i)].detach().cpu().to(DType::f64).requires_grad_();
      Tensor ref = perspective_warp(x64, H);
      worst = std::max(worst, lab::worst_ratio(got[size_t(i)], ref.detach(), 1e-5, 1e-4));
      if (bwd) {
        auto g = autograd::grad({ref}, {x64}, {gys[size_t(i)].cpu().to(DType::f64)});
        worst = std::max(worst, lab::worst_ratio(got[size_t(3 + i)], g[0], 1e-5, 1e-4));
      }
    }
    if (!lab::checked(st, worst, "outputs vs the float64 CPU warp")) return;
  }
  lab::run(st, d, body, d.is_cuda() ? 3 : 1, d.is_cuda() ? 20 : 1);
  lab::byte_counters(st, d, bwd ? 2 * bytes : bytes);
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"dev", "variant", "bwd"});
  for (int64_t dev : {0, 1})
    for (int64_t bwd : {0, 1})
      for (int64_t var : {0, 1, 2}) b->Args({dev, var, bwd});
}

}  // namespace

BENCHMARK(BM_perspective_warp)->Apply(args)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
