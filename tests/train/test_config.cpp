// The training configuration: defaults are SPEC B.9's, unknown and bad keys are errors that name
// them, network keys are set aside, and dump/parse round-trips.
#include <doctest/doctest.h>

#include "gradstyle/core/error.hpp"
#include "gradstyle/train/config.hpp"

using namespace gradstyle;
using gradstyle::train::TrainConfig;

TEST_CASE("train/config: defaults are SPEC B.9's") {
  TrainConfig c = TrainConfig::parse("{}", {});
  CHECK(c.lambda_l2 == 1.0);
  CHECK(c.lambda_lpips == 0.8);
  CHECK(c.lambda_id == 0.1);
  CHECK(c.lambda_adv == 0.001);
  CHECK(c.lambda_f == 0.01);
  CHECK(c.lambda_aligner == 0.1);
  CHECK(c.warp_distortion == 0.15);
  CHECK(c.warp_prob == 0.9);
  CHECK(c.r1_gamma == 10.0);
  CHECK(c.d_reg_every == 16);
  CHECK(c.lookahead_k == 6);
  CHECK(c.lookahead_alpha == 0.5);
  CHECK(c.batch == 8);
  CHECK(c.iterations == 70000);
  CHECK(c.optimizer == "adam_lookahead");
  CHECK(c.d_ratio() == doctest::Approx(16.0 / 17.0));
  CHECK(c.use_discriminator());
  CHECK(c.loss_reduction == Reduction::Mean);
}

TEST_CASE("train/config: unknown keys and bad values are named, all at once") {
  CHECK_THROWS_WITH_AS(TrainConfig::parse(R"({"lamda_l2": 1, "bacth": 4})", {}),
                       doctest::Contains("unknown keys: 'bacth' 'lamda_l2'"), ValueError);
  CHECK_THROWS_WITH_AS(TrainConfig::parse(R"({"batch": 0, "warp_prob": 2, "optimizer": "sgd"})", {}),
                       doctest::Contains("batch = 0: must be >= 1"), ValueError);
  try {
    TrainConfig::parse(R"({"batch": 0, "warp_prob": 2, "optimizer": "sgd", "lr": "fast"})", {});
    FAIL("expected ValueError");
  } catch (const ValueError& e) {
    std::string m = e.what();
    CHECK(m.find("warp_prob = 2: must be in [0, 1]") != std::string::npos);
    CHECK(m.find("optimizer = \"sgd\": expected adam_lookahead | ranger | adam") != std::string::npos);
    CHECK(m.find("lr = \"fast\": wrong type") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(TrainConfig::parse("{not json", {}), doctest::Contains("not valid JSON"), ValueError);
  CHECK_THROWS_WITH_AS(TrainConfig::parse("[1]", {}), doctest::Contains("expected a JSON object"), ValueError);
}

TEST_CASE("train/config: network keys are set aside; adv_weight is lambda_adv's alias") {
  TrainConfig c = TrainConfig::parse(R"({"refined_blocks": [3, 6], "topk_mu": 0.5, "adv_weight": 0})",
                                     {"refined_blocks", "topk_mu"});
  CHECK(c.model_json == R"({"refined_blocks":[3,6],"topk_mu":0.5})");
  CHECK(c.lambda_adv == 0.0);
  CHECK_FALSE(c.use_discriminator());
  CHECK_THROWS_WITH_AS(TrainConfig::parse(R"({"adv_weight": 0, "lambda_adv": 0.1})", {}),
                       doctest::Contains("contradicts lambda_adv"), ValueError);
  CHECK_THROWS_WITH_AS(TrainConfig::parse(R"({"refined_blocks": [3]})", {}), doctest::Contains("'refined_blocks'"),
                       ValueError);
}

TEST_CASE("train/config: dump then parse gives the same configuration") {
  TrainConfig a = TrainConfig::parse(R"({"batch": 2, "lr": 0.002, "loss_reduction": "sum", "progressive_stages": [5, 7],
                                         "d_lr_lazy_correction": false, "seed": 42})",
                                     {});
  CHECK(a.loss_reduction == Reduction::Sum);
  CHECK(a.d_ratio() == 1.0);
  TrainConfig b = TrainConfig::parse(a.dump(), {});
  CHECK(b.dump() == a.dump());
  CHECK(b.batch == 2);
  CHECK(b.seed == 42u);
  CHECK(b.progressive_stages == std::vector<int64_t>{5, 7});
}
