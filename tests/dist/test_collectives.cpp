// The data-parallel building blocks in one process: the local group, and a two-rank group faked
// in-process (the other rank holds a copy of this rank's tensors), against which the
// differentiable collectives, synchronised BatchNorm, the discriminator's global minibatch
// deviation and the bucketed gradient reduction must agree with one process on the concatenated
// batch. The real multi-process runs are in test_mpi_train.cpp.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/dist/dist.hpp"
#include "gradstyle/models/stylegan2.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/norm.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/train/stylegan2_trainer.hpp"
#include "gradstyle/train/trainer.hpp"
#include "models/gradstyle_fixture.hpp"
#include "support/harness.hpp"

using namespace gradstyle;
namespace sg = gradstyle::models::stylegan2;

namespace {

// Rank `me` of two, where the other rank holds exactly this rank's values: a sum doubles, a
// gather repeats.
class MirrorGroup final : public dist::ProcessGroup {
 public:
  explicit MirrorGroup(int me = 0) : me_(me) {}
  int rank() const override { return me_; }
  int size() const override { return 2; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 2; }
  std::string backend() const override { return "mirror"; }
  void all_reduce_sum_(Tensor& t) override {
    ++calls;
    t.mul_(2.0);
  }
  void broadcast_(Tensor&, int) override {}
  void broadcast_bytes(std::vector<uint8_t>&, int) override {}
  Tensor all_gather_rows(const Tensor& in) override {
    ++calls;
    return cat({in, in}, 0);
  }
  std::vector<int64_t> all_gather_i64(int64_t v) override { return {v, v + skew}; }
  void barrier() override {}
  void wait_for_root_io() override {}
  [[noreturn]] void abort(const std::string& m, int) override { throw dist::DistError(m); }
  int calls = 0;
  int64_t skew = 0;  // != 0: rank 1 reports another value (a drifted replica)

 private:
  int me_;
};

Tensor randn64(const Shape& s, uint64_t seed) { return Tensor::randn(s, seed, {.dtype = DType::f64}); }

}  // namespace

TEST_CASE("dist: the local group is one rank and its collectives are the identity") {
  dist::ProcessGroup& w = dist::world();
  CHECK(w.size() == 1);
  CHECK(w.rank() == 0);
  CHECK(w.backend() == "local");
  CHECK_FALSE(dist::launched_by_mpi());
  Tensor x = randn64({3, 4}, 1).requires_grad_();
  Tensor y = dist::all_reduce_sum(x, w);
  CHECK(gstest::compare(y, x.detach(), {0, 0}).ok);
  sum(mul(y, y)).backward();
  CHECK(gstest::compare(x.grad(), mul_scalar(x.detach(), 2.0), {0, 0}).ok);
  CHECK(gstest::compare(dist::all_gather(x, w), x.detach(), {0, 0}).ok);
  CHECK(dist::all_reduce_sum(std::vector<double>{1.5, -2.0}, w) == std::vector<double>{1.5, -2.0});
  CHECK_THROWS_AS(w.broadcast_(x, 1), dist::DistError);
  CHECK(dist::batch_group() == nullptr);
}

