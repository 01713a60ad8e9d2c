#include "gradstyle/eval/toyfaces_demo.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/eval/metrics.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/io/zip.hpp"
#include "gradstyle/models/editing.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::eval {

namespace fs = std::filesystem;
namespace tf = data::toyfaces;
using nlohmann::json;

namespace {

const char* kBundleFormat = "gradstyle-toyfaces-bundle-1";
const char* kToyIdFile = "toyid.safetensors";

// The toy identity network, cropping nothing: it reads the whole image at the bundle's size.
std::unique_ptr<models::arcface::ArcFaceID> load_toyid(const std::string& path, int64_t size, Device device) {
  models::arcface::ArcFaceID::LoadOptions o;
  o.device = device;
  o.crop.image_size = size;
  o.crop.top = 0;
  o.crop.bottom = size;
  o.crop.left = 0;
  o.crop.right = size;
  o.crop.pool_size = size;
  auto id = models::arcface::ArcFaceID::from_checkpoint(path, o);
  GS_CHECK(id->facenet().config().input_size == size, ValueError, "toyfaces bundle: ", path, " reads ",
           id->facenet().config().input_size, " px images but the bundle's are ", size, " px");
  return id;
}
const std::vector<std::string> kFiles = {"generator.safetensors", "encoder.safetensors", "gradstyle.safetensors",
                                         "directions.safetensors"};

// The demo's attribute change per edit, from a neutral source (see neutral_edit).
const std::map<std::string, double> kDefaultDelta = {{"smile", 0.9}, {"age", 0.8}, {"yaw", 0.7}, {"eye_openness", -0.6}};


std::string crc_hex(const std::vector<uint8_t>& bytes) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", io::crc32(io::ByteSpan(bytes.data(), bytes.size()), 0));
  return buf;
}


// Solves the symmetric positive definite system A x = b (n x n, row-major) by Cholesky.
std::vector<double> spd_solve(std::vector<double> A, std::vector<double> b, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double d = A[size_t(j * n + j)];
    for (int64_t k = 0; k < j; ++k) d -= A[size_t(j * n + k)] * A[size_t(j * n + k)];
    GS_CHECK(d > 0, ValueError, "fit_directions: the code covariance is singular");
    const double l = std::sqrt(d);
    A[size_t(j * n + j)] = l;
    for (int64_t i = j + 1; i < n; ++i) {
      double s = A[size_t(i * n + j)];
      for (int64_t k = 0; k < j; ++k) s -= A[size_t(i * n + k)] * A[size_t(j * n + k)];
      A[size_t(i * n + j)] = s / l;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    double s = b[size_t(i)];
    for (int64_t k = 0; k < i; ++k) s -= A[size_t(i * n + k)] * b[size_t(k)];
    b[size_t(i)] = s / A[size_t(i * n + i)];
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    double s = b[size_t(i)];
    for (int64_t k = i + 1; k < n; ++k) s -= A[size_t(k * n + i)] * b[size_t(k)];
    b[size_t(i)] = s / A[size_t(i * n + i)];
  }
  return b;
}

// Copies a safetensors file with its floating tensors (other than `keep_f32` keys) in float16.
void write_f16(const std::string& in, const std::string& out, bool f16, const std::vector<std::string>& keep_f32) {
  std::map<std::string, std::string> meta;
  io::NamedTensors t = io::load_safetensors(in, &meta);
  if (f16)
    for (auto& [k, raw] : t) {
      if (std::find(keep_f32.begin(), keep_f32.end(), k) != keep_f32.end()) continue;
      Tensor x = io::to_tensor(raw);
      if (x.dtype() == DType::f32) raw = io::from_tensor(x.to(DType::f16));
    }
  io::save_safetensors(out, t, meta);
}

}  // namespace

tf::ToyEdit neutral_edit() {
  tf::ToyEdit e;
  e.yaw = 0;
  e.smile = 0;
  e.eye_openness = 0.8;
  e.age = 0.1;
  return e;
}

Tensor render_batch(const std::vector<tf::ToyIdentity>& ids, const std::vector<tf::ToyEdit>& edits, int size) {
  Tensor t = Tensor::empty({int64_t(ids.size()), 3, size, size});
  for (size_t i = 0; i < ids.size(); ++i) tf::render_into(ids[i], edits[i], size, t.data<float>() + i * 3 * size * size);
  return tf::to_network_input(t);
}

