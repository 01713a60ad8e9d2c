// The toy identity network's trainer: its configuration, the contrastive loss against a hand
// computation and finite differences, bitwise resume, and the written network read back through
// arcface::ArcFaceID (the way the ID loss and metric will load it).
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/models/arcface.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/train/id_trainer.hpp"
#include "support/harness.hpp"

using namespace gradstyle;
using namespace gradstyle::train;
namespace fs = std::filesystem;

namespace {

const char* kTiny = R"({"stage": "toyid", "size": 16, "trunk_blocks": [1, 1, 1, 1], "trunk_channels": [4, 6, 8, 10],
  "embedding": 8, "identities": 4, "views": 2, "lr": 0.002, "seed": 3, "toyfaces_seed": 2})";

std::string temp(const std::string& name) {
  return (fs::temp_directory_path() / ("gs_toyid_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::vector<float> state_values(IDTrainer& t) {
  std::vector<float> v;
  for (auto& [k, x] : t.net().state_dict())
    if (x.dtype() == DType::f32)
      for (float f : x.to_vector<float>()) v.push_back(f);
  return v;
}

}  // namespace

TEST_CASE("train/toyid: configuration keys, checks and round trip") {
  IDTrainConfig c = IDTrainConfig::parse(kTiny);
  CHECK(c.size == 16);
  CHECK(c.identities == 4);
  CHECK(IDTrainConfig::parse(c.dump()).dump() == c.dump());
  CHECK(c.backbone_config().input_size == 16);
  CHECK(c.crop().pool_size == 16);
  CHECK_THROWS_WITH_AS(IDTrainConfig::parse(R"({"size": 24})"), doctest::Contains("multiple of 16"), ValueError);
  CHECK_THROWS_WITH_AS(IDTrainConfig::parse(R"({"identities": 8, "toyfaces_identities": 4})"),
                       doctest::Contains("must be 0 or at least 'identities'"), ValueError);
  CHECK_THROWS_AS(IDTrainConfig::parse(R"({"stage": "e4e"})"), ValueError);
  CHECK_THROWS_WITH_AS(IDTrainConfig::parse(R"({"temprature": 0.1})"), doctest::Contains("temprature"), ValueError);
}

TEST_CASE("train/toyid: the contrastive loss equals the hand computation and its gradient finite differences") {
  // Two identities x two views: the views of an identity are the same unit vector, the
  // identities orthogonal. Each row's candidates: its twin (cosine 1) and the other identity's two
  // views (cosine 0), so L = log(1 + 2 exp(-1 / tau)); pos 1, neg 0, acc 1.
  const double tau = 0.5;
  Tensor z = Tensor::from_vector<double>({1, 0, 1, 0, 0, 1, 0, 1}, {4, 2});
  ContrastiveResult r = contrastive_loss(z, 2, tau);
  CHECK(r.loss.item() == doctest::Approx(std::log(1.0 + 2.0 * std::exp(-1.0 / tau))).epsilon(1e-12));
  CHECK(r.pos == doctest::Approx(1.0));
  CHECK(r.neg == doctest::Approx(0.0));
  CHECK(r.acc == 1.0);
  // Swapping one view of each identity makes every nearest neighbour the wrong identity.
  Tensor w = Tensor::from_vector<double>({1, 0, 0, 1, 0, 1, 1, 0}, {4, 2});
  CHECK(contrastive_loss(w, 2, tau).acc == 0.0);
  CHECK(contrastive_loss(w, 2, tau).loss.item() > r.loss.item());
  gstest::gradcheck([&](const std::vector<Tensor>& v) { return contrastive_loss(v[0], 3, 0.7).loss; },
                    {Tensor::randn({6, 3}, 4, {.dtype = DType::f64})});
  CHECK_THROWS_AS(contrastive_loss(Tensor::zeros({3, 2}), 2, tau), ShapeError);
  // The shares of two "ranks" (rows [0, 2) and [2, 4) against all rows) add up to the whole.
  Tensor q = Tensor::randn({6, 3}, 8, {.dtype = DType::f64});
  ContrastiveResult whole = contrastive_loss(q, 2, tau);
  ContrastiveResult a = contrastive_loss_rows(q.narrow(0, 0, 2), q, 0, 2, tau),
                    b = contrastive_loss_rows(q.narrow(0, 2, 4), q, 2, 2, tau);
  CHECK(a.loss.item() + b.loss.item() == doctest::Approx(whole.loss.item()).epsilon(1e-12));
  CHECK(a.acc + b.acc == doctest::Approx(whole.acc));
  CHECK(a.pos + b.pos == doctest::Approx(whole.pos).epsilon(1e-12));
  CHECK(a.neg + b.neg == doctest::Approx(whole.neg).epsilon(1e-12));
  CHECK_THROWS_AS(contrastive_loss_rows(q.narrow(0, 0, 2), q, 5, 2, tau), ShapeError);
}

TEST_CASE("train/toyid: a run saved, loaded and continued is bitwise the straight run") {
  const IDTrainConfig c = IDTrainConfig::parse(kTiny);
  IDTrainer straight(c);
  for (int i = 0; i < 3; ++i) {
    StepLog log = straight.step();
    for (const char* k : {"loss", "pos", "neg", "acc"}) {
      REQUIRE(log.terms.count(k));
      CHECK(std::isfinite(log.terms[k]));
    }
    CHECK(log.terms["pos"] <= 1.0 + 1e-6);
    CHECK(log.terms["neg"] >= -1.0 - 1e-6);
  }
  IDTrainer first(c);
  first.step();
  first.step();
  const std::string ck = temp("ck.safetensors");
  first.save(ck);
  IDTrainer resumed(c);
  resumed.load(ck);
  CHECK(resumed.iteration() == 2);
  resumed.step();
  CHECK(state_values(resumed) == state_values(straight));
  // Another configuration is refused by name.
  IDTrainConfig other = c;
  other.temperature = 0.2;
  IDTrainer o(other);
  CHECK_THROWS_WITH_AS(o.load(ck), doctest::Contains("differs"), ValueError);
  fs::remove(ck);
}

TEST_CASE("train/toyid: the written network loads as an ArcFaceID and embeds as the trainer does") {
  const IDTrainConfig c = IDTrainConfig::parse(kTiny);
  IDTrainer t(c);
  t.step();
  const std::string net = temp("net.safetensors");
  t.save_network(net);
  models::arcface::ArcFaceID::LoadOptions lo;
  lo.crop = c.crop();
  auto id = models::arcface::ArcFaceID::from_checkpoint(net, lo);
  CHECK(id->facenet().config().embedding == 8);
  CHECK(id->facenet().config().input_size == 16);
  Tensor x = mul_scalar(Tensor::rand({3, 3, 16, 16}, 9), 2.0);
  x = add_scalar(x, -1.0);
  Tensor mine;
  {
    autograd::NoGradGuard ng;
    t.net().eval();
    mine = t.net().forward(x);
    t.net().train();
  }
  CHECK(gstest::compare(id->embed(x), mine, {1e-6, 1e-5}).ok);
  const IDEval e = t.evaluate(8);
  CHECK(e.identities == 8);
  CHECK(e.top1 >= 0.0);
  CHECK(e.top1 <= 1.0);
  CHECK(e.pos <= 1.0 + 1e-6);
  fs::remove(net);
}
