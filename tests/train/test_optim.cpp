// Optimisers of the train layer: closed-form Adam steps, convergence on a quadratic, Lookahead's
// sync, gradient centralisation, state round trips that continue bit for bit, load errors, and
// parity with PyTorch (tests/golden/train/optim.safetensors, tools/reference/make_optim_fixtures.py).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/gradstyle.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/nn/layers.hpp"
#include "gradstyle/train/optim.hpp"
#include "support/harness.hpp"

using namespace gradstyle;
namespace tr = gradstyle::train;

namespace {

Tensor param(const std::vector<double>& v, const Shape& s, DType dt = DType::f64, Device d = Device::cpu()) {
  Tensor t = Tensor::from_vector<double>(v, s).to(dt).to(d).contiguous().clone();
  t.requires_grad_();
  return t;
}

Tensor randn_param(const Shape& s, uint64_t seed, DType dt = DType::f64, Device d = Device::cpu()) {
  Tensor t = Tensor::randn(s, seed, {DType::f64}).to(dt).to(d).contiguous().clone();
  t.requires_grad_();
  return t;
}

// Same shape, dtype and bytes.
bool bit_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  Tensor ca = a.detach().cpu().contiguous(), cb = b.detach().cpu().contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

enum class Kind { Adam, AdamWd, LookaheadAdam, RAdam, Ranger };
std::string kind_name(Kind k) {
  switch (k) {
    case Kind::Adam: return "Adam";
    case Kind::AdamWd: return "Adam(weight_decay)";
    case Kind::LookaheadAdam: return "Lookahead(Adam)";
    case Kind::RAdam: return "RAdam";
    case Kind::Ranger: return "Ranger";
  }
  return "?";
}
const Kind kAllKinds[] = {Kind::Adam, Kind::AdamWd, Kind::LookaheadAdam, Kind::RAdam, Kind::Ranger};

std::unique_ptr<tr::Optimizer> make(Kind k, tr::NamedParameters ps, double lr) {
  switch (k) {
    case Kind::Adam: return std::make_unique<tr::Adam>(ps, tr::AdamOptions{.lr = lr});
    case Kind::AdamWd: return std::make_unique<tr::Adam>(ps, tr::AdamOptions{.lr = lr, .weight_decay = 0.05});
    case Kind::LookaheadAdam:
      return std::make_unique<tr::Lookahead>(std::make_unique<tr::Adam>(ps, tr::AdamOptions{.lr = lr}));
    case Kind::RAdam: return std::make_unique<tr::RAdam>(ps, tr::RAdamOptions{.lr = lr});
    case Kind::Ranger: return std::make_unique<tr::Ranger>(ps, tr::RangerOptions{.lr = lr});
  }
  return nullptr;
}

}  // namespace

// ---- closed form --------------------------------------------------------------------------------

TEST_CASE("train/adam: three hand-computed steps on a scalar") {
  // lr 0.1, betas (0.9, 0.999), eps 1e-8, p0 = 1, gradients 0.5, -0.25, 2:
  //  t=1: m = 0.05, v = 2.5e-4, m/(1-0.9) = 0.5, sqrt(v/(1-0.999)) = 0.5
  //       p = 1 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.900000002
  //  t=2: m = 0.02, v = 3.1225e-4, mhat = 0.02/0.19, vhat = 3.1225e-4/1.999e-3
  //       p = 0.900000002 - 0.1 * 0.105263158 / (0.395225380 + 1e-8) = 0.873366298707846
  //  t=3: m = 0.218, v = 4.31193775e-3, bias corrections 0.271 and 2.997001e-3
  //       p = 0.806301534529153
  const double expected[] = {0.900000002, 0.8733662987078463, 0.8063015345291531};
  const double grads[] = {0.5, -0.25, 2.0};
  for (DType dt : {DType::f64, DType::f32}) {
    const std::string dtn = dtype_name(dt);
    CAPTURE(dtn);
    gstest::for_each_device([&](Device d) {
      Tensor p = param({1.0}, {}, dt, d);
      tr::Adam opt({{"p", p}}, {.lr = 0.1});
      for (int t = 0; t < 3; ++t) {
        p.set_grad(Tensor::full({}, grads[t], {dt, d}));
        opt.step();
        const double tol = dt == DType::f64 ? 1e-15 : 2e-7;
        CHECK(p.item() == doctest::Approx(expected[t]).epsilon(tol));
      }
      auto sd = opt.state_dict();
      CHECK(sd.at("step").dtype() == DType::i64);
      CHECK(sd.at("step").to_vector<int64_t>()[0] == 3);
      CHECK(sd.at("p.step").to_vector<int64_t>()[0] == 3);
      CHECK(sd.at("p.exp_avg").item() == doctest::Approx(0.218).epsilon(dt == DType::f64 ? 1e-14 : 1e-6));
      CHECK(sd.at("p.exp_avg_sq").item() ==
            doctest::Approx(4.31193775e-3).epsilon(dt == DType::f64 ? 1e-14 : 1e-6));
      CHECK(sd.at("p.exp_avg").dtype() == dt);
      CHECK(sd.at("p.exp_avg").device() == d);
    });
  }
}

