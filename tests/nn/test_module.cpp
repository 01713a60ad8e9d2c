#include "gradstyle/nn/module.hpp"

#include "support/harness.hpp"

using namespace gradstyle;

namespace {
struct Affine : nn::Module {
  Tensor weight, bias, running;
  explicit Affine(int64_t n) {
    weight = Tensor::ones({n});
    bias = Tensor::zeros({n});
    running = Tensor::full({n}, 3.0);
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
    register_buffer("running", &running);
  }
  Tensor forward(const Tensor& x) { return x * weight + bias; }
};
struct Net : nn::Module {
  Affine a{3}, b{3};
  std::shared_ptr<Affine> c = std::make_shared<Affine>(2);
  Net() {
    register_module("a", &a);
    register_module("layers", &b);
    register_module("c", c);
  }
};
}  // namespace

TEST_CASE("nn/module: dotted names, state_dict, parameter counts") {
  Net net;
  auto names = net.named_parameters();
  REQUIRE(names.size() == 6);
  CHECK(names[0].first == "a.weight");
  CHECK(names[2].first == "layers.weight");
  CHECK(names[5].first == "c.bias");
  auto sd = net.state_dict();
  CHECK(sd.size() == 9);  // 6 parameters + 3 buffers
  CHECK(sd.count("layers.running") == 1);
  CHECK(net.num_parameters() == 3 + 3 + 3 + 3 + 2 + 2);
  net.a.requires_grad_(false);
  CHECK(net.num_parameters(true) == 3 + 3 + 2 + 2);
}

TEST_CASE("nn/module: strict loading reports every problem at once") {
  Net net;
  auto sd = net.state_dict();
  sd.erase("a.bias");
  sd["extra.key"] = Tensor::zeros({1});
  sd["c.weight"] = Tensor::zeros({5});
  GS_CHECK_THROWS_WITH(net.load_state_dict(sd), ShapeError, "missing keys (1): a.bias", "unexpected keys (1): extra.key",
                       "c.weight (checkpoint [5], model [2])");
  auto rep = net.load_state_dict(sd, /*strict=*/false);
  CHECK(rep.missing.size() == 1);
  CHECK(rep.unexpected.size() == 1);
  CHECK(rep.mismatched.size() == 1);
}

TEST_CASE("nn/module: loading replaces values, keeps requires_grad, converts dtype") {
  Net net;
  auto sd = net.state_dict();
  sd["a.weight"] = Tensor::from_vector<double>({1, 2, 3}, {3});
  net.load_state_dict(sd);
  CHECK(net.a.weight.dtype() == DType::f32);
  CHECK(net.a.weight.requires_grad());
  CHECK(net.a.weight.to_vector<float>() == std::vector<float>{1, 2, 3});
  Tensor y = net.a.forward(Tensor::ones({3})).sum();
  y.backward();
  GS_EXPECT_CLOSE(net.a.weight.grad(), Tensor::ones({3}), 0, 0);
  net.zero_grad();
  CHECK(!net.a.weight.grad().defined());
  net.to(DType::f64);
  CHECK(net.c->running.dtype() == DType::f64);
  CHECK(net.c->weight.requires_grad());
}

TEST_CASE("nn/module: train/eval propagate, bad names throw") {
  Net net;
  net.eval();
  CHECK(!net.b.is_training());
  net.train();
  CHECK(net.c->is_training());
  struct Bad : nn::Module {
    Tensor w = Tensor::zeros({1});
    void add(const std::string& n) { register_parameter(n, &w); }
  } bad;
  bad.add("w");
  GS_CHECK_THROWS_WITH(bad.add("w"), ValueError, "registered twice");
  GS_CHECK_THROWS_WITH(bad.add("a.b"), ValueError, "invalid name");
}

TEST_CASE("nn/module: a kept parameter handle sees load_state_dict and to() (optimizer semantics)") {
  Net net;
  // What an optimizer holds: copies of the handles, taken before the resume.
  std::vector<Tensor> kept = net.parameters();
  REQUIRE(kept.size() == 6);
  Tensor w = kept[0];  // a.weight
  Tensor running = net.a.running;
  StoragePtr storage_before = w.storage();

  auto sd = net.state_dict();
  sd["a.weight"] = Tensor::from_vector<double>({4, 5, 6}, {3});  // f64 checkpoint, f32 model
  sd["a.running"] = Tensor::from_vector<float>({7, 8, 9}, {3});
  net.load_state_dict(sd);
  CHECK(w.same(net.a.weight));
  CHECK(w.storage() == storage_before);  // copied into, not replaced
  CHECK(w.dtype() == DType::f32);
  CHECK(w.requires_grad());
  CHECK(w.to_vector<float>() == std::vector<float>{4, 5, 6});
  CHECK(running.to_vector<float>() == std::vector<float>{7, 8, 9});

  // A gradient step through the kept handle (as an optimizer does) changes the module.
  Tensor y = net.a.forward(Tensor::ones({3})).sum();
  y.backward();
  REQUIRE(w.grad().defined());
  {
    autograd::NoGradGuard ng;
    w.add_(w.grad(), -1.0);
  }
  CHECK(net.a.weight.to_vector<float>() == std::vector<float>{3, 4, 5});

  net.to(DType::f64);
  CHECK(w.same(net.a.weight));
  CHECK(w.dtype() == DType::f64);
  CHECK(w.requires_grad());
  CHECK(w.is_leaf());
  CHECK(w.to_vector<double>() == std::vector<double>{3, 4, 5});
  REQUIRE(w.grad().defined());
  CHECK(w.grad().dtype() == DType::f64);  // the .grad moved along
  CHECK(running.dtype() == DType::f64);
  CHECK(running.same(net.a.running));
  for (size_t i = 0; i < kept.size(); ++i) CHECK(kept[i].dtype() == DType::f64);

  // Backward after the conversion reaches the kept handle in its new dtype.
  net.zero_grad();
  Tensor y2 = net.a.forward(Tensor::ones({3}, {.dtype = DType::f64})).sum();
  y2.backward();
  REQUIRE(w.grad().defined());
  GS_EXPECT_CLOSE(w.grad(), Tensor::ones({3}, {.dtype = DType::f64}), 0, 0);

  if (cuda_available()) {
    net.to(Device::cuda());
    CHECK(w.same(net.a.weight));
    CHECK(w.is_cuda());
    CHECK(w.requires_grad());
    CHECK(w.grad().is_cuda());
    CHECK(running.is_cuda());
    CHECK(w.to_vector<double>() == std::vector<double>{3, 4, 5});
    net.to(Device::cpu());
    CHECK(!w.is_cuda());
    CHECK(w.same(net.a.weight));
  } else {
    MESSAGE("CUDA case skipped: " << std::string(cuda_built() ? "no GPU present" : "built without CUDA"));
  }
}

TEST_CASE("nn/module: loading into a strided parameter keeps the handle, gives it dense storage") {
  struct Strided : nn::Module {
    Tensor w;
    Strided() {
      w = Tensor::zeros({3, 2}).transpose(0, 1);  // [2,3], strides {1,2}
      register_parameter("w", &w);
    }
  } m;
  REQUIRE(!m.w.is_contiguous());
  Tensor kept = m.w;
  nn::StateDict sd{{"w", Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3})}};
  m.load_state_dict(sd);
  CHECK(kept.same(m.w));
  CHECK(kept.requires_grad());
  CHECK(kept.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
}
