#pragma once
// Layers built on nn::Module. Parameter and buffer names are exactly those of the PyTorch
// originals, so state_dicts load key for key:
//   - Linear, Conv2d, LayerNorm: torch.nn.Linear / Conv2d / LayerNorm ("weight", "bias");
//   - EqualLinear, EqualConv2d, FusedLeakyReLU, Blur, Upsample, ConvLayer, ResBlock: the
//     equalised-learning-rate layers of rosinality/stylegan2-pytorch model.py (SPEC.md C.1, C.2);
//   - ModuleList<M>: torch.nn.ModuleList / nn.Sequential naming ("0", "1", ...).
//
// Equalised learning rate: parameters are stored at unit scale and multiplied by a constant
// "runtime scale" in every forward (He-init constant), so that Adam sees every layer at the same
// scale. The stored tensors are exactly those of the checkpoint; the scales are recomputed from
// the shapes and never stored.
//
// Initialisation draws from nn::init_generator() (a process-wide Philox stream, seed 0 unless
// set), the same numbers on every device. Initial values only matter for training from scratch;
// checkpoints overwrite them.
//
// All forwards accept float32 or float64 inputs on the module's device and are differentiable to
// second order (they are composed from ops whose backward rules are differentiable).
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/core/rng.hpp"
#include "gradstyle/nn/module.hpp"

namespace gradstyle::nn {

// The generator layer constructors draw their initial values from (unless one is passed in).
gradstyle::Generator& init_generator();
void manual_seed(uint64_t seed);  // resets init_generator() to (seed, offset 0)

// ---- containers -------------------------------------------------------------------------------

// A list of child modules named "0", "1", ... like torch.nn.ModuleList (and nn.Sequential, whose
// keys are the same). Holds shared_ptrs, so the children stay put while the list grows.
// first_index renames the children from that number on (rosinality's `style` Sequential holds
// PixelNorm at "0", so its EqualLinear layers are "1", "2", ...).
template <class M>
class ModuleList : public Module {
 public:
  explicit ModuleList(size_t first_index = 0) : first_(first_index) {}
  M& append(std::shared_ptr<M> m) {
    GS_CHECK(m != nullptr, ValueError, "ModuleList::append: null module");
    register_module(std::to_string(first_ + items_.size()), m);
    items_.push_back(std::move(m));
    return *items_.back();
  }
  template <class... Args>
  M& emplace_back(Args&&... args) {
    return append(std::make_shared<M>(std::forward<Args>(args)...));
  }
  M& operator[](size_t i) const { return *items_.at(i); }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  size_t first_;
  std::vector<std::shared_ptr<M>> items_;
};

// ---- plain PyTorch layers ---------------------------------------------------------------------

// torch.nn.Linear: y = x W^T + b. weight [out, in], bias [out] (optional).
// x [..., in] -> [..., out]. Init: U(-1/sqrt(in), 1/sqrt(in)) for both (PyTorch's default).
class Linear : public Module {
 public:
  Tensor weight, bias;
  Linear(int64_t in_features, int64_t out_features, bool has_bias = true, gradstyle::Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const;
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

 private:
  int64_t in_, out_;
};

struct Conv2dSpec {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
};

// torch.nn.Conv2d (square kernel, zero padding). weight [out, in/groups, k, k], bias [out].
// x [N, in, H, W] -> [N, out, OH, OW]. Init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
class Conv2d : public Module {
 public:
  Tensor weight, bias;
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const Conv2dSpec& spec = {},
         gradstyle::Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const;

 private:
  Conv2dSpec spec_;
};

// torch.nn.LayerNorm(normalized_shape = [features], eps, elementwise_affine = true): normalises the
// last dim with the biased variance. "weight" [features] (ones), "bias" [features] (zeros).
// x [..., features] -> same shape.
class LayerNorm : public Module {
 public:
  Tensor weight, bias;
  explicit LayerNorm(int64_t features, double eps = 1e-5);
  Tensor forward(const Tensor& x) const;
  int64_t features() const { return features_; }
  double eps() const { return eps_; }

