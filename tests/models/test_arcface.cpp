// ArcFace identity loss (SPEC.md C.7) against PyTorch fixtures written by
// tools/reference/make_encoder_fixtures.py (irse_ref.py id_features / id_loss).
#include "gradstyle/models/arcface.hpp"

#include "gradstyle/ops/pool.hpp"
#include "models/encoder_fixtures.hpp"

using namespace gradstyle;
using namespace gradstyle::models;
using enctest::at;
using enctest::fixture;

namespace {
// The small test geometry: 64-px images, crop rows 9:56 x cols 8:55, pool to 32 (irse_tiny's input).
arcface::IDCropConfig small_crop() { return {.image_size = 64, .top = 9, .bottom = 56, .left = 8, .right = 55, .pool_size = 32}; }
}  // namespace

TEST_CASE("models/arcface: crop, adaptive pooling, embedding, loss and its gradient match PyTorch") {
  const auto io = enctest::load_io("arcface_tiny_io.pt");
  gstest::for_each_device([&](Device d) {
    auto id = arcface::ArcFaceID::from_checkpoint(fixture("irse_tiny.pth"), {.device = d, .crop = small_crop()});
    Tensor y_hat = at(io, "y_hat").to(d).requires_grad_();
    Tensor y = enctest::synthetic_image(2, 3, 64, 64).to(d);
    ENC_EXPECT_CLOSE(id->embed(y_hat).cpu(), at(io, "emb_hat"), 2e-5);
    ENC_EXPECT_CLOSE(id->embed(y).cpu(), at(io, "emb_y"), 2e-5);
    Tensor loss = id->loss(y_hat, y);
    CHECK(loss.dim() == 0);
    GS_EXPECT_CLOSE(loss.reshape({1}).cpu(), at(io, "loss"), 1e-6, 1e-5);
    loss.backward();
    ENC_EXPECT_CLOSE(y_hat.grad().cpu(), at(io, "grad_y_hat"), 1e-4);
    // pixels outside the crop get no gradient
    Tensor g = y_hat.grad().cpu();
    CHECK(enctest::max_abs(slice(g, 2, 0, 9)) == 0);
    CHECK(enctest::max_abs(slice(g, 3, 55, 64)) == 0);
  });
}

TEST_CASE("models/arcface: the real 256 -> crop 35:223 x 32:220 -> 112 geometry matches PyTorch") {
  const auto io = enctest::load_io("arcface_tiny112_io.pt");
  auto id = arcface::ArcFaceID::from_checkpoint(fixture("arcface_tiny112.pth"));  // default crop
  CHECK(id->crop().image_size == 256);
  CHECK(id->crop().pool_size == 112);
  CHECK(id->facenet().config().input_size == 112);
  Tensor y_hat = enctest::synthetic_image(2, 3, 256, 256).requires_grad_();
  Tensor y = enctest::synthetic_image(2, 3, 256, 256, 0.4);
  ENC_EXPECT_CLOSE(id->embed(y_hat), at(io, "emb_hat"), 2e-5);
  ENC_EXPECT_CLOSE(id->embed(y), at(io, "emb_y"), 2e-5);
  Tensor loss = id->loss(y_hat, y);
  GS_EXPECT_CLOSE(loss.reshape({1}), at(io, "loss"), 1e-6, 1e-4);
  loss.backward();
  const Tensor g = y_hat.grad();
  Tensor crop = slice(slice(g, 2, 35, 223), 3, 32, 220);
  ENC_EXPECT_CLOSE(avg_pool2d(sum(crop, {1}, true), {4}), at(io, "grad_y_hat_crop_pooled"), 2e-4);
  const double outside = sum(abs(g)).item() - sum(abs(crop)).item();
  CHECK(outside == 0);
}

TEST_CASE("models/arcface: the target embedding is detached; identical images give zero loss") {
  auto id = arcface::ArcFaceID::from_checkpoint(fixture("irse_tiny.pth"), {.crop = small_crop()});
  Tensor y_hat = Tensor::randn({2, 3, 64, 64}, 9).requires_grad_();
  Tensor y = Tensor::randn({2, 3, 64, 64}, 10).requires_grad_();
  id->loss(y_hat, y).backward();
  CHECK(y_hat.grad().defined());
  CHECK(!y.grad().defined());
  Tensor same = Tensor::randn({2, 3, 64, 64}, 12);
  CHECK(std::abs(id->loss(same, same).item()) < 1e-6);
  GS_EXPECT_CLOSE(id->similarity(same, same), Tensor::ones({2}), 1e-6, 0);
  // state_dict keys carry the facenet prefix of e4e's IDLoss module
  CHECK(id->state_dict().count("facenet.output_layer.3.weight") == 1);
}

TEST_CASE("models/arcface: wrong image sizes, crop boxes and pool sizes are refused with clear messages") {
  auto id = arcface::ArcFaceID::from_checkpoint(fixture("irse_tiny.pth"), {.crop = small_crop()});
  GS_CHECK_THROWS_WITH(id->embed(Tensor::zeros({1, 3, 128, 128})), ShapeError, "[B, 3, 64, 64]", "[1,3,128,128]",
                       "average-pool");
  GS_CHECK_THROWS_WITH(id->loss(Tensor::zeros({1, 3, 64, 64}), Tensor::zeros({2, 3, 64, 64})), ShapeError, "differ");
  auto bad = small_crop();
  bad.bottom = 70;
  GS_CHECK_THROWS_WITH(arcface::ArcFaceID::from_checkpoint(fixture("irse_tiny.pth"), {.crop = bad}), ValueError,
                       "does not fit a 64-px image");
  // the default 112-px pooling does not fit a Backbone made for 32 px
  GS_CHECK_THROWS_WITH(arcface::ArcFaceID::from_checkpoint(fixture("irse_tiny.pth")), ValueError, "pooling to 112 px",
                       "takes 32 px");
}