TEST_CASE("train/adam: weight decay is L2 on the gradient, as torch") {
  // g = 0.5 + 0.1 * 1 = 0.6, so step 1 is 1 - 0.1 * 0.6 / (0.6 + 1e-8).
  Tensor p = param({1.0}, {});
  tr::Adam opt({{"p", p}}, {.lr = 0.1, .weight_decay = 0.1});
  p.set_grad(Tensor::full({}, 0.5, {DType::f64}));
  opt.step();
  CHECK(p.item() == doctest::Approx(1 - 0.1 * 0.6 / (0.6 + 1e-8)).epsilon(1e-15));
}

TEST_CASE("train/radam: the first steps are bias-corrected momentum SGD") {
  // N_sma <= 5 for t <= 5: p -= lr * m / (1 - b1^t); at t = 1 that is p - lr * g.
  Tensor p = param({1.0, -2.0}, {2});
  tr::RAdam opt({{"p", p}}, {.lr = 0.1});
  p.set_grad(Tensor::from_vector<double>({0.5, 3.0}, {2}));
  opt.step();
  auto v = p.to_vector<double>();
  CHECK(v[0] == doctest::Approx(0.95).epsilon(1e-15));
  CHECK(v[1] == doctest::Approx(-2.3).epsilon(1e-15));
  // t = 2 with the same gradient: m = 0.95*0.05*g + 0.05*g = 0.0975 g, 1 - 0.95^2 = 0.0975.
  opt.step();
  v = p.to_vector<double>();
  CHECK(v[0] == doctest::Approx(0.90).epsilon(1e-15));
  CHECK(v[1] == doctest::Approx(-2.6).epsilon(1e-15));
}

// ---- convergence --------------------------------------------------------------------------------

TEST_CASE("train/optim: every optimiser reaches the minimum of a quadratic") {
  // f = sum(a (x - c)^2) + sum((W - C)^2): x [5] is 1-D (never centralised); C has W0's row
  // means, so the minimum stays reachable under gradient centralisation (which keeps row means
  // in its first, SGD-like steps and only moves rows by zero-mean directions after).
  for (Kind k : kAllKinds) {
    const std::string kn = kind_name(k);
    CAPTURE(kn);
    gstest::for_each_device([&](Device d) {
      Tensor x = param({3, -1, 2, 0.5, -2}, {5}, DType::f64, d);
      Tensor a = Tensor::from_vector<double>({1, 2, 0.5, 1.5, 1}, {5}).to(d);
      Tensor c = Tensor::from_vector<double>({0.5, 0.25, -1, 1, 0}, {5}).to(d);
      Tensor w = param({1, 2, 3, 4, 0, 0, 0, 0, -1, 1, -1, 1}, {3, 4}, DType::f64, d);
      Tensor cw = Tensor::from_vector<double>({2.5, 2.5, 2.5, 2.5, 1, -1, 2, -2, 0, 0, 0, 0}, {3, 4}).to(d);
      auto opt = make(k, {{"x", x}, {"w", w}}, 0.05);
      double f0 = 0, f = 0;
      for (int it = 0; it < 1500; ++it) {
        Tensor loss = sum(a * square(x - c)) + sum(square(w - cw));
        if (it == 0) f0 = loss.item();
        f = loss.item();
        opt->zero_grad();
        loss.backward();
        opt->step();
      }
      MESSAGE(kind_name(k) << ": f " << f0 << " -> " << f);
      if (k == Kind::AdamWd) {
        // L2 weight decay moves the stationary point to 2 a (x - c) + wd x = 0.
        const double wd = 0.05;
        CHECK(max_abs(x.detach() - 2.0 * a * c / (2.0 * a + wd)) < 1e-6);
        CHECK(max_abs(w.detach() - cw * (2.0 / (2.0 + wd))) < 1e-6);
      } else {
        CHECK(max_abs(x.detach() - c) < 1e-6);
        CHECK(max_abs(w.detach() - cw) < 1e-6);
        CHECK(f < 1e-12 * f0);
      }
    });
  }
}

