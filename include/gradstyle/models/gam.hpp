#pragma once
// GradStyle's Gradual Alignment Module: the Aligner E_ab (SPEC.md B.5), cross attention with
// selective top-k attention from the query stream (tokens of f^edi) onto the keys and values
// (tokens of F), post-norm as DETR, with a value-side output.
//
// Keys (prefix gam.<m>. in the network):
//   layers.<l>.{q,k,v,o,fc1,fc2}.{weight,bias}  layers.<l>.norm1.*  layers.<l>.norm2.*  out.{weight,bias}
// where the last layer has no norm1 when aligner_output = value (its attention result is never
// added to the query stream).
//
// Shapes: tokens t = y * R + x, [B, C, R, R] <-> [B, L = R^2, C]. Attention: heads h, d = C / h,
// scale 1/sqrt(d), per-row k = ceil(topk_mu * L) with ties kept (ops/selective_attention.hpp).
// Initialisation: xavier-uniform q/k/v/o weights with zero biases, LayerNorm 1 / 0, fc1 / fc2 /
// out PyTorch's Linear default (U(+-1/sqrt(in))), all from nn::init_generator().
#include <memory>

#include "gradstyle/models/gradstyle_config.hpp"
#include "gradstyle/nn/layers.hpp"

namespace gradstyle::models::gsnet {

// DETR-style 2-D sine encoding of an R x R grid at width C (C % 4 == 0), [L, C] float64:
// channels [0, C/2) encode y, [C/2, C) encode x; for an axis coordinate p, u = 2 pi (p + 1) / R,
// w_j = temperature^(-4j / C) for j < C/4, channel 2j = sin(u w_j), 2j + 1 = cos(u w_j) (within
// each half).
Tensor positional_encoding_2d(int64_t R, int64_t C, double temperature = 10000.0);
// Vaswani's 1-D encoding of token indices t = 0..L-1 at width C (C even), [L, C] float64:
// channel 2i = sin(t / temperature^(2i / C)), 2i + 1 = cos(t / temperature^(2i / C)).
Tensor positional_encoding_1d(int64_t L, int64_t C, double temperature = 10000.0);

// [B, C, R, R] -> [B, R*R, C] and back.
Tensor to_tokens(const Tensor& x);
Tensor from_tokens(const Tensor& t, int64_t R);

// One cross-attention block. norm1 is null for the value-side last layer.
class AlignerLayer : public nn::Module {
 public:
  AlignerLayer(int64_t C, int64_t mlp_ratio, bool has_norm1);
  nn::Linear q, k, v, o, fc1, fc2;
  std::shared_ptr<nn::LayerNorm> norm1;
  nn::LayerNorm norm2;

  // o(SelectiveMHA(Q = (X + P) q, K = (Z + P) k, V = (Z [+ P]) v)); X [B, Lq, C], Z [B, Lk, C],
  // P [L, C] or undefined (no positional term). -> [B, Lq, C].
  Tensor attend(const Tensor& X, const Tensor& Z, const Tensor& P, bool pe_on_value, double mu,
                int64_t heads) const;
  // norm2(Y + fc2(relu(fc1(Y)))).
  Tensor mlp(const Tensor& Y) const;
  // The weights attend() uses for these inputs, [B, heads, Lq, Lk] (selective_attention_weights).
  Tensor attention_weights(const Tensor& X, const Tensor& Z, const Tensor& P, double mu, int64_t heads) const;
};

class Aligner : public nn::Module {
 public:
  // cfg supplies aligner_layers, aligner_heads, aligner_mlp_ratio, pe, pe_on_value,
  // pe_temperature, topk_mu and aligner_output. ValueError when heads do not divide C.
  Aligner(int64_t C, const GradStyleConfig& cfg);
  nn::ModuleList<AlignerLayer> layers;
  nn::Linear out;

  // F [B, C, R, R] (keys and values: the unaligned refinement), f_edi [B, C, R, R] (queries) ->
  // F' [B, C, R, R]. With aligner_output = value, F' depends on f_edi only through the attention
  // weights.
  Tensor forward(const Tensor& F, const Tensor& f_edi) const;
  // forward, also returning each layer's attention weights [B, heads, L, L] (query token of f_edi
  // -> key token of F; 0 outside the selected top-k), without gradient. For `gradstyle explain`.
  Tensor forward_with_attention(const Tensor& F, const Tensor& f_edi, std::vector<Tensor>& weights) const;
  int64_t width() const { return C_; }

 private:
  Tensor run(const Tensor& F, const Tensor& f_edi, std::vector<Tensor>* weights) const;
  int64_t C_;
  GradStyleConfig cfg_;
};

}  // namespace gradstyle::models::gsnet