std::map<std::string, Direction> fit_directions(models::e4e::Encoder4Editing& E, int64_t n, uint64_t seed,
                                                uint64_t offset) {
  GS_CHECK(n >= 16, ValueError, "fit_directions: need at least 16 samples, got ", n);
  autograd::NoGradGuard ng;
  const int64_t S = E.config().input_size, D = E.config().style_dim();
  const Tensor& like = E.latent_avg;
  std::vector<double> X;  // [n, D] mean codes
  std::map<std::string, std::vector<double>> y;
  const int64_t chunk = 32;
  for (int64_t s = 0; s < n; s += chunk) {
    const int64_t m = std::min(chunk, n - s);
    std::vector<tf::ToyIdentity> ids;
    std::vector<tf::ToyEdit> eds;
    for (int64_t k = s; k < s + m; ++k) {
      ids.push_back(tf::sample_identity(seed, tf::train_index(offset + uint64_t(k))));
      eds.push_back(tf::sample_edit(seed, offset + uint64_t(k)));
      for (const auto& r : tf::edit_ranges()) y[r.name].push_back(tf::edit_field(eds.back(), r.name));
    }
    Tensor w = mean(E.forward(render_batch(ids, eds, int(S)).to(like.dtype()).to(like.device())).w_plus, {1});
    std::vector<double> v = w.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
    X.insert(X.end(), v.begin(), v.end());
  }
  // Centre, then ridge: (Xc^T Xc + lambda I) a = Xc^T yc.
  std::vector<double> mu(size_t(D), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < D; ++d) mu[size_t(d)] += X[size_t(i * D + d)] / double(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < D; ++d) X[size_t(i * D + d)] -= mu[size_t(d)];
  std::vector<double> A(size_t(D * D), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < D; ++p) {
      const double xp = X[size_t(i * D + p)];
      for (int64_t q = 0; q < D; ++q) A[size_t(p * D + q)] += xp * X[size_t(i * D + q)];
    }
  double tr = 0;
  for (int64_t d = 0; d < D; ++d) tr += A[size_t(d * D + d)];
  const double lambda = 1e-3 * tr / double(D);
  for (int64_t d = 0; d < D; ++d) A[size_t(d * D + d)] += lambda;
  std::map<std::string, Direction> out;
  for (auto& [name, ys] : y) {
    double ym = 0;
    for (double v : ys) ym += v / double(n);
    std::vector<double> b(size_t(D), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t d = 0; d < D; ++d) b[size_t(d)] += X[size_t(i * D + d)] * (ys[size_t(i)] - ym);
    std::vector<double> a = spd_solve(A, b, D);
    double norm = 0;
    for (double v : a) norm += v * v;
    norm = std::sqrt(norm);
    double ss_res = 0, ss_tot = 0;
    for (int64_t i = 0; i < n; ++i) {
      double pred = ym;
      for (int64_t d = 0; d < D; ++d) pred += a[size_t(d)] * X[size_t(i * D + d)];
      ss_res += (ys[size_t(i)] - pred) * (ys[size_t(i)] - pred);
      ss_tot += (ys[size_t(i)] - ym) * (ys[size_t(i)] - ym);
    }
    std::vector<float> nf;
    for (double v : a) nf.push_back(float(v / norm));
    Direction dir;
    dir.n = Tensor::from_vector<float>(nf, {1, D});
    dir.scale = norm;
    dir.r2 = ss_tot > 0 ? 1 - ss_res / ss_tot : 0;
    out[name] = dir;
  }
  return out;
}

