// selective_attention: PyTorch fixtures (dense attention + top-k threshold mask), closed-form tie
// cases, float64 finite differences (first and second order), fused vs unfused, NaN-poisoned
// kernel outputs, errors, CPU vs CUDA on awkward sizes and with NaN in v / dout (the CUDA side is
// skipped visibly without a GPU).
#include <cmath>
#include <limits>

#include "backend/selective_attention_kernels.hpp"
#include "gradstyle/ops/selective_attention.hpp"
#include "ops/kernel_fixture.hpp"
#include "support/harness.hpp"

using namespace gradstyle;

namespace {

struct Grads {
  Tensor out, dq, dk, dv;
};

// Output and input gradients of <f(q,k,v), gy>.
template <class F>
Grads run_with_grads(F f, const Tensor& q0, const Tensor& k0, const Tensor& v0, const Tensor& gy) {
  Tensor q = q0.detach().clone().requires_grad_(), k = k0.detach().clone().requires_grad_();
  Tensor v = v0.detach().clone().requires_grad_();
  Tensor y = f(q, k, v);
  (y * gy).sum().backward();
  return {y.detach(), q.grad(), k.grad(), v.grad()};
}

Tensor integer_tensor(const Shape& s, uint64_t seed, int lo, int hi, DType dt = DType::f32) {
  auto u = Tensor::rand(s, seed, {DType::f64}).to_vector<double>();
  std::vector<double> r(u.size());
  for (size_t i = 0; i < u.size(); ++i) r[i] = double(lo + std::min(hi - lo, int(u[i] * (hi - lo + 1))));
  return Tensor::from_vector(r, s).to(dt);
}

}  // namespace

TEST_CASE("ops/selective_attention: matches PyTorch dense + top-k threshold fixtures") {
  for (const char* name : {"attn_basic", "attn_cross", "attn_ties", "attn_k1", "attn_kL", "attn_L64"}) {
    auto fx = gstest::load_kernel_fixture(name);
    const double mu = fx.params["mu"];
    const int64_t heads = fx.params["heads"];
    const bool f32_fixture = fx.tensors.at("q").dtype() == DType::f32;
    CAPTURE(name);
    CHECK(selective_topk(mu, fx.tensors.at("k").size(1)) == fx.params["k_top"].get<int64_t>());
    for (DType dt : {DType::f64, DType::f32}) {
      CAPTURE(dtype_name(dt));
      const bool tight = dt == DType::f64 && !f32_fixture;
      const double atol = tight ? 1e-12 : 2e-5, rtol = tight ? 1e-10 : 1e-4;
      Tensor q = fx.get("q", dt), k = fx.get("k", dt), v = fx.get("v", dt), gy = fx.get("gy", dt);
      auto st = selective_attention_with_stats(q, k, v, mu, heads);
      GS_EXPECT_CLOSE(st.out, fx.get("y", dt), atol, rtol);
      GS_EXPECT_CLOSE(st.tau, fx.get("tau", dt), atol, rtol);
      GS_EXPECT_CLOSE(st.lse, fx.get("lse", dt), atol, rtol);
      auto fused = [&](const Tensor& a, const Tensor& b, const Tensor& c) { return selective_attention(a, b, c, mu, heads); };
      auto unfused = [&](const Tensor& a, const Tensor& b, const Tensor& c) {
        return selective_attention_unfused(a, b, c, mu, heads);
      };
      for (int variant = 0; variant < 2; ++variant) {
        CAPTURE(variant);
        Grads g = variant == 0 ? run_with_grads(fused, q, k, v, gy) : run_with_grads(unfused, q, k, v, gy);
        GS_EXPECT_CLOSE(g.out, fx.get("y", dt), atol, rtol);
        GS_EXPECT_CLOSE(g.dq, fx.get("grad_q", dt), atol, rtol);
        GS_EXPECT_CLOSE(g.dk, fx.get("grad_k", dt), atol, rtol);
        GS_EXPECT_CLOSE(g.dv, fx.get("grad_v", dt), atol, rtol);
      }
    }
  }
}