TEST_CASE("dist: all_reduce_sum and all_gather are differentiable to second order (mirror group)") {
  MirrorGroup g;
  // all_reduce_sum on two identical ranks is 2x; its backward sums the gradient over ranks.
  gstest::gradcheck([&](const std::vector<Tensor>& v) { return dist::all_reduce_sum(square(v[0]), g); },
                    {randn64({2, 3}, 2)});
  gstest::gradgradcheck([&](const std::vector<Tensor>& v) { return dist::all_reduce_sum(square(v[0]), g); },
                        {randn64({2, 3}, 3)});
  // all_gather of [x; x]: rank 0's rows are x, the gradient of its rows is summed over ranks.
  Tensor x = randn64({2, 3}, 4).requires_grad_();
  Tensor y = dist::all_gather(x, g);
  CHECK(y.shape() == Shape{4, 3});
  Tensor w = randn64({4, 3}, 5);
  sum(mul(y, w)).backward();
  // Rank 0's rows get the gradient of both ranks' losses: w[0:2] from each (rank 1 mirrors rank 0).
  CHECK(gstest::compare(x.grad(), mul_scalar(w.narrow(0, 0, 2), 2.0), {1e-15, 0}).ok);
  {
    // As rank 1, its rows are [2, 4): the backward must take those.
    MirrorGroup g1(1);
    Tensor x1 = x.detach().clone().requires_grad_();
    sum(mul(dist::all_gather(x1, g1), w)).backward();
    CHECK(gstest::compare(x1.grad(), mul_scalar(w.narrow(0, 2, 2), 2.0), {1e-15, 0}).ok);
  }
  // Finite differences move both ranks' copies at once, so they check a loss that is symmetric in
  // the two ranks' rows (as every rank's loss is in the mirror): fold the gathered rows.
  auto folded = [&](const std::vector<Tensor>& v) {
    Tensor y2 = dist::all_gather(v[0], g);
    return square(add(y2.narrow(0, 0, 2), y2.narrow(0, 2, 2)));
  };
  gstest::gradcheck(folded, {randn64({2, 2}, 6)});
  gstest::gradgradcheck(folded, {randn64({2, 2}, 7)});
}

TEST_CASE("dist: sync_batch_norm on two ranks equals batch_norm on the concatenated batch, values and gradients") {
  MirrorGroup g;
  const int64_t C = 3;
  Tensor x = randn64({2, C, 4, 4}, 7).requires_grad_();
  Tensor weight = add_scalar(randn64({C}, 8), 1.0).requires_grad_();
  Tensor bias = randn64({C}, 9).requires_grad_();
  Tensor rm = Tensor::zeros({C}, {.dtype = DType::f64}), rv = Tensor::ones({C}, {.dtype = DType::f64});
  Tensor up = randn64({2, C, 4, 4}, 10);  // the upstream gradient (the same on both ranks)
  Tensor out = dist::sync_batch_norm(x, rm, rv, weight, bias, true, 0.1, 1e-5, g);
  sum(mul(out, up)).backward();

  // One process: the batch [x; x2] with x2 a separate copy, loss over both halves. Rank 0 of the
  // mirror group must see the first half of the output and the gradient w.r.t. the first half.
  Tensor x1 = x.detach().clone().requires_grad_(), x2 = x.detach().clone().requires_grad_();
  Tensor w1 = weight.detach().clone().requires_grad_(), b1 = bias.detach().clone().requires_grad_();
  Tensor rm1 = Tensor::zeros({C}, {.dtype = DType::f64}), rv1 = Tensor::ones({C}, {.dtype = DType::f64});
  Tensor ref = batch_norm(cat({x1, x2}, 0), rm1, rv1, w1, b1, true, 0.1, 1e-5);
  sum(mul(ref, cat({up, up}, 0))).backward();
  const gstest::Tol tol{1e-12, 1e-12};
  CHECK(gstest::compare(out.detach(), ref.detach().narrow(0, 0, 2), tol).ok);
  CHECK(gstest::compare(x.grad(), x1.grad(), tol).ok);
  // The parameters' gradients of one rank are half the global ones (the other half comes from
  // rank 1 when all_reduce_gradients sums them).
  CHECK(gstest::compare(mul_scalar(weight.grad(), 2.0), w1.grad(), tol).ok);
  CHECK(gstest::compare(mul_scalar(bias.grad(), 2.0), b1.grad(), tol).ok);
  CHECK(gstest::compare(rm, rm1, tol).ok);
  CHECK(gstest::compare(rv, rv1, tol).ok);  // the unbiased variance of the 2 x 2 x 16 values
  // Evaluation mode, or one rank, is plain batch_norm.
  Tensor e = dist::sync_batch_norm(x.detach(), rm, rv, weight.detach(), bias.detach(), false, 0.1, 1e-5, g);
  CHECK(gstest::compare(e, batch_norm(x.detach(), rm, rv, weight.detach(), bias.detach(), false), {0, 0}).ok);
}

