#pragma once
// The op test harness shared by every test file (the habit of ggml's test-backend-ops):
//  * expect_close(a, b, tol)            — per-op tolerance |a-b| <= atol + rtol*|b|, reporting the
//                                         worst element as a fraction of its threshold;
//  * gradcheck(f, inputs, ...)          — float64 central finite differences of sum(f(x) * w)
//                                         (w a fixed random weight) against autograd;
//  * gradgradcheck(f, inputs, ...)      — the same for the gradient itself built with
//                                         create_graph=true (second order);
//  * poison(t)                          — fill with NaN (outputs must overwrite every element);
//  * for_each_device(fn)                — runs fn on the CPU and, when a GPU is present, on CUDA;
//                                         otherwise reports the CUDA case as skipped, visibly;
//  * expect_cpu_cuda_match(f, inputs)   — same seeded inputs on both devices, compare outputs.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "gradstyle/gradstyle.hpp"

namespace gstest {

using namespace gradstyle;

struct Tol {
  double atol = 1e-5;
  double rtol = 1e-4;
};

struct CloseReport {
  bool ok = true;
  double worst_ratio = 0;  // max |a-b| / (atol + rtol*|b|)
  int64_t worst_index = -1;
  double a_val = 0, b_val = 0;
  std::string shape_msg;
};

// Element i mismatches by ratio = |a-b| / (atol + rtol*|b|) (a is the result, b the reference).
// Non-finite references must be matched exactly (the same infinity, NaN where NaN); a non-finite
// result where the reference is finite is an infinite ratio. The ratio is never NaN, so the
// worst element cannot be overwritten by a later, smaller one.
inline double mismatch_ratio(double a, double b, Tol tol) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  if (!std::isfinite(b)) {
    const bool same = std::isnan(b) ? std::isnan(a) : a == b;
    return same ? 0.0 : inf;
  }
  if (!std::isfinite(a)) return inf;
  const double d = std::abs(a - b);
  if (d == 0.0) return 0.0;
  const double thr = tol.atol + tol.rtol * std::abs(b);
  return thr > 0 ? d / thr : inf;
}

inline CloseReport compare(const Tensor& a, const Tensor& b, Tol tol) {
  CloseReport r;
  if (a.shape() != b.shape()) {
    r.ok = false;
    r.shape_msg = "shape " + shape_str(a.shape()) + " vs " + shape_str(b.shape());
    return r;
  }
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i) {
    const double ratio = mismatch_ratio(va[i], vb[i], tol);
    if (ratio > r.worst_ratio) {  // strict: the first of equally bad elements is reported
      r.worst_ratio = ratio;
      r.worst_index = int64_t(i);
      r.a_val = va[i];
      r.b_val = vb[i];
    }
  }
  r.ok = r.worst_ratio <= 1.0;
  return r;
}

// Asserts closeness; on failure prints the worst element and its ratio to the threshold.
#define GS_EXPECT_CLOSE(a, b, ...)                                                                        \
  do {                                                                                                     \
    auto _r = ::gstest::compare((a), (b), ::gstest::Tol{__VA_ARGS__});                                     \
    INFO("compare " #a " vs " #b ": " << (_r.shape_msg.empty() ? "" : _r.shape_msg) << " worst at flat index " \
         << _r.worst_index << ": " << _r.a_val << " vs " << _r.b_val << " = " << 100.0 * _r.worst_ratio     \
         << "% of threshold");                                                                             \
    CHECK(_r.ok);                                                                                          \
  } while (0)