ToyBundle ToyBundle::load(const std::string& dir, Device device) {
  const fs::path root(dir);
  const fs::path manifest = root / "manifest.json";
  if (!fs::exists(manifest))
    throw IOError("toyfaces bundle: " + manifest.string() +
                  " does not exist (pass --weights DIR, or rebuild the bundle with tools/train_toyfaces)");
  ToyBundle b;
  b.dir = dir;
  const std::vector<uint8_t> mbytes = io::read_file_bytes(manifest.string());
  b.manifest_text.assign(mbytes.begin(), mbytes.end());
  json m;
  try {
    m = json::parse(b.manifest_text);
  } catch (const json::parse_error& e) {
    throw FormatError("toyfaces bundle: " + manifest.string() + " is not valid JSON: " + e.what());
  }
  if (!m.is_object() || m.value("format", "") != kBundleFormat)
    throw FormatError("toyfaces bundle: " + manifest.string() + " is not a " + kBundleFormat + " manifest");
  auto verify = [&](const std::string& f) {
    const fs::path p = root / f;
    if (!fs::exists(p)) throw IOError("toyfaces bundle: " + p.string() + " is missing");
    if (!m["files"].contains(f)) throw FormatError("toyfaces bundle: the manifest does not list " + f);
    const std::vector<uint8_t> bytes = io::read_file_bytes(p.string());
    const auto& e = m["files"][f];
    if (int64_t(bytes.size()) != e.value("bytes", int64_t(-1)) || crc_hex(bytes) != e.value("crc32", std::string()))
      throw FormatError("toyfaces bundle: " + p.string() + " does not match its manifest entry (" +
                        std::to_string(bytes.size()) + " bytes, CRC-32 " + crc_hex(bytes) + "; expected " + e.dump() +
                        "): the file is corrupted or was replaced");
  };
  for (const auto& f : kFiles) verify(f);
  const bool has_id = m.contains("files") && m["files"].contains(kToyIdFile);
  if (has_id) verify(kToyIdFile);
  models::stylegan2::Generator::LoadOptions go;
  go.device = device;
  b.G = models::stylegan2::Generator::from_checkpoint((root / "generator.safetensors").string(), go);
  models::e4e::Encoder4Editing::LoadOptions eo;
  eo.device = device;
  b.E = models::e4e::Encoder4Editing::from_checkpoint((root / "encoder.safetensors").string(), eo);
  b.E->check_generator(b.G->n_latent(), b.G->config().style_dim);
  b.net = models::gsnet::GradStyleNet::load((root / "gradstyle.safetensors").string(), nullptr, device);
  b.net->eval();
  b.net->check_generator(*b.G);
  if (has_id) b.id = load_toyid((root / kToyIdFile).string(), b.G->config().size, device);
  const io::NamedTensors d = io::load_safetensors((root / "directions.safetensors").string());
  for (const auto& [k, raw] : d) {
    if (k.size() > 6 && k.compare(k.size() - 6, 6, ".scale") == 0) continue;
    Direction dir;
    dir.n = io::to_tensor(raw).to(DType::f32).to(device);
    for (const auto& [k2, raw2] : d)
      if (k2 == k + ".scale") dir.scale = io::to_tensor(raw2).to(DType::f64).to_vector<double>().at(0);
    GS_CHECK(dir.scale > 0, FormatError, "toyfaces bundle: direction '", k, "' has no positive '", k, ".scale'");
    b.directions[k] = dir;
  }
  b.edit_delta = kDefaultDelta;
  if (m.contains("edits") && m["edits"].is_object())
    for (auto& [k, v] : m["edits"].items()) b.edit_delta[k] = v.get<double>();
  return b;
}

