// toyfaces: determinism, held-out range, where edits act, anti-aliasing, sizes, labels, CLI.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/toyfaces.hpp"
#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/io/image.hpp"

namespace {

using namespace gradstyle;
namespace tf = gradstyle::data::toyfaces;
namespace fs = std::filesystem;

// sample_identity(0, 0).face_rx, its hair style and sample_edit(0, 0).yaw as first drawn.
constexpr double kPinnedRx = 0.23272603791518104, kPinnedYaw = 0.72802032003157291;
constexpr const char* kPinnedStyle = "side_part";

struct Img {
  int S;
  std::vector<float> v;  // [3, S, S]
  float at(int c, int x, int y) const { return v[(size_t(c) * S + y) * S + x]; }
};
Img draw(const tf::ToyIdentity& id, const tf::ToyEdit& e, int S = 64) {
  return {S, tf::render(id, e, S).to_vector<float>()};
}

// Mean |a - b| over the pixel box [x0, x1) x [y0, y1) (image units), all channels.
double region_diff(const Img& a, const Img& b, double x0, double y0, double x1, double y1) {
  const int S = a.S;
  const int px0 = std::max(0, int(x0 * S)), px1 = std::min(S, int(std::ceil(x1 * S)));
  const int py0 = std::max(0, int(y0 * S)), py1 = std::min(S, int(std::ceil(y1 * S)));
  double sum = 0;
  int n = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = py0; y < py1; ++y)
      for (int x = px0; x < px1; ++x, ++n) sum += std::abs(a.at(c, x, y) - b.at(c, x, y));
  return n ? sum / n : 0.0;
}

