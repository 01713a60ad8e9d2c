// Kernel lab: modulated convolution at every StyleGAN2 config-f synthesis layer (SPEC B.1 / C.1:
// the 3x3 StyledConvs and up-convs from 4 to 1024 px and the 1x1 ToRGBs, batch 8, with noise,
// bias and lrelu*sqrt2 like the generator), CPU and CUDA, forward and forward + input gradient
// (the GradStyle training path needs only dX: PERFORMANCE.md §3.5). Variants:
//   0 nonfused       : modulated_conv2d (x * s, one shared-weight conv, fused epilogue kernel)
//   1 grouped        : modulated_conv2d_grouped (rosinality: per-sample weights, groups = B)
//   2 nonfused_split : x * s, shared conv, then * d, + noise, bias_act as separate ops (what the
//                      NVIDIA non-fused PyTorch path does), to measure the epilogue fusion
// Check before timing: sample 0 of the timed output against the other formulation (grouped for
// variants 0 and 2, non-grouped for 1) evaluated on the CPU in float64 for layers up to 64 px and in
// float32 above (the float64 CPU conv at 128..1024 px would take longer than the benchmark), every
// element within 1e-4 + 1e-3 |ref|; dX is compared through the variant's own activation slopes
// (a few outputs sit within rounding of the lrelu kink, where two formulations may differ).
// Counters: FLOP/s (2 per MAC; up-convs counted on the input grid as in PERFORMANCE.md §3.1; the
// backward counts one more conv) and floor_ms (that work at FP32 peak).
//
//   OMP_NUM_THREADS=2 ./build/bench/kernels/lab_modulated_conv --benchmark_filter='dev:0/variant:0/layer:[0-9]/'
#include "gradstyle/ops/bias_act.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/modulated_conv.hpp"
#include "gradstyle/ops/upfirdn2d.hpp"
#include "lab_common.hpp"

using namespace gradstyle;

