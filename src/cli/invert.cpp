// `gradstyle invert` and `gradstyle edit`: a folder of photos through eval::InversionModel.
// Everything that can be refused (arguments, the model, every input image, the directions) is
// checked before the first file is written.
#include "cli/invert.hpp"

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <map>
#include <memory>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/align.hpp"
#include "cli/commands.hpp"
#include "cli/report.hpp"
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/eval/inversion.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/io/zip.hpp"
#include "gradstyle/ops/pool.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::cli {

namespace fs = std::filesystem;
using nlohmann::json;
namespace editing = models::editing;

namespace {

struct Input {
  std::string name;  // file name as found (with --align: <stem>[_face<k>].png)
  io::Image image;   // as decoded (RGB); with --align the aligned face
  std::string source;                 // the photo's path
  std::shared_ptr<const io::Image> photo;  // with --align: the whole photo (paste-back)
  json alignment;                     // with --align: alignment_record(); null otherwise
  align::Quad quad{};
};

struct Loaded {
  std::vector<Input> inputs;
  int64_t skipped = 0;  // unreadable images skipped under --keep-going
};

std::string index_name(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%05zu.png", i + 1);
  return buf;
}

void check_common(const InversionArgs& a) {
  if (a.checkpoint.empty()) throw UsageError("the checkpoint (CKPT) is required");
  if (a.save_dir.empty()) throw UsageError("--save_dir is required");
  if (a.batch < 1 || a.batch > 256) throw UsageError("--batch must be in 1..256, got " + std::to_string(a.batch));
  if (a.n_sample < 0) throw UsageError("--n_sample must be >= 0 (0 = every image)");
  if (a.align) align::require_dlib();
  if (!a.align && (a.largest || !a.landmarks.empty())) throw UsageError("--largest and --landmarks go with --align");
  if (a.align_size < 32 || a.align_size > 4096) throw UsageError("--align_size must be in 32..4096");
  if (fs::exists(a.save_dir) && !fs::is_directory(a.save_dir))
    throw UsageError("--save_dir " + io::quoted(a.save_dir) + " is a file, not a folder");
  if (fs::exists(a.save_dir) && !fs::is_empty(a.save_dir) && !a.overwrite)
    throw UsageError("--save_dir " + io::quoted(a.save_dir) +
                     " exists and is not empty (pass --overwrite; earlier results are never reused)");
}

// Every image of the folder decoded (sorted by name, the first n_sample), before anything is
// computed or written. A file that is not an image is skipped with a message; an unreadable image
// stops the run unless keep_going.
Loaded load_inputs(const InversionArgs& a, std::ostream& err) {
  Loaded r;
  std::vector<std::string> files = list_images(a.images_dir, "--images_dir");
  int64_t others = 0;
  for (const auto& e : fs::directory_iterator(a.images_dir))
    if (e.is_regular_file()) ++others;
  others -= int64_t(files.size());
  if (others > 0 && !a.quiet)
    err << "note: skipping " << others << " file" << (others == 1 ? "" : "s") << " of " << io::quoted(a.images_dir)
        << " that " << (others == 1 ? "is" : "are") << " not PNG/JPEG/BMP\n";
  if (a.n_sample > 0 && int64_t(files.size()) > a.n_sample) files.resize(size_t(a.n_sample));
  AlignSettings as;
  as.landmarks = a.landmarks;
  as.size = a.align_size;
  as.largest = a.largest;
  for (const auto& f : files) {
    try {
      if (!a.align) {
        r.inputs.push_back({fs::path(f).filename().string(), io::load_image(f), f, nullptr, json(), {}});
        continue;
      }
      auto photo = std::make_shared<const io::Image>(io::load_image(f));
      for (auto& face : align_photo(*photo, f, as))
        r.inputs.push_back({face.name + ".png", face.image, f, photo, alignment_record(face, f, *photo, as.size),
                            face.alignment.quad});
    } catch (const IOError& e) {
      throw;  // the landmark model or an unreadable folder: not one image's fault
    } catch (const gradstyle::Error& e) {
      if (!a.keep_going) throw FormatError(std::string(e.what()) + " (nothing was written; --keep-going skips it)");
      err << "skipping " << io::quoted(f) << ": " << e.what() << "\n";
      ++r.skipped;
    }
  }
  if (r.inputs.empty()) throw FormatError("--images_dir " + io::quoted(a.images_dir) + ": no readable image");
  return r;
}

std::string file_facts(const std::string& path) {
  if (fs::is_directory(path)) return "folder, files checked against its manifest";
  const io::MappedFile f(path);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", io::crc32(f.bytes(), 0));
  return io::human_size(f.size()) + ", CRC-32 " + buf;
}

eval::InversionModel load_model(const InversionArgs& a, std::ostream& out) {
  eval::InversionLoadOptions lo;
  lo.generator = a.generator;
  lo.generator_key = a.generator_key;
  lo.encoder = a.encoder;
  lo.device = pick_device(a.device);
  eval::InversionModel m = eval::InversionModel::load(a.checkpoint, lo);
  out << "model: " << io::quoted(a.checkpoint) << " (" << file_facts(a.checkpoint) << "): " << m.describe() << "\n";
  if (m.generator_source != a.checkpoint + " (state_dict.decoder)" && m.kind != eval::ModelKind::Bundle)
    out << "generator: " << m.generator_source << "; encoder: " << m.encoder_source << "\n";
  return m;
}

// Removes what an earlier run of the same command wrote (never anything else), so that no stale
// file survives an --overwrite.
void clear_outputs(const fs::path& dir, const std::vector<std::string>& names) {
  for (const auto& n : names) fs::remove_all(dir / n);
}

Tensor batch_of(const std::vector<Input>& in, size_t i0, size_t n, int64_t size) {
  std::vector<Tensor> xs;
  for (size_t i = i0; i < i0 + n; ++i) xs.push_back(eval::InversionModel::prepare(in[i].image, size));
  return xs.size() == 1 ? xs[0] : cat(xs, 0);
}

// e4e's tensor2im: clamp((x + 1) / 2) * 255, truncated.
io::Image to_image(const Tensor& t, int64_t j) {
  return io::tensor_to_image(t.to(Device::cpu()), j, io::U8Rounding::Truncate);
}

void save(const fs::path& p, const io::Image& img) {
  fs::create_directories(p.parent_path());
  io::save_png(p.string(), img);
}

// The report shows at most this many inputs (the files on disk are all there).
constexpr size_t kReportRows = 100;

// How report.html under `root` refers to input i: the aligned face (written to aligned/), or the
// photo by its path relative to the report.
std::string source_ref(const fs::path& root, const Input& in, size_t i) {
  return in.photo ? "aligned/" + index_name(i) : report::relative_ref(root.string(), in.source);
}

std::string shown_note(size_t n) {
  return n > kReportRows ? " The first " + std::to_string(kReportRows) + " of " + std::to_string(n) + " are shown." : "";
}

std::unique_ptr<Progress> make_progress(int64_t n, const InversionArgs& a, std::ostream& err, std::ostringstream& sink) {
  return std::make_unique<Progress>(n, a.quiet ? static_cast<std::ostream&>(sink) : err, !a.quiet && ::isatty(2) != 0);
}

}  // namespace

