#pragma once
// IR-SE networks in the layout of omertov/encoder4editing models/encoders/helpers.py and
// model_irse.py (SPEC.md C.4, C.7): the trunk shared by the e4e encoder and the ArcFace /
// CurricularFace Backbone. State-dict keys are exactly the originals':
//
//   input_layer.{0: Conv3x3 (no bias), 1: BatchNorm2d, 2: PReLU}
//   body.{u}.shortcut_layer.{0: Conv1x1 stride s (no bias), 1: BatchNorm2d}   only when in != out
//   body.{u}.res_layer.{0: BN, 1: Conv3x3, 2: PReLU, 3: Conv3x3 stride s, 4: BN, 5: SE fc1/fc2}
//   output_layer.{0: BatchNorm2d, 3: Linear, 4: BatchNorm1d}                  Backbone only
//
//   auto net = irse::Backbone::from_checkpoint("model_ir_se50.pth");   // eval mode, frozen
//   Tensor e = net->forward(x);                                        // x [B,3,112,112] -> [B,512]
//
// Depth is configurable: IR-SE50 is blocks (3, 4, 14, 3) with channels (64, 128, 256, 512); tiny
// test networks keep the structure with fewer units and narrower channels. The first unit of each
// stage has stride 2; a unit whose input and output widths agree uses MaxPool2d(1, stride) (a
// [::s, ::s] subsampling) as its shortcut.
//
// All forwards take float32 or float64 on the module's device and are differentiable (to second
// order) in the input and every parameter. BatchNorm follows the module's train/eval mode like
// PyTorch (the loaders return eval-mode networks).
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/models/encoder_layers.hpp"
#include "gradstyle/nn/layers.hpp"
#include "gradstyle/nn/module.hpp"

namespace gradstyle::models::irse {

// ---- configuration --------------------------------------------------------------------------------

struct IRSEConfig {
  std::vector<int64_t> blocks{3, 4, 14, 3};          // units per stage
  std::vector<int64_t> channels{64, 128, 256, 512};  // output width of each stage (input layer: channels[0])
  bool se = true;                                    // bottleneck_IR_SE (true) or bottleneck_IR (false)
  int64_t se_reduction = 16;                         // SE bottleneck width = C / se_reduction
  int64_t in_channels = 3;

  // blocks of get_blocks(num_layers): 50 -> (3,4,14,3), 100 -> (3,13,30,3), 152 -> (3,8,36,3).
  // Throws ValueError for another depth.
  static IRSEConfig for_depth(int64_t num_layers, bool se = true);

  struct Unit {
    int64_t in, out, stride;
  };
  std::vector<Unit> units() const;          // every unit in order
  std::vector<int64_t> stage_ends() const;  // index of the last unit of each stage
  int64_t num_units() const;
  // Spatial size after the body for an input of size `in` (each stage halves, rounding up).
  int64_t output_size(int64_t in) const;
  // ValueError naming the bad field (empty or mismatched lists, a width < se_reduction with SE,
  // consecutive stages of equal width: the loaders tell stages apart by width).
  void validate() const;
  std::string str() const;  // "blocks (3,4,14,3), channels (64,128,256,512), ir_se"
  bool operator==(const IRSEConfig&) const = default;
};

// ---- layers ---------------------------------------------------------------------------------------

using models::BatchNorm;
using models::PReLU;

// SEModule(C, r): x * sigmoid(fc2(relu(fc1(mean_hw(x))))), fc1/fc2 1x1 convs without bias.
class SEModule : public nn::Module {
 public:
  Conv2d fc1, fc2;
  SEModule(int64_t channels, int64_t reduction, ParamInit init = ParamInit::Random);
  Tensor forward(const Tensor& x) const;
};

// input_layer: Conv3x3(in -> C, pad 1, no bias) -> BN(C) -> PReLU(C).
class InputLayer : public nn::Module {
 public:
  Conv2d conv;
  BatchNorm bn;
  PReLU prelu;
  InputLayer(int64_t in_channels, int64_t channels, ParamInit init = ParamInit::Random);
  Tensor forward(const Tensor& x);
};

// shortcut_layer of a unit that changes width: Conv1x1(in -> out, stride, no bias) -> BN(out).
class ConvShortcut : public nn::Module {
 public:
  Conv2d conv;
  BatchNorm bn;
  ConvShortcut(int64_t in, int64_t out, int64_t stride, ParamInit init = ParamInit::Random);
  Tensor forward(const Tensor& x);
};

// res_layer: BN(in) -> Conv3x3(in -> out) -> PReLU(out) -> Conv3x3(out -> out, stride) -> BN(out)
// [-> SE(out)].
class ResLayer : public nn::Module {
 public:
  BatchNorm bn1;
  Conv2d conv1;
  PReLU prelu;
  Conv2d conv2;
  BatchNorm bn2;
  std::unique_ptr<SEModule> se;  // null for plain IR units
  ResLayer(int64_t in, int64_t out, int64_t stride, bool with_se, int64_t reduction, ParamInit init = ParamInit::Random);
  Tensor forward(const Tensor& x);
};

// bottleneck_IR_SE / bottleneck_IR: res_layer(x) + shortcut(x).
// x [B, in, H, W] -> [B, out, ceil(H/stride), ceil(W/stride)].
class BottleneckIR : public nn::Module {
 public:
  BottleneckIR(int64_t in, int64_t out, int64_t stride, bool with_se, int64_t reduction,
               ParamInit init = ParamInit::Random);
  Tensor forward(const Tensor& x);
  ResLayer& res_layer() const { return *res_; }
  ConvShortcut* shortcut_layer() const { return shortcut_.get(); }  // null: MaxPool(1, stride)