namespace {

constexpr int64_t kB = 8;

struct Layer {
  const char* name;
  int64_t in_res, cin, cout, k, up;
  bool torgb;
};

int64_t channels(int64_t res) { return res <= 64 ? 512 : 512 * 64 / res; }

std::vector<Layer> layers() {
  std::vector<Layer> r;
  r.push_back({"conv4", 4, 512, 512, 3, 1, false});
  for (int64_t res = 8; res <= 1024; res *= 2) {
    r.push_back({"up", res / 2, channels(res / 2), channels(res), 3, 2, false});
    r.push_back({"conv", res, channels(res), channels(res), 3, 1, false});
  }
  for (int64_t res = 4; res <= 1024; res *= 2) r.push_back({"torgb", res, channels(res), 3, 1, 1, true});
  return r;
}

ModulatedConv2dOptions options(const Layer& l, const Tensor& noise, const Tensor& nw, const Tensor& bias) {
  ModulatedConv2dOptions o;
  o.up = l.up;
  o.bias = bias;
  if (!l.torgb) {
    o.noise = noise, o.noise_weight = nw, o.act = Activation::LeakyReLU;
  } else {
    o.demodulate = false;
  }
  return o;
}

// variant 2: the same math with separate ops after the conv (NVIDIA's non-fused PyTorch path)
Tensor nonfused_split(const Tensor& x, const Tensor& w, const Tensor& s, const Layer& l, const ModulatedConv2dOptions& o) {
  const int64_t B = x.size(0), I = x.size(1);
  Tensor w_eff = mul_scalar(w, 1.0 / std::sqrt(double(I * l.k * l.k)));
  Tensor xs = mul(x, reshape(s, {B, I, 1, 1}));
  Tensor y;
  if (l.up == 2) {
    ConvTranspose2dOptions co;
    co.stride = {2, 2};
    y = conv_transpose2d(xs, transpose(w_eff, 0, 1), Tensor(), co);
    Tensor f = Tensor::from_vector<double>({0.125, 0.375, 0.375, 0.125}, {4}).to(x.dtype()).to(x.device());
    y = upfirdn2d(y, f, 1, 1, {1, 1, 1, 1}, false, 4.0);
  } else {
    Conv2dOptions co;
    co.padding = {l.k / 2, l.k / 2};
    y = conv2d(xs, w_eff, Tensor(), co);
  }
  if (o.demodulate) y = mul(y, reshape(modulated_conv2d_demod(w_eff, s), {B, w.size(0), 1, 1}));
  if (o.noise.defined()) y = add(y, mul(o.noise_weight, o.noise));
  BiasActOptions ao;
  ao.act = o.act;
  return bias_act(y, o.bias, ao);
}

Tensor variant_fn(int64_t v, const Tensor& x, const Tensor& w, const Tensor& s, const Layer& l,
                  const ModulatedConv2dOptions& o) {
  if (v == 0) return modulated_conv2d(x, w, s, o);
  if (v == 1) return modulated_conv2d_grouped(x, w, s, o);
  return nonfused_split(x, w, s, l, o);
}

void BM_modulated_conv(benchmark::State& st) {
  const Device d = lab::dev_of(st.range(0));
  const int64_t variant = st.range(1);
  const Layer l = layers()[size_t(st.range(2))];
  const bool bwd = st.range(3) != 0;
  if (lab::skip_device(st, d)) return;
  const int64_t OH = l.up == 2 ? 2 * l.in_res : l.in_res;
  st.SetLabel(std::string(l.name) + " " + std::to_string(l.in_res) + "->" + std::to_string(OH) + "px " +
              std::to_string(l.cin) + "->" + std::to_string(l.cout));
  Tensor x = Tensor::randn({kB, l.cin, l.in_res, l.in_res}, 1, {DType::f32, d});
  Tensor w = Tensor::randn({l.cout, l.cin, l.k, l.k}, 2, {DType::f32, d});
  Tensor s = add_scalar(mul_scalar(Tensor::randn({kB, l.cin}, 3, {DType::f32, d}), 0.3), 1.0);  // styles near 1
  Tensor noise = Tensor::randn({1, 1, OH, OH}, 4, {DType::f32, d}), nw = Tensor::full({1}, 0.1, {DType::f32, d});
  Tensor bias = mul_scalar(Tensor::randn({l.cout}, 5, {DType::f32, d}), 0.1);
  Tensor gy = Tensor::randn({kB, l.cout, OH, OH}, 6, {DType::f32, d});
  if (bwd) x.requires_grad_();
  const ModulatedConv2dOptions o = options(l, noise, nw, bias);
  auto body = [&]() -> std::vector<Tensor> {
    if (!bwd) {
      autograd::NoGradGuard ng;
      return {variant_fn(variant, x, w, s, l, o)};
    }
    Tensor y = variant_fn(variant, x, w, s, l, o);
    auto g = autograd::grad({y}, {x}, {gy});
    return {y.detach(), g[0]};
  };
  {  // the gate
    auto got = body();
    const DType rd = OH <= 64 ? DType::f64 : DType::f32;
    auto s0 = [rd](const Tensor& t) { return t.detach().narrow(0, 0, 1).cpu().to(rd); };
    Tensor x0 = s0(x).requires_grad_();
    ModulatedConv2dOptions o0 = options(l, noise.cpu().to(rd), nw.cpu().to(rd), bias.cpu().to(rd));
    Tensor w0 = w.cpu().to(rd), st0 = s0(s);
    Tensor ref = variant == 1 ? modulated_conv2d(x0, w0, st0, o0) : modulated_conv2d_grouped(x0, w0, st0, o0);
    double worst = lab::worst_ratio(s0(got[0]), ref.detach(), 1e-4, 1e-3);
    if (bwd) {
      // dX through the activation uses the variant's own slopes (read from its output, exactly
      // as the backward does): an output within rounding of the lrelu kink may take slope 1 in one
      // formulation and 0.2 in the other, which moves 9 * Cin gradient entries. The forward check
      // above already pins the outputs; this one pins everything behind the activation.
      BiasActOptions ao;
      ao.act = o0.act;
      Tensor g_pre = bias_act_grad(s0(gy), s0(got[0]), ao);
      ModulatedConv2dOptions lin = o0;
      lin.act = Activation::Linear;
      Tensor x1 = s0(x).requires_grad_();
      Tensor ref_lin = variant == 1 ? modulated_conv2d(x1, w0, st0, lin) : modulated_conv2d_grouped(x1, w0, st0, lin);
      auto g = autograd::grad({ref_lin}, {x1}, {g_pre});
      worst = std::max(worst, lab::worst_ratio(s0(got[1]), g[0], 1e-4, 1e-3));
    }
    if (!lab::checked(st, worst, "sample 0 vs the other formulation")) return;
  }
  lab::run(st, d, body, d.is_cuda() ? 3 : 1, d.is_cuda() ? 5 : 1);
  const double macs = double(kB) * double(l.in_res * l.in_res) * double(l.cin * l.cout * l.k * l.k);
  lab::flop_counters(st, d, (bwd ? 4.0 : 2.0) * macs);
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"dev", "variant", "layer", "bwd"});
  const int64_t n = int64_t(layers().size());
  for (int64_t dev : {0, 1})
    for (int64_t bwd : {0, 1})
      for (int64_t li = 0; li < n; ++li)
        for (int64_t var : {0, 1, 2}) b->Args({dev, var, li, bwd});
}

}  // namespace

BENCHMARK(BM_modulated_conv)->Apply(args)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