TEST_CASE("dist: with a batch group, the discriminator's minibatch deviation is that of the global batch") {
  sg::DiscriminatorConfig dc;
  dc.size = 16;
  dc.channels = {{4, 8}, {8, 8}, {16, 8}};
  gradstyle::Generator init(3);
  sg::Discriminator D(dc, &init);
  Tensor x = Tensor::randn({4, 3, 16, 16}, 11);
  MirrorGroup g;
  Tensor local = D.forward(x);  // one group of this rank's 4 samples
  Tensor global;
  {
    dist::BatchGroupGuard bg(&g);
    global = D.forward(x);
  }
  CHECK(dist::batch_group() == nullptr);
  CHECK(g.calls == 1);  // one gather
  Tensor ref = D.forward(cat({x, x}, 0)).narrow(0, 0, 4);  // groups {0, 2, 4, 6}, {1, 3, 5, 7} of [x; x]
  CHECK(gstest::compare(global, ref, {1e-6, 1e-6}).ok);
  CHECK_FALSE(gstest::compare(local, ref, {1e-6, 1e-6}).ok);  // the grouping matters
}

TEST_CASE("dist: all_reduce_gradients sums in buckets, skips parameters without .grad, checks the layout") {
  MirrorGroup g;
  std::vector<std::pair<std::string, Tensor>> params;
  for (int i = 0; i < 5; ++i) {
    Tensor p = randn64({int64_t(3 + i)}, uint64_t(20 + i)).requires_grad_();
    if (i != 2) p.set_grad(randn64({int64_t(3 + i)}, uint64_t(30 + i)));
    std::string name = "p";
    name += std::to_string(i);  // (GCC 12 warns falsely about "p" + std::to_string(i): -Wrestrict)
    params.emplace_back(name, p);
  }
  std::vector<Tensor> before;
  for (auto& [n, p] : params) before.push_back(p.grad().defined() ? p.grad().clone() : Tensor());
  // 8 doubles a bucket: [3, 4] then [6] then [7] (p2 has no gradient).
  const dist::ReduceStats st = dist::all_reduce_gradients(params, g, 8 * sizeof(double));
  CHECK(st.tensors == 4);
  CHECK(st.elements == 3 + 4 + 6 + 7);
  CHECK(st.buckets == 3);
  CHECK(g.calls == 3);
  for (size_t i = 0; i < params.size(); ++i) {
    if (i == 2) {
      CHECK_FALSE(params[i].second.grad().defined());
      continue;
    }
    CHECK(gstest::compare(params[i].second.grad(), mul_scalar(before[i], 2.0), {0, 0}).ok);
  }
  // A rank whose layout differs is named.
  g.skew = 1;
  CHECK_THROWS_WITH_AS(dist::all_reduce_gradients(params, g), doctest::Contains("rank 1 differs from rank 0"),
                       dist::DistError);
  CHECK_THROWS_WITH_AS(dist::check_replicas_equal(params, g, "iteration 4"),
                       doctest::Contains("iteration 4: the replicas are not bit-identical: rank 1"), dist::DistError);
  g.skew = 0;
  CHECK_NOTHROW(dist::check_replicas_equal(params, g, "iteration 4"));
  CHECK_NOTHROW(dist::check_same_text("a.png b.png", g, "the data"));
  g.skew = 1;
  CHECK_THROWS_WITH_AS(dist::check_same_text("a.png b.png", g, "the data"),
                       doctest::Contains("the data: differs between ranks: rank 1"), dist::DistError);
}

