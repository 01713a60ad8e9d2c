// Benchmarks of the image-model ops at the shapes the models use:
//  * grid_sample [8,512,32,32] with a [8,32,32,2] near-identity warp grid (the perspective warp
//    of the 32 px stage), forward and forward + backward (input and grid gradients);
//  * bilinear interpolate 256 -> 1024 and 1024 -> 256 at [8,3,...] (align_corners = false);
//  * batch_norm [8,64,128,128]: training forward, training forward + backward, evaluation;
//  * avg_pool2d 4x4 of [8,3,1024,1024] (the loss pooling to 256).
// CPU benchmarks run at OpenMP's default thread count (set OMP_NUM_THREADS=2; printed in the
// context block as omp_threads). CUDA benchmarks are registered when built with CUDA, check their
// result against the CPU oracle once, then time kReps back-to-back launches per iteration with
// one stream synchronisation (manual time); without a GPU they are skipped with a message.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <functional>

#include "gradstyle/gradstyle.hpp"
#include "gradstyle/ops/grid_sample.hpp"
#include "gradstyle/ops/interpolate.hpp"
#include "gradstyle/ops/norm.hpp"
#include "gradstyle/ops/pool.hpp"
#if defined(GRADSTYLE_CUDA)
#include "backend/cuda_runtime.hpp"
#endif

using namespace gradstyle;

namespace {

// ---- workloads (device-generic) ------------------------------------------------------------------

// A seeded near-identity sampling grid [n, h, w, 2]: the pixel-centre lattice plus a small random
// displacement, like a perspective warp with distortion 0.15.
Tensor warp_grid(int64_t n, int64_t h, int64_t w, Device d) {
  Tensor ys = Tensor::linspace(-1 + 1.0 / h, 1 - 1.0 / h, h).reshape({1, h, 1, 1}).expand({n, h, w, 1});
  Tensor xs = Tensor::linspace(-1 + 1.0 / w, 1 - 1.0 / w, w).reshape({1, 1, w, 1}).expand({n, h, w, 1});
  Tensor base = cat({xs, ys}, 3);
  Tensor jitter = mul_scalar(Tensor::rand({n, h, w, 2}, 7), 0.3) - 0.15;
  return (base + jitter).contiguous().to(d);
}

struct Workload {
  std::vector<Tensor> inputs;                            // on the device, float32
  std::function<Tensor(const std::vector<Tensor>&)> fn;  // the op
  int64_t bytes = 0;                                     // minimal DRAM traffic of the forward
};

Workload grid_sample_wl(Device d) {
  Workload w;
  w.inputs = {Tensor::randn({8, 512, 32, 32}, 1, {DType::f32, d}), warp_grid(8, 32, 32, d)};
  w.fn = [](const std::vector<Tensor>& in) { return grid_sample(in[0], in[1], false); };
  w.bytes = 2 * w.inputs[0].nbytes() + w.inputs[1].nbytes();
  return w;
}

Workload interp_wl(Device d, int64_t in, int64_t out) {
  Workload w;
  w.inputs = {Tensor::randn({8, 3, in, in}, 2, {DType::f32, d})};
  w.fn = [out](const std::vector<Tensor>& x) {
    return interpolate(x[0], {out, out}, InterpolateMode::Bilinear, false);
  };
  w.bytes = int64_t(8 * 3 * (in * in + out * out)) * 4;
  return w;
}

Workload bn_wl(Device d, bool training) {
  Workload w;
  Options o{DType::f32, d};
  w.inputs = {add_scalar(Tensor::randn({8, 64, 128, 128}, 3, o), 0.5), add_scalar(Tensor::rand({64}, 4, o), 0.5),
              Tensor::randn({64}, 5, o)};
  Tensor rm = Tensor::zeros({64}, o), rv = Tensor::ones({64}, o);
  w.fn = [rm, rv, training](const std::vector<Tensor>& in) {
    return batch_norm(in[0], rm, rv, in[1], in[2], training);
  };
  w.bytes = 2 * w.inputs[0].nbytes() + (training ? w.inputs[0].nbytes() : 0);
  return w;
}

Workload avgpool_wl(Device d) {
  Workload w;
  w.inputs = {Tensor::randn({8, 3, 1024, 1024}, 6, {DType::f32, d})};
  w.fn = [](const std::vector<Tensor>& x) { return avg_pool2d(x[0], {4}); };
  w.bytes = w.inputs[0].nbytes() * 17 / 16;
  return w;
}

// Forward + backward w.r.t. every input (the gradient weight is fixed and seeded).
std::function<void()> fwd_bwd(const Workload& w, const Tensor& gy) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : w.inputs) leaves.push_back(t.detach().clone().requires_grad_());
  return [leaves, gy, fn = w.fn] {
    Tensor y = fn(leaves);
    auto g = autograd::grad({y}, leaves, {gy});
    benchmark::DoNotOptimize(g[0].raw_data());
  };
}

