// e4e Encoder4Editing (SPEC.md C.4) against PyTorch fixtures written by
// tools/reference/make_encoder_fixtures.py (tools/reference/e4e_ref.py).
#include "gradstyle/models/e4e.hpp"

#include <unistd.h>

#include <filesystem>

#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/ops/interpolate.hpp"
#include "gradstyle/ops/pool.hpp"
#include "models/encoder_fixtures.hpp"

using namespace gradstyle;
using namespace gradstyle::models;
using enctest::at;
using enctest::fixture;

namespace {

// The encoder keys of an e4e-layout file, and its latent_avg.
std::pair<nn::StateDict, Tensor> encoder_keys(const std::string& file) {
  nn::StateDict all = io::load_state_dict_tensors(fixture(file));
  nn::StateDict sd;
  for (const auto& [k, v] : all)
    if (k.rfind("state_dict.encoder.", 0) == 0) sd[k.substr(19)] = v;
  return {sd, all.at("latent_avg")};
}

}  // namespace

TEST_CASE("models/e4e: tiny encoder matches PyTorch: W+, c1..p1, input and parameter gradients") {
  const auto io = enctest::load_io("e4e_tiny_io.pt");
  gstest::for_each_device([&](Device d) {
    auto enc = e4e::Encoder4Editing::from_checkpoint(fixture("e4e_tiny.pt"), {.device = d});
    const auto& cfg = enc->config();
    CHECK(cfg.trunk.blocks == std::vector<int64_t>{2, 2, 1, 1});
    CHECK(cfg.trunk.channels == std::vector<int64_t>{16, 20, 24, 16});
    CHECK(cfg.n_styles == 10);  // opts.stylegan_size 64
    CHECK(cfg.input_size == 32);
    CHECK(enc->start_from_latent_avg);
    CHECK(!enc->is_training());
    CHECK(!enc->styles[0].linear.weight.requires_grad());
    CHECK(enc->latent_avg.device() == d);

    enc->requires_grad_(true);
    Tensor x = at(io, "x").to(d).requires_grad_();
    auto out = enc->forward(x);
    CHECK(out.w_plus.shape() == Shape{2, 10, 16});
    ENC_EXPECT_CLOSE(out.w_plus.cpu(), at(io, "w_plus"), 2e-5);
    for (const char* f : {"c1", "c2", "c3", "p2", "p1"}) {
      INFO("feature " << f);
      const Tensor& got = f[0] == 'c' ? (f[1] == '1' ? out.c1 : f[1] == '2' ? out.c2 : out.c3) : (f[1] == '2' ? out.p2 : out.p1);
      ENC_EXPECT_CLOSE(got.cpu(), at(io, f), 2e-5);
    }
    GS_EXPECT_CLOSE((out.w_plus - out.codes).cpu(), unsqueeze(enc->latent_avg.cpu(), 0).expand({2, 10, 16}), 1e-6, 1e-6);
    enctest::backward_weighted(out.w_plus, at(io, "rw"));
    ENC_EXPECT_CLOSE(x.grad().cpu(), at(io, "grad_x"), 1e-4);
    enctest::check_param_grads(*enc, io, 1e-4);
  });
}

TEST_CASE("models/e4e: real 256-px geometry (heads of 4/5/6 stride-2 convs) matches PyTorch") {
  const auto io = enctest::load_io("e4e_tiny256_io.pt");
  // saved to a path: the zip root folder is the file stem, not 'archive'
  auto enc = e4e::Encoder4Editing::from_checkpoint(fixture("e4e_tiny256.pt"));
  CHECK(enc->config().input_size == 256);
  CHECK(enc->config().n_styles == 8);
  CHECK(enc->styles[0].convs.layers.size() == 4);
  CHECK(enc->styles[3].convs.layers.size() == 5);
  CHECK(enc->styles[7].convs.layers.size() == 6);
  enc->requires_grad_(true);
  auto out = enc->forward(enctest::synthetic_image(1, 3, 256, 256));
  CHECK(out.c3.shape() == Shape{1, 16, 16, 16});
  CHECK(out.p2.shape() == Shape{1, 16, 32, 32});
  CHECK(out.p1.shape() == Shape{1, 16, 64, 64});
  CHECK(out.c1.shape() == Shape{1, 20, 64, 64});
  ENC_EXPECT_CLOSE(out.w_plus, at(io, "w_plus"), 2e-5);
  enctest::backward_weighted(out.w_plus, at(io, "rw"));
  enctest::check_param_grads(*enc, io, 1e-4);
}

