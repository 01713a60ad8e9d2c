// StyleGAN2 discriminator (rosinality layout) against the PyTorch reference: scores for batches that
// exercise the minibatch-stddev grouping, the input gradient, parameter gradients and the R1
// penalty's second-order parameter gradients.
#include "models/stylegan2_fixture.hpp"

using namespace gradstyle;
using namespace gradstyle::models::stylegan2;
using sg2test::f32_tol;
using sg2test::fx;
using sg2test::golden;

namespace {
std::unique_ptr<Discriminator> load_tiny_d(Device d = Device::cpu()) {
  Discriminator::LoadOptions o;
  o.device = d;
  return Discriminator::from_checkpoint(golden("tiny.pt"), o);
}
#define SG2_CLOSE(a, r) GS_EXPECT_CLOSE((a).cpu(), (r).cpu(), f32_tol((r)).atol, f32_tol((r)).rtol)
}  // namespace

TEST_CASE("models/stylegan2_disc: configuration and keys come from the checkpoint") {
  auto d = load_tiny_d();
  const auto& c = d->config();
  CHECK(c.size == 32);
  CHECK(c.channels == std::map<int64_t, int64_t>{{4, 16}, {8, 16}, {16, 12}, {32, 8}});
  CHECK(c.stddev_feat == 1);
  auto file = io::load_state_dict_tensors(golden("tiny.pt"), {.key = "d"});
  auto sd = d->state_dict();
  REQUIRE(sd.size() == file.size());
  for (const auto& [k, v] : file) {
    INFO(k);
    REQUIRE(sd.count(k) == 1);
    GS_EXPECT_CLOSE(sd[k], v, 0, 0);
  }
  // SPEC C.2 layout: a ResBlock's downsampling ConvLayer is (Blur, EqualConv2d, FusedLeakyReLU).
  CHECK(sd.at("convs.1.conv2.0.kernel").shape() == Shape{4, 4});
  CHECK(sd.at("convs.1.conv2.1.weight").shape() == Shape{12, 8, 3, 3});
  CHECK(sd.at("convs.1.conv2.2.bias").shape() == Shape{12});
  CHECK(sd.at("convs.1.skip.1.weight").shape() == Shape{12, 8, 1, 1});
  CHECK(sd.count("convs.1.skip.1.bias") == 0);
  CHECK(sd.at("final_conv.0.weight").shape() == Shape{16, 17, 3, 3});
  CHECK(sd.at("final_linear.0.weight").shape() == Shape{16, 256});
  CHECK(sd.at("final_linear.1.weight").shape() == Shape{1, 16});
  CHECK(d->num_parameters() == 16321);  // the reference counts the same
}

TEST_CASE("models/stylegan2_disc: scores match the reference for batches 2, 4 and 8") {
  gstest::for_each_device([](Device dev) {
    CAPTURE(dev.str());
    auto d = load_tiny_d(dev);
    for (int b : {2, 4, 8}) {
      CAPTURE(b);
      SG2_CLOSE(d->forward(fx("d_x" + std::to_string(b), dev)), fx("d_score" + std::to_string(b)));
    }
  });
}

TEST_CASE("models/stylegan2_disc: input and parameter gradients, and R1's second-order gradients") {
  gstest::for_each_device([](Device dev) {
    CAPTURE(dev.str());
    auto d = load_tiny_d(dev);
    d->requires_grad_(true);
    auto params = d->named_parameters();
    std::map<std::string, Tensor*> p(params.begin(), params.end());

    Tensor x = fx("d_x4", dev).requires_grad_(true);
    Tensor score = d->forward(x).sum();
    auto gx = autograd::grad({score}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true);
    SG2_CLOSE(gx[0], fx("d_grad_x4"));
    const std::vector<std::string> names = {"convs.0.0.weight",  "convs.1.conv2.1.weight", "convs.2.skip.1.weight",
                                            "final_conv.1.bias", "final_linear.0.weight",  "final_linear.1.bias"};
    std::vector<Tensor> ps;
    for (const auto& n : names) ps.push_back(*p.at(n));
    auto gp = autograd::grad({score}, ps, {}, /*retain_graph=*/true);
    for (size_t i = 0; i < names.size(); ++i) {
      INFO(names[i]);
      SG2_CLOSE(gp[i], fx("d_grad." + names[i]));
    }
    // R1 = mean over samples of |dD/dx|^2, differentiated again w.r.t. parameters.
    Tensor r1 = gx[0].pow(2.0).reshape({4, -1}).sum({1}).mean();
    SG2_CLOSE(r1.reshape({1}), fx("d_r1"));
    const std::vector<std::string> r1_names = {"convs.1.conv1.0.weight", "final_conv.0.weight",
                                               "final_linear.0.weight"};
    std::vector<Tensor> rp;
    for (const auto& n : r1_names) rp.push_back(*p.at(n));
    auto gr = autograd::grad({r1}, rp);
    for (size_t i = 0; i < r1_names.size(); ++i) {
      INFO(r1_names[i]);
      // Second derivatives are ~1e-4 of the first; the absolute floor follows the reference's scale.
      SG2_CLOSE(gr[i], fx("d_r1_grad." + r1_names[i]));
    }
  });
}

TEST_CASE("models/stylegan2_disc: errors name shapes, keys and the minibatch grouping") {
  auto d = load_tiny_d();
  GS_CHECK_THROWS_WITH(d->forward(Tensor::zeros({2, 3, 64, 64})), ShapeError, "[2,3,64,64]", "expects [N,3,32,32]");
  // 6 is not divisible by the group size min(6, 4) = 4.
  CHECK_THROWS_AS(d->forward(Tensor::zeros({6, 3, 32, 32})), ShapeError);
  auto sd = io::load_state_dict_tensors(golden("tiny.pt"), {.key = "d"});
  sd.erase("convs.2.conv1.1.bias");
  sd["final_linear.0.weight"] = Tensor::zeros({16, 255});
  GS_CHECK_THROWS_WITH(Discriminator::from_state_dict(sd, "mem", {}), ShapeError,
                       "missing keys (1): convs.2.conv1.1.bias",
                       "final_linear.0.weight (checkpoint [16,255], model [16,256])");
}
