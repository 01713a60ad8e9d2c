#include "gradstyle/models/grm.hpp"

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/interpolate.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::models::gsnet {

namespace {

nn::Conv2dSpec conv_spec(int64_t stride, int64_t padding, bool bias) {
  nn::Conv2dSpec s;
  s.stride = stride;
  s.padding = padding;
  s.bias = bias;
  return s;
}

// A conv layer's forward with its parameters detached (or not).
Tensor conv_with(const nn::Conv2d& c, const Tensor& x, int64_t stride, int64_t padding, bool detach_params) {
  if (!detach_params) return c.forward(x);
  Conv2dOptions o;
  o.stride = {stride, stride};
  o.padding = {padding, padding};
  return conv2d(x, c.weight.detach(), c.bias.defined() ? c.bias.detach() : Tensor(), o);
}

// Validates the configuration before any layer is built from it.
const GradStyleConfig& checked(const GradStyleConfig& c) {
  c.validate();
  return c;
}

void check_map(const Tensor& x, int64_t channels, const char* what, const char* where) {
  GS_CHECK(x.defined() && x.dim() == 4 && x.size(1) == channels && x.size(2) >= 1 && x.size(2) == x.size(3),
           ShapeError, where, ": ", what, " has shape ", x.defined() ? shape_str(x.shape()) : "undefined",
           ", expected [B, ", channels, ", R, R]");
}

}  // namespace

// ---- ResLayer -------------------------------------------------------------------------------------

ResLayer::ResLayer(int64_t in, int64_t out, int64_t stride)
    : conv1(in, out, 3, conv_spec(1, 1, true)), conv2(out, out, 3, conv_spec(stride, 1, true)), stride_(stride) {
  GS_CHECK(stride == 1 || stride == 2, ValueError, "ResLayer: stride must be 1 or 2, got ", stride);
  register_module("conv1", &conv1);
  register_module("conv2", &conv2);
  if (in != out || stride != 1) {
    shortcut = std::make_shared<nn::Conv2d>(in, out, 1, conv_spec(stride, 0, false));
    register_module("shortcut", shortcut);
  }
}

Tensor ResLayer::forward(const Tensor& x, bool detach_params) const {
  Tensor h = leaky_relu(conv_with(conv1, x, 1, 1, detach_params), 0.2);
  h = conv_with(conv2, h, stride_, 1, detach_params);
  return h + (shortcut ? conv_with(*shortcut, x, stride_, 0, detach_params) : x);
}

// ---- GRM ------------------------------------------------------------------------------------------

GRM::GRM(int64_t C, const GradStyleConfig& cfg)
    : w_t(checked(cfg).t_channels, C, cfg.grm_proj_kernel, conv_spec(1, cfg.grm_proj_kernel / 2, true)),
      w_f(C, C, cfg.grm_proj_kernel, conv_spec(1, cfg.grm_proj_kernel / 2, true)),
      stem_conv(cfg.eres_input == EresInput::Concat ? 2 * C : C, C, 3, conv_spec(1, 1, true)),
      stem_prelu(C),
      stem_bn(C),
      enc(C, C, 1),
      dec(C, C, 1),
      out(C, C, 1, conv_spec(1, 0, true)),
      C_(C),
      Ct_(cfg.t_channels),
      levels_(cfg.eres_levels),
      input_mode_(cfg.eres_input),
      align_corners_(cfg.eres_interp_align_corners) {
  register_module("w_t", &w_t);
  register_module("w_f", &w_f);
  register_module("stem_conv", &stem_conv);
  register_module("stem_prelu", &stem_prelu);
  register_module("stem_bn", &stem_bn);
  register_module("enc", &enc);
  for (int64_t i = 0; i < levels_; ++i) {
    auto& level = down.emplace_back();
    level.emplace_back(C, C, 2);
    level.emplace_back(C, C, 1);
  }
  for (int64_t j = 0; j + 1 < levels_; ++j) up.emplace_back(C, C, 1);
  register_module("down", &down);
  register_module("up", &up);
  register_module("dec", &dec);
  register_module("out", &out);
}

Tensor GRM::forward(const Tensor& T, const Tensor& f) {
  check_map(f, C_, "the generator feature f", "GRM");
  check_map(T, Ct_, "the encoder feature T", "GRM");
  GS_CHECK(T.size(0) == f.size(0) && T.size(2) == f.size(2), ShapeError, "GRM: T ", shape_str(T.shape()),
           " and f ", shape_str(f.shape()), " differ in batch or resolution (resize T with select_t)");
  Tensor pt = w_t.forward(T), pf = w_f.forward(f);  // [B, C, R, R] each
  Tensor x0 = input_mode_ == EresInput::Concat ? cat({pt, pf}, 1) : pt - pf;
  Tensor h = stem_bn.forward(stem_prelu.forward(stem_conv.forward(x0)));  // [B, C, R, R]
  std::vector<Tensor> e{enc.forward(h)};                                    // e_0 at R
  for (int64_t i = 0; i < levels_; ++i) e.push_back(down[size_t(i)][1].forward(down[size_t(i)][0].forward(e.back())));
  h = e.back();  // e_L at R / 2^L
  for (int64_t l = levels_; l >= 1; --l) {
    const Tensor& skip = e[size_t(l - 1)];
    h = interpolate(h, {skip.size(2), skip.size(3)}, InterpolateMode::Bilinear, align_corners_) + skip;
    if (l >= 2) h = up[size_t(l - 2)].forward(h);
  }
  return out.forward(dec.forward(h));  // F [B, C, R, R]
}

// ---- GateFusion -----------------------------------------------------------------------------------

GateFusion::GateFusion(int64_t C, int64_t Cg, double bias_init)
    : r1(2 * C, C, 1), r2(C, C, 1), out(C, Cg, 1, conv_spec(1, 0, true)), C_(C), Cg_(Cg) {
  register_module("r1", &r1);
  register_module("r2", &r2);
  register_module("out", &out);
  autograd::NoGradGuard ng;
  out.weight.zero_();
  out.bias.fill_(bias_init);
}

Tensor GateFusion::gate(const Tensor& f, const Tensor& F, bool detach_params) const {
  check_map(f, C_, "the generator feature f", "GateFusion");
  check_map(F, C_, "the refinement F", "GateFusion");
  GS_CHECK(f.shape() == F.shape(), ShapeError, "GateFusion: f ", shape_str(f.shape()), " and F ",
           shape_str(F.shape()), " differ");
  Tensor h = r2.forward(r1.forward(cat({f, F}, 1), detach_params), detach_params);
  return sigmoid(conv_with(out, h, 1, 0, detach_params));  // [B, Cg, R, R]
}

Tensor GateFusion::fuse(const Tensor& f, const Tensor& F, const Tensor& g) {
  return f + g * F;
}

}  // namespace gradstyle::models::gsnet