TEST_CASE("ops/selective_attention: tie rule keeps every score equal to the threshold") {
  // One head, d = 1 (scale 1): scores = q * k = [3, 1, 2, 2, 2, 0]. k_top = ceil(0.3*6) = 2, so
  // tau = 2 and the three tied 2s are all kept: 4 keys survive, not 2.
  Tensor q = Tensor::from_vector<double>({1}, {1, 1, 1});
  Tensor k = Tensor::from_vector<double>({3, 1, 2, 2, 2, 0}, {1, 6, 1});
  Tensor v = Tensor::from_vector<double>({10, 20, 30, 40, 50, 60}, {1, 6, 1});
  CHECK(selective_topk(0.3, 6) == 2);
  auto st = selective_attention_with_stats(q, k, v, 0.3, 1);
  const double e3 = std::exp(3.0), e2 = std::exp(2.0), z = e3 + 3 * e2;
  GS_EXPECT_CLOSE(st.out, Tensor::from_vector<double>({(10 * e3 + (30 + 40 + 50) * e2) / z}, {1, 1, 1}), 1e-12, 1e-12);
  CHECK(st.tau.item() == 2.0);
  CHECK(st.lse.item() == doctest::Approx(std::log(z)).epsilon(1e-14));
  // k_top = 1 with a tie at the top keeps both maxima.
  Tensor k2 = Tensor::from_vector<double>({3, 1, 3, 2, 2, 0}, {1, 6, 1});
  GS_EXPECT_CLOSE(selective_attention(q, k2, v, 0.1, 1), Tensor::from_vector<double>({20.0}, {1, 1, 1}), 1e-12, 0);
  // All scores equal (q = 0): every key is kept whatever mu is, giving the mean of v.
  for (double mu : {0.01, 0.5, 1.0}) {
    Tensor o = selective_attention(Tensor::zeros({1, 2, 1}, {DType::f64}), k, v, mu, 1);
    GS_EXPECT_CLOSE(o, Tensor::full({1, 2, 1}, 35.0, {DType::f64}), 1e-12, 0);
  }
  // The unfused formulation applies the same rule.
  GS_EXPECT_CLOSE(selective_attention_unfused(q, k, v, 0.3, 1), st.out, 1e-12, 1e-12);
}

TEST_CASE("ops/selective_attention: k = 1 returns the arg-max value row; k = L is dense softmax attention") {
  Tensor q = Tensor::randn({2, 7, 16}, 11, {DType::f64}), k = Tensor::randn({2, 9, 16}, 12, {DType::f64});
  Tensor v = Tensor::randn({2, 9, 16}, 13, {DType::f64});
  const int64_t H = 2, D = 8;
  // dense reference from basic ops
  auto heads = [&](const Tensor& x) { return permute(reshape(x, {x.size(0), x.size(1), H, D}), {0, 2, 1, 3}); };
  Tensor s = matmul(heads(q), transpose(heads(k), -1, -2)) / std::sqrt(double(D));  // [2, H, 7, 9]
  Tensor dense = reshape(permute(matmul(softmax(s, -1), heads(v)), {0, 2, 1, 3}), {2, 7, 16});
  GS_EXPECT_CLOSE(selective_attention(q, k, v, 1.0, H), dense, 1e-12, 1e-10);
  // k = 1: the output row is exactly v of the best key (weight exp(0)/1 = 1).
  Tensor o1 = selective_attention(q, k, v, 0.01, H);
  auto sv = s.to_vector<double>();
  auto vv = v.to_vector<double>();
  auto ov = o1.to_vector<double>();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < 7; ++i) {
        int64_t best = 0;
        for (int64_t j = 1; j < 9; ++j)
          if (sv[size_t(((b * H + h) * 7 + i) * 9 + j)] > sv[size_t(((b * H + h) * 7 + i) * 9 + best)]) best = j;
        for (int64_t c = 0; c < D; ++c)
          CHECK(ov[size_t((b * 7 + i) * 16 + h * D + c)] == vv[size_t((b * 9 + best) * 16 + h * D + c)]);
      }
}

