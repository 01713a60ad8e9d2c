// CUDA row reductions (sum/max/min) and row softmax / log-softmax over dense [rows, n] views
// (same contracts as src/cpu/reduce.cpp).
//
// A row is handled by a group of G threads: G = 1 for tiny rows, one warp for rows up to 2048,
// a whole block otherwise. Each thread folds a strided slice of the row, then the group combines
// with warp shuffles (and shared memory across warps). Accumulation is in double for both float
// types, like the CPU (free here: the kernels are memory-bound). Few long rows are split into
// segments reduced by separate blocks, then the partials are reduced again.
#include <cmath>

#include "backend/cuda_runtime.hpp"
#include "backend/kernels.hpp"
#include "../common/launch.cuh"

namespace gradstyle::cuda {

using backend::ReduceOp;
using backend::StridedView;

namespace {

struct Combine {  // sum / max / min with NaN propagation (the CPU's semantics)
  ReduceOp op;
  __device__ __forceinline__ double operator()(double a, double b) const {
    if (op == ReduceOp::Sum) return a + b;
    if (a != a || b != b) return NAN;
    return op == ReduceOp::Max ? (b > a ? b : a) : (b < a ? b : a);
  }
};
struct MaxIgnoringNaN {  // softmax's row max: `x > m ? x : m` like the CPU
  __device__ __forceinline__ double operator()(double a, double b) const { return b > a ? b : a; }
};
struct Add {
  __device__ __forceinline__ double operator()(double a, double b) const { return a + b; }
};

__device__ __forceinline__ double identity_of(ReduceOp op) {
  return op == ReduceOp::Sum ? 0.0 : (op == ReduceOp::Max ? -INFINITY : INFINITY);
}

// Combines v over each group of G consecutive threads (G = 1, 32 or kBlock); every thread of the
// group gets the same result. For G == kBlock all threads of the block must call it.
template <int G, class F>
__device__ __forceinline__ double group_allreduce(double v, F f, double* smem) {
  if constexpr (G == 1) {
    return v;
  } else {
    for (int o = 16; o > 0; o >>= 1) v = f(v, __shfl_xor_sync(0xffffffffu, v, o));
    if constexpr (G == 32) {
      return v;
    } else {
      static_assert(G == kBlock, "group size");
      constexpr int kWarps = kBlock / 32;
      __syncthreads();  // smem may still be read by a previous call
      if (threadIdx.x % 32 == 0) smem[threadIdx.x / 32] = v;
      __syncthreads();
      double r = smem[0];
      for (int w = 1; w < kWarps; ++w) r = f(r, smem[w]);
      return r;
    }
  }
}

// out[t] = reduction of segment t % segs of row t / segs, a segment being seg_len elements.
template <class In, class Out, int G>
__global__ void reduce_kernel(ReduceOp op, const In* in, Out* out, int64_t rows, int64_t n, int64_t seg_len,
                              int64_t segs) {
  __shared__ double smem[kBlock / 32];
  constexpr int kGroups = kBlock / G;
  const Combine f{op};
  const int lane = int(threadIdx.x) % G;
  const int64_t tasks = rows * segs;
  // The loop bound is uniform within a group, so the block-wide barriers of G == kBlock are safe.
  for (int64_t t = int64_t(blockIdx.x) * kGroups + threadIdx.x / G; t < tasks; t += int64_t(gridDim.x) * kGroups) {
    const int64_t r = t / segs, sg = t - r * segs;
    const int64_t begin = sg * seg_len, end = begin + seg_len < n ? begin + seg_len : n;
    const In* x = in + r * n;
    double acc = identity_of(op);
    for (int64_t j = begin + lane; j < end; j += G) acc = f(acc, double(x[j]));
    acc = group_allreduce<G>(acc, f, smem);
    if (lane == 0) out[t] = Out(acc);
  }
}

template <class T, int G>
__global__ void softmax_kernel(const T* in, T* out, int64_t rows, int64_t n, bool log_out) {
  __shared__ double smem[kBlock / 32];
  constexpr int kGroups = kBlock / G;
  const int lane = int(threadIdx.x) % G;
  for (int64_t r = int64_t(blockIdx.x) * kGroups + threadIdx.x / G; r < rows; r += int64_t(gridDim.x) * kGroups) {
    const T* x = in + r * n;
    T* y = out + r * n;
    T m = -INFINITY;
    for (int64_t j = lane; j < n; j += G) m = x[j] > m ? x[j] : m;
    m = T(group_allreduce<G>(double(m), MaxIgnoringNaN{}, smem));
    double s = 0;
    for (int64_t j = lane; j < n; j += G) s += double(::exp(T(x[j] - m)));
    s = group_allreduce<G>(s, Add{}, smem);
    if (log_out) {
      const T ls = T(::log(s));
      for (int64_t j = lane; j < n; j += G) y[j] = x[j] - m - ls;
    } else {
      const T inv = T(1.0 / s);
      for (int64_t j = lane; j < n; j += G) y[j] = ::exp(x[j] - m) * inv;
    }
  }
}

int group_size_for(int64_t n) { return n <= 8 ? 1 : (n <= 2048 ? 32 : kBlock); }

unsigned grid_for_groups(int64_t tasks, int g) { return grid_for(tasks * g); }

template <class In, class Out>
void launch_reduce(ReduceOp op, const In* in, Out* out, int64_t rows, int64_t n, int64_t seg_len, int64_t segs,
                   int g) {
  cudaStream_t s = stream();
  const unsigned grid = grid_for_groups(rows * segs, g);
  if (g == 1) reduce_kernel<In, Out, 1><<<grid, kBlock, 0, s>>>(op, in, out, rows, n, seg_len, segs);
  else if (g == 32) reduce_kernel<In, Out, 32><<<grid, kBlock, 0, s>>>(op, in, out, rows, n, seg_len, segs);
  else reduce_kernel<In, Out, kBlock><<<grid, kBlock, 0, s>>>(op, in, out, rows, n, seg_len, segs);
  GS_CUDA_CHECK_LAUNCH("reduce_kernel");
}

// Scratch device memory from the pool, released (stream-ordered) at scope exit.
struct Scratch {
  void* p;
  explicit Scratch(size_t n) : p(device_alloc(n)) {}
  ~Scratch() { device_free(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

template <class T>
void reduce_t(ReduceOp op, T* out, const T* in, int64_t rows, int64_t n) {
  const int g = group_size_for(n);
  const int64_t sms = sm_count();
  // Few long rows: one block per row would leave most SMs idle; split each row into segments.
  if (g == kBlock && n >= 32768 && rows < 4 * sms) {
    const int64_t want = (8 * sms + rows - 1) / rows;  // segments per row to fill the device
    const int64_t segs = std::max<int64_t>(2, std::min<int64_t>(want, (n + 8191) / 8192));
    const int64_t seg_len = (n + segs - 1) / segs;
    Scratch partials(size_t(rows * segs) * sizeof(double));
    double* part = static_cast<double*>(partials.p);
    launch_reduce<T, double>(op, in, part, rows, n, seg_len, segs, kBlock);
    launch_reduce<double, T>(op, part, out, rows, segs, segs, 1, group_size_for(segs));
    return;
  }
  launch_reduce<T, T>(op, in, out, rows, n, n, 1, g);
}

template <class T>
void softmax_t(T* out, const T* in, int64_t rows, int64_t n, bool log_out) {
  const int g = group_size_for(n);
  cudaStream_t s = stream();
  const unsigned grid = grid_for_groups(rows, g);
  if (g == 1) softmax_kernel<T, 1><<<grid, kBlock, 0, s>>>(in, out, rows, n, log_out);
  else if (g == 32) softmax_kernel<T, 32><<<grid, kBlock, 0, s>>>(in, out, rows, n, log_out);
  else softmax_kernel<T, kBlock><<<grid, kBlock, 0, s>>>(in, out, rows, n, log_out);
  GS_CUDA_CHECK_LAUNCH("softmax_kernel");
}

}  // namespace

void reduce_rows(ReduceOp op, const StridedView& out, const StridedView& in, int64_t outer, int64_t n) {
  GS_CHECK(in.dtype == out.dtype, DTypeError, "reduce (cuda): input ", dtype_name(in.dtype), " vs output ",
           dtype_name(out.dtype));
  if (outer <= 0) return;
  if (in.dtype == DType::f32)
    return reduce_t(op, static_cast<float*>(out.data), static_cast<const float*>(in.data), outer, n);
  if (in.dtype == DType::f64)
    return reduce_t(op, static_cast<double*>(out.data), static_cast<const double*>(in.data), outer, n);
  throw DTypeError(err_msg("reduce (cuda): unsupported dtype ", dtype_name(in.dtype)));
}

void softmax_rows(const StridedView& out, const StridedView& in, int64_t outer, int64_t n, bool log) {
  GS_CHECK(in.dtype == out.dtype, DTypeError, "softmax (cuda): input ", dtype_name(in.dtype), " vs output ",
           dtype_name(out.dtype));
  if (outer <= 0 || n <= 0) return;
  if (in.dtype == DType::f32)
    return softmax_t(static_cast<float*>(out.data), static_cast<const float*>(in.data), outer, n, log);
  if (in.dtype == DType::f64)
    return softmax_t(static_cast<double*>(out.data), static_cast<const double*>(in.data), outer, n, log);
  throw DTypeError(err_msg("softmax (cuda): unsupported dtype ", dtype_name(in.dtype)));
}

}  // namespace gradstyle::cuda
