// CUDA convolution through cuDNN (contracts in src/backend/conv_kernels.hpp).
//
// * The algorithm of each of the three convolutions (forward, backward data, backward filter) is
//   found once per complete key with cudnnFind*AlgorithmEx on the real buffers, and cached in a
//   mutex-protected map. The key holds everything the choice depends on: device, dtype, TF32
//   permission, determinism, all sizes, stride, padding, dilation, groups and the pointers'
//   alignment class. Searches are serialised (one at a time in the process): they time kernels
//   and take up to half the free memory as workspace, so concurrent ones would disturb each other.
// * Determinism (core/settings.hpp, default on): only algorithms that cuDNN reports as
//   CUDNN_DETERMINISTIC are taken, so outputs and gradients repeat bit for bit; when none is
//   usable the direct kernels (deterministic) run. set_deterministic_algorithms(false) lets the
//   fastest algorithm win.
// * float32 uses CUDNN_FMA_MATH (exact fp32, no TF32) unless set_allow_tf32(true).
// * Each call leases a cuDNN handle of its own (handle.hpp): cuDNN forbids concurrent use of one
//   handle by several host threads.
// * Workspace comes from the library's stream-ordered pool (device_alloc / device_free on the
//   library stream), so freeing it right after the enqueued call is safe. A cuDNN call that fails
//   with CUDNN_STATUS_ALLOC_FAILED (its own cudaMalloc) is retried once after trimming the pool.
// * Fallback: geometries cuDNN cannot express (an explicit output size that is not the natural
//   one, sizes beyond int), and configurations for which cuDNN reports no usable algorithm or
//   CUDNN_STATUS_NOT_SUPPORTED, go to the direct kernels of cuda/ops/conv_fallback.cu. The
//   refusal is cached too, so cuDNN is asked once per key.
#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "../common/check.hpp"
#include "../common/context.hpp"
#include "backend/conv_kernels.hpp"
#include "backend/cuda_runtime.hpp"
#include "gradstyle/core/settings.hpp"
#include "handle.hpp"

// The convolution API of cuDNN 9 (cudnn_cnn.h) is marked deprecated in favour of the graph API;
// it is still the documented, supported way to run and autotune a plain convolution.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace gradstyle::cuda {

using backend::ConvGeom;
using backend::StridedView;

namespace {

enum class Kind : int { Fwd = 0, BwdData = 1, BwdFilter = 2 };

struct Key {
  int device, kind, dtype, tf32, det, align;
  int64_t n, c, h, w, k, r, s, oh, ow, sh, sw, ph, pw, dh, dw, groups;
  bool operator<(const Key& o) const {
    auto t = [](const Key& a) {
      return std::tie(a.device, a.kind, a.dtype, a.tf32, a.det, a.align, a.n, a.c, a.h, a.w, a.k, a.r, a.s, a.oh, a.ow, a.sh,
                      a.sw, a.ph, a.pw, a.dh, a.dw, a.groups);
    };
    return t(*this) < t(o);
  }
};

struct Choice {
  bool use_cudnn = false;
  int algo = 0;
  size_t workspace = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;
};

std::mutex g_cache_mutex;
std::map<Key, Choice> g_cache;
std::mutex g_find_mutex;  // one algorithm search at a time

// Largest power of two (<= 256) dividing every pointer: some algorithms need aligned buffers.
int alignment_class(std::initializer_list<const void*> ptrs) {
  uintptr_t bits = 256;
  for (const void* p : ptrs)
    if (p) bits |= reinterpret_cast<uintptr_t>(p);
  return int(bits & (~bits + 1));
}

// RAII descriptors.
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(cudnnDataType_t t, int64_t n, int64_t c, int64_t h, int64_t w) {
    GS_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    GS_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, t, int(n), int(c), int(h), int(w)));
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};
struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc(cudnnDataType_t t, int64_t k, int64_t c, int64_t r, int64_t s) {
    GS_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d));
    GS_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d, t, CUDNN_TENSOR_NCHW, int(k), int(c), int(r), int(s)));
  }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};
struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc(const ConvGeom& g, cudnnDataType_t t, cudnnMathType_t math) {
    GS_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
    GS_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d, int(g.pad_h), int(g.pad_w), int(g.stride_h), int(g.stride_w),
                                                   int(g.dil_h), int(g.dil_w), CUDNN_CROSS_CORRELATION, t));
    GS_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d, int(g.groups)));
    GS_CUDNN_CHECK(cudnnSetConvolutionMathType(d, math));
  }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

// All descriptors of one convolution.
struct Descs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  Descs(const ConvGeom& g, cudnnDataType_t t, cudnnMathType_t math)
      : x(t, g.n, g.c, g.h, g.w), y(t, g.n, g.k, g.oh, g.ow), w(t, g.k, g.c / g.groups, g.r, g.s), conv(g, t, math) {}
};

int64_t natural_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