TEST_CASE("models/e4e: inputs of other sizes are resized to the input size; non-square inputs are refused") {
  auto enc = e4e::Encoder4Editing::from_checkpoint(fixture("e4e_tiny.pt"));
  Tensor big = Tensor::randn({1, 3, 64, 64}, 5);
  // a multiple: area average (pSp's AdaptiveAvgPool2d 1024 -> 256)
  GS_EXPECT_CLOSE(enc->forward(big).w_plus, enc->forward(avg_pool2d(big, {2})).w_plus, 1e-6, 1e-6);
  // otherwise bilinear, align_corners = false
  Tensor odd = Tensor::randn({1, 3, 40, 40}, 6);
  GS_EXPECT_CLOSE(enc->prepare_input(odd), interpolate(odd, {32, 32}, InterpolateMode::Bilinear, false), 0, 0);
  const Tensor exact = Tensor::randn({1, 3, 32, 32}, 7);
  CHECK(enc->prepare_input(exact).same(exact));  // the right size passes through untouched
  GS_CHECK_THROWS_WITH(enc->forward(Tensor::zeros({1, 3, 32, 40})), ShapeError, "square", "[1,3,32,40]");
  GS_CHECK_THROWS_WITH(enc->forward(Tensor::zeros({1, 1, 32, 32})), ShapeError, "[B, 3, 32, 32]");
}

TEST_CASE("models/e4e: progressive stages add only the first deltas") {
  auto enc = e4e::Encoder4Editing::from_checkpoint(fixture("e4e_tiny.pt"));
  const auto io = enctest::load_io("e4e_tiny_io.pt");
  const Tensor x = at(io, "x");
  const Tensor full = enc->forward(x).codes;
  enc->set_progressive_stage(0);  // WTraining: every row is w0
  Tensor c0 = enc->forward(x).codes;
  for (int64_t i = 0; i < 10; ++i) GS_EXPECT_CLOSE(select(c0, 1, i), select(full, 1, 0), 0, 0);
  enc->set_progressive_stage(4);  // Delta4Training: rows 1..4 carry their deltas, 5.. are w0
  Tensor c4 = enc->forward(x).codes;
  for (int64_t i = 0; i <= 4; ++i) GS_EXPECT_CLOSE(select(c4, 1, i), select(full, 1, i), 0, 0);
  for (int64_t i = 5; i < 10; ++i) GS_EXPECT_CLOSE(select(c4, 1, i), select(full, 1, 0), 0, 0);
  GS_CHECK_THROWS_WITH(enc->set_progressive_stage(-1), ValueError, "progressive stage");
  GS_CHECK_THROWS_WITH(enc->check_generator(18, 512), ValueError, "10 codes of width 16", "18 of width 512");
  enc->check_generator(10, 16);
}

TEST_CASE("models/e4e: full-size layout: key names of e4e_ffhq_encode.pt and configuration from its shapes") {
  // Configuration read from the real shapes (stride-0 placeholders: no memory).
  const auto cfg = e4e::Encoder4Editing::infer_config(enctest::placeholder_state_dict("e4e_encoder"), "keys");
  CHECK(cfg.trunk == irse::IRSEConfig::for_depth(50));
  CHECK(cfg.n_styles == 18);
  CHECK(cfg.style_dim() == 512);
  CHECK(cfg.input_size == 256);
  // The full-size encoder (267 M parameters, deferred: no memory) has exactly the real keys and shapes.
  e4e::Encoder4Editing enc(cfg, ParamInit::Deferred);
  const auto want = enctest::real_shapes("e4e_encoder");
  const auto got = enctest::shapes_of(enc);
  CHECK(got.size() == want.size());
  for (const auto& [k, s] : want) {
    INFO("key " << k);
    REQUIRE(got.count(k) == 1);
    CHECK(got.at(k) == s);
  }
  CHECK(want.at("styles.17.convs.10.weight") == Shape{512, 512, 3, 3});
  CHECK(want.count("styles.17.convs.12.weight") == 0);
  CHECK(want.at("styles.2.convs.6.weight") == Shape{512, 512, 3, 3});
  CHECK(want.count("styles.2.convs.8.weight") == 0);
  CHECK(enc.num_parameters() > 266000000);
}

