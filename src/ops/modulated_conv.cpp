// modulated_conv2d: style-scaled input, one shared-weight conv (conv2d / conv_transpose2d +
// upfirdn2d blur), demodulation coefficients from a [B, I] x [I, O] product, and the fused
// epilogue kernel (demodulation, noise, bias, activation, clamp).
#include "gradstyle/ops/modulated_conv.hpp"

#include <cmath>

#include "backend/modulated_conv_kernels.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/linalg.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/ops/upfirdn2d.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::is_grad_enabled;
using autograd::record;
using backend::make_view;
using backend::StridedView;
using namespace ops_detail;
using V = std::vector<Tensor>;

namespace {

bool needs(const Tensor& t) { return t.defined() && t.requires_grad(); }

struct Act {
  bool lrelu;
  double alpha, gain, clamp;
};
Act resolve_act(const BiasActOptions& o, const char* op) {
  Act a{o.act == Activation::LeakyReLU, o.alpha.value_or(0.2), o.gain.value_or(o.act == Activation::LeakyReLU ? std::sqrt(2.0) : 1.0),
        o.clamp};
  GS_CHECK(a.alpha >= 0 && std::isfinite(a.alpha), ValueError, op, ": alpha must be a finite value >= 0, got ", a.alpha);
  GS_CHECK(std::isfinite(a.gain) && a.gain > 0, ValueError, op, ": gain must be finite and > 0, got ", a.gain);
  GS_CHECK(!std::isnan(a.clamp), ValueError, op, ": clamp is NaN");
  return a;
}

StridedView view_or_empty(const Tensor& t) { return t.defined() ? make_view(t) : StridedView{}; }

// Python's floor division (the blur pads of rosinality's formulas use it).
int64_t floordiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// The normalised [1,3,3,1] FIR as a separable 1-D filter (outer product / 64 in 2-D).
Tensor blur_filter(const Tensor& like) {
  return Tensor::from_vector<double>({1.0 / 8, 3.0 / 8, 3.0 / 8, 1.0 / 8}, {4}).to(like.dtype()).to(like.device());
}

struct Geometry {
  int64_t B, I, H, W, O, k, pad;
  Tensor w;  // [O, I, k, k]
};

Geometry check_args(const Tensor& x, const Tensor& weight, const Tensor& styles, const ModulatedConv2dOptions& o,
                    const char* op) {
  check_defined(x, op, "x");
  check_defined(weight, op, "weight");
  check_defined(styles, op, "styles");
  check_float(x, op);
  check_same(x, weight, op);
  check_same(x, styles, op);
  GS_CHECK(x.dim() == 4, ShapeError, op, ": x must be [B, I, H, W], got ", shape_str(x.shape()));
  Tensor w = weight;
  if (w.dim() == 5 && w.size(0) == 1) w = squeeze(w, 0);
  GS_CHECK(w.dim() == 4 && w.size(2) == w.size(3), ShapeError, op,
           ": weight must be [O, I, k, k] or [1, O, I, k, k], got ", shape_str(weight.shape()));
  GS_CHECK(w.size(1) == x.size(1), ShapeError, op, ": weight has ", w.size(1), " input channels but x has ",
           x.size(1), " (x ", shape_str(x.shape()), ", weight ", shape_str(weight.shape()), ")");
  GS_CHECK(styles.dim() == 2 && styles.size(0) == x.size(0) && styles.size(1) == x.size(1), ShapeError, op,
           ": styles must be [B, I] = [", x.size(0), ", ", x.size(1), "], got ", shape_str(styles.shape()));
  GS_CHECK((o.up == 1 || o.up == 2) && (o.down == 1 || o.down == 2) && !(o.up == 2 && o.down == 2), ValueError, op,
           ": up and down must be 1 or 2 and not both 2, got up ", o.up, ", down ", o.down);
  GS_CHECK(!o.noise.defined() || o.noise_weight.defined(), ValueError, op, ": noise given without noise_weight");
  Geometry g{x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), 0, w};
  g.pad = o.padding >= 0 ? o.padding : (o.up == 1 && o.down == 1 ? g.k / 2 : 0);
  return g;
}

// The conv part (everything before the epilogue) for a per-input-channel-scaled x.
Tensor shared_conv(const Tensor& xs, const Tensor& w_eff, const Geometry& g, const ModulatedConv2dOptions& o) {
  if (o.up == 2) {
    ConvTranspose2dOptions co;
    co.stride = {2, 2};
    co.padding = {g.pad, g.pad};
    Tensor y = conv_transpose2d(xs, transpose(w_eff, 0, 1), Tensor(), co);  // weight [I, O, k, k]
    const int64_t p = (4 - 2) - (g.k - 1);
    const int64_t p0 = floordiv(p + 1, 2) + 1, p1 = floordiv(p, 2) + 1;
    return upfirdn2d(y, blur_filter(y), 1, 1, {p0, p1, p0, p1}, false, 4.0);
  }
  Conv2dOptions co;
  co.padding = {g.pad, g.pad};
  if (o.down == 2) {
    const int64_t p = (4 - 2) + (g.k - 1);
    Tensor xb = upfirdn2d(xs, blur_filter(xs), 1, 1, {floordiv(p + 1, 2), floordiv(p, 2), floordiv(p + 1, 2), floordiv(p, 2)});
    co.stride = {2, 2};
    return conv2d(xb, w_eff, Tensor(), co);
  }
  return conv2d(xs, w_eff, Tensor(), co);
}

