// Benchmarks of the image-model ops at the StyleGAN2 shapes, CPU and CUDA side by
// side: conv2d 3x3 (512 channels at 8..64 px, 256 at 128 px, batch 8; plus the batch-1 64 px
// anchor of PERFORMANCE.md), its two gradients, upfirdn2d (the D blur and the ToRGB upsample) and
// bias_act (lrelu, forward and gradient).
//
// Every timed variant is first checked in the same run: the conv output (channel 0 of image 0,
// on a grid of pixels) against a float64 dot-product reference, relative to the sum of |terms|
// (counter max_rel_err; SkipWithError above 1e-3), and the CUDA upfirdn2d against the CPU.
// Inputs are seeded N(0,1); weights N(0,1)/sqrt(fan_in) like EqualConv2d; never zeros.
// CPU thread count: OpenMP's (run with OMP_NUM_THREADS=2 on the dev machine; printed).
// tools/bench_torch_conv.py runs this binary interleaved with the same PyTorch calls.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "gradstyle/gradstyle.hpp"
#include "gradstyle/ops/bias_act.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/upfirdn2d.hpp"

using namespace gradstyle;

namespace {

Device dev_of(int64_t d) { return d ? Device::cuda() : Device::cpu(); }

bool skip_device(benchmark::State& st, Device d) {
  if (d.is_cuda() && !cuda_available()) {
    st.SkipWithError(cuda_built() ? "no GPU present" : "built without CUDA");
    return true;
  }
  return false;
}

void sync(Device d) {
  if (d.is_cuda()) (void)Tensor::zeros({1}, {DType::f32, d}).item();  // a device->host copy waits for the stream
}

// CPU seconds used by the whole process (all threads) so far.
double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// Times body() with manual timing (synchronised for CUDA), after 3 warm-up calls. Also reports
// proc_cpu_ms: CPU time of all threads per call, a measure of work that stays meaningful when
// the machine is shared (wall time then depends on what else runs).
template <class F>
void run(benchmark::State& st, Device d, F body) {
  for (int i = 0; i < 3; ++i) body();
  sync(d);
  double cpu = 0;
  for (auto _ : st) {
    const double c0 = process_cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    body();
    sync(d);
    st.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    cpu += process_cpu_seconds() - c0;
  }
  st.counters["threads"] = d.is_cpu() ? omp_get_max_threads() : 0;
  st.counters["proc_cpu_ms"] = 1e3 * cpu / double(std::max<int64_t>(1, st.iterations()));
}

// Relative error of conv2d output channel 0 of image 0 against a float64 reference.
double check_conv_channel0(const Tensor& x, const Tensor& w, const Tensor& y) {
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  Tensor xc = x.cpu(), wc = w.cpu(), yc = y.cpu();
  const float* xp = xc.data<float>();
  const float* wp = wc.data<float>();
  const float* yp = yc.data<float>();
  double worst = 0;
  for (int64_t oy = 0; oy < H; oy += 7)
    for (int64_t ox = 0; ox < W; ox += 5) {
      double acc = 0, mag = 0;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t p = 0; p < 3; ++p)
          for (int64_t q = 0; q < 3; ++q) {
            int64_t iy = oy - 1 + p, ix = ox - 1 + q;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            double t = double(wp[(c * 3 + p) * 3 + q]) * double(xp[(c * H + iy) * W + ix]);
            acc += t;
            mag += std::abs(t);
          }
      worst = std::max(worst, std::abs(acc - double(yp[oy * W + ox])) / (mag + 1e-30));
    }
  return worst;
}

