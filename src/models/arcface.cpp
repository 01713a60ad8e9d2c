#include "gradstyle/models/arcface.hpp"

#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/pool.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::models::arcface {

void IDCropConfig::validate() const {
  GS_CHECK(0 <= top && top < bottom && bottom <= image_size && 0 <= left && left < right && right <= image_size,
           ValueError, "ArcFaceID: crop rows [", top, ", ", bottom, ") x cols [", left, ", ", right,
           ") does not fit a ", image_size, "-px image");
  GS_CHECK(pool_size >= 1, ValueError, "ArcFaceID: pool_size must be >= 1, got ", pool_size);
}

ArcFaceID::ArcFaceID(std::shared_ptr<irse::Backbone> facenet, const IDCropConfig& crop)
    : net_(std::move(facenet)), crop_(crop) {
  GS_CHECK(net_ != nullptr, ValueError, "ArcFaceID: null Backbone");
  crop_.validate();
  const auto& bc = net_->config();
  GS_CHECK(bc.trunk.output_size(crop_.pool_size) == bc.trunk.output_size(bc.input_size), ValueError,
           "ArcFaceID: pooling to ", crop_.pool_size, " px does not fit the Backbone, which takes ", bc.input_size, " px");
  register_module("facenet", net_);
}

Tensor ArcFaceID::embed(const Tensor& images) {
  GS_CHECK(images.dim() == 4 && images.size(2) == crop_.image_size && images.size(3) == crop_.image_size, ShapeError,
           "ArcFaceID: expected images [B, 3, ", crop_.image_size, ", ", crop_.image_size, "], got ",
           shape_str(images.shape()), " (average-pool larger outputs to ", crop_.image_size, " first)");
  Tensor x = slice(slice(images, 2, crop_.top, crop_.bottom), 3, crop_.left, crop_.right);
  x = adaptive_avg_pool2d(x, {crop_.pool_size, crop_.pool_size});
  return net_->forward(x);
}

Tensor ArcFaceID::similarity(const Tensor& a, const Tensor& b) { return sum(embed(a) * embed(b), {1}); }

Tensor ArcFaceID::loss(const Tensor& y_hat, const Tensor& y) {
  GS_CHECK(y_hat.shape() == y.shape(), ShapeError, "ArcFaceID::loss: y_hat ", shape_str(y_hat.shape()), " and y ",
           shape_str(y.shape()), " differ");
  const Tensor target = embed(y).detach();
  const Tensor dots = sum(embed(y_hat) * target, {1});  // [B]
  return mean(1.0 - dots);
}

std::unique_ptr<ArcFaceID> ArcFaceID::from_checkpoint(const std::string& path, const LoadOptions& opts) {
  irse::Backbone::LoadOptions bo;
  bo.device = opts.device;
  std::shared_ptr<irse::Backbone> net = irse::Backbone::from_checkpoint(path, bo);
  auto id = std::make_unique<ArcFaceID>(net, opts.crop);
  id->eval();
  return id;
}

}  // namespace gradstyle::models::arcface
