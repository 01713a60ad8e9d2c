#include "gradstyle/models/gam.hpp"

#include <cmath>
#include <vector>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/selective_attention.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::models::gsnet {

namespace {

constexpr double kTwoPi = 6.283185307179586476925;

// torch.nn.init.xavier_uniform_ for a [out, in] weight: U(+-sqrt(6 / (in + out))); zero bias.
void xavier(nn::Linear& l) {
  autograd::NoGradGuard ng;
  const double bound = std::sqrt(6.0 / double(l.in_features() + l.out_features()));
  Tensor u = Tensor::rand(l.weight.shape(), nn::init_generator());  // U(0, 1]
  l.weight.copy_((u * 2.0 - 1.0) * bound);
  l.bias.zero_();
}

}  // namespace

Tensor positional_encoding_2d(int64_t R, int64_t C, double temperature) {
  GS_CHECK(R >= 1 && C >= 4 && C % 4 == 0, ValueError, "positional_encoding_2d: needs R >= 1 and C a multiple of 4, got R = ",
           R, ", C = ", C);
  GS_CHECK(temperature > 0, ValueError, "positional_encoding_2d: temperature must be > 0, got ", temperature);
  const int64_t half = C / 2, quarter = C / 4;
  std::vector<double> p(size_t(R * R * C));
  for (int64_t y = 0; y < R; ++y)
    for (int64_t x = 0; x < R; ++x) {
      double* row = p.data() + (y * R + x) * C;
      const double uy = kTwoPi * double(y + 1) / double(R), ux = kTwoPi * double(x + 1) / double(R);
      for (int64_t j = 0; j < quarter; ++j) {
        const double w = std::pow(temperature, -4.0 * double(j) / double(C));
        row[2 * j] = std::sin(uy * w);
        row[2 * j + 1] = std::cos(uy * w);
        row[half + 2 * j] = std::sin(ux * w);
        row[half + 2 * j + 1] = std::cos(ux * w);
      }
    }
  return Tensor::from_vector(p, {R * R, C});
}

Tensor positional_encoding_1d(int64_t L, int64_t C, double temperature) {
  GS_CHECK(L >= 1 && C >= 2 && C % 2 == 0, ValueError, "positional_encoding_1d: needs L >= 1 and an even C, got L = ", L,
           ", C = ", C);
  GS_CHECK(temperature > 0, ValueError, "positional_encoding_1d: temperature must be > 0, got ", temperature);
  std::vector<double> p(size_t(L * C));
  for (int64_t t = 0; t < L; ++t)
    for (int64_t i = 0; i < C / 2; ++i) {
      const double a = double(t) / std::pow(temperature, 2.0 * double(i) / double(C));
      p[size_t(t * C + 2 * i)] = std::sin(a);
      p[size_t(t * C + 2 * i + 1)] = std::cos(a);
    }
  return Tensor::from_vector(p, {L, C});
}

Tensor to_tokens(const Tensor& x) {
  GS_CHECK(x.defined() && x.dim() == 4, ShapeError, "to_tokens: expected [B, C, H, W], got ",
           x.defined() ? shape_str(x.shape()) : "undefined");
  return transpose(flatten(x, 2), 1, 2);  // [B, H*W, C]
}

Tensor from_tokens(const Tensor& t, int64_t R) {
  GS_CHECK(t.defined() && t.dim() == 3 && t.size(1) == R * R, ShapeError, "from_tokens: expected [B, ", R * R,
           ", C], got ", t.defined() ? shape_str(t.shape()) : "undefined");
  return reshape(transpose(t, 1, 2), {t.size(0), t.size(2), R, R});
}

// ---- AlignerLayer ---------------------------------------------------------------------------------

AlignerLayer::AlignerLayer(int64_t C, int64_t mlp_ratio, bool has_norm1)
    : q(C, C), k(C, C), v(C, C), o(C, C), fc1(C, mlp_ratio * C), fc2(mlp_ratio * C, C), norm2(C) {
  for (nn::Linear* l : {&q, &k, &v, &o}) xavier(*l);
  register_module("q", &q);
  register_module("k", &k);
  register_module("v", &v);
  register_module("o", &o);
  register_module("fc1", &fc1);
  register_module("fc2", &fc2);
  if (has_norm1) {
    norm1 = std::make_shared<nn::LayerNorm>(C);
    register_module("norm1", norm1);
  }
  register_module("norm2", &norm2);
}

