// Benchmarks of the CUDA backend of the basic op families: the same elementwise shapes
// as bench_core.cpp (dense, per-channel broadcast, permuted input), a converting copy, Philox
// fill, row reductions (many rows and one split row), softmax and GEMM (exact FP32, TF32, FP64).
//
// GPU work is asynchronous, so each timed iteration launches the op kReps times, waits for the
// library stream, and reports wall time / kReps as manual time (launch overhead included, sync
// latency amortised). Without a GPU every benchmark is skipped with an error message; in a
// CPU-only build nothing is registered.
#include <benchmark/benchmark.h>

#include <chrono>

#include "gradstyle/gradstyle.hpp"

#if defined(GRADSTYLE_CUDA)
#include "backend/cuda_runtime.hpp"

using namespace gradstyle;

namespace {

constexpr int kReps = 20;
const Options kF32{DType::f32, Device::cuda()};

bool need_gpu(benchmark::State& st) {
  if (cuda_available()) return true;
  st.SkipWithError("no CUDA device present");
  return false;
}

// Times fn() kReps times per iteration, synchronising once.
template <class F>
void time_gpu(benchmark::State& st, F&& fn) {
  fn();  // warm-up (pool, cuBLAS heuristics)
  cuda::synchronize();
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < kReps; ++r) fn();
    cuda::synchronize();
    std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    st.SetIterationTime(dt.count() / kReps);
  }
}

void set_bytes(benchmark::State& st, int64_t bytes_per_op) { st.SetBytesProcessed(int64_t(st.iterations()) * bytes_per_op); }

void BM_cuda_add_contiguous(benchmark::State& st) {
  if (!need_gpu(st)) return;
  Tensor a = Tensor::randn({8, 512, 64, 64}, 1, kF32), b = Tensor::randn({8, 512, 64, 64}, 2, kF32);
  time_gpu(st, [&] { benchmark::DoNotOptimize(add(a, b).raw_data()); });
  set_bytes(st, 3 * int64_t(a.nbytes()));
}

void BM_cuda_add_broadcast_channel(benchmark::State& st) {
  if (!need_gpu(st)) return;
  Tensor a = Tensor::randn({8, 512, 64, 64}, 1, kF32), b = Tensor::randn({1, 512, 1, 1}, 2, kF32);
  time_gpu(st, [&] { benchmark::DoNotOptimize(add(a, b).raw_data()); });
  set_bytes(st, 2 * int64_t(a.nbytes()));
}

void BM_cuda_add_permuted(benchmark::State& st) {
  if (!need_gpu(st)) return;
  Tensor a = Tensor::randn({8, 64, 64, 512}, 1, kF32).permute({0, 3, 1, 2});
  Tensor b = Tensor::randn({8, 512, 64, 64}, 2, kF32);
  time_gpu(st, [&] { benchmark::DoNotOptimize(add(a, b).raw_data()); });
  set_bytes(st, 3 * int64_t(b.nbytes()));
}

// float32 -> float16 converting copy (checkpoint conversion path).
void BM_cuda_copy_f32_to_f16(benchmark::State& st) {
  if (!need_gpu(st)) return;
  Tensor a = Tensor::randn({8, 512, 64, 64}, 1, kF32);
  time_gpu(st, [&] { benchmark::DoNotOptimize(a.to(DType::f16).raw_data()); });
  set_bytes(st, int64_t(a.nbytes()) * 3 / 2);
}

void BM_cuda_randn(benchmark::State& st) {
  if (!need_gpu(st)) return;
  Generator g(5);
  time_gpu(st, [&] { benchmark::DoNotOptimize(Tensor::randn({8, 512, 64, 64}, g, kF32).raw_data()); });
  set_bytes(st, int64_t(8) * 512 * 64 * 64 * 4);
}

// Per-channel sums of [8,512,64,64] over (0,2,3): permute + rows of 8*4096.
void BM_cuda_sum_channels(benchmark::State& st) {
  if (!need_gpu(st)) return;
  Tensor a = Tensor::randn({8, 512, 64, 64}, 1, kF32);
  time_gpu(st, [&] { benchmark::DoNotOptimize(sum(a, {0, 2, 3}).raw_data()); });
  set_bytes(st, int64_t(a.nbytes()));
}

// Rows of 4096 (spatial sums per (n, c)).
void BM_cuda_sum_rows(benchmark::State& st) {
  if (!need_gpu(st)) return;
  Tensor a = Tensor::randn({8, 512, 64, 64}, 1, kF32);
  time_gpu(st, [&] { benchmark::DoNotOptimize(sum(a, {2, 3}).raw_data()); });
  set_bytes(st, int64_t(a.nbytes()));
}

// One 16M-element sum (the split-row path).
void BM_cuda_sum_all(benchmark::State& st) {
  if (!need_gpu(st)) return;
  Tensor a = Tensor::randn({8, 512, 64, 64}, 1, kF32);
  time_gpu(st, [&] { benchmark::DoNotOptimize(sum(a).raw_data()); });
  set_bytes(st, int64_t(a.nbytes()));
}

void BM_cuda_softmax_rows(benchmark::State& st) {
  if (!need_gpu(st)) return;
  int64_t n = st.range(0);
  Tensor a = Tensor::randn({(int64_t(1) << 24) / n, n}, 1, kF32);
  time_gpu(st, [&] { benchmark::DoNotOptimize(softmax(a, 1).raw_data()); });
  set_bytes(st, 2 * int64_t(a.nbytes()));
}

void BM_cuda_matmul(benchmark::State& st, DType dt, bool tf32) {
  if (!need_gpu(st)) return;
  int64_t n = st.range(0);
  bool prev = allow_tf32();
  set_allow_tf32(tf32);
  Tensor a = Tensor::randn({n, n}, 1, {dt, Device::cuda()}), b = Tensor::randn({n, n}, 2, {dt, Device::cuda()});
  time_gpu(st, [&] { benchmark::DoNotOptimize(matmul(a, b).raw_data()); });
  set_allow_tf32(prev);
  st.counters["TFLOP/s"] =
      benchmark::Counter(2.0 * double(n) * double(n) * double(n) * double(st.iterations()) * 1e-12,
                         benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_cuda_add_contiguous)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_add_broadcast_channel)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_add_permuted)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_copy_f32_to_f16)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_randn)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_sum_channels)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_sum_rows)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_sum_all)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_cuda_softmax_rows)->Arg(64)->Arg(1024)->Arg(16384)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_cuda_matmul, f32_exact, DType::f32, false)->Arg(1024)->Arg(4096)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_cuda_matmul, f32_tf32, DType::f32, true)->Arg(1024)->Arg(4096)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_cuda_matmul, f64, DType::f64, false)->Arg(1024)->UseManualTime()->Unit(benchmark::kMicrosecond);

#else  // CPU-only build: say so instead of printing nothing.

namespace {
void BM_cuda_unavailable(benchmark::State& st) {
  for (auto _ : st) {
  }
  st.SkipWithError("gradstyle was built without CUDA (-Dcuda=disabled)");
}
}  // namespace
BENCHMARK(BM_cuda_unavailable);

#endif  // GRADSTYLE_CUDA

BENCHMARK_MAIN();
