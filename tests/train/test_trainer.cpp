// The GradStyle trainer on a tiny configuration: one iteration computes every configured term,
// training lowers the reconstruction error below the encoder-only one, a non-finite loss stops
// the run naming the term, and save -> load -> continue is bitwise identical to running straight.
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

#include "gradstyle/io/file.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/ops/loss.hpp"
#include "gradstyle/train/losses.hpp"
#include "gradstyle/train/trainer.hpp"
#include "models/gradstyle_fixture.hpp"

using namespace gradstyle;
using namespace gradstyle::train;
namespace sg = gradstyle::models::stylegan2;
namespace gsn = gradstyle::models::gsnet;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("gs_trainer_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string fixture(const std::string& name) { return std::string(GS_SOURCE_ROOT) + "/tests/golden/encoders/" + name; }

Networks tiny_networks(bool with_d) {
  Networks n;
  n.G = gstest_gs::tiny_generator(5);
  n.E = models::e4e::Encoder4Editing::from_checkpoint(fixture("e4e_tiny.pt"));
  if (with_d) {
    sg::DiscriminatorConfig dc;
    dc.size = 64;
    dc.channels = {{4, 8}, {8, 8}, {16, 8}, {32, 8}, {64, 8}};
    gradstyle::Generator init(11);
    n.D = std::make_unique<sg::Discriminator>(dc, &init);
  }
  return n;
}

TrainConfig tiny_train_config(bool with_d) {
  std::string j = R"({"batch": 2, "lambda_lpips": 0, "lambda_id": 0, "loss_resolution": 32, "lr": 0.001,
                      "d_reg_every": 2, "seed": 3, "data_source": "generator")";
  j += with_d ? R"(, "lambda_adv": 0.05})" : R"(, "lambda_adv": 0})";
  return TrainConfig::parse(j, gsn::GradStyleConfig::keys());
}

std::unique_ptr<Trainer> tiny_trainer(bool with_d) {
  TrainConfig cfg = tiny_train_config(with_d);
  Networks nets = tiny_networks(with_d);
  auto data = generator_source(*nets.G, cfg.loss_resolution);
  return std::make_unique<Trainer>(cfg, gstest_gs::tiny_config(), std::move(nets), std::move(data));
}

std::vector<uint8_t> bytes_of(const std::string& path) { return io::read_file_bytes(path); }

}  // namespace

TEST_CASE("train/trainer: one iteration computes every configured term, D and R1 included") {
  auto t = tiny_trainer(true);
  StepLog a = t->step();  // iteration 1: no R1 (d_reg_every = 2 counts from 0)
  for (const char* k : {"l2", "adv", "f", "aligner", "total", "d_loss"}) {
    INFO(k);
    REQUIRE(a.terms.count(k) == 1);
    CHECK(std::isfinite(a.terms[k]));
  }
  CHECK(a.terms.count("lpips") == 0);
  CHECK(a.terms.count("id") == 0);
  CHECK(a.terms.count("r1") == 1);  // iteration_ 0 % 2 == 0
  StepLog b = t->step();
  CHECK(b.terms.count("r1") == 0);
  CHECK(b.iteration == 2);
  CHECK(t->last_grid().shape() == Shape{2, 3, 32, 96});
  // Weighted sum of the logged terms is the total (weights of tiny_train_config).
  const double total = a.terms["l2"] + 0.05 * a.terms["adv"] + 0.01 * a.terms["f"] + 0.1 * a.terms["aligner"];
  CHECK(a.terms["total"] == doctest::Approx(total).epsilon(1e-5));
}