TEST_CASE("models/e4e: loading names missing and misshapen keys and refuses inconsistent files") {
  auto [sd, avg] = encoder_keys("e4e_tiny.pt");
  {
    nn::StateDict s = sd;
    s.erase("body.2.res_layer.1.weight");
    GS_CHECK_THROWS_WITH(e4e::Encoder4Editing::from_state_dict(s, avg, true, "tiny", {}), ShapeError, "tiny",
                         "missing keys (1): body.2.res_layer.1.weight");
  }
  {
    nn::StateDict s = sd;
    s["styles.4.convs.0.bias"] = Tensor::zeros({15});
    GS_CHECK_THROWS_WITH(e4e::Encoder4Editing::from_state_dict(s, avg, true, "tiny", {}), ShapeError,
                         "styles.4.convs.0.bias (checkpoint [15], model [16])", "10 style heads");
  }
  {
    nn::StateDict s = sd;
    s.erase("styles.9.convs.4.weight");
    s.erase("styles.9.convs.4.bias");
    GS_CHECK_THROWS_WITH(e4e::Encoder4Editing::from_state_dict(s, avg, true, "tiny", {}), FormatError, "'styles.9'",
                         "2 stride-2 convs", "needs 3");
  }
  GS_CHECK_THROWS_WITH(e4e::Encoder4Editing::from_state_dict(sd, Tensor::zeros({3, 16}), true, "tiny", {}), FormatError,
                       "latent_avg has shape [3,16]", "[10, 16]");
  // a [D] latent_avg (the generator's mean latent) is repeated over the rows
  auto enc = e4e::Encoder4Editing::from_state_dict(sd, Tensor(), true, "tiny",
                                                   {.latent_avg = Tensor::full({16}, 0.5)});
  GS_EXPECT_CLOSE(enc->latent_avg, Tensor::full({10, 16}, 0.5), 0, 0);
  auto plain = e4e::Encoder4Editing::from_state_dict(sd, Tensor(), false, "tiny", {});
  const auto io = enctest::load_io("e4e_tiny_io.pt");
  auto o = plain->forward(at(io, "x"));
  GS_EXPECT_CLOSE(o.w_plus, o.codes, 0, 0);

  GS_CHECK_THROWS_WITH(e4e::Encoder4Editing::from_checkpoint(fixture("e4e_bad_size.pt")), FormatError,
                       "opts.stylegan_size = 1024 implies 18 style heads", "has 2");
  GS_CHECK_THROWS_WITH(e4e::Encoder4Editing::from_checkpoint(fixture("e4e_psp.pt")), FormatError,
                       "GradualStyleEncoder", "only Encoder4Editing");
  GS_CHECK_THROWS_WITH(e4e::Encoder4Editing::from_checkpoint(fixture("e4e_no_avg.pt")), FormatError,
                       "start_from_latent_avg", "no latent_avg", "LoadOptions::latent_avg");
  auto helped = e4e::Encoder4Editing::from_checkpoint(fixture("e4e_no_avg.pt"), {.latent_avg = Tensor::ones({16})});
  CHECK(helped->n_styles() == 2);
  GS_CHECK_THROWS_WITH(e4e::Encoder4Editing::from_checkpoint(fixture("ffhq_pca.pt")), FormatError, "no e4e encoder",
                       "entries: comp, mean, std");
  GS_CHECK_THROWS_WITH(e4e::Encoder4Editing::from_checkpoint(fixture("irse_tiny.pth")), FormatError,
                       "no 'styles.N.*' keys");
}

TEST_CASE("models/e4e: a safetensors export loads too, and a file with a missing or misshapen key names it") {
  auto [sd, avg] = encoder_keys("e4e_tiny.pt");
  const std::string dir = std::string("/tmp/gs_e4e_test_") + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  auto save = [&](const nn::StateDict& s, const std::string& name) {
    io::NamedTensors list;
    for (const auto& [k, v] : s) list.emplace_back("encoder." + k, io::from_tensor(v));
    list.emplace_back("latent_avg", io::from_tensor(avg));
    io::save_safetensors(dir + "/" + name, list);
    return dir + "/" + name;
  };
  // no opts in a safetensors file: latent_avg is added because the file has one
  auto enc = e4e::Encoder4Editing::from_checkpoint(save(sd, "ok.safetensors"));
  CHECK(enc->start_from_latent_avg);
  const auto io = enctest::load_io("e4e_tiny_io.pt");
  ENC_EXPECT_CLOSE(enc->forward(at(io, "x")).w_plus, at(io, "w_plus"), 2e-5);
  nn::StateDict missing = sd;
  missing.erase("latlayer2.weight");
  GS_CHECK_THROWS_WITH(e4e::Encoder4Editing::from_checkpoint(save(missing, "missing.safetensors")), ShapeError,
                       "missing.safetensors", "missing keys (1): latlayer2.weight");
  nn::StateDict bad = sd;
  bad["body.0.res_layer.2.weight"] = Tensor::zeros({3});
  GS_CHECK_THROWS_WITH(e4e::Encoder4Editing::from_checkpoint(save(bad, "bad.safetensors")), ShapeError,
                       "bad.safetensors", "body.0.res_layer.2.weight (checkpoint [3], model [16])");
  std::filesystem::remove_all(dir);
}
