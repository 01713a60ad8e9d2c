#pragma once
// GradStyle's Gradual Refinement Module (SPEC.md B.3) and the Gate&Fusion W_g it shares with the
// GAM of the same stage (B.4). Keys are those of docs' agreed layout (plain torch.nn layers, no
// equalised learning rate), so the PyTorch reference's state_dict loads key for key:
//
//   ResLayer      conv1.{weight,bias} conv2.{weight,bias} [shortcut.weight]
//   GRM           w_t.* w_f.* stem_conv.* stem_prelu.weight stem_bn.{weight,bias,running_mean,running_var,
//                 num_batches_tracked} enc.* down.<i>.{0,1}.* up.<j>.* dec.* out.*
//   GateFusion    r1.* (with shortcut.weight) r2.* out.{weight,bias}
//
// Shapes: T [B, Ct, R, R], f [B, C, R, R] -> F [B, C, R, R]; g [B, Cg, R, R]. Float32 or float64 (the
// parameters' dtype), CPU or CUDA, differentiable in inputs and parameters.
// Initialisation: PyTorch's defaults from nn::init_generator() (kaiming-uniform a = sqrt(5), i.e.
// U(+-1/sqrt(fan_in)) for weights and biases), PReLU 0.25, BatchNorm weight 1 / bias 0; the gate's
// last conv has weight 0 and bias gate_bias_init (-4: g = sigmoid(-4) = 0.018 everywhere at step 0).
#include <memory>

#include "gradstyle/models/encoder_layers.hpp"
#include "gradstyle/models/gradstyle_config.hpp"
#include "gradstyle/nn/layers.hpp"

namespace gradstyle::models::gsnet {

// StyleRes ResLayers(in, out, stride): y = conv2(lrelu(conv1(x), 0.2)) + shortcut(x), conv1 3x3
// stride 1, conv2 3x3 with the stride, shortcut identity (in == out, stride 1) or 1x1 with the
// stride and no bias. x [B, in, H, W] -> [B, out, H/stride, W/stride] (ceil for odd sizes).
class ResLayer : public nn::Module {
 public:
  ResLayer(int64_t in, int64_t out, int64_t stride);
  nn::Conv2d conv1, conv2;
  std::shared_ptr<nn::Conv2d> shortcut;  // null for the identity
  // detach_params: use detached views of the weights (the layer then receives no parameter
  // gradient, while gradients still flow through it to x).
  Tensor forward(const Tensor& x, bool detach_params = false) const;
  int64_t stride() const { return stride_; }

 private:
  int64_t stride_;
};

// GRM_m: F = out(dec(U(enc(bn(prelu(stem_conv(x0))))))) with x0 = cat(w_t(T), w_f(f)) (or the
// difference), U the eres_levels-deep down/up path of the layout (bilinear upsampling with
// eres_interp_align_corners). BatchNorm uses batch statistics in training mode (and updates its
// running statistics), running statistics in evaluation mode.
class GRM : public nn::Module {
 public:
  // C: module width; cfg supplies t_channels, grm_proj_kernel, eres_levels, eres_input and
  // eres_interp_align_corners.
  GRM(int64_t C, const GradStyleConfig& cfg);
  nn::Conv2d w_t, w_f, stem_conv;
  models::PReLU stem_prelu;
  models::BatchNorm stem_bn;
  ResLayer enc;
  nn::ModuleList<nn::ModuleList<ResLayer>> down;  // down.<i>.0 (stride 2), down.<i>.1
  nn::ModuleList<ResLayer> up;                    // up.<j>, j = 0..eres_levels-2
  ResLayer dec;
  nn::Conv2d out;

  // T [B, t_channels, R, R], f [B, C, R, R] -> F [B, C, R, R]. ShapeError names the stage inputs.
  Tensor forward(const Tensor& T, const Tensor& f);
  int64_t width() const { return C_; }

 private:
  int64_t C_, Ct_, levels_;
  EresInput input_mode_;
  bool align_corners_;
};

// Gate&Fusion W_g: g = sigmoid(out(r2(r1(cat(f, F))))), f~ = f + g * F (g broadcast over channels
// when Cg = 1).
class GateFusion : public nn::Module {
 public:
  GateFusion(int64_t C, int64_t Cg, double bias_init);
  ResLayer r1, r2;
  nn::Conv2d out;

  // f, F [B, C, R, R] -> g [B, Cg, R, R]. detach_params: run with detached parameter views (the
  // editing stream's routing, SPEC B.7): gradients reach f and F, never the gate's parameters.
  Tensor gate(const Tensor& f, const Tensor& F, bool detach_params = false) const;
  // f + g * F.
  static Tensor fuse(const Tensor& f, const Tensor& F, const Tensor& g);
  int64_t width() const { return C_; }
  int64_t gate_channels() const { return Cg_; }

 private:
  int64_t C_, Cg_;
};

}  // namespace gradstyle::models::gsnet