int run_invert(const InvertArgs& a, std::ostream& out, std::ostream& err) {
  check_common(a);
  if (a.images_dir.empty()) throw UsageError("--images_dir is required");
  const Loaded in = load_inputs(a, err);
  eval::InversionModel m = load_model(a, out);

  const fs::path root(a.save_dir);
  fs::create_directories(root);
  clear_outputs(root, {"inversions", "aligned", "latents.safetensors", "report.html"});
  std::ostringstream sink;
  auto progress = make_progress(int64_t(in.inputs.size()), a, err, sink);
  std::vector<Tensor> ws;
  json names = json::array(), alignments = json::array();
  for (size_t i0 = 0; i0 < in.inputs.size(); i0 += size_t(a.batch)) {
    const size_t nb = std::min(size_t(a.batch), in.inputs.size() - i0);
    eval::Inversion inv = m.invert(batch_of(in.inputs, i0, nb, m.input_size()), !a.latents_only);
    ws.push_back(inv.w.to(Device::cpu()));
    if (!a.latents_only) {
      Tensor img = inv.image;
      if (a.resize_outputs && img.size(-1) != 256) img = adaptive_avg_pool2d(img, {256, 256});
      for (size_t j = 0; j < nb; ++j) save(root / "inversions" / index_name(i0 + j), to_image(img, int64_t(j)));
    }
    if (a.align)
      for (size_t j = 0; j < nb; ++j) save(root / "aligned" / index_name(i0 + j), in.inputs[i0 + j].image);
    for (size_t j = 0; j < nb; ++j) {
      names.push_back(in.inputs[i0 + j].name);
      alignments.push_back(in.inputs[i0 + j].alignment);
      progress->step(in.inputs[i0 + j].name);
    }
  }
  progress->done();
  const Tensor latents = (ws.size() == 1 ? ws[0] : cat(ws, 0)).to(DType::f32).contiguous();
  std::map<std::string, std::string> meta = {
      {"names", names.dump()}, {"checkpoint", a.checkpoint}, {"kind", eval::model_kind_name(m.kind)}};
  if (a.align) meta["alignments"] = alignments.dump();  // one record per latent (gradstyle align's)
  io::save_safetensors((root / "latents.safetensors").string(), {{"latents", io::from_tensor(latents)}}, meta);
  if (!a.latents_only) {
    report::Page page("gradstyle invert: " + std::to_string(in.inputs.size()) + " image" +
                      (in.inputs.size() == 1 ? "" : "s"));
    page.paragraph("Checkpoint " + a.checkpoint + " (" + eval::model_kind_name(m.kind) + "). Source" +
                   (a.align ? " (FFHQ-aligned face)" : "") + " | inversion; the latents are in latents.safetensors." +
                   shown_note(in.inputs.size()));
    std::vector<std::vector<std::string>> rows;
    for (size_t i = 0; i < std::min(in.inputs.size(), kReportRows); ++i)
      rows.push_back({source_ref(root, in.inputs[i], i), "inversions/" + index_name(i)});
    page.image_table({"source", "inversion"}, rows, 192);
    page.write((root / "report.html").string());
  }
  out << "invert: " << in.inputs.size() << " image" << (in.inputs.size() == 1 ? "" : "s") << " -> "
      << (root / "latents.safetensors").string() << " " << shape_str(latents.shape());
  if (!a.latents_only) out << ", " << (root / "inversions").string() << "/ and report.html";
  out << "\n";
  if (in.skipped > 0) {
    err << "invert: " << in.skipped << " unreadable image" << (in.skipped == 1 ? " was" : "s were") << " skipped\n";
    return 1;
  }
  return 0;
}

