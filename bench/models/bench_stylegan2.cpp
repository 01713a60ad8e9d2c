// StyleGAN2 network benchmarks:
//   * generator synthesis (W+ -> image, const noise, no autograd) at 256 px (rosinality's FFHQ-256
//     config: style_dim 512, n_mlp 8, channel_multiplier 2), batch 1 and 8, CPU;
//   * discriminator forward + backward (parameter gradients, the training step's D pass) at
//     256 px, batch 8, CPU;
//   * the same generator at 1024 px (config-f) on CUDA when a device is present.
// tools/bench_torch_stylegan2.py times the PyTorch reference on the same configurations and runs
// this binary in the same session to print the ratios recorded in docs/perf.md.
//
// Full-size parity check (not a CI test): --full-check=DIR loads DIR/g1024.pt (a random config-f
// generator written by tools/bench_torch_stylegan2.py --full DIR) and DIR/io1024.pt (W+ and the
// reference's float64 image), runs our float32 forward on the CPU (and CUDA when present) and
// prints the worst error; the exit status is non-zero when it exceeds the float32 tolerance.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <memory>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/stylegan2.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"

using namespace gradstyle;
namespace sg = gradstyle::models::stylegan2;

namespace {

sg::Generator& generator(int64_t size, Device d) {
  static std::map<std::pair<int64_t, std::string>, std::unique_ptr<sg::Generator>> cache;
  auto& g = cache[{size, d.str()}];
  if (!g) {
    sg::GeneratorConfig c;
    c.size = size;
    gradstyle::Generator init(1);
    g = std::make_unique<sg::Generator>(c, &init);
    g->requires_grad_(false);
    g->to(d);
  }
  return *g;
}

sg::Discriminator& discriminator(int64_t size) {
  static std::unique_ptr<sg::Discriminator> d;
  if (!d) {
    sg::DiscriminatorConfig c;
    c.size = size;
    gradstyle::Generator init(2);
    d = std::make_unique<sg::Discriminator>(c, &init);
  }
  return *d;
}

void BM_G256_Forward_CPU(benchmark::State& st) {
  const int64_t b = st.range(0);
  auto& g = generator(256, Device::cpu());
  Tensor wp = Tensor::randn({b, g.n_latent(), 512}, 3);
  autograd::NoGradGuard ng;
  for (auto _ : st) {
    Tensor img = g.synthesis(wp);
    benchmark::DoNotOptimize(img.raw_data());
  }
  st.counters["img/s"] = benchmark::Counter(double(b) * double(st.iterations()), benchmark::Counter::kIsRate);
  st.counters["omp_threads"] = omp_get_max_threads();
}
BENCHMARK(BM_G256_Forward_CPU)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_D256_ForwardBackward_CPU(benchmark::State& st) {
  const int64_t b = st.range(0);
  auto& d = discriminator(256);
  Tensor x = Tensor::randn({b, 3, 256, 256}, 4);
  for (auto _ : st) {
    d.zero_grad();
    Tensor score = d.forward(x).sum();
    score.backward();
    benchmark::DoNotOptimize(d.final_linear[1].weight.grad().raw_data());
  }
  st.counters["img/s"] = benchmark::Counter(double(b) * double(st.iterations()), benchmark::Counter::kIsRate);
  st.counters["omp_threads"] = omp_get_max_threads();
}
BENCHMARK(BM_D256_ForwardBackward_CPU)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// 1024 px config-f on CUDA; the host copy of a scalar synchronises the stream.
void BM_G1024_Forward_CUDA(benchmark::State& st) {
  if (!cuda_available()) {
    st.SkipWithError(cuda_built() ? "no CUDA device present" : "built without CUDA");
    return;
  }
  const int64_t b = st.range(0);
  auto& g = generator(1024, Device::cuda());
  Tensor wp = Tensor::randn({b, g.n_latent(), 512}, 3, {.device = Device::cuda()});
  autograd::NoGradGuard ng;
  benchmark::DoNotOptimize(g.synthesis(wp).sum().item());  // warm-up: cuDNN algorithm search
  for (auto _ : st) benchmark::DoNotOptimize(g.synthesis(wp).sum().item());
  st.counters["img/s"] = benchmark::Counter(double(b) * double(st.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_G1024_Forward_CUDA)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- full-size parity check -----------------------------------------------------------------------

int full_check(const std::string& dir) {
  const double t0 = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  auto G = sg::Generator::from_checkpoint(dir + "/g1024.pt");
  auto io = io::load_state_dict_tensors(dir + "/io1024.pt");
  const Tensor wp = io.at("w_plus"), ref = io.at("image");
  std::cout << "full-size check: " << G->config().str() << ", " << G->num_parameters() << " parameters, "
            << G->state_dict().size() << " state_dict entries (SPEC C.1: 171)\n";
  int status = 0;
  for (Device d : {Device::cpu(), Device::cuda()}) {
    if (d.is_cuda() && !cuda_available()) {
      std::cout << "  cuda: skipped (" << (cuda_built() ? "no CUDA device present" : "built without CUDA") << ")\n";
      continue;
    }
    if (d.is_cuda()) G->to(d);
    autograd::NoGradGuard ng;
    const auto t1 = std::chrono::steady_clock::now();
    Tensor img = G->synthesis(wp.to(d)).cpu();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    const double max_ref = amax(abs(ref)).item();
    const double worst = amax(abs(img - ref)).item();
    const double mean_err = mean(abs(img - ref)).item();
    // float32 over 17 modulated convs + 9 ToRGBs: a relative error to max|ref| of 1e-4 is the bar.
    const bool ok = worst <= 1e-4 * max_ref;
    std::cout << "  " << d.str() << ": forward " << secs << " s, max|ref| " << max_ref << ", worst |ours - ref| "
              << worst << " (" << worst / max_ref << " of max), mean " << mean_err << (ok ? "  PASS" : "  FAIL")
              << "\n";
    if (!ok) status = 1;
  }
  const double t2 = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  std::cout << "  total " << t2 - t0 << " s\n";
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--full-check=", 13) == 0) {
      try {
        return full_check(argv[i] + 13);
      } catch (const std::exception& e) {
        std::cerr << "full-size check failed: " << e.what() << "\n";
        return 2;
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