BiasActOptions act_options(const ModulatedConv2dOptions& o) {
  BiasActOptions a;
  a.act = o.act;
  a.alpha = o.alpha;
  a.gain = o.gain;
  a.clamp = o.clamp;
  return a;
}

}  // namespace

Tensor modulated_conv2d_demod(const Tensor& weight_eff, const Tensor& styles, double eps) {
  // Wsq[o, i] = sum_k w^2 ; d = rsqrt(s^2 @ Wsq^T + eps)
  Tensor wsq = sum(square(weight_eff), {2, 3});                    // [O, I]
  return rsqrt(add_scalar(matmul(square(styles), transpose(wsq, 0, 1)), eps));  // [B, O]
}

Tensor modulated_conv2d_epilogue(const Tensor& y_in, const Tensor& d_in, const Tensor& noise_in, const Tensor& nw_in,
                                 const Tensor& bias_in, const BiasActOptions& ao) {
  const char* op = "modulated_conv2d_epilogue";
  check_float(y_in, op);
  GS_CHECK(y_in.dim() == 4, ShapeError, op, ": y must be [B, O, H, W], got ", shape_str(y_in.shape()));
  const int64_t B = y_in.size(0), O = y_in.size(1), H = y_in.size(2), W = y_in.size(3);
  const Act a = resolve_act(ao, op);
  for (const Tensor* t : {&d_in, &noise_in, &nw_in, &bias_in})
    if (t->defined()) check_same(y_in, *t, op);
  if (d_in.defined())
    GS_CHECK(d_in.dim() == 2 && d_in.size(0) == B && d_in.size(1) == O, ShapeError, op, ": d must be [", B, ", ", O,
             "], got ", shape_str(d_in.shape()));
  if (noise_in.defined()) {
    GS_CHECK(noise_in.dim() == 4 && (noise_in.size(0) == B || noise_in.size(0) == 1) && noise_in.size(1) == 1 &&
                 noise_in.size(2) == H && noise_in.size(3) == W,
             ShapeError, op, ": noise must be [", B, " or 1, 1, ", H, ", ", W, "], got ", shape_str(noise_in.shape()));
    GS_CHECK(nw_in.defined() && nw_in.numel() == 1, ValueError, op, ": noise needs a one-element noise_weight, got ",
             nw_in.defined() ? shape_str(nw_in.shape()) : std::string("none"));
  }
  if (bias_in.defined())
    GS_CHECK(bias_in.dim() == 1 && bias_in.size(0) == O, ShapeError, op, ": bias must be [", O, "], got ",
             shape_str(bias_in.shape()));
  const bool has_noise = noise_in.defined();
  Tensor y = y_in.detach().contiguous();
  Tensor d = d_in.defined() ? d_in.detach().contiguous() : Tensor();
  Tensor nz = has_noise ? noise_in.detach().contiguous() : Tensor();
  Tensor nw = has_noise ? nw_in.detach().contiguous() : Tensor();
  Tensor bias = bias_in.defined() ? bias_in.detach().contiguous() : Tensor();
  backend::ModconvEpilogue e;
  e.batch = B, e.channels = O, e.hw = H * W;
  e.noise_batch_stride = has_noise && nz.size(0) == B && B > 1 ? H * W : 0;
  e.lrelu = a.lrelu, e.alpha = a.alpha, e.gain = a.gain, e.clamp = a.clamp;
  Tensor out = Tensor::empty(y.shape(), {y.dtype(), y.device()});
  if (out.numel() > 0)
    GS_DISPATCH(y.device(), modconv_epilogue_forward, e, make_view(out), make_view(y), view_or_empty(d),
                view_or_empty(nz), view_or_empty(nw), view_or_empty(bias));
  const Tensor noise = has_noise ? noise_in : Tensor(), noise_weight = has_noise ? nw_in : Tensor();
  if (any_requires_grad({&y_in, &d_in, &noise, &noise_weight, &bias_in})) {
    Tensor outd = out.detach();
    record(op, out, {y_in, d_in, noise, noise_weight, bias_in},
           [y_in, d_in, noise, noise_weight, bias_in, outd, ao, e](const Tensor& g) -> V {
             const bool gd = needs(d_in), gn = needs(noise), gw = needs(noise_weight), gb = needs(bias_in);
             const bool want_dpre = gd || gn || gw || gb;
             const int64_t B = outd.size(0), O = outd.size(1);
             Tensor dy, dpre;
             if (is_grad_enabled()) {  // create_graph: differentiable ops only
               dpre = bias_act_grad(g, outd, ao);
               dy = d_in.defined() ? mul(dpre, reshape(d_in, {B, O, 1, 1})) : dpre;
             } else {
               Tensor gc = g.detach().contiguous();
               Tensor dd = d_in.defined() ? d_in.detach().contiguous() : Tensor();
               dy = Tensor::empty(outd.shape(), {outd.dtype(), outd.device()});
               dpre = want_dpre ? Tensor::empty(outd.shape(), {outd.dtype(), outd.device()}) : Tensor();
               if (dy.numel() > 0)
                 GS_DISPATCH(outd.device(), modconv_epilogue_backward, e, make_view(dy), view_or_empty(dpre),
                             make_view(gc), make_view(outd), view_or_empty(dd));
             }
             Tensor gy = needs(y_in) ? dy : Tensor();
             Tensor gdd = gd ? sum(mul(dpre, y_in), {2, 3}) : Tensor();
             Tensor gnz = gn ? sum_to(mul(dpre, reshape(noise_weight, {})), noise.shape()) : Tensor();
             Tensor gnw = gw ? reshape(sum(mul(dpre, noise)), noise_weight.shape()) : Tensor();
             Tensor gbb = gb ? sum(dpre, {0, 2, 3}) : Tensor();
             return V{gy, gdd, gnz, gnw, gbb};
           });
  }
  return out;
}