namespace {

struct Degree {
  double value;
  std::string label;  // as it names the output folder
};

double parse_number(const std::string& s, const std::string& flag) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size() || !std::isfinite(v))
    throw UsageError(flag + ": '" + s + "' is not a finite number");
  return v;
}

std::string label_of(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", std::abs(v) < 1e-12 ? 0.0 : v);
  return buf;
}

std::vector<Degree> parse_degrees(const EditArgs& a) {
  if (!a.edit_degree.empty() && !a.range.empty()) throw UsageError("give --edit_degree or --range, not both");
  std::vector<Degree> out;
  if (!a.edit_degree.empty()) {
    out.push_back({parse_number(a.edit_degree, "--edit_degree"), a.edit_degree});
  } else if (!a.range.empty()) {
    std::vector<std::string> p;
    std::stringstream ss(a.range);
    std::string t;
    while (std::getline(ss, t, ':')) p.push_back(t);
    if (p.size() != 3) throw UsageError("--range: '" + a.range + "' is not start:end:step");
    const double lo = parse_number(p[0], "--range"), hi = parse_number(p[1], "--range"),
                 step = parse_number(p[2], "--range");
    if (step == 0 || (hi - lo) / step < 0) throw UsageError("--range: step " + p[2] + " does not lead from " + p[0] + " to " + p[1]);
    const double n = std::floor((hi - lo) / step + 1e-9);
    if (n >= 100) throw UsageError("--range: more than 100 degrees");
    for (int64_t k = 0; k <= int64_t(n); ++k) {
      const double v = lo + double(k) * step;
      out.push_back({v, label_of(v)});
    }
  }
  return out;
}

