#pragma once
// Shared helpers of the kernel lab (bench/kernels/lab_*.cpp): device selection, synchronised
// manual timing, the "check before timing" gate and the floor counters of PERFORMANCE.md.
//
// Every benchmark first runs its variant once on the benchmark's own inputs and compares the
// result with a reference computed independently (float64 CPU oracle or another formulation);
// a variant that fails is reported with SkipWithError and never timed (llm.c's habit).
// GPU timing: the stream is drained (a device->host copy) around every sample, and each sample
// runs the body `reps` times back to back so a sample lasts well over a millisecond; CPU timing:
// steady_clock, OpenMP thread count printed as counter `threads` (use OMP_NUM_THREADS=2 here).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <string>

#include "gradstyle/gradstyle.hpp"

namespace lab {

using namespace gradstyle;

// Sustained-rate planning figures of PERFORMANCE.md §2 (H100 FP32 datasheet peak; 2-core dev CPU).
constexpr double kGpuFp32Flops = 66.9e12;
constexpr double kGpuBytesPerS = 3.0e12;
constexpr double kCpuFlops = 166e9;

inline Device dev_of(int64_t d) { return d ? Device::cuda() : Device::cpu(); }

inline bool skip_device(benchmark::State& st, Device d) {
  if (d.is_cuda() && !cuda_available()) {
    st.SkipWithError(cuda_built() ? "CUDA case skipped: no GPU present" : "CUDA case skipped: built without CUDA");
    return true;
  }
  return false;
}

inline void sync(Device d) {
  if (d.is_cuda()) (void)Tensor::zeros({1}, {DType::f32, d}).item();  // waits for the library stream
}

// Times body() with manual timing after `warmup` calls; `reps` calls per sample.
template <class F>
void run(benchmark::State& st, Device d, F body, int warmup = 3, int reps = 1) {
  for (int i = 0; i < warmup; ++i) body();
  sync(d);
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) body();
    sync(d);
    st.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps);
  }
  st.counters["threads"] = d.is_cpu() ? omp_get_max_threads() : 0;
}

// Worst |a - b| / (atol + rtol |b|) over all elements (a, b any device / float dtype).
inline double worst_ratio(const Tensor& a, const Tensor& b, double atol, double rtol) {
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  if (va.size() != vb.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const double r = std::abs(va[i] - vb[i]) / (atol + rtol * std::abs(vb[i]));
    if (!(r <= worst)) worst = r;  // NaN propagates as a failure
  }
  return worst;
}

// Fraction of elements with |a - b| > atol + rtol |b| (NaN counts as a mismatch).
inline double mismatch_fraction(const Tensor& a, const Tensor& b, double atol, double rtol) {
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  if (va.size() != vb.size()) return 1.0;
  size_t bad = 0;
  for (size_t i = 0; i < va.size(); ++i) bad += !(std::abs(va[i] - vb[i]) <= atol + rtol * std::abs(vb[i]));
  return va.empty() ? 0.0 : double(bad) / double(va.size());
}

// The gate: records the check as a counter and refuses to time a variant that fails it.
inline bool checked(benchmark::State& st, double ratio, const std::string& what) {
  st.counters["check_ratio"] = ratio;
  if (!(ratio <= 1.0)) {
    st.SkipWithError(("check against the reference failed: " + what + ", worst at " + std::to_string(100 * ratio) +
                      "% of tolerance")
                         .c_str());
    return false;
  }
  return true;
}

// Counters: rate and the ratio of the measured time to the floor (time at peak).
inline void flop_counters(benchmark::State& st, Device d, double flops) {
  st.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["floor_ms"] = 1e3 * flops / (d.is_cuda() ? kGpuFp32Flops : kCpuFlops);
}
inline void byte_counters(benchmark::State& st, Device d, double bytes) {
  st.counters["B/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  if (d.is_cuda()) st.counters["floor_ms"] = 1e3 * bytes / kGpuBytesPerS;
}

}  // namespace lab