namespace {

// The four weight files and a manifest listing them (no demo numbers yet).
void write_files(const std::string& out_dir, const std::string& generator_ckpt, const std::string& encoder_ckpt,
                 const std::string& gradstyle_ckpt, int64_t fit_n, bool f16, const std::string& training_json) {
  fs::create_directories(out_dir);
  const fs::path root(out_dir);
  // Generator: g_ema and latent_avg only (not g, d or the optimisers).
  {
    std::map<std::string, std::string> meta;
    io::NamedTensors all = io::load_safetensors(generator_ckpt, &meta), keep;
    for (auto& [k, raw] : all)
      if (k.rfind("g_ema.", 0) == 0 || k == "latent_avg") {
        Tensor x = io::to_tensor(raw);
        keep.emplace_back(k, f16 && k != "latent_avg" && x.dtype() == DType::f32 ? io::from_tensor(x.to(DType::f16)) : raw);
      }
    if (keep.empty()) throw FormatError(generator_ckpt + ": no g_ema.* entries (not a stylegan2-stage checkpoint)");
    io::save_safetensors((root / "generator.safetensors").string(), keep, {{"source", generator_ckpt}});
  }
  {
    io::NamedTensors all = io::load_safetensors(encoder_ckpt), keep;
    for (auto& [k, raw] : all)
      if (k.rfind("encoder.", 0) == 0 || k == "latent_avg") {
        Tensor x = io::to_tensor(raw);
        keep.emplace_back(k, f16 && k != "latent_avg" && x.dtype() == DType::f32 ? io::from_tensor(x.to(DType::f16)) : raw);
      }
    if (keep.empty()) throw FormatError(encoder_ckpt + ": no encoder.* entries (not an e4e-stage checkpoint)");
    io::save_safetensors((root / "encoder.safetensors").string(), keep, {{"source", encoder_ckpt}});
  }
  write_f16(gradstyle_ckpt, (root / "gradstyle.safetensors").string(), f16, {});
  // Directions from the bundled (possibly float16) encoder, the one the demo runs.
  auto E = models::e4e::Encoder4Editing::from_checkpoint((root / "encoder.safetensors").string());
  auto dirs = fit_directions(*E, fit_n);
  io::NamedTensors dt;
  json fit = json::object();
  for (auto& [k, d] : dirs) {
    dt.emplace_back(k, io::from_tensor(d.n));
    dt.emplace_back(k + ".scale", io::from_tensor(Tensor::from_vector<float>({float(d.scale)}, {1})));
    fit[k] = {{"scale", d.scale}, {"r2", d.r2}};
  }
  io::save_safetensors((root / "directions.safetensors").string(), dt, {{"fit_samples", std::to_string(fit_n)}});
  json m = json::object();
  m["format"] = kBundleFormat;
  m["dtype"] = f16 ? "float16" : "float32";
  m["edits"] = kDefaultDelta;
  m["direction_fit"] = fit;
  m["training"] = training_json.empty() ? json::object() : json::parse(training_json);
  for (const auto& f : kFiles) {
    const std::vector<uint8_t> bytes = io::read_file_bytes((root / f).string());
    m["files"][f] = {{"bytes", int64_t(bytes.size())}, {"crc32", crc_hex(bytes)}};
  }
  const std::string text = m.dump(2) + "\n";
  io::atomic_write_file((root / "manifest.json").string(), std::vector<uint8_t>(text.begin(), text.end()));
}

}  // namespace

static json rows_json(const DemoResult& r) {
  json a = json::array();
  for (const auto& row : r.rows) {
    json j = {{"task", row.task}, {"method", row.method}, {"l2", row.l2}, {"psnr", row.psnr}, {"ssim", row.ssim}};
    if (std::isfinite(row.id)) j["id"] = row.id;
    a.push_back(j);
  }
  return a;
}

void add_toyid(const std::string& dir, const std::string& toyid_file, const std::string& info_json) {
  const fs::path root(dir), mpath = root / "manifest.json";
  {
    ToyBundle before = ToyBundle::load(dir);  // the bundle must be whole first
    load_toyid(toyid_file, before.G->config().size, Device::cpu());  // and the network must fit it
  }
  const std::vector<uint8_t> bytes = io::read_file_bytes(toyid_file);
  io::atomic_write_file((root / kToyIdFile).string(), bytes);
  const std::vector<uint8_t> mb = io::read_file_bytes(mpath.string());
  json m = json::parse(std::string(mb.begin(), mb.end()));
  m["files"][kToyIdFile] = {{"bytes", int64_t(bytes.size())}, {"crc32", crc_hex(bytes)}};
  m["toyid"] = info_json.empty() ? json::object() : json::parse(info_json);
  const std::string t1 = m.dump(2) + "\n";
  io::atomic_write_file(mpath.string(), std::vector<uint8_t>(t1.begin(), t1.end()));
  // The demo's numbers again, with the ID column.
  ToyBundle b = ToyBundle::load(dir);
  DemoOptions full, ci;
  ci.identities = m.value("ci_identities", int64_t(2));
  m["demo_metrics"] = rows_json(run_toyfaces_demo(b, full));
  m["ci_metrics"] = rows_json(run_toyfaces_demo(b, ci));
  m["ci_identities"] = ci.identities;
  const std::string t2 = m.dump(2) + "\n";
  io::atomic_write_file(mpath.string(), std::vector<uint8_t>(t2.begin(), t2.end()));
}

