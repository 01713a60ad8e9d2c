// StyleGAN2 generator (rosinality layout) against the PyTorch reference (tools/reference/
// stylegan2_ref.py, fixtures by make_stylegan2_fixtures.py), on the CPU and on CUDA when present.
#include <set>

#include "gradstyle/ops/bias_act.hpp"
#include "models/stylegan2_fixture.hpp"

using namespace gradstyle;
using namespace gradstyle::models::stylegan2;
using sg2test::f32_tol;
using sg2test::fx;
using sg2test::golden;
namespace sg = gradstyle::models::stylegan2;

namespace {

std::unique_ptr<sg::Generator> load_tiny(Device d = Device::cpu()) {
  sg::Generator::LoadOptions o;
  o.device = d;
  return sg::Generator::from_checkpoint(golden("tiny.pt"), o);
}

#define SG2_CLOSE(a, r) GS_EXPECT_CLOSE((a).cpu(), (r).cpu(), f32_tol((r)).atol, f32_tol((r)).rtol)

}  // namespace

TEST_CASE("models/stylegan2: configuration is read from the checkpoint's key shapes") {
  auto g = load_tiny();
  const auto& c = g->config();
  CHECK(c.size == 32);
  CHECK(c.style_dim == 32);
  CHECK(c.n_mlp == 3);
  CHECK(c.channels == std::map<int64_t, int64_t>{{4, 16}, {8, 16}, {16, 12}, {32, 8}});
  CHECK(g->n_latent() == 8);
  CHECK(g->num_layers() == 7);
  CHECK(!g->noise_generated());
  // Keys and shapes are exactly the file's (71 tensors in rosinality's layout).
  auto file = io::load_state_dict_tensors(golden("tiny.pt"), {.key = "g_ema"});
  auto sd = g->state_dict();
  REQUIRE(sd.size() == file.size());
  for (const auto& [k, v] : file) {
    INFO(k);
    REQUIRE(sd.count(k) == 1);
    CHECK(sd[k].shape() == v.shape());
    GS_EXPECT_CLOSE(sd[k], v, 0, 0);
  }
  CHECK(sd.count("convs.0.conv.blur.kernel") == 1);
  CHECK(sd.count("to_rgbs.2.upsample.kernel") == 1);
  CHECK(sd.count("noises.noise_6") == 1);
  CHECK(sd.at("noises.noise_6").shape() == Shape{1, 1, 32, 32});
  // latent_avg [32] becomes w_avg [1, 32]; the loaded generator is frozen and in eval mode.
  REQUIRE(g->w_avg.defined());
  GS_EXPECT_CLOSE(g->w_avg, fx("latent_avg").reshape({1, 32}), 0, 0);
  CHECK(g->num_parameters(/*trainable_only=*/true) == 0);
  CHECK(g->num_parameters() == 19947);  // the reference counts the same
  CHECK(!g->is_training());
  CHECK(c.str().find("32 px, style_dim 32, n_mlp 3, 8 W+ rows") != std::string::npos);
}

TEST_CASE("models/stylegan2: mapping, synthesis and truncation match the PyTorch reference") {
  gstest::for_each_device([](Device d) {
    CAPTURE(d.str());
    auto g = load_tiny(d);
    SG2_CLOSE(g->style(fx("z", d)), fx("g_style"));
    SG2_CLOSE(g->synthesis(fx("w_plus", d)), fx("g_img"));
    SynthesisOptions none;
    none.noise_mode = NoiseMode::None;
    SG2_CLOSE(g->synthesis(fx("w_plus", d), none), fx("g_img_nonoise"));
    // z -> style -> truncation 0.7 towards latent_avg -> broadcast to W+ -> image
    SG2_CLOSE(g->forward_z(fx("z", d), 0.7), fx("g_img_z_trunc07"));
    // Explicit noise maps equal to the buffers reproduce the const-noise image.
    SynthesisOptions explicit_noise;
    for (const auto& n : g->noises.noise) explicit_noise.noise.push_back(n);
    SG2_CLOSE(g->synthesis(fx("w_plus", d), explicit_noise), fx("g_img"));
  });
}

