// gradstyle toyfaces: the procedural face data set as files (PNGs + labels.jsonl).
#include "cli/toyfaces.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "cli/commands.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/image.hpp"

namespace gradstyle::cli {

namespace fs = std::filesystem;
namespace tf = gradstyle::data::toyfaces;

const char* const kToyfacesHelp =
    R"(Write procedural toyfaces: PNGs OUT/00000.png ... and OUT/labels.jsonl with every identity and
edit parameter (docs/toyfaces.md). Identity i of seed S is the same on every run. Indices at or
above 1000000 are the held-out identities (--heldout); training never uses them.

--edit-sweep ATTR renders each identity at several values of one edit (yaw, smile, eye_openness,
age): OUT/00000_s0.png, 00000_s1.png, ... are ground-truth edited images of the same identity.

Examples:
  gradstyle toyfaces --n 1000 --size 64 --seed 0 --out data/toyfaces
  gradstyle toyfaces --n 50 --heldout --edit-sweep smile --sweep-values -1,0,1 --out data/smile_gt)";

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// "m:ss". (format_duration is in generate.cpp, which the unit tests that call run_toyfaces do not link.)
std::string eta_str(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const long long t = (long long)(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
  return buf;
}

std::vector<double> parse_values(const std::string& spec, const tf::EditRange& r) {
  std::vector<double> v;
  if (spec.empty()) {
    for (int k = 0; k < 5; ++k) v.push_back(r.lo + (r.hi - r.lo) * k / 4.0);
    return v;
  }
  std::stringstream ss(spec);
  std::string part;
  while (std::getline(ss, part, ',')) {
    size_t used = 0;
    double x = 0;
    try {
      x = std::stod(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || part.find_first_not_of(' ', used) != std::string::npos)
      throw UsageError("--sweep-values: '" + part + "' in '" + spec + "' is not a number");
    if (!(x >= r.lo && x <= r.hi)) {
      std::ostringstream m;
      m << "--sweep-values: " << x << " is outside the range of " << r.name << " [" << r.lo << ", " << r.hi << "]";
      throw UsageError(m.str());
    }
    v.push_back(x);
  }
  if (v.empty()) throw UsageError("--sweep-values: empty list");
  if (v.size() > 100) throw UsageError("--sweep-values: more than 100 values");
  return v;
}

}  // namespace

int run_toyfaces(const ToyfacesArgs& a, std::ostream& out, std::ostream& err) {
  if (a.out.empty()) throw UsageError("--out is required");
  if (a.n < 1 || a.n > 100000000) throw UsageError("--n must be in 1..100000000, got " + std::to_string(a.n));
  if (a.size < 16 || a.size > 4096) throw UsageError("--size must be in 16..4096, got " + std::to_string(a.size));
  if (!a.heldout && a.start + uint64_t(a.n) > tf::kHeldoutBegin)
    throw UsageError("--start " + std::to_string(a.start) + " --n " + std::to_string(a.n) +
                     " reaches past the training range [0, " + std::to_string(tf::kHeldoutBegin) +
                     "); held-out identities need --heldout");
  if (!a.sweep_values.empty() && a.edit_sweep.empty()) throw UsageError("--sweep-values needs --edit-sweep ATTR");

  const tf::EditRange* sweep = nullptr;
  if (!a.edit_sweep.empty()) {
    for (const tf::EditRange& r : tf::edit_ranges())
      if (a.edit_sweep == r.name) sweep = &r;
    if (!sweep)
      throw UsageError("--edit-sweep: unknown attribute '" + a.edit_sweep + "' (expected yaw, smile, eye_openness or age)");
  }
  const std::vector<double> values = sweep ? parse_values(a.sweep_values, *sweep) : std::vector<double>{};

  // Never mix a new data set into an old one.
  const fs::path dir(a.out);
  if (fs::exists(dir)) {
    if (!fs::is_directory(dir)) throw UsageError("--out '" + a.out + "' exists and is not a directory");
    if (!fs::is_empty(dir) && !a.overwrite)
      throw UsageError("--out '" + a.out + "' exists and is not empty (pass --overwrite to write into it)");
  }
  fs::create_directories(dir);

  const int64_t per_identity = sweep ? int64_t(values.size()) : 1;
  const int64_t total = a.n * per_identity;
  const bool tty = &err == &std::cerr && ::isatty(2) != 0;
  const int64_t every = tty ? 1 : std::max<int64_t>(1, total / 20);
  std::string labels;
  const double t0 = now_s();
  int64_t done = 0;
  for (int64_t i = 0; i < a.n; ++i) {
    const uint64_t index = a.heldout ? tf::heldout_index(a.start + uint64_t(i)) : tf::train_index(a.start + uint64_t(i));
    const tf::ToyIdentity id = tf::sample_identity(a.seed, index);
    const tf::ToyEdit base = a.neutral ? tf::ToyEdit{} : tf::sample_edit(a.seed, index);
    for (int64_t k = 0; k < per_identity; ++k) {
      tf::ToyEdit e = base;
      char name[48];
      if (sweep) {
        tf::edit_field(e, sweep->name) = values[size_t(k)];
        std::snprintf(name, sizeof name, "%05lld_s%lld.png", (long long)i, (long long)k);
      } else {
        std::snprintf(name, sizeof name, "%05lld.png", (long long)i);
      }
      io::save_png((dir / name).string(), tf::render_image(id, e, a.size));
      nlohmann::json j = nlohmann::json::parse(tf::to_json(id, e));
      nlohmann::json line = {{"file", name}, {"index", index}, {"heldout", tf::is_heldout(index)},
                             {"seed", a.seed},  {"size", a.size}};
      if (sweep) line["sweep"] = {{"attr", sweep->name}, {"step", k}, {"value", values[size_t(k)]}};
      line["identity"] = std::move(j["identity"]);
      line["edit"] = std::move(j["edit"]);
      labels += line.dump() + "\n";
      ++done;
      if (done % every == 0 || done == total) {
        const double dt = now_s() - t0, rate = dt > 0 ? double(done) / dt : 0.0;
        std::ostringstream p;
        p << "[" << std::setw(int(std::to_string(total).size())) << done << "/" << total << "] " << std::fixed
          << std::setprecision(1) << rate << " img/s ETA " << eta_str(rate > 0 ? double(total - done) / rate : 0)
          << "  " << (dir / name).string();
        if (tty)
          err << "\r" << p.str() << "\x1b[K" << std::flush;
        else
          err << p.str() << "\n" << std::flush;
      }
    }
  }
  if (tty) err << "\n";
  const std::string labels_path = (dir / "labels.jsonl").string();
  io::atomic_write_file(labels_path, std::vector<uint8_t>(labels.begin(), labels.end()));
  out << "toyfaces: wrote " << total << " images (" << a.n << " " << (a.heldout ? "held-out" : "training")
      << " identities from index " << (a.heldout ? tf::heldout_index(a.start) : a.start) << ", seed " << a.seed << ", "
      << a.size << " px" << (sweep ? ", sweep of " + std::string(sweep->name) : std::string()) << ") and "
      << labels_path << " in " << std::fixed << std::setprecision(1) << now_s() - t0 << " s\n";
  return 0;
}

}  // namespace gradstyle::cli
