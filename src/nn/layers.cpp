#include "gradstyle/nn/layers.hpp"

#include <cmath>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/ops/bias_act.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/linalg.hpp"
#include "gradstyle/ops/norm.hpp"
#include "gradstyle/ops/upfirdn2d.hpp"

namespace gradstyle::nn {

gradstyle::Generator& init_generator() {
  static gradstyle::Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) {
  init_generator() = gradstyle::Generator(seed);
}

namespace {

gradstyle::Generator& pick(gradstyle::Generator* gen) {
  return gen ? *gen : init_generator();
}

// U(-bound, bound) from the Philox stream (rand is U(0, 1]).
Tensor uniform(const Shape& shape, double bound, gradstyle::Generator& gen) {
  autograd::NoGradGuard ng;
  return (Tensor::rand(shape, gen) * 2.0 - 1.0) * bound;
}

void check_positive(int64_t v, const char* layer, const char* what) {
  GS_CHECK(v >= 1, ValueError, layer, ": ", what, " must be >= 1, got ", v);
}

}  // namespace

// ---- Linear / Conv2d ------------------------------------------------------------------------------

Linear::Linear(int64_t in_features, int64_t out_features, bool has_bias, gradstyle::Generator* gen)
    : in_(in_features), out_(out_features) {
  check_positive(in_features, "Linear", "in_features");
  check_positive(out_features, "Linear", "out_features");
  const double bound = 1.0 / std::sqrt(double(in_features));
  weight = uniform({out_features, in_features}, bound, pick(gen));
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = uniform({out_features}, bound, pick(gen));
    register_parameter("bias", &bias);
  }
}

Tensor Linear::forward(const Tensor& x) const {
  return linear(x, weight, bias);
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const Conv2dSpec& spec,
               gradstyle::Generator* gen)
    : spec_(spec) {
  check_positive(in_channels, "Conv2d", "in_channels");
  check_positive(out_channels, "Conv2d", "out_channels");
  check_positive(kernel_size, "Conv2d", "kernel_size");
  check_positive(spec.groups, "Conv2d", "groups");
  GS_CHECK(in_channels % spec.groups == 0 && out_channels % spec.groups == 0, ValueError, "Conv2d: channels (",
           in_channels, ", ", out_channels, ") are not divisible by groups ", spec.groups);
  const int64_t fan_in = in_channels / spec.groups * kernel_size * kernel_size;
  const double bound = 1.0 / std::sqrt(double(fan_in));
  weight = uniform({out_channels, in_channels / spec.groups, kernel_size, kernel_size}, bound, pick(gen));
  register_parameter("weight", &weight);
  if (spec.bias) {
    bias = uniform({out_channels}, bound, pick(gen));
    register_parameter("bias", &bias);
  }
}

Tensor Conv2d::forward(const Tensor& x) const {
  Conv2dOptions o;
  o.stride = {spec_.stride, spec_.stride};
  o.padding = {spec_.padding, spec_.padding};
  o.dilation = {spec_.dilation, spec_.dilation};
  o.groups = spec_.groups;
  return conv2d(x, weight, bias, o);
}

LayerNorm::LayerNorm(int64_t features, double eps) : features_(features), eps_(eps) {
  check_positive(features, "LayerNorm", "features");
  GS_CHECK(eps > 0, ValueError, "LayerNorm: eps must be > 0, got ", eps);
  weight = Tensor::ones({features});
  bias = Tensor::zeros({features});
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
}

Tensor LayerNorm::forward(const Tensor& x) const {
  return layer_norm(x, {features_}, weight, bias, eps_);
}

// ---- equalised-LR layers -----------------------------------------------------------------------

Tensor make_blur_kernel(const std::vector<float>& k) {
  GS_CHECK(!k.empty(), ValueError, "make_blur_kernel: empty kernel");
  const int64_t n = int64_t(k.size());
  std::vector<double> v(size_t(n * n));
  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) total += v[size_t(i * n + j)] = double(k[size_t(i)]) * double(k[size_t(j)]);
  GS_CHECK(total != 0.0, ValueError, "make_blur_kernel: kernel sums to zero");
  std::vector<float> f(v.size());
  for (size_t i = 0; i < v.size(); ++i) f[i] = float(v[i] / total);
  return Tensor::from_vector(f, {n, n});
}

EqualLinear::EqualLinear(int64_t in_dim, int64_t out_dim, const EqualLinearSpec& spec, gradstyle::Generator* gen)
    : in_(in_dim), out_(out_dim), spec_(spec) {
  check_positive(in_dim, "EqualLinear", "in_dim");
  check_positive(out_dim, "EqualLinear", "out_dim");
  GS_CHECK(spec.lr_mul > 0, ValueError, "EqualLinear: lr_mul must be > 0, got ", spec.lr_mul);
  scale_ = spec.lr_mul / std::sqrt(double(in_dim));
  {
    autograd::NoGradGuard ng;
    weight = Tensor::randn({out_dim, in_dim}, pick(gen)) / spec.lr_mul;
  }
  register_parameter("weight", &weight);
  if (spec.bias) {
    bias = Tensor::full({out_dim}, spec.bias_init);
    register_parameter("bias", &bias);
  }
}

