// IR-SE trunk and Backbone (SPEC.md C.4, C.7) against PyTorch fixtures written by
// tools/reference/make_encoder_fixtures.py (tools/reference/irse_ref.py).
#include "gradstyle/models/irse.hpp"

#include "gradstyle/ops/shape.hpp"
#include "models/encoder_fixtures.hpp"

using namespace gradstyle;
using namespace gradstyle::models;
using enctest::at;
using enctest::fixture;

TEST_CASE("models/irse: IR-SE50 unit plan, stage ends and configuration errors") {
  const auto c = irse::IRSEConfig::for_depth(50);
  const auto units = c.units();
  REQUIRE(units.size() == 24);
  CHECK(c.stage_ends() == std::vector<int64_t>{2, 6, 20, 23});  // c1, c2, c3 of e4e are units 6, 20, 23
  CHECK((units[0].in == 64 && units[0].out == 64 && units[0].stride == 2));
  CHECK((units[1].in == 64 && units[1].stride == 1));
  CHECK((units[3].in == 64 && units[3].out == 128 && units[3].stride == 2));
  CHECK((units[7].in == 128 && units[7].out == 256 && units[7].stride == 2));
  CHECK((units[21].in == 256 && units[21].out == 512 && units[21].stride == 2));
  CHECK(c.output_size(112) == 7);
  CHECK(c.output_size(256) == 16);
  CHECK(irse::IRSEConfig::for_depth(100).num_units() == 49);
  CHECK(irse::IRSEConfig::for_depth(152).num_units() == 50);
  GS_CHECK_THROWS_WITH(irse::IRSEConfig::for_depth(34), ValueError, "50, 100 or 152", "34");
  irse::IRSEConfig bad;
  bad.channels = {64, 128, 128, 512};
  GS_CHECK_THROWS_WITH(bad.validate(), ValueError, "stages 1 and 2", "same width 128");
  bad.channels = {8, 128, 256, 512};
  GS_CHECK_THROWS_WITH(bad.validate(), ValueError, "width 8", "SE reduction 16");
  bad.channels = {64, 128};
  GS_CHECK_THROWS_WITH(bad.validate(), ValueError, "equal length");
}

TEST_CASE("models/irse: Backbone (ir_se) matches PyTorch: embedding, input and parameter gradients") {
  const auto io = enctest::load_io("irse_tiny_io.pt");
  gstest::for_each_device([&](Device d) {
    auto net = irse::Backbone::from_checkpoint(fixture("irse_tiny.pth"), {.device = d});
    const auto& cfg = net->config();
    CHECK(cfg.trunk.blocks == std::vector<int64_t>{1, 2, 1, 1});
    CHECK(cfg.trunk.channels == std::vector<int64_t>{16, 20, 24, 28});
    CHECK(cfg.trunk.se);
    CHECK(cfg.trunk.se_reduction == 16);
    CHECK(cfg.input_size == 32);
    CHECK(cfg.embedding == 16);
    CHECK(cfg.affine);
    CHECK(!net->is_training());
    CHECK(!net->output_layer.linear.weight.requires_grad());
    // the int64 BatchNorm counter is loaded as stored
    CHECK(net->body[0].res_layer().bn1.num_batches_tracked.item() == 1234);

    net->requires_grad_(true);
    Tensor x = at(io, "x").to(d).requires_grad_();
    Tensor e = net->forward(x);
    ENC_EXPECT_CLOSE(e.cpu(), at(io, "embedding"), 2e-5);
    // unit norm
    GS_EXPECT_CLOSE(sqrt(sum(e * e, {1})).cpu(), Tensor::ones({2}), 1e-6, 0);
    enctest::backward_weighted(e, at(io, "r"));
    ENC_EXPECT_CLOSE(x.grad().cpu(), at(io, "grad_x"), 1e-4);
    enctest::check_param_grads(*net, io, 1e-4);
  });
}

TEST_CASE("models/irse: Backbone without SE and with a non-affine BN1d (CurricularFace layout) matches PyTorch") {
  const auto io = enctest::load_io("ir_tiny_io.pt");
  auto net = irse::Backbone::from_checkpoint(fixture("ir_tiny.pth"));
  CHECK(!net->config().trunk.se);
  CHECK(!net->config().affine);
  CHECK(net->config().trunk.blocks == std::vector<int64_t>{1, 1, 1, 1});
  CHECK(net->state_dict().count("output_layer.4.weight") == 0);
  CHECK(net->state_dict().count("body.0.res_layer.5.fc1.weight") == 0);
  net->requires_grad_(true);
  Tensor x = at(io, "x").clone().requires_grad_();
  Tensor e = net->forward(x);
  ENC_EXPECT_CLOSE(e, at(io, "embedding"), 2e-5);
  enctest::backward_weighted(e, at(io, "r"));
  ENC_EXPECT_CLOSE(x.grad(), at(io, "grad_x"), 1e-4);
  enctest::check_param_grads(*net, io, 1e-4);
}

TEST_CASE("models/irse: full-size IR-SE50 Backbone has model_ir_se50.pth's keys and shapes") {
  // 43.8 M parameters: the real network at full size (keys_real.json from irse_ref.py).
  irse::Backbone net(irse::BackboneConfig{}, ParamInit::Deferred);  // shapes only: no initialisation
  const auto want = enctest::real_shapes("model_ir_se50");
  const auto got = enctest::shapes_of(net);
  CHECK(got.size() == want.size());
  for (const auto& [k, s] : want) {
    INFO("key " << k);
    REQUIRE(got.count(k) == 1);
    CHECK(got.at(k) == s);
  }
  // and the configuration is read back from those shapes
  const auto cfg = irse::Backbone::infer_config(enctest::placeholder_state_dict("model_ir_se50"), "keys");
  CHECK(cfg.trunk == irse::IRSEConfig::for_depth(50));
  CHECK(cfg.input_size == 112);
  CHECK(cfg.embedding == 512);
  CHECK(cfg.affine);
}

