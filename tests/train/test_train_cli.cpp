// `gradstyle train` end to end on a tiny configuration: the experiment folder's files, the
// refusals, and llm.c's resume test -- a run killed with SIGKILL from another process at an
// arbitrary moment, then resumed, ends with a checkpoint bitwise identical to an uninterrupted run.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/commands.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "models/gradstyle_fixture.hpp"
#include "train/tiny_gan.hpp"

extern char** environ;

using namespace gradstyle;
namespace fs = std::filesystem;
namespace sg = gradstyle::models::stylegan2;

namespace {

struct TinyRun {
  fs::path root;
  std::string config;  // path of the JSON configuration
  TinyRun() {
    root = fs::temp_directory_path() / ("gs_train_cli_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
    gstest_train::write_tiny_gan((root / "gan.safetensors").string());  // a tiny G and D (g_ema.*, d.*)
    const std::string enc = std::string(GS_SOURCE_ROOT) + "/tests/golden/encoders/e4e_tiny.pt";
    std::ostringstream j;
    j << R"({"generator": ")" << (root / "gan.safetensors").string() << R"(", "encoder": ")" << enc << R"(",
      "data_source": "generator", "device": "cpu", "batch": 2, "iterations": 6, "save_every": 2, "log_every": 1,
      "image_every": 3, "keep_last": 2, "lambda_lpips": 0, "lambda_id": 0, "lambda_adv": 0.05, "d_reg_every": 2,
      "loss_resolution": 32, "lr": 0.001, "seed": 9,
      "refined_blocks": [3, 6, 8], "t_channels": 16, "aligner_heads": 2, "aligner_layers": 2, "aligner_mlp_ratio": 2})";
    config = (root / "cfg.json").string();
    std::ofstream(config) << j.str();
  }
  ~TinyRun() { fs::remove_all(root); }
  std::string exp(const std::string& name) const { return (root / name).string(); }
};

int run_train_quietly(const cli::TrainArgs& a) {
  std::ostringstream out, err;
  return cli::run_train(a, out, err);
}

std::vector<std::string> lines(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> r;
  for (std::string l; std::getline(f, l);) r.push_back(l);
  return r;
}

}  // namespace

TEST_CASE("train/cli: the experiment folder holds opt.json, metrics.csv, image grids and rotated checkpoints") {
  TinyRun run;
  cli::TrainArgs a;
  a.exp_dir = run.exp("a");
  a.config = run.config;
  a.quiet = true;
  REQUIRE(run_train_quietly(a) == 0);
  const fs::path e(a.exp_dir);
  CHECK(fs::exists(e / "opt.json"));
  auto m = lines((e / "metrics.csv").string());
  REQUIRE(m.size() == 7);  // header + 6 rows (log_every 1)
  CHECK(m[0].rfind("iteration,seconds,lr,total,l2", 0) == 0);
  CHECK(m[6].rfind("6,", 0) == 0);
  CHECK(fs::exists(e / "images" / "iteration_3.png"));
  CHECK(fs::exists(e / "images" / "iteration_6.png"));
  // keep_last = 2: iteration_2 was rotated out.
  CHECK_FALSE(fs::exists(e / "checkpoints" / "iteration_2.safetensors"));
  CHECK(fs::exists(e / "checkpoints" / "iteration_4.safetensors"));
  CHECK(fs::exists(e / "checkpoints" / "iteration_6.safetensors"));
  CHECK(io::read_file_bytes((e / "checkpoints" / "iteration_6.safetensors").string()) ==
        io::read_file_bytes((e / "checkpoints" / "last.safetensors").string()));
  // report.html: the curves of the logged terms (inline SVG) and the latest samples.
  {
    const std::vector<uint8_t> r = io::read_file_bytes((e / "report.html").string());
    const std::string h(r.begin(), r.end());
    CHECK(h.find("Iteration 6 of 6") != std::string::npos);
    CHECK(h.find("aria-label=\"total\"") != std::string::npos);
    CHECK(h.find("aria-label=\"l2\"") != std::string::npos);
    CHECK(h.find("aria-label=\"seconds\"") == std::string::npos);
    CHECK(h.find("src=\"images/iteration_6.png\"") != std::string::npos);
  }

  // Refusals: an existing folder without --resume; --resume of nothing; a changed key on resume.
  CHECK_THROWS_WITH_AS(run_train_quietly(a), doctest::Contains("exists and is not empty"), cli::UsageError);
  cli::TrainArgs b = a;
  b.exp_dir = run.exp("none");
  b.resume = true;
  CHECK_THROWS_WITH_AS(run_train_quietly(b), doctest::Contains("nothing to resume"), cli::UsageError);
  std::string changed = run.exp("changed.json");
  {
    std::ifstream in(run.config);
    std::stringstream s;
    s << in.rdbuf();
    std::string t = s.str();
    t.replace(t.find("\"lr\": 0.001"), 11, "\"lr\": 0.002");
    std::ofstream(changed) << t;
  }
  cli::TrainArgs c = a;
  c.resume = true;
  c.config = changed;
  CHECK_THROWS_WITH_AS(run_train_quietly(c), doctest::Contains("lr (0.001 -> 0.002)"), cli::UsageError);
}

TEST_CASE("train/cli: SIGKILL at an arbitrary moment, then --resume, is bitwise identical to an uninterrupted run") {
  TinyRun run;
  cli::TrainArgs straight;
  straight.exp_dir = run.exp("straight");
  straight.config = run.config;
  straight.quiet = true;
  REQUIRE(run_train_quietly(straight) == 0);

  // The same run in a separate process, killed from here once its first checkpoint exists.
  const std::string killed = run.exp("killed");
  const fs::path last = fs::path(killed) / "checkpoints" / "last.safetensors";
  std::vector<std::string> args = {GS_CLI_PATH, "train", "--exp_dir", killed, "--config", run.config, "--quiet"};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, GS_CLI_PATH, nullptr, nullptr, argv.data(), environ) == 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  int status = 0;
  bool exited = false;
  while (!fs::exists(last) && std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  INFO("child " << GS_CLI_PATH << (exited ? " exited early with status " + std::to_string(status) : std::string()));
  REQUIRE_FALSE(exited);
  REQUIRE(::kill(pid, SIGKILL) == 0);
  ::waitpid(pid, &status, 0);
  REQUIRE(fs::exists(last));
  const bool was_killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  MESSAGE("child " << std::string(was_killed ? "killed by SIGKILL" : "had already finished") << "; resuming from "
                   << io::load_safetensors(last.string()).size() << " saved tensors");
  CHECK(was_killed);

  cli::TrainArgs resume;
  resume.exp_dir = killed;
  resume.resume = true;
  resume.quiet = true;
  REQUIRE(run_train_quietly(resume) == 0);
  const auto a = io::read_file_bytes((fs::path(straight.exp_dir) / "checkpoints" / "last.safetensors").string());
  const auto b = io::read_file_bytes(last.string());
  CHECK(a.size() == b.size());
  CHECK(a == b);
  // Metrics: every iteration exactly once, in order, whatever the killed process had logged.
  auto m = lines((fs::path(killed) / "metrics.csv").string());
  REQUIRE(m.size() == 7);
  for (int i = 1; i <= 6; ++i) CHECK(m[size_t(i)].rfind(std::to_string(i) + ",", 0) == 0);
}
