// The GradStyle network (SPEC B.1, B.2, B.6, B.7 routing, B.9 keys): stage widths of the 1024 px
// default without building it, the configuration's JSON and its errors, T selection, the two
// streams on a tiny generator (exactness at g = 0, gradient routing, alpha = 0 entry), the e4e
// wiring of invert / edit, and the checkpoint round trip.
#include <array>
#include <filesystem>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "models/gradstyle_config_json.hpp"

#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/editing.hpp"
#include "gradstyle/ops/interpolate.hpp"
#include "gradstyle/ops/pool.hpp"
#include "models/gradstyle_fixture.hpp"

using namespace gstest_gs;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("gs_net_" + std::to_string(::getpid()) + "_" + name)).string();
}

// Random e4e-like maps at the tiny sizes (c3 2x2, p2 4x4, p1 8x8, 16 channels).
gs::EncoderFeatures tiny_features(int64_t B, uint64_t seed) {
  return {Tensor::randn({B, 16, 2, 2}, seed), Tensor::randn({B, 16, 4, 4}, seed + 1),
          Tensor::randn({B, 16, 8, 8}, seed + 2)};
}

Tensor tiny_w(int64_t B, uint64_t seed) { return Tensor::randn({B, 10, 16}, seed); }

bool any_grad(nn::Module& m) {
  for (auto& [n, t] : m.named_parameters())
    if (t->grad().defined() && t->grad().abs().sum().item() > 0) return true;
  return false;
}
bool no_grad_at_all(nn::Module& m) {
  for (auto& [n, t] : m.named_parameters())
    if (t->grad().defined()) return false;
  return true;
}

}  // namespace

TEST_CASE("models/gradstyle_net: stage widths of the 1024 px default (SPEC B.1) without building it") {
  gs::GradStyleConfig cfg;
  sg::GeneratorConfig g;  // 1024 px, rosinality's table
  auto st = cfg.stages(g);
  REQUIRE(st.size() == 3);
  CHECK((st[0].b == 3 && st[0].C == 512 && st[0].R == 8));
  CHECK((st[1].b == 6 && st[1].C == 512 && st[1].R == 16));
  CHECK((st[2].b == 8 && st[2].C == 512 && st[2].R == 32));
  // SPEC B.1's table: block -> (input res, C_in).
  const std::vector<std::array<int64_t, 3>> table{{1, 4, 512},    {2, 4, 512},    {3, 8, 512},    {4, 8, 512},
                                                  {5, 16, 512},   {6, 16, 512},   {7, 32, 512},   {8, 32, 512},
                                                  {9, 64, 512},   {10, 64, 512},  {11, 128, 256}, {12, 128, 256},
                                                  {13, 256, 128}, {14, 256, 128}, {15, 512, 64},  {16, 512, 64},
                                                  {17, 1024, 32}};
  for (const auto& [b, R, C] : table) {
    auto s = gs::block_input(g, int(b));
    CHECK_MESSAGE((s.R == R && s.C == C), "block " << b);
  }
  CHECK_THROWS_AS(gs::block_input(g, 18), IndexError);
  // The same numbers as the generator's own block_input, on a built (tiny) generator.
  auto G = tiny_generator();
  for (int b = 1; b <= int(G->num_layers()); ++b) {
    auto s = gs::block_input(G->config(), b);
    CHECK(G->block_input(b) == std::pair<int64_t, int64_t>{s.C, s.R});
  }
  // Per-module widths at the default 1024 setting: T is 512-channel e4e maps, gate per channel.
  CHECK(cfg.gate_width(512) == 512);
  CHECK(gs::GradStyleNet::code_group(3) == 0);
  CHECK(gs::GradStyleNet::code_group(6) == 1);
  CHECK(gs::GradStyleNet::code_group(7) == 1);
  CHECK(gs::GradStyleNet::code_group(8) == 2);
  CHECK(gs::GradStyleNet::code_group(17) == 2);
}