TEST_CASE("models/irse: loading names missing and misshapen keys; old files without num_batches_tracked load") {
  nn::StateDict sd = io::load_state_dict_tensors(fixture("irse_tiny.pth"));
  {
    nn::StateDict s = sd;
    s.erase("body.1.res_layer.3.weight");
    GS_CHECK_THROWS_WITH(irse::Backbone::from_state_dict(s, "tiny", {}), ShapeError, "tiny",
                         "missing keys (1): body.1.res_layer.3.weight");
  }
  {
    nn::StateDict s = sd;
    s["body.0.res_layer.4.running_var"] = Tensor::ones({17});
    GS_CHECK_THROWS_WITH(irse::Backbone::from_state_dict(s, "tiny", {}), ShapeError,
                         "body.0.res_layer.4.running_var (checkpoint [17], model [16])", "blocks (1,2,1,1)");
  }
  {
    nn::StateDict s = sd;
    s["body.2.res_layer.5.extra"] = Tensor::ones({1});
    GS_CHECK_THROWS_WITH(irse::Backbone::from_state_dict(s, "tiny", {}), ShapeError,
                         "unexpected keys (1): body.2.res_layer.5.extra");
  }
  {
    nn::StateDict s = sd;
    s.erase("output_layer.3.weight");
    GS_CHECK_THROWS_WITH(irse::Backbone::from_state_dict(s, "tiny", {}), FormatError, "output_layer.3.weight");
  }
  {
    nn::StateDict s;
    s["conv.weight"] = Tensor::ones({1});
    GS_CHECK_THROWS_WITH(irse::Backbone::from_state_dict(s, "junk", {}), FormatError, "junk", "not an IR-SE network",
                         "conv.weight");
  }
  // PyTorch < 0.4.1 files have no num_batches_tracked; the counter is filled with 0.
  nn::StateDict old;
  for (const auto& [k, v] : sd)
    if (k.find("num_batches_tracked") == std::string::npos) old[k] = v;
  auto net = irse::Backbone::from_state_dict(old, "old", {});
  CHECK(net->body[0].res_layer().bn1.num_batches_tracked.item() == 0);
  const auto io = enctest::load_io("irse_tiny_io.pt");
  ENC_EXPECT_CLOSE(net->forward(at(io, "x")), at(io, "embedding"), 2e-5);
  GS_CHECK_THROWS_WITH(net->forward(Tensor::zeros({1, 3, 48, 48})), ShapeError, "Backbone", "[B, 3, 32, 32]",
                       "[1,3,48,48]");
}

TEST_CASE("models/irse: bottleneck unit gradients (float64 finite differences, odd sizes, both shortcuts)") {
  for (bool same : {true, false}) {
    irse::BottleneckIR unit(16, same ? 16 : 24, 2, /*with_se=*/true, 16);
    unit.to(DType::f64);
    // non-trivial BN statistics, evaluated with them
    unit.res_layer().bn1.running_var.fill_(1.7);
    unit.res_layer().bn2.running_mean.fill_(0.3);
    unit.eval();
    unit.requires_grad_(false);
    Tensor x = Tensor::randn({1, 16, 5, 5}, 11, {DType::f64});
    Tensor y = unit.forward(x);
    CHECK(y.shape() == Shape{1, same ? 16 : 24, 3, 3});
    gstest::gradcheck([&](const std::vector<Tensor>& in) { return unit.forward(in[0]); }, {x});
  }
}

TEST_CASE("models/irse: training mode updates BatchNorm statistics and its counter") {
  irse::BatchNorm bn(3);
  Tensor x = Tensor::randn({4, 3, 2, 2}, 3);
  bn.train();
  bn.forward(x);
  CHECK(bn.num_batches_tracked.item() == 1);
  // running_mean = 0.9 * 0 + 0.1 * batch mean
  GS_EXPECT_CLOSE(bn.running_mean, mean(x, {0, 2, 3}) * 0.1, 1e-6, 1e-5);
  bn.eval();
  bn.forward(x);
  CHECK(bn.num_batches_tracked.item() == 1);
}

TEST_CASE("models/irse: deferred parameters cost no memory and loading replaces every one of them") {
  irse::Backbone net(irse::BackboneConfig{.trunk = {.blocks = {1, 2, 1, 1}, .channels = {16, 20, 24, 28}},
                                          .input_size = 32, .embedding = 16},
                     ParamInit::Deferred);
  for (auto& [n, t] : net.named_parameters()) {
    INFO("parameter " << n);
    CHECK(t->numel() > 0);
    CHECK(t->storage()->nbytes() == 4);  // one float behind the whole view
  }
  net.load_state_dict(io::load_state_dict_tensors(fixture("irse_tiny.pth")));
  for (auto& [n, t] : net.named_parameters()) {
    INFO("parameter " << n);
    CHECK(t->is_contiguous());
    CHECK(t->storage()->nbytes() == size_t(t->numel()) * 4);
  }
  // Random initialisation follows PyTorch's defaults: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for convs.
  models::Conv2d conv(16, 8, 3);
  const double bound = 1.0 / std::sqrt(16.0 * 9.0);
  CHECK(enctest::max_abs(conv.weight) <= bound);
  CHECK(enctest::max_abs(conv.weight) > 0.9 * bound);
}
