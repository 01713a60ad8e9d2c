// Every real file of the shared test data (../shared/data beside the checkout, see its README.md)
// goes through `gradstyle info` (the io::open_checkpoint path) and the loader a user would call:
// LPIPS heads through the LPIPS loader, e4e editing files through the editing loaders, photos
// through the image reader. A file with no test here fails, so a new real file cannot go untested.
#include <algorithm>
#include <filesystem>
#include <sstream>

#include "cli/commands.hpp"
#include "gradstyle/io/checkpoint.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/editing.hpp"
#include "gradstyle/models/lpips.hpp"
#include "io_test_util.hpp"
#include "support/harness.hpp"

using namespace iotest;
namespace fs = std::filesystem;
namespace lpips = gradstyle::models::lpips;
namespace editing = gradstyle::models::editing;

namespace {

const std::string kShared = GS_SOURCE_ROOT "/../shared/data";

std::string info_of(const std::string& path) {
  std::ostringstream out;
  cli::InfoArgs a;
  a.file = path;
  a.max_tensors = 0;
  REQUIRE(cli::run_info(a, out) == 0);
  return out.str();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Every storage of a .pt file recorded on `location`.
void check_locations(const io::Checkpoint& ck, const std::string& location) {
  REQUIRE(!ck.pt.storages.empty());
  for (const auto& st : ck.pt.storages) CHECK(st->location == location);
}

void check_equal(const Tensor& got, const RawTensor& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.shape() == want.shape);
  GS_EXPECT_CLOSE(got.cpu().to(DType::f32), io::to_tensor(want).to(DType::f32), 0, 0);
}

void check_lpips_heads(const std::string& path, const std::string& info) {
  CHECK(contains(info, "format: PyTorch legacy stream"));
  const io::Checkpoint ck = io::open_checkpoint(path);
  CHECK(ck.kind == io::CheckpointKind::PtLegacy);
  check_locations(ck, "cuda:0");  // saved on a GPU: read to the CPU
  REQUIRE(ck.tree->is_dict());
  CHECK(ck.tree->ordered);  // an OrderedDict rebuilt from [key, value] lists
  REQUIRE(ck.tensors.size() == 5);
  std::vector<int64_t> widths;
  for (size_t l = 0; l < 5; ++l) {
    CHECK(ck.tensors[l].first == "lin" + std::to_string(l) + ".model.1.weight");
    const RawTensor& w = *ck.tensors[l].second;
    REQUIRE(w.shape.size() == 4);
    CHECK(w.shape[0] == 1);
    widths.push_back(w.shape[1]);
  }
  // The heads are real weights: finite, not all zero.
  for (const auto& [n, t] : ck.tensors) {
    double mx = 0;
    for (int64_t i = 0; i < t->numel(); ++i) mx = std::max(mx, std::abs(t->get(i)));
    CHECK(std::isfinite(mx));
    CHECK(mx > 0);
  }
  // The LPIPS loader on these heads, over a random trunk of the same widths (one conv per block;
  // the real trunks are torchvision downloads that cannot be had here).
  lpips::LPIPSConfig cfg;
  cfg.channels = widths;
  cfg.convs.assign(widths.size(), 1);
  lpips::LPIPS trunk_src(cfg);
  io::NamedTensors trunk;
  for (const auto& [k, t] : trunk_src.state_dict())
    if (k.rfind("features.", 0) == 0) trunk.emplace_back(k, io::from_tensor(t));
  TempDir tmp;
  const std::string trunk_path = tmp.file("trunk.safetensors");
  io::save_safetensors(trunk_path, trunk);
  auto lp = lpips::LPIPS::from_files(trunk_path, path);
  REQUIRE(lp->lins.size() == 5);
  for (size_t l = 0; l < 5; ++l) check_equal(lp->lins[l]->model.conv.weight, *ck.tensors[l].second, ck.tensors[l].first);
  // A distance between two real photos: positive and finite; zero against itself.
  Tensor a = io::image_to_tensor(io::resize_pil(io::load_image(kShared + "/astronaut.png"), 64, 64));
  Tensor b = io::image_to_tensor(io::resize_pil(io::load_image(kShared + "/chelsea.png"), 64, 64));
  const double d = lp->forward(a, b).item();
  CHECK(std::isfinite(d));
  CHECK(d > 0);
  CHECK(lp->forward(a, a).item() == 0.0);
}

void check_interfacegan(const std::string& path, const std::string& info, const std::vector<int64_t>& shape,
                        const std::string& location) {
  CHECK(contains(info, "format: PyTorch zip checkpoint"));
  const io::Checkpoint ck = io::open_checkpoint(path);
  CHECK(ck.kind == io::CheckpointKind::PtZip);
  check_locations(ck, location);
  REQUIRE(ck.tree->is_tensor());  // the file holds one bare tensor
  Tensor dir = editing::load_interfacegan_direction(path);
  CHECK(dir.dtype() == DType::f32);
  CHECK(dir.shape() == shape);
  check_equal(dir, ck.tree->as_tensor(), path);
}

void check_ganspace(const std::string& path, const std::string& info) {
  CHECK(contains(info, "format: PyTorch zip checkpoint"));
  const io::Checkpoint ck = io::open_checkpoint(path);
  auto pca = editing::GanspacePCA::load(path);
  CHECK(pca.mean.shape() == Shape{1, 512});
  CHECK(pca.comp.shape() == Shape{80, 1, 512});
  CHECK(pca.stdev.shape() == Shape{80});
  // comp is stored transposed (strides (1, 80, 80)): the loader must materialise it in C order.
  check_equal(pca.comp, ck.tree->get("comp")->as_tensor(), "comp");
  check_equal(pca.mean, ck.tree->get("mean")->as_tensor(), "mean");
  check_equal(pca.stdev, ck.tree->get("std")->as_tensor(), "std");
  const RawTensor& comp = ck.tree->get("comp")->as_tensor();
  // Components 0 and 1 differ (a stride ignored would repeat or shift rows).
  CHECK(comp.get(0) != comp.get(512));
}

void check_photo(const std::string& path, const std::string& name, int w, int h) {
  // `info` refuses a photo with a message saying what it is.
  std::ostringstream out;
  cli::InfoArgs a;
  a.file = path;
  GS_CHECK_THROWS_WITH(cli::run_info(a, out), FormatError, name.c_str(), "PNG image");
  io::Image img = io::load_image(path);
  CHECK(img.width == w);
  CHECK(img.height == h);
  CHECK(img.channels == 3);
  CHECK(img.pixels.size() == size_t(w) * size_t(h) * 3);
  CHECK(std::any_of(img.pixels.begin(), img.pixels.end(), [&](uint8_t v) { return v != img.pixels[0]; }));
}

}  // namespace

