// StyleGAN2 discriminator, rosinality layout (SPEC.md C.2).
#include "gradstyle/models/stylegan2.hpp"
#include "gradstyle/dist/dist.hpp"
#include "gradstyle/ops/minibatch_std.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::models::stylegan2 {

namespace {
DiscriminatorConfig validated(DiscriminatorConfig c) {
  c.validate();
  return c;
}
}  // namespace

Discriminator::Discriminator(const DiscriminatorConfig& cfg, gradstyle::Generator* g)
    : cfg_(validated(cfg)),
      final_conv(cfg_.channels_at(4) + cfg_.stddev_feat, cfg_.channels_at(4), 3, false, cfg_.blur_kernel, true, true,
                 g) {
  from_rgb_ =
      std::make_shared<nn::ConvLayer>(3, cfg_.channels_at(cfg_.size), 1, false, cfg_.blur_kernel, true, true, g);
  convs.append(from_rgb_);
  int64_t in_ch = cfg_.channels_at(cfg_.size);
  for (int64_t i = cfg_.log_size(); i > 2; --i) {
    const int64_t out_ch = cfg_.channels_at(int64_t(1) << (i - 1));
    blocks_.push_back(std::make_shared<nn::ResBlock>(in_ch, out_ch, cfg_.blur_kernel, g));
    convs.append(blocks_.back());
    in_ch = out_ch;
  }
  const int64_t c4 = cfg_.channels_at(4);
  final_linear.emplace_back(c4 * 4 * 4, c4, nn::EqualLinearSpec{.activation = nn::EqualActivation::FusedLeakyReLU}, g);
  final_linear.emplace_back(c4, 1, nn::EqualLinearSpec{}, g);
  register_module("convs", &convs);
  register_module("final_conv", &final_conv);
  register_module("final_linear", &final_linear);
}

Tensor Discriminator::forward(const Tensor& x) const {
  GS_CHECK(x.defined() && x.dim() == 4 && x.size(1) == 3 && x.size(2) == cfg_.size && x.size(3) == cfg_.size,
           ShapeError, "Discriminator: input has shape ", x.defined() ? shape_str(x.shape()) : "undefined",
           " but this discriminator expects [N,3,", cfg_.size, ",", cfg_.size, "]");
  Tensor out = from_rgb_->forward(x);                                      // [B, C_size, size, size]
  for (const auto& b : blocks_) out = b->forward(out);                     // [B, C4, 4, 4]
  if (dist::ProcessGroup* g = dist::batch_group(); g && g->size() > 1) {
    // Data-parallel: the groups are those of the global batch (the ranks' batches in rank order),
    // so N ranks x batch b see what one process sees with batch N * b; this rank keeps its rows.
    const int64_t b = out.size(0);
    out = narrow(minibatch_stddev(dist::all_gather(out, *g), cfg_.stddev_group, cfg_.stddev_feat, 1e-8), 0,
                 int64_t(g->rank()) * b, b);
  } else {
    out = minibatch_stddev(out, cfg_.stddev_group, cfg_.stddev_feat, 1e-8);  // [B, C4 + F, 4, 4]
  }
  out = final_conv.forward(out);                                           // [B, C4, 4, 4]
  out = out.reshape({x.size(0), -1});                                      // [B, C4 * 16]
  out = final_linear[0].forward(out);
  return final_linear[1].forward(out);  // [B, 1]
}

}  // namespace gradstyle::models::stylegan2
