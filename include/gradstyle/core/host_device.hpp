#pragma once
// GS_HD marks a function that one header gives to both the host compiler and nvcc, so the CPU and
// CUDA backends run the same code (bit-identical index math, conversions, RNG). Free of CUDA
// headers: a public header may include it.
#if defined(__CUDACC__)
#define GS_HD __host__ __device__ __forceinline__
#else
#define GS_HD inline
#endif