// ---- Lookahead ----------------------------------------------------------------------------------

TEST_CASE("train/lookahead: fast weights follow the inner optimiser and sync exactly every k steps") {
  const int64_t k = 4;
  const double alpha = 0.5;
  Tensor p = randn_param({3, 2}, 11);
  Tensor q = p.detach().clone().requires_grad_();  // the same inner optimiser without Lookahead
  tr::Lookahead la(std::make_unique<tr::Adam>(tr::NamedParameters{{"p", p}}, tr::AdamOptions{.lr = 0.1}),
                   {.k = k, .alpha = alpha});
  tr::Adam plain({{"q", q}}, {.lr = 0.1});
  CHECK(la.kind() == "Lookahead(Adam)");
  Tensor slow = p.detach().clone();
  for (int64_t t = 1; t <= 3 * k; ++t) {
    CAPTURE(t);
    Tensor g = Tensor::randn({3, 2}, 100 + uint64_t(t), {DType::f64});
    p.set_grad(g.clone());
    q.set_grad(g.clone());
    la.step();
    plain.step();
    if (t % k != 0) {
      CHECK(bit_equal(p, q));  // between syncs Lookahead is the inner optimiser, bit for bit
      CHECK(!bit_equal(p, slow));
    } else {
      autograd::NoGradGuard ng;
      slow.add_(sub(q.detach(), slow), alpha);  // slow + alpha (fast - slow)
      CHECK(bit_equal(p, slow));
      CHECK(bit_equal(la.state_dict().at("p.slow"), slow));
      q.copy_(p);  // resume the plain run from the synced weights (Adam's moments do not see p)
    }
    CHECK(la.state_dict().at("lookahead.step").to_vector<int64_t>()[0] == t);
  }
  // Defaults of the issue: k = 6, alpha = 0.5.
  tr::Lookahead d(std::make_unique<tr::Adam>(tr::NamedParameters{{"p", p}}));
  CHECK(d.options().k == 6);
  CHECK(d.options().alpha == 0.5);
}

TEST_CASE("train/ranger: defaults and the Lookahead sync at every 6th update of a parameter") {
  tr::RangerOptions o;
  CHECK(o.beta1 == 0.95);
  CHECK(o.beta2 == 0.999);
  CHECK(o.eps == 1e-5);
  CHECK(o.k == 6);
  CHECK(o.alpha == 0.5);
  CHECK(o.n_sma_threshold == 5.0);
  CHECK(o.gradient_centralization);
  // a gets a gradient every step, b every other step: b syncs after its own 6th update (step 12).
  Tensor a = randn_param({4}, 1), b = randn_param({4}, 2);
  Tensor a0 = a.detach().clone(), b0 = b.detach().clone();
  tr::Ranger opt({{"a", a}, {"b", b}}, {.lr = 0.01});
  for (int t = 1; t <= 12; ++t) {
    a.set_grad(Tensor::randn({4}, 200 + uint64_t(t), {DType::f64}));
    if (t % 2 == 0) b.set_grad(Tensor::randn({4}, 300 + uint64_t(t), {DType::f64}));
    else b.zero_grad();
    opt.step();
    auto sd = opt.state_dict();
    CHECK(sd.at("b.step").to_vector<int64_t>()[0] == t / 2);
    if (t < 6) CHECK(bit_equal(sd.at("a.slow"), a0));
    if (t == 6) CHECK(bit_equal(sd.at("a.slow"), a));
    if (t < 12) CHECK(bit_equal(sd.at("b.slow"), b0));
    if (t == 12) CHECK(bit_equal(sd.at("b.slow"), b));
  }
}

