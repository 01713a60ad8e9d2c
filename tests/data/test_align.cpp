// FFHQ face alignment and paste-back on the real photos of ../shared/data:
// - the quad and the aligned image against the reference procedure (numpy, scipy.ndimage, PIL) run
//   by tools/reference/make_align_fixtures.py on the landmarks our dlib build found
//   (tests/golden/align/<stem>.json, <stem>_<size>.png);
// - dlib still finds exactly those landmarks (Debian has no Python dlib to compare with, so this
//   pins our own detector run: a change of dlib or of our image hand-over shows here);
// - the cat has no human face, the grey camera photo is handled as the detector sees it;
// - paste-back leaves every pixel outside the face square exactly as it was;
// - `gradstyle align`, `invert --align` and `edit --align --paste-back` end to end.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "cli/align.hpp"
#include "cli/commands.hpp"
#include "cli/invert.hpp"
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/data/align.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "support/harness.hpp"

using namespace gradstyle;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kGolden = fs::path(GS_SOURCE_ROOT) / "tests" / "golden" / "align";
const fs::path kShared = fs::path(GS_SOURCE_ROOT) / ".." / "shared" / "data";
const std::string kBundle = GS_SOURCE_ROOT "/models/toyfaces";

json read_json(const fs::path& p) {
  std::ifstream f(p);
  REQUIRE_MESSAGE(f.good(), "cannot read " << p.string());
  return json::parse(f);
}

align::Landmarks landmarks_of(const json& j) {
  align::Landmarks lm{};
  REQUIRE(j.size() == 68);
  for (size_t i = 0; i < 68; ++i) lm[i] = {j[i][0].get<double>(), j[i][1].get<double>()};
  return lm;
}

struct Scratch {
  fs::path root;
  explicit Scratch(const std::string& tag) {
    root = fs::temp_directory_path() / ("gs_align_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
  }
  ~Scratch() { fs::remove_all(root); }
  std::string operator/(const std::string& s) const { return (root / s).string(); }
};

// Largest per-pixel difference and the fraction of samples that differ at all.
std::pair<int, double> diff(const io::Image& a, const io::Image& b) {
  REQUIRE(a.width == b.width);
  REQUIRE(a.height == b.height);
  REQUIRE(a.channels == b.channels);
  int worst = 0;
  size_t off = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const int d = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    worst = std::max(worst, d);
    off += d != 0;
  }
  return {worst, double(off) / double(a.pixels.size())};
}

// Whether photo pixel (x, y)'s centre lies strictly inside the quad (a square, any orientation).
bool inside(const align::Quad& q, int x, int y) {
  const double px = x + 0.5, py = y + 0.5;
  for (size_t i = 0; i < 4; ++i) {
    const align::Point a = q[i], b = q[(i + 1) % 4];
    const double cross = (b.x - a.x) * (py - a.y) - (b.y - a.y) * (px - a.x);
    // tl -> bl -> br -> tr runs counter-clockwise on screen (y down): every cross product has one sign.
    if (cross > 1e-9) return false;
  }
  return true;
}

// A fixture's photo: a real one of ../shared/data, or one made for a branch (astronaut_top.png,
// the astronaut cropped so that the face square leaves the photo: the reflect-pad-and-blur path).
std::string source_path(const std::string& name) {
  return (fs::exists(kGolden / name) ? kGolden / name : kShared / name).string();
}

align::Quad quad_of(const json& q) {
  align::Quad r{};
  for (size_t i = 0; i < 4; ++i) r[i] = {q[i][0].get<double>(), q[i][1].get<double>()};
  return r;
}

void check_quad(const json& got, const json& want) {
  REQUIRE(got.size() == 4);
  for (size_t i = 0; i < 4; ++i)
    for (size_t k = 0; k < 2; ++k) CHECK(got[i][k].get<double>() == doctest::Approx(want[i][k].get<double>()).epsilon(1e-12));
}