// ---- CPU -------------------------------------------------------------------------------------------

void run_cpu(benchmark::State& st, const Workload& w, bool backward) {
  std::function<void()> step;
  if (backward) {
    Tensor y = w.fn(w.inputs);
    step = fwd_bwd(w, Tensor::randn(y.shape(), 9));
  } else {
    step = [&w] {
      autograd::NoGradGuard ng;
      benchmark::DoNotOptimize(w.fn(w.inputs).raw_data());
    };
  }
  step();  // warm-up (allocator, page faults)
  for (auto _ : st) step();
  if (!backward) st.SetBytesProcessed(int64_t(st.iterations()) * w.bytes);
}

void BM_cpu_grid_sample_fwd(benchmark::State& st) {
  run_cpu(st, grid_sample_wl(Device::cpu()), false);
}
void BM_cpu_grid_sample_fwd_bwd(benchmark::State& st) {
  run_cpu(st, grid_sample_wl(Device::cpu()), true);
}
void BM_cpu_interp_256_to_1024_fwd(benchmark::State& st) {
  run_cpu(st, interp_wl(Device::cpu(), 256, 1024), false);
}
void BM_cpu_interp_256_to_1024_fwd_bwd(benchmark::State& st) {
  run_cpu(st, interp_wl(Device::cpu(), 256, 1024), true);
}
void BM_cpu_interp_1024_to_256_fwd(benchmark::State& st) {
  run_cpu(st, interp_wl(Device::cpu(), 1024, 256), false);
}
void BM_cpu_interp_1024_to_256_fwd_bwd(benchmark::State& st) {
  run_cpu(st, interp_wl(Device::cpu(), 1024, 256), true);
}
void BM_cpu_batch_norm_train_fwd(benchmark::State& st) {
  run_cpu(st, bn_wl(Device::cpu(), true), false);
}
void BM_cpu_batch_norm_train_fwd_bwd(benchmark::State& st) {
  run_cpu(st, bn_wl(Device::cpu(), true), true);
}
void BM_cpu_batch_norm_eval_fwd(benchmark::State& st) {
  run_cpu(st, bn_wl(Device::cpu(), false), false);
}
void BM_cpu_avg_pool_4x4_1024(benchmark::State& st) {
  run_cpu(st, avgpool_wl(Device::cpu()), false);
}

}  // namespace

#define GS_CPU_BENCH(fn) BENCHMARK(fn)->Unit(benchmark::kMillisecond)->UseRealTime()
GS_CPU_BENCH(BM_cpu_grid_sample_fwd);
GS_CPU_BENCH(BM_cpu_grid_sample_fwd_bwd);
GS_CPU_BENCH(BM_cpu_interp_256_to_1024_fwd);
GS_CPU_BENCH(BM_cpu_interp_256_to_1024_fwd_bwd);
GS_CPU_BENCH(BM_cpu_interp_1024_to_256_fwd);
GS_CPU_BENCH(BM_cpu_interp_1024_to_256_fwd_bwd);
GS_CPU_BENCH(BM_cpu_batch_norm_train_fwd);
GS_CPU_BENCH(BM_cpu_batch_norm_train_fwd_bwd);
GS_CPU_BENCH(BM_cpu_batch_norm_eval_fwd);
GS_CPU_BENCH(BM_cpu_avg_pool_4x4_1024);

// ---- CUDA ------------------------------------------------------------------------------------------
#if defined(GRADSTYLE_CUDA)
namespace {

constexpr int kReps = 20;

// Compares the CUDA forward (and the input gradients when backward) with the CPU oracle once;
// returns false (and skips the benchmark) on a mismatch: a wrong kernel is never timed.
bool matches_cpu(benchmark::State& st, const std::function<Workload(Device)>& make, bool backward) {
  Workload c = make(Device::cpu()), g = make(Device::cuda());
  std::vector<Tensor> lc, lg;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    lc.push_back(c.inputs[i].detach().clone().requires_grad_(backward));
    lg.push_back(g.inputs[i].detach().clone().requires_grad_(backward));
  }
  Tensor yc = c.fn(lc), yg = g.fn(lg);
  std::vector<std::pair<Tensor, Tensor>> pairs{{yc.detach(), yg.detach().cpu()}};
  if (backward) {
    Tensor gy = Tensor::randn(yc.shape(), 9);
    auto gc = autograd::grad({yc}, lc, {gy});
    auto gg = autograd::grad({yg}, lg, {gy.to(Device::cuda())});
    for (size_t i = 0; i < gc.size(); ++i) pairs.emplace_back(gc[i], gg[i].cpu());
  }
  for (auto& [a, b] : pairs) {
    auto va = a.to_vector<float>(), vb = b.to_vector<float>();
    for (size_t i = 0; i < va.size(); ++i)
      if (!(std::abs(va[i] - vb[i]) <= 1e-4 + 1e-3 * std::abs(va[i]))) {
        st.SkipWithError("CUDA result differs from the CPU oracle");
        return false;
      }
  }
  return true;
}