TEST_CASE("train/ranger: the slow copy is taken at the first update, Lookahead's at construction") {
  Tensor a = randn_param({3}, 1);
  Tensor b = a.detach().clone().requires_grad_();
  Tensor original = a.detach().clone();
  tr::Ranger ranger({{"a", a}}, {.lr = 0.01});
  tr::Lookahead la(std::make_unique<tr::RAdam>(tr::NamedParameters{{"b", b}},
                                               tr::RAdamOptions{.lr = 0.01, .gradient_centralization = true}));
  {
    autograd::NoGradGuard ng;  // e.g. weights loaded in place after the optimiser was built
    a.fill_(2.0);
    b.fill_(2.0);
  }
  CHECK(bit_equal(la.state_dict().at("b.slow"), original));
  Tensor g = Tensor::from_vector<double>({0.5, -1, 2}, {3});
  a.set_grad(g.clone());
  b.set_grad(g.clone());
  ranger.step();
  la.step();
  CHECK(bit_equal(ranger.state_dict().at("a.slow"), Tensor::full({3}, 2.0, {DType::f64})));
  CHECK(bit_equal(la.state_dict().at("b.slow"), original));
  CHECK(bit_equal(a, b));  // the fast steps themselves are the same RAdam
}

// ---- gradient centralisation -------------------------------------------------------------------

TEST_CASE("train/ranger: gradient centralisation of conv and fc weights") {
  Tensor conv = randn_param({3, 2, 2, 2}, 5), fc = randn_param({4, 3}, 6), bias = randn_param({4}, 7);
  Tensor gconv = Tensor::randn({3, 2, 2, 2}, 8, {DType::f64}) + 1.0;
  Tensor gfc = Tensor::randn({4, 3}, 9, {DType::f64}) - 2.0;
  Tensor gbias = Tensor::randn({4}, 10, {DType::f64}) + 3.0;
  const double b1 = 0.95;

  SUBCASE("the moments see the centralised gradient; .grad and 1-D parameters are untouched") {
    tr::Ranger opt({{"conv", conv}, {"fc", fc}, {"bias", bias}}, {.lr = 0.01});
    conv.set_grad(gconv);
    fc.set_grad(gfc);
    bias.set_grad(gbias);
    opt.step();
    auto sd = opt.state_dict();
    Tensor mc = sd.at("conv.exp_avg"), mf = sd.at("fc.exp_avg"), mb = sd.at("bias.exp_avg");
    CHECK(max_abs(mc.mean({1, 2, 3})) < 1e-16);  // each output channel's mean removed
    CHECK(max_abs(mf.mean({1})) < 1e-16);
    GS_EXPECT_CLOSE(mc, (gconv - gconv.mean({1, 2, 3}, true)) * (1 - b1), 1e-17, 1e-14);
    GS_EXPECT_CLOSE(mf, (gfc - gfc.mean({1}, true)) * (1 - b1), 1e-17, 1e-14);
    CHECK(bit_equal(mb, gbias * (1 - b1)));
    CHECK(bit_equal(conv.grad(), gconv));  // unlike the reference, .grad is left as it was
    CHECK(bit_equal(fc.grad(), gfc));
  }

  SUBCASE("row means are kept through the SGD-like first steps, and move without GC") {
    for (bool gc : {true, false}) {
      CAPTURE(gc);
      Tensor w = fc.detach().clone().requires_grad_();
      Tensor rows0 = w.detach().mean({1});
      tr::Ranger opt({{"w", w}}, {.lr = 0.05, .gradient_centralization = gc});
      for (int t = 1; t <= 5; ++t) {
        w.set_grad(Tensor::randn({4, 3}, 400 + uint64_t(t), {DType::f64}) + 1.0);
        opt.step();
      }
      double drift = max_abs(w.detach().mean({1}) - rows0);
      if (gc) CHECK(drift < 1e-15);
      else CHECK(drift > 1e-2);
    }
  }
}