TEST_CASE("models/stylegan2: gradients w.r.t. W+, z and parameters match the reference") {
  gstest::for_each_device([](Device d) {
    CAPTURE(d.str());
    auto g = load_tiny(d);
    g->requires_grad_(true);
    Tensor wp = fx("w_plus", d).requires_grad_(true);
    Tensor loss = (g->synthesis(wp) * fx("r_img", d)).sum();
    loss.backward();
    SG2_CLOSE(wp.grad(), fx("g_grad_w_plus"));
    auto params = g->named_parameters();
    std::map<std::string, Tensor*> by_name(params.begin(), params.end());
    for (const char* n : {"input.input", "conv1.noise.weight", "convs.1.conv.weight", "convs.2.conv.modulation.weight",
                          "convs.2.activate.bias", "to_rgbs.0.conv.modulation.weight", "to_rgbs.2.bias"}) {
      INFO(n);
      REQUIRE(by_name.count(n));
      REQUIRE(by_name[n]->grad().defined());
      SG2_CLOSE(by_name[n]->grad(), fx(std::string("g_grad.") + n));
    }
    // Through the mapping network.
    g->zero_grad();
    Tensor z = fx("z", d).requires_grad_(true);
    (g->forward_z(z) * fx("r_img4", d)).sum().backward();
    SG2_CLOSE(z.grad(), fx("g_grad_z"));
    SG2_CLOSE(by_name["style.1.weight"]->grad(), fx("g_grad.style.1.weight"));
    SG2_CLOSE(by_name["style.3.bias"]->grad(), fx("g_grad.style.3.bias"));
  });
}

TEST_CASE("models/stylegan2: hooks see the feature entering StyledConv b and replace the state") {
  auto g = load_tiny();
  const Tensor wp = fx("w_plus");
  // Order and shapes of the hook calls follow SPEC B.1.
  std::vector<std::pair<int, Shape>> calls;
  Tensor plain = g->synthesis(wp);
  Tensor ident = g->forward_with_hooks(wp, [&](int b, const Tensor& x) {
    calls.emplace_back(b, x.shape());
    return x;
  });
  GS_EXPECT_CLOSE(ident, plain, 0, 0);  // the identity hook changes nothing, bit for bit
  REQUIRE(calls.size() == 7);
  for (int b = 1; b <= 7; ++b) {
    CAPTURE(b);
    CHECK(calls[size_t(b - 1)].first == b);
    auto [ch, res] = g->block_input(b);
    CHECK(calls[size_t(b - 1)].second == Shape{2, ch, res, res});
  }
  // Odd b = 3 (convs[1], nothing in between) and even b = 4 (to_rgbs[0] reads the replaced feature).
  Tensor d3 = fx("delta3"), d4 = fx("delta4");
  SG2_CLOSE(g->forward_with_hooks(wp, [&](int b, const Tensor& x) { return b == 3 ? x + d3 : x; }), fx("g_img_hook3"));
  SG2_CLOSE(g->forward_with_hooks(wp, [&](int b, const Tensor& x) { return b == 4 ? x + d4 : x; }), fx("g_img_hook4"));
  SG2_CLOSE(g->forward_with_hooks(wp, [](int b, const Tensor& x) { return x * (1.0 + 0.05 * b); }),
            fx("g_img_hook_scale"));
  // stop_after returns the output of StyledConv b, before the hook of b + 1.
  SG2_CLOSE(g->forward_with_hooks(wp, nullptr, 1), fx("g_feat_stop1"));
  SG2_CLOSE(g->forward_with_hooks(wp, nullptr, 4), fx("g_feat_stop4"));
  SG2_CLOSE(g->forward_with_hooks(wp, nullptr, 7), fx("g_feat_stop7"));
  int last = 0;
  g->forward_with_hooks(
      wp,
      [&](int b, const Tensor& x) {
        last = b;
        return x;
      },
      4);
  CHECK(last == 4);
  // The hook's gradient flows: d/d(delta) of the image through a hook equals the feature gradient.
  Tensor delta = Tensor::zeros({2, 16, 8, 8}).requires_grad_(true);
  Tensor r = fx("r_img");
  (g->forward_with_hooks(wp, [&](int b, const Tensor& x) { return b == 3 ? x + delta : x; }) * r).sum().backward();
  Tensor feat = g->forward_with_hooks(wp, nullptr, 2).detach().requires_grad_(true);
  Tensor fg;
  {
    // Same gradient computed by feeding the feature back through a hook that swaps it in.
    (g->forward_with_hooks(wp, [&](int b, const Tensor& x) { return b == 3 ? feat : x; }) * r).sum().backward();
    fg = feat.grad();
  }
  GS_EXPECT_CLOSE(delta.grad(), fg, 1e-6, 1e-5);
}

