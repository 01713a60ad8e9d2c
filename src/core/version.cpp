#include "gradstyle/core/version.hpp"

#include <sstream>

#include "version_config.hpp"

namespace gradstyle {

namespace detail {
const char* git_revision();  // git_revision.cpp, generated
}

const BuildInfo& build_info() {
  static const BuildInfo info = [] {
    BuildInfo b;
    b.version = GS_VERSION;
    b.git_revision = detail::git_revision();
    b.build_type = GS_BUILD_TYPE;
    b.compiler = GS_COMPILER;
    b.cpu_isa = GS_CPU_ISA;
#if defined(GRADSTYLE_CUDA)
    b.cuda = true;
    b.cuda_archs = GS_CUDA_ARCHS;
#endif
    b.dlib = GS_HAVE_DLIB != 0;
    b.mpi = GS_HAVE_MPI != 0;
    b.nccl = GS_HAVE_NCCL != 0;
    return b;
  }();
  return info;
}

std::string build_summary() {
  const BuildInfo& b = build_info();
  std::ostringstream s;
  s << "gradstyle " << b.version << " (git " << b.git_revision << ")\n"
    << "build: " << b.build_type << ", " << b.compiler << "\n"
    << "cpu: " << b.cpu_isa << "\n"
    << "cuda: " << (b.cuda ? "on (SM " + b.cuda_archs + ")" : std::string("off")) << "\n"
    << "dlib: " << (b.dlib ? "on (gradstyle align, --align)" : "off (install libdlib-dev and rebuild for alignment)") << "\n"
    << "mpi: " << (b.mpi ? std::string("on (mpirun -np N gradstyle train)") + (b.nccl ? ", NCCL for GPU ranks" : "")
                         : std::string("off (install libopenmpi-dev and rebuild for data-parallel training)")) << "\n";
  return s.str();
}

}  // namespace gradstyle