TEST_CASE("io/shared_data: every real file loads through info and its loader") {
  REQUIRE_MESSAGE(fs::is_directory(kShared), "the shared test data is missing: expected the folder "
                                                 << kShared
                                                 << " (the project's shared/ folder beside this checkout, ../shared/data); "
                                                    "these tests need the real files and do not skip");
  std::vector<std::string> files;
  for (const auto& de : fs::recursive_directory_iterator(kShared))
    if (de.is_regular_file()) files.push_back(fs::relative(de.path(), kShared).generic_string());
  std::sort(files.begin(), files.end());
  size_t checked = 0;
  for (const auto& rel : files) {
    const std::string path = kShared + "/" + rel;
    CAPTURE(rel);
    const std::string base = fs::path(rel).filename().string();
    if (base == "README.md" || base == "LICENSE") continue;  // documentation
    ++checked;
    if (rel == "astronaut.png") {
      check_photo(path, rel, 512, 512);
    } else if (rel == "camera.png") {
      check_photo(path, rel, 512, 512);  // grayscale, replicated to RGB
    } else if (rel == "chelsea.png") {
      check_photo(path, rel, 451, 300);
    } else if (rel == "lpips-v0.1/vgg.pth" || rel == "lpips-v0.1/alex.pth") {
      check_lpips_heads(path, info_of(path));
    } else if (rel == "e4e-editings/age.pt" || rel == "e4e-editings/smile.pt") {
      check_interfacegan(path, info_of(path), {1, 512}, "cpu");
    } else if (rel == "e4e-editings/pose.pt") {
      check_interfacegan(path, info_of(path), {1, 18, 512}, "cuda:0");
    } else if (rel == "e4e-editings/ffhq_pca.pt") {
      check_ganspace(path, info_of(path));
    } else {
      --checked;
      FAIL_CHECK("shared data file '" << rel << "' has no loader test: add it to tests/io/test_shared_data.cpp");
    }
  }
  CHECK(checked == 9);  // the files the README lists
}

TEST_CASE("io/shared_data: the LPIPS VGG heads have the lpips package's widths") {
  REQUIRE_MESSAGE(fs::is_directory(kShared), "the shared test data is missing: expected " << kShared);
  const io::Checkpoint vgg = io::open_checkpoint(kShared + "/lpips-v0.1/vgg.pth");
  const io::Checkpoint alex = io::open_checkpoint(kShared + "/lpips-v0.1/alex.pth");
  std::vector<int64_t> wv, wa;
  for (const auto& [n, t] : vgg.tensors) wv.push_back(t->shape[1]);
  for (const auto& [n, t] : alex.tensors) wa.push_back(t->shape[1]);
  CHECK(wv == std::vector<int64_t>{64, 128, 256, 512, 512});
  CHECK(wa == std::vector<int64_t>{64, 192, 384, 256, 256});
}