TEST_CASE("models/stylegan2: hook and stop_after errors") {
  auto g = load_tiny();
  const Tensor wp = fx("w_plus");
  GS_CHECK_THROWS_WITH(g->forward_with_hooks(wp, [](int, const Tensor& x) { return x.narrow(1, 0, 2); }), ShapeError,
                       "hook for block 1", "[2,2,4,4]", "[2,16,4,4]");
  GS_CHECK_THROWS_WITH(g->forward_with_hooks(wp, nullptr, 8), IndexError, "stop_after 8", "0..7");
  GS_CHECK_THROWS_WITH(g->synthesis(Tensor::zeros({4, 14, 32})), ShapeError, "latents have shape [4,14,32]",
                       "expects [N,8,32]", "32 px, 8 W+ rows");
  GS_CHECK_THROWS_WITH(g->synthesis(Tensor::zeros({1, 8, 32}, {.dtype = DType::f64})), DTypeError, "float64");
  GS_CHECK_THROWS_WITH(g->style(Tensor::zeros({2, 512})), ShapeError, "[2,512]", "[N, 32]");
  GS_CHECK_THROWS_WITH(sg::Generator::truncate(Tensor::zeros({1, 32}), 0.5, Tensor()), ValueError,
                       "needs an average latent");
  SynthesisOptions rnd;
  rnd.noise_mode = NoiseMode::Random;
  GS_CHECK_THROWS_WITH(g->synthesis(wp, rnd), ValueError, "needs SynthesisOptions::rng");
}

TEST_CASE("models/stylegan2: random noise mode is seeded and differs from the buffers") {
  auto g = load_tiny();
  const Tensor wp = fx("w_plus");
  gradstyle::Generator r1(5), r2(5);
  SynthesisOptions a, b;
  a.noise_mode = b.noise_mode = NoiseMode::Random;
  a.rng = &r1;
  b.rng = &r2;
  Tensor ia = g->synthesis(wp, a), ib = g->synthesis(wp, b);
  GS_EXPECT_CLOSE(ia, ib, 0, 0);
  CHECK((ia - fx("g_img")).abs().mean().item() > 0.1);
}

TEST_CASE("models/stylegan2: a legacy-format file without noise buffers (older model.py) loads") {
  auto g = sg::Generator::from_checkpoint(golden("tiny_legacy.pt"));
  CHECK(g->noise_generated());
  CHECK(g->config().channels == std::map<int64_t, int64_t>{{4, 16}, {8, 16}, {16, 12}, {32, 8}});
  SynthesisOptions none;
  none.noise_mode = NoiseMode::None;
  SG2_CLOSE(g->synthesis(fx("w_plus"), none), fx("g_img_nonoise"));
}

TEST_CASE("models/stylegan2: a missing or misshapen key is named with the file") {
  GS_CHECK_THROWS_WITH(sg::Generator::from_checkpoint(golden("tiny_missing.pt")), ShapeError, "tiny_missing.pt",
                       "missing keys (1): convs.3.conv.modulation.bias");
  GS_CHECK_THROWS_WITH(sg::Generator::from_checkpoint(golden("tiny_badshape.pt")), ShapeError, "tiny_badshape.pt",
                       "to_rgbs.1.conv.weight (checkpoint [1,3,13,1,1], model [1,3,12,1,1])");
  // Several problems at once, from memory: all are listed.
  auto sd = io::load_state_dict_tensors(golden("tiny.pt"), {.key = "g_ema"});
  sd.erase("style.2.bias");
  sd["convs.1.noise.weight"] = Tensor::zeros({2});
  sd["extra.thing"] = Tensor::zeros({1});
  GS_CHECK_THROWS_WITH(sg::Generator::from_state_dict(sd, "mem", {}), ShapeError, "missing keys (1): style.2.bias",
                       "unexpected keys (1): extra.thing", "convs.1.noise.weight (checkpoint [2], model [1])");
  // A blur kernel that is not make_kernel([1,3,3,1]) * 4 is refused, not trusted.
  auto sd2 = io::load_state_dict_tensors(golden("tiny.pt"), {.key = "g_ema"});
  sd2["convs.2.conv.blur.kernel"] = Tensor::full({4, 4}, 0.25);
  GS_CHECK_THROWS_WITH(sg::Generator::from_state_dict(sd2, "mem", {}), FormatError, "convs.2.conv.blur.kernel");
}

