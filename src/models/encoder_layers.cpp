#include "gradstyle/models/encoder_layers.hpp"

#include <cmath>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/dist/dist.hpp"
#include "gradstyle/nn/layers.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/linalg.hpp"
#include "gradstyle/ops/norm.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::models {

namespace {

// A parameter of `shape`: random U(-bound, bound) / N(0, 1) * scale, a constant, or a deferred
// stride-0 zero view.
enum class Dist { Uniform, Normal, Constant };

Tensor make_param(const Shape& shape, ParamInit init, Dist dist, double a) {
  autograd::NoGradGuard ng;
  if (init == ParamInit::Deferred) return expand(reshape(Tensor::zeros({1}), Shape(shape.size(), 1)), shape);
  switch (dist) {
    case Dist::Uniform: return (Tensor::rand(shape, nn::init_generator()) * 2.0 - 1.0) * a;
    case Dist::Normal: return Tensor::randn(shape, nn::init_generator()) * a;
    case Dist::Constant: break;
  }
  return Tensor::full(shape, a);
}

void check_positive(int64_t v, const char* layer, const char* what) {
  GS_CHECK(v >= 1, ValueError, layer, ": ", what, " must be >= 1, got ", v);
}

}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool has_bias, ParamInit init)
    : stride_(stride), padding_(padding) {
  check_positive(in, "Conv2d", "in_channels");
  check_positive(out, "Conv2d", "out_channels");
  check_positive(kernel, "Conv2d", "kernel_size");
  check_positive(stride, "Conv2d", "stride");
  const double bound = 1.0 / std::sqrt(double(in * kernel * kernel));
  weight = make_param({out, in, kernel, kernel}, init, Dist::Uniform, bound);
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = make_param({out}, init, Dist::Uniform, bound);
    register_parameter("bias", &bias);
  }
}

Tensor Conv2d::forward(const Tensor& x) const {
  Conv2dOptions o;
  o.stride = {stride_, stride_};
  o.padding = {padding_, padding_};
  return conv2d(x, weight, bias, o);
}

Linear::Linear(int64_t in, int64_t out, bool has_bias, ParamInit init) {
  check_positive(in, "Linear", "in_features");
  check_positive(out, "Linear", "out_features");
  const double bound = 1.0 / std::sqrt(double(in));
  weight = make_param({out, in}, init, Dist::Uniform, bound);
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = make_param({out}, init, Dist::Uniform, bound);
    register_parameter("bias", &bias);
  }
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, weight, bias); }

EqualLinear::EqualLinear(int64_t in, int64_t out, double lr_mul, ParamInit init)
    : scale_(lr_mul / std::sqrt(double(in))), lr_mul_(lr_mul) {
  check_positive(in, "EqualLinear", "in_dim");
  check_positive(out, "EqualLinear", "out_dim");
  GS_CHECK(lr_mul > 0, ValueError, "EqualLinear: lr_mul must be > 0, got ", lr_mul);
  weight = make_param({out, in}, init, Dist::Normal, 1.0 / lr_mul);
  bias = make_param({out}, init, Dist::Constant, 0.0);
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
}

Tensor EqualLinear::forward(const Tensor& x) const {
  GS_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == weight.size(1), ShapeError, "EqualLinear: input ",
           x.defined() ? shape_str(x.shape()) : std::string("undefined"), " does not end in ", weight.size(1),
           " features");
  return linear(x, weight * scale_, lr_mul_ == 1.0 ? bias : bias * lr_mul_);
}

BatchNorm::BatchNorm(int64_t channels, bool affine, ParamInit init, double eps, double momentum)
    : channels_(channels), eps_(eps), momentum_(momentum) {
  check_positive(channels, "BatchNorm", "channels");
  if (affine) {
    weight = make_param({channels}, init, Dist::Constant, 1.0);
    bias = make_param({channels}, init, Dist::Constant, 0.0);
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
  }
  running_mean = Tensor::zeros({channels});
  running_var = Tensor::ones({channels});
  num_batches_tracked = Tensor::zeros({}, {DType::i64});
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
  register_buffer("num_batches_tracked", &num_batches_tracked);
}

Tensor BatchNorm::forward(const Tensor& x) {
  if (is_training()) {
    autograd::NoGradGuard ng;
    const int64_t n = int64_t(num_batches_tracked.item());
    num_batches_tracked.copy_(Tensor::full({}, double(n + 1), {DType::i64, num_batches_tracked.device()}));
  }
  // In data-parallel training the statistics are those of the global batch (dist/dist.hpp).
  if (dist::ProcessGroup* g = dist::batch_group(); g && g->size() > 1 && is_training())
    return dist::sync_batch_norm(x, running_mean, running_var, weight, bias, true, momentum_, eps_, *g);
  return batch_norm(x, running_mean, running_var, weight, bias, is_training(), momentum_, eps_);
}

PReLU::PReLU(int64_t channels, ParamInit init) {
  check_positive(channels, "PReLU", "channels");
  weight = make_param({channels}, init, Dist::Constant, 0.25);
  register_parameter("weight", &weight);
}

Tensor PReLU::forward(const Tensor& x) const { return prelu(x, weight); }

void randomize_parameters(nn::Module& m, uint64_t seed) {
  autograd::NoGradGuard ng;
  Generator gen(seed);
  for (auto& [name, t] : m.named_parameters()) {
    if (!is_floating(t->dtype())) continue;
    const bool rg = t->requires_grad();
    const Shape s = t->shape();
    Tensor v;
    if (s.size() >= 2) {
      v = Tensor::randn(s, gen) * (1.0 / std::sqrt(double(shape_numel(s) / s[0])));
    } else {
      const bool scale_like = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0;
      v = Tensor::randn(s, gen) * 0.1 + (scale_like ? 1.0 : 0.0);
    }
    v = v.to(t->dtype()).to(t->device()).contiguous();
    if (rg) v.requires_grad_(true);
    *t = v;
  }
}

}  // namespace gradstyle::models
