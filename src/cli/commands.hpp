#pragma once
// The `gradstyle` subcommands as plain functions (main.cpp parses the command line with CLI11 and
// calls them; the unit tests call them directly). They write their report to `out`, progress to
// `err`, and throw gradstyle::Error subclasses on runtime failures (exit code 1) or UsageError on
// bad arguments (exit code 2).
#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <vector>

#include "gradstyle/core/device.hpp"

namespace gradstyle::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "85,265,297", "600-605", "0-3,10" -> seeds in the given order (duplicates kept). Every seed must
// lie in [0, 2^32 - 1] (NumPy's RandomState range); UsageError otherwise or on bad syntax.
std::vector<int64_t> parse_seeds(const std::string& spec);

struct GenerateArgs {
  std::string generator;             // checkpoint with a rosinality generator (g_ema) or a bare state dict
  std::string key = "g_ema";         // which entry of the checkpoint
  std::string seeds;                 // z = np.random.RandomState(seed).randn(1, style_dim), as NVIDIA generate.py
  std::string projected_w;           // alternatively: .npz with 'w' [N, n_latent, style_dim] -> proj00.png, ...
  double trunc = 1.0;                // psi, towards latent_avg (or mean_latent(4096) when the file has none)
  std::string noise_mode = "const";  // const | random | none
  std::string outdir;
  std::string device = "auto";  // auto | cpu | cuda[:N]
  int64_t batch = 1;
  bool overwrite = false;
  uint64_t noise_seed = 0;  // Philox seed for --noise-mode random
};
// Writes OUTDIR/seed%04d.png per seed (or proj%02d.png per projected latent). Refuses to replace
// existing images unless overwrite. Returns the exit code (0).
int run_generate(const GenerateArgs& a, std::ostream& out, std::ostream& err);

struct InfoArgs {
  std::string file;
  int64_t max_tensors = 12;  // tensors listed per state dict (0 = all)
  bool check = true;         // try to build and strictly load recognised networks
};
// Prints the detected format, the object tree with tensor dtypes/shapes/sizes, and what networks
// gradstyle recognises in it. Returns the exit code (0).
int run_info(const InfoArgs& a, std::ostream& out);

// "auto" (CUDA when a device is present, else the CPU), "cpu", "cuda" or "cuda:N"; UsageError for
// anything else or a CUDA device this build or machine does not have.
Device pick_device(const std::string& spec);

struct TrainArgs {
  std::string exp_dir;      // experiment folder (refused when it exists, unless resume)
  std::string config;       // JSON with the keys of SPEC B.9 (training and network); on resume, optional
  bool resume = false;      // continue from exp_dir/last.safetensors
  int64_t seed = -1;        // overrides the config's seed when >= 0
  bool quiet = false;       // no progress lines
};
// Trains GradStyle: exp_dir/opt.json (the full configuration), metrics.csv (one row every
// log_every iterations), images/iteration_N.png (source | X^r | X^e every image_every),
// checkpoints/iteration_N.safetensors (every save_every, the last keep_last kept) and
// checkpoints/last.safetensors. A run killed at any moment resumes with resume = true and ends
// bitwise identical to an uninterrupted one. Returns the exit code (0).
int run_train(const TrainArgs& a, std::ostream& out, std::ostream& err);

// The PNG/JPEG/BMP files of a folder, sorted by name (other files are skipped). UsageError naming
// `flag` when the folder is missing or holds no image.
std::vector<std::string> list_images(const std::string& dir, const std::string& flag);

// Seconds as "0:19" / "1:02:03".
std::string format_duration(double seconds);

// Progress line for N items: "\r[ 3/8] 1.2 it/s ETA 0:04" on a terminal, one line per step otherwise.
class Progress {
 public:
  Progress(int64_t total, std::ostream& err, bool tty);
  void step(const std::string& label);  // one item finished
  void done();

 private:
  int64_t total_, n_ = 0;
  std::ostream& err_;
  bool tty_;
  double t0_;
};

}  // namespace gradstyle::cli
