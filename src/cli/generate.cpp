// gradstyle generate: images from seeds (NVIDIA generate.py's z) or from projected W+ latents.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "cli/commands.hpp"
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/np_random.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/npy.hpp"
#include "gradstyle/io/sniff.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/stylegan2.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::cli {

namespace fs = std::filesystem;
namespace sg = gradstyle::models::stylegan2;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t parse_seed_value(const std::string& s, const std::string& spec) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos)
    throw UsageError("--seeds: '" + s + "' in '" + spec + "' is not a non-negative integer");
  const int64_t v = std::stoll(s);
  if (v > int64_t(0xffffffffLL))
    throw UsageError("--seeds: seed " + s + " is larger than 2^32 - 1 (NumPy's RandomState range)");
  return v;
}


}  // namespace

std::vector<int64_t> parse_seeds(const std::string& spec) {
  std::vector<int64_t> out;
  if (spec.empty()) throw UsageError("--seeds: empty list");
  std::stringstream ss(spec);
  std::string part;
  while (std::getline(ss, part, ',')) {
    // trim spaces
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
    const size_t dash = part.find('-');
    if (dash == std::string::npos) {
      out.push_back(parse_seed_value(part, spec));
      continue;
    }
    const int64_t lo = parse_seed_value(part.substr(0, dash), spec), hi = parse_seed_value(part.substr(dash + 1), spec);
    if (hi < lo) throw UsageError("--seeds: range '" + part + "' ends before it starts");
    if (hi - lo >= 1000000) throw UsageError("--seeds: range '" + part + "' has more than a million seeds");
    for (int64_t s = lo; s <= hi; ++s) out.push_back(s);
  }
  if (out.empty()) throw UsageError("--seeds: empty list");
  return out;
}

