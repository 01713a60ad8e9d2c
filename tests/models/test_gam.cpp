// The Aligner E_ab (SPEC B.5): positional encodings by the formula, the agreed keys (no norm1 in
// the value-side last layer), the forward against the ops composed by hand (with the unfused
// selective attention), a float64 gradient check, and the value-side property.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "gradstyle/models/gam.hpp"
#include "gradstyle/ops/norm.hpp"
#include "gradstyle/ops/selective_attention.hpp"
#include "models/gradstyle_fixture.hpp"

using namespace gstest_gs;

namespace {

gs::GradStyleConfig aligner_config(int64_t layers, gs::AlignerOutput out, gs::PositionalEncoding pe, bool pe_v) {
  gs::GradStyleConfig c;
  c.aligner_layers = layers;
  c.aligner_heads = 2;
  c.aligner_mlp_ratio = 2;
  c.aligner_output = out;
  c.pe = pe;
  c.pe_on_value = pe_v;
  c.topk_mu = 0.5;
  return c;
}

void randomize_biases(nn::Module& m, uint64_t seed) {
  autograd::NoGradGuard ng;
  uint64_t s = seed;
  for (auto& [n, t] : m.named_parameters())
    if (n.size() > 4 && n.substr(n.size() - 4) == "bias") *t = (Tensor::randn(t->shape(), s++, {t->dtype()}) * 0.3).requires_grad_();
}

// The Aligner of SPEC B.5 written out with ops (unfused attention).
Tensor aligner_ref(const gs::Aligner& a, const gs::GradStyleConfig& c, const Tensor& F, const Tensor& f) {
  const int64_t B = F.size(0), C = F.size(1), R = F.size(2), L = R * R;
  auto tokens = [&](const Tensor& x) { return transpose(reshape(x, {B, C, L}), 1, 2); };
  Tensor X = tokens(f), Z = tokens(F), P;
  if (c.pe == gs::PositionalEncoding::TwoD) {
    P = gs::positional_encoding_2d(R, C, c.pe_temperature).to(F.dtype());
  } else {
    Tensor P1 = gs::positional_encoding_1d(L, C, c.pe_temperature).to(F.dtype());
    X = X + P1;
    Z = Z + P1;
  }
  auto lin = [](const nn::Linear& l, const Tensor& x) { return matmul(x, transpose(l.weight, 0, 1)) + l.bias; };
  auto ln = [&](const nn::LayerNorm& n, const Tensor& x) { return layer_norm(x, {C}, n.weight, n.bias, 1e-5); };
  for (size_t l = 0; l < a.layers.size(); ++l) {
    const auto& y = a.layers[l];
    Tensor xq = P.defined() ? X + P : X, zk = P.defined() ? Z + P : Z, zv = c.pe_on_value && P.defined() ? zk : Z;
    Tensor att = lin(y.o, selective_attention_unfused(lin(y.q, xq), lin(y.k, zk), lin(y.v, zv), c.topk_mu, 2));
    Tensor h = (l + 1 == a.layers.size() && c.aligner_output == gs::AlignerOutput::Value) ? att : ln(*y.norm1, X + att);
    X = ln(y.norm2, h + lin(y.fc2, relu(lin(y.fc1, h))));
  }
  return reshape(transpose(lin(a.out, X), 1, 2), {B, C, R, R});
}

}  // namespace

TEST_CASE("models/gam: positional encodings follow SPEC B.5's formulas") {
  const double pi2 = 2 * std::numbers::pi;
  Tensor P = gs::positional_encoding_2d(2, 8, 10000.0);  // R = 2, C = 8: w_0 = 1, w_1 = 10000^(-1/2)
  CHECK(P.shape() == Shape{4, 8});
  CHECK(P.dtype() == DType::f64);
  auto p = P.to_vector<double>();
  const double w1 = std::pow(10000.0, -0.5);
  // token t = y * R + x = 1: y = 0 (u = 2 pi / 2), x = 1 (u = 2 pi * 2 / 2).
  const double uy = pi2 * 1 / 2, ux = pi2 * 2 / 2;
  const std::vector<double> t1{std::sin(uy), std::cos(uy), std::sin(uy * w1), std::cos(uy * w1),
                               std::sin(ux), std::cos(ux), std::sin(ux * w1), std::cos(ux * w1)};
  for (int c = 0; c < 8; ++c) CHECK(p[8 + c] == doctest::Approx(t1[size_t(c)]).epsilon(1e-12));
  // token 2: y = 1, x = 0 -> the halves swap relative to token 1.
  for (int c = 0; c < 4; ++c) CHECK(p[16 + c] == doctest::Approx(t1[size_t(c + 4)]).epsilon(1e-12));
  // The temperature enters only through w_j.
  CHECK(gs::positional_encoding_2d(2, 8, 100.0).to_vector<double>()[8 + 2] == doctest::Approx(std::sin(uy * 0.1)));

  Tensor Q = gs::positional_encoding_1d(5, 6, 10000.0);
  auto q = Q.to_vector<double>();
  for (int t = 0; t < 5; ++t)
    for (int i = 0; i < 3; ++i) {
      const double a = t / std::pow(10000.0, 2.0 * i / 6.0);
      CHECK(q[size_t(t * 6 + 2 * i)] == doctest::Approx(std::sin(a)).epsilon(1e-12));
      CHECK(q[size_t(t * 6 + 2 * i + 1)] == doctest::Approx(std::cos(a)).epsilon(1e-12));
    }
  GS_CHECK_THROWS_WITH(gs::positional_encoding_2d(4, 6), ValueError, "multiple of 4");
  CHECK_THROWS_AS(gs::positional_encoding_1d(4, 5), ValueError);
}

