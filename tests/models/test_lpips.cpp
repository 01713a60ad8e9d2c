// LPIPS-VGG (SPEC.md C.6) against PyTorch fixtures written by
// tools/reference/make_encoder_fixtures.py (tools/reference/lpips_ref.py).
#include "gradstyle/models/lpips.hpp"

#include "models/encoder_fixtures.hpp"

using namespace gradstyle;
using namespace gradstyle::models;
using enctest::at;
using enctest::fixture;

TEST_CASE("models/lpips: VGG16 layout: torchvision conv indices and the relu1_2..relu5_3 taps") {
  lpips::LPIPSConfig c;
  CHECK(c.conv_indices() == std::vector<int64_t>{0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28});
  CHECK(c.tap_indices() == std::vector<int64_t>{3, 8, 15, 22, 29});
  lpips::LPIPSConfig bad;
  bad.convs = {2, 2};
  GS_CHECK_THROWS_WITH(bad.validate(), ValueError, "equal length");
}

TEST_CASE("models/lpips: tiny VGG-shaped LPIPS matches PyTorch: distances and both input gradients") {
  const auto io = enctest::load_io("lpips_io.pt");
  gstest::for_each_device([&](Device d) {
    // torchvision-style trunk file (features.* + classifier.*, the latter ignored) and the heads in a
    // legacy-format file with cuda:0-tagged storages, like weights/v0.1/vgg.pth
    auto lp = lpips::LPIPS::from_files(fixture("vgg_tiny.pth"), fixture("lin_tiny.pth"), {.device = d});
    CHECK(lp->config().channels == std::vector<int64_t>{8, 8, 12, 12, 16});
    CHECK(lp->config().convs == std::vector<int64_t>{2, 2, 3, 3, 3});
    CHECK(!lp->is_training());
    Tensor a = at(io, "a").to(d).requires_grad_();
    Tensor b = at(io, "b").to(d).requires_grad_();
    Tensor dist = lp->forward(a, b);
    CHECK(dist.shape() == Shape{2});
    ENC_EXPECT_CLOSE(dist.cpu(), at(io, "d"), 2e-5);
    enctest::backward_weighted(dist, at(io, "r"));
    ENC_EXPECT_CLOSE(a.grad().cpu(), at(io, "grad_a"), 1e-4);
    ENC_EXPECT_CLOSE(b.grad().cpu(), at(io, "grad_b"), 1e-4);
  });
}

TEST_CASE("models/lpips: identical images are at distance 0; the distance is symmetric; layer terms sum up") {
  auto lp = lpips::LPIPS::from_files(fixture("vgg_tiny.pth"), fixture("lin_tiny.pth"));
  const auto io = enctest::load_io("lpips_io.pt");
  const Tensor a = at(io, "a"), b = at(io, "b");
  GS_EXPECT_CLOSE(lp->forward(a, a), Tensor::zeros({2}), 0, 0);
  GS_EXPECT_CLOSE(lp->forward(a, b), lp->forward(b, a), 1e-7, 1e-6);
  const Tensor layers = lp->forward_layers(a, b);
  CHECK(layers.shape() == Shape{2, 5});
  GS_EXPECT_CLOSE(sum(layers, {1}), lp->forward(a, b), 1e-7, 1e-6);
  // heads are non-negative, so every term is too
  for (double v : layers.to_vector<double>()) CHECK(v >= 0);
  GS_CHECK_THROWS_WITH(lp->forward(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({1, 3, 8, 8})), ShapeError, "too small",
                       "16 px");
  GS_CHECK_THROWS_WITH(lp->forward(a, Tensor::zeros({2, 3, 32, 31})), ShapeError, "same shape");
}

TEST_CASE("models/lpips: full-size LPIPS-VGG has torchvision's vgg16 feature keys and vgg.pth's head keys") {
  lpips::LPIPS lp({}, ParamInit::Deferred);  // 14.7 M parameters, shapes only
  const auto got = enctest::shapes_of(lp);
  size_t n = 0;
  for (const auto& [k, s] : enctest::real_shapes("vgg16")) {
    if (k.rfind("features.", 0) != 0) continue;  // the classifier is not part of LPIPS
    INFO("key " << k);
    REQUIRE(got.count(k) == 1);
    CHECK(got.at(k) == s);
    ++n;
  }
  for (const auto& [k, s] : enctest::real_shapes("lpips_lin")) {
    INFO("key " << k);
    REQUIRE(got.count(k) == 1);
    CHECK(got.at(k) == s);
    ++n;
  }
  CHECK(n == 26 + 5);
  CHECK(got.size() == n);
  // and the configuration is read back from torchvision's keys (classifier included)
  nn::StateDict sd = enctest::placeholder_state_dict("vgg16");
  for (auto& [k, v] : enctest::placeholder_state_dict("lpips_lin")) sd[k] = v;
  const auto cfg = lpips::LPIPS::infer_config(sd, "keys");
  CHECK(cfg.channels == std::vector<int64_t>{64, 128, 256, 512, 512});
  CHECK(cfg.convs == std::vector<int64_t>{2, 2, 3, 3, 3});
}

TEST_CASE("models/lpips: loading names missing and misshapen keys") {
  nn::StateDict sd;
  for (const auto& [k, v] : io::load_state_dict_tensors(fixture("vgg_tiny.pth")))
    if (k.rfind("features.", 0) == 0) sd[k] = v;
  for (const auto& [k, v] : io::load_state_dict_tensors(fixture("lin_tiny.pth"))) sd[k] = v;
  {
    nn::StateDict s = sd;
    s.erase("lin2.model.1.weight");
    GS_CHECK_THROWS_WITH(lpips::LPIPS::from_state_dict(s, "tiny", {}), ShapeError, "missing keys (1): lin2.model.1.weight");
  }
  {
    nn::StateDict s = sd;
    s["features.12.weight"] = Tensor::zeros({12, 12, 1, 1});
    GS_CHECK_THROWS_WITH(lpips::LPIPS::from_state_dict(s, "tiny", {}), ShapeError,
                         "features.12.weight (checkpoint [12,12,1,1], model [12,12,3,3])");
  }
  {
    nn::StateDict s = sd;
    s.erase("lin0.model.1.weight");
    s.erase("lin1.model.1.weight");
    s.erase("lin2.model.1.weight");
    s.erase("lin3.model.1.weight");
    s.erase("lin4.model.1.weight");
    GS_CHECK_THROWS_WITH(lpips::LPIPS::from_state_dict(s, "tiny", {}), FormatError, "no LPIPS heads");
  }
  GS_CHECK_THROWS_WITH(lpips::LPIPS::from_files(fixture("lin_tiny.pth"), ""), FormatError, "no VGG16 features");
  GS_CHECK_THROWS_WITH(lpips::LPIPS::from_files(fixture("vgg_tiny.pth"), fixture("age.pt")), FormatError,
                       "no LPIPS heads");
}