Tensor modulated_conv2d(const Tensor& x, const Tensor& weight, const Tensor& styles, const ModulatedConv2dOptions& o) {
  const char* op = "modulated_conv2d";
  Geometry g = check_args(x, weight, styles, o, op);
  const double gain = o.weight_gain.value_or(1.0 / std::sqrt(double(g.I * g.k * g.k)));
  Tensor w_eff = mul_scalar(g.w, gain);
  Tensor xs = mul(x, reshape(styles, {g.B, g.I, 1, 1}));  // the style scales the input, not the weight
  Tensor y = shared_conv(xs, w_eff, g, o);
  Tensor d = o.demodulate ? modulated_conv2d_demod(w_eff, styles, o.eps) : Tensor();
  return modulated_conv2d_epilogue(y, d, o.noise, o.noise_weight, o.bias, act_options(o));
}

Tensor modulated_conv2d_grouped(const Tensor& x, const Tensor& weight, const Tensor& styles,
                                const ModulatedConv2dOptions& o) {
  const char* op = "modulated_conv2d_grouped";
  Geometry g = check_args(x, weight, styles, o, op);
  const double gain = o.weight_gain.value_or(1.0 / std::sqrt(double(g.I * g.k * g.k)));
  // per-sample weights [B, O, I, k, k]
  Tensor w = mul(unsqueeze(mul_scalar(g.w, gain), 0), reshape(styles, {g.B, 1, g.I, 1, 1}));
  if (o.demodulate) w = mul(w, reshape(rsqrt(add_scalar(sum(square(w), {2, 3, 4}), o.eps)), {g.B, g.O, 1, 1, 1}));
  Tensor xg = reshape(x, {1, g.B * g.I, g.H, g.W});
  Tensor y;
  if (o.up == 2) {
    ConvTranspose2dOptions co;
    co.stride = {2, 2};
    co.padding = {g.pad, g.pad};
    co.groups = g.B;
    y = conv_transpose2d(xg, reshape(transpose(w, 1, 2), {g.B * g.I, g.O, g.k, g.k}), Tensor(), co);
    y = reshape(y, {g.B, g.O, y.size(2), y.size(3)});
    const int64_t p = (4 - 2) - (g.k - 1);
    const int64_t p0 = floordiv(p + 1, 2) + 1, p1 = floordiv(p, 2) + 1;
    y = upfirdn2d(y, blur_filter(y), 1, 1, {p0, p1, p0, p1}, false, 4.0);
  } else {
    Conv2dOptions co;
    co.padding = {g.pad, g.pad};
    co.groups = g.B;
    if (o.down == 2) {
      const int64_t p = (4 - 2) + (g.k - 1);
      xg = upfirdn2d(xg, blur_filter(xg), 1, 1, {floordiv(p + 1, 2), floordiv(p, 2), floordiv(p + 1, 2), floordiv(p, 2)});
      co.stride = {2, 2};
    }
    y = conv2d(xg, reshape(w, {g.B * g.O, g.I, g.k, g.k}), Tensor(), co);
    y = reshape(y, {g.B, g.O, y.size(2), y.size(3)});
  }
  if (o.noise.defined()) y = add(y, mul(reshape(o.noise_weight, {}), o.noise));
  return bias_act(y, o.bias, act_options(o));
}

}  // namespace gradstyle