std::vector<std::string> list_images(const std::string& dir, const std::string& flag) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw UsageError(flag + ": " + io::quoted(dir) + " is not a folder");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string ext = e.path().extension().string();
    for (auto& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp"))
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw UsageError(flag + ": no PNG/JPEG/BMP images in " + io::quoted(dir));
  return files;
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  int64_t s = int64_t(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                  (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

Progress::Progress(int64_t total, std::ostream& err, bool tty) : total_(total), err_(err), tty_(tty), t0_(now_s()) {}

void Progress::step(const std::string& label) {
  ++n_;
  const double dt = now_s() - t0_;
  const double rate = dt > 0 ? double(n_) / dt : 0.0;
  const double eta = rate > 0 ? double(total_ - n_) / rate : 0.0;
  const int w = int(std::to_string(total_).size());
  std::ostringstream line;
  line << "[" << std::setw(w) << n_ << "/" << total_ << "] " << std::fixed << std::setprecision(rate < 10 ? 2 : 1)
       << rate << " it/s ETA " << format_duration(eta) << "  " << label;
  if (tty_)
    err_ << "\r" << line.str() << "\x1b[K" << std::flush;
  else
    err_ << line.str() << "\n" << std::flush;
}

void Progress::done() {
  if (tty_ && n_ > 0) err_ << "\n" << std::flush;
}

int run_generate(const GenerateArgs& a, std::ostream& out, std::ostream& err) {
  if (a.generator.empty()) throw UsageError("--generator is required");
  if (a.outdir.empty()) throw UsageError("--outdir is required");
  if (a.seeds.empty() == a.projected_w.empty()) throw UsageError("give exactly one of --seeds and --projected-w");
  if (a.batch < 1 || a.batch > 1024) throw UsageError("--batch must be in 1..1024, got " + std::to_string(a.batch));
  if (!(a.trunc >= -10 && a.trunc <= 10)) throw UsageError("--trunc must be a number in [-10, 10]");
  sg::NoiseMode mode;
  if (a.noise_mode == "const")
    mode = sg::NoiseMode::Const;
  else if (a.noise_mode == "random")
    mode = sg::NoiseMode::Random;
  else if (a.noise_mode == "none")
    mode = sg::NoiseMode::None;
  else
    throw UsageError("--noise-mode must be const, random or none, got '" + a.noise_mode + "'");
  const std::vector<int64_t> seeds = a.seeds.empty() ? std::vector<int64_t>{} : parse_seeds(a.seeds);
  const Device device = pick_device(a.device);

  // Load (the configuration comes from the file).
  const double t_load = now_s();
  sg::Generator::LoadOptions lo;
  lo.key = a.key;
  lo.device = device;
  auto G = sg::Generator::from_checkpoint(a.generator, lo);
  const uint64_t file_bytes = fs::file_size(a.generator);
  out << "generator: " << io::quoted(a.generator) << " (" << io::file_kind_name(io::sniff_file(a.generator)) << ", "
      << io::human_size(file_bytes) << ", entry '" << a.key << "'): " << G->config().str() << "\n";
  out << "device: " << device.str() << ", float32, loaded in " << std::fixed << std::setprecision(1) << now_s() - t_load
      << " s\n";
  if (G->noise_generated())
    out << "note: the file has no noise buffers (older model.py); const noise is drawn from Philox seed 0\n";

  // Latents to render: z from seeds (truncated in W) or W+ from an .npz.
  autograd::NoGradGuard ng;
  Tensor w_avg = G->w_avg;
  std::vector<std::string> names;
  Tensor z, w_plus;
  if (!seeds.empty()) {
    if (a.trunc != 1.0 && !w_avg.defined()) {
      gradstyle::Generator rng(0);
      w_avg = G->mean_latent(4096, rng);
      out << "truncation: the file has no latent_avg; using mean_latent(4096) (Philox seed 0)\n";
    }
    const int64_t D = G->config().style_dim;
    std::vector<float> zs;
    for (int64_t s : seeds) {
      NpRandomState rs(s);
      for (double v : rs.randn(D)) zs.push_back(float(v));
      char buf[32];
      std::snprintf(buf, sizeof buf, "seed%04lld.png", (long long)s);
      names.push_back(buf);
    }
    z = Tensor::from_vector(zs, {int64_t(seeds.size()), D}).to(device);
    out << "seeds: " << a.seeds << " (" << seeds.size() << " images), truncation psi " << a.trunc << ", noise "
        << a.noise_mode << "\n";
  } else {
    const io::NamedTensors arrays = io::load_npz(a.projected_w);
    const io::RawTensor* w = io::find_tensor(arrays, "w");
    if (!w) {
      std::string have;
      for (const auto& [n, t] : arrays) have += (have.empty() ? "" : ", ") + n;
      throw FormatError(io::quoted(a.projected_w) + ": no array 'w' (arrays: " + (have.empty() ? "none" : have) + ")");
    }
    w_plus = io::to_tensor(*w, device, true).to(DType::f32);
    if (w_plus.dim() == 2) w_plus = w_plus.unsqueeze(0);
    GS_CHECK(w_plus.dim() == 3 && w_plus.size(1) == G->n_latent() && w_plus.size(2) == G->config().style_dim,
             ShapeError, "latents in '", a.projected_w, "' have shape ", shape_str(w->shape),
             " but this generator expects [N,", G->n_latent(), ",", G->config().style_dim, "] (", G->config().size,
             " px, ", G->n_latent(), " W+ rows)");
    for (int64_t i = 0; i < w_plus.size(0); ++i) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "proj%02lld.png", (long long)i);
      names.push_back(buf);
    }
    out << "projected latents: " << io::quoted(a.projected_w) << " (" << names.size() << " images), noise "
        << a.noise_mode << "\n";
  }

  // Never silently replace earlier results.
  fs::create_directories(a.outdir);
  if (!a.overwrite)
    for (const auto& n : names)
      if (fs::exists(fs::path(a.outdir) / n))
        throw UsageError("'" + (fs::path(a.outdir) / n).string() + "' already exists (pass --overwrite to replace it)");

  gradstyle::Generator noise_rng(a.noise_seed);
  sg::SynthesisOptions so;
  so.noise_mode = mode;
  so.rng = &noise_rng;
  const int64_t n = int64_t(names.size());
  Progress progress(n, err, ::isatty(2) != 0);
  const double t0 = now_s();
  for (int64_t i0 = 0; i0 < n; i0 += a.batch) {
    const int64_t nb = std::min(a.batch, n - i0);
    Tensor img = z.defined() ? G->forward_z(z.narrow(0, i0, nb), a.trunc, w_avg, so)
                             : G->synthesis(w_plus.narrow(0, i0, nb), so);
    for (int64_t j = 0; j < nb; ++j) {
      const std::string path = (fs::path(a.outdir) / names[size_t(i0 + j)]).string();
      io::save_png(path, io::tensor_to_image(img, j, io::U8Rounding::Round));
      progress.step(path);
    }
  }
  progress.done();
  out << "wrote " << n << " image" << (n == 1 ? "" : "s") << " to " << a.outdir << " in " << std::fixed
      << std::setprecision(1) << now_s() - t0 << " s\n";
  return 0;
}

Device pick_device(const std::string& d) {
  if (d == "auto") return cuda_available() ? Device::cuda() : Device::cpu();
  try {
    Device dev = Device::parse(d);
    if (dev.is_cuda() && !cuda_available())
      throw UsageError("--device " + d + ": " +
                       (cuda_built() ? "no CUDA device is present" : "this build has no CUDA backend"));
    return dev;
  } catch (const gradstyle::Error& e) {
    throw UsageError("--device: '" + d + "' is not auto, cpu or cuda[:N] (" + e.what() + ")");
  }
}

}  // namespace gradstyle::cli