void run_cuda(benchmark::State& st, const std::function<Workload(Device)>& make, bool backward) {
  if (!cuda_available()) {
    st.SkipWithError("no CUDA device present");
    return;
  }
  if (!matches_cpu(st, make, backward)) return;
  Workload w = make(Device::cuda());
  std::function<void()> step;
  if (backward) {
    Tensor y = w.fn(w.inputs);
    step = fwd_bwd(w, Tensor::randn(y.shape(), 9, {DType::f32, Device::cuda()}));
  } else {
    step = [&w] {
      autograd::NoGradGuard ng;
      benchmark::DoNotOptimize(w.fn(w.inputs).raw_data());
    };
  }
  for (int i = 0; i < 3; ++i) step();  // warm-up
  cuda::synchronize();
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < kReps; ++r) step();
    cuda::synchronize();
    std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    st.SetIterationTime(dt.count() / kReps);
  }
  if (!backward) st.SetBytesProcessed(int64_t(st.iterations()) * w.bytes);
}

void BM_cuda_grid_sample_fwd(benchmark::State& st) {
  run_cuda(st, grid_sample_wl, false);
}
void BM_cuda_grid_sample_fwd_bwd(benchmark::State& st) {
  run_cuda(st, grid_sample_wl, true);
}
void BM_cuda_interp_256_to_1024_fwd(benchmark::State& st) {
  run_cuda(
      st, [](Device d) { return interp_wl(d, 256, 1024); }, false);
}
void BM_cuda_interp_256_to_1024_fwd_bwd(benchmark::State& st) {
  run_cuda(
      st, [](Device d) { return interp_wl(d, 256, 1024); }, true);
}
void BM_cuda_interp_1024_to_256_fwd(benchmark::State& st) {
  run_cuda(
      st, [](Device d) { return interp_wl(d, 1024, 256); }, false);
}
void BM_cuda_interp_1024_to_256_fwd_bwd(benchmark::State& st) {
  run_cuda(
      st, [](Device d) { return interp_wl(d, 1024, 256); }, true);
}
void BM_cuda_batch_norm_train_fwd(benchmark::State& st) {
  run_cuda(
      st, [](Device d) { return bn_wl(d, true); }, false);
}
void BM_cuda_batch_norm_train_fwd_bwd(benchmark::State& st) {
  run_cuda(
      st, [](Device d) { return bn_wl(d, true); }, true);
}
void BM_cuda_batch_norm_eval_fwd(benchmark::State& st) {
  run_cuda(
      st, [](Device d) { return bn_wl(d, false); }, false);
}
void BM_cuda_avg_pool_4x4_1024(benchmark::State& st) {
  run_cuda(st, avgpool_wl, false);
}

}  // namespace

#define GS_CUDA_BENCH(fn) BENCHMARK(fn)->Unit(benchmark::kMicrosecond)->UseManualTime()
GS_CUDA_BENCH(BM_cuda_grid_sample_fwd);
GS_CUDA_BENCH(BM_cuda_grid_sample_fwd_bwd);
GS_CUDA_BENCH(BM_cuda_interp_256_to_1024_fwd);
GS_CUDA_BENCH(BM_cuda_interp_256_to_1024_fwd_bwd);
GS_CUDA_BENCH(BM_cuda_interp_1024_to_256_fwd);
GS_CUDA_BENCH(BM_cuda_interp_1024_to_256_fwd_bwd);
GS_CUDA_BENCH(BM_cuda_batch_norm_train_fwd);
GS_CUDA_BENCH(BM_cuda_batch_norm_train_fwd_bwd);
GS_CUDA_BENCH(BM_cuda_batch_norm_eval_fwd);
GS_CUDA_BENCH(BM_cuda_avg_pool_4x4_1024);
#endif

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("omp_threads", std::to_string(omp_get_max_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
