// Benchmarks of the encoder and loss networks at their real sizes (random weights):
//  * e4e Encoder4Editing (IR-SE50 + FPN + 18 heads, 267 M parameters) forward at 256, batch 1;
//  * LPIPS-VGG16 at 256: distance forward, and forward + backward to the first image;
//  * ArcFace IR-SE50: embedding at 112, and the ID loss (256-px crop + pool) forward + backward;
//  * building the full e4e encoder (allocation + initialisation: the fixed cost of loading it).
// Before anything is timed, the tiny PyTorch fixtures (tests/golden/encoders) are run through the
// same code and compared with PyTorch's outputs; when they do not match, every benchmark is skipped
// with the reason (correctness before timing). CPU timings use OpenMP's thread count (set
// OMP_NUM_THREADS=2 on the development machine). CUDA cases are registered side by side and skipped
// with a message when no GPU is present; they synchronise through a small device-to-host copy of
// the result.
//
// PyTorch anchor on the 2-core development machine (PERFORMANCE.md §10): e4e forward at 256,
// batch 1 = 1.30 s; tools/reference/bench_encoders_torch.py measures it again in the same session.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "gradstyle/gradstyle.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/arcface.hpp"
#include "gradstyle/models/e4e.hpp"
#include "gradstyle/models/lpips.hpp"

using namespace gradstyle;
using namespace gradstyle::models;

namespace {

std::string fixture(const std::string& n) { return std::string(GS_SOURCE_ROOT "/tests/golden/encoders/") + n; }

// "" when the tiny e4e, LPIPS and ArcFace fixtures match PyTorch; else what failed.
const std::string& parity_error() {
  static const std::string err = []() -> std::string {
    try {
      auto worst = [](const Tensor& a, const Tensor& b) {
        auto va = a.to_vector<double>(), vb = b.to_vector<double>();
        double m = 0, s = 0;
        for (double v : vb) s = std::max(s, std::abs(v));
        for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]) / (s + std::abs(vb[i])));
        return va.size() == vb.size() ? m : 1e9;
      };
      autograd::NoGradGuard ng;
      auto io = io::load_state_dict_tensors(fixture("e4e_tiny_io.pt"));
      auto enc = e4e::Encoder4Editing::from_checkpoint(fixture("e4e_tiny.pt"));
      if (worst(enc->forward(io.at("x")).w_plus, io.at("w_plus")) > 2e-5) return "e4e tiny fixture mismatch";
      auto lio = io::load_state_dict_tensors(fixture("lpips_io.pt"));
      auto lp = lpips::LPIPS::from_files(fixture("vgg_tiny.pth"), fixture("lin_tiny.pth"));
      if (worst(lp->forward(lio.at("a"), lio.at("b")), lio.at("d")) > 2e-5) return "LPIPS tiny fixture mismatch";
      auto aio = io::load_state_dict_tensors(fixture("irse_tiny_io.pt"));
      auto bb = irse::Backbone::from_checkpoint(fixture("irse_tiny.pth"));
      if (worst(bb->forward(aio.at("x")), aio.at("embedding")) > 2e-5) return "IR-SE tiny fixture mismatch";
      return "";
    } catch (const std::exception& e) {
      return std::string("fixture check failed: ") + e.what();
    }
  }();
  return err;
}

bool skip(benchmark::State& st, Device d) {
  if (!parity_error().empty()) {
    st.SkipWithError(parity_error().c_str());
    return true;
  }
  if (d.is_cuda() && !cuda_available()) {
    st.SkipWithError(cuda_built() ? "no GPU present" : "built without CUDA");
    return true;
  }
  return false;
}

Device device_of(const benchmark::State& st) { return st.range(0) ? Device::cuda() : Device::cpu(); }

// Full-size networks with random weights, built once per device.
e4e::Encoder4Editing& e4e_net(Device d) {
  static std::unique_ptr<e4e::Encoder4Editing> nets[2];
  auto& n = nets[d.is_cuda()];
  if (!n) {
    n = std::make_unique<e4e::Encoder4Editing>(e4e::E4EConfig{});
    n->eval();
    n->requires_grad_(false);
    n->to(d);
  }
  return *n;
}

lpips::LPIPS& lpips_net(Device d) {
  static std::unique_ptr<lpips::LPIPS> nets[2];
  auto& n = nets[d.is_cuda()];
  if (!n) {
    n = std::make_unique<lpips::LPIPS>();
    n->eval();
    n->requires_grad_(false);
    n->to(d);
  }
  return *n;
}

arcface::ArcFaceID& arcface_net(Device d) {
  static std::unique_ptr<arcface::ArcFaceID> nets[2];
  auto& n = nets[d.is_cuda()];
  if (!n) {
    n = std::make_unique<arcface::ArcFaceID>(std::make_shared<irse::Backbone>(irse::BackboneConfig{}));
    n->eval();
    n->requires_grad_(false);
    n->to(d);
  }
  return *n;
}

// Image-like input in [-1, 1].
Tensor image(int64_t b, int64_t s, uint64_t seed, Device d) {
  return clamp(Tensor::randn({b, 3, s, s}, seed) * 0.5, -1, 1).to(d);
}

