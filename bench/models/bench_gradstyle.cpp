// One GradStyle training iteration (B.7 steps 2-5, backward, Adam + Lookahead step) and one
// inversion (the reconstruction stream, no gradient) on the PyTorch reference's tiny 32 px
// configuration (tests/golden/gradstyle/net.safetensors), float32, CPU. tools/bench_torch_gradstyle.py
// times the same work in PyTorch.
#include <benchmark/benchmark.h>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/train/optim.hpp"
#include "train/gradstyle_iteration.hpp"

using namespace gstest_train;

static void BM_gradstyle_train_iteration_tiny(benchmark::State& st) {
  NetFixture f(DType::f32);
  Lookahead opt(std::make_unique<Adam>(trainable_parameters(*f.net), AdamOptions{.lr = 1e-4}), LookaheadOptions{});
  for (auto _ : st) {
    opt.zero_grad();
    auto it = f.run();
    it.loss["total"].backward();
    opt.step();
    benchmark::DoNotOptimize(it.loss["total"]);
  }
}
BENCHMARK(BM_gradstyle_train_iteration_tiny)->Unit(benchmark::kMillisecond)->UseRealTime();

static void BM_gradstyle_reconstruct_tiny(benchmark::State& st) {
  NetFixture f(DType::f32);
  f.net->eval();
  gsn::EncoderFeatures feats{f.at("in.c3"), f.at("in.p2"), Tensor()};
  const Tensor w = f.at("in.w");
  for (auto _ : st) {
    autograd::NoGradGuard ng;
    auto r = f.net->reconstruct(*f.G, w, feats);
    benchmark::DoNotOptimize(r.image);
  }
}
BENCHMARK(BM_gradstyle_reconstruct_tiny)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
