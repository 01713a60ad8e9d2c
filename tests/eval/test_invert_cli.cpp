// `gradstyle invert` / `gradstyle edit` and eval::InversionModel:
// - an e4e checkpoint in the original layout written by torch.save (tests/golden/inversion, made by
//   tools/reference/make_inversion_fixtures.py) gives PyTorch's codes, inversions and edits from
//   the image files on disk (PIL resize included);
// - the toyfaces bundle and a GradStyle network file run the residual and editing streams;
// - the real e4e editing files do the latent arithmetic computed here by hand;
// - bad input is refused with one clear error and nothing half-written.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/invert.hpp"
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/eval/inversion.hpp"
#include "gradstyle/eval/toyfaces_demo.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/editing.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "support/harness.hpp"

using namespace gradstyle;
namespace fs = std::filesystem;
namespace tf = gradstyle::data::toyfaces;
namespace editing = gradstyle::models::editing;

namespace {

const fs::path kGolden = fs::path(GS_SOURCE_ROOT) / "tests" / "golden" / "inversion";
const std::string kCkpt = (kGolden / "e4e_full.pt").string();
const std::string kBundle = GS_SOURCE_ROOT "/models/toyfaces";
const std::string kShared = GS_SOURCE_ROOT "/../shared/data";

std::map<std::string, Tensor> golden() { return io::load_state_dict_tensors((kGolden / "inversion_io.pt").string()); }

const Tensor& at(const std::map<std::string, Tensor>& m, const std::string& k) {
  auto it = m.find(k);
  REQUIRE_MESSAGE(it != m.end(), "fixture entry missing: " << k);
  return it->second;
}

// A scratch folder with the fixture images (and a file that is not an image).
struct Scratch {
  fs::path root, images;
  explicit Scratch(const std::string& tag) {
    root = fs::temp_directory_path() / ("gs_invert_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(root);
    images = root / "images";
    fs::create_directories(images);
    for (const auto& e : fs::directory_iterator(kGolden / "images")) fs::copy_file(e.path(), images / e.path().filename());
    std::ofstream(images / "notes.txt") << "not an image";
  }
  ~Scratch() { fs::remove_all(root); }
  std::string out(const std::string& name = "out") const { return (root / name).string(); }
};

template <class A>
A args(const Scratch& s, const std::string& ckpt = kCkpt) {
  A a;
  a.checkpoint = ckpt;
  a.images_dir = s.images.string();
  a.save_dir = s.out();
  a.device = "cpu";
  a.quiet = true;
  return a;
}

Tensor read_png(const fs::path& p) { return io::image_to_tensor(io::load_image(p.string())); }

// uint8 images as [H, W, 3] float (the fixtures' *_u8 layout) for one PNG.
std::vector<int> pixels(const fs::path& p) {
  const io::Image im = io::load_image(p.string());
  return std::vector<int>(im.pixels.begin(), im.pixels.end());
}

// PNG pixels against the reference tensor2im bytes: e4e's truncation may differ by one level where
// the float32 and float64 values straddle an integer.
void check_u8(const fs::path& png, const Tensor& ref_u8, int64_t index) {
  const std::vector<int> got = pixels(png);
  const Tensor r = ref_u8.narrow(0, index, 1).to(DType::f64).contiguous();
  const std::vector<double> want = r.to_vector<double>();
  REQUIRE(got.size() == want.size());
  int64_t off = 0, worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const int64_t d = std::abs(int64_t(got[i]) - int64_t(want[i]));
    worst = std::max(worst, d);
    off += d != 0;
  }
  CAPTURE(png.string());
  CHECK(worst <= 1);
  CHECK(double(off) <= 0.02 * double(got.size()));
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("eval/inversion: an original-layout e4e checkpoint inverts and edits as PyTorch does") {
  autograd::NoGradGuard ng;
  const auto g = golden();
  eval::InversionModel m = eval::InversionModel::load(kCkpt);
  CHECK(m.kind == eval::ModelKind::E4E);
  CHECK(m.output_size() == 32);
  CHECK(m.n_latent() == 8);
  CHECK(m.input_size() == 32);
  CHECK(m.describe().find("e4e, 32 px, 8 x 32 W+, encoder input 32") == 0);
  std::vector<Tensor> xs;
  for (const char* n : {"a.png", "b.bmp", "c.png"})
    xs.push_back(eval::InversionModel::prepare(io::load_image((kGolden / "images" / n).string()), m.input_size()));
  const Tensor x = cat(xs, 0);
  GS_EXPECT_CLOSE(x, at(g, "x"), 1e-6, 0);  // the PIL resize and e4e's normalisation, bit for bit up to float32
  const eval::Inversion inv = m.invert(x);
  GS_EXPECT_CLOSE(inv.w, at(g, "w"), 2e-5, 2e-5);
  GS_EXPECT_CLOSE(inv.image, at(g, "image"), 2e-5, 2e-5);
  CHECK(inv.F.empty());

  const Tensor d = m.direction("age", {(kGolden / "age.pt").string(), ""});
  const Tensor w_age = editing::interfacegan_edit(inv.w, d, m.step_for("age", 1.5, {(kGolden / "age.pt").string(), ""}));
  GS_EXPECT_CLOSE(w_age, at(g, "age_w"), 2e-5, 2e-5);
  GS_EXPECT_CLOSE(m.render(w_age, inv), at(g, "age_image"), 2e-5, 2e-5);
  const auto pca = editing::GanspacePCA::load((kGolden / "pca.pt").string());
  const Tensor w_gs = editing::ganspace_edit(inv.w, pca, 2, 1, 3, 4.0);
  GS_EXPECT_CLOSE(w_gs, at(g, "gs_w"), 2e-5, 2e-5);
  GS_EXPECT_CLOSE(m.render(w_gs, inv), at(g, "gs_image"), 2e-5, 2e-5);
  // Latent-only rendering is the same generator pass.
  GS_EXPECT_CLOSE(m.synthesize(inv.w), inv.image, 0, 0);
}

TEST_CASE("eval/inversion: which kind a file is, and clear errors for what is none") {
  CHECK(eval::InversionModel::load(kBundle).kind == eval::ModelKind::Bundle);
  CHECK(eval::InversionModel::load(kBundle + "/gradstyle.safetensors").kind == eval::ModelKind::GradStyle);
  GS_CHECK_THROWS_WITH(eval::InversionModel::load(GS_SOURCE_ROOT "/nope.pt"), IOError, "does not exist");
  // A generator-only file has no encoder.
  CHECK_THROWS_AS(eval::InversionModel::load(kBundle + "/generator.safetensors"), FormatError);
  // An encoder-only file needs --generator (the message says so).
  GS_CHECK_THROWS_WITH(eval::InversionModel::load(kBundle + "/encoder.safetensors"), FormatError, "pass --generator");
  eval::InversionLoadOptions o;
  o.generator = kBundle + "/generator.safetensors";
  const auto m = eval::InversionModel::load(kBundle + "/encoder.safetensors", o);
  CHECK(m.kind == eval::ModelKind::E4E);
  CHECK(m.output_size() == 64);
  // A folder that is not a bundle.
  GS_CHECK_THROWS_WITH(eval::InversionModel::load(kGolden.string()), FormatError, "not a toyfaces bundle");
  // A direction of the wrong width.
  const auto e4e = eval::InversionModel::load(kCkpt);
  GS_CHECK_THROWS_WITH(e4e.direction("age", {kShared + "/e4e-editings/age.pt", ""}), ShapeError, "[1,512]", "[8,32]");
  GS_CHECK_THROWS_WITH(e4e.direction("age", {"", (kGolden / "missing").string()}), IOError, "age.pt");
  GS_CHECK_THROWS_WITH(e4e.direction("age", {}), FormatError, "--direction");
}

TEST_CASE("eval/inversion: the real e4e editing files do the latent arithmetic computed by hand") {
  autograd::NoGradGuard ng;
  gradstyle::Generator rng(11);
  const Tensor w = Tensor::randn({2, 18, 512}, rng);
  const std::vector<float> wv = w.to_vector<float>();
  const Tensor age = editing::load_interfacegan_direction(kShared + "/e4e-editings/age.pt");
  const Tensor pose = editing::load_interfacegan_direction(kShared + "/e4e-editings/pose.pt");
  const std::vector<float> av = age.to_vector<float>(), pv = pose.to_vector<float>();
  REQUIRE(av.size() == 512);
  REQUIRE(pv.size() == 18 * 512);
  const std::vector<float> wa = editing::interfacegan_edit(w, age, -3.0).to_vector<float>();
  const std::vector<float> wp = editing::interfacegan_edit(w, pose, 2.0).to_vector<float>();
  double ea = 0, ep = 0;
  for (size_t i = 0; i < wv.size(); ++i) {
    ea = std::max(ea, std::abs(double(wa[i]) - (double(wv[i]) - 3.0 * double(av[i % 512]))));
    ep = std::max(ep, std::abs(double(wp[i]) - (double(wv[i]) + 2.0 * double(pv[i % (18 * 512)]))));
  }
  CHECK(ea < 1e-5);
  CHECK(ep < 1e-5);
  // GANSpace "eyes" (54, 7, 8, 20) on ffhq_pca.pt: row 7 gets (20 - c) comp std, c read from row 0.
  const auto pca = editing::GanspacePCA::load(kShared + "/e4e-editings/ffhq_pca.pt");
  const std::vector<float> mean = pca.mean.to_vector<float>(), comp = pca.comp.narrow(0, 54, 1).contiguous().to_vector<float>();
  const double sd = pca.stdev.to(DType::f64).to_vector<double>()[54];
  const std::vector<float> we = editing::ganspace_edit(w, pca, editing::hfgi_ganspace_edits()[0]).to_vector<float>();
  CHECK(editing::hfgi_ganspace_edits()[0].name == "eyes");
  double eg = 0;
  for (int64_t b = 0; b < 2; ++b) {
    double c = 0;
    for (int64_t k = 0; k < 512; ++k) c += (double(wv[size_t(b * 18 * 512 + k)]) - mean[size_t(k)]) * comp[size_t(k)];
    c /= sd;
    for (int64_t r = 0; r < 18; ++r)
      for (int64_t k = 0; k < 512; ++k) {
        const size_t i = size_t((b * 18 + r) * 512 + k);
        const double want = double(wv[i]) + (r == 7 ? (20.0 - c) * comp[size_t(k)] * sd : 0.0);
        eg = std::max(eg, std::abs(double(we[i]) - want));
      }
  }
  CHECK(eg < 1e-4);
}

TEST_CASE("cli/invert: latents and inversions of a folder, in name order, as PyTorch computes them") {
  const auto g = golden();
  Scratch s("e4e");
  std::ostringstream out, err;
  auto a = args<cli::InvertArgs>(s);
  a.quiet = false;
  a.batch = 2;
  REQUIRE(cli::run_invert(a, out, err) == 0);
  CHECK(out.str().find("model: ") == 0);
  CHECK(out.str().find("CRC-32") != std::string::npos);
  CHECK(out.str().find("e4e, 32 px, 8 x 32 W+") != std::string::npos);
  CHECK(err.str().find("skipping 1 file") != std::string::npos);  // notes.txt
  std::map<std::string, std::string> meta;
  const io::NamedTensors lat = io::load_safetensors(s.out() + "/latents.safetensors", &meta);
  REQUIRE(lat.size() == 1);
  CHECK(lat[0].first == "latents");
  GS_EXPECT_CLOSE(io::to_tensor(lat[0].second), at(g, "w"), 2e-5, 2e-5);
  CHECK(nlohmann::json::parse(meta.at("names")) == nlohmann::json({"a.png", "b.bmp", "c.png"}));
  CHECK(meta.at("kind") == "e4e");
  for (int64_t i = 0; i < 3; ++i) check_u8(fs::path(s.out()) / "inversions" / ("0000" + std::to_string(i + 1) + ".png"), at(g, "image_u8"), i);
  CHECK(!fs::exists(fs::path(s.out()) / "inversions" / "00004.png"));

  SUBCASE("an existing output folder is refused, then replaced with --overwrite") {
    const std::string before = slurp(s.out() + "/latents.safetensors");
    CHECK_THROWS_AS(cli::run_invert(a, out, err), cli::UsageError);
    CHECK(slurp(s.out() + "/latents.safetensors") == before);
    a.overwrite = true;
    a.n_sample = 1;
    a.latents_only = true;
    REQUIRE(cli::run_invert(a, out, err) == 0);
    CHECK(io::to_tensor(io::load_safetensors(s.out() + "/latents.safetensors")[0].second).size(0) == 1);
    CHECK(!fs::exists(fs::path(s.out()) / "inversions"));  // no stale inversions of the earlier run
  }
  SUBCASE("--resize_outputs renders at 256 px") {
    a.save_dir = s.out("big");
    a.resize_outputs = true;
    a.n_sample = 1;
    REQUIRE(cli::run_invert(a, out, err) == 0);
    const io::Image im = io::load_image(s.out("big") + "/inversions/00001.png");
    CHECK(im.width == 256);
    CHECK(im.height == 256);
  }
}

TEST_CASE("cli/invert: unreadable images stop the run before anything is written, or are skipped") {
  Scratch s("bad");
  {
    const std::string png = slurp(s.images / "a.png");
    std::ofstream(s.images / "b2.png", std::ios::binary) << png.substr(0, png.size() / 2);  // truncated
  }
  std::ostringstream out, err;
  auto a = args<cli::InvertArgs>(s);
  GS_CHECK_THROWS_WITH(cli::run_invert(a, out, err), FormatError, "b2.png", "--keep-going");
  CHECK(!fs::exists(s.out()));
  a.keep_going = true;
  CHECK(cli::run_invert(a, out, err) == 1);
  CHECK(err.str().find("b2.png") != std::string::npos);
  CHECK(io::to_tensor(io::load_safetensors(s.out() + "/latents.safetensors")[0].second).size(0) == 3);

  // Missing folder, a folder without images, a bad batch, a checkpoint of the wrong kind.
  a = args<cli::InvertArgs>(s);
  a.save_dir = s.out("o2");
  a.images_dir = s.out("none");
  GS_CHECK_THROWS_WITH(cli::run_invert(a, out, err), cli::UsageError, "--images_dir", "not a folder");
  fs::create_directories(s.out("empty"));
  a.images_dir = s.out("empty");
  GS_CHECK_THROWS_WITH(cli::run_invert(a, out, err), cli::UsageError, "no PNG/JPEG/BMP");
  a.images_dir = s.images.string();
  a.batch = 0;
  CHECK_THROWS_AS(cli::run_invert(a, out, err), cli::UsageError);
  a.batch = 1;
  a.checkpoint = (kGolden / "age.pt").string();
  a.keep_going = true;
  CHECK_THROWS_AS(cli::run_invert(a, out, err), FormatError);
  CHECK(!fs::exists(s.out("o2")));
}

TEST_CASE("cli/edit: InterFaceGAN and GANSpace edits of an e4e checkpoint match PyTorch") {
  const auto g = golden();
  Scratch s("edit");
  std::ostringstream out, err;
  auto a = args<cli::EditArgs>(s);
  a.direction = (kGolden / "age.pt").string();
  a.edit_attribute = "age";
  a.edit_degree = "1.5";
  REQUIRE(cli::run_edit(a, out, err) == 0);
  const fs::path o(s.out());
  for (int64_t i = 0; i < 3; ++i) {
    const std::string n = "0000" + std::to_string(i + 1) + ".png";
    check_u8(o / "age_1.5" / n, at(g, "age_image_u8"), i);
    check_u8(o / "inversion" / n, at(g, "image_u8"), i);
    const io::Image grid = io::load_image((o / "grids" / n).string());
    CHECK(grid.width == 3 * 32 + 4 * 2);  // source | inversion | edit, torchvision padding 2
    CHECK(grid.height == 32 + 2 * 2);
  }

  SUBCASE("a sweep: --range writes one folder per degree; degree 0 is the inversion") {
    a.save_dir = s.out("sweep");
    a.edit_degree.clear();
    a.range = "-1:1:1";
    REQUIRE(cli::run_edit(a, out, err) == 0);
    for (const char* d : {"age_-1", "age_0", "age_1"}) CHECK(fs::exists(fs::path(s.out("sweep")) / d / "00003.png"));
    CHECK(slurp(s.out("sweep") + "/age_0/00002.png") == slurp(s.out("sweep") + "/inversion/00002.png"));
  }
  SUBCASE("GANSpace on a PCA file; latents of invert instead of images") {
    a.save_dir = s.out("gs");
    a.direction.clear();
    a.edit_attribute = "open";
    a.edit_degree.clear();
    a.ganspace = "2,1,3,4";
    a.ganspace_pca = (kGolden / "pca.pt").string();
    REQUIRE(cli::run_edit(a, out, err) == 0);
    CHECK(out.str().find("GANSpace 2, rows 1..2") != std::string::npos);
    const Tensor ref = at(g, "gs_image");
    for (int64_t i = 0; i < 3; ++i) {
      const Tensor got = read_png(fs::path(s.out("gs")) / "open_4" / ("0000" + std::to_string(i + 1) + ".png"));
      GS_EXPECT_CLOSE(got, clamp(ref.narrow(0, i, 1), -1, 1), 2.0 / 255 + 1e-6, 0);
    }
    auto inv = args<cli::InvertArgs>(s);
    inv.save_dir = s.out("inv");
    REQUIRE(cli::run_invert(inv, out, err) == 0);
    auto b = a;
    b.images_dir.clear();
    b.latents = s.out("inv") + "/latents.safetensors";
    b.save_dir = s.out("gs2");
    REQUIRE(cli::run_edit(b, out, err) == 0);
    for (const char* n : {"00001.png", "00003.png"})
      CHECK(slurp(s.out("gs2") + "/open_4/" + n) == slurp(s.out("gs") + "/open_4/" + n));
  }
  SUBCASE("bad input: no degree, both degree kinds, a bad range, wrong-shape latents and directions") {
    a.save_dir = s.out("bad");
    a.edit_degree.clear();
    GS_CHECK_THROWS_WITH(cli::run_edit(a, out, err), cli::UsageError, "--edit_degree");
    a.edit_degree = "1";
    a.range = "0:1:1";
    CHECK_THROWS_AS(cli::run_edit(a, out, err), cli::UsageError);
    a.edit_degree.clear();
    a.range = "0:1:-1";
    CHECK_THROWS_AS(cli::run_edit(a, out, err), cli::UsageError);
    a.range.clear();
    a.edit_degree = "x";
    GS_CHECK_THROWS_WITH(cli::run_edit(a, out, err), cli::UsageError, "not a finite number");
    a.edit_degree = "1";
    a.direction = kShared + "/e4e-editings/pose.pt";  // [1, 18, 512] on an 8 x 32 W+
    GS_CHECK_THROWS_WITH(cli::run_edit(a, out, err), ShapeError, "[1,18,512]");
    a.direction = (kGolden / "age.pt").string();
    a.images_dir.clear();
    a.latents = (kGolden / "age.pt").string();
    CHECK_THROWS_AS(cli::run_edit(a, out, err), FormatError);  // not a latents file
    const std::string wrong = s.out("wrong.safetensors");
    io::save_safetensors(wrong, {{"latents", io::from_tensor(Tensor::zeros({2, 18, 512}))}});
    a.latents = wrong;
    GS_CHECK_THROWS_WITH(cli::run_edit(a, out, err), ShapeError, "[2,18,512]", "[N,8,32]");
    CHECK(!fs::exists(s.out("bad")));
  }
}

TEST_CASE("cli/edit: GradStyle runs the editing stream with the aligned residuals (toyfaces bundle)") {
  autograd::NoGradGuard ng;
  Scratch s("gs");
  for (const auto& e : fs::directory_iterator(s.images)) fs::remove(e.path());
  for (int k = 0; k < 2; ++k)
    io::save_png((s.images / ("t" + std::to_string(k) + ".png")).string(),
                 tf::render_image(tf::sample_identity(0, tf::heldout_index(k)), tf::ToyEdit{}, 64));
  std::ostringstream out, err;
  auto a = args<cli::EditArgs>(s, kBundle);
  a.edit_attribute = "smile";
  a.edit_degree = "0.5";
  a.batch = 2;  // as the reference below: one forward for both
  REQUIRE(cli::run_edit(a, out, err) == 0);
  CHECK(out.str().find("toyfaces bundle, 64 px") != std::string::npos);
  CHECK(out.str().find("editing stream with aligned residuals") != std::string::npos);

  // The same numbers straight from the network.
  eval::ToyBundle b = eval::ToyBundle::load(kBundle);
  std::vector<Tensor> xs;
  for (int k = 0; k < 2; ++k) xs.push_back(io::image_to_tensor(io::load_image((s.images / ("t" + std::to_string(k) + ".png")).string())));
  const Tensor x = cat(xs, 0);
  auto ed = b.net->edit(*b.E, *b.G, x, b.directions.at("smile").n, 0.5 / b.directions.at("smile").scale);
  for (int64_t k = 0; k < 2; ++k) {
    const std::string n = "0000" + std::to_string(k + 1) + ".png";
    const io::Image want_rec = io::tensor_to_image(ed.inversion.rec.image, k, io::U8Rounding::Truncate);
    const io::Image want_edit = io::tensor_to_image(ed.edit.image, k, io::U8Rounding::Truncate);
    CHECK(io::load_image(s.out() + "/inversion/" + n).pixels == want_rec.pixels);
    CHECK(io::load_image(s.out() + "/smile_0.5/" + n).pixels == want_edit.pixels);
  }
  // The edit differs from a latent-only one: the residuals are aligned, not dropped.
  const Tensor latent_only = b.G->synthesis(ed.w_hat);
  CHECK(amax((ed.edit.image - latent_only).abs()).item() > 1e-3);

  SUBCASE("the GradStyle network file finds its generator and encoder beside it") {
    auto i = args<cli::InvertArgs>(s, kBundle + "/gradstyle.safetensors");
    i.save_dir = s.out("inv");
    i.batch = 2;
    REQUIRE(cli::run_invert(i, out, err) == 0);
    CHECK(io::load_image(s.out("inv") + "/inversions/00002.png").pixels ==
          io::tensor_to_image(ed.inversion.rec.image, 1, io::U8Rounding::Truncate).pixels);
    auto e = a;
    e.checkpoint = i.checkpoint;
    e.images_dir.clear();
    e.latents = s.out("inv") + "/latents.safetensors";
    e.save_dir = s.out("lat");
    GS_CHECK_THROWS_WITH(cli::run_edit(e, out, err), cli::UsageError, "needs the images");
  }
}

TEST_CASE("cli/invert: a fresh process inverts the same image twice to the same bits") {
  // The first products of a process once ran with Eigen's own threads (it was made single-threaded
  // on the first GEMM only), so the first inversion differed from the second in the last bits.
  // This needs a new process and more than one thread: the gradstyle program, OMP_NUM_THREADS=2.
  Scratch s("fresh");
  for (const auto& e : fs::directory_iterator(s.images)) fs::remove(e.path());
  const io::Image face = tf::render_image(tf::sample_identity(0, tf::heldout_index(2)), tf::ToyEdit{}, 64);
  io::save_png((s.images / "a.png").string(), face);
  io::save_png((s.images / "b.png").string(), face);
  const std::string cmd = "OMP_NUM_THREADS=2 " + std::string(GS_CLI_PATH) + " invert " + kBundle + " --images_dir " +
                          s.images.string() + " --save_dir " + s.out() + " --batch 1 --device cpu --quiet >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const Tensor w = io::load_state_dict_tensors(s.out() + "/latents.safetensors").at("latents").to(DType::f32);
  REQUIRE(w.size(0) == 2);
  CHECK(w.narrow(0, 0, 1).to_vector<float>() == w.narrow(0, 1, 1).to_vector<float>());
  CHECK(pixels(s.root / "out/inversions/00001.png") == pixels(s.root / "out/inversions/00002.png"));
}
