// PyTorch parity of the basic ops with tricky semantics (softplus threshold, softmax/log_softmax,
// var unbiased/biased, matmul batch broadcasting and 1-D rules, amax/amin ties): forward values
// and the gradients of sum(out * w) against tests/golden/core/core_ops.json, which
// tools/reference/make_core_fixtures.py writes with torch (float64, CPU).
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/core_util.hpp"

using namespace gradstyle;
using json = nlohmann::json;

namespace {

Tensor from_json(const json& j) {
  Shape s = j.at("shape").get<Shape>();
  return Tensor::from_vector(j.at("values").get<std::vector<double>>(), s);
}

Shape dims_of(const json& c) { return c.contains("dims") ? c.at("dims").get<Shape>() : Shape{}; }

Tensor run_op(const json& c, const std::vector<Tensor>& x) {
  const std::string op = c.at("op");
  if (op == "softplus") return softplus(x[0], c.at("beta"), c.at("threshold"));
  if (op == "softmax") return softmax(x[0], c.at("dim"));
  if (op == "log_softmax") return log_softmax(x[0], c.at("dim"));
  if (op == "var") return var(x[0], dims_of(c), c.at("unbiased"), c.at("keepdim"));
  if (op == "matmul") return matmul(x[0], x[1]);
  if (op == "amax") return amax(x[0], dims_of(c), c.at("keepdim"));
  if (op == "amin") return amin(x[0], dims_of(c), c.at("keepdim"));
  FAIL("unknown op in fixture: " << op);
  return Tensor();
}

}  // namespace

TEST_CASE("ops/torch_parity: forward and gradients match PyTorch on the fixture cases") {
  std::ifstream f(std::string(GS_SOURCE_ROOT) + "/tests/golden/core/core_ops.json");
  REQUIRE(f.good());
  json root = json::parse(f);
  REQUIRE(root.at("cases").size() >= 15);
  for (const json& c : root.at("cases")) {
    std::string label = c.dump().substr(0, 90);
    INFO("case " << label);
    std::vector<Tensor> xs;
    for (const json& in : c.at("inputs")) xs.push_back(from_json(in).requires_grad_());
    Tensor out = run_op(c, xs);
    Tensor want = from_json(c.at("out"));
    GS_EXPECT_CLOSE(out, want, 1e-12, 1e-12);
    Tensor w = Tensor::from_vector(c.at("weight").get<std::vector<double>>(), out.shape());
    auto grads = autograd::grad({(out * w).sum()}, xs, {}, false, false, true);
    const json& wg = c.at("grads");
    for (size_t i = 0; i < xs.size(); ++i) {
      INFO("gradient of input " << i);
      if (wg[i].is_null()) {
        CHECK_FALSE(grads[i].defined());
        continue;
      }
      Tensor g = Tensor::from_vector(wg[i].get<std::vector<double>>(), xs[i].shape());
      REQUIRE(grads[i].defined());
      GS_EXPECT_CLOSE(grads[i], g, 1e-12, 1e-11);
    }
    // float32 forward agrees to float rounding
    std::vector<Tensor> x32;
    for (const Tensor& x : xs) x32.push_back(x.detach().to(DType::f32));
    GS_EXPECT_CLOSE(run_op(c, x32), want, 1e-4, 1e-5);
  }
}