// ---- state round trip ---------------------------------------------------------------------------

namespace {

// Parameters and a loss whose gradient depends on them, so any state difference would show.
struct Problem {
  tr::NamedParameters ps;
  explicit Problem(DType dt) {
    ps = {{"net.w", randn_param({3, 4}, 21, dt)}, {"net.b", randn_param({4}, 22, dt)},
          {"net.c", randn_param({2, 2}, 23, dt)}};
  }
  // Step t: c gets no gradient when t % 3 == 0 (skipped parameters keep their own step count).
  void backward(int t) {
    for (auto& [n, p] : ps) p.zero_grad();
    Tensor x = Tensor::randn({5, 3}, 500 + uint64_t(t), {DType::f64}).to(ps[0].second.dtype());
    Tensor h = tanh(matmul(x, ps[0].second) + ps[1].second);  // [5, 4]
    Tensor loss = sum(square(h - 0.25));
    if (t % 3 != 0) loss = loss + sum(sin(ps[2].second) * 0.5);
    loss.backward();
  }
};

std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("gs_optim_" + name + ".safetensors")).string();
}

}  // namespace

TEST_CASE("train/optim: N steps straight equal k steps, save, fresh optimiser, load, N-k steps") {
  const int N = 14, K = 8;  // across Ranger's rectification (t = 6) and a Lookahead sync (t = 12)
  for (DType dt : {DType::f64, DType::f32}) {
    for (Kind kind : kAllKinds) {
      const std::string dtn = dtype_name(dt), kn = kind_name(kind);
      CAPTURE(dtn);
      CAPTURE(kn);
      Problem straight(dt);
      auto opt_a = make(kind, straight.ps, 0.02);
      for (int t = 1; t <= N; ++t) {
        straight.backward(t);
        opt_a->step();
      }

      // First K steps, then model and optimiser in one safetensors file.
      const std::string path = tmp_path(std::string(dtype_name(dt)) + "_" + std::to_string(int(kind)));
      {
        Problem first(dt);
        auto opt = make(kind, first.ps, 0.02);
        for (int t = 1; t <= K; ++t) {
          first.backward(t);
          opt->step();
        }
        io::NamedTensors file;
        for (auto& [n, p] : first.ps) file.emplace_back("model." + n, io::from_tensor(p));
        for (auto& [n, s] : opt->state_dict()) file.emplace_back("optim." + n, io::from_tensor(s));
        io::save_safetensors(path, file, {{"step", std::to_string(K)}});
      }

      // A fresh process would do this: parameters and state from the file, built with a wrong lr
      // that the loaded state corrects.
      auto loaded = io::load_safetensors(path);
      std::filesystem::remove(path);
      Problem resumed(dt);
      tr::OptimizerState state;
      for (auto& [n, raw] : loaded) {
        if (n.rfind("model.", 0) == 0) {
          for (auto& [pn, p] : resumed.ps)
            if ("model." + pn == n) {
              autograd::NoGradGuard ng;
              p.copy_(io::to_tensor(raw));
            }
        } else if (n.rfind("optim.", 0) == 0) {
          state.emplace(n.substr(6), io::to_tensor(raw));
        }
      }
      auto opt_b = make(kind, resumed.ps, 123.0);
      opt_b->load_state_dict(state);
      CHECK(opt_b->lr() == 0.02);
      for (int t = K + 1; t <= N; ++t) {
        resumed.backward(t);
        opt_b->step();
      }

      for (size_t i = 0; i < straight.ps.size(); ++i) {
        CAPTURE(straight.ps[i].first);
        CHECK(bit_equal(straight.ps[i].second, resumed.ps[i].second));
      }
      auto sa = opt_a->state_dict(), sb = opt_b->state_dict();
      REQUIRE(sa.size() == sb.size());
      for (auto& [key, v] : sa) {
        CAPTURE(key);
        REQUIRE(sb.count(key));
        CHECK(bit_equal(v, sb.at(key)));
      }
      // A run that resumes from the wrong place does differ (the test can fail).
      CHECK(!bit_equal(straight.ps[0].second, Problem(dt).ps[0].second));
    }
  }
}