TEST_CASE("models/gam: Aligner keys, widths and initialisation") {
  auto c = aligner_config(3, gs::AlignerOutput::Value, gs::PositionalEncoding::TwoD, false);
  gs::Aligner a(8, c);
  auto k = keys(a);
  auto has = [&](const std::string& s) { return std::count(k.begin(), k.end(), s) == 1; };
  for (const char* p : {"q", "k", "v", "o", "fc1", "fc2"})
    for (int l = 0; l < 3; ++l) {
      CHECK(has("layers." + std::to_string(l) + "." + p + ".weight"));
      CHECK(has("layers." + std::to_string(l) + "." + p + ".bias"));
    }
  CHECK(has("layers.0.norm1.weight"));
  CHECK(has("layers.1.norm1.bias"));
  CHECK(!has("layers.2.norm1.weight"));  // value-side last layer
  CHECK(has("layers.2.norm2.weight"));
  CHECK(has("out.weight"));
  CHECK(k.size() == size_t(3 * 6 * 2 + 2 * 2 + 3 * 2 + 2));
  CHECK(a.layers[0].fc1.weight.shape() == Shape{16, 8});
  CHECK(a.layers[0].fc2.weight.shape() == Shape{8, 16});
  // Xavier-uniform q/k/v/o: U(+-sqrt(6 / 16)), zero biases; LayerNorm 1 / 0.
  const double xb = std::sqrt(6.0 / 16.0);
  CHECK(amax(a.layers[1].q.weight.abs()).item() <= xb);
  CHECK(amax(a.layers[1].q.weight.abs()).item() > 0.7 * xb);
  CHECK(a.layers[1].v.bias.abs().sum().item() == 0.0);
  CHECK(a.layers[0].norm1->weight.to_vector<float>() == std::vector<float>(8, 1.0f));
  // fc1 keeps PyTorch's Linear default U(+-1/sqrt(in)), with a non-zero bias.
  CHECK(amax(a.layers[0].fc1.weight.abs()).item() <= 1 / std::sqrt(8.0));
  CHECK(a.layers[0].fc1.bias.abs().sum().item() > 0.0);

  auto cq = c;
  cq.aligner_output = gs::AlignerOutput::Query;
  gs::Aligner aq(8, cq);
  CHECK(aq.layers[2].norm1 != nullptr);

  auto bad = c;
  bad.aligner_heads = 3;
  GS_CHECK_THROWS_WITH(gs::Aligner(8, bad), ValueError, "aligner_heads", "C = 8");
}

TEST_CASE("models/gam: Aligner forward equals SPEC B.5 composed from ops, for every PE and output mode") {
  for (auto out : {gs::AlignerOutput::Value, gs::AlignerOutput::Query})
    for (auto pe : {gs::PositionalEncoding::TwoD, gs::PositionalEncoding::OneD})
      for (bool pv : {false, true}) {
        CAPTURE(int(out));
        CAPTURE(int(pe));
        CAPTURE(pv);
        auto c = aligner_config(2, out, pe, pv);
        gs::Aligner a(8, c);
        a.to(DType::f64);
        randomize_biases(a, 40);
        Tensor F = Tensor::randn({2, 8, 4, 4}, 41, {DType::f64}), f = Tensor::randn({2, 8, 4, 4}, 42, {DType::f64});
        Tensor y = a.forward(F, f);
        CHECK(y.shape() == Shape{2, 8, 4, 4});
        GS_EXPECT_CLOSE(y, aligner_ref(a, c, F, f), 1e-10, 1e-9);
      }
}

TEST_CASE("models/gam: Aligner float64 gradient check in F, f_edi and every parameter") {
  auto c = aligner_config(2, gs::AlignerOutput::Value, gs::PositionalEncoding::TwoD, false);
  gs::Aligner a(4, c);
  a.to(DType::f64);
  randomize_biases(a, 60);
  // R = 2: L = 4 tokens, k = ceil(0.5 * 4) = 2 kept keys per row.
  Tensor F = Tensor::randn({1, 4, 2, 2}, 61, {DType::f64}), f = Tensor::randn({1, 4, 2, 2}, 62, {DType::f64});
  gradcheck_module(a, {F, f}, [&](const std::vector<Tensor>& xs) { return a.forward(xs[0], xs[1]); }, 1e-6, 1e-4);
}

