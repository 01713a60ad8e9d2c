// InterFaceGAN and GANSpace edits (SPEC.md C.5) against PyTorch fixtures written by
// tools/reference/make_encoder_fixtures.py (e4e's editings/ganspace.py semantics).
#include "gradstyle/models/editing.hpp"

#include "models/encoder_fixtures.hpp"

using namespace gradstyle;
using namespace gradstyle::models;
using enctest::at;
using enctest::fixture;

TEST_CASE("models/editing: InterFaceGAN directions load from e4e-style files and edit W+ like PyTorch") {
  const auto io = enctest::load_io("editing_io.pt");
  gstest::for_each_device([&](Device d) {
    const Tensor age = editing::load_interfacegan_direction(fixture("age.pt"), d);    // zip, root 'archive'
    const Tensor pose = editing::load_interfacegan_direction(fixture("pose.pt"), d);  // storage tagged cuda:0
    CHECK(age.shape() == Shape{1, 512});
    CHECK(pose.shape() == Shape{1, 18, 512});
    CHECK(age.device() == d);
    GS_EXPECT_CLOSE(sqrt(sum(age * age)).reshape({1}).cpu(), Tensor::ones({1}), 1e-6, 0);
    const Tensor w = at(io, "w").to(d);
    // [1, 512]: added to all 18 rows; [1, 18, 512]: row by row
    GS_EXPECT_CLOSE(editing::interfacegan_edit(w, age, 3.0).cpu(), at(io, "age_a3"), 1e-6, 1e-6);
    GS_EXPECT_CLOSE(editing::interfacegan_edit(w, pose, -2.0).cpu(), at(io, "pose_m2"), 1e-6, 1e-6);
  });
}

TEST_CASE("models/editing: GANSpace edits from ffhq_pca.pt (non-contiguous comp) match e4e's ganspace.py") {
  const auto io = enctest::load_io("editing_io.pt");
  gstest::for_each_device([&](Device d) {
    const auto pca = editing::GanspacePCA::load(fixture("ffhq_pca.pt"), d);
    CHECK(pca.num_components() == 80);
    CHECK(pca.dim() == 512);
    CHECK(pca.comp.shape() == Shape{80, 1, 512});
    const Tensor w = at(io, "w").to(d);
    struct Case {
      const char* name;
      editing::GanspaceEdit e;
    };
    for (const Case& c : {Case{"gs_eyes", {"eyes", 54, 7, 8, 20.0}}, Case{"gs_beard", {"beard", 58, 7, 9, -20.0}},
                          Case{"gs_angle", {"head_angle_up", 11, 1, 4, 20.0}}}) {
      INFO("edit " << c.name);
      const Tensor out = editing::ganspace_edit(w, pca, c.e).cpu();
      CHECK(out.shape() == w.shape());
      // rows start..end-1 as PyTorch computed them (float64 reference of a float32 edit)
      GS_EXPECT_CLOSE(slice(out, 1, c.e.start, c.e.end), at(io, c.name), 1e-4, 1e-5);
      // every other row untouched, bit for bit
      GS_EXPECT_CLOSE(slice(out, 1, 0, c.e.start), slice(w.cpu(), 1, 0, c.e.start), 0, 0);
      GS_EXPECT_CLOSE(slice(out, 1, c.e.end, 18), slice(w.cpu(), 1, c.e.end, 18), 0, 0);
    }
  });
}

TEST_CASE("models/editing: GANSpace sets the coordinate (closed form) and both edits are differentiable") {
  // D = 4, K = 2, unit-norm components: a latent whose rows are all equal gets coordinate exactly
  // `strength` in every edited row.
  editing::GanspacePCA pca;
  pca.mean = Tensor::from_vector<double>({0.5, -0.25, 0.0, 1.0}, {1, 4});
  pca.comp = Tensor::from_vector<double>({0.6, 0.8, 0, 0, 0, 0, 0.8, -0.6}, {2, 1, 4});
  pca.stdev = Tensor::from_vector<double>({2.0, 0.5}, {2});
  Tensor row = Tensor::from_vector<double>({1.0, 2.0, -1.0, 0.5}, {1, 1, 4});
  Tensor w = row.expand({2, 3, 4}).contiguous();
  Tensor out = editing::ganspace_edit(w, pca, 1, 0, 3, 7.0);
  auto coord = [&](const Tensor& r) {  // <r - mean, comp1> / std1
    return sum((r - pca.mean.reshape({4})) * pca.comp.reshape({2, 4}).narrow(0, 1, 1).reshape({4})).item() / 0.5;
  };
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 3; ++i) CHECK(coord(select(select(out, 0, b), 0, i)) == doctest::Approx(7.0).epsilon(1e-12));
  // the orthogonal component keeps its coordinate
  Tensor out0 = editing::ganspace_edit(w, pca, 1, 1, 2, -3.0);
  GS_EXPECT_CLOSE(select(out0, 1, 0), select(w, 1, 0), 0, 0);

  Tensor wr = Tensor::randn({2, 3, 4}, 21, {DType::f64});
  Tensor dir = Tensor::randn({1, 3, 4}, 22, {DType::f64});
  gstest::gradcheck([&](const std::vector<Tensor>& in) { return editing::ganspace_edit(in[0], pca, 0, 1, 3, 2.5); }, {wr});
  gstest::gradcheck([&](const std::vector<Tensor>& in) { return editing::interfacegan_edit(in[0], in[1], 1.5); },
                    {wr, dir});
}

