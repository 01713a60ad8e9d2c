#pragma once
// Eigen's products run single-threaded everywhere in gradstyle: the CPU kernels split the work
// across OpenMP threads themselves (src/cpu/linalg.cpp says why). Every translation unit that calls
// an Eigen product includes this header, whose initializer sets it before main() runs, so that no
// product ever runs with Eigen's own threads. (It used to be set on the first GEMM call: the convs
// that ran before it, in one-thread teams where Eigen still threads, rounded differently from the
// same convs later, so the first inversion of a process differed from the next in the last bits.)
#include <Eigen/Core>

namespace gradstyle::cpu {
inline bool eigen_single_threaded() {
  Eigen::setNbThreads(1);
  return true;
}
[[maybe_unused]] static const bool kEigenSingleThreaded = eigen_single_threaded();
}  // namespace gradstyle::cpu