Tensor EqualLinear::forward(const Tensor& x) const {
  GS_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == in_, ShapeError, "EqualLinear: input ",
           x.defined() ? shape_str(x.shape()) : std::string("undefined"), " does not end in ", in_, " features");
  const Tensor w = weight * scale_;
  const Tensor b = bias.defined() ? (spec_.lr_mul == 1.0 ? bias : bias * spec_.lr_mul) : Tensor();
  if (spec_.activation == EqualActivation::None) return linear(x, w, b);
  BiasActOptions o;
  o.act = Activation::LeakyReLU;
  o.dim = x.dim() - 1;  // the feature dim
  return bias_act(linear(x, w), b, o);
}

EqualConv2d::EqualConv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride,
                         int64_t padding, bool has_bias, gradstyle::Generator* gen)
    : stride_(stride), padding_(padding) {
  check_positive(in_channels, "EqualConv2d", "in_channels");
  check_positive(out_channels, "EqualConv2d", "out_channels");
  check_positive(kernel_size, "EqualConv2d", "kernel_size");
  check_positive(stride, "EqualConv2d", "stride");
  GS_CHECK(padding >= 0, ValueError, "EqualConv2d: negative padding ", padding);
  scale_ = 1.0 / std::sqrt(double(in_channels * kernel_size * kernel_size));
  {
    autograd::NoGradGuard ng;
    weight = Tensor::randn({out_channels, in_channels, kernel_size, kernel_size}, pick(gen));
  }
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = Tensor::zeros({out_channels});
    register_parameter("bias", &bias);
  }
}

Tensor EqualConv2d::forward(const Tensor& x) const {
  Conv2dOptions o;
  o.stride = {stride_, stride_};
  o.padding = {padding_, padding_};
  return conv2d(x, weight * scale_, bias, o);
}

FusedLeakyReLU::FusedLeakyReLU(int64_t channels) {
  check_positive(channels, "FusedLeakyReLU", "channels");
  bias = Tensor::zeros({channels});
  register_parameter("bias", &bias);
}

Tensor FusedLeakyReLU::forward(const Tensor& x) const {
  BiasActOptions o;
  o.act = Activation::LeakyReLU;
  return bias_act(x, bias, o);
}

Blur::Blur(const std::vector<float>& k, std::array<int64_t, 2> pad, int64_t upsample_factor) : pad_(pad) {
  check_positive(upsample_factor, "Blur", "upsample_factor");
  kernel = make_blur_kernel(k);
  if (upsample_factor > 1) kernel = kernel * double(upsample_factor * upsample_factor);
  expected_ = kernel.clone();
  register_buffer("kernel", &kernel);
}

Tensor Blur::forward(const Tensor& x) const {
  const Tensor k =
      kernel.device() == x.device() && kernel.dtype() == x.dtype() ? kernel : kernel.to(x.device()).to(x.dtype());
  return upfirdn2d(x, k, 1, 1, {pad_[0], pad_[1], pad_[0], pad_[1]});
}

Upsample::Upsample(const std::vector<float>& k, int64_t factor) : factor_(factor) {
  check_positive(factor, "Upsample", "factor");
  kernel = make_blur_kernel(k) * double(factor * factor);
  expected_ = kernel.clone();
  const int64_t p = int64_t(k.size()) - factor;
  pad_ = {(p + 1) / 2 + factor - 1, p / 2};
  register_buffer("kernel", &kernel);
}

Tensor Upsample::forward(const Tensor& x) const {
  const Tensor k =
      kernel.device() == x.device() && kernel.dtype() == x.dtype() ? kernel : kernel.to(x.device()).to(x.dtype());
  return upfirdn2d(x, k, factor_, 1, {pad_[0], pad_[1], pad_[0], pad_[1]});
}

// ---- discriminator blocks --------------------------------------------------------------------------

ConvLayer::ConvLayer(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool downsample,
                     const std::vector<float>& blur_kernel, bool bias, bool activate, gradstyle::Generator* gen) {
  int idx = 0;
  int64_t stride = 1, padding = kernel_size / 2;
  if (downsample) {
    const int64_t factor = 2;
    const int64_t p = (int64_t(blur_kernel.size()) - factor) + (kernel_size - 1);
    blur_ = std::make_shared<Blur>(blur_kernel, std::array<int64_t, 2>{(p + 1) / 2, p / 2});
    register_module(std::to_string(idx++), blur_);
    stride = 2;
    padding = 0;
  }
  conv_ =
      std::make_shared<EqualConv2d>(in_channels, out_channels, kernel_size, stride, padding, bias && !activate, gen);
  register_module(std::to_string(idx++), conv_);
  if (activate) {
    act_ = std::make_shared<FusedLeakyReLU>(out_channels);
    register_module(std::to_string(idx++), act_);
  }
}

Tensor ConvLayer::forward(const Tensor& x) const {
  Tensor y = blur_ ? blur_->forward(x) : x;
  y = conv_->forward(y);
  return act_ ? act_->forward(y) : y;
}

ResBlock::ResBlock(int64_t in_channels, int64_t out_channels, const std::vector<float>& blur_kernel,
                   gradstyle::Generator* gen)
    : conv1(in_channels, in_channels, 3, false, blur_kernel, true, true, gen),
      conv2(in_channels, out_channels, 3, true, blur_kernel, true, true, gen),
      skip(in_channels, out_channels, 1, true, blur_kernel, false, false, gen) {
  register_module("conv1", &conv1);
  register_module("conv2", &conv2);
  register_module("skip", &skip);
}

Tensor ResBlock::forward(const Tensor& x) const {
  // x: [N, in, H, W] -> [N, out, H/2, W/2]
  return (conv2.forward(conv1.forward(x)) + skip.forward(x)) / std::sqrt(2.0);
}

}  // namespace gradstyle::nn