void write_bundle(const std::string& out_dir, const std::string& generator_ckpt, const std::string& encoder_ckpt,
                  const std::string& gradstyle_ckpt, int64_t fit_n, bool f16, const std::string& training_json) {
  DemoOptions full, ci;
  ci.identities = 2;
  json extra = json::object();
  if (f16) {
    // The float32 reference bundle, to measure what float16 storage changes in the demo's metrics.
    const std::string ref = (fs::path(out_dir) / ".f32_reference").string();
    write_files(ref, generator_ckpt, encoder_ckpt, gradstyle_ckpt, fit_n, false, training_json);
    ToyBundle b32 = ToyBundle::load(ref);
    DemoResult r32 = run_toyfaces_demo(b32, full);
    write_files(out_dir, generator_ckpt, encoder_ckpt, gradstyle_ckpt, fit_n, true, training_json);
    ToyBundle b16 = ToyBundle::load(out_dir);
    DemoResult r16 = run_toyfaces_demo(b16, full);
    double worst = 0;
    for (size_t i = 0; i < r16.rows.size(); ++i)
      for (auto [a, b] : {std::pair{r16.rows[i].l2, r32.rows[i].l2}, std::pair{r16.rows[i].ssim, r32.rows[i].ssim}})
        worst = std::max(worst, std::abs(a - b) / std::max(std::abs(b), 1e-12));
    extra["f16_check"] = {{"max_relative_change", worst}, {"float32_metrics", rows_json(r32)}};
    fs::remove_all(ref);
  } else {
    write_files(out_dir, generator_ckpt, encoder_ckpt, gradstyle_ckpt, fit_n, false, training_json);
  }
  // The demo's numbers on the bundle as written: the full table and the reduced run CI repeats.
  ToyBundle b = ToyBundle::load(out_dir);
  extra["demo_metrics"] = rows_json(run_toyfaces_demo(b, full));
  extra["ci_metrics"] = rows_json(run_toyfaces_demo(b, ci));
  extra["ci_identities"] = ci.identities;
  const fs::path mpath = fs::path(out_dir) / "manifest.json";
  const std::vector<uint8_t> mb = io::read_file_bytes(mpath.string());
  json m = json::parse(std::string(mb.begin(), mb.end()));
  for (auto& [k, v] : extra.items()) m[k] = v;
  const std::string text = m.dump(2) + "\n";
  io::atomic_write_file(mpath.string(), std::vector<uint8_t>(text.begin(), text.end()));
}

double max_relative_change(const ToyBundle& b, const DemoResult& r, int64_t identities) {
  const json m = json::parse(b.manifest_text);
  const char* key = nullptr;
  if (m.contains("demo_metrics") && identities == DemoOptions{}.identities) key = "demo_metrics";
  if (m.contains("ci_metrics") && identities == m.value("ci_identities", int64_t(-1))) key = "ci_metrics";
  if (!key) return -1;
  const json& rec = m[key];
  if (!rec.is_array() || rec.size() != r.rows.size())
    throw FormatError("toyfaces bundle: the manifest's " + std::string(key) + " has " + std::to_string(rec.size()) +
                      " rows, the demo produced " + std::to_string(r.rows.size()));
  double worst = 0;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const auto& row = r.rows[i];
    if (rec[i].value("task", "") != row.task || rec[i].value("method", "") != row.method)
      throw FormatError("toyfaces bundle: manifest row " + std::to_string(i) + " is " + rec[i].dump() + ", the demo's is " +
                        row.task + " / " + row.method);
    for (auto [now, then] : {std::pair{row.l2, rec[i]["l2"].get<double>()}, std::pair{row.ssim, rec[i]["ssim"].get<double>()}})
      worst = std::max(worst, std::abs(now - then) / std::max(std::abs(then), 1e-12));
    if (std::isfinite(row.id) && rec[i].contains("id")) {
      const double then = rec[i]["id"].get<double>();
      worst = std::max(worst, std::abs(row.id - then) / std::max(std::abs(then), 1e-12));
    }
  }
  return worst;
}