// cuDNN describes sizes with int and derives the output size itself.
bool expressible(const ConvGeom& g) {
  if (natural_out(g.h, g.r, g.stride_h, g.pad_h, g.dil_h) != g.oh) return false;
  if (natural_out(g.w, g.s, g.stride_w, g.pad_w, g.dil_w) != g.ow) return false;
  for (int64_t v : {g.n * g.c * g.h * g.w, g.n * g.k * g.oh * g.ow, g.k * g.c * g.r * g.s})
    if (v > INT_MAX) return false;
  return true;
}

// Workspace: allocation from the library pool, freed (stream-ordered) at scope exit.
struct Workspace {
  void* p = nullptr;
  size_t n = 0;
  explicit Workspace(size_t bytes) : n(bytes) {
    if (bytes) p = device_alloc(bytes);
  }
  ~Workspace() { device_free(p); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

size_t find_workspace_limit() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    (void)cudaGetLastError();
    return size_t(256) << 20;
  }
  return std::min(size_t(1) << 30, free_b / 2);
}

cudnnDataType_t dtype_of(DType t) {
  GS_CHECK(t == DType::f32 || t == DType::f64, DTypeError, "conv2d (cuda): unsupported dtype ", dtype_name(t));
  return t == DType::f32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

// Runs a cuDNN call; if cuDNN could not allocate memory of its own, gives the pool's cached blocks
// back to the driver and runs it once more (calls here overwrite their output: beta = 0).
template <class F>
cudnnStatus_t retry_on_oom(F call) {
  cudnnStatus_t st = call();
  if (st == CUDNN_STATUS_ALLOC_FAILED) {
    trim_memory_pool();
    st = call();
  }
  return st;
}

// Runs cuDNN's Find for one kind on the real buffers (the output buffer is scratch here) and
// picks the fastest usable algorithm, deterministic ones only when `deterministic`.
template <class Perf, class FindFn>
Choice run_find(FindFn find, bool deterministic) {
  trim_memory_pool();  // once per key: lets the free-memory reading below see the cached blocks
  const size_t limit = find_workspace_limit();
  Perf perf[16];
  int returned = 0;
  cudnnStatus_t st;
  {
    Workspace ws(limit);
    st = retry_on_oom([&] { return find(perf, 16, &returned, ws.p, ws.n); });
  }
  Choice c;
  // cuDNN 9 status codes come in categories: 3000..3999 are the NOT_SUPPORTED family.
  if (int(st) / 1000 == int(CUDNN_STATUS_NOT_SUPPORTED) / 1000) return c;  // -> fallback
  GS_CUDNN_CHECK(st);
  for (int i = 0; i < returned; ++i) {  // sorted fastest first
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > limit) continue;
    if (deterministic && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
    c.use_cudnn = true;
    c.algo = int(perf[i].algo);
    c.workspace = perf[i].memory;
    c.math = perf[i].mathType;
    break;
  }
  return c;
}

Key make_key(Kind kind, const ConvGeom& g, DType dt, std::initializer_list<const void*> ptrs) {
  int dev = 0;
  GS_CUDA_CHECK(cudaGetDevice(&dev));
  return Key{dev,       int(kind), int(dt),   dt == DType::f32 && allow_tf32() ? 1 : 0, deterministic_algorithms() ? 1 : 0,
             alignment_class(ptrs),
             g.n,       g.c,       g.h,       g.w,
             g.k,       g.r,       g.s,       g.oh,
             g.ow,      g.stride_h, g.stride_w, g.pad_h,
             g.pad_w,   g.dil_h,   g.dil_w,   g.groups};
}

// The cached choice for key, computing it with find() on first use.
template <class F>
Choice lookup(const Key& key, F find) {
  auto cached = [&](Choice& out) {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    auto it = g_cache.find(key);
    if (it == g_cache.end()) return false;
    out = it->second;
    return true;
  };
  Choice c;
  if (cached(c)) return c;
  // Searches run one at a time (the cache lock stays free for cached lookups meanwhile); a thread
  // that waited here may find the key already searched by the one before it.
  std::lock_guard<std::mutex> find_lock(g_find_mutex);
  if (cached(c)) return c;
  c = find();
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  return g_cache.emplace(key, c).first->second;
}

cudnnMathType_t requested_math(DType dt) {
  return dt == DType::f32 && allow_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

// alpha/beta are host scalars of the compute type (double for float64 data).
struct Scalars {
  float f1 = 1.f, f0 = 0.f;
  double d1 = 1.0, d0 = 0.0;
  bool dbl;
  explicit Scalars(DType t) : dbl(t == DType::f64) {}
  const void* one() const { return dbl ? static_cast<const void*>(&d1) : static_cast<const void*>(&f1); }
  const void* zero() const { return dbl ? static_cast<const void*>(&d0) : static_cast<const void*>(&f0); }
};

void add_bias(cudnnHandle_t h, DType dt, const StridedView& bias, int64_t channels, const TensorDesc& out,
              void* out_data) {
  TensorDesc bd(dtype_of(dt), 1, channels, 1, 1);
  Scalars sc(dt);
  GS_CUDNN_CHECK(cudnnAddTensor(h, sc.one(), bd.d, bias.data, sc.one(), out.d, out_data));
}

}  // namespace

void conv2d_forward(const ConvGeom& g, const StridedView& y, const StridedView& x, const StridedView& w,
                    const StridedView& bias) {
  const DType dt = y.dtype;
  const cudnnDataType_t t = dtype_of(dt);
  if (!expressible(g)) return fallback::conv2d_forward(g, y, x, w, bias);
  CudnnLease lease;
  cudnnHandle_t h = lease.get();
  const Key key = make_key(Kind::Fwd, g, dt, {y.data, x.data, w.data});
  const bool det = key.det != 0;
  const Choice c = lookup(key, [&] {
    Descs d(g, t, requested_math(dt));
    return run_find<cudnnConvolutionFwdAlgoPerf_t>([&](cudnnConvolutionFwdAlgoPerf_t* perf, int n, int* ret, void* ws,
                                                       size_t wsn) {
      return cudnnFindConvolutionForwardAlgorithmEx(h, d.x.d, x.data, d.w.d, w.data, d.conv.d, d.y.d, y.data, n, ret,
                                                    perf, ws, wsn);
    }, det);
  });
  if (!c.use_cudnn) return fallback::conv2d_forward(g, y, x, w, bias);
  Descs d(g, t, c.math);
  Workspace ws(c.workspace);
  Scalars sc(dt);
  GS_CUDNN_CHECK(retry_on_oom([&] {
    return cudnnConvolutionForward(h, sc.one(), d.x.d, x.data, d.w.d, w.data, d.conv.d,
                                   cudnnConvolutionFwdAlgo_t(c.algo), ws.p, ws.n, sc.zero(), d.y.d, y.data);
  }));
  if (bias.data) add_bias(h, dt, bias, g.k, d.y, y.data);
}

void conv2d_backward_data(const ConvGeom& g, const StridedView& dx, const StridedView& dy, const StridedView& w,
                          const StridedView& bias) {
  const DType dt = dx.dtype;
  const cudnnDataType_t t = dtype_of(dt);
  if (!expressible(g)) return fallback::conv2d_backward_data(g, dx, dy, w, bias);
  CudnnLease lease;
  cudnnHandle_t h = lease.get();
  const Key key = make_key(Kind::BwdData, g, dt, {dx.data, dy.data, w.data});
  const bool det = key.det != 0;
  const Choice c = lookup(key, [&] {
    Descs d(g, t, requested_math(dt));
    return run_find<cudnnConvolutionBwdDataAlgoPerf_t>([&](cudnnConvolutionBwdDataAlgoPerf_t* perf, int n, int* ret,
                                                           void* ws, size_t wsn) {
      return cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w.d, w.data, d.y.d, dy.data, d.conv.d, d.x.d, dx.data,
                                                         n, ret, perf, ws, wsn);
    }, det);
  });
  if (!c.use_cudnn) return fallback::conv2d_backward_data(g, dx, dy, w, bias);
  Descs d(g, t, c.math);
  Workspace ws(c.workspace);
  Scalars sc(dt);
  GS_CUDNN_CHECK(retry_on_oom([&] {
    return cudnnConvolutionBackwardData(h, sc.one(), d.w.d, w.data, d.y.d, dy.data, d.conv.d,
                                        cudnnConvolutionBwdDataAlgo_t(c.algo), ws.p, ws.n, sc.zero(), d.x.d, dx.data);
  }));
  if (bias.data) add_bias(h, dt, bias, g.c, d.x, dx.data);
}