// One edit to apply: a direction step or a GANSpace setting.
struct EditPlan {
  std::string attribute;
  bool ganspace = false;
  Tensor direction;              // InterFaceGAN
  editing::GanspacePCA pca;      // GANSpace
  editing::GanspaceEdit gs;
  std::vector<Degree> degrees;
  std::vector<double> steps;     // InterFaceGAN alpha per degree; GANSpace strength per degree
  std::vector<std::string> folders;

  Tensor apply(const Tensor& w, size_t k) const {
    if (!ganspace) return editing::interfacegan_edit(w, direction, steps[k]);
    editing::GanspaceEdit e = gs;
    e.strength = steps[k];
    return editing::ganspace_edit(w, pca, e);
  }
};

EditPlan plan_edit(const EditArgs& a, const eval::InversionModel& m) {
  EditPlan p;
  p.degrees = parse_degrees(a);
  const auto named = editing::hfgi_ganspace_edits();
  const editing::GanspaceEdit* hfgi = nullptr;
  for (const auto& e : named)
    if (e.name == a.edit_attribute) hfgi = &e;
  p.ganspace = !a.ganspace.empty() || (hfgi && a.direction.empty());
  if (a.edit_attribute.empty() && a.ganspace.empty() && a.direction.empty())
    throw UsageError("say what to edit: --edit_attribute A, --direction FILE or --ganspace idx,start,end,strength");
  if (p.ganspace) {
    if (!a.ganspace.empty()) {
      std::vector<std::string> f;
      std::stringstream ss(a.ganspace);
      std::string t;
      while (std::getline(ss, t, ',')) f.push_back(t);
      if (f.size() != 4) throw UsageError("--ganspace: '" + a.ganspace + "' is not idx,start,end,strength");
      auto as_int = [&](const std::string& s) {
        const double v = parse_number(s, "--ganspace");
        if (v != std::floor(v) || v < 0) throw UsageError("--ganspace: '" + s + "' is not a non-negative integer");
        return int64_t(v);
      };
      p.gs = {a.edit_attribute.empty() ? "ganspace_" + f[0] : a.edit_attribute, as_int(f[0]), as_int(f[1]),
              as_int(f[2]), parse_number(f[3], "--ganspace")};
    } else {
      p.gs = *hfgi;
    }
    std::string pca = a.ganspace_pca;
    if (pca.empty() && !a.directions_dir.empty()) pca = (fs::path(a.directions_dir) / "ffhq_pca.pt").string();
    if (pca.empty()) throw UsageError("GANSpace edit '" + p.gs.name + "' needs --ganspace_pca FILE (ffhq_pca.pt) or --directions_dir");
    p.pca = editing::GanspacePCA::load(pca, m.device());
    GS_CHECK(p.pca.dim() == m.style_dim(), ShapeError, "GANSpace PCA ", pca, " has dimension ", p.pca.dim(),
             " but this generator's style width is ", m.style_dim());
    if (p.gs.idx >= p.pca.num_components() || p.gs.end > m.n_latent() || p.gs.start >= p.gs.end)
      throw UsageError("GANSpace edit (" + std::to_string(p.gs.idx) + ", " + std::to_string(p.gs.start) + ", " +
                       std::to_string(p.gs.end) + "): needs idx < " + std::to_string(p.pca.num_components()) +
                       " and 0 <= start < end <= " + std::to_string(m.n_latent()));
    p.attribute = p.gs.name;
    if (p.degrees.empty()) p.degrees.push_back({p.gs.strength, label_of(p.gs.strength)});
    for (const auto& d : p.degrees) p.steps.push_back(d.value);  // the degree is the strength
  } else {
    if (p.degrees.empty()) throw UsageError("give --edit_degree X or --range a:b:step");
    p.attribute = !a.edit_attribute.empty() ? a.edit_attribute : fs::path(a.direction).stem().string();
    const eval::DirectionSource src{a.direction, a.directions_dir};
    p.direction = m.direction(p.attribute, src);
    for (const auto& d : p.degrees) p.steps.push_back(m.step_for(p.attribute, d.value, src));
  }
  for (auto& c : p.attribute)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) c = '_';
  for (const auto& d : p.degrees) p.folders.push_back(p.attribute + "_" + d.label);
  return p;
}

