// The from-scratch stages of the toyfaces pipeline on tiny configurations: the StyleGAN2 trainer
// (rosinality's recipe) and the e4e trainer. Each computes its terms, resumes bit for bit, rejects
// bad configurations naming the key, and writes checkpoints the ordinary loaders read.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/models/e4e.hpp"
#include "gradstyle/train/e4e_trainer.hpp"
#include "gradstyle/train/stylegan2_trainer.hpp"

using namespace gradstyle;
using namespace gradstyle::train;
namespace sg = gradstyle::models::stylegan2;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("gs_stage_" + std::to_string(::getpid()) + "_" + name)).string();
}

const char* kTinyGan = R"({"stage": "stylegan2", "size": 16, "style_dim": 16, "n_mlp": 2,
  "channels": {"4": 16, "8": 16, "16": 8}, "batch": 4, "d_reg_every": 2, "g_reg_every": 2,
  "r1": 1.0, "ema_kimg": 0.01, "seed": 5})";

StyleGAN2TrainConfig tiny_gan() { return StyleGAN2TrainConfig::parse(kTinyGan); }

std::unique_ptr<StyleGAN2Trainer> gan_trainer(int64_t size = 16) {
  auto c = tiny_gan();
  if (size == 32) {
    c.size = 32;
    c.channels[32] = 8;
  }
  return std::make_unique<StyleGAN2Trainer>(c, toyfaces_source(c.size, c.size, 0));
}

}  // namespace

TEST_CASE("stylegan2 config: defaults, round trip through dump, errors name every bad key") {
  auto c = tiny_gan();
  CHECK(c.size == 16);
  CHECK(c.channels.at(8) == 16);
  CHECK(c.path_regularize == 2.0);
  auto again = StyleGAN2TrainConfig::parse(c.dump());
  CHECK(again.dump() == c.dump());
  CHECK(c.ema_decay() == doctest::Approx(std::pow(0.5, 4.0 / 10.0)));
  try {
    StyleGAN2TrainConfig::parse(R"({"sise": 16, "batch": 0, "size": 12})");
    FAIL("no error");
  } catch (const ValueError& e) {
    const std::string m = e.what();
    CHECK(m.find("'sise'") != std::string::npos);
    CHECK(m.find("batch") != std::string::npos);
    CHECK(m.find("power of two") != std::string::npos);
  }
  CHECK_THROWS_AS(StyleGAN2TrainConfig::parse(R"({"stage": "e4e"})"), ValueError);
  CHECK_THROWS_AS(StyleGAN2TrainConfig::parse(R"({"size": 16, "channels": {"4": 8, "8": 8}})"), ValueError);  // no 16
  CHECK_THROWS_AS(StyleGAN2TrainConfig::parse(R"({"data_source": "folder"})"), ValueError);                  // no data
}

TEST_CASE("stylegan2 trainer: the terms of rosinality's loop, with R1 and path length when due") {
  auto t = gan_trainer();
  StepLog a = t->step();  // iteration 0: both lazy regularisers are due
  for (const char* k : {"d_loss", "real_score", "fake_score", "g_loss", "r1", "path", "path_length"}) {
    INFO(k);
    REQUIRE(a.terms.count(k));
    CHECK(std::isfinite(a.terms[k]));
  }
  CHECK(a.terms["d_loss"] > 0);
  CHECK(a.terms["path_length"] > 0);
  StepLog b = t->step();  // iteration 1: neither is due
  CHECK(b.terms.count("r1") == 0);
  CHECK(b.terms.count("path") == 0);
  CHECK(t->iteration() == 2);
  // g_ema moved towards G but is not G (decay 0.5^(4/10) per step).
  auto pg = t->G().named_parameters(), pe = t->G_ema().named_parameters();
  REQUIRE(pg.size() == pe.size());
  double diff = 0;
  for (size_t i = 0; i < pg.size(); ++i)
    diff += (*pg[i].second - *pe[i].second).abs().sum().item();
  CHECK(diff > 0);
}

TEST_CASE("stylegan2 trainer: k steps, save, load into a fresh trainer, rest == straight run, bit for bit") {
  const std::string p1 = temp_path("gan_a.safetensors"), p2 = temp_path("gan_b.safetensors"),
                    mid = temp_path("gan_mid.safetensors");
  {
    auto t = gan_trainer();
    for (int i = 0; i < 4; ++i) t->step();
    t->save(p1);
  }
  {
    auto t = gan_trainer();
    for (int i = 0; i < 2; ++i) t->step();
    t->save(mid);
  }
  {
    auto t = gan_trainer();
    t->load(mid);
    CHECK(t->iteration() == 2);
    for (int i = 0; i < 2; ++i) t->step();
    t->save(p2);
  }
  CHECK(io::read_file_bytes(p1) == io::read_file_bytes(p2));
  // A changed configuration is refused, naming the difference.
  auto c = tiny_gan();
  c.lr = 0.001;
  StyleGAN2Trainer other(c, toyfaces_source(16, 16, 0));
  CHECK_THROWS_AS(other.load(p1), ValueError);
  // The checkpoint is a rosinality-layout generator checkpoint.
  auto G = sg::Generator::from_checkpoint(p1);
  CHECK(G->config().size == 16);
  CHECK(G->w_avg.defined());
  auto D = sg::Discriminator::from_checkpoint(p1);
  CHECK(D->config().size == 16);
  std::filesystem::remove(p1);
  std::filesystem::remove(p2);
  std::filesystem::remove(mid);
}