TEST_CASE("train/optim: state keys") {
  Tensor w = randn_param({2, 3}, 1), b = randn_param({3}, 2);
  auto keys = [](const tr::OptimizerState& s) {
    std::vector<std::string> k;
    for (auto& [n, v] : s) k.push_back(n);
    return k;
  };
  tr::Adam adam({{"w", w}, {"b", b}});
  CHECK(keys(adam.state_dict()) ==
        std::vector<std::string>{"b.exp_avg", "b.exp_avg_sq", "b.step", "beta1", "beta2", "eps", "lr", "step",
                                 "w.exp_avg", "w.exp_avg_sq", "w.step", "weight_decay"});
  tr::Ranger ranger({{"w", w}, {"b", b}});
  CHECK(keys(ranger.state_dict()) ==
        std::vector<std::string>{"b.exp_avg", "b.exp_avg_sq", "b.slow", "b.step", "beta1", "beta2", "eps",
                                 "gradient_centralization", "lookahead.alpha", "lookahead.k", "lookahead.step",
                                 "lr", "n_sma_threshold", "step", "w.exp_avg", "w.exp_avg_sq", "w.slow", "w.step",
                                 "weight_decay"});
  auto sd = ranger.state_dict();
  CHECK(sd.at("lookahead.k").to_vector<int64_t>()[0] == 6);
  CHECK(sd.at("lookahead.alpha").dtype() == DType::f64);
  CHECK(sd.at("lookahead.alpha").item() == 0.5);
  CHECK(sd.at("w.exp_avg").shape() == Shape{2, 3});
}

TEST_CASE("train/optim: load_state_dict lists every problem and changes nothing") {
  Tensor w = randn_param({2, 3}, 1), b = randn_param({3}, 2);
  tr::Adam opt({{"w", w}, {"b", b}}, {.lr = 0.5});
  w.set_grad(Tensor::ones({2, 3}, {DType::f64}));
  b.set_grad(Tensor::ones({3}, {DType::f64}));
  opt.step();
  auto before = opt.state_dict();
  std::map<std::string, Tensor> snapshot;
  for (auto& [k, v] : before) snapshot[k] = v.clone();

  SUBCASE("names and shapes") {
    Tensor w2 = randn_param({3, 2}, 3), x = randn_param({3}, 4);
    tr::Adam other({{"w", w2}, {"x", x}});
    auto state = other.state_dict();
    state["w.exp_avg_sq"] = Tensor::zeros({2, 3}, {DType::f32});  // right shape, wrong dtype
    std::string msg;
    try {
      opt.load_state_dict(state);
    } catch (const tr::OptimizerStateError& e) {
      msg = e.what();
    }
    INFO(msg);
    CHECK(msg.find("Adam::load_state_dict") != std::string::npos);
    CHECK(msg.find("8 problems") != std::string::npos);
    for (const char* s : {"missing: b.exp_avg b.exp_avg_sq b.step", "unexpected: x.exp_avg x.exp_avg_sq x.step",
                          "w.exp_avg (state float64 [3,2], expected float64 [2,3])",
                          "w.exp_avg_sq (state float32 [2,3], expected float64 [2,3])"})
      CHECK(msg.find(s) != std::string::npos);
  }
  SUBCASE("a bad hyperparameter") {
    auto state = opt.state_dict();
    std::map<std::string, Tensor> bad(state.begin(), state.end());
    bad["beta1"] = Tensor::scalar(1.5, {DType::f64});
    bad["lr"] = Tensor::scalar(0.01, {DType::f64});
    bad["w.exp_avg"] = Tensor::full({2, 3}, 7.0, {DType::f64});
    CHECK_THROWS_WITH_AS(opt.load_state_dict(bad), doctest::Contains("beta1 must be in [0, 1), got 1.5"),
                         tr::OptimizerStateError);
    CHECK(opt.lr() == 0.5);
  }
  SUBCASE("a fractional counter and a matrix where a value belongs") {
    auto state = opt.state_dict();
    std::map<std::string, Tensor> bad(state.begin(), state.end());
    bad["step"] = Tensor::scalar(2.5, {DType::f64});
    bad["eps"] = Tensor::zeros({2}, {DType::f64});
    CHECK_THROWS_WITH_AS(opt.load_state_dict(bad),
                         doctest::Contains("step (value 2.500000, expected a non-negative integer)"),
                         tr::OptimizerStateError);
    CHECK_THROWS_WITH_AS(opt.load_state_dict(bad), doctest::Contains("eps (state [2], expected a single value)"),
                         tr::OptimizerStateError);
  }
  SUBCASE("the state of another kind of optimiser") {
    tr::RAdam radam({{"w", w}, {"b", b}});
    CHECK_THROWS_WITH_AS(radam.load_state_dict(opt.state_dict()),
                         doctest::Contains("missing: n_sma_threshold gradient_centralization"),
                         tr::OptimizerStateError);
  }
  auto after = opt.state_dict();
  for (auto& [k, v] : snapshot) {
    CAPTURE(k);
    CHECK(bit_equal(after.at(k), v));
  }
}