TEST_CASE("models/gradstyle_net: configuration JSON round trip, defaults and named errors") {
  gs::GradStyleConfig d;
  auto j = nlohmann::json::parse(d.to_json_text());
  CHECK(j.size() == gs::GradStyleConfig::keys().size());
  CHECK(j["refined_blocks"] == nlohmann::json::array({3, 6, 8}));
  CHECK(j["gate_channels"] == "C");
  CHECK(j["pe"] == "2d");
  CHECK(j["aligner_output"] == "value");
  CHECK(j["gate_bias_init"] == -4.0);
  CHECK(gs::GradStyleConfig::from_json_text(d.to_json_text()) == d);
  CHECK(gs::GradStyleConfig::from_json_text("{}") == d);

  gs::GradStyleConfig c;
  c.refined_blocks = {3, 8};
  c.t_channels = 64;
  c.grm_proj_kernel = 3;
  c.eres_levels = 2;
  c.eres_input = gs::EresInput::Diff;
  c.eres_interp_align_corners = false;
  c.gate_channels = 1;
  c.gate_bias_init = -2.5;
  c.aligner_layers = 4;
  c.aligner_heads = 4;
  c.aligner_mlp_ratio = 2;
  c.pe = gs::PositionalEncoding::OneD;
  c.pe_on_value = true;
  c.pe_temperature = 500;
  c.topk_mu = 0.1;
  c.aligner_output = gs::AlignerOutput::Query;
  auto back = gs::GradStyleConfig::from_json_text(c.to_json_text());
  CHECK(back == c);
  CHECK(nlohmann::json::parse(c.to_json_text())["gate_channels"] == 1);
  nlohmann::json via_adl = c;  // the ADL hooks
  CHECK(via_adl.get<gs::GradStyleConfig>() == c);

  GS_CHECK_THROWS_WITH(gs::GradStyleConfig::from_json_text(R"({"refined_block": [3], "topk": 1})"), ValueError,
                       "unknown keys", "'refined_block'", "'topk'");
  GS_CHECK_THROWS_WITH(gs::GradStyleConfig::from_json_text(R"({"refined_blocks": [6, 3]})"), ValueError,
                       "refined_blocks", "strictly increasing");
  GS_CHECK_THROWS_WITH(gs::GradStyleConfig::from_json_text(R"({"refined_blocks": [3, 3]})"), ValueError,
                       "refined_blocks", "strictly increasing");
  GS_CHECK_THROWS_WITH(gs::GradStyleConfig::from_json_text(R"({"refined_blocks": [2, 6]})"), ValueError,
                       "refined_blocks", "block 2");
  GS_CHECK_THROWS_WITH(gs::GradStyleConfig::from_json_text(R"({"topk_mu": 0})"), ValueError, "topk_mu", "(0, 1]");
  GS_CHECK_THROWS_WITH(gs::GradStyleConfig::from_json_text(R"({"topk_mu": 1.5})"), ValueError, "topk_mu");
  GS_CHECK_THROWS_WITH(gs::GradStyleConfig::from_json_text(R"({"pe": "3d"})"), ValueError, "'pe'", "\"2d\"", "3d");
  GS_CHECK_THROWS_WITH(gs::GradStyleConfig::from_json_text(R"({"gate_channels": "D"})"), ValueError, "gate_channels");
  GS_CHECK_THROWS_WITH(gs::GradStyleConfig::from_json_text(R"({"aligner_layers": 2.5})"), ValueError,
                       "aligner_layers", "integer");
  GS_CHECK_THROWS_WITH(gs::GradStyleConfig::from_json_text(R"({"pe_on_value": 1})"), ValueError, "pe_on_value");
  GS_CHECK_THROWS_WITH(gs::GradStyleConfig::from_json_text("{\"t_channels\": "), FormatError, "not valid JSON");
  // Rules that need the generator: blocks past num_layers, heads not dividing C.
  auto G = tiny_generator();
  gs::GradStyleConfig far = tiny_config();
  far.refined_blocks = {3, 10};
  GS_CHECK_THROWS_WITH(far.stages(G->config()), ValueError, "refined_blocks", "block 10", "[3, 9]");
  gs::GradStyleConfig heads = tiny_config();
  heads.aligner_heads = 3;
  GS_CHECK_THROWS_WITH(gs::GradStyleNet(heads, G->config()), ValueError, "aligner_heads", "C = 8");
}