Tensor AlignerLayer::attend(const Tensor& X, const Tensor& Z, const Tensor& P, bool pe_on_value, double mu,
                            int64_t heads) const {
  const Tensor xq = P.defined() ? X + P : X, zk = P.defined() ? Z + P : Z;
  const Tensor zv = P.defined() && pe_on_value ? zk : Z;
  return o.forward(selective_attention(q.forward(xq), k.forward(zk), v.forward(zv), mu, heads));
}

Tensor AlignerLayer::attention_weights(const Tensor& X, const Tensor& Z, const Tensor& P, double mu,
                                       int64_t heads) const {
  const Tensor xq = P.defined() ? X + P : X, zk = P.defined() ? Z + P : Z;
  return selective_attention_weights(q.forward(xq), k.forward(zk), mu, heads);
}

Tensor AlignerLayer::mlp(const Tensor& Y) const {
  return norm2.forward(Y + fc2.forward(relu(fc1.forward(Y))));
}

// ---- Aligner --------------------------------------------------------------------------------------

Aligner::Aligner(int64_t C, const GradStyleConfig& cfg) : out(C, C), C_(C), cfg_(cfg) {
  cfg.validate();
  GS_CHECK(C % cfg.aligner_heads == 0, ValueError, "Aligner: key 'aligner_heads' = ", cfg.aligner_heads,
           " does not divide the width C = ", C);
  const int64_t q = cfg.pe == PositionalEncoding::TwoD ? 4 : 2;
  GS_CHECK(C % q == 0, ValueError, "Aligner: key 'pe' needs the width to be a multiple of ", q, ", got C = ", C);
  for (int64_t l = 0; l < cfg.aligner_layers; ++l) {
    const bool last_value_side = l == cfg.aligner_layers - 1 && cfg.aligner_output == AlignerOutput::Value;
    layers.emplace_back(C, cfg.aligner_mlp_ratio, !last_value_side);
  }
  register_module("layers", &layers);
  register_module("out", &out);
}

Tensor Aligner::forward(const Tensor& F, const Tensor& f_edi) const { return run(F, f_edi, nullptr); }

Tensor Aligner::forward_with_attention(const Tensor& F, const Tensor& f_edi, std::vector<Tensor>& weights) const {
  weights.clear();
  return run(F, f_edi, &weights);
}

Tensor Aligner::run(const Tensor& F, const Tensor& f_edi, std::vector<Tensor>* weights) const {
  GS_CHECK(F.defined() && f_edi.defined() && F.dim() == 4 && F.size(1) == C_ && F.size(2) == F.size(3) &&
               f_edi.shape() == F.shape(),
           ShapeError, "Aligner: F ", F.defined() ? shape_str(F.shape()) : "undefined", " and f_edi ",
           f_edi.defined() ? shape_str(f_edi.shape()) : "undefined", " must both be [B, ", C_, ", R, R]");
  const int64_t R = F.size(2);
  const Tensor& like = out.weight;
  Tensor X = to_tokens(f_edi), Z = to_tokens(F);  // [B, L, C]
  Tensor P;                                       // [L, C], added inside every layer (2d)
  if (cfg_.pe == PositionalEncoding::TwoD) {
    P = positional_encoding_2d(R, C_, cfg_.pe_temperature).to(like.dtype()).to(like.device());
  } else {
    Tensor P1 = positional_encoding_1d(R * R, C_, cfg_.pe_temperature).to(like.dtype()).to(like.device());
    X = X + P1;
    Z = Z + P1;
  }
  const bool value_side = cfg_.aligner_output == AlignerOutput::Value;
  const size_t A = layers.size();
  for (size_t l = 0; l < A; ++l) {
    const AlignerLayer& layer = layers[l];
    Tensor att = layer.attend(X, Z, P, cfg_.pe_on_value, cfg_.topk_mu, cfg_.aligner_heads);  // [B, L, C]
    if (weights) {
      autograd::NoGradGuard ng;
      weights->push_back(layer.attention_weights(X.detach(), Z.detach(), P, cfg_.topk_mu, cfg_.aligner_heads));
    }
    if (l + 1 == A && value_side) {
      X = layer.mlp(att);  // Y: built from F's values only
    } else {
      X = layer.mlp(layer.norm1->forward(X + att));
    }
  }
  return from_tokens(out.forward(X), R);  // F' [B, C, R, R]
}

}  // namespace gradstyle::models::gsnet
