// Benchmarks of the basic op families on the CPU: one elementwise op (add) on the
// dense path, the broadcast path and a strided (permuted) input, a channel reduction, and GEMM
// through matmul.
// tools/bench_torch_core.py runs this binary next to PyTorch at the same shapes.
//
// Thread count: OpenMP's default (OMP_NUM_THREADS); it is printed in the context block as
// omp_threads so every result says how many threads produced it.
#include <benchmark/benchmark.h>
#include <omp.h>

#include "gradstyle/gradstyle.hpp"

using namespace gradstyle;

namespace {

// Inputs are seeded N(0,1) (never zeros: see docs PERFORMANCE.md §10.2).
Tensor randn_f32(const Shape& s, uint64_t seed) { return Tensor::randn(s, seed); }

void set_bytes(benchmark::State& st, int64_t bytes_per_iter) {
  st.SetBytesProcessed(int64_t(st.iterations()) * bytes_per_iter);
}

// add of two dense [8,512,64,64] float32 tensors (the activation size of a 64 px StyleGAN layer).
void BM_add_contiguous(benchmark::State& st) {
  Tensor a = randn_f32({8, 512, 64, 64}, 1), b = randn_f32({8, 512, 64, 64}, 2);
  for (auto _ : st) {
    Tensor c = add(a, b);
    benchmark::DoNotOptimize(c.raw_data());
  }
  set_bytes(st, 3 * int64_t(a.nbytes()));
}

// [8,512,64,64] + [1,512,1,1]: a per-channel bias add, the commonest broadcast in the model.
void BM_add_broadcast_channel(benchmark::State& st) {
  Tensor a = randn_f32({8, 512, 64, 64}, 1), b = randn_f32({1, 512, 1, 1}, 2);
  for (auto _ : st) {
    Tensor c = add(a, b);
    benchmark::DoNotOptimize(c.raw_data());
  }
  set_bytes(st, 2 * int64_t(a.nbytes()));
}

// A permuted (NHWC storage viewed as NCHW) input plus a dense one: the strided path.
void BM_add_permuted(benchmark::State& st) {
  Tensor a = randn_f32({8, 64, 64, 512}, 1).permute({0, 3, 1, 2});
  Tensor b = randn_f32({8, 512, 64, 64}, 2);
  for (auto _ : st) {
    Tensor c = add(a, b);
    benchmark::DoNotOptimize(c.raw_data());
  }
  set_bytes(st, 3 * int64_t(b.nbytes()));
}

// sum over (N, H, W) of [8,512,64,64]: the bias gradient of a conv layer (a permuting reduction).
void BM_sum_channels(benchmark::State& st) {
  Tensor a = randn_f32({8, 512, 64, 64}, 1);
  for (auto _ : st) {
    Tensor c = sum(a, {0, 2, 3});
    benchmark::DoNotOptimize(c.raw_data());
  }
  set_bytes(st, int64_t(a.nbytes()));
}

// Square matmul n x n x n.
void BM_matmul(benchmark::State& st) {
  int64_t n = st.range(0);
  Tensor a = randn_f32({n, n}, 1), b = randn_f32({n, n}, 2);
  for (auto _ : st) {
    Tensor c = matmul(a, b);
    benchmark::DoNotOptimize(c.raw_data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2e-9 * double(n) * double(n) * double(n),
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// Batched matmul [B,n,n] @ [B,n,n].
void BM_bmm(benchmark::State& st) {
  int64_t bsz = st.range(0), n = st.range(1);
  Tensor a = randn_f32({bsz, n, n}, 1), b = randn_f32({bsz, n, n}, 2);
  for (auto _ : st) {
    Tensor c = matmul(a, b);
    benchmark::DoNotOptimize(c.raw_data());
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2e-9 * double(bsz) * double(n) * double(n) * double(n),
                                              benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_add_contiguous)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_add_broadcast_channel)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_add_permuted)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_sum_channels)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_matmul)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_bmm)->Args({8, 256})->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("omp_threads", std::to_string(omp_get_max_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
