// `gradstyle explain`: the streams of SPEC B.6 opened up on one image (see explain.hpp).
#include "cli/explain.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/report.hpp"
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/editing.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/selective_attention.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::cli {

namespace fs = std::filesystem;
namespace gsnet = models::gsnet;
using nlohmann::json;

std::vector<std::pair<double, double>> default_query_points() {
  // (x, y) in an FFHQ-aligned square: left eye, right eye, nose tip, mouth.
  return {{0.37, 0.43}, {0.63, 0.43}, {0.5, 0.58}, {0.5, 0.74}};
}

namespace {

// Restores every stage when it goes out of scope (explain switches them one by one).
struct ActiveStages {
  gsnet::GradStyleNet& net;
  ~ActiveStages() { net.set_active_stages(net.num_modules()); }
};

Tensor cpu(const Tensor& t) { return t.detach().to(Device::cpu()).to(DType::f32).contiguous(); }

}  // namespace

ExplainResult explain(eval::InversionModel& m, const Tensor& x, const Tensor& direction, double step,
                      const std::vector<std::pair<double, double>>& query_points) {
  if (!m.net)
    throw UsageError("explain shows GradStyle's modules; " + io::quoted(m.path) + " is a " +
                     eval::model_kind_name(m.kind) + " checkpoint without them (give a GradStyle network or a bundle)");
  GS_CHECK(x.dim() == 4 && x.size(0) == 1, ShapeError, "explain: one image [1, 3, S, S], got ", shape_str(x.shape()));
  autograd::NoGradGuard ng;
  gsnet::GradStyleNet& net = *m.net;
  const gsnet::InvertResult inv = net.invert(*m.E, *m.G, x.to(m.device()));
  ExplainResult r;
  r.e4e = cpu(m.synthesize(inv.w));
  r.rec = cpu(inv.rec.image);
  const Tensor w_hat = models::editing::interfacegan_edit(inv.w, direction.to(m.device()), step);
  r.e4e_edit = cpu(m.synthesize(w_hat));
  const gsnet::EditResult ed = net.edit_stream(*m.G, w_hat, inv.rec.F);
  r.edit = cpu(ed.image);

  const int64_t K = net.num_modules();
  {
    ActiveStages restore{net};
    for (int64_t k = 1; k <= K; ++k) {
      net.set_active_stages(k);
      ExplainStage s;
      s.image = cpu(net.reconstruct(*m.G, inv.w, inv.features).image);
      r.stages.push_back(std::move(s));
    }
  }
  const auto& cfg = net.config();
  for (int64_t k = 0; k < K; ++k) {
    ExplainStage& s = r.stages[size_t(k)];
    const auto& st = net.stages()[size_t(k)];
    s.block = st.b;
    s.C = st.C;
    s.R = st.R;
    s.residual = cpu(inv.rec.F[size_t(k)]);
    s.gate = cpu(inv.rec.g[size_t(k)]);
    s.aligned = cpu(ed.Fp[size_t(k)]);
    s.edit_gate = cpu(ed.g[size_t(k)]);
    const int64_t L = s.R * s.R;
    s.topk = selective_topk(cfg.topk_mu, L);
    std::vector<Tensor> weights;
    net.gam[size_t(k)].forward_with_attention(inv.rec.F[size_t(k)], ed.f[size_t(k)], weights);
    const Tensor avg = cpu(mean(weights.back(), {1}));  // [1, L, L], heads averaged
    const std::vector<float> a = avg.to_vector<float>();
    for (const auto& [fx, fy] : query_points) {
      const int64_t qx = std::clamp<int64_t>(int64_t(fx * double(s.R)), 0, s.R - 1);
      const int64_t qy = std::clamp<int64_t>(int64_t(fy * double(s.R)), 0, s.R - 1);
      ExplainQuery q;
      q.token = qy * s.R + qx;
      std::vector<std::pair<double, int64_t>> kept;
      for (int64_t j = 0; j < L; ++j) {
        const double v = a[size_t(q.token * L + j)];
        if (v > 0) kept.emplace_back(v, j);
      }
      std::sort(kept.begin(), kept.end(), [](const auto& u, const auto& v) { return u.first > v.first; });
      for (const auto& [v, j] : kept) q.keys.push_back(j), q.weights.push_back(v);
      s.queries.push_back(std::move(q));
    }
  }
  return r;
}

namespace {

// A perceptually ordered dark-to-light colour ramp (black, purple, red-pink, light yellow).
void ramp(double t, uint8_t rgb[3]) {
  static const double stops[5][3] = {{0, 0, 4}, {59, 15, 112}, {140, 41, 129}, {222, 73, 104}, {252, 253, 191}};
  t = std::clamp(t, 0.0, 1.0) * 4.0;
  const int i = std::min(int(t), 3);
  const double f = t - i;
  for (int c = 0; c < 3; ++c) rgb[c] = uint8_t(std::lround(stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f));
}

// A [1, C, R, R] map as an R x R heat image scaled up (nearest) to `size`: the L2 norm over
// channels (residuals) or the channel mean (gates), divided by its maximum.
struct Heat {
  io::Image image;
  double mean = 0, max = 0;
};
Heat heat(const Tensor& t, bool gate, int size) {
  const int64_t C = t.size(1), R = t.size(2);
  const std::vector<float> v = t.to_vector<float>();
  std::vector<double> m(size_t(R * R), 0.0);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = 0; p < R * R; ++p) {
      const double x = v[size_t(c * R * R + p)];
      m[size_t(p)] += gate ? x / double(C) : x * x;
    }
  Heat h;
  for (auto& x : m) {
    if (!gate) x = std::sqrt(x);
    h.mean += x / double(m.size());
    h.max = std::max(h.max, x);
  }
  h.image = io::Image::blank(size, size, 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const double val = m[size_t((int64_t(y) * R / size) * R + int64_t(x) * R / size)];
      ramp(h.max > 0 ? val / h.max : 0.0, &h.image.at(x, y, 0));
    }
  return h;
}

std::string fmt(double v, int digits = 3) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

const char* kColours[] = {"#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#17becf"};

// The source with each query (a ring) and its selected keys (discs, area by weight) drawn over it.
std::string attention_figure(const std::string& src, const ExplainStage& s, int D) {
  std::ostringstream h;
  h << "<div style=\"position:relative;display:inline-block;width:" << D << "px;height:" << D << "px;margin:0 1em 1em 0\">"
    << "<img src=\"" << report::escape(src) << "\" alt=\"source\" width=\"" << D << "\" height=\"" << D << "\">"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << D << "\" height=\"" << D
    << "\" style=\"position:absolute;left:0;top:0\">";
  const double cell = double(D) / double(s.R);
  auto centre = [&](int64_t t) { return std::pair<double, double>{(double(t % s.R) + 0.5) * cell, (double(t / s.R) + 0.5) * cell}; };
  for (size_t q = 0; q < s.queries.size(); ++q) {
    const auto& Q = s.queries[q];
    const char* col = kColours[q % 6];
    const double wmax = Q.weights.empty() ? 1.0 : Q.weights.front();
    for (size_t j = 0; j < Q.keys.size(); ++j) {
      const auto [x, y] = centre(Q.keys[j]);
      const double f = Q.weights[j] / wmax;
      h << "<circle cx=\"" << fmt(x, 1) << "\" cy=\"" << fmt(y, 1) << "\" r=\"" << fmt(1.5 + 0.45 * cell * std::sqrt(f), 2)
        << "\" fill=\"" << col << "\" fill-opacity=\"" << fmt(0.25 + 0.6 * f, 2) << "\"/>";
    }
    const auto [x, y] = centre(Q.token);
    h << "<circle cx=\"" << fmt(x, 1) << "\" cy=\"" << fmt(y, 1) << "\" r=\"" << fmt(0.5 * cell + 3, 1)
      << "\" fill=\"none\" stroke=\"" << col << "\" stroke-width=\"3\"/>"
      << "<circle cx=\"" << fmt(x, 1) << "\" cy=\"" << fmt(y, 1) << "\" r=\"" << fmt(0.5 * cell + 3, 1)
      << "\" fill=\"none\" stroke=\"#fff\" stroke-width=\"1\"/>";
  }
  h << "</svg></div>";
  return h.str();
}

}  // namespace