// latents.safetensors of `invert`: "latents" [N, n_latent, D] and the source names.
std::pair<Tensor, std::vector<std::string>> read_latents(const std::string& path, const eval::InversionModel& m) {
  if (!fs::exists(path)) throw IOError("--latents " + io::quoted(path) + " does not exist");
  const io::SafetensorsFile f(path);
  if (!f.find("latents"))
    throw FormatError("--latents " + io::quoted(path) + " has no tensor 'latents' (write it with gradstyle invert)");
  Tensor w = io::to_tensor(f.load("latents")).to(DType::f32);
  GS_CHECK(w.dim() == 3 && w.size(1) == m.n_latent() && w.size(2) == m.style_dim() && w.size(0) >= 1, ShapeError,
           "--latents ", path, " holds latents of shape ", shape_str(w.shape()), " but this generator expects [N,",
           m.n_latent(), ",", m.style_dim(), "]");
  std::vector<std::string> names;
  if (auto it = f.metadata().find("names"); it != f.metadata().end()) {
    try {
      for (const auto& n : json::parse(it->second)) names.push_back(n.get<std::string>());
    } catch (const std::exception&) {
      names.clear();
    }
  }
  if (int64_t(names.size()) != w.size(0)) {
    names.clear();
    for (int64_t i = 0; i < w.size(0); ++i) names.push_back("latent " + std::to_string(i));
  }
  return {w, names};
}

}  // namespace

