#pragma once
// LPIPS with the VGG16 trunk (richzhang/PerceptualSimilarity lpips/lpips.py, version 0.1; SPEC.md
// C.6): the learned perceptual distance used as GradStyle's L_lpips.
//
//   auto lp = lpips::LPIPS::from_files("vgg16-397923af.pth", "weights/v0.1/vgg.pth");  // frozen
//   Tensor d = lp->forward(x_hat, x);   // [B, 3, H, W] each, in [-1, 1] -> [B]
//
// distance = sum over the 5 taps l of mean_hw( lin_l( (n(f_l(a)) - n(f_l(b)))^2 ) ), where
// f_l are the VGG16 activations after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of the scaled
// input (x - shift) / scale, n(f) = f / (||f||_2 over channels + 1e-10) and lin_l a 1x1 conv
// C_l -> 1 without bias.
//
// Keys: the trunk uses torchvision's vgg16 names, features.{0,2,5,7,10,12,14,17,19,21,24,26,28}
// .{weight,bias} (the ReLU and MaxPool modules take the other indices); the heads are
// lin{l}.model.1.weight [1, C_l, 1, 1] (model.0 is a Dropout), as in vgg.pth. Channel widths and
// convs per block are configurable, so tiny VGG-shaped nets exist for tests.
//
// Differentiable (to second order) in both inputs and every parameter; float32/float64, CPU/CUDA.
// Like PyTorch, a feature vector that is exactly zero over all channels gives a non-finite
// gradient (the derivative of the norm at 0).
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/models/encoder_layers.hpp"
#include "gradstyle/nn/layers.hpp"

namespace gradstyle::models::lpips {

struct LPIPSConfig {
  std::vector<int64_t> channels{64, 128, 256, 512, 512};  // width of each block (one tap per block)
  std::vector<int64_t> convs{2, 2, 3, 3, 3};              // 3x3 convs per block (VGG16: config 'D')
  // torchvision index of conv j (0-based over all convs), and of the ReLU closing each block.
  std::vector<int64_t> conv_indices() const;
  std::vector<int64_t> tap_indices() const;
  void validate() const;  // ValueError: empty or mismatched lists, a width or count < 1
  std::string str() const;
};

// torchvision's vgg16().features (up to the last tap): Conv3x3(pad 1) + ReLU per conv, MaxPool(2, 2)
// between blocks. Children are the convs under their torchvision indices.
class VGGFeatures : public nn::Module {
 public:
  explicit VGGFeatures(const LPIPSConfig& cfg, ParamInit init = ParamInit::Random);
  std::vector<std::shared_ptr<Conv2d>> convs;
  // x [B, 3, H, W] -> the activation after the last ReLU of every block.
  std::vector<Tensor> forward_taps(const Tensor& x) const;

 private:
  LPIPSConfig cfg_;
};

// NetLinLayer: model = Sequential(Dropout, Conv1x1(C -> 1, no bias)); only "model.1.weight" is stored.
class NetLinLayer : public nn::Module {
 public:
  explicit NetLinLayer(int64_t channels, ParamInit init = ParamInit::Random);
  struct Model : nn::Module {
    Conv2d conv;
    Model(int64_t channels, ParamInit init);
  };
  Model model;
  Tensor forward(const Tensor& x) const { return model.conv.forward(x); }
};

class LPIPS : public nn::Module {
 public:
  // init: see encoder_layers.hpp (the loaders build with ParamInit::Deferred).
  explicit LPIPS(const LPIPSConfig& cfg = {}, ParamInit init = ParamInit::Random);

 private:
  LPIPSConfig cfg_;  // first: the members below are built from it

 public:
  VGGFeatures features;
  std::vector<std::shared_ptr<NetLinLayer>> lins;  // registered as lin0, lin1, ...
  Tensor shift, scale;                             // [1, 3, 1, 1] ScalingLayer constants (not in the files)

  const LPIPSConfig& config() const { return cfg_; }
  // a, b [B, 3, H, W] in [-1, 1] (same shape, dtype, device) -> per-sample distance [B].
  // H and W must survive the 2x2 poolings (>= 2^(blocks-1)). Throws ShapeError otherwise.
  Tensor forward(const Tensor& a, const Tensor& b);
  // The per-layer terms [B, n_taps] (their row sums are forward()).
  Tensor forward_layers(const Tensor& a, const Tensor& b);

  // Builds LPIPS-VGG from torchvision's VGG16 weights (features.*; classifier.* is ignored; the
  // lpips package's own net.slice{k}.{i}.* names are accepted too) and the heads file
  // (weights/v0.1/vgg.pth, a legacy-format file with cuda:0-tagged storages). lin_path may be empty
  // when vgg_path holds the lin{l}.* keys as well. Widths and block structure are read from the
  // keys; strict loading. Comes back in eval mode with its parameters frozen.
  // Throws IOError/FormatError (unreadable, no VGG features, heads that do not match the trunk)
  // and ShapeError naming every missing, unexpected or misshapen key.
  struct LoadOptions {
    Device device = Device::cpu();
  };
  static std::unique_ptr<LPIPS> from_files(const std::string& vgg_path, const std::string& lin_path,
                                           const LoadOptions& opts);
  static std::unique_ptr<LPIPS> from_files(const std::string& vgg_path, const std::string& lin_path) {
    return from_files(vgg_path, lin_path, LoadOptions{});
  }
  // From features.* + lin{l}.model.1.weight keys (other keys are reported as unexpected).
  static std::unique_ptr<LPIPS> from_state_dict(const nn::StateDict& sd, const std::string& name, const LoadOptions& opts);
  static LPIPSConfig infer_config(const nn::StateDict& sd, const std::string& name);
};

}  // namespace gradstyle::models::lpips
