// Kernel lab: selective (top-k) attention at the Aligner's shapes (batch 8, 512 channels = 8 heads
// x 64, L = 64 / 256 / 1024 for 8 / 16 / 32 px, mu = 0.25), CPU and CUDA, forward and
// forward + backward. Variants:
//   0 fused   : selective_attention (CPU oracle kernel / CUDA fused kernels)
//   1 unfused : selective_attention_unfused (matmul scores, per-row threshold, where(-inf), softmax,
//               matmul: the dense+mask formulation PyTorch users write, with our own ops)
// Check before timing: sample 0 of the timed run's output (and dq for fwd+bwd) against the float64
// CPU oracle; a variant is refused when more than 0.1 % of the elements are off by more than
// 1e-4 + 1e-3 |ref| (a rare near-tie row can legitimately flip between float32 and float64 scores).
// Counters: FLOP/s of the dense-equivalent work (fwd 4 B H L^2 d, fwd+bwd 14 B H L^2 d) and floor_ms
// (that work at FP32 peak: PERFORMANCE.md §4; the CPU figure is the 2-core peak of §2).
//
//   OMP_NUM_THREADS=2 ./build/bench/kernels/lab_selective_attention --benchmark_filter='dev:0/.*L:256'
#include "gradstyle/ops/selective_attention.hpp"
#include "lab_common.hpp"

using namespace gradstyle;

namespace {

constexpr int64_t kB = 8, kH = 8, kC = 512, kD = 64;
constexpr double kMu = 0.25;

Tensor variant_fn(int64_t v, const Tensor& q, const Tensor& k, const Tensor& x) {
  return v == 0 ? selective_attention(q, k, x, kMu, kH) : selective_attention_unfused(q, k, x, kMu, kH);
}

void BM_selective_attention(benchmark::State& st) {
  const Device d = lab::dev_of(st.range(0));
  const int64_t variant = st.range(1), L = st.range(2);
  const bool bwd = st.range(3) != 0;
  if (lab::skip_device(st, d)) return;
  // scores ~ N(0, 1) after the 1/8 scale, like trained projections of LayerNorm-ed tokens
  Tensor q = Tensor::randn({kB, L, kC}, 1, {DType::f32, d}), k = Tensor::randn({kB, L, kC}, 2, {DType::f32, d});
  Tensor v = Tensor::randn({kB, L, kC}, 3, {DType::f32, d}), gy = Tensor::randn({kB, L, kC}, 4, {DType::f32, d});
  if (bwd) q.requires_grad_(), k.requires_grad_(), v.requires_grad_();
  auto body = [&]() -> std::vector<Tensor> {
    if (!bwd) {
      autograd::NoGradGuard ng;
      return {variant_fn(variant, q, k, v)};
    }
    Tensor out = variant_fn(variant, q, k, v);
    auto g = autograd::grad({out}, {q, k, v}, {gy});
    return {out.detach(), g[0]};
  };
  {  // the gate
    auto got = body();
    auto s0 = [](const Tensor& t) { return t.detach().narrow(0, 0, 1).cpu().to(DType::f64); };
    Tensor q0 = s0(q).requires_grad_(), k0 = s0(k), v0 = s0(v);
    Tensor ref = selective_attention(q0, k0, v0, kMu, kH);
    double frac = lab::mismatch_fraction(s0(got[0]), ref.detach(), 1e-4, 1e-3);
    if (bwd) {
      auto g = autograd::grad({ref}, {q0}, {s0(gy)});
      frac = std::max(frac, lab::mismatch_fraction(s0(got[1]), g[0], 1e-4, 1e-3));
    }
    st.counters["mismatch_frac"] = frac;
    if (!lab::checked(st, frac / 1e-3, "sample 0 vs the float64 oracle")) return;
  }
  lab::run(st, d, body, d.is_cuda() ? 3 : 1, d.is_cuda() ? 10 : 1);
  const double dense = double(kB * kH) * double(L) * double(L) * double(kD);
  lab::flop_counters(st, d, (bwd ? 14.0 : 4.0) * dense);
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"dev", "variant", "L", "bwd"});
  for (int64_t dev : {0, 1})
    for (int64_t bwd : {0, 1})
      for (int64_t L : {64, 256, 1024})
        for (int64_t var : {0, 1}) b->Args({dev, var, L, bwd});
}

}  // namespace

BENCHMARK(BM_selective_attention)->Apply(args)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