TEST_CASE("models/gradstyle_net: select_t picks the code's e4e group and resizes per SPEC B.2") {
  Tensor c3 = Tensor::randn({1, 3, 16, 16}, 1), p2 = Tensor::randn({1, 3, 32, 32}, 2), p1 = Tensor::randn({1, 3, 64, 64}, 3);
  // Defaults: one 2x2 average pooling each.
  CHECK(bit_equal(gs::GradStyleNet::select_t(3, c3, p2, p1, 8), avg_pool2d(c3, {2})));
  CHECK(bit_equal(gs::GradStyleNet::select_t(6, c3, p2, p1, 16), avg_pool2d(p2, {2})));
  CHECK(bit_equal(gs::GradStyleNet::select_t(8, c3, p2, p1, 32), avg_pool2d(p1, {2})));
  // Two halvings (block 3 at 4 px would be c3 16 -> 4), identity (block 10 with p1 at 64).
  CHECK(bit_equal(gs::GradStyleNet::select_t(2, c3, p2, p1, 4), avg_pool2d(avg_pool2d(c3, {2}), {2})));
  CHECK(bit_equal(gs::GradStyleNet::select_t(10, c3, p2, p1, 64), p1));
  // Larger targets: bilinear, align_corners = false.
  CHECK(bit_equal(gs::GradStyleNet::select_t(11, c3, p2, p1, 128),
                  interpolate(p1, {128, 128}, InterpolateMode::Bilinear, false)));
  // A map that no power-of-two pooling reaches is resized bilinearly too.
  CHECK(bit_equal(gs::GradStyleNet::select_t(5, c3, p2, p1, 12), interpolate(p2, {12, 12}, InterpolateMode::Bilinear, false)));
  // T is a constant.
  Tensor g = c3.clone().requires_grad_();
  CHECK(!gs::GradStyleNet::select_t(3, g, p2, p1, 8).requires_grad());
  GS_CHECK_THROWS_WITH(gs::GradStyleNet::select_t(8, c3, p2, Tensor(), 32), ShapeError, "p1");
}

TEST_CASE("models/gradstyle_net: with the gate forced to g = 0 the reconstruction is exactly G's synthesis") {
  auto G = tiny_generator();
  gs::GradStyleNet net(tiny_config(), G->config());
  CHECK(net.num_modules() == 3);
  CHECK((net.stages()[2].b == 8 && net.stages()[2].C == 8 && net.stages()[2].R == 32));
  {
    autograd::NoGradGuard ng;
    for (size_t m = 0; m < 3; ++m) net.gate[m].out.bias.fill_(-1e4);  // sigmoid(-1e4) == 0 in float32
  }
  Tensor w = tiny_w(2, 20);
  auto r = net.reconstruct(*G, w, tiny_features(2, 30));
  CHECK(bit_equal(r.image, G->synthesis(w)));
  REQUIRE(r.F.size() == 3);
  for (size_t m = 0; m < 3; ++m) {
    const int64_t R = net.stages()[m].R;
    CHECK(r.F[m].shape() == Shape{2, 8, R, R});
    CHECK(r.f[m].shape() == Shape{2, 8, R, R});
    CHECK(r.g[m].abs().sum().item() == 0.0);
    CHECK(r.F[m].abs().sum().item() > 0.0);
  }
  // The recorded f_m are the generator's own features (observed with a plain hook).
  std::vector<Tensor> seen;
  G->forward_with_hooks(w, [&](int b, const Tensor& f) {
    if (b == 3 || b == 6 || b == 8) seen.push_back(f);
    return f;
  });
  for (size_t m = 0; m < 3; ++m) CHECK(bit_equal(r.f[m], seen[m]));
}