inline Tensor poison(Tensor t) {
  autograd::NoGradGuard ng;
  t.fill_(std::numeric_limits<double>::quiet_NaN());
  return t;
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Makes float64 leaf copies of the inputs that require grad.
inline std::vector<Tensor> f64_leaves(const std::vector<Tensor>& xs) {
  std::vector<Tensor> r;
  for (const Tensor& x : xs) {
    Tensor y = x.detach().to(DType::f64).clone();
    r.push_back(y.requires_grad_());
  }
  return r;
}

// Finite-difference check of d sum(f(x)*w) / dx for every input. Inputs are converted to float64.
// Also checks that gradients accumulate onto a non-zero starting .grad.
inline void gradcheck(const Fn& f, const std::vector<Tensor>& inputs, double eps = 1e-6, double atol = 1e-6,
                      double rtol = 1e-4, uint64_t seed = 1234) {
  auto xs = f64_leaves(inputs);
  Tensor y = f(xs);
  Tensor w = Tensor::randn(y.shape(), seed, {DType::f64, y.device()});
  // Start every .grad at a known non-zero value; backward must add to it.
  for (auto& x : xs) x.set_grad(Tensor::full(x.shape(), 0.25, {DType::f64, x.device()}));
  // An output that does not depend on the inputs through the graph (e.g. the gradient of a linear
  // op, in gradgradcheck) has a zero analytic gradient: .grad stays at its starting value.
  Tensor loss = (y * w).sum();
  if (loss.requires_grad()) loss.backward();
  for (size_t k = 0; k < xs.size(); ++k) {
    Tensor analytic = xs[k].grad() - 0.25;
    auto base = xs[k].detach().to_vector<double>();
    std::vector<double> numeric(base.size());
    for (size_t i = 0; i < base.size(); ++i) {
      auto probe = [&](double delta) {
        autograd::NoGradGuard ng;
        std::vector<Tensor> ys;
        for (size_t j = 0; j < xs.size(); ++j) {
          if (j != k) {
            ys.push_back(xs[j].detach());
            continue;
          }
          auto v = base;
          v[i] += delta;
          ys.push_back(Tensor::from_vector(v, xs[k].shape()).to(xs[k].device()));
        }
        return (f(ys) * w).sum().item();
      };
      numeric[i] = (probe(eps) - probe(-eps)) / (2 * eps);
    }
    Tensor num = Tensor::from_vector(numeric, xs[k].shape());
    INFO("gradcheck input " << k << " shape " << shape_str(xs[k].shape()));
    GS_EXPECT_CLOSE(analytic.cpu(), num, atol, rtol);
  }
}

// Second-order check: g(x) = grad of sum(f(x)*w) w.r.t. all inputs (built with create_graph), then
// gradcheck of sum_k <g_k, v_k> — exactly what an R1 penalty exercises.
inline void gradgradcheck(const Fn& f, const std::vector<Tensor>& inputs, double eps = 1e-6, double atol = 1e-5,
                          double rtol = 1e-3, uint64_t seed = 4321) {
  Tensor probe_y;
  {
    autograd::NoGradGuard ng;
    auto xs = f64_leaves(inputs);
    probe_y = f(xs);
  }
  Tensor w = Tensor::randn(probe_y.shape(), seed, {DType::f64, probe_y.device()});
  std::vector<Tensor> vs;
  for (size_t k = 0; k < inputs.size(); ++k)
    vs.push_back(Tensor::randn(inputs[k].shape(), seed + 1 + k, {DType::f64, inputs[k].device()}));
  Fn gfun = [f, w, vs](const std::vector<Tensor>& xs_in) {
    std::vector<Tensor> xs;
    bool fresh = !autograd::is_grad_enabled();
    autograd::EnableGradGuard eg(true);
    for (const Tensor& x : xs_in) xs.push_back(fresh || !x.requires_grad() ? x.detach().requires_grad_() : x);
    Tensor y = f(xs);
    auto gs = autograd::grad({(y * w).sum()}, xs, {}, true, true, true);
    Tensor total = Tensor::scalar(0.0, {DType::f64, y.device()});
    for (size_t k = 0; k < gs.size(); ++k)
      if (gs[k].defined()) total = total + (gs[k] * vs[k]).sum();
    return total;
  };
  gradcheck(gfun, inputs, eps, atol, rtol, seed + 99);
}

// Runs fn(device) for the CPU and for CUDA when available; reports a skipped CUDA case visibly.
inline void for_each_device(const std::function<void(Device)>& fn) {
  fn(Device::cpu());
  if (cuda_available()) {
    fn(Device::cuda());
  } else {
    MESSAGE("CUDA case skipped: " << std::string(cuda_built() ? "no GPU present" : "built without CUDA"));
  }
}

// Runs f on seeded inputs on the CPU and on CUDA (when present) and compares outputs and input
// gradients.
inline void expect_cpu_cuda_match(const Fn& f, const std::vector<Tensor>& inputs, Tol tol = {}) {
  if (!cuda_available()) {
    MESSAGE("CPU-vs-CUDA comparison skipped: " << std::string(cuda_built() ? "no GPU present" : "built without CUDA"));
    return;
  }
  auto run = [&](Device d) {
    std::vector<Tensor> xs;
    for (const Tensor& x : inputs) xs.push_back(x.detach().to(d).clone().requires_grad_());
    Tensor y = f(xs);
    Tensor w = Tensor::randn(y.shape(), 77, {y.dtype(), d});
    (y * w).sum().backward();
    std::vector<Tensor> r{y.detach().cpu()};
    for (auto& x : xs) r.push_back(x.grad().defined() ? x.grad().cpu() : Tensor());
    return r;
  };
  auto a = run(Device::cpu()), b = run(Device::cuda());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].defined()) continue;
    INFO("cpu vs cuda, " << (i == 0 ? std::string("output") : "grad of input " + std::to_string(i - 1)));
    auto r = compare(b[i], a[i], tol);
    INFO("worst " << r.a_val << " vs " << r.b_val << " at " << r.worst_index << " = " << 100 * r.worst_ratio << "%");
    CHECK(r.ok);
  }
}

// Asserts that expr throws ErrType and that the message contains every given fragment.
#define GS_CHECK_THROWS_WITH(expr, ErrType, ...)                                          \
  do {                                                                                    \
    bool _thrown = false;                                                                 \
    try {                                                                                 \
      (void)(expr);                                                                       \
    } catch (const ErrType& _e) {                                                         \
      _thrown = true;                                                                     \
      std::string _m = _e.what();                                                         \
      for (const char* _frag : {__VA_ARGS__}) {                                           \
        INFO("message: " << _m << " | expected fragment: " << _frag);                     \
        CHECK(_m.find(_frag) != std::string::npos);                                       \
      }                                                                                   \
    }                                                                                     \
    INFO(#expr " should throw " #ErrType);                                                \
    CHECK(_thrown);                                                                       \
  } while (0)

}  // namespace gstest