// First index of seed 0 whose identity satisfies pred.
template <class P>
uint64_t find_identity(P pred) {
  for (uint64_t i = 0; i < 10000; ++i)
    if (pred(tf::sample_identity(0, i))) return i;
  FAIL("no identity among the first 10000 matches");
  return 0;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/gs_toyfaces_test_XXXXXX";
    char* p = mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<nlohmann::json> read_labels(const std::string& path) {
  std::ifstream f(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(f, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST_CASE("data/toyfaces: identity i of seed s is a pure function of (s, i)") {
  const tf::ToyIdentity a = tf::sample_identity(7, 123), b = tf::sample_identity(7, 123);
  const tf::ToyEdit e = tf::sample_edit(7, 123);
  CHECK(tf::to_json(a, e) == tf::to_json(b, e));
  // Rendering is bitwise reproducible.
  const std::vector<float> r1 = tf::render(a, e).to_vector<float>(), r2 = tf::render(b, e).to_vector<float>();
  CHECK(r1 == r2);
  // Other index, other seed: other face.
  const std::vector<float> r3 = tf::render(tf::sample_identity(7, 124), e).to_vector<float>();
  const std::vector<float> r4 = tf::render(tf::sample_identity(8, 123), e).to_vector<float>();
  double d3 = 0, d4 = 0;
  for (size_t i = 0; i < r1.size(); ++i) {
    d3 += std::abs(r1[i] - r3[i]);
    d4 += std::abs(r1[i] - r4[i]);
  }
  CHECK(d3 / double(r1.size()) > 0.05);
  CHECK(d4 / double(r1.size()) > 0.05);
  // The identity and edit streams are exact functions of Philox counters (arithmetic only): these
  // values pin the data set; a change of the sampler must be deliberate.
  const tf::ToyIdentity z = tf::sample_identity(0, 0);
  CHECK(z.face_rx == doctest::Approx(kPinnedRx).epsilon(1e-12));
  CHECK(std::string(tf::name(z.hair_style)) == kPinnedStyle);
  CHECK(tf::sample_edit(0, 0).yaw == doctest::Approx(kPinnedYaw).epsilon(1e-12));
}

TEST_CASE("data/toyfaces: held-out identities are a disjoint fixed range") {
  CHECK_FALSE(tf::is_heldout(0));
  CHECK_FALSE(tf::is_heldout(tf::kHeldoutBegin - 1));
  CHECK(tf::is_heldout(tf::kHeldoutBegin));
  CHECK(tf::is_heldout(tf::heldout_index(0)));
  CHECK(tf::train_index(tf::kHeldoutBegin - 1) == tf::kHeldoutBegin - 1);
  CHECK_THROWS_AS(tf::train_index(tf::kHeldoutBegin), ValueError);
  // Held-out identity k is a fresh draw, not training identity k again.
  int same = 0;
  for (uint64_t k = 0; k < 50; ++k) {
    const tf::ToyIdentity tr = tf::sample_identity(0, tf::train_index(k)), ho = tf::sample_identity(0, tf::heldout_index(k));
    CHECK_FALSE(tf::is_heldout(tf::train_index(k)));
    same += tr.face_rx == ho.face_rx;
  }
  CHECK(same == 0);
  // The CLI refuses a training range that runs into the held-out one.
  TempDir t;
  cli::ToyfacesArgs a;
  a.out = t.path + "/x";
  a.n = 10;
  a.start = tf::kHeldoutBegin - 5;
  std::ostringstream out, err;
  CHECK_THROWS_AS(cli::run_toyfaces(a, out, err), cli::UsageError);
}

TEST_CASE("data/toyfaces: smile acts on the mouth and cheeks, not on the hair") {
  for (uint64_t k = 0; k < 6; ++k) {
    const tf::ToyIdentity id = tf::sample_identity(3, k);
    tf::ToyEdit e0, e1;
    e1.smile = 1;
    const Img a = draw(id, e0), b = draw(id, e1);
    const tf::FeatureLayout l = tf::layout(id, e0);
    const double mw = l.mouth_half_width + 0.02;
    const double mouth = region_diff(a, b, l.mouth_x - mw, l.mouth_y - 0.04, l.mouth_x + mw, l.mouth_y + 0.05);
    const double hair = region_diff(a, b, 0, 0, 1, id.head_y - id.face_ry);
    INFO("identity ", k, ": mouth ", mouth, " hair ", hair);
    CHECK(mouth > 0.015);
    CHECK(hair < 0.02 * mouth);
  }
}

TEST_CASE("data/toyfaces: eye openness acts on the eyes, age on the hair and skin") {
  const uint64_t k = find_identity([](const tf::ToyIdentity& id) {
    return id.glasses == tf::Glasses::None && !id.hat && id.hair_style == tf::HairStyle::Short;
  });
  const tf::ToyIdentity id = tf::sample_identity(0, k);
  tf::ToyEdit open, closed, old;
  open.eye_openness = 1;
  closed.eye_openness = 0;
  old.age = 1;
  const tf::FeatureLayout l = tf::layout(id, open);
  const Img a = draw(id, open), b = draw(id, closed);
  const double eyes = region_diff(a, b, l.eye_l_x - 0.05, l.eye_y - 0.03, l.eye_r_x + 0.05, l.eye_y + 0.03);
  const double mouth = region_diff(a, b, l.mouth_x - 0.08, l.mouth_y - 0.03, l.mouth_x + 0.08, l.mouth_y + 0.03);
  INFO("eyes ", eyes, " mouth ", mouth);
  CHECK(eyes > 0.05);
  CHECK(mouth == 0.0);

  // Age greys the hair: its saturation (max - min channel) drops; the background stays.
  const Img y = draw(id, tf::ToyEdit{}), o = draw(id, old);
  auto sat = [&](const Img& im) {
    const int px = int(id.head_x * 64), py = int((id.head_y - 0.9 * id.face_ry) * 64);
    const float r = im.at(0, px, py), g = im.at(1, px, py), bl = im.at(2, px, py);
    return std::max({r, g, bl}) - std::min({r, g, bl});
  };
  const double hair_rgb_young = id.hair.r + id.hair.g + id.hair.b;
  INFO("hair colour sum ", hair_rgb_young);
  const bool greyer = sat(o) < sat(y) || sat(y) < 0.05;
  CHECK(greyer);
  CHECK(region_diff(y, o, 0, id.head_y - 0.9 * id.face_ry - 0.01, 1, id.head_y - 0.9 * id.face_ry + 0.01) > 0.005);
  CHECK(region_diff(y, o, 0, 0.9, 0.05, 1) == 0.0);  // bottom-left corner: background/shirt
  // Wrinkles: the skin between the brows and the hairline or around the eyes changes.
  CHECK(region_diff(y, o, l.eye_l_x - 0.1, l.eye_y - 0.05, l.eye_r_x + 0.1, l.eye_y + 0.05) > 0.005);
}

TEST_CASE("data/toyfaces: yaw moves the features horizontally in its direction") {
  for (uint64_t k = 0; k < 4; ++k) {
    const tf::ToyIdentity id = tf::sample_identity(5, k);
    double prev_eye = -1, prev_nose = -1, prev_mouth = -1;
    for (double yaw : {-1.0, -0.5, 0.0, 0.5, 1.0}) {
      tf::ToyEdit e;
      e.yaw = yaw;
      const tf::FeatureLayout l = tf::layout(id, e);
      const double eye = 0.5 * (l.eye_l_x + l.eye_r_x);
      CHECK(eye > prev_eye);
      CHECK(l.nose_x > prev_nose);
      CHECK(l.mouth_x > prev_mouth);
      // Turning compresses the eye on the far side: the eye distance shrinks with |yaw|.
      if (yaw != 0) {
        tf::ToyEdit f;
        CHECK(l.eye_r_x - l.eye_l_x < tf::layout(id, f).eye_r_x - tf::layout(id, f).eye_l_x);
      }
      prev_eye = eye;
      prev_nose = l.nose_x;
      prev_mouth = l.mouth_x;
    }
    // In the pixels: the band from the eyes to the mouth best matches the frontal one shifted in
    // the yaw's direction.
    tf::ToyEdit front, right, left;
    right.yaw = 0.6;
    left.yaw = -0.6;
    const Img f = draw(id, front), r = draw(id, right), lft = draw(id, left);
    const tf::FeatureLayout l = tf::layout(id, front);
    const int y0 = int(l.eye_y * 64) - 2, y1 = int(l.mouth_y * 64) + 2;
    const int x0 = int((id.head_x - 0.55 * id.face_rx) * 64), x1 = int((id.head_x + 0.55 * id.face_rx) * 64);
    auto best_shift = [&](const Img& m) {
      int best = 0;
      double best_err = 1e30;
      for (int sh = -10; sh <= 10; ++sh) {
        double err = 0;
        for (int c = 0; c < 3; ++c)
          for (int y = y0; y <= y1; ++y)
            for (int x = x0; x <= x1; ++x) {
              const double d = m.at(c, x + sh, y) - f.at(c, x, y);
              err += d * d;
            }
        if (err < best_err) best_err = err, best = sh;
      }
      return best;
    };
    INFO("identity ", k);
    CHECK(best_shift(r) >= 2);
    CHECK(best_shift(lft) <= -2);
  }
}

TEST_CASE("data/toyfaces: edges are anti-aliased") {
  const uint64_t k = find_identity([](const tf::ToyIdentity& id) { return id.hair_style == tf::HairStyle::Short; });
  const tf::ToyIdentity id = tf::sample_identity(0, k);
  const tf::ToyEdit e;
  // Coverage at 64 px agrees with a 4x4 box filter of the 256-px render (a hard-edged renderer
  // differs by a large part of the edge contrast along every outline).
  const Img lo = draw(id, e, 64), hi = draw(id, e, 256);
  double sum = 0, worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x) {
        double box = 0;
        for (int j = 0; j < 4; ++j)
          for (int i = 0; i < 4; ++i) box += hi.at(c, 4 * x + i, 4 * y + j);
        const double d = std::abs(lo.at(c, x, y) - box / 16);
        sum += d;
        worst = std::max(worst, d);
      }
  INFO("mean ", sum / (3 * 64 * 64), " worst ", worst);
  CHECK(sum / (3 * 64 * 64) < 0.005);  // hard edges give 0.013 on this face
  // The face outline below the ears (a superellipse there, see toyfaces.cpp): the pixels at the
  // edge take colours strictly between those two pixels outside and inside it, on most rows.
  const double n = 1.7 + 1.4 * id.jaw;
  int rows = 0, soft = 0;
  for (int step = 0; step < 8; ++step) {
    const int y = int((id.head_y + (0.45 + 0.05 * step) * id.face_ry) * 64);
    const double b = ((y + 0.5) / 64 - id.head_y) / id.face_ry;
    const double xe = (id.head_x - id.face_rx * std::pow(1 - std::pow(b, n), 1 / n)) * 64;  // pixels
    const int pe = int(std::floor(xe));
    double dir[3], len2 = 0;
    for (int c = 0; c < 3; ++c) {
      dir[c] = lo.at(c, pe + 3, y) - lo.at(c, pe - 3, y);
      len2 += dir[c] * dir[c];
    }
    if (len2 < 0.15 * 0.15) continue;  // outside and inside look alike on this row
    ++rows;
    for (int x = pe - 1; x <= pe + 1; ++x) {
      double lam = 0;
      for (int c = 0; c < 3; ++c) lam += (lo.at(c, x, y) - lo.at(c, pe - 3, y)) * dir[c];
      lam /= len2;
      if (lam > 0.08 && lam < 0.92) {
        ++soft;
        break;
      }
    }
  }
  INFO("rows with contrast ", rows, ", with an intermediate edge pixel ", soft);
  CHECK(rows >= 3);
  CHECK(soft * 2 > rows);
}

TEST_CASE("data/toyfaces: sizes, range, argument errors, network input") {
  const tf::ToyIdentity id = tf::sample_identity(1, 2);
  const tf::ToyEdit e = tf::sample_edit(1, 2);
  for (int S : {16, 32, 64, 128}) {
    const Tensor t = tf::render(id, e, S);
    CHECK(t.shape() == Shape{3, S, S});
    CHECK(t.dtype() == DType::f32);
    const std::vector<float> v = t.to_vector<float>();
    float lo = 1, hi = 0;
    for (float x : v) lo = std::min(lo, x), hi = std::max(hi, x);
    CHECK(lo >= 0.f);
    CHECK(hi <= 1.f);
    CHECK(hi - lo > 0.5f);
  }
  // The same picture at every size: 32 px vs the 128-px render box-filtered 4x4.
  const Img s32 = draw(id, e, 32), s128 = draw(id, e, 128);
  double sum = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        double box = 0;
        for (int j = 0; j < 4; ++j)
          for (int i = 0; i < 4; ++i) box += s128.at(c, 4 * x + i, 4 * y + j);
        sum += std::abs(s32.at(c, x, y) - box / 16);
      }
  CHECK(sum / (3 * 32 * 32) < 0.03);

  CHECK_THROWS_AS(tf::render(id, e, 15), ValueError);
  tf::ToyEdit bad = e;
  bad.smile = 1.5;
  CHECK_THROWS_WITH_AS(tf::render(id, bad), doctest::Contains("smile must be in [-1, 1], got 1.5"), ValueError);
  bad = e;
  bad.age = std::nan("");
  CHECK_THROWS_AS(tf::render(id, bad), ValueError);
  tf::ToyEdit f;
  CHECK_THROWS_AS(tf::edit_field(f, "nose"), ValueError);
  tf::edit_field(f, "eye_openness") = 0.25;
  CHECK(f.eye_openness == 0.25);

  // [-1, 1] NCHW for the networks, and the 8-bit image rounds the same pixels.
  const Tensor img = tf::render(id, e, 32);
  const Tensor net = tf::to_network_input(img);
  CHECK(net.shape() == Shape{1, 3, 32, 32});
  const std::vector<float> a = img.to_vector<float>(), b = net.to_vector<float>();
  for (size_t i = 0; i < a.size(); i += 97) CHECK(b[i] == doctest::Approx(2 * a[i] - 1));
  const io::Image u8 = tf::render_image(id, e, 32);
  CHECK(u8.at(5, 7, 1) == uint8_t(std::lround(a[(1 * 32 + 7) * 32 + 5] * 255)));
  CHECK_THROWS_AS(tf::to_network_input(Tensor::zeros({2, 32, 32})), ShapeError);
}

TEST_CASE("data/toyfaces: labels carry every parameter") {
  const uint64_t k = find_identity([](const tf::ToyIdentity& id) { return !id.freckles.empty(); });
  const tf::ToyIdentity id = tf::sample_identity(0, k);
  tf::ToyEdit e;
  e.yaw = -0.25;
  e.smile = 0.5;
  e.eye_openness = 0.75;
  e.age = 0.125;
  const nlohmann::json j = nlohmann::json::parse(tf::to_json(id, e));
  CHECK(j["edit"]["yaw"] == -0.25);
  CHECK(j["edit"]["smile"] == 0.5);
  CHECK(j["edit"]["eye_openness"] == 0.75);
  CHECK(j["edit"]["age"] == 0.125);
  const nlohmann::json& i = j["identity"];
  CHECK(i["face_rx"] == id.face_rx);
  CHECK(i["hair_style"] == tf::name(id.hair_style));
  CHECK(i["freckles"].size() == id.freckles.size());
  CHECK(i["freckles"][0][0] == id.freckles[0].u);
  CHECK(i["skin"][2] == id.skin.b);
  for (const char* key : {"jaw", "hair", "hair_volume", "eye_color", "eye_size", "eye_spacing", "eye_height",
                          "brow_thickness", "brow_tilt", "brow_arch", "nose_length", "nose_width", "mouth_width",
                          "lip_thickness", "moles", "earrings", "glasses", "hat", "hat_stripes", "background",
                          "bg_frequency", "bg_angle", "bg_seed", "shirt"})
    CHECK_MESSAGE(i.contains(key), key);
}

TEST_CASE("data/toyfaces: the CLI writes N images and N labels and refuses an existing directory") {
  TempDir t;
  cli::ToyfacesArgs a;
  a.out = t.path + "/set";
  a.n = 5;
  a.size = 32;
  a.seed = 11;
  std::ostringstream out, err;
  CHECK(cli::run_toyfaces(a, out, err) == 0);
  const auto labels = read_labels(a.out + "/labels.jsonl");
  REQUIRE(labels.size() == 5);
  for (int i = 0; i < 5; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "%05d.png", i);
    CHECK(labels[size_t(i)]["file"] == name);
    CHECK(labels[size_t(i)]["index"] == i);
    CHECK(labels[size_t(i)]["heldout"] == false);
    const io::Image img = io::load_image(a.out + "/" + name);
    CHECK(img.width == 32);
    // The file is the rendering of the labelled identity and edit.
    const io::Image ref = tf::render_image(tf::sample_identity(11, uint64_t(i)), tf::sample_edit(11, uint64_t(i)), 32);
    CHECK(img.pixels == ref.pixels);
    CHECK(labels[size_t(i)]["edit"]["yaw"] == tf::sample_edit(11, uint64_t(i)).yaw);
  }
  int files = 0;
  for (const auto& ent : fs::directory_iterator(a.out)) files += ent.path().extension() == ".png";
  CHECK(files == 5);
  CHECK(err.str().find("[5/5]") != std::string::npos);

  // An existing non-empty directory is refused unless --overwrite.
  CHECK_THROWS_WITH_AS(cli::run_toyfaces(a, out, err), doctest::Contains("--overwrite"), cli::UsageError);
  a.overwrite = true;
  a.n = 2;
  CHECK(cli::run_toyfaces(a, out, err) == 0);
  CHECK(read_labels(a.out + "/labels.jsonl").size() == 2);

  // Held-out ground-truth sweep: the same identity at each value of one edit.
  cli::ToyfacesArgs s;
  s.out = t.path + "/sweep";
  s.n = 2;
  s.size = 32;
  s.heldout = true;
  s.edit_sweep = "smile";
  s.sweep_values = "-1,0,1";
  CHECK(cli::run_toyfaces(s, out, err) == 0);
  const auto sl = read_labels(s.out + "/labels.jsonl");
  REQUIRE(sl.size() == 6);
  CHECK(sl[0]["file"] == "00000_s0.png");
  CHECK(sl[5]["file"] == "00001_s2.png");
  for (int k = 0; k < 3; ++k) {
    CHECK(sl[size_t(k)]["index"] == tf::kHeldoutBegin);
    CHECK(sl[size_t(k)]["heldout"] == true);
    CHECK(sl[size_t(k)]["identity"] == sl[0]["identity"]);
    CHECK(sl[size_t(k)]["edit"]["smile"] == double(k - 1));
    CHECK(sl[size_t(k)]["edit"]["yaw"] == sl[0]["edit"]["yaw"]);
    CHECK(fs::exists(s.out + "/" + sl[size_t(k)]["file"].get<std::string>()));
  }

  s.out = t.path + "/bad";
  s.edit_sweep = "nose";
  CHECK_THROWS_AS(cli::run_toyfaces(s, out, err), cli::UsageError);
  s.edit_sweep = "age";
  s.sweep_values = "0,2";
  CHECK_THROWS_WITH_AS(cli::run_toyfaces(s, out, err), doctest::Contains("outside the range of age"), cli::UsageError);
  s.sweep_values = "0,x";
  CHECK_THROWS_AS(cli::run_toyfaces(s, out, err), cli::UsageError);
  s.sweep_values = "";
  s.size = 8;
  CHECK_THROWS_AS(cli::run_toyfaces(s, out, err), cli::UsageError);
}