TEST_CASE("models/editing: per-sample InterFaceGAN strengths equal separate edits") {
  Tensor w = Tensor::randn({3, 18, 8}, 1);
  Tensor d = Tensor::randn({1, 8}, 2);
  Tensor alpha = Tensor::from_vector<float>({-2.f, 0.f, 3.5f}, {3});
  Tensor out = editing::interfacegan_edit(w, d, alpha);
  const std::vector<double> a{-2.0, 0.0, 3.5};
  for (int64_t b = 0; b < 3; ++b)
    GS_EXPECT_CLOSE(select(out, 0, b), select(editing::interfacegan_edit(w, d, a[size_t(b)]), 0, b), 0, 0);
  // a [D] direction and a [N, D] one are the same as [1, D] and [1, N, D]
  GS_EXPECT_CLOSE(editing::interfacegan_edit(w, d.reshape({8}), 2.0), editing::interfacegan_edit(w, d, 2.0), 0, 0);
  Tensor dn = Tensor::randn({18, 8}, 3);
  GS_EXPECT_CLOSE(editing::interfacegan_edit(w, dn, 2.0), editing::interfacegan_edit(w, dn.reshape({1, 18, 8}), 2.0), 0, 0);
}

TEST_CASE("models/editing: shape, range and file errors name what is wrong") {
  Tensor w = Tensor::randn({2, 18, 512}, 1);
  GS_CHECK_THROWS_WITH(editing::interfacegan_edit(w, Tensor::zeros({1, 17, 512}), 1.0), ShapeError, "[1,17,512]",
                       "[2,18,512]", "[1, 18, 512] per row");
  GS_CHECK_THROWS_WITH(editing::interfacegan_edit(Tensor::zeros({18, 512}), Tensor::zeros({1, 512}), 1.0), ShapeError,
                       "[B, N, D]");
  GS_CHECK_THROWS_WITH(editing::interfacegan_edit(w, Tensor::zeros({1, 512}), Tensor::zeros({3})), ShapeError,
                       "one value per sample");
  const auto pca = editing::GanspacePCA::load(fixture("ffhq_pca.pt"));
  GS_CHECK_THROWS_WITH(editing::ganspace_edit(w, pca, 80, 7, 8, 20), IndexError, "component 80", "[0, 80)");
  GS_CHECK_THROWS_WITH(editing::ganspace_edit(w, pca, 54, 8, 8, 20), IndexError, "rows [8, 8)");
  GS_CHECK_THROWS_WITH(editing::ganspace_edit(w, pca, 54, 7, 19, 20), IndexError, "<= 18");
  GS_CHECK_THROWS_WITH(editing::ganspace_edit(Tensor::zeros({2, 18, 256}), pca, 54, 7, 8, 20), ShapeError,
                       "512-wide");
  editing::GanspacePCA broken = pca;
  broken.stdev = Tensor::ones({79});
  GS_CHECK_THROWS_WITH(editing::ganspace_edit(w, broken, 0, 0, 1, 1), ShapeError, "std [79]");
  GS_CHECK_THROWS_WITH(editing::GanspacePCA::load(fixture("age.pt")), FormatError, "no 'mean' entry");
  GS_CHECK_THROWS_WITH(editing::load_interfacegan_direction(fixture("ffhq_pca.pt")), FormatError, "holds one tensor",
                       "found 3");
}

TEST_CASE("models/editing: named GANSpace edits: HFGI's and StyleRes' ganspace_configs.csv") {
  const auto h = editing::hfgi_ganspace_edits();
  REQUIRE(h.size() == 3);
  CHECK((h[0].name == "eyes" && h[0].idx == 54 && h[0].start == 7 && h[0].end == 8 && h[0].strength == 20));
  CHECK((h[1].name == "beard" && h[1].idx == 58 && h[1].end == 9 && h[1].strength == -20));
  CHECK((h[2].name == "lip" && h[2].idx == 34 && h[2].start == 10 && h[2].end == 11));
  const auto e = editing::parse_ganspace_configs(
      "name\tidx\tstart\tend\tstrength\n# comment\n\nbig_smile\t19\t4\t5\t20\r\nwhite_hair 57 7 10 -24\n"
      "overexposed,27,8,18,15.5\n");
  REQUIRE(e.size() == 3);
  CHECK((e[0].name == "big_smile" && e[0].idx == 19 && e[0].start == 4 && e[0].end == 5 && e[0].strength == 20));
  CHECK((e[1].name == "white_hair" && e[1].strength == -24));
  CHECK((e[2].name == "overexposed" && e[2].end == 18 && e[2].strength == 15.5));
  GS_CHECK_THROWS_WITH(editing::parse_ganspace_configs("a 1 2 3 4\nb 1 5 2 3\n"), ValueError, "line 2",
                       "0 <= start < end");
  GS_CHECK_THROWS_WITH(editing::parse_ganspace_configs("a 1 2 3 4\nb 1 x 2 3\n"), ValueError, "line 2");
}
