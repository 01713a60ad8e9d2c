#pragma once
// Process-wide numerical settings of the backends. They are read when a kernel is chosen, so a
// change applies to the next op call; cached cuDNN plans are keyed by them. Thread-safe.

namespace gradstyle {

// Allow TensorFloat-32 tensor-core math in cuBLAS/cuDNN float32 work (matmul, conv).
// Default false: exact float32.
void set_allow_tf32(bool on);
bool allow_tf32();

// Restrict cuDNN convolutions to algorithms that cuDNN reports as deterministic, so that the
// same inputs give bit-identical outputs and gradients run after run (what a resumed training
// run needs). Default true; false lets the fastest algorithm win whatever its determinism
// (e.g. atomics-based backward-filter kernels). The CPU backend is deterministic either way.
void set_deterministic_algorithms(bool on);
bool deterministic_algorithms();

}  // namespace gradstyle
