#pragma once
// What this build of gradstyle is: its version, the git revision it was built from, and the
// options that change what it can do (CUDA and its SM list, dlib, the CPU instruction set).
// `gradstyle --version` prints build_summary().
#include <string>

namespace gradstyle {

struct BuildInfo {
  std::string version;        // the project version (meson.build)
  std::string git_revision;   // `git describe --always --dirty` at build time, "unknown" outside git
  std::string build_type;     // meson buildtype
  std::string compiler;       // C++ compiler id and version
  std::string cpu_isa;        // what the CPU kernels were compiled for, e.g. x86-64-v3 (AVX2, FMA)
  bool cuda = false;          // the CUDA backend is built in
  std::string cuda_archs;     // its SM list, e.g. "90"
  bool mpi = false;           // data-parallel training under mpirun
  bool nccl = false;          // GPU collectives for it
  bool dlib = false;          // face detection for `gradstyle align` is built in
};
const BuildInfo& build_info();
// A few lines: "gradstyle 0.1.0 (git abc1234)" then one "key: value" line per option.
std::string build_summary();

}  // namespace gradstyle
