#pragma once
// The ArcFace identity loss of e4e / HFGI (omertov/encoder4editing criteria/id_loss.py; SPEC.md
// C.7): an IR-SE50 Backbone embeds a face crop of the 256-px image, and
//
//   L_id = mean_b (1 - <phi(y_hat_b), phi(y_b)>),   phi(y) detached (the target carries no gradient)
//
// with phi(x) = Backbone(adaptive_avg_pool2d(x[:, :, 35:223, 32:220], 112)), a unit vector.
//
//   auto id = arcface::ArcFaceID::from_checkpoint("model_ir_se50.pth");   // eval mode, frozen
//   Tensor loss = id->loss(x_rec_256, x_256);                              // 0-d, differentiable in x_rec
//
// Inputs are [B, 3, 256, 256] images in [-1, 1] (pool a 1024 output to 256 first, as pSp's
// face_pool does). The crop box and pooled size are configurable for small test geometries.
#include <memory>
#include <string>

#include "gradstyle/models/irse.hpp"

namespace gradstyle::models::arcface {

struct IDCropConfig {
  int64_t image_size = 256;                         // expected input height and width
  int64_t top = 35, bottom = 223, left = 32, right = 220;  // crop rows [top, bottom), cols [left, right)
  int64_t pool_size = 112;                          // AdaptiveAvgPool2d target (the Backbone's input)
  void validate() const;                            // ValueError: an empty or out-of-image box
};

// ArcFaceID holds the Backbone as its child "facenet" (like e4e's IDLoss module), so its own
// state_dict keys are facenet.input_layer.*, facenet.body.*, facenet.output_layer.*.
class ArcFaceID : public nn::Module {
 public:
  ArcFaceID(std::shared_ptr<irse::Backbone> facenet, const IDCropConfig& crop = {});

  irse::Backbone& facenet() const { return *net_; }
  const IDCropConfig& crop() const { return crop_; }

  // images [B, 3, image_size, image_size] -> unit embeddings [B, E] (crop, pool, Backbone).
  // Throws ShapeError for another image size (the message says what to do) and ValueError when
  // the pooled size does not fit the Backbone.
  Tensor embed(const Tensor& images);
  // Cosine similarity <phi(a), phi(b)> per sample: [B]. Differentiable in both.
  Tensor similarity(const Tensor& a, const Tensor& b);
  // mean_b (1 - <phi(y_hat), phi(y).detach()>): a 0-d tensor, differentiable in y_hat only.
  Tensor loss(const Tensor& y_hat, const Tensor& y);

  // Loads model_ir_se50.pth (a plain Backbone state dict, configuration from its keys) and
  // freezes it. Throws what irse::Backbone::from_checkpoint throws, and ValueError when the crop's
  // pool_size does not give the final map the Backbone's Linear expects.
  struct LoadOptions {
    Device device = Device::cpu();
    IDCropConfig crop;
  };
  static std::unique_ptr<ArcFaceID> from_checkpoint(const std::string& path, const LoadOptions& opts);
  static std::unique_ptr<ArcFaceID> from_checkpoint(const std::string& path) { return from_checkpoint(path, LoadOptions{}); }

 private:
  std::shared_ptr<irse::Backbone> net_;
  IDCropConfig crop_;
};

}  // namespace gradstyle::models::arcface