TEST_CASE("train/optim: construction errors") {
  Tensor w = randn_param({2, 3}, 1);
  auto twice = [&] { tr::Adam o({{"w", w}, {"w", w}}); };
  auto unnamed = [&] { tr::Adam o({{"", w}}); };
  auto integer = [&] { tr::Adam o({{"i", Tensor::zeros({2}, {DType::i64})}}); };
  auto beta2 = [&] { tr::Adam o({{"w", w}}, {.beta2 = 1.0}); };
  auto k0 = [&] { tr::Lookahead o(std::make_unique<tr::Adam>(tr::NamedParameters{{"w", w}}), {.k = 0}); };
  // Lookahead of Lookahead would save two "w.slow".
  auto nested = [&] {
    tr::Lookahead o(std::make_unique<tr::Lookahead>(std::make_unique<tr::Adam>(tr::NamedParameters{{"w", w}})));
  };
  CHECK_THROWS_WITH_AS(twice(), doctest::Contains("'w' is given twice"), ValueError);
  CHECK_THROWS_WITH_AS(unnamed(), doctest::Contains("empty name"), ValueError);
  CHECK_THROWS_WITH_AS(integer(), doctest::Contains("'i' is int64, expected float32 or float64"), DTypeError);
  CHECK_THROWS_WITH_AS(beta2(), doctest::Contains("beta2 must be in [0, 1), got 1"), ValueError);
  CHECK_THROWS_WITH_AS(k0(), doctest::Contains("k must be >= 1"), ValueError);
  CHECK_THROWS_WITH_AS(nested(), doctest::Contains("two state items are named 'w.slow'"), ValueError);
  // A gradient that does not match its parameter.
  tr::Adam opt({{"w", w}});
  w.set_grad(Tensor::zeros({2, 3}, {DType::f32}));
  CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("gradient of 'w' is float32, parameter float64"), DTypeError);
}

TEST_CASE("train/optim: trainable_parameters and zero_grad") {
  nn::Linear lin(3, 2);
  auto ps = tr::trainable_parameters(lin, "enc.");
  REQUIRE(ps.size() == 2);
  CHECK(ps[0].first == "enc.weight");
  CHECK(ps[1].first == "enc.bias");
  CHECK(ps[0].second.same(lin.weight));  // handles, not copies
  tr::Adam opt(ps, {.lr = 0.1});
  Tensor before = lin.weight.detach().clone();
  Tensor y = lin.forward(Tensor::ones({1, 3}));
  sum(y).backward();
  opt.step();
  CHECK(!bit_equal(lin.weight, before));  // the module's own tensor moved
  opt.zero_grad();
  CHECK(!lin.weight.grad().defined());
  lin.requires_grad_(false);
  CHECK(tr::trainable_parameters(lin).empty());
}

