// `gradstyle demo` (the README's main job) and `gradstyle bundle` (packs trained checkpoints into
// the embedded default).
#include "cli/demo.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/report.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/eval/ablation.hpp"
#include "gradstyle/eval/toyfaces_demo.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/ops/shape.hpp"

#ifndef GS_DEFAULT_WEIGHTS
#define GS_DEFAULT_WEIGHTS "models/toyfaces"
#endif

namespace gradstyle::cli {

namespace fs = std::filesystem;

// $GRADSTYLE_WEIGHTS, else the source tree's bundle (a build tree), else the installed one
// (meson install puts it in <prefix>/share/gradstyle/toyfaces).
std::string default_weights_dir() {
  if (const char* e = std::getenv("GRADSTYLE_WEIGHTS"); e && *e) return e;
#ifdef GS_INSTALLED_WEIGHTS
  if (!fs::exists(fs::path(GS_DEFAULT_WEIGHTS) / "manifest.json") && fs::exists(fs::path(GS_INSTALLED_WEIGHTS) / "manifest.json"))
    return GS_INSTALLED_WEIGHTS;
#endif
  return GS_DEFAULT_WEIGHTS;
}

namespace {

void write_text(const fs::path& p, const std::string& text) {
  io::atomic_write_file(p.string(), std::vector<uint8_t>(text.begin(), text.end()));
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// One row per image: source | e4e | GradStyle | per edit: [ground truth |] e4e | GradStyle.
io::Image demo_grid(const eval::DemoResult& r) {
  std::vector<Tensor> cols = {r.source, r.e4e_rec, r.gs_rec};
  for (size_t i = 0; i < r.attributes.size(); ++i) {
    if (r.truth[i].defined()) cols.push_back(r.truth[i]);
    cols.push_back(r.e4e_edit[i]);
    cols.push_back(r.gs_edit[i]);
  }
  for (auto& c : cols) c = c.to(Device::cpu());
  std::vector<Tensor> rows;
  for (int64_t k = 0; k < r.source.size(0); ++k) {
    std::vector<Tensor> cells;
    for (auto& c : cols) cells.push_back(c.narrow(0, k, 1));
    rows.push_back(cat(cells, 3));
  }
  return io::tensor_to_image(cat(rows, 2), 0);
}

// True when the rows carry the toy-ID column (the bundle has the ID network).
bool has_id(const eval::DemoResult& r) { return !r.rows.empty() && std::isfinite(r.rows[0].id); }

std::string metrics_csv(const eval::DemoResult& r) {
  std::ostringstream csv;
  csv << "task,method,l2,psnr,ssim" << (has_id(r) ? ",id" : "") << "\n";
  for (const auto& row : r.rows) {
    csv << row.task << "," << row.method << "," << std::setprecision(8) << row.l2 << "," << row.psnr << "," << row.ssim;
    if (has_id(r)) csv << "," << row.id;
    csv << "\n";
  }
  return csv.str();
}

// The images of a folder (sorted by name; the first 64, a grid's worth), resized to size x size,
// as [N, 3, size, size].
Tensor load_folder(const std::string& dir, int64_t size, std::ostream& err) {
  std::vector<std::string> files = list_images(dir, "--images_dir");
  if (files.size() > 64) {
    err << "demo: " << dir << " holds " << files.size()
        << " images; the demo shows the first 64 (gradstyle invert / edit take any number)\n";
    files.resize(64);
  }
  std::vector<Tensor> xs;
  for (const auto& f : files) xs.push_back(io::image_to_tensor(io::resize_pil(io::load_image(f), int(size), int(size))));
  return cat(xs, 0);
}

}  // namespace

int run_demo(const DemoArgs& a, std::ostream& out, std::ostream& err) {
  if (a.identities < 1 || a.identities > 64) throw UsageError("--identities must be in [1, 64]");
  const Device device = pick_device(a.device);
  const std::string wdir = a.weights.empty() ? default_weights_dir() : a.weights;
  const auto t0 = std::chrono::steady_clock::now();
  if (!a.quiet) err << "demo: loading the toyfaces bundle from " << wdir << "\n";
  eval::ToyBundle b = eval::ToyBundle::load(wdir, device);
  eval::DemoOptions o;
  o.identities = a.identities;
  if (!a.quiet) err << "demo: inverting and editing " << a.identities << " held-out toyfaces (e4e and GradStyle)\n";
  eval::DemoResult r = eval::run_toyfaces_demo(b, o);

  fs::create_directories(a.out);
  const fs::path dir(a.out);
  io::save_png((dir / "grid.png").string(), demo_grid(r));
  const size_t ncols = 3 + 3 * r.attributes.size();

  std::ostringstream table;
  const bool id = has_id(r);
  table << std::left << std::setw(22) << "task" << std::setw(11) << "method" << std::right << std::setw(9) << "L2"
        << std::setw(9) << "PSNR" << std::setw(8) << "SSIM" << (id ? "      ID" : "") << "\n";
  for (const auto& row : r.rows) {
    table << std::left << std::setw(22) << row.task << std::setw(11) << row.method << std::right << std::setw(9)
          << fixed(row.l2, 5) << std::setw(9) << fixed(row.psnr, 2) << std::setw(8) << fixed(row.ssim, 4);
    if (id) table << std::setw(8) << fixed(row.id, 4);
    table << "\n";
  }
  write_text(dir / "metrics.csv", metrics_csv(r));
  report::Page page("GradStyle on toyfaces: inversion and editing against the ground truth");
  std::string cols = "source | e4e | GradStyle";
  for (const auto& at : r.attributes) cols += " | " + at + ": ground truth | e4e | GradStyle";
  page.paragraph(std::to_string(a.identities) + " held-out identities (never seen in training). Columns: " + cols + ".");
  page.image("grid.png", "demo grid", int(96 * ncols));
  page.heading("Metrics");
  page.paragraph("L2 = mean squared error with images in [-1, 1], PSNR in dB on [0, 1], SSIM (21 x 21 uniform window; "
                 "SPEC D.2), on uint8 images; reconstruction against the source, edits against the same identity "
                 "rendered with the edited attribute." +
                 std::string(id ? " ID = cosine similarity of the toy identity network's embeddings of result and "
                                  "truth (1 = the same identity; it stands in for ArcFace, docs/toyfaces.md)."
                                : ""));
  std::vector<std::vector<std::string>> rows;
  for (const auto& row : r.rows) {
    rows.push_back({row.task, row.method, fixed(row.l2, 5), fixed(row.psnr, 2), fixed(row.ssim, 4)});
    if (id) rows.back().push_back(fixed(row.id, 4));
  }
  std::vector<std::string> head = {"task", "method", "L2", "PSNR", "SSIM"};
  if (id) head.push_back("ID");
  page.table(head, rows);
  page.paragraph("Weights: " + wdir + " (manifest.json records how they were trained).");
  page.write((dir / "report.html").string());

  if (!a.images_dir.empty()) {
    Tensor x = load_folder(a.images_dir, b.G->config().size, err);
    if (!a.quiet) err << "demo: inverting and editing " << x.size(0) << " images of " << a.images_dir << "\n";
    eval::DemoResult u = eval::run_demo_on_images(b, x, o.attributes);
    io::save_png((dir / "user_grid.png").string(), demo_grid(u));
    write_text(dir / "user_metrics.csv", metrics_csv(u));
    out << "demo: your images (" << x.size(0) << "): reconstruction L2 e4e " << fixed(u.rows[0].l2, 5) << ", GradStyle "
        << fixed(u.rows[1].l2, 5) << "; " << (dir / "user_grid.png").string()
        << " (source | e4e | GradStyle | per edit: e4e | GradStyle)\n";
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out << table.str();
  const double change = eval::max_relative_change(b, r, a.identities);
  if (change >= 0)
    out << "demo: the largest change against the numbers recorded with these weights is " << fixed(100 * change, 4)
        << " % (" << (change <= 0.01 ? "reproduced" : "NOT reproduced: see docs/toyfaces.md") << ")\n";
  out << "demo: wrote " << (dir / "grid.png").string() << ", " << (dir / "report.html").string() << " and "
      << (dir / "metrics.csv").string() << " in " << fixed(secs, 1) << " s\n";
  return 0;
}

int run_bundle(const BundleArgs& a, std::ostream& out, std::ostream& err) {
  std::string training;
  if (!a.training.empty()) {
    const std::vector<uint8_t> t = io::read_file_bytes(a.training);
    training.assign(t.begin(), t.end());
  }
  if (!a.toyid.empty()) {
    if (!a.generator.empty() || !a.encoder.empty() || !a.gradstyle.empty() || a.out.empty())
      throw UsageError("bundle --toyid adds the network to an existing bundle: give --out DIR and no --generator, "
                       "--encoder or --gradstyle");
    err << "bundle: adding " << a.toyid << " to " << a.out << " and measuring the demo again\n";
    eval::add_toyid(a.out, a.toyid, training);
    const std::vector<uint8_t> m = io::read_file_bytes((fs::path(a.out) / "manifest.json").string());
    out << std::string(m.begin(), m.end());
    return 0;
  }
  if (a.generator.empty() || a.encoder.empty() || a.gradstyle.empty() || a.out.empty())
    throw UsageError("bundle: --generator, --encoder, --gradstyle and --out are required");
  err << "bundle: packing " << a.generator << ", " << a.encoder << ", " << a.gradstyle << " and fitting directions on "
      << a.fit_n << " toyfaces\n";
  eval::write_bundle(a.out, a.generator, a.encoder, a.gradstyle, a.fit_n, !a.f32, training);
  const std::vector<uint8_t> m = io::read_file_bytes((fs::path(a.out) / "manifest.json").string());
  out << std::string(m.begin(), m.end());
  return 0;
}

int run_results(const ResultsArgs& a, std::ostream& out, std::ostream& err) {
  if (a.identities < 1 || a.identities > 10000) throw UsageError("--identities must be in 1..10000");
  if (a.out.empty()) throw UsageError("--out is required");
  const std::string wdir = a.weights.empty() ? default_weights_dir() : a.weights;
  eval::ToyBundle b = eval::ToyBundle::load(wdir, pick_device(a.device));
  err << "results: " << a.identities << " held-out identities on " << wdir << "\n";
  eval::AblationOptions o;
  o.identities = a.identities;
  const eval::AblationResult r = eval::run_toyfaces_ablation(b, o);
  std::string cmd = "gradstyle results --identities " + std::to_string(a.identities) + " --out " + a.out;
  if (!a.weights.empty()) cmd += " --weights " + a.weights;
  const std::string md = eval::ablation_markdown(b, r, cmd);
  if (fs::path(a.out).has_parent_path()) fs::create_directories(fs::path(a.out).parent_path());
  write_text(a.out, md);
  // The claims' lines, as the file has them.
  std::istringstream lines(md);
  for (std::string l; std::getline(lines, l);)
    if (l.rfind("- **", 0) == 0) out << l << "\n";
  out << "results: wrote " << a.out << " in " << std::fixed << std::setprecision(1) << r.seconds << " s\n";
  return 0;
}

}  // namespace gradstyle::cli