TEST_CASE("ops/selective_attention: float64 gradcheck (fused backward) and gradgradcheck (create_graph)") {
  Tensor q = Tensor::randn({2, 5, 6}, 21, {DType::f64}), k = Tensor::randn({2, 7, 6}, 22, {DType::f64});
  Tensor v = Tensor::randn({2, 7, 6}, 23, {DType::f64});
  gstest::Fn f = [](const std::vector<Tensor>& x) { return selective_attention(x[0], x[1], x[2], 0.4, 2); };
  gstest::gradcheck(f, {q, k, v});
  gstest::gradgradcheck(f, {q, k, v});
  // Strided inputs: q, k, v as slices of one fused [B, L, 3C] projection (no copy is made).
  Tensor qkv = Tensor::randn({2, 7, 18}, 24, {DType::f64});
  gstest::Fn fs = [](const std::vector<Tensor>& x) {
    Tensor t = x[0];
    return selective_attention(narrow(t, 2, 0, 6), narrow(t, 2, 6, 6), narrow(t, 2, 12, 6), 0.5, 3);
  };
  gstest::gradcheck(fs, {qkv});
  // The unfused formulation is itself differentiable to second order.
  gstest::Fn fu = [](const std::vector<Tensor>& x) { return selective_attention_unfused(x[0], x[1], x[2], 0.4, 2); };
  gstest::gradcheck(fu, {q, k, v});
}

TEST_CASE("ops/selective_attention: fused equals unfused at L = 256 (float32)") {
  Tensor q = Tensor::randn({1, 256, 128}, 31), k = Tensor::randn({1, 256, 128}, 32), v = Tensor::randn({1, 256, 128}, 33);
  Tensor gy = Tensor::randn({1, 256, 128}, 34);
  auto fused = [](const Tensor& a, const Tensor& b, const Tensor& c) { return selective_attention(a, b, c, 0.25, 2); };
  auto unfused = [](const Tensor& a, const Tensor& b, const Tensor& c) {
    return selective_attention_unfused(a, b, c, 0.25, 2);
  };
  Grads a = run_with_grads(fused, q, k, v, gy), b = run_with_grads(unfused, q, k, v, gy);
  GS_EXPECT_CLOSE(a.out, b.out, 1e-5, 1e-4);
  GS_EXPECT_CLOSE(a.dq, b.dq, 1e-5, 1e-4);
  GS_EXPECT_CLOSE(a.dk, b.dk, 1e-5, 1e-4);
  GS_EXPECT_CLOSE(a.dv, b.dv, 1e-5, 1e-4);
  // and the float64 oracle at the same size
  Grads c = run_with_grads(fused, q.to(DType::f64), k.to(DType::f64), v.to(DType::f64), gy.to(DType::f64));
  GS_EXPECT_CLOSE(a.out, c.out, 1e-5, 1e-4);
  GS_EXPECT_CLOSE(a.dk, c.dk, 1e-5, 1e-4);
}

