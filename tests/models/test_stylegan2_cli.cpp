// `gradstyle generate` / `gradstyle info` (src/cli), called as functions on the tiny fixture.
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "cli/commands.hpp"
#include "gradstyle/core/np_random.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/npy.hpp"
#include "models/stylegan2_fixture.hpp"

using namespace gradstyle;
using sg2test::fx;
using sg2test::golden;
namespace fs = std::filesystem;

namespace {
struct TempDir {
  fs::path path;
  TempDir() {
    path =
        fs::temp_directory_path() / ("gs_cli_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};
}  // namespace

TEST_CASE("models/stylegan2_cli: seed lists and ranges") {
  CHECK(cli::parse_seeds("85,265,297") == std::vector<int64_t>{85, 265, 297});
  CHECK(cli::parse_seeds("600-605") == std::vector<int64_t>{600, 601, 602, 603, 604, 605});
  CHECK(cli::parse_seeds("0-2, 7") == std::vector<int64_t>{0, 1, 2, 7});
  CHECK(cli::parse_seeds("4294967295") == std::vector<int64_t>{4294967295LL});
  GS_CHECK_THROWS_WITH(cli::parse_seeds("4294967296"), cli::UsageError, "larger than 2^32 - 1");
  GS_CHECK_THROWS_WITH(cli::parse_seeds("5-2"), cli::UsageError, "ends before it starts");
  GS_CHECK_THROWS_WITH(cli::parse_seeds("a,3"), cli::UsageError, "'a'");
  GS_CHECK_THROWS_WITH(cli::parse_seeds("-3"), cli::UsageError, "not a non-negative integer");
  GS_CHECK_THROWS_WITH(cli::parse_seeds(""), cli::UsageError, "empty");
  CHECK(cli::format_duration(19) == "0:19");
  CHECK(cli::format_duration(3723) == "1:02:03");
}

TEST_CASE("models/stylegan2_cli: generate writes seedNNNN.png equal to NVIDIA's recipe on the same weights") {
  TempDir tmp;
  cli::GenerateArgs a;
  a.generator = golden("tiny.pt");
  a.seeds = "0,5";
  a.trunc = 0.7;
  a.outdir = tmp.path.string();
  a.device = "cpu";
  a.batch = 2;
  std::ostringstream out, err;
  REQUIRE(cli::run_generate(a, out, err) == 0);
  CHECK(out.str().find("32 px, style_dim 32") != std::string::npos);
  CHECK(out.str().find("wrote 2 images") != std::string::npos);
  CHECK(err.str().find("[1/2]") != std::string::npos);  // not a TTY: one progress line per image
  CHECK(err.str().find("[2/2]") != std::string::npos);

  // z for seed s is numpy's RandomState(s).randn(1, 32).
  Tensor zref = fx("cli_z");
  std::vector<float> z0;
  for (double v : NpRandomState(5).randn(32)) z0.push_back(float(v));
  GS_EXPECT_CLOSE(Tensor::from_vector(z0, {1, 32}), zref.narrow(0, 1, 1), 0, 0);

  const auto expect = fx("cli_img_u8").to_vector<int64_t>();  // [2, 32, 32, 3]
  int seed_index = 0;
  for (const char* name : {"seed0000.png", "seed0005.png"}) {
    CAPTURE(name);
    REQUIRE(fs::exists(tmp.path / name));
    io::Image img = io::load_image((tmp.path / name).string());
    REQUIRE(img.width == 32);
    REQUIRE(img.height == 32);
    int64_t worst = 0, differing = 0;
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        for (int c = 0; c < 3; ++c) {
          const int64_t e = expect[size_t(((seed_index * 32 + y) * 32 + x) * 3 + c)];
          const int64_t d = std::abs(int64_t(img.at(x, y, c)) - e);
          worst = std::max(worst, d);
          differing += d != 0;
        }
    // float32 vs the float64 reference may flip a value sitting on a rounding boundary by one level.
    CHECK(worst <= 1);
    CHECK(differing <= 3);
    ++seed_index;
  }

  // Existing outputs are never silently replaced.
  GS_CHECK_THROWS_WITH(cli::run_generate(a, out, err), cli::UsageError, "seed0000.png", "already exists",
                       "--overwrite");
  a.overwrite = true;
  a.batch = 1;
  CHECK(cli::run_generate(a, out, err) == 0);
}

TEST_CASE("models/stylegan2_cli: generate from projected W+ and its errors") {
  TempDir tmp;
  fs::create_directories(tmp.path);
  const std::string npz = (tmp.path / "projected_w.npz").string();
  Tensor wp = fx("w_plus");  // [2, 8, 32]
  io::save_npz(npz, {{"w", io::raw_from_floats({2, 8, 32}, wp.to_vector<float>())}});
  cli::GenerateArgs a;
  a.generator = golden("tiny.pt");
  a.projected_w = npz;
  a.outdir = (tmp.path / "out").string();
  a.device = "cpu";
  std::ostringstream out, err;
  REQUIRE(cli::run_generate(a, out, err) == 0);
  // proj01.png is the const-noise synthesis of W+ row 1, quantised.
  io::Image img = io::load_image((tmp.path / "out" / "proj01.png").string());
  io::Image ref = io::tensor_to_image(fx("g_img"), 1);
  int64_t worst = 0;
  for (size_t i = 0; i < img.pixels.size(); ++i)
    worst = std::max<int64_t>(worst, std::abs(int(img.pixels[i]) - int(ref.pixels[i])));
  CHECK(worst <= 1);

  io::save_npz(npz, {{"w", io::raw_from_floats({1, 14, 32}, std::vector<float>(14 * 32, 0.f))}});
  a.overwrite = true;
  GS_CHECK_THROWS_WITH(cli::run_generate(a, out, err), ShapeError, "[1,14,32]", "expects [N,8,32]", "8 W+ rows");
  io::save_npz(npz, {{"latents", io::raw_from_floats({1, 8, 32}, std::vector<float>(8 * 32, 0.f))}});
  GS_CHECK_THROWS_WITH(cli::run_generate(a, out, err), FormatError, "no array 'w'", "latents");

  cli::GenerateArgs b;
  b.generator = golden("missing_file.pt");
  b.seeds = "1";
  b.outdir = (tmp.path / "o2").string();
  GS_CHECK_THROWS_WITH(cli::run_generate(b, out, err), IOError, "missing_file.pt");
  b.generator = golden("tiny_missing.pt");
  GS_CHECK_THROWS_WITH(cli::run_generate(b, out, err), ShapeError, "convs.3.conv.modulation.bias");
  b.generator = golden("tiny.pt");
  b.noise_mode = "loud";
  GS_CHECK_THROWS_WITH(cli::run_generate(b, out, err), cli::UsageError, "--noise-mode", "loud");
  b.noise_mode = "const";
  b.projected_w = npz;
  GS_CHECK_THROWS_WITH(cli::run_generate(b, out, err), cli::UsageError, "exactly one of --seeds and --projected-w");
}

TEST_CASE("models/stylegan2_cli: info lists the tree, recognises G and D and checks they load") {
  std::ostringstream out;
  cli::InfoArgs a;
  a.file = golden("tiny.pt");
  REQUIRE(cli::run_info(a, out) == 0);
  const std::string s = out.str();
  INFO(s);
  CHECK(s.find("format: PyTorch zip checkpoint") != std::string::npos);
  CHECK(s.find("g_ema: 71 tensors") != std::string::npos);
  CHECK(s.find("d: 29 tensors") != std::string::npos);
  CHECK(s.find("latent_avg: tensor float32 [32]") != std::string::npos);
  CHECK(s.find("style.1.weight") != std::string::npos);
  CHECK(s.find("more (--max-tensors 0 lists all)") != std::string::npos);
  CHECK(s.find("g_ema: StyleGAN2 generator (rosinality layout): 32 px") != std::string::npos);
  CHECK(s.find("d: StyleGAN2 discriminator (rosinality layout): 32 px") != std::string::npos);
  CHECK(s.find("g_ema: loads strictly, 19.95 k parameters, latent_avg present") != std::string::npos);
  CHECK(s.find("d: loads strictly, 16.32 k parameters") != std::string::npos);

  std::ostringstream o2;
  a.file = golden("tiny_legacy.pt");
  a.max_tensors = 0;
  REQUIRE(cli::run_info(a, o2) == 0);
  CHECK(o2.str().find("format: PyTorch legacy stream") != std::string::npos);
  CHECK(o2.str().find("no noise buffers (older model.py)") != std::string::npos);
  CHECK(o2.str().find("more (--max-tensors") == std::string::npos);

  std::ostringstream o3;
  a.file = golden("tiny_badshape.pt");
  REQUIRE(cli::run_info(a, o3) == 0);
  CHECK(o3.str().find("does NOT load as a generator") != std::string::npos);
  CHECK(o3.str().find("to_rgbs.1.conv.weight (checkpoint [1,3,13,1,1], model [1,3,12,1,1])") != std::string::npos);

  std::ostringstream o4;
  a.file = std::string(GS_SOURCE_ROOT) + "/tests/golden/io/rgb.png";
  GS_CHECK_THROWS_WITH(cli::run_info(a, o4), FormatError, "rgb.png");
  a.file = golden("nope.pt");
  GS_CHECK_THROWS_WITH(cli::run_info(a, o4), IOError, "nope.pt");
}

TEST_CASE("models/stylegan2_cli: generate --projected-w reads numpy.savez_compressed latents") {
  // tiny_projected_w.npz: w [2, 8, 32] float32, deflated by numpy (make_npz_fixtures.py). The
  // images must equal those made from the same values in an uncompressed .npz.
  TempDir tmp;
  fs::create_directories(tmp.path);
  const std::string compressed = std::string(GS_SOURCE_ROOT) + "/tests/golden/io/npz_deflate/tiny_projected_w.npz";
  const io::NamedTensors arrays = io::load_npz(compressed);
  const io::RawTensor* w = io::find_tensor(arrays, "w");
  REQUIRE(w != nullptr);
  REQUIRE(w->shape == std::vector<int64_t>{2, 8, 32});
  const std::string stored = (tmp.path / "stored.npz").string();
  io::save_npz(stored, {{"w", *w}});

  std::ostringstream out, err;
  auto run = [&](const std::string& npz, const std::string& dir) {
    cli::GenerateArgs a;
    a.generator = golden("tiny.pt");
    a.projected_w = npz;
    a.outdir = (tmp.path / dir).string();
    a.device = "cpu";
    REQUIRE(cli::run_generate(a, out, err) == 0);
  };
  run(compressed, "from_compressed");
  run(stored, "from_stored");
  CHECK(out.str().find("tiny_projected_w.npz' (2 images)") != std::string::npos);
  for (const char* name : {"proj00.png", "proj01.png"}) {
    CAPTURE(name);
    io::Image a = io::load_image((tmp.path / "from_compressed" / name).string());
    io::Image b = io::load_image((tmp.path / "from_stored" / name).string());
    CHECK(a.width == 32);
    CHECK(a.pixels == b.pixels);
  }
  // The two W+ rows differ, so the two images must too (the file's values were really used).
  CHECK(io::load_image((tmp.path / "from_compressed" / "proj00.png").string()).pixels !=
        io::load_image((tmp.path / "from_compressed" / "proj01.png").string()).pixels);
}