// args: device (0 cpu, 1 cuda), batch, channels, size
void BM_conv2d_3x3(benchmark::State& st) {
  const Device d = dev_of(st.range(0));
  if (skip_device(st, d)) return;
  const int64_t B = st.range(1), C = st.range(2), S = st.range(3);
  Tensor x = Tensor::randn({B, C, S, S}, 1, {DType::f32, d});
  Tensor w = mul_scalar(Tensor::randn({C, C, 3, 3}, 2, {DType::f32, d}), 1.0 / std::sqrt(double(C * 9)));
  Tensor b = Tensor::randn({C}, 3, {DType::f32, d});
  autograd::NoGradGuard ng;
  const Conv2dOptions o{.padding = {1, 1}};
  Tensor y = conv2d(x, w, Tensor(), o);
  const double err = check_conv_channel0(x, w, y);
  st.counters["max_rel_err"] = err;
  if (!(err < 1e-3)) {
    st.SkipWithError("conv2d result check failed");
    return;
  }
  run(st, d, [&] { benchmark::DoNotOptimize(conv2d(x, w, b, o)); });
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(B * C * C * 9 * S * S), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// The input gradient (= conv_transpose2d) and weight gradient of the same conv.
void BM_conv2d_3x3_backward(benchmark::State& st) {
  const Device d = dev_of(st.range(0));
  if (skip_device(st, d)) return;
  const int64_t B = st.range(1), C = st.range(2), S = st.range(3);
  Tensor x = Tensor::randn({B, C, S, S}, 4, {DType::f32, d});
  Tensor w = mul_scalar(Tensor::randn({C, C, 3, 3}, 5, {DType::f32, d}), 1.0 / std::sqrt(double(C * 9)));
  Tensor gy = Tensor::randn({B, C, S, S}, 6, {DType::f32, d});
  autograd::NoGradGuard ng;
  const Conv2dOptions o{.padding = {1, 1}};
  run(st, d, [&] {
    benchmark::DoNotOptimize(conv2d_input_grad(gy, w, {S, S}, o));
    benchmark::DoNotOptimize(conv2d_weight_grad(x, gy, {3, 3}, o));
  });
  st.counters["GFLOP/s"] = benchmark::Counter(4.0 * double(B * C * C * 9 * S * S), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

Tensor blur(Device d, double scale) {
  Tensor k = Tensor::from_vector<float>({1, 3, 3, 1}, {4});
  return mul_scalar(mul(reshape(k, {4, 1}), reshape(k, {1, 4})), scale / 64.0).to(d);
}

// args: device, batch, channels, size, up (1: D blur pad (2,2); 2: ToRGB upsample pad (2,1))
void BM_upfirdn2d(benchmark::State& st) {
  const Device d = dev_of(st.range(0));
  if (skip_device(st, d)) return;
  const int64_t B = st.range(1), C = st.range(2), S = st.range(3), up = st.range(4);
  Tensor x = Tensor::randn({B, C, S, S}, 7, {DType::f32, d});
  Tensor k = blur(d, double(up * up));
  std::array<int64_t, 4> pad = up == 1 ? std::array<int64_t, 4>{2, 2, 2, 2} : std::array<int64_t, 4>{2, 1, 2, 1};
  autograd::NoGradGuard ng;
  if (d.is_cuda()) {
    Tensor ref = upfirdn2d(x.cpu(), k.cpu(), up, 1, pad), got = upfirdn2d(x, k, up, 1, pad).cpu();
    double err = amax(abs(sub(ref, got))).item();
    st.counters["max_abs_err_vs_cpu"] = err;
    if (!(err < 1e-4)) {
      st.SkipWithError("upfirdn2d CUDA result differs from the CPU");
      return;
    }
  }
  run(st, d, [&] { benchmark::DoNotOptimize(upfirdn2d(x, k, up, 1, pad)); });
  const double out = double(B * C) * double(S * up + (up == 1 ? 1 : 0)) * double(S * up + (up == 1 ? 1 : 0));
  st.counters["Gsample/s"] = benchmark::Counter(out, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// args: device, batch, channels, size; lrelu with bias, forward + gradient
void BM_bias_act(benchmark::State& st) {
  const Device d = dev_of(st.range(0));
  if (skip_device(st, d)) return;
  const int64_t B = st.range(1), C = st.range(2), S = st.range(3);
  Tensor x = Tensor::randn({B, C, S, S}, 8, {DType::f32, d}), b = Tensor::randn({C}, 9, {DType::f32, d});
  Tensor gy = Tensor::randn({B, C, S, S}, 10, {DType::f32, d});
  autograd::NoGradGuard ng;
  const BiasActOptions o{.act = Activation::LeakyReLU};
  run(st, d, [&] {
    Tensor y = bias_act(x, b, o);
    benchmark::DoNotOptimize(bias_act_grad(gy, y, o));
  });
  st.counters["GB/s"] = benchmark::Counter(double(B * C * S * S) * 4 * 5, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void conv_args(benchmark::internal::Benchmark* b) {
  for (int64_t dev : {0, 1}) {
    b->Args({dev, 1, 512, 64});  // PERFORMANCE.md anchor
    for (int64_t s : {8, 16, 32, 64}) b->Args({dev, 8, 512, s});
    b->Args({dev, 8, 256, 128});
  }
}
void resample_args(benchmark::internal::Benchmark* b) {
  for (int64_t dev : {0, 1}) {
    b->Args({dev, 8, 512, 32, 1});
    b->Args({dev, 8, 256, 128, 1});
    b->Args({dev, 8, 3, 256, 2});
  }
}
void bias_act_args(benchmark::internal::Benchmark* b) {
  for (int64_t dev : {0, 1}) {
    b->Args({dev, 8, 512, 32});
    b->Args({dev, 8, 256, 128});
  }
}

}  // namespace

BENCHMARK(BM_conv2d_3x3)->Apply(conv_args)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_conv2d_3x3_backward)->Apply(conv_args)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_upfirdn2d)->Apply(resample_args)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bias_act)->Apply(bias_act_args)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