TEST_CASE("models/stylegan2: files that hold no generator fail clearly") {
  GS_CHECK_THROWS_WITH(sg::Generator::from_checkpoint(golden("does_not_exist.pt")), IOError, "does_not_exist.pt");
  // The io fixtures' e4e-like file has no g_ema and is not a generator state dict.
  const std::string e4e = std::string(GS_SOURCE_ROOT) + "/tests/golden/io/e4e_like.pt";
  GS_CHECK_THROWS_WITH(sg::Generator::from_checkpoint(e4e), FormatError, "e4e_like.pt", "no generator", "entries:");
  GS_CHECK_THROWS_WITH(Discriminator::from_checkpoint(golden("tiny_legacy.pt")), FormatError, "no discriminator",
                       "g_ema", "latent_avg", "--disc");
  const std::string png = std::string(GS_SOURCE_ROOT) + "/tests/golden/io/rgb.png";
  CHECK_THROWS_AS(sg::Generator::from_checkpoint(png), FormatError);
}

TEST_CASE("models/stylegan2: configurations, channel tables, key layout and parameter counts") {
  // rosinality's table for 1024 px, channel_multiplier 2 (SPEC C.1).
  auto ch = default_channels(1024, 2);
  CHECK(ch == std::map<int64_t, int64_t>{
                  {4, 512}, {8, 512}, {16, 512}, {32, 512}, {64, 512}, {128, 256}, {256, 128}, {512, 64}, {1024, 32}});
  CHECK(default_channels(256, 1).at(64) == 256);
  GeneratorConfig full;
  CHECK(full.n_latent() == 18);
  CHECK(full.num_layers() == 17);

  // A small default-rule config (channel_base 32, multiplier 1) round-trips through infer_config.
  GeneratorConfig c;
  c.size = 128;
  c.style_dim = 16;
  c.n_mlp = 2;
  c.channel_multiplier = 1;
  c.channel_base = 32;
  gradstyle::Generator init(3);
  sg::Generator g(c, &init);
  auto sd = g.state_dict();
  // 2 mapping layers * 2 + input + conv1 (5) + to_rgb1 (4) + 5 resolutions * (2 StyledConvs * 5 +
  // blur + ToRGB 5) + 11 noise buffers.
  CHECK(sd.size() == size_t(4 + 1 + 5 + 4 + 5 * (10 + 1 + 5) + 11));
  CHECK(sd.at("convs.8.conv.weight").shape() == Shape{1, 8, 16, 3, 3});
  CHECK(sd.at("convs.9.conv.modulation.weight").shape() == Shape{8, 16});
  CHECK(sd.at("to_rgbs.4.conv.weight").shape() == Shape{1, 3, 8, 1, 1});
  CHECK(sd.at("noises.noise_10").shape() == Shape{1, 1, 128, 128});
  CHECK(sd.at("convs.0.conv.blur.kernel").sum().item() == doctest::Approx(4.0));
  auto inferred = sg::Generator::infer_config(sd, "mem");
  CHECK(inferred.size == 128);
  CHECK(inferred.style_dim == 16);
  CHECK(inferred.n_mlp == 2);
  CHECK(inferred.channel_multiplier == 1);
  CHECK(inferred.channels == default_channels(128, 1, 32));
  // Parameter count tallied from rosinality's shapes.
  int64_t expect = 2 * (16 * 16 + 16) + 32 * 16;
  auto styled = [](int64_t in, int64_t out) { return out * in * 9 + 16 * in + in + 1 + out; };
  auto torgb = [](int64_t in) { return 3 * in + 16 * in + in + 3; };
  expect += styled(32, 32) + torgb(32);
  int64_t in = 32;
  for (int64_t r = 8; r <= 128; r *= 2) {
    int64_t out = c.channels_at(r);
    expect += styled(in, out) + styled(out, out) + torgb(out);
    in = out;
  }
  CHECK(g.num_parameters() == expect);
  // Freezing and moving dtype.
  g.requires_grad_(false);
  CHECK(g.num_parameters(true) == 0);
  g.to(DType::f64);
  CHECK(g.convs[3].conv.weight.dtype() == DType::f64);

  GeneratorConfig bad;
  bad.size = 48;
  CHECK_THROWS_AS(bad.validate(), ValueError);
  bad.size = 32;
  bad.channels = {{4, 8}, {8, 8}};
  GS_CHECK_THROWS_WITH(bad.validate(), ValueError, "no entry for resolution 16");
}