TEST_CASE("train/trainer: save -> load -> continue is bitwise identical to running straight") {
  const std::string straight = temp_path("straight.safetensors"), mid = temp_path("mid.safetensors"),
                    resumed = temp_path("resumed.safetensors");
  {
    auto t = tiny_trainer(true);
    for (int i = 0; i < 5; ++i) t->step();
    t->save(straight);
  }
  {
    auto t = tiny_trainer(true);
    for (int i = 0; i < 2; ++i) t->step();
    t->save(mid);
  }
  {
    auto t = tiny_trainer(true);
    t->load(mid);
    CHECK(t->iteration() == 2);
    for (int i = 0; i < 3; ++i) t->step();
    t->save(resumed);
  }
  auto a = bytes_of(straight), b = bytes_of(resumed);
  CHECK(a.size() == b.size());
  CHECK(a == b);
  for (const auto& p : {straight, mid, resumed}) std::filesystem::remove(p);
}

// The reconstruction error of the encoder alone (G(E(x))) and of the refined reconstruction
// stream, on a fixed batch the training never sees.
struct EvalL2 {
  double encoder_only, reconstruction;
};
EvalL2 evaluate(Trainer& t, const Batch& b) {
  autograd::NoGradGuard ng;
  auto& G = *t.networks().G;
  auto enc = t.networks().E->forward(b.loss);
  gsn::EncoderFeatures feats{enc.c3, enc.p2, enc.p1};
  const int64_t r = t.config().loss_resolution;
  double e = image_l2(pool_to(G.synthesis(enc.w_plus), r), b.loss).item();
  t.net().eval();  // running BatchNorm statistics, as at inference
  double rec = image_l2(pool_to(t.net().reconstruct(G, enc.w_plus, feats).image, r), b.loss).item();
  t.net().train();
  return {e, rec};
}

TEST_CASE("train/trainer: training lowers the reconstruction error well below the encoder-only error") {
  TrainConfig cfg = tiny_train_config(false);
  cfg.lr = 0.003;
  Networks nets = tiny_networks(false);
  auto data = generator_source(*nets.G, cfg.loss_resolution);
  Trainer t(cfg, gstest_gs::tiny_config(), std::move(nets), std::move(data));
  gradstyle::Generator held(12345);  // a stream the training does not use
  auto eval_source = generator_source(*t.networks().G, cfg.loss_resolution);
  const Batch eval = eval_source->next(4, held);
  const EvalL2 before = evaluate(t, eval);
  for (int i = 0; i < 120; ++i) t.step();
  const EvalL2 after = evaluate(t, eval);
  MESSAGE("held-out batch: encoder-only L2 " << before.encoder_only << "; reconstruction L2 " << before.reconstruction
                                             << " before training, " << after.reconstruction << " after "
                                             << 120 << " iterations");
  CHECK(before.reconstruction == doctest::Approx(before.encoder_only).epsilon(0.05));  // gates start near 0
  CHECK(after.reconstruction < 0.5 * after.encoder_only);
}

TEST_CASE("train/trainer: configuration errors name what is missing") {
  TrainConfig cfg = tiny_train_config(true);
  Networks nets = tiny_networks(false);  // no D although lambda_adv > 0
  auto data = generator_source(*nets.G, cfg.loss_resolution);
  CHECK_THROWS_WITH_AS(Trainer(cfg, gstest_gs::tiny_config(), std::move(nets), std::move(data)),
                       doctest::Contains("needs a discriminator"), ValueError);
  TrainConfig c2 = tiny_train_config(false);
  c2.lambda_lpips = 0.8;
  Networks n2 = tiny_networks(false);
  auto d2 = generator_source(*n2.G, c2.loss_resolution);
  CHECK_THROWS_WITH_AS(Trainer(c2, gstest_gs::tiny_config(), std::move(n2), std::move(d2)),
                       doctest::Contains("lambda_lpips > 0 needs LPIPS"), ValueError);
}

TEST_CASE("train/trainer: a non-finite loss stops the run naming the term and the iteration") {
  auto t = tiny_trainer(false);
  t->step();
  {
    autograd::NoGradGuard ng;
    // Poison one GRM output weight: F, and so L_f and the images, become NaN.
    auto params = t->net().named_parameters();
    for (auto& [name, p] : params)
      if (name == "grm.0.out.weight") p->fill_(std::numeric_limits<double>::quiet_NaN());
  }
  CHECK_THROWS_WITH_AS(t->step(), doctest::Contains("at iteration 2"), DivergenceError);
}

