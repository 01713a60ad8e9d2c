#pragma once
// Layers of the pretrained encoder and loss networks (e4e, IR-SE / ArcFace, LPIPS) with PyTorch's
// parameter names: Conv2d, Linear, EqualLinear (rosinality, no activation), BatchNorm (1d/2d) and
// PReLU.
//
// They differ from nn::Conv2d / nn::Linear / nn::EqualLinear in one respect: how the parameters
// start out (ParamInit). These networks are almost always loaded from a checkpoint right after
// they are built, and e4e alone has 267 M parameters, so drawing random initial values (seconds
// on the CPU) and holding them next to the loaded copy (another GB) is pure waste.
//   * ParamInit::Random: PyTorch's defaults, drawn from nn::init_generator() like nn::Conv2d
//     (training or timing from scratch).
//   * ParamInit::Deferred: every parameter is a stride-0 view of a single zero with the right
//     shape. It costs nothing, reads as zeros, and is replaced by load_state_dict. Use it only
//     for a network that is loaded right away (the from_checkpoint / from_state_dict functions do);
//     never train one that was not loaded (an optimizer step would write through the view).
// Buffers (BatchNorm statistics) are always real tensors.
#include "gradstyle/nn/module.hpp"

namespace gradstyle::models {

enum class ParamInit { Random, Deferred };

// torch.nn.Conv2d (square kernel, zero padding, groups 1): "weight" [out, in, k, k], "bias" [out].
// x [N, in, H, W] -> [N, out, OH, OW]. Random init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
class Conv2d : public nn::Module {
 public:
  Tensor weight, bias;
  Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0, bool has_bias = true,
         ParamInit init = ParamInit::Random);
  Tensor forward(const Tensor& x) const;

 private:
  int64_t stride_, padding_;
};

// torch.nn.Linear: "weight" [out, in], "bias" [out]. x [..., in] -> [..., out].
class Linear : public nn::Module {
 public:
  Tensor weight, bias;
  Linear(int64_t in, int64_t out, bool has_bias = true, ParamInit init = ParamInit::Random);
  Tensor forward(const Tensor& x) const;
};

// rosinality EqualLinear(in, out, lr_mul) without activation: x (W lr_mul / sqrt(in))^T + b lr_mul.
// "weight" [out, in] (randn / lr_mul), "bias" [out] (zeros).
class EqualLinear : public nn::Module {
 public:
  Tensor weight, bias;
  EqualLinear(int64_t in, int64_t out, double lr_mul = 1.0, ParamInit init = ParamInit::Random);
  Tensor forward(const Tensor& x) const;

 private:
  double scale_, lr_mul_;
};

// torch.nn.BatchNorm1d / BatchNorm2d: "weight", "bias" (affine only), buffers "running_mean",
// "running_var", "num_batches_tracked" (int64 scalar). x [N, C, ...]. Evaluation mode uses the
// running statistics; training mode uses the batch statistics and updates the running ones (and
// num_batches_tracked) in place.
class BatchNorm : public nn::Module {
 public:
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  explicit BatchNorm(int64_t channels, bool affine = true, ParamInit init = ParamInit::Random, double eps = 1e-5,
                     double momentum = 0.1);
  Tensor forward(const Tensor& x);
  int64_t channels() const { return channels_; }

 private:
  int64_t channels_;
  double eps_, momentum_;
};

// torch.nn.PReLU(C): "weight" [C] (0.25). x [N, C, ...].
class PReLU : public nn::Module {
 public:
  Tensor weight;
  explicit PReLU(int64_t channels, ParamInit init = ParamInit::Random);
  Tensor forward(const Tensor& x) const;
};

// Fills every floating parameter of m with N(0, 1/fan_in) from `seed` (fan_in = numel / size(0);
// 1-D parameters get 1 + N(0, 0.1^2) for BatchNorm-like scales named "weight", N(0, 0.1^2) else).
// Gives a randomly initialised network realistic activations (benchmarks, tests).
void randomize_parameters(nn::Module& m, uint64_t seed);

}  // namespace gradstyle::models
