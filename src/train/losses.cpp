#include "gradstyle/train/losses.hpp"

#include <string>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/models/arcface.hpp"
#include "gradstyle/models/lpips.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/pool.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::train {

namespace {

Tensor reduce(const Tensor& t, Reduction r) { return r == Reduction::Sum ? sum(t) : mean(t); }

void check_same_shape(const char* term, const Tensor& a, const Tensor& b, const char* an, const char* bn) {
  if (a.shape() != b.shape())
    throw ShapeError(std::string(term) + ": " + an + " " + shape_str(a.shape()) + " and " + bn + " " +
                     shape_str(b.shape()) + " differ");
}

void check_lists(const char* term, size_t a, size_t b, const char* an, const char* bn) {
  if (a == 0) throw ValueError(std::string(term) + ": no stages (empty " + an + " list)");
  if (a != b)
    throw ShapeError(std::string(term) + ": " + std::to_string(a) + " " + an + " but " + std::to_string(b) + " " + bn);
}

}  // namespace

Tensor pool_to(const Tensor& x, int64_t res) {
  if (x.dim() != 4) throw ShapeError("pool_to: expected [B, C, H, W], got " + shape_str(x.shape()));
  const int64_t h = x.size(2), w = x.size(3);
  if (res < 1 || h % res != 0 || w % res != 0)
    throw ValueError("pool_to: resolution " + std::to_string(res) + " does not divide the image size " +
                     std::to_string(h) + "x" + std::to_string(w));
  if (h == res && w == res) return x;
  // An exact k x k average equals AdaptiveAvgPool2d(res) when res divides the size.
  return avg_pool2d(x, {h / res, w / res});
}

Tensor image_l2(const Tensor& x_hat, const Tensor& target, Reduction r) {
  check_same_shape("image_l2", x_hat, target, "x_hat", "target");
  return mse_loss(x_hat, target.detach(), r == Reduction::Sum ? Reduction::Sum : Reduction::Mean);
}

Tensor image_lpips(models::lpips::LPIPS& net, const Tensor& x_hat, const Tensor& target) {
  check_same_shape("image_lpips", x_hat, target, "x_hat", "target");
  return mean(net.forward(x_hat, target.detach()));
}

Tensor image_id(models::arcface::ArcFaceID& net, const Tensor& x_hat, const Tensor& target) {
  check_same_shape("image_id", x_hat, target, "x_hat", "target");
  return net.loss(x_hat, target.detach());
}

Tensor gate_regulariser(const std::vector<Tensor>& gates, const std::vector<Tensor>& residuals, Reduction r) {
  check_lists("gate_regulariser", gates.size(), residuals.size(), "gates", "residuals");
  Tensor total;
  for (size_t m = 0; m < gates.size(); ++m) {
    const Tensor& g = gates[m];
    const Tensor& f = residuals[m];
    if (!g.defined() && !f.defined()) continue;  // a stage bypassed by progressive training
    if (g.dim() != 4 || f.dim() != 4 || g.size(0) != f.size(0) || g.size(2) != f.size(2) || g.size(3) != f.size(3) ||
        (g.size(1) != f.size(1) && g.size(1) != 1))
      throw ShapeError("gate_regulariser: stage " + std::to_string(m) + ": gate " + shape_str(g.shape()) +
                       " does not fit residual " + shape_str(f.shape()) + " (gate channels must be C or 1)");
    Tensor term = reduce(abs(mul(g, f)), r);
    total = total.defined() ? add(total, term) : term;
  }
  return total;
}

Tensor aligner_l1(const std::vector<Tensor>& aligned, const std::vector<Tensor>& residuals, Reduction r) {
  check_lists("aligner_l1", aligned.size(), residuals.size(), "aligned maps", "residuals");
  Tensor total;
  for (size_t m = 0; m < aligned.size(); ++m) {
    if (!aligned[m].defined() && !residuals[m].defined()) continue;  // a bypassed stage
    check_same_shape(("aligner_l1 (stage " + std::to_string(m) + ")").c_str(), aligned[m], residuals[m], "F'", "F");
    Tensor term = l1_loss(aligned[m], residuals[m].detach(), r == Reduction::Sum ? Reduction::Sum : Reduction::Mean);
    total = total.defined() ? add(total, term) : term;
  }
  return total;
}

Tensor generator_nonsaturating(const Tensor& fake_logits) { return mean(softplus(neg(fake_logits))); }

Tensor discriminator_logistic(const Tensor& real_logits, const std::vector<Tensor>& fake_logits) {
  if (fake_logits.empty()) throw ValueError("discriminator_logistic: no fake logits");
  Tensor fake;
  for (const Tensor& f : fake_logits) {
    Tensor term = mean(softplus(f));
    fake = fake.defined() ? add(fake, term) : term;
  }
  return add(mean(softplus(neg(real_logits))), mul_scalar(fake, 1.0 / double(fake_logits.size())));
}

R1Result r1_penalty(const std::function<Tensor(const Tensor&)>& discriminator, const Tensor& real) {
  if (real.dim() < 1 || real.size(0) < 1) throw ShapeError("r1_penalty: empty batch " + shape_str(real.shape()));
  Tensor x = real.detach().requires_grad_();
  Tensor logits = discriminator(x);
  // grad of sum(D(x)) w.r.t. x: each sample's logit depends on its own image only (minibatch
  // stddev aside, whose cross-sample term rosinality's r1 includes the same way).
  Tensor gx = autograd::grad({sum(logits)}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  Tensor per_sample = sum(square(reshape(gx, {gx.size(0), -1})), {1});
  return {mean(per_sample), logits};
}

}  // namespace gradstyle::train