 private:
  int64_t stride_;
  std::shared_ptr<ConvShortcut> shortcut_;
  std::shared_ptr<ResLayer> res_;
};

// ---- trunk ----------------------------------------------------------------------------------------

// input_layer + body, registered at the top level of the derived network (so the keys are
// "input_layer.*" and "body.*" exactly as in the originals).
class IRSETrunk : public nn::Module {
 public:
  explicit IRSETrunk(const IRSEConfig& cfg, ParamInit init = ParamInit::Random);

 private:
  IRSEConfig irse_cfg_;  // first: the members below are built from it

 public:
  InputLayer input_layer;
  nn::ModuleList<BottleneckIR> body;

  const IRSEConfig& irse_config() const { return irse_cfg_; }
  // x [B, in_channels, H, W] -> the output of every stage (last unit of each stage), in order.
  // Throws ShapeError when x is not 4-D with in_channels channels.
  std::vector<Tensor> forward_stages(const Tensor& x);
};

// Reads the trunk configuration from the key shapes of a state dict (input_layer.0.weight,
// body.{u}.res_layer.{1,2,3,4}.*, body.{u}.res_layer.5.fc1.weight). Several keys vote for each
// width, so one corrupted key is reported by the strict load instead of changing the
// architecture. Stages are the runs of units of equal width. FormatError when no IR trunk can be
// read (`name` is used in messages).
IRSEConfig infer_irse_config(const nn::StateDict& sd, const std::string& name);

// ---- Backbone (ArcFace / CurricularFace) ----------------------------------------------------------

struct BackboneConfig {
  IRSEConfig trunk;           // IR-SE50 for ArcFace
  int64_t input_size = 112;   // 112 (or 224 in model_irse.py); the Linear reads the final map
  int64_t embedding = 512;
  double drop_ratio = 0.6;    // Dropout before the Linear (training mode only)
  bool affine = true;         // the final BatchNorm1d's weight/bias (CurricularFace: false)
  std::string str() const;
};

// model_irse.Backbone: trunk -> output_layer (BN2d -> Dropout -> Flatten (channel-major) ->
// Linear(C*s*s -> embedding) -> BN1d) -> L2 normalisation (no epsilon, like l2_norm).
class Backbone : public IRSETrunk {
 public:
  // init: see encoder_layers.hpp (the loaders build with ParamInit::Deferred).
  explicit Backbone(const BackboneConfig& cfg, ParamInit init = ParamInit::Random);

  struct OutputLayer : nn::Module {
    BatchNorm bn2d;
    Linear linear;
    BatchNorm bn1d;
    OutputLayer(int64_t channels, int64_t spatial, int64_t embedding, bool affine, ParamInit init);
  };
  OutputLayer output_layer;

  const BackboneConfig& config() const { return cfg_; }
  // x [B, in_channels, input_size, input_size] -> unit-norm embeddings [B, embedding].
  // Throws ShapeError for another input size (the message names the expected one).
  Tensor forward(const Tensor& x);
  // The embedding before normalisation (output of the final BN1d).
  Tensor forward_unnormalized(const Tensor& x);

  // Builds the network described by a plain state dict file (model_ir_se50.pth,
  // CurricularFace_Backbone.pth; .pt/.pth, safetensors or .npz) and loads it strictly. Depth,
  // widths, SE, embedding size, the final map size and BN1d affinity are read from the keys; the
  // input size is the largest one giving that final map (112 for 7x7). The network comes back in
  // eval mode with its parameters frozen. Throws IOError/FormatError (unreadable file, no IR
  // trunk) and ShapeError naming every missing, unexpected or misshapen key.
  struct LoadOptions {
    Device device = Device::cpu();
  };
  static std::unique_ptr<Backbone> from_checkpoint(const std::string& path, const LoadOptions& opts);
  static std::unique_ptr<Backbone> from_checkpoint(const std::string& path) { return from_checkpoint(path, LoadOptions{}); }
  static std::unique_ptr<Backbone> from_state_dict(const nn::StateDict& sd, const std::string& name,
                                                   const LoadOptions& opts);
  static BackboneConfig infer_config(const nn::StateDict& sd, const std::string& name);

 private:
  BackboneConfig cfg_;
  Generator dropout_gen_{0};
};

}  // namespace gradstyle::models::irse