TEST_CASE("train/trainer: the folder data source visits every image once per epoch, in a seeded order, with flips") {
  const std::string dir = temp_path("images");
  std::filesystem::create_directories(dir);
  // Four 8x8 images, each a distinct flat colour with one bright left column (to see flips).
  for (int i = 0; i < 4; ++i) {
    io::Image img = io::Image::blank(8, 8, 3, uint8_t(40 + 50 * i));
    for (int y = 0; y < 8; ++y) img.at(0, y, 0) = 255;
    io::save_png(dir + "/img" + std::to_string(i) + ".png", img);
  }
  std::ofstream(dir + "/notes.txt") << "not an image";
  auto src = folder_source(dir, 8, 4, /*hflip=*/0.5, /*seed=*/7);
  CHECK(src->describe().find("4 images") != std::string::npos);
  gradstyle::Generator unused(0);
  auto ids = [](const Tensor& full) {  // which image each sample is, from its green channel
    std::vector<int> r;
    for (int64_t b = 0; b < full.size(0); ++b) {
      const double g = full.narrow(0, b, 1).narrow(1, 1, 1).mean().item();  // in [-1, 1]
      r.push_back(int(std::lround(((g + 1) / 2 * 255 - 40) / 50)));
    }
    return r;
  };
  Batch a = src->next(4, unused), b = src->next(4, unused);
  CHECK(a.full.shape() == Shape{4, 3, 8, 8});
  CHECK(a.loss.shape() == Shape{4, 3, 4, 4});
  auto ea = ids(a.full), eb = ids(b.full);
  CHECK(std::set<int>(ea.begin(), ea.end()) == std::set<int>{0, 1, 2, 3});  // one epoch = each image once
  CHECK(std::set<int>(eb.begin(), eb.end()) == std::set<int>{0, 1, 2, 3});
  CHECK(src->position == 8);
  // Flips: the bright column is on the left (x = 0) or, flipped, on the right (x = 7).
  int flipped = 0;
  for (const Batch* bt : {&a, &b})
    for (int64_t s = 0; s < 4; ++s) {
      const double left = bt->full.narrow(0, s, 1).narrow(1, 0, 1).narrow(3, 0, 1).mean().item();
      const double right = bt->full.narrow(0, s, 1).narrow(1, 0, 1).narrow(3, 7, 1).mean().item();
      CHECK((left > 0.99) != (right > 0.99));
      flipped += right > 0.99;
    }
  CHECK(flipped > 0);
  CHECK(flipped < 8);
  // The order and flips are functions of (seed, position): a fresh source at position 4 repeats b.
  auto again = folder_source(dir, 8, 4, 0.5, 7);
  again->position = 4;
  Batch b2 = again->next(4, unused);
  CHECK(gstest_gs::bit_equal(b2.full, b.full));
  auto other = folder_source(dir, 8, 4, 0.5, 8);
  CHECK_FALSE(gstest_gs::bit_equal(other->next(4, unused).full, a.full));  // another seed, another epoch
  std::filesystem::remove_all(dir);
  CHECK_THROWS_WITH_AS(folder_source(dir, 8, 4, 0.5, 7), doctest::Contains("is not a folder"), IOError);
}

namespace {

std::unique_ptr<Trainer> progressive_trainer(const std::string& stages) {
  const std::string j = R"({"batch": 2, "lambda_lpips": 0, "lambda_id": 0, "lambda_adv": 0, "loss_resolution": 32,
                            "lr": 0.001, "seed": 3, "data_source": "generator", "progressive_stages": )" +
                        stages + "}";
  TrainConfig cfg = TrainConfig::parse(j, gsn::GradStyleConfig::keys());
  Networks nets = tiny_networks(false);
  auto data = generator_source(*nets.G, cfg.loss_resolution);
  return std::make_unique<Trainer>(cfg, gstest_gs::tiny_config(), std::move(nets), std::move(data));
}

