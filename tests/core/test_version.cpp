// build_info() and `gradstyle --version`: the version is meson's, the options are this build's.
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <string>

#include "gradstyle/core/version.hpp"
#include "gradstyle/dist/dist.hpp"
#include "gradstyle/data/align.hpp"

namespace {
// stdout of a shell command and its exit status.
std::pair<std::string, int> run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 512> buf{};
  while (std::fgets(buf.data(), int(buf.size()), p)) out += buf.data();
  const int status = ::pclose(p);
  return {out, status};
}
}  // namespace

TEST_CASE("core/version: build_info names this build's options") {
  const gradstyle::BuildInfo& b = gradstyle::build_info();
  CHECK(b.version == "0.1.0");
  CHECK(!b.git_revision.empty());
  CHECK(!b.compiler.empty());
  CHECK(b.dlib == gradstyle::align::have_dlib());
#if defined(GRADSTYLE_CUDA)
  CHECK(b.cuda);
  CHECK(!b.cuda_archs.empty());
#else
  CHECK(!b.cuda);
#endif
  const std::string s = gradstyle::build_summary();
  CHECK(s.rfind("gradstyle 0.1.0 (git ", 0) == 0);
  CHECK(s.find(b.git_revision) != std::string::npos);
  CHECK(s.find(std::string("dlib: ") + (b.dlib ? "on" : "off")) != std::string::npos);
  CHECK(s.find(std::string("cuda: ") + (b.cuda ? "on" : "off")) != std::string::npos);
  CHECK(s.find(std::string("mpi: ") + (b.mpi ? "on" : "off")) != std::string::npos);
  CHECK(b.mpi == gradstyle::dist::mpi_built());
  CHECK(b.nccl == gradstyle::dist::nccl_built());
  if (b.nccl) CHECK(b.cuda);
}

TEST_CASE("cli/version: gradstyle --version prints the summary and exits 0") {
  const auto [out, status] = run(std::string(GS_CLI_PATH) + " --version");
  CHECK(status == 0);
  // The same build options; the revision line may differ when the test binary was rebuilt alone.
  const std::string mine = gradstyle::build_summary();
  CHECK(out.rfind("gradstyle 0.1.0 (git ", 0) == 0);
  CHECK(out.substr(out.find('\n')) == mine.substr(mine.find('\n')));
}