void set_flops(benchmark::State& st, double gflop_per_iter) {
  st.counters["GFLOP/s"] = benchmark::Counter(gflop_per_iter * 1e9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["omp_threads"] = omp_get_max_threads();
}

void BM_E4E_Forward256(benchmark::State& st) {
  const Device d = device_of(st);
  if (skip(st, d)) return;
  const int64_t B = st.range(1);
  auto& net = e4e_net(d);
  const Tensor x = image(B, 256, 1, d);
  autograd::NoGradGuard ng;
  for (auto _ : st) {
    auto out = net.forward(x);
    benchmark::DoNotOptimize(out.w_plus.cpu());
  }
  set_flops(st, 145.0 * double(B));  // 72.5 GMAC per image (PERFORMANCE.md §3.2)
}

// Building the full encoder: arg 0 = ParamInit::Random (PyTorch's default initialisation drawn
// from Philox), 1 = ParamInit::Deferred (what the checkpoint loaders use).
void BM_E4E_Build(benchmark::State& st) {
  if (skip(st, Device::cpu())) return;
  const ParamInit init = st.range(0) ? ParamInit::Deferred : ParamInit::Random;
  for (auto _ : st) {
    e4e::Encoder4Editing net{e4e::E4EConfig{}, init};
    benchmark::DoNotOptimize(net.styles[17].linear.weight.raw_data());
  }
  st.counters["params_M"] = 267.0;
}

void BM_LPIPS_Forward256(benchmark::State& st) {
  const Device d = device_of(st);
  if (skip(st, d)) return;
  const int64_t B = st.range(1);
  auto& net = lpips_net(d);
  const Tensor a = image(B, 256, 2, d), b = image(B, 256, 3, d);
  autograd::NoGradGuard ng;
  for (auto _ : st) benchmark::DoNotOptimize(net.forward(a, b).cpu());
  set_flops(st, 2 * 40.08 * double(B));  // both images, 20.04 GMAC each
}

void BM_LPIPS_ForwardBackward256(benchmark::State& st) {
  const Device d = device_of(st);
  if (skip(st, d)) return;
  const int64_t B = st.range(1);
  auto& net = lpips_net(d);
  const Tensor b = image(B, 256, 3, d);
  for (auto _ : st) {
    Tensor a = image(B, 256, 2, d).requires_grad_();
    net.forward(a, b).sum().backward();
    benchmark::DoNotOptimize(a.grad().cpu());
  }
  set_flops(st, 3 * 40.08 * double(B));  // forward of both + input-gradient backward of one (about 2x a forward)
}

void BM_ArcFace_Embed112(benchmark::State& st) {
  const Device d = device_of(st);
  if (skip(st, d)) return;
  const int64_t B = st.range(1);
  auto& net = arcface_net(d);
  const Tensor x = image(B, 112, 4, d);
  autograd::NoGradGuard ng;
  for (auto _ : st) benchmark::DoNotOptimize(net.facenet().forward(x).cpu());
  set_flops(st, 12.6 * double(B));  // 6.30 GMAC per image
}

void BM_ArcFace_IDLossForwardBackward256(benchmark::State& st) {
  const Device d = device_of(st);
  if (skip(st, d)) return;
  const int64_t B = st.range(1);
  auto& net = arcface_net(d);
  const Tensor y = image(B, 256, 5, d);
  for (auto _ : st) {
    Tensor y_hat = image(B, 256, 6, d).requires_grad_();
    net.loss(y_hat, y).backward();
    benchmark::DoNotOptimize(y_hat.grad().cpu());
  }
  set_flops(st, 3 * 12.6 * double(B));  // target + prediction forwards, input-gradient backward (~1 forward)
}

// Loading the full-size e4e checkpoint written by `bench_encoders_torch.py --write-full DIR`
// (GS_E4E_FULL=DIR): the time of from_checkpoint (read, parse, build deferred, strict load), then
// one forward whose W+ is compared with PyTorch's float64 result (max error relative to max |W+|).
void BM_E4E_LoadFull(benchmark::State& st) {
  if (skip(st, Device::cpu())) return;
  const char* dir = std::getenv("GS_E4E_FULL");
  if (!dir) {
    st.SkipWithError("set GS_E4E_FULL=DIR after bench_encoders_torch.py --write-full DIR");
    return;
  }
  std::unique_ptr<e4e::Encoder4Editing> enc;
  for (auto _ : st) enc = e4e::Encoder4Editing::from_checkpoint(std::string(dir) + "/e4e_full.pt");
  autograd::NoGradGuard ng;
  auto io = io::load_state_dict_tensors(std::string(dir) + "/e4e_full_io.pt");
  const Tensor w = enc->forward(io.at("x")).w_plus;
  const auto a = w.to_vector<double>(), b = io.at("w_plus").to_vector<double>();
  double err = 0, scale = 0;
  for (double v : b) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < a.size(); ++i) err = std::max(err, std::abs(a[i] - b[i]));
  st.counters["w_plus_max_rel_err"] = err / scale;
  if (!(err / scale < 1e-4)) st.SkipWithError("full-size W+ differs from PyTorch's");
}

}  // namespace

// Args: {device (0 CPU, 1 CUDA), batch}.
BENCHMARK(BM_E4E_Forward256)->Args({0, 1})->Args({1, 1})->Args({1, 8})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_E4E_LoadFull)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_E4E_Build)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK(BM_LPIPS_Forward256)->Args({0, 1})->Args({1, 1})->Args({1, 8})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LPIPS_ForwardBackward256)->Args({0, 1})->Args({1, 8})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ArcFace_Embed112)->Args({0, 1})->Args({1, 1})->Args({1, 8})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ArcFace_IDLossForwardBackward256)->Args({0, 1})->Args({1, 8})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