void conv2d_backward_filter(const ConvGeom& g, const StridedView& dw, const StridedView& x, const StridedView& dy) {
  const DType dt = dw.dtype;
  const cudnnDataType_t t = dtype_of(dt);
  if (!expressible(g)) return fallback::conv2d_backward_filter(g, dw, x, dy);
  CudnnLease lease;
  cudnnHandle_t h = lease.get();
  const Key key = make_key(Kind::BwdFilter, g, dt, {dw.data, x.data, dy.data});
  const bool det = key.det != 0;
  const Choice c = lookup(key, [&] {
    Descs d(g, t, requested_math(dt));
    return run_find<cudnnConvolutionBwdFilterAlgoPerf_t>([&](cudnnConvolutionBwdFilterAlgoPerf_t* perf, int n,
                                                             int* ret, void* ws, size_t wsn) {
      return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x.d, x.data, d.y.d, dy.data, d.conv.d, d.w.d, dw.data,
                                                           n, ret, perf, ws, wsn);
    }, det);
  });
  if (!c.use_cudnn) return fallback::conv2d_backward_filter(g, dw, x, dy);
  Descs d(g, t, c.math);
  Workspace ws(c.workspace);
  Scalars sc(dt);
  GS_CUDNN_CHECK(retry_on_oom([&] {
    return cudnnConvolutionBackwardFilter(h, sc.one(), d.x.d, x.data, d.y.d, dy.data, d.conv.d,
                                          cudnnConvolutionBwdFilterAlgo_t(c.algo), ws.p, ws.n, sc.zero(), d.w.d,
                                          dw.data);
  }));
}

}  // namespace gradstyle::cuda