TEST_CASE("models/gam: value-side output: with all-equal keys F' is built from the mean of F's values, whatever f_edi") {
  for (auto pe : {gs::PositionalEncoding::TwoD, gs::PositionalEncoding::OneD}) {
    CAPTURE(int(pe));
    auto c = aligner_config(2, gs::AlignerOutput::Value, pe, false);
    gs::Aligner a(8, c);
    a.to(DType::f64);
    randomize_biases(a, 80);
    {
      autograd::NoGradGuard ng;
      a.layers[1].k.weight.zero_();  // K = k.bias for every token: one score per row, every key kept
    }
    Tensor F = Tensor::randn({2, 8, 4, 4}, 81, {DType::f64}), f = Tensor::randn({2, 8, 4, 4}, 82, {DType::f64});
    Tensor y = a.forward(F, f);
    // Expected: out(norm2(Y + MLP(Y))) with Y = o(mean_j V_j), V = Z v (Z with the 1-D PE when pe = 1d).
    Tensor Z = transpose(reshape(F, {2, 8, 16}), 1, 2);
    if (pe == gs::PositionalEncoding::OneD) Z = Z + gs::positional_encoding_1d(16, 8).to(DType::f64);
    const auto& last = a.layers[1];
    Tensor V = last.v.forward(Z);                                        // [2, 16, 8]
    Tensor Y = last.o.forward(mean(V, {1}, true)).expand({2, 16, 8});  // the same for every query
    Tensor ref = transpose(a.out.forward(last.mlp(Y)), 1, 2).reshape({2, 8, 4, 4});
    GS_EXPECT_CLOSE(y, ref, 1e-12, 1e-10);
    // Another f_edi changes nothing (the query stream only chooses where to look).
    Tensor y2 = a.forward(F, Tensor::randn({2, 8, 4, 4}, 83, {DType::f64}) * 3.0);
    GS_EXPECT_CLOSE(y2, y, 1e-12, 1e-12);
    // The ablation aligner_output = query carries f_edi through the skip: it does change.
    auto cq = c;
    cq.aligner_output = gs::AlignerOutput::Query;
    gs::Aligner aq(8, cq);
    aq.to(DType::f64);
    {
      autograd::NoGradGuard ng;
      aq.layers[1].k.weight.zero_();
    }
    Tensor d = aq.forward(F, f) - aq.forward(F, Tensor::randn({2, 8, 4, 4}, 84, {DType::f64}));
    CHECK(d.abs().sum().item() > 1e-3);
  }
}

TEST_CASE("models/gam: token layout t = y * R + x and shape errors") {
  Tensor x = Tensor::arange(2 * 3 * 2 * 2).reshape({2, 3, 2, 2});
  Tensor t = gs::to_tokens(x);
  CHECK(t.shape() == Shape{2, 4, 3});
  // Token (y=1, x=0) of batch 1, channel 2 is x[1, 2, 1, 0].
  CHECK(t.contiguous().to_vector<float>()[size_t((1 * 4 + 2) * 3 + 2)] == float(((1 * 3 + 2) * 2 + 1) * 2 + 0));
  CHECK(gs::from_tokens(t, 2).to_vector<float>() == x.to_vector<float>());
  gs::Aligner a(8, aligner_config(1, gs::AlignerOutput::Value, gs::PositionalEncoding::TwoD, false));
  GS_CHECK_THROWS_WITH(a.forward(Tensor::randn({1, 8, 4, 4}, 1), Tensor::randn({1, 8, 2, 2}, 1)), ShapeError,
                       "Aligner", "[B, 8, R, R]");
}

TEST_CASE("models/gam: forward_with_attention returns forward's output and each layer's weights") {
  for (auto out : {gs::AlignerOutput::Value, gs::AlignerOutput::Query}) {
    CAPTURE(int(out));
    auto c = aligner_config(2, out, gs::PositionalEncoding::TwoD, false);
    gs::Aligner a(8, c);
    a.to(DType::f64);
    randomize_biases(a, 50);
    Tensor F = Tensor::randn({1, 8, 4, 4}, 51, {DType::f64}), f = Tensor::randn({1, 8, 4, 4}, 52, {DType::f64});
    std::vector<Tensor> w;
    const Tensor y = a.forward_with_attention(F, f, w);
    GS_EXPECT_CLOSE(y, a.forward(F, f), 0.0, 0.0);
    REQUIRE(w.size() == 2);
    for (const auto& t : w) CHECK(t.shape() == Shape{1, 2, 16, 16});
    // Layer 0's weights are those of its own inputs: f_edi's tokens (+ P) against F's.
    const Tensor P = gs::positional_encoding_2d(4, 8, c.pe_temperature).to(DType::f64);
    const Tensor X = gs::to_tokens(f), Z = gs::to_tokens(F);
    GS_EXPECT_CLOSE(w[0], selective_attention_weights(a.layers[0].q.forward(X + P), a.layers[0].k.forward(Z + P), 0.5, 2),
                    0.0, 0.0);
  }
}