TEST_CASE("ops/selective_attention: kernels overwrite NaN-poisoned outputs") {
  gstest::for_each_device([](Device dev) {
    CAPTURE(dev.str());
    const int64_t B = 2, Lq = 37, Lk = 45, H = 2, D = 32, C = H * D;
    Tensor q = Tensor::randn({B, Lq, C}, 41, {DType::f32, dev}), k = Tensor::randn({B, Lk, C}, 42, {DType::f32, dev});
    Tensor v = Tensor::randn({B, Lk, C}, 43, {DType::f32, dev}), go = Tensor::randn({B, Lq, C}, 44, {DType::f32, dev});
    backend::AttnGeometry g;
    g.batch = B, g.lq = Lq, g.lk = Lk, g.heads = H, g.dk = D, g.k_top = selective_topk(0.25, Lk);
    g.scale = 1.0 / std::sqrt(double(D));
    g.q_sb = g.o_sb = g.g_sb = Lq * C, g.q_sl = g.o_sl = g.g_sl = C;
    g.k_sb = g.v_sb = Lk * C, g.k_sl = g.v_sl = C;
    Tensor out = gstest::poison(Tensor::empty({B, Lq, C}, {DType::f32, dev}));
    Tensor tau = gstest::poison(Tensor::empty({B, H, Lq}, {DType::f32, dev}));
    Tensor lse = gstest::poison(Tensor::empty({B, H, Lq}, {DType::f32, dev}));
    using backend::make_view;
    GS_DISPATCH(dev, selective_attention_forward, g, make_view(q), make_view(k), make_view(v), make_view(out),
                make_view(tau), make_view(lse));
    auto st = selective_attention_with_stats(q.cpu(), k.cpu(), v.cpu(), 0.25, H);
    GS_EXPECT_CLOSE(out.cpu(), st.out, 1e-5, 1e-4);
    GS_EXPECT_CLOSE(tau.cpu(), st.tau, 1e-5, 1e-4);
    GS_EXPECT_CLOSE(lse.cpu(), st.lse, 1e-5, 1e-4);
    Tensor dq = gstest::poison(Tensor::empty({B, Lq, C}, {DType::f32, dev}));
    Tensor dk = gstest::poison(Tensor::empty({B, Lk, C}, {DType::f32, dev}));
    Tensor dv = gstest::poison(Tensor::empty({B, Lk, C}, {DType::f32, dev}));
    GS_DISPATCH(dev, selective_attention_backward, g, make_view(q), make_view(k), make_view(v), make_view(out),
                make_view(go), make_view(tau), make_view(lse), make_view(dq), make_view(dk), make_view(dv));
    Grads ref = run_with_grads([](const Tensor& a, const Tensor& b, const Tensor& c) {
      return selective_attention_unfused(a, b, c, 0.25, 2);
    }, q.cpu().to(DType::f64), k.cpu().to(DType::f64), v.cpu().to(DType::f64), go.cpu().to(DType::f64));
    GS_EXPECT_CLOSE(dq.cpu(), ref.dq.to(DType::f32), 1e-5, 1e-4);
    GS_EXPECT_CLOSE(dk.cpu(), ref.dk.to(DType::f32), 1e-5, 1e-4);
    GS_EXPECT_CLOSE(dv.cpu(), ref.dv.to(DType::f32), 1e-5, 1e-4);
  });
}

TEST_CASE("ops/selective_attention: a NaN score gives a NaN row, other rows are unaffected") {
  Tensor q = Tensor::randn({1, 4, 8}, 51, {DType::f64}), k = Tensor::randn({1, 6, 8}, 52, {DType::f64});
  Tensor v = Tensor::randn({1, 6, 8}, 53, {DType::f64});
  auto qv = q.to_vector<double>();
  qv[1 * 8 + 2] = std::numeric_limits<double>::quiet_NaN();  // row 1, head 0 (channels 0..3)
  Tensor qn = Tensor::from_vector(qv, {1, 4, 8});
  auto st = selective_attention_with_stats(qn, k, v, 0.5, 2);
  auto o = st.out.to_vector<double>(), ref = selective_attention(q, k, v, 0.5, 2).to_vector<double>();
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t c = 0; c < 8; ++c) {
      const double x = o[size_t(i * 8 + c)];
      if (i == 1 && c < 4) CHECK(std::isnan(x));
      else CHECK(x == ref[size_t(i * 8 + c)]);
    }
  CHECK(std::isnan(st.tau.to_vector<double>()[1]));
}

TEST_CASE("ops/selective_attention: errors name the op and the shapes") {
  Tensor q = Tensor::randn({2, 3, 8}, 1), k = Tensor::randn({2, 4, 8}, 2), v = Tensor::randn({2, 4, 8}, 3);
  GS_CHECK_THROWS_WITH(selective_attention(q, Tensor::randn({2, 4, 6}, 2), v, 0.5, 2), ShapeError,
                       "selective_attention", "[2,4,6]");
  GS_CHECK_THROWS_WITH(selective_attention(q, k, Tensor::randn({2, 5, 8}, 3), 0.5, 2), ShapeError, "[2,5,8]");
  GS_CHECK_THROWS_WITH(selective_attention(q, k, v, 0.5, 3), ShapeError, "not divisible", "3 heads");
  GS_CHECK_THROWS_WITH(selective_attention(reshape(q, {6, 8}), k, v, 0.5, 2), ShapeError, "[B, L, C]");
  GS_CHECK_THROWS_WITH(selective_attention(q, k, v, 0.0, 2), ValueError, "mu must be in (0, 1]");
  GS_CHECK_THROWS_WITH(selective_attention(q, k, v, 1.5, 2), ValueError, "mu");
  GS_CHECK_THROWS_WITH(selective_attention(q, k, v, 0.5, 0), ValueError, "heads");
  GS_CHECK_THROWS_WITH(selective_attention(q, k.to(DType::f64), v, 0.5, 2), DTypeError, "selective_attention");
  GS_CHECK_THROWS_WITH(selective_attention(q, Tensor::randn({2, 0, 8}, 2), Tensor::randn({2, 0, 8}, 3), 0.5, 2),
                       ValueError, "at least one key");
  GS_CHECK_THROWS_WITH(rows_kth_largest(k, 9), ValueError, "rows_kth_largest", "[2,4,8]");
}