std::vector<fs::path> fixtures() {
  std::vector<fs::path> out;
  if (fs::is_directory(kGolden))
    for (const auto& e : fs::directory_iterator(kGolden))
      if (e.path().extension() == ".json") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("data/align: the quad and the aligned image are the FFHQ reference procedure's") {
  const std::vector<fs::path> fx = fixtures();
  REQUIRE_MESSAGE(fx.size() >= 4, "tests/golden/align holds the fixtures of tools/reference/make_align_fixtures.py");
  bool shrank = false, padded = false;
  for (const auto& p : fx) {
    const json j = read_json(p);
    CAPTURE(p.filename().string());
    const align::Alignment a = align::alignment_from_landmarks(landmarks_of(j["landmarks"]));
    for (size_t i = 0; i < 4; ++i) {
      CHECK(a.quad[i].x == doctest::Approx(j["quad"][i][0].get<double>()).epsilon(1e-12));
      CHECK(a.quad[i].y == doctest::Approx(j["quad"][i][1].get<double>()).epsilon(1e-12));
    }
    CHECK(a.qsize == doctest::Approx(j["qsize"].get<double>()).epsilon(1e-12));
    const int size = j["size"].get<int>();
    const io::Image photo = io::load_image(source_path(j["source"].get<std::string>()));
    align::AlignOptions o;
    o.output_size = size;
    o.transform_size = j.value("transform_size", size);
    const io::Image got = align::align_image(photo, a, o);
    const io::Image want = io::load_image((kGolden / (p.stem().string() + ".png")).string());
    const auto [worst, frac] = diff(got, want);
    CAPTURE(worst);
    CAPTURE(frac);
    // The same bytes: one level is allowed only where float32 sums straddle a rounding point.
    CHECK(worst <= 1);
    CHECK(frac <= 1e-3);
    shrank |= j["shrink"].get<int>() > 1;
    padded |= j["padded"].get<bool>();
  }
  // The fixtures exercise the shrink and the reflect-pad-and-blur branches, not only the plain crop.
  CHECK(shrank);
  CHECK(padded);
}

TEST_CASE("data/align: degenerate landmarks and bad sizes are refused") {
  align::Landmarks lm{};
  GS_CHECK_THROWS_WITH(align::alignment_from_landmarks(lm), ValueError, "degenerate");
  const io::Image img = io::Image::blank(16, 16);
  align::Alignment a;
  a.quad = {align::Point{100, 100}, {100, 120}, {120, 120}, {120, 100}};
  a.qsize = 20;
  GS_CHECK_THROWS_WITH(align::align_image(img, a), ValueError, "outside the image");
  align::AlignOptions o;
  o.output_size = 0;
  GS_CHECK_THROWS_WITH(align::align_image(img, a, o), ValueError, "sizes");
}

TEST_CASE("data/align: paste-back changes nothing outside the face square and puts the face inside it") {
  std::mt19937 rng(7);
  io::Image photo = io::Image::blank(97, 83);
  for (auto& v : photo.pixels) v = uint8_t(rng() % 256);
  io::Image face = io::Image::blank(32, 32);
  for (auto& v : face.pixels) v = uint8_t(rng() % 256);
  // A rotated square partly outside the photo.
  const align::Point c{70, 40}, x{25, 9}, y{-9, 25};
  const align::Quad q = {c - x - y, c - x + y, c + x + y, c + x - y};
  const io::Image out = align::paste_back(photo, face, q, 0.1);
  REQUIRE(out.width == photo.width);
  REQUIRE(out.height == photo.height);
  int64_t outside = 0, changed_outside = 0, inside_n = 0, changed_inside = 0;
  for (int yy = 0; yy < photo.height; ++yy)
    for (int xx = 0; xx < photo.width; ++xx) {
      const bool in = inside(q, xx, yy);
      bool same = true;
      for (int ch = 0; ch < 3; ++ch) same &= out.at(xx, yy, ch) == photo.at(xx, yy, ch);
      (in ? inside_n : outside) += 1;
      if (!in) changed_outside += !same;
      if (in) changed_inside += !same;
    }
  CHECK(outside > 1000);
  CHECK(changed_outside == 0);
  CHECK(double(changed_inside) > 0.9 * double(inside_n));
  // At the centre of the square the mask is 1: the output is the face's own centre (bilinear between
  // its four middle pixels).
  const int cx = 69, cy = 39;  // pixel whose centre is (69.5, 39.5), near c
  REQUIRE(inside(q, cx, cy));
  for (int ch = 0; ch < 3; ++ch) {
    int lo = 255, hi = 0;
    for (int dy = 14; dy <= 17; ++dy)
      for (int dx = 14; dx <= 17; ++dx) lo = std::min(lo, int(face.at(dx, dy, ch))), hi = std::max(hi, int(face.at(dx, dy, ch)));
    CHECK(int(out.at(cx, cy, ch)) >= lo);
    CHECK(int(out.at(cx, cy, ch)) <= hi);
  }
  GS_CHECK_THROWS_WITH(align::paste_back(photo, face, q, 0.0), ValueError, "feather");
  GS_CHECK_THROWS_WITH(align::paste_back(photo, io::Image::blank(4, 5), q, 0.1), ValueError, "square");
}

TEST_CASE("data/align: the astronaut aligned and pasted back is the photo outside the quad, close to it inside") {
  const json j = read_json(kGolden / "astronaut_face0_256.json");
  const io::Image photo = io::load_image((kShared / "astronaut.png").string());
  const align::Alignment a = align::alignment_from_landmarks(landmarks_of(j["landmarks"]));
  align::AlignOptions o;
  o.output_size = 256;
  const io::Image face = align::align_image(photo, a, o);
  const io::Image back = align::paste_back(photo, face, a.quad, 0.1);
  double err = 0;
  int64_t n = 0, changed_outside = 0;
  for (int y = 0; y < photo.height; ++y)
    for (int x = 0; x < photo.width; ++x)
      for (int c = 0; c < 3; ++c) {
        const int d = std::abs(int(back.at(x, y, c)) - int(photo.at(x, y, c)));
        if (inside(a.quad, x, y)) {
          err += d;
          ++n;
        } else {
          changed_outside += d != 0;
        }
      }
  CHECK(changed_outside == 0);
  REQUIRE(n > 0);
  // Resampled twice (photo -> 256 square -> photo): a few levels on average, not a misplaced face.
  CAPTURE(err / double(n));
  CHECK(err / double(n) < 6.0);
}

TEST_CASE("data/align: dlib finds the landmarks stored with the fixtures; the cat has no face") {
  if (!align::have_dlib()) {
    MESSAGE("skipped: this build has no dlib (apt-get install libdlib-dev libdlib-data, then rebuild)");
    return;
  }
  const std::string model = align::default_landmarks_path();
  if (!fs::is_regular_file(model)) {
    MESSAGE("skipped: no landmark model at " << model << " (apt-get install libdlib-data)");
    return;
  }
  // The astronaut: her face, and a false hit on the mission patch of her suit with a far lower score.
  const std::vector<align::Face> faces = align::detect_faces(io::load_image((kShared / "astronaut.png").string()), model);
  REQUIRE(faces.size() == 2);
  const std::vector<std::pair<align::Face, std::string>> cases = {
      {faces[0], "astronaut_face0_256.json"},
      {faces[1], "astronaut_face1_256.json"},
      {align::detect_faces(io::load_image(source_path("astronaut_top.png")), model).at(0), "astronaut_top_256.json"}};
  for (const auto& [face, fixture] : cases) {
    CAPTURE(fixture);
    const json j = read_json(kGolden / fixture);
    const align::Landmarks want = landmarks_of(j["landmarks"]);
    int64_t differ = 0;
    for (size_t i = 0; i < 68; ++i) differ += face.landmarks[i].x != want[i].x || face.landmarks[i].y != want[i].y;
    CHECK(differ == 0);
    CHECK(json{face.left, face.top, face.right, face.bottom} == j["box"]);
  }
  CHECK(faces[0].score > 1.0);
  CHECK(faces[1].score < 0.3);
  // The grey camera photo: the man looks down at his camera, in profile; the frontal detector finds no face.
  CHECK(align::detect_faces(io::load_image((kShared / "camera.png").string()), model).empty());
  CHECK(align::detect_faces(io::load_image((kShared / "chelsea.png").string()), model).empty());

  SUBCASE("a model file that is missing or not a shape predictor is named") {
    GS_CHECK_THROWS_WITH(align::detect_faces(io::Image::blank(8, 8), "/nonexistent/sp.dat"), IOError, "/nonexistent/sp.dat",
                         "--landmarks");
    Scratch s("badmodel");
    std::ofstream(s / "sp.dat") << "not a model";
    GS_CHECK_THROWS_WITH(align::detect_faces(io::Image::blank(8, 8), s / "sp.dat"), FormatError, "not a dlib shape predictor");
  }
}

TEST_CASE("cli/align: aligned faces and alignments.json; no face is one line naming the file") {
  if (!align::have_dlib()) {
    MESSAGE("skipped: this build has no dlib");
    return;
  }
  Scratch s("cli");
  fs::create_directories(s / "in");
  for (const char* f : {"astronaut.png", "chelsea.png", "camera.png"}) fs::copy_file(kShared / f, fs::path(s / "in") / f);
  cli::AlignArgs a;
  a.inputs = {s / "in"};
  a.save_dir = s / "out";
  a.settings.size = 256;
  a.quiet = true;
  std::ostringstream out, err;
  // Without --keep-going the first photo without a face stops the run, naming it.
  GS_CHECK_THROWS_WITH(cli::run_align(a, out, err), FormatError, "no face found", "--keep-going");
  a.keep_going = true;
  a.overwrite = true;
  REQUIRE(cli::run_align(a, out, err) == 1);
  CHECK(err.str().find("chelsea.png': no face found") != std::string::npos);
  CHECK(err.str().find("camera.png': no face found") != std::string::npos);
  const json recs = read_json(fs::path(s / "out") / "alignments.json");
  // The aligned astronaut is the reference procedure's image.
  const io::Image got = io::load_image(s / "out/astronaut_face0.png");
  const auto [worst, frac] = diff(got, io::load_image((kGolden / "astronaut_face0_256.png").string()));
  CHECK(worst <= 1);
  CHECK(frac <= 1e-3);
  REQUIRE(recs.size() == 2);  // the astronaut's face and the patch
  bool seen_astronaut = false;
  for (const auto& r : recs) {
    CHECK(fs::exists(fs::path(s / "out") / r["output"].get<std::string>()));
    CHECK(r["quad"].size() == 4);
    CHECK(r["landmarks"].size() == 68);
    if (r["output"] == "astronaut_face0.png") {
      seen_astronaut = true;
      check_quad(r["quad"], read_json(kGolden / "astronaut_face0_256.json")["quad"]);
    }
    CHECK(r["output"] != "chelsea.png");
  }
  CHECK(seen_astronaut);

  SUBCASE("--largest keeps her face, named after the photo") {
    cli::AlignArgs b = a;
    b.inputs = {s / "in/astronaut.png"};
    b.settings.largest = true;
    REQUIRE(cli::run_align(b, out, err) == 0);
    const json r = read_json(fs::path(s / "out") / "alignments.json");
    REQUIRE(r.size() == 1);
    CHECK(r[0]["output"] == "astronaut.png");
    check_quad(r[0]["quad"], read_json(kGolden / "astronaut_face0_256.json")["quad"]);
    CHECK(!fs::exists(s / "out/astronaut_face1.png"));
  }
  SUBCASE("a missing input, a bad size, a non-empty --save_dir are usage errors") {
    cli::AlignArgs b = a;
    b.inputs = {s / "nope.png"};
    GS_CHECK_THROWS_WITH(cli::run_align(b, out, err), IOError, "nope.png", "does not exist");
    b = a;
    b.overwrite = false;
    GS_CHECK_THROWS_WITH(cli::run_align(b, out, err), cli::UsageError, "not empty", "--overwrite");
    b = a;
    b.settings.size = 4;
    GS_CHECK_THROWS_WITH(cli::run_align(b, out, err), cli::UsageError, "--size");
  }
}

TEST_CASE("cli/edit --align --paste-back: the toyfaces bundle edits the astronaut inside the photo") {
  if (!align::have_dlib()) {
    MESSAGE("skipped: this build has no dlib");
    return;
  }
  autograd::NoGradGuard ng;
  Scratch s("paste");
  fs::create_directories(s / "in");
  fs::copy_file(kShared / "astronaut.png", fs::path(s / "in") / "astronaut.png");
  const io::Image photo = io::load_image((kShared / "astronaut.png").string());
  const align::Quad quad = quad_of(read_json(kGolden / "astronaut_face0_256.json")["quad"]);
  std::ostringstream out, err;

  cli::InvertArgs inv;
  inv.checkpoint = kBundle;
  inv.images_dir = s / "in";
  inv.save_dir = s / "inv";
  inv.device = "cpu";
  inv.quiet = true;
  inv.align = true;
  inv.largest = true;  // her face, not the patch
  REQUIRE(cli::run_invert(inv, out, err) == 0);
  CHECK(fs::exists(s / "inv/inversions/00001.png"));
  const io::SafetensorsFile lat(s / "inv/latents.safetensors");
  const json al = json::parse(lat.metadata().at("alignments"));
  REQUIRE(al.size() == 1);
  check_quad(al[0]["quad"], read_json(kGolden / "astronaut_face0_256.json")["quad"]);
  CHECK(json::parse(lat.metadata().at("names"))[0] == "astronaut.png");

  cli::EditArgs ed;
  ed.checkpoint = kBundle;
  ed.images_dir = s / "in";
  ed.save_dir = s / "ed";
  ed.device = "cpu";
  ed.quiet = true;
  ed.align = true;
  ed.largest = true;
  ed.paste_back = true;
  ed.edit_attribute = "smile";
  ed.edit_degree = "1";
  REQUIRE(cli::run_edit(ed, out, err) == 0);
  const io::Image edited = io::load_image(s / "ed/smile_1/00001.png");
  const io::Image pasted = io::load_image(s / "ed/smile_1_pasted/00001.png");
  REQUIRE(pasted.width == photo.width);
  REQUIRE(pasted.height == photo.height);
  CHECK(pasted.pixels == align::paste_back(photo, edited, quad, 0.1).pixels);
  int64_t changed_outside = 0, changed_inside = 0;
  for (int y = 0; y < photo.height; ++y)
    for (int x = 0; x < photo.width; ++x) {
      bool same = true;
      for (int c = 0; c < 3; ++c) same &= pasted.at(x, y, c) == photo.at(x, y, c);
      (inside(quad, x, y) ? changed_inside : changed_outside) += !same;
    }
  CHECK(changed_outside == 0);
  CHECK(changed_inside > 1000);

  SUBCASE("the flags that go with --align are refused without it") {
    cli::EditArgs b = ed;
    b.align = false;
    b.largest = false;
    b.save_dir = s / "e2";
    GS_CHECK_THROWS_WITH(cli::run_edit(b, out, err), cli::UsageError, "--paste-back needs --align");
    b.paste_back = false;
    b.largest = true;
    GS_CHECK_THROWS_WITH(cli::run_edit(b, out, err), cli::UsageError, "--largest", "go with --align");
    b = ed;
    b.save_dir = s / "e3";
    b.images_dir.clear();
    b.latents = s / "inv/latents.safetensors";
    GS_CHECK_THROWS_WITH(cli::run_edit(b, out, err), cli::UsageError, "--latents");
    b = ed;
    b.save_dir = s / "e4";
    b.feather = 0.7;
    GS_CHECK_THROWS_WITH(cli::run_edit(b, out, err), cli::UsageError, "--feather");
  }
  SUBCASE("a photo without a face stops the run before anything is written, or is skipped") {
    fs::copy_file(kShared / "chelsea.png", fs::path(s / "in") / "chelsea.png");
    cli::InvertArgs b = inv;
    b.save_dir = s / "inv2";
    GS_CHECK_THROWS_WITH(cli::run_invert(b, out, err), FormatError, "chelsea.png", "no face found");
    CHECK(!fs::exists(s / "inv2/latents.safetensors"));
    b.keep_going = true;
    b.overwrite = true;
    CHECK(cli::run_invert(b, out, err) == 1);
    CHECK(fs::exists(s / "inv2/latents.safetensors"));
  }
}