 private:
  int64_t features_;
  double eps_;
};

// ---- rosinality's equalised-LR layers (SPEC.md C.1) --------------------------------------------

// make_kernel(k): outer(k, k) / sum(outer(k, k)) as a [len, len] float32 tensor ([1,3,3,1] -> /64).
Tensor make_blur_kernel(const std::vector<float>& k);

enum class EqualActivation { None, FusedLeakyReLU };

struct EqualLinearSpec {
  bool bias = true;
  double bias_init = 0.0;
  double lr_mul = 1.0;
  EqualActivation activation = EqualActivation::None;
};

// EqualLinear(in, out, bias, bias_init, lr_mul, activation). Stored weight [out, in] is
// initialised randn / lr_mul and used as weight * (lr_mul / sqrt(in)); stored bias [out]
// (initialised to bias_init) is used as bias * lr_mul. With FusedLeakyReLU the output is
// lrelu(x W^T + b, 0.2) * sqrt(2) (bias_act). x [..., in] -> [..., out].
class EqualLinear : public Module {
 public:
  Tensor weight, bias;
  EqualLinear(int64_t in_dim, int64_t out_dim, const EqualLinearSpec& spec = {}, gradstyle::Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const;
  double scale() const { return scale_; }
  const EqualLinearSpec& spec() const { return spec_; }

 private:
  int64_t in_, out_;
  double scale_;
  EqualLinearSpec spec_;
};

// EqualConv2d(in, out, k, stride, padding, bias): stored weight [out, in, k, k] (randn) used as
// weight / sqrt(in * k^2); optional bias [out] (zeros). x [N, in, H, W] -> [N, out, OH, OW].
class EqualConv2d : public Module {
 public:
  Tensor weight, bias;
  EqualConv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1, int64_t padding = 0,
              bool has_bias = true, gradstyle::Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const;
  double scale() const { return scale_; }

 private:
  int64_t stride_, padding_;
  double scale_;
};

// FusedLeakyReLU(C): lrelu(x + bias[c], 0.2) * sqrt(2) along dim 1. Parameter "bias" [C] (zeros).
class FusedLeakyReLU : public Module {
 public:
  Tensor bias;
  explicit FusedLeakyReLU(int64_t channels);
  Tensor forward(const Tensor& x) const;
};

// Blur(kernel, pad, upsample_factor): upfirdn2d(x, kernel, up 1, down 1, pad (p0, p1) on both axes).
// Buffer "kernel" = make_kernel(k) * upsample_factor^2. x [N, C, H, W] -> [N, C, H+p0+p1-len+1, ...].
class Blur : public Module {
 public:
  Tensor kernel;
  Blur(const std::vector<float>& k, std::array<int64_t, 2> pad, int64_t upsample_factor = 1);
  Tensor forward(const Tensor& x) const;
  // The kernel this layer must hold (for checking a loaded buffer against it).
  const Tensor& expected_kernel() const { return expected_; }

 private:
  std::array<int64_t, 2> pad_;
  Tensor expected_;
};

// Upsample(kernel, factor): upfirdn2d(x, make_kernel(k) * factor^2, up = factor, pad (p0, p1)) with
// p = len - factor, p0 = (p+1)/2 + factor - 1, p1 = p/2 ([1,3,3,1], 2: pad (2, 1)): H -> factor*H.
// Buffer "kernel".
class Upsample : public Module {
 public:
  Tensor kernel;
  explicit Upsample(const std::vector<float>& k, int64_t factor = 2);
  Tensor forward(const Tensor& x) const;
  const Tensor& expected_kernel() const { return expected_; }

 private:
  int64_t factor_;
  std::array<int64_t, 2> pad_;
  Tensor expected_;
};

// ConvLayer(in, out, k, downsample, blur_kernel, bias, activate) of rosinality's discriminator
// (an nn.Sequential, so children are "0", "1", "2"):
//   downsample: "0" Blur(pad ((p+1)/2, p/2), p = len - 2 + k - 1), then EqualConv2d stride 2 pad 0;
//   otherwise:  EqualConv2d stride 1 pad k/2;
//   EqualConv2d has its own bias only when bias && !activate; with activate a FusedLeakyReLU(out)
//   follows (its "bias" carries the bias).
// x [N, in, H, W] -> [N, out, H or H/2, ...].
class ConvLayer : public Module {
 public:
  ConvLayer(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool downsample = false,
            const std::vector<float>& blur_kernel = {1, 3, 3, 1}, bool bias = true, bool activate = true,
            gradstyle::Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const;
  EqualConv2d& conv() const { return *conv_; }
  Blur* blur() const { return blur_.get(); }

 private:
  std::shared_ptr<Blur> blur_;
  std::shared_ptr<EqualConv2d> conv_;
  std::shared_ptr<FusedLeakyReLU> act_;
};

// ResBlock(in, out): (conv2(conv1(x)) + skip(x)) / sqrt(2) with conv1 = ConvLayer(in, in, 3),
// conv2 = ConvLayer(in, out, 3, downsample), skip = ConvLayer(in, out, 1, downsample, bias off,
// activate off). x [N, in, H, W] -> [N, out, H/2, W/2].
class ResBlock : public Module {
 public:
  ConvLayer conv1, conv2, skip;
  ResBlock(int64_t in_channels, int64_t out_channels, const std::vector<float>& blur_kernel = {1, 3, 3, 1},
           gradstyle::Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const;
};

}  // namespace gradstyle::nn