TEST_CASE("ops/selective_attention: rows_kth_largest counts ties with multiplicity") {
  Tensor x = Tensor::from_vector<float>({5, 1, 5, 3, 2, 2, 2, 9}, {2, 4});
  GS_EXPECT_CLOSE(rows_kth_largest(x, 1), Tensor::from_vector<float>({5, 9}, {2, 1}), 0, 0);
  GS_EXPECT_CLOSE(rows_kth_largest(x, 2), Tensor::from_vector<float>({5, 2}, {2, 1}), 0, 0);
  GS_EXPECT_CLOSE(rows_kth_largest(x, 3), Tensor::from_vector<float>({3, 2}, {2, 1}), 0, 0);
  GS_EXPECT_CLOSE(rows_kth_largest(x, 4), Tensor::from_vector<float>({1, 2}, {2, 1}), 0, 0);
}

TEST_CASE("ops/selective_attention: CPU vs CUDA on awkward sizes, k = 1, k = L and exact ties") {
  struct Case {
    int64_t B, Lq, Lk, heads, d;
    double mu;
    bool ties;
  };
  // Lk not a multiple of the 32-row / 128-key tiles; k = 1 and k = L; tied integer scores
  // (exact in float32, so the masks must agree bit for bit); the model's L = 1024 shape.
  for (Case c : {Case{2, 33, 33, 2, 64, 0.25, false}, Case{1, 100, 77, 1, 32, 0.01, false},
                 Case{1, 65, 129, 2, 64, 1.0, false}, Case{2, 40, 50, 2, 64, 0.2, true},
                 Case{1, 1024, 1024, 8, 64, 0.25, false}, Case{1, 5, 1, 1, 64, 0.5, false}}) {
    CAPTURE(c.Lq);
    CAPTURE(c.Lk);
    CAPTURE(c.mu);
    const int64_t C = c.heads * c.d;
    Tensor q = c.ties ? integer_tensor({c.B, c.Lq, C}, 61, -2, 2) : Tensor::randn({c.B, c.Lq, C}, 61);
    Tensor k = c.ties ? integer_tensor({c.B, c.Lk, C}, 62, -1, 1) : Tensor::randn({c.B, c.Lk, C}, 62);
    Tensor v = Tensor::randn({c.B, c.Lk, C}, 63);
    gstest::expect_cpu_cuda_match(
        [c](const std::vector<Tensor>& x) { return selective_attention(x[0], x[1], x[2], c.mu, c.heads); },
        {q, k, v}, {1e-5, 1e-4});
    if (cuda_available()) {
      // the per-row thresholds are the same value on both devices (same score arithmetic)
      auto a = selective_attention_with_stats(q, k, v, c.mu, c.heads);
      auto b = selective_attention_with_stats(q.to(Device::cuda()), k.to(Device::cuda()), v.to(Device::cuda()), c.mu,
                                              c.heads);
      GS_EXPECT_CLOSE(b.tau.cpu(), a.tau, 0, 0);
    }
  }
}

namespace {

// NaN where `ref` is NaN and nowhere else; finite elements within rtol/atol.
void expect_same_nan_pattern(const Tensor& got, const Tensor& ref, double rtol, double atol) {
  REQUIRE(got.shape() == ref.shape());
  auto g = got.cpu().to_vector<double>(), r = ref.cpu().to_vector<double>();
  int64_t bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool ok = std::isnan(r[i]) ? std::isnan(g[i])
                                     : !std::isnan(g[i]) && std::abs(g[i] - r[i]) <= atol + rtol * std::abs(r[i]);
    if (!ok && bad++ < 5) MESSAGE("element " << i << ": got " << g[i] << ", expected " << r[i]);
  }
  CHECK(bad == 0);
}