TEST_CASE("models/gradstyle_net: at init every stage adds 0.018 F, and later stages read the refined feature") {
  auto G = tiny_generator();
  gs::GradStyleNet net(tiny_config(), G->config());
  Tensor w = tiny_w(2, 21);
  auto feats = tiny_features(2, 31);
  auto r = net.reconstruct(*G, w, feats);
  const double s = 1.0 / (1.0 + std::exp(4.0));
  for (size_t m = 0; m < 3; ++m)
    for (double v : r.g[m].to_vector<double>()) REQUIRE(v == doctest::Approx(s).epsilon(1e-6));
  // The image equals the generator run with the hook f -> f + s * F_m replaying the recorded F_m.
  size_t k = 0;
  Tensor replay = G->forward_with_hooks(w, [&](int b, const Tensor& f) {
    if (b != 3 && b != 6 && b != 8) return f;
    return f + r.F[k++] * s;
  });
  GS_EXPECT_CLOSE(replay, r.image, 1e-6, 1e-5);
  // Gradual chain: f_2 entering block 6 differs from the unrefined generator's feature.
  std::vector<Tensor> plain;
  G->forward_with_hooks(w, [&](int b, const Tensor& f) {
    if (b == 6) plain.push_back(f);
    return f;
  });
  CHECK((r.f[1] - plain[0]).abs().sum().item() > 0.0);
  GS_CHECK_THROWS_WITH(net.reconstruct(*G, w, std::vector<Tensor>{Tensor()}), ValueError, "1 feature maps T",
                       "3 refined blocks");
}

TEST_CASE("models/gradstyle_net: gradient routing of SPEC B.7 (GRM and gate from X^r, Aligners from X^e)") {
  auto G = tiny_generator();
  gs::GradStyleNet net(tiny_config(), G->config());
  Tensor w = tiny_w(2, 22);
  auto r = net.reconstruct(*G, w, tiny_features(2, 32));
  square(r.image).mean().backward();
  for (size_t m = 0; m < 3; ++m) {
    CHECK(any_grad(net.grm[m]));
    CHECK(net.gate[m].out.bias.grad().defined());
    CHECK(net.gate[m].out.weight.grad().abs().sum().item() > 0);
    CHECK(no_grad_at_all(net.gam[m]));
  }
  for (auto& [n, t] : G->named_parameters()) REQUIRE_MESSAGE(!t->grad().defined(), n);

  // Editing stream at alpha = 0 with F_hat = F (leaves that would collect a gradient if not detached).
  std::vector<Tensor> F_hat;
  for (auto& F : r.F) F_hat.push_back(F.detach().clone().requires_grad_());
  for (bool update_gate : {false, true}) {
    CAPTURE(update_gate);
    net.zero_grad();
    auto e = net.edit_stream(*G, w, F_hat, update_gate);
    CHECK(e.image.shape() == Shape{2, 3, 64, 64});
    // Both streams enter the first refined block with the same feature (const noise, same w).
    CHECK(bit_equal(e.f[0], r.f[0]));
    square(e.image).mean().backward();
    for (size_t m = 0; m < 3; ++m) {
      CHECK(any_grad(net.gam[m]));
      CHECK(no_grad_at_all(net.grm[m]));
      if (update_gate)
        CHECK(net.gate[m].out.bias.grad().defined());
      else
        CHECK(no_grad_at_all(net.gate[m]));
      CHECK(!F_hat[m].grad().defined());
      CHECK(e.Fp[m].shape() == r.F[m].shape());
    }
  }
  // The detached gate computes the same values as the trainable one.
  auto a = net.edit_stream(*G, w, F_hat, false), b = net.edit_stream(*G, w, F_hat, true);
  CHECK(bit_equal(a.image, b.image));
}

TEST_CASE("models/gradstyle_net: invert and edit run e4e (frozen) and the two streams") {
  auto E = models::e4e::Encoder4Editing::from_checkpoint(std::string(GS_SOURCE_ROOT) +
                                                         "/tests/golden/encoders/e4e_tiny.pt");
  auto G = tiny_generator();
  gs::GradStyleNet net(tiny_config(), G->config());
  net.eval();
  Tensor x = Tensor::randn({2, 3, 32, 32}, 40) * 0.5;
  auto inv = net.invert(*E, *G, x);
  auto o = E->forward(x);
  CHECK(bit_equal(inv.w, o.w_plus));
  CHECK(bit_equal(inv.features.p1, o.p1));
  REQUIRE(inv.T.size() == 3);
  // e4e_tiny's maps are 2, 4 and 8 px: upsampled bilinearly to 8, 16, 32.
  CHECK(bit_equal(inv.T[0], interpolate(o.c3, {8, 8}, InterpolateMode::Bilinear, false)));
  CHECK(bit_equal(inv.T[2], interpolate(o.p1, {32, 32}, InterpolateMode::Bilinear, false)));
  CHECK(bit_equal(inv.rec.image, net.reconstruct(*G, o.w_plus, inv.T).image));
  CHECK(!inv.w.requires_grad());

  Tensor dir = Tensor::randn({1, 16}, 41);
  auto ed = net.edit(*E, *G, x, dir, 2.0);
  CHECK(bit_equal(ed.w_hat, models::editing::interfacegan_edit(inv.w, dir, 2.0)));
  CHECK(bit_equal(ed.edit.image, net.edit_stream(*G, ed.w_hat, inv.rec.F).image));
  CHECK(bit_equal(ed.inversion.rec.image, inv.rec.image));
}