// ---- PyTorch parity -----------------------------------------------------------------------------

TEST_CASE("train/optim: matches torch.optim.Adam and e4e's Ranger for 20 steps (float64)") {
  const std::string path = std::string(GS_SOURCE_ROOT) + "/tests/golden/train/optim.safetensors";
  auto raw = io::load_safetensors(path);
  std::map<std::string, Tensor> fx;
  for (auto& [n, r] : raw) fx.emplace(n, io::to_tensor(r));
  auto at = [&](const std::string& k) -> const Tensor& {
    auto it = fx.find(k);
    REQUIRE_MESSAGE(it != fx.end(), "fixture has no " << k);
    return it->second;
  };
  const std::vector<std::string> names = {"conv.weight", "fc.weight", "fc.bias"};
  const int steps = 20;
  for (const char* cs : {"adam", "adam_wd", "adam_lookahead", "radam", "ranger", "ranger_wd"}) {
    const std::string c = cs;
    CAPTURE(c);
    gstest::for_each_device([&](Device d) {
      tr::NamedParameters ps;
      for (auto& n : names) {
        Tensor p = at("param." + n).to(d).clone();
        p.requires_grad_();
        ps.emplace_back(n, p);
      }
      auto hp = [&](const char* k) { return at(c + ".hp." + k).item(); };
      std::unique_ptr<tr::Optimizer> opt;
      if (c.rfind("adam", 0) == 0) {
        tr::AdamOptions o{.lr = hp("lr"), .beta1 = hp("beta1"), .beta2 = hp("beta2"), .eps = hp("eps"),
                          .weight_decay = hp("weight_decay")};
        opt = std::make_unique<tr::Adam>(ps, o);
        if (c == "adam_lookahead")
          opt = std::make_unique<tr::Lookahead>(std::move(opt),
                                                tr::LookaheadOptions{.k = int64_t(hp("k")), .alpha = hp("alpha")});
      } else if (c == "radam") {
        opt = std::make_unique<tr::RAdam>(
            ps, tr::RAdamOptions{.lr = hp("lr"), .beta1 = hp("beta1"), .beta2 = hp("beta2"), .eps = hp("eps"),
                                 .weight_decay = hp("weight_decay"), .n_sma_threshold = hp("n_sma_threshold"),
                                 .gradient_centralization = hp("gradient_centralization") != 0});
      } else {
        opt = std::make_unique<tr::Ranger>(
            ps, tr::RangerOptions{.lr = hp("lr"), .alpha = hp("alpha"), .k = int64_t(hp("k")),
                                  .n_sma_threshold = hp("n_sma_threshold"), .beta1 = hp("beta1"),
                                  .beta2 = hp("beta2"), .eps = hp("eps"), .weight_decay = hp("weight_decay"),
                                  .gradient_centralization = hp("gradient_centralization") != 0});
      }
      double worst = 0;
      for (int t = 1; t <= steps; ++t) {
        for (auto& [n, p] : ps) p.set_grad(at("grad." + std::to_string(t) + "." + n).to(d));
        opt->step();
        for (auto& [n, p] : ps) {
          const Tensor& want = at(c + "." + std::to_string(t) + "." + n);
          auto r = gstest::compare(p, want, {0.0, 1e-12});
          worst = std::max(worst, r.worst_ratio * 1e-12);
          INFO("step " << t << " " << n << ": " << r.a_val << " vs " << r.b_val);
          CHECK(r.ok);
        }
      }
      auto sd = opt->state_dict();
      for (auto& [k, want] : fx) {
        const std::string prefix = c + ".final.";
        if (k.rfind(prefix, 0) != 0) continue;
        const std::string key = k.substr(prefix.size());
        CAPTURE(key);
        REQUIRE(sd.count(key));
        auto r = gstest::compare(sd.at(key), want, {1e-300, 1e-12});
        worst = std::max(worst, r.worst_ratio * 1e-12);
        CHECK(r.ok);
      }
      MESSAGE(c << " on " << std::string(d.is_cuda() ? "cuda" : "cpu") << ": worst relative error " << worst);
    });
  }
}