int run_edit(const EditArgs& a, std::ostream& out, std::ostream& err) {
  check_common(a);
  if (a.images_dir.empty() == a.latents.empty()) throw UsageError("give exactly one of --images_dir and --latents");
  if (a.paste_back && !a.align) throw UsageError("--paste-back needs --align (it puts the aligned face back into the photo)");
  if (a.align && a.images_dir.empty()) throw UsageError("--align works on the photos of --images_dir, not on --latents");
  if (!(a.feather > 0 && a.feather <= 0.5)) throw UsageError("--feather must be in (0, 0.5]");
  Loaded in;
  if (!a.images_dir.empty()) in = load_inputs(a, err);
  eval::InversionModel m = load_model(a, out);
  if (!a.latents.empty() && m.kind != eval::ModelKind::E4E)
    throw UsageError("--latents: a " + std::string(eval::model_kind_name(m.kind)) +
                     " edit needs the images (the residual stream reads them); pass --images_dir");
  const EditPlan plan = plan_edit(a, m);
  Tensor latents;
  std::vector<std::string> names;
  if (!a.latents.empty()) {
    std::tie(latents, names) = read_latents(a.latents, m);
    if (a.n_sample > 0 && latents.size(0) > a.n_sample) {
      latents = latents.narrow(0, 0, a.n_sample);
      names.resize(size_t(a.n_sample));
    }
  } else {
    for (const auto& i : in.inputs) names.push_back(i.name);
  }
  out << "edit: " << plan.attribute << (plan.ganspace ? " (GANSpace " + std::to_string(plan.gs.idx) + ", rows " +
                                                            std::to_string(plan.gs.start) + ".." +
                                                            std::to_string(plan.gs.end - 1) + ")"
                                                      : " (InterFaceGAN)")
      << ", degrees";
  for (const auto& d : plan.degrees) out << " " << d.label;
  out << (m.net ? ", editing stream with aligned residuals\n" : ", latent only\n");

  const fs::path root(a.save_dir);
  fs::create_directories(root);
  std::vector<std::string> ours = {"inversion", "grids", "report.html"};
  ours.insert(ours.end(), plan.folders.begin(), plan.folders.end());
  for (const auto& f : plan.folders) ours.push_back(f + "_pasted");
  clear_outputs(root, ours);
  std::ostringstream sink;
  auto progress = make_progress(int64_t(names.size()), a, err, sink);
  const int64_t S = m.output_size();
  for (size_t i0 = 0; i0 < names.size(); i0 += size_t(a.batch)) {
    const size_t nb = std::min(size_t(a.batch), names.size() - i0);
    eval::Inversion inv;
    if (latents.defined()) {
      inv.w = latents.narrow(0, int64_t(i0), int64_t(nb)).to(m.device());
      inv.image = m.synthesize(inv.w);
    } else {
      inv = m.invert(batch_of(in.inputs, i0, nb, m.input_size()));
    }
    std::vector<std::vector<io::Image>> rows(nb);
    for (size_t j = 0; j < nb; ++j) {
      if (!latents.defined()) rows[j].push_back(io::resize_pil(in.inputs[i0 + j].image, int(S), int(S)));
      rows[j].push_back(to_image(inv.image, int64_t(j)));
      save(root / "inversion" / index_name(i0 + j), rows[j].back());
    }
    for (size_t k = 0; k < plan.degrees.size(); ++k) {
      const Tensor img = m.render(plan.apply(inv.w, k), inv);
      for (size_t j = 0; j < nb; ++j) {
        rows[j].push_back(to_image(img, int64_t(j)));
        save(root / plan.folders[k] / index_name(i0 + j), rows[j].back());
        if (a.paste_back) {
          const Input& src = in.inputs[i0 + j];
          save(root / (plan.folders[k] + "_pasted") / index_name(i0 + j),
               align::paste_back(*src.photo, rows[j].back(), src.quad, a.feather));
        }
      }
    }
    for (size_t j = 0; j < nb; ++j) {
      fs::create_directories(root / "grids");
      io::save_image_grid((root / "grids" / index_name(i0 + j)).string(), {rows[j]});
      progress->step(names[i0 + j]);
    }
  }
  progress->done();
  {
    report::Page page("gradstyle edit: " + plan.attribute + " on " + std::to_string(names.size()) + " image" +
                      (names.size() == 1 ? "" : "s"));
    std::string degrees;
    for (const auto& d : plan.degrees) degrees += (degrees.empty() ? "" : ", ") + d.label;
    page.paragraph("Checkpoint " + a.checkpoint + " (" + eval::model_kind_name(m.kind) + "), " +
                   (plan.ganspace ? "GANSpace" : "InterFaceGAN") + " edit " + plan.attribute + ", degrees " + degrees +
                   (m.net ? "; the editing stream with aligned residuals." : "; latent only.") + shown_note(names.size()));
    const size_t shown = std::min(names.size(), kReportRows);
    if (plan.degrees.size() > 1) {
      std::vector<std::string> labels;
      for (const auto& d : plan.degrees) labels.push_back(d.label);
      // Start at the degree nearest to 0 (the inversion itself when the range includes it).
      size_t start = 0;
      for (size_t k = 1; k < plan.degrees.size(); ++k)
        if (std::abs(plan.degrees[k].value) < std::abs(plan.degrees[start].value)) start = k;
      auto rows_of = [&](const std::string& suffix) {
        std::vector<std::vector<std::string>> rows(shown);
        for (size_t i = 0; i < shown; ++i)
          for (const auto& f : plan.folders) rows[i].push_back(f + suffix + "/" + index_name(i));
        return rows;
      };
      page.heading("Edit strength");
      page.slider(plan.attribute, labels, rows_of(""), start);
      if (a.paste_back) {
        page.heading("Put back into the photo");
        page.slider(plan.attribute, labels, rows_of("_pasted"), start, 384);
      }
    } else if (a.paste_back) {
      page.heading("Put back into the photo");
      std::vector<std::vector<std::string>> rows;
      for (size_t i = 0; i < shown; ++i) rows.push_back({plan.folders[0] + "_pasted/" + index_name(i)});
      page.image_table({plan.folders[0]}, rows, 384);
    }
    page.heading("Grids");
    std::string cols = latents.defined() ? "inversion" : "source | inversion";
    for (const auto& d : plan.degrees) cols += " | " + d.label;
    page.paragraph("One row per image: " + cols + " (grids/).");
    for (size_t i = 0; i < shown; ++i) page.image("grids/" + index_name(i), names[i], int(128 * (plan.degrees.size() + 2)));
    page.write((root / "report.html").string());
  }
  out << "edit: " << names.size() << " image" << (names.size() == 1 ? "" : "s") << " x " << plan.degrees.size()
      << " degree" << (plan.degrees.size() == 1 ? "" : "s") << " -> " << root.string() << "/{inversion,"
      << (plan.folders.size() == 1 ? plan.folders[0] : plan.attribute + "_*") << ",grids}/\n";
  if (in.skipped > 0) {
    err << "edit: " << in.skipped << " unreadable image" << (in.skipped == 1 ? " was" : "s were") << " skipped\n";
    return 1;
  }
  return 0;
}

}  // namespace gradstyle::cli