TEST_CASE("models/gradstyle_net: checkpoint round trip (keys grm/gam/gate, config and references in metadata)") {
  auto G = tiny_generator();
  gs::GradStyleConfig cfg = tiny_config();
  cfg.gate_channels = 1;
  cfg.pe = gs::PositionalEncoding::OneD;
  gs::GradStyleNet net(cfg, G->config());
  Tensor w = tiny_w(2, 23);
  auto feats = tiny_features(2, 33);
  net.reconstruct(*G, w, feats);  // training mode: moves the BatchNorm running statistics
  net.eval();
  const std::string path = temp_path("ckpt.safetensors");
  net.save(path, {"/models/stylegan2-ffhq-config-f.pt", "/models/e4e_ffhq_encode.pt"});

  io::SafetensorsFile file(path);
  CHECK(file.metadata().at("format") == "gradstyle-net");
  CHECK(gs::GradStyleConfig::from_json_text(file.metadata().at("gradstyle_config")) == cfg);
  CHECK(nlohmann::json::parse(file.metadata().at("gradstyle_stages")) ==
        nlohmann::json::parse("[[3, 8, 8], [6, 8, 16], [8, 8, 32]]"));
  CHECK(file.metadata().at("generator_checkpoint") == "/models/stylegan2-ffhq-config-f.pt");
  for (const auto& e : file.tensors())
    CHECK_MESSAGE((e.name.rfind("grm.", 0) == 0 || e.name.rfind("gam.", 0) == 0 || e.name.rfind("gate.", 0) == 0), e.name);
  CHECK(file.find("gate.2.out.weight") != nullptr);
  CHECK(file.find("grm.0.stem_bn.running_var") != nullptr);
  CHECK(file.find("gam.1.layers.1.norm1.weight") == nullptr);  // value-side last layer
  CHECK(file.tensors().size() == net.state_dict().size());

  gs::CheckpointRefs refs;
  auto back = gs::GradStyleNet::load(path, &refs);
  CHECK(refs.encoder_checkpoint == "/models/e4e_ffhq_encode.pt");
  CHECK(back->config() == cfg);
  auto sa = net.state_dict(), sb = back->state_dict();
  REQUIRE(sa.size() == sb.size());
  for (auto& [k, v] : sa) CHECK_MESSAGE(bit_equal(v, sb.at(k)), k);
  back->eval();
  CHECK(bit_equal(back->reconstruct(*G, w, feats).image, net.reconstruct(*G, w, feats).image));

  // load_weights into a fresh network of the same configuration; refused for another one.
  gs::GradStyleNet fresh(cfg, G->config());
  fresh.load_weights(path);
  CHECK(bit_equal(fresh.gam[2].out.weight, net.gam[2].out.weight));
  gs::GradStyleNet other(tiny_config(), G->config());
  GS_CHECK_THROWS_WITH(other.load_weights(path), ValueError, "load_weights", "configuration");

  // A safetensors file that is not a GradStyle checkpoint.
  const std::string plain = temp_path("plain.safetensors");
  io::save_safetensors(plain, {{"x", io::from_tensor(Tensor::ones({2}))}});
  GS_CHECK_THROWS_WITH(gs::GradStyleNet::load(plain), FormatError, "plain.safetensors", "not a GradStyle");
  std::filesystem::remove(path);
  std::filesystem::remove(plain);
}