int run_explain(const ExplainArgs& a, std::ostream& out, std::ostream& err) {
  if (a.checkpoint.empty()) throw UsageError("give the GradStyle checkpoint (a network file or a toyfaces bundle)");
  if (a.image.empty()) throw UsageError("--image is required");
  if (a.save_dir.empty()) throw UsageError("--save_dir is required");
  if (a.edit_attribute.empty()) throw UsageError("--edit_attribute is required");
  if (!std::isfinite(a.edit_degree)) throw UsageError("--edit_degree must be a number");
  if (fs::exists(a.save_dir) && !fs::is_directory(a.save_dir))
    throw UsageError("--save_dir " + io::quoted(a.save_dir) + " is a file, not a folder");
  if (fs::exists(a.save_dir) && !fs::is_empty(a.save_dir) && !a.overwrite)
    throw UsageError("--save_dir " + io::quoted(a.save_dir) + " exists and is not empty (pass --overwrite)");
  const io::Image photo = io::load_image(a.image);
  eval::InversionLoadOptions lo;
  lo.generator = a.generator;
  lo.encoder = a.encoder;
  lo.device = pick_device(a.device);
  eval::InversionModel m = eval::InversionModel::load(a.checkpoint, lo);
  if (!m.net)
    throw UsageError("explain shows GradStyle's modules; " + io::quoted(a.checkpoint) + " is a " +
                     eval::model_kind_name(m.kind) + " checkpoint without them (give a GradStyle network or a bundle)");
  out << "explain: " << m.describe() << "\n";
  eval::DirectionSource ds{a.direction, a.directions_dir};
  const Tensor d = m.direction(a.edit_attribute, ds);
  const double step = m.step_for(a.edit_attribute, a.edit_degree, ds);
  const Tensor x = eval::InversionModel::prepare(photo, m.input_size());
  const ExplainResult r = explain(m, x, d, step);

  const fs::path root(a.save_dir);
  fs::create_directories(root);
  const int S = int(m.output_size());
  const int D = std::max(S, 192);  // display size of the face images
  auto png = [&](const std::string& name, const io::Image& img) {
    io::save_png((root / name).string(), img);
    return name;
  };
  const std::string src = png("source.png", io::resize_pil(photo, S, S));
  png("e4e.png", io::tensor_to_image(r.e4e));
  png("rec.png", io::tensor_to_image(r.rec));
  png("edit_e4e.png", io::tensor_to_image(r.e4e_edit));
  png("edit.png", io::tensor_to_image(r.edit));

  std::ostringstream title;
  title << "gradstyle explain: " << fs::path(a.image).filename().string() << ", " << a.edit_attribute << " "
        << a.edit_degree;
  report::Page page(title.str());
  page.paragraph("Checkpoint " + a.checkpoint + " (" + m.describe() + "). GradStyle refines " +
                 std::to_string(r.stages.size()) + " generator blocks; each stage m computes a residual F_m from the "
                 "encoder's maps and the generator's feature (GRM), gates it (g_m) and adds it; for an edit, the "
                 "Aligner (GAM) re-reads F_m from the edited feature's point of view with top-k attention.");
  page.image_table({"source", "e4e G(w)", "GradStyle X^r", "e4e edit G(w + d)", "GradStyle edit X^e"},
                   {{src, "e4e.png", "rec.png", "edit_e4e.png", "edit.png"}}, D);

  page.heading("Reconstruction stream, stage by stage");
  page.paragraph("Columns: the image once stages 1..m refine (the first row is e4e alone) | |F_m|, the residual's norm "
                 "over channels | g_m, the gate averaged over channels; both maps run from black (0) to light (their "
                 "maximum, listed below).");
  std::vector<std::vector<std::string>> imgs = {{"e4e.png", "", ""}};
  std::vector<std::vector<std::string>> facts;
  json att = json::object();
  att["image"] = a.image;
  att["edit"] = {{"attribute", a.edit_attribute}, {"degree", a.edit_degree}};
  att["stages"] = json::array();
  for (size_t k = 0; k < r.stages.size(); ++k) {
    const ExplainStage& s = r.stages[k];
    const std::string p = "stage" + std::to_string(k + 1) + "_";
    png(p + "image.png", io::tensor_to_image(s.image));
    const Heat hr = heat(s.residual, false, D), hg = heat(s.gate, true, D), ha = heat(s.aligned, false, D),
               he = heat(s.edit_gate, true, D);
    png(p + "residual.png", hr.image);
    png(p + "gate.png", hg.image);
    png(p + "aligned.png", ha.image);
    png(p + "edit_gate.png", he.image);
    imgs.push_back({p + "image.png", p + "residual.png", p + "gate.png"});
    facts.push_back({std::to_string(k + 1), std::to_string(s.block), std::to_string(s.R) + " x " + std::to_string(s.R),
                     std::to_string(s.C), fmt(hr.mean, 4), fmt(hr.max, 4), fmt(hg.mean, 3), fmt(hg.max, 3), fmt(he.mean, 3),
                     std::to_string(s.topk) + " of " + std::to_string(s.R * s.R)});
    json js = {{"stage", k + 1}, {"block", s.block}, {"R", s.R}, {"C", s.C}, {"topk", s.topk}, {"queries", json::array()}};
    for (const auto& q : s.queries) {
      json keys = json::array();
      for (size_t j = 0; j < q.keys.size(); ++j) keys.push_back({q.keys[j] % s.R, q.keys[j] / s.R, q.weights[j]});
      js["queries"].push_back({{"x", q.token % s.R}, {"y", q.token / s.R}, {"keys", keys}});
    }
    att["stages"].push_back(js);
  }
  page.image_table({"image after stage m", "|F_m|", "g_m"}, imgs, D);
  page.table({"stage", "block", "R", "C", "mean |F_m|", "max |F_m|", "mean g_m", "max g_m", "mean g (edit)",
              "keys each head keeps"},
             facts);

  page.heading("Editing stream: what the Aligner selects");
  page.paragraph("For each stage, four query positions of the edited feature (rings: eyes, nose, mouth) and the keys of "
                 "F_m its last attention layer keeps (discs, area and opacity by the weight averaged over heads) drawn "
                 "over the source; beside them |F'_m|, the aligned residual, and the editing stream's gate. The full "
                 "lists are in attention.json (x, y, weight per key).");
  for (size_t k = 0; k < r.stages.size(); ++k) {
    const ExplainStage& s = r.stages[k];
    const std::string p = "stage" + std::to_string(k + 1) + "_";
    std::ostringstream h;
    h << "<h3>Stage " << k + 1 << " (block " << s.block << ", " << s.R << " x " << s.R << ")</h3>\n<p>"
      << attention_figure(src, s, D) << "<img src=\"" << p << "aligned.png\" alt=\"aligned residual\" width=\"" << D
      << "\" height=\"" << D << "\" style=\"margin-right:1em\"><img src=\"" << p << "edit_gate.png\" alt=\"edit gate\" width=\""
      << D << "\" height=\"" << D << "\"></p>\n";
    page.raw(h.str());
    std::vector<std::vector<std::string>> rows;
    for (size_t q = 0; q < s.queries.size(); ++q) {
      const auto& Q = s.queries[q];
      std::string top;
      for (size_t j = 0; j < std::min<size_t>(5, Q.keys.size()); ++j)
        top += (j ? ", " : "") + std::string("(") + std::to_string(Q.keys[j] % s.R) + "," + std::to_string(Q.keys[j] / s.R) +
               ") " + fmt(Q.weights[j], 3);
      rows.push_back({std::string(kColours[q % 6]), "(" + std::to_string(Q.token % s.R) + "," + std::to_string(Q.token / s.R) + ")",
                      std::to_string(Q.keys.size()), top});
    }
    page.table({"colour", "query (x,y)", "keys with weight", "largest five: (x,y) weight"}, rows);
  }
  page.write((root / "report.html").string());
  const std::string js = att.dump(1) + "\n";
  io::atomic_write_file((root / "attention.json").string(), std::vector<uint8_t>(js.begin(), js.end()));
  out << "explain: " << r.stages.size() << " stages -> " << (root / "report.html").string() << " (images beside it, "
      << "attention.json)\n";
  if (!a.quiet) err << "explain: open " << (root / "report.html").string() << " in a browser\n";
  return 0;
}

}  // namespace gradstyle::cli