TEST_CASE("toyfaces source: deterministic in (seed, position), [-1, 1], fresh identities") {
  auto a = toyfaces_source(16, 8, 3), b = toyfaces_source(16, 8, 3);
  gradstyle::Generator r(0);
  Batch x = a->next(3, r), y1 = b->next(1, r), y2 = b->next(2, r);
  CHECK(x.full.shape() == Shape{3, 3, 16, 16});
  CHECK(x.loss.shape() == Shape{3, 3, 8, 8});
  auto same = [](const Tensor& p, const Tensor& q) { return p.contiguous().to_vector<float>() == q.contiguous().to_vector<float>(); };
  CHECK(same(x.full.narrow(0, 0, 1), y1.full));
  CHECK(same(x.full.narrow(0, 1, 2), y2.full));
  const auto v = x.full.to_vector<float>();
  CHECK(*std::max_element(v.begin(), v.end()) <= 1.0f);
  CHECK(*std::min_element(v.begin(), v.end()) >= -1.0f);
  CHECK_FALSE(same(x.full.narrow(0, 0, 1), x.full.narrow(0, 1, 1)));
  CHECK_THROWS_AS(toyfaces_source(16, 5, 0), ValueError);
}

namespace {

// A tiny G saved by the GAN trainer, the generator of the e4e tests.
std::string tiny_generator_file() {
  static const std::string path = [] {
    const std::string p = temp_path("e4e_g.safetensors");
    auto t = gan_trainer(32);
    t->step();
    t->save(p);
    return p;
  }();
  return path;
}

E4ETrainConfig tiny_e4e(double lambda_latent) {
  return E4ETrainConfig::parse(R"({"stage": "e4e", "generator": ")" + tiny_generator_file() +
                               R"(", "trunk_blocks": [1, 1, 1, 1], "trunk_channels": [4, 8, 12, 16], "trunk_se": false,
      "batch": 2, "lr": 0.001, "progressive_start": 1, "progressive_step": 1, "seed": 2, "lambda_latent": )" +
                               std::to_string(lambda_latent) + "}");
}

std::unique_ptr<E4ETrainer> e4e_trainer(double lambda_latent) {
  auto c = tiny_e4e(lambda_latent);
  auto G = sg::Generator::from_checkpoint(c.generator);
  return std::make_unique<E4ETrainer>(c, std::move(G), toyfaces_source(32, 32, 0));
}

}  // namespace

TEST_CASE("e4e config: progressive stages, required generator, errors") {
  auto c = tiny_e4e(0);
  CHECK(c.stage_at(0, 6) == 0);
  CHECK(c.stage_at(1, 6) == 1);
  CHECK(c.stage_at(3, 6) == 3);
  CHECK(c.stage_at(100, 6) == 5);
  c.progressive_step = 0;
  CHECK(c.stage_at(0, 6) == 5);
  CHECK_THROWS_AS(E4ETrainConfig::parse(R"({"stage": "e4e"})"), ValueError);  // no generator
  try {
    E4ETrainConfig::parse(R"({"generator": "g", "trunk_channels": [1, 2], "lamda_l2": 1})");
    FAIL("no error");
  } catch (const ValueError& e) {
    const std::string m = e.what();
    CHECK(m.find("'lamda_l2'") != std::string::npos);
    CHECK(m.find("trunk_channels") != std::string::npos);
  }
}

TEST_CASE("e4e trainer: terms, deltas appear with the stage, resume is bitwise, the checkpoint loads as an e4e encoder") {
  const std::string p1 = temp_path("e4e_a.safetensors"), p2 = temp_path("e4e_b.safetensors"),
                    mid = temp_path("e4e_mid.safetensors");
  {
    auto t = e4e_trainer(1.0);
    StepLog a = t->step();
    CHECK(a.terms.at("stage") == 0);
    CHECK(a.terms.count("delta") == 0);  // stage 0: every row is w_0
    CHECK(a.terms.count("latent") == 1);
    StepLog b = t->step();
    CHECK(b.terms.at("stage") == 1);
    CHECK(b.terms.count("delta") == 1);
    CHECK(std::isfinite(b.terms.at("total")));
    t->step();
    t->save(p1);
  }
  {
    auto t = e4e_trainer(1.0);
    t->step();
    t->save(mid);
  }
  {
    auto t = e4e_trainer(1.0);
    t->load(mid);
    t->step();
    t->step();
    t->save(p2);
  }
  CHECK(io::read_file_bytes(p1) == io::read_file_bytes(p2));
  auto E = models::e4e::Encoder4Editing::from_checkpoint(p1);
  CHECK(E->n_styles() == 8);
  CHECK(E->config().style_dim() == 16);
  auto other = e4e_trainer(0.5);
  CHECK_THROWS_AS(other->load(p1), ValueError);
  for (const auto& p : {p1, p2, mid}) std::filesystem::remove(p);
}

TEST_CASE("e4e trainer: the reconstruction error falls on a repeated batch") {
  // One identity (toyfaces_identities = 1 and a fixed edit would be simplest; a source with one
  // identity still varies the edit), 30 Adam steps at stage 0.
  auto c = tiny_e4e(0);
  c.optimizer = "adam";
  c.lr = 0.003;
  c.progressive_step = 0;
  c.toyfaces_identities = 1;
  auto G = sg::Generator::from_checkpoint(c.generator);
  E4ETrainer t(c, std::move(G), toyfaces_source(32, 32, 0, 1));
  const double first = t.step().terms.at("l2");
  double last = first;
  for (int i = 0; i < 30; ++i) last = t.step().terms.at("l2");
  CHECK(last < 0.8 * first);
}