namespace {

// Inversion and edits of `source` with both methods; `truth_of(attr, delta)` renders the ground
// truth of an edit (or returns an undefined tensor when there is none: no metric row then).
DemoResult invert_and_edit(ToyBundle& b, const Tensor& source, const std::vector<std::string>& attributes,
                           const std::function<Tensor(const std::string&, double)>& truth_of) {
  const auto t0 = std::chrono::steady_clock::now();
  autograd::NoGradGuard ng;
  auto& G = *b.G;
  auto& E = *b.E;
  DemoResult r;
  r.source = source;
  auto inv = b.net->invert(E, G, r.source);
  const Tensor w = inv.w;
  r.e4e_rec = clamp(G.synthesis(w), -1.0, 1.0);
  r.gs_rec = clamp(inv.rec.image, -1.0, 1.0);
  // SPEC D.2: images quantised to uint8 (what the saved PNGs hold) before measuring.
  auto add_rows = [&](const std::string& task, const Tensor& truth_f, const Tensor& e4e_f, const Tensor& gs_f) {
    const Tensor truth = quantize_u8(truth_f), e4e_img = quantize_u8(e4e_f), gs_img = quantize_u8(gs_f);
    auto id_of = [&](const Tensor& img) {
      if (!b.id) return std::numeric_limits<double>::quiet_NaN();
      return mean_of(b.id->similarity(img, truth).to(Device::cpu()).to(DType::f64).to_vector<double>());
    };
    r.rows.push_back({task, "e4e", mean_of(l2(e4e_img, truth)), mean_of(psnr(e4e_img, truth)), mean_of(ssim(e4e_img, truth)),
                      id_of(e4e_img)});
    r.rows.push_back({task, "GradStyle", mean_of(l2(gs_img, truth)), mean_of(psnr(gs_img, truth)),
                      mean_of(ssim(gs_img, truth)), id_of(gs_img)});
  };
  add_rows("reconstruction", r.source, r.e4e_rec, r.gs_rec);
  for (const auto& attr : attributes) {
    auto d = b.directions.find(attr);
    if (d == b.directions.end()) throw ValueError("demo: the bundle has no direction for '" + attr + "'");
    const double delta = b.edit_delta.count(attr) ? b.edit_delta.at(attr) : 0.5;
    const Tensor w_hat = models::editing::interfacegan_edit(w, d->second.n, delta / d->second.scale);
    Tensor e4e_img = clamp(G.synthesis(w_hat), -1.0, 1.0);
    Tensor gs_img = clamp(b.net->edit_stream(G, w_hat, inv.rec.F).image, -1.0, 1.0);
    Tensor truth = truth_of(attr, delta);
    r.attributes.push_back(attr);
    r.truth.push_back(truth);
    r.e4e_edit.push_back(e4e_img);
    r.gs_edit.push_back(gs_img);
    if (truth.defined()) add_rows("edit:" + attr, truth, e4e_img, gs_img);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace

DemoResult run_toyfaces_demo(ToyBundle& b, const DemoOptions& o) {
  GS_CHECK(o.identities >= 1, ValueError, "demo: identities must be >= 1, got ", o.identities);
  const int S = int(b.G->config().size);
  const Device dev = b.G->input.input.device();
  std::vector<tf::ToyIdentity> ids;
  std::vector<tf::ToyEdit> src_edits;
  for (int64_t k = 0; k < o.identities; ++k) {
    ids.push_back(tf::sample_identity(o.seed, tf::heldout_index(uint64_t(k))));
    src_edits.push_back(neutral_edit());
  }
  return invert_and_edit(b, render_batch(ids, src_edits, S).to(dev), o.attributes,
                         [&](const std::string& attr, double delta) {
                           std::vector<tf::ToyEdit> edited = src_edits;
                           for (auto& e : edited) tf::edit_field(e, attr) += delta;
                           return render_batch(ids, edited, S).to(dev);
                         });
}

DemoResult run_demo_on_images(ToyBundle& b, const Tensor& images, const std::vector<std::string>& attributes) {
  const int64_t S = b.G->config().size;
  GS_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == S && images.size(3) == S, ShapeError,
           "demo: images must be [N, 3, ", S, ", ", S, "] (the bundle's resolution), got ", shape_str(images.shape()));
  return invert_and_edit(b, images.to(b.G->input.input.device()), attributes,
                         [](const std::string&, double) { return Tensor(); });
}

}  // namespace gradstyle::eval