TEST_CASE("dist: the data sources' slices, concatenated in rank order, are the global batch") {
  // The generator renders 2 rows where the whole batch has 4: GEMM blocking may differ in the last
  // float bits (seen: 3e-6); the toyfaces renderer is exact.
  auto check_source = [](train::DataSource& whole, train::DataSource& r0, train::DataSource& r1, gstest::Tol tol) {
    gradstyle::Generator ga(5), gb(5), gc(5);
    for (int step = 0; step < 2; ++step) {
      train::Batch all = whole.next(4, ga);
      train::Batch a = r0.next_slice(4, 0, 2, gb), b = r1.next_slice(4, 2, 2, gc);
      const gstest::CloseReport r = gstest::compare(cat({a.full, b.full}, 0), all.full, tol);
      CHECK_MESSAGE(r.ok, "worst at " << r.worst_index << ": " << r.a_val << " vs " << r.b_val << r.shape_msg);
      CHECK(gstest::compare(cat({a.loss, b.loss}, 0), all.loss, tol).ok);
    }
    CHECK(whole.position == 8);
    CHECK(r0.position == 8);
    CHECK(r1.position == 8);
    CHECK(ga.offset() == gb.offset());
    CHECK(ga.offset() == gc.offset());
  };
  {
    auto w = train::toyfaces_source(16, 8, 3, 5), a = train::toyfaces_source(16, 8, 3, 5),
         b = train::toyfaces_source(16, 8, 3, 5);
    check_source(*w, *a, *b, {0, 0});
  }
  {
    auto G = gstest_gs::tiny_generator(5);
    auto w = train::generator_source(*G, 32), a = train::generator_source(*G, 32), b = train::generator_source(*G, 32);
    check_source(*w, *a, *b, {2e-5, 1e-4});
  }
  {
    // A folder of 5 images (so a global batch of 4 crosses an epoch), flips on.
    const auto dir = std::filesystem::temp_directory_path() / ("gs_dist_folder_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    for (int i = 0; i < 5; ++i) {
      namespace tf = gradstyle::data::toyfaces;
      std::string name = "f";
      name += std::to_string(i) + ".png";  // (GCC 12 warns falsely about "f" + std::to_string(i): -Wrestrict)
      io::save_png((dir / name).string(),
                   tf::render_image(tf::sample_identity(1, tf::train_index(uint64_t(i))), tf::sample_edit(1, uint64_t(i)), 16));
    }
    auto w = train::folder_source(dir.string(), 16, 8, 0.5, 4), a = train::folder_source(dir.string(), 16, 8, 0.5, 4),
         b = train::folder_source(dir.string(), 16, 8, 0.5, 4);
    check_source(*w, *a, *b, {0, 0});
    CHECK(w->fingerprint().find("f4.png") != std::string::npos);  // the file list, checked across ranks
    std::filesystem::remove_all(dir);
  }
  gradstyle::Generator r(1);
  auto s = train::toyfaces_source(16, 8, 3, 5);
  CHECK_THROWS_WITH_AS(s->next_slice(4, 3, 2, r), doctest::Contains("slice [3, 5) is not inside a global batch of 4"),
                       ValueError);
}

TEST_CASE("dist: GRADSTYLE_COLLECTIVE_TIMEOUT is read, with a fallback for a bad value") {
  ::setenv("GRADSTYLE_COLLECTIVE_TIMEOUT", "12.5", 1);
  CHECK(dist::collective_timeout() == 12.5);
  ::setenv("GRADSTYLE_COLLECTIVE_TIMEOUT", "soon", 1);
  CHECK(dist::collective_timeout() == 600.0);
  ::unsetenv("GRADSTYLE_COLLECTIVE_TIMEOUT");
  CHECK(dist::collective_timeout() == 600.0);
}

TEST_CASE("dist: the GAN trainer refuses a per-rank batch its path batch cannot split") {
  MirrorGroup g;
  auto cfg = train::StyleGAN2TrainConfig::parse(R"({"stage": "stylegan2", "size": 16, "style_dim": 16, "n_mlp": 2,
    "channels": {"4": 16, "8": 16, "16": 8}, "batch": 3, "path_batch_shrink": 2, "seed": 5})");
  CHECK_THROWS_WITH_AS(train::StyleGAN2Trainer(cfg, train::toyfaces_source(16, 16, 0), Device::cpu(), &g),
                       doctest::Contains("divisible by path_batch_shrink"), ValueError);
  // One process has no such constraint (rosinality's max(1, batch // shrink)).
  CHECK_NOTHROW(train::StyleGAN2Trainer(cfg, train::toyfaces_source(16, 16, 0), Device::cpu()));
}