TEST_CASE("models/stylegan2: float64 generator passes a finite-difference gradient check in W+") {
  GeneratorConfig c;
  c.size = 8;
  c.style_dim = 4;
  c.n_mlp = 1;
  c.channels = {{4, 3}, {8, 2}};
  gradstyle::Generator init(11);
  sg::Generator g(c, &init);
  {
    autograd::NoGradGuard ng;  // make the noise strengths and biases non-zero
    for (auto& [n, t] : g.named_parameters())
      if (n.find("noise.weight") != std::string::npos || n.find("bias") != std::string::npos)
        *t = (Tensor::randn(t->shape(), 99) * 0.3).requires_grad_(true);
  }
  g.to(DType::f64);
  g.requires_grad_(false);
  Tensor wp = Tensor::randn({2, g.n_latent(), 4}, 5, {.dtype = DType::f64});
  gstest::gradcheck([&](const std::vector<Tensor>& x) { return g.synthesis(x[0]); }, {wp});
}

TEST_CASE("models/stylegan2: composed ModulatedConv2d path equals the fused modulated_conv2d path") {
  // forward() composes conv ops (used for blur kernels other than [1,3,3,1]); forward_fused() calls
  // gradstyle::modulated_conv2d with its epilogue. Both must agree, for plain and upsampling convs.
  gradstyle::Generator gen(17);
  for (bool up : {false, true}) {
    CAPTURE(up);
    sg::StyledConv sc(6, 5, 3, 8, up, {1, 3, 3, 1}, &gen);
    {
      autograd::NoGradGuard ng;
      sc.noise.weight = Tensor::full({1}, 0.7).requires_grad_(true);
      sc.activate.bias = Tensor::randn({5}, 18).requires_grad_(true);
    }
    Tensor x = Tensor::randn({3, 6, 5, 5}, 19);
    Tensor w = Tensor::randn({3, 8}, 20);
    const int64_t r = up ? 10 : 5;
    Tensor n = Tensor::randn({3, 1, r, r}, 21);
    Tensor fused = sc.forward(x, w, n);
    Tensor composed =
        bias_act(sc.noise.forward(sc.conv.forward(x, w), n), sc.activate.bias, {.act = Activation::LeakyReLU});
    CHECK(fused.shape() == Shape{3, 5, r, r});
    GS_EXPECT_CLOSE(fused, composed, 1e-5, 1e-5);
    // A generator built with another blur kernel takes the composed path and still runs.
    sg::StyledConv other(6, 5, 3, 8, up, {1, 2, 1}, &gen);
    CHECK(other.forward(x, w, Tensor()).shape() == Shape{3, 5, r, r});
  }
}

TEST_CASE("models/stylegan2: mean_latent averages the mapping of seeded z, truncation interpolates") {
  auto g = load_tiny();
  gradstyle::Generator r1(42), r2(42);
  Tensor m = g->mean_latent(256, r1);
  CHECK(m.shape() == Shape{1, 32});
  Tensor z = Tensor::randn({256, 32}, r2);
  GS_EXPECT_CLOSE(m, g->style(z).mean({0}, true), 1e-6, 1e-6);
  // psi = 0 gives the average itself, psi = 1 the input; W+ and [style_dim] averages broadcast.
  Tensor w = g->style(fx("z"));
  GS_EXPECT_CLOSE(sg::Generator::truncate(w, 0.0, m), m.expand({4, 32}), 1e-6, 1e-6);
  GS_EXPECT_CLOSE(sg::Generator::truncate(w, 1.0, m), w, 0, 0);
  Tensor wp = g->to_w_plus(w);
  CHECK(wp.shape() == Shape{4, 8, 32});
  GS_EXPECT_CLOSE(sg::Generator::truncate(wp, 0.5, m.reshape({32})), g->to_w_plus(sg::Generator::truncate(w, 0.5, m)),
                  1e-6, 1e-6);
}