bool isnan_at(const std::vector<float>& x, int64_t i) { return std::isnan(x[size_t(i)]); }

}  // namespace

// A non-finite value in v (or dout) must reach exactly the query rows whose top-k keeps that key:
// masked keys are skipped, not multiplied by p = 0 (0 * NaN = NaN would poison every row). The CPU
// side runs everywhere and pins the semantics; the CUDA side (skipped visibly without a GPU) must
// give the same NaN pattern and the same finite values.
TEST_CASE("ops/selective_attention: NaN in v or dout reaches only the rows that keep that key") {
  const int64_t B = 1, Lq = 40, Lk = 50, H = 2, D = 32, C = H * D;
  const double mu = 0.2;  // k_top = 10 of 50 keys
  const int64_t j0 = 7, c0 = 3, i0 = 11;  // key j0 / query row i0, channel c0 of head 0
  Tensor q = Tensor::randn({B, Lq, C}, 71), k = Tensor::randn({B, Lk, C}, 72);
  Tensor v = Tensor::randn({B, Lk, C}, 73), gy = Tensor::randn({B, Lq, C}, 74);
  auto attn = [mu](const Tensor& a, const Tensor& b, const Tensor& c) { return selective_attention(a, b, c, mu, 2); };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto with_value = [](const Tensor& t, int64_t idx, float x) {
    auto d = t.to_vector<float>();
    d[size_t(idx)] = x;
    return Tensor::from_vector(d, t.shape());
  };

  // rows keeping key j0 in head 0: exactly the rows whose output channel c0 moves with v[j0, c0]
  const Tensor out0 = attn(q, k, v);
  const Tensor v_bumped = with_value(v, j0 * C + c0, v.to_vector<float>()[size_t(j0 * C + c0)] + 1.0f);
  auto o0 = out0.to_vector<float>(), o1 = attn(q, k, v_bumped).to_vector<float>();
  std::vector<bool> keeps_j0(static_cast<size_t>(Lq), false);
  int64_t n_keep = 0;
  for (int64_t i = 0; i < Lq; ++i) {
    keeps_j0[size_t(i)] = o0[size_t(i * C + c0)] != o1[size_t(i * C + c0)];
    n_keep += keeps_j0[size_t(i)] ? 1 : 0;
  }
  REQUIRE(n_keep > 0);
  REQUIRE(n_keep < Lq);  // some rows mask j0 out: the case this test is about

  SUBCASE("NaN in v") {
    const Tensor vn = with_value(v, j0 * C + c0, nan);
    Grads cpu = run_with_grads(attn, q, k, vn, gy);
    auto o = cpu.out.to_vector<float>(), dq = cpu.dq.to_vector<float>(), dv = cpu.dv.to_vector<float>();
    for (int64_t i = 0; i < Lq; ++i)
      for (int64_t c = 0; c < C; ++c) {
        CAPTURE(i);
        CAPTURE(c);
        // out: only channel c0 of the rows that keep j0; everything else bit-identical
        if (c == c0) CHECK(isnan_at(o, i * C + c) == bool(keeps_j0[size_t(i)]));
        else CHECK(o[size_t(i * C + c)] == o0[size_t(i * C + c)]);
        // dq: the rows that keep j0 see a NaN delta in head 0; head 1 stays finite
        CHECK(isnan_at(dq, i * C + c) == (c < D && keeps_j0[size_t(i)]));
      }
    for (float x : dv) CHECK_FALSE(std::isnan(x));  // dv = P^T dout never reads v
    if (cuda_available()) {
      const Device cu = Device::cuda();
      Grads gpu = run_with_grads(attn, q.to(cu), k.to(cu), vn.to(cu), gy.to(cu));
      expect_same_nan_pattern(gpu.out, cpu.out, 1e-4, 1e-5);
      expect_same_nan_pattern(gpu.dq, cpu.dq, 1e-4, 1e-5);
      expect_same_nan_pattern(gpu.dk, cpu.dk, 1e-4, 1e-5);
      expect_same_nan_pattern(gpu.dv, cpu.dv, 1e-4, 1e-5);
    } else {
      MESSAGE("CUDA side skipped: " << std::string(cuda_built() ? "no GPU present" : "built without CUDA"));
    }
  }

  SUBCASE("NaN in dout") {
    // keys kept by row i0 in head 0: dv[j, c0] = p[i0, j] for a dout that is one-hot at (i0, c0)
    const Tensor onehot = with_value(Tensor::zeros({B, Lq, C}), i0 * C + c0, 1.0f);
    auto p_row = run_with_grads(attn, q, k, v, onehot).dv.to_vector<float>();
    std::vector<bool> kept(static_cast<size_t>(Lk), false);
    int64_t n_kept = 0;
    for (int64_t j = 0; j < Lk; ++j) {
      kept[size_t(j)] = p_row[size_t(j * C + c0)] != 0.0f;
      n_kept += kept[size_t(j)] ? 1 : 0;
    }
    REQUIRE(n_kept == selective_topk(mu, Lk));

    const Tensor gn = with_value(gy, i0 * C + c0, nan);
    Grads cpu = run_with_grads(attn, q, k, v, gn);
    auto dq = cpu.dq.to_vector<float>(), dk = cpu.dk.to_vector<float>(), dv = cpu.dv.to_vector<float>();
    for (int64_t j = 0; j < Lk; ++j)
      for (int64_t c = 0; c < C; ++c) {
        CAPTURE(j);
        CAPTURE(c);
        const bool head0 = c < D;
        CHECK(isnan_at(dk, j * C + c) == (head0 && kept[size_t(j)]));  // ds[i0, j] is NaN for kept j
        CHECK(isnan_at(dv, j * C + c) == (c == c0 && kept[size_t(j)]));  // p[i0, j] * dout[i0, c0]
      }
    for (int64_t i = 0; i < Lq; ++i)
      for (int64_t c = 0; c < C; ++c) CHECK(isnan_at(dq, i * C + c) == (i == i0 && c < D));
    CHECK_FALSE(std::isnan(cpu.out.to_vector<float>()[0]));  // the forward does not read dout
    if (cuda_available()) {
      const Device cu = Device::cuda();
      Grads gpu = run_with_grads(attn, q.to(cu), k.to(cu), v.to(cu), gn.to(cu));
      expect_same_nan_pattern(gpu.dq, cpu.dq, 1e-4, 1e-5);
      expect_same_nan_pattern(gpu.dk, cpu.dk, 1e-4, 1e-5);
      expect_same_nan_pattern(gpu.dv, cpu.dv, 1e-4, 1e-5);
    } else {
      MESSAGE("CUDA side skipped: " << std::string(cuda_built() ? "no GPU present" : "built without CUDA"));
    }
  }
}