std::map<std::string, std::vector<double>> snapshot(Trainer& t) {
  std::map<std::string, std::vector<double>> out;
  for (auto& [k, v] : t.net().state_dict()) out[k] = v.to(DType::f64).contiguous().to_vector<double>();
  return out;
}

// Whether every entry of stage m (grm.m.*, gam.m.*, gate.m.*) is the same in a and b.
bool stage_same(const std::map<std::string, std::vector<double>>& a, const std::map<std::string, std::vector<double>>& b,
                int m) {
  bool same = true;
  int n = 0;
  for (const auto& [k, v] : a)
    for (const char* p : {"grm.", "gam.", "gate."})
      if (k.rfind(std::string(p) + std::to_string(m) + ".", 0) == 0) {
        ++n;
        same = same && v == b.at(k);
      }
  REQUIRE(n > 0);
  return same;
}

}  // namespace

TEST_CASE("train/trainer: progressive_stages trains one stage at a time, earlier ones frozen, later ones bypassed") {
  auto t = progressive_trainer("[2, 2, 2]");
  REQUIRE(t->net().num_modules() == 3);
  const auto s0 = snapshot(*t);
  t->step();
  t->step();
  const auto s2 = snapshot(*t);
  CHECK(!stage_same(s0, s2, 0));  // stage 1 trains
  CHECK(stage_same(s0, s2, 1));   // stages 2 and 3 not yet: bypassed, untouched
  CHECK(stage_same(s0, s2, 2));
  CHECK(t->net().active_stages() == 1);
  t->step();
  t->step();
  const auto s4 = snapshot(*t);
  CHECK(stage_same(s2, s4, 0));   // frozen, BatchNorm statistics included
  CHECK(!stage_same(s2, s4, 1));  // now stage 2 trains
  CHECK(stage_same(s2, s4, 2));
  CHECK(t->net().active_stages() == 2);
  for (int i = 0; i < 3; ++i) t->step();  // stage 3, and it keeps training after the schedule
  const auto s7 = snapshot(*t);
  CHECK(stage_same(s4, s7, 0));
  CHECK(stage_same(s4, s7, 1));
  CHECK(!stage_same(s4, s7, 2));
  CHECK(t->net().active_stages() == 3);
}

TEST_CASE("train/trainer: progressive training resumes bitwise across a stage change") {
  const std::string straight = temp_path("p_straight.safetensors"), mid = temp_path("p_mid.safetensors"),
                    resumed = temp_path("p_resumed.safetensors");
  {
    auto t = progressive_trainer("[2, 2, 1]");
    for (int i = 0; i < 4; ++i) t->step();
    t->save(straight);
  }
  for (int k : {1, 2, 3}) {  // before, exactly at and after the change
    CAPTURE(k);
    {
      auto t = progressive_trainer("[2, 2, 1]");
      for (int i = 0; i < k; ++i) t->step();
      t->save(mid);
    }
    auto t = progressive_trainer("[2, 2, 1]");
    t->load(mid);
    for (int i = k; i < 4; ++i) t->step();
    t->save(resumed);
    CHECK(bytes_of(straight) == bytes_of(resumed));
  }
  for (const auto& p : {straight, mid, resumed}) std::filesystem::remove(p);
}

TEST_CASE("train/trainer: progressive_stages must give one iteration count (>= 1) per stage") {
  CHECK_THROWS_WITH_AS(progressive_trainer("[2]"), doctest::Contains("1 entries for 3 refined blocks"), ValueError);
  CHECK_THROWS_WITH_AS(progressive_trainer("[0, 2, 2]"), doctest::Contains(">= 1 iteration"), ValueError);
}