TEST_CASE("ops/selective_attention: the weights reproduce the output, keep k keys per row and sum to 1") {
  const int64_t B = 2, L = 12, C = 8, H = 2;
  const double mu = 0.25;
  Tensor q = Tensor::randn({B, L, C}, 71, {DType::f64}), k = Tensor::randn({B, L, C}, 72, {DType::f64});
  Tensor v = Tensor::randn({B, L, C}, 73, {DType::f64});
  const Tensor w = selective_attention_weights(q, k, mu, H);
  REQUIRE(w.shape() == Shape{B, H, L, L});
  CHECK_FALSE(w.requires_grad());
  const std::vector<double> wv = w.to_vector<double>();
  const int64_t ktop = selective_topk(mu, L);
  for (int64_t r = 0; r < B * H * L; ++r) {
    double sum = 0;
    int64_t kept = 0;
    for (int64_t j = 0; j < L; ++j) {
      sum += wv[size_t(r * L + j)];
      kept += wv[size_t(r * L + j)] > 0;
    }
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(kept == ktop);  // random scores: no ties
  }
  // out = merge_heads(w @ v_heads), the fused kernel's result.
  const Tensor vh = permute(reshape(v, {B, L, H, C / H}), {0, 2, 1, 3});
  const Tensor rebuilt = reshape(permute(matmul(w, vh), {0, 2, 1, 3}), {B, L, C});
  GS_EXPECT_CLOSE(rebuilt, selective_attention(q, k, v, mu, H), 1e-12, 1e-12);
  GS_CHECK_THROWS_WITH(selective_attention_weights(q, reshape(k, {B, L, 2, 4}), mu, H), ShapeError,
                       "selective_attention_weights");
}
