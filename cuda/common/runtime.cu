// CUDA runtime services of the core (src/backend/cuda_runtime.hpp) and the library context
// (context.hpp): one lazily created non-blocking stream per device, a cuBLAS handle bound to it,
// allocation from the device's stream-ordered memory pool (trimmed and retried once on OOM),
// copies on that stream, the device guard, and the error helpers behind the GS_*_CHECK macros
// (check.hpp).
#include <cublas_v2.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "backend/cuda_runtime.hpp"
#include "check.hpp"
#include "context.hpp"
#include "gradstyle/core/error.hpp"

namespace gradstyle::cuda {

namespace detail {

void throw_cuda_error(cudaError_t err, const char* stmt, const char* file, int line) {
  // Reset the thread's "last error" (no-op for sticky errors) so a caught CudaError is not
  // reported again by the next launch check.
  (void)cudaGetLastError();
  throw CudaError(err_msg("CUDA error ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") in `", stmt,
                          "` at ", file, ":", line));
}

void throw_cublas_error(int status, const char* stmt, const char* file, int line) {
  auto st = static_cast<cublasStatus_t>(status);
  throw CudaError(err_msg("cuBLAS error ", cublasGetStatusName(st), " (", cublasGetStatusString(st), ") in `", stmt,
                          "` at ", file, ":", line));
}

}  // namespace detail

namespace {

constexpr int kMaxDevices = 64;

struct DeviceContext {
  std::atomic<cudaStream_t> stream{nullptr};
  std::atomic<cublasContext*> blas{nullptr};
  std::atomic<int> sms{0};
  bool pooled = true;  // device supports cudaMallocAsync
};

std::mutex g_mutex;  // guards creation only
DeviceContext g_ctx[kMaxDevices];

int visible_devices() {
  // Without a driver (or without a GPU) cudaGetDeviceCount fails with cudaErrorInsufficientDriver
  // / cudaErrorNoDevice: that means "no device", not an error. The count is fixed for the process.
  static const int n = [] {
    int c = 0;
    if (cudaGetDeviceCount(&c) != cudaSuccess) {
      (void)cudaGetLastError();
      c = 0;
    }
    return c;
  }();
  return n;
}

int current_device() {
  int dev = 0;
  GS_CUDA_CHECK(cudaGetDevice(&dev));
  GS_CHECK(dev >= 0 && dev < kMaxDevices, CudaError, "CUDA device ", dev, " is beyond the supported ", kMaxDevices);
  return dev;
}

DeviceContext& context_of(int dev) {
  DeviceContext& c = g_ctx[dev];
  if (c.stream.load(std::memory_order_acquire) != nullptr) return c;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (c.stream.load(std::memory_order_relaxed) != nullptr) return c;
  int pools = 0;
  GS_CUDA_CHECK(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, dev));
  c.pooled = pools != 0;
  if (c.pooled) {
    // Keep freed blocks in the pool instead of returning them to the driver at every
    // synchronisation: training loops re-allocate the same sizes each step.
    cudaMemPool_t pool;
    GS_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
    uint64_t threshold = UINT64_MAX;
    GS_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  }
  int sms = 0;
  GS_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  c.sms.store(sms, std::memory_order_relaxed);
  cudaStream_t s = nullptr;
  GS_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  c.stream.store(s, std::memory_order_release);
  return c;
}

DeviceContext& current_context() { return context_of(current_device()); }

}  // namespace

cudaStream_t stream() { return current_context().stream.load(std::memory_order_acquire); }

cublasContext* cublas() {
  DeviceContext& c = current_context();
  cublasContext* h = c.blas.load(std::memory_order_acquire);
  if (h) return h;
  std::lock_guard<std::mutex> lock(g_mutex);
  h = c.blas.load(std::memory_order_relaxed);
  if (h) return h;
  cublasHandle_t handle = nullptr;
  GS_CUBLAS_CHECK(cublasCreate(&handle));
  GS_CUBLAS_CHECK(cublasSetStream(handle, c.stream.load(std::memory_order_relaxed)));
  c.blas.store(handle, std::memory_order_release);
  return handle;
}

int sm_count() { return current_context().sms.load(std::memory_order_relaxed); }

void trim_memory_pool() {
  const int dev = current_device();
  DeviceContext& c = context_of(dev);
  if (!c.pooled) return;
  // Blocks freed with cudaFreeAsync return to the pool only when the stream reaches the free, and
  // the pool can give back to the driver only blocks that no pending allocation uses: drain the
  // stream first.
  GS_CUDA_CHECK(cudaStreamSynchronize(c.stream.load(std::memory_order_acquire)));
  cudaMemPool_t pool;
  GS_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
  GS_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
}

int device_count() { return visible_devices(); }

DeviceGuard::DeviceGuard(int index) {
  const int n = visible_devices();
  GS_CHECK(index >= 0 && index < n, DeviceError, "device cuda:", index, " is not available: ",
           n == 0 ? std::string("no CUDA device is visible") : std::to_string(n) + " CUDA device(s) visible (cuda:0" +
                                                                   (n > 1 ? "..cuda:" + std::to_string(n - 1) : "") + ")");
  int cur = 0;
  GS_CUDA_CHECK(cudaGetDevice(&cur));
  if (cur == index) return;
  GS_CUDA_CHECK(cudaSetDevice(index));
  prev_ = cur;
}

DeviceGuard::~DeviceGuard() {
  if (prev_ >= 0 && cudaSetDevice(prev_) != cudaSuccess) (void)cudaGetLastError();
}

void* device_alloc(size_t nbytes) {
  DeviceContext& c = current_context();
  auto try_alloc = [&](void** p) {
    return c.pooled ? cudaMallocAsync(p, nbytes, c.stream.load(std::memory_order_acquire)) : cudaMalloc(p, nbytes);
  };
  void* p = nullptr;
  cudaError_t err = try_alloc(&p);
  if (err == cudaErrorMemoryAllocation) {
    // The pool keeps every freed block (release threshold = max), so after a peak the memory may
    // sit in our cache: give it back to the driver and try once more.
    (void)cudaGetLastError();
    trim_memory_pool();
    err = try_alloc(&p);
  }
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky: later calls must not see it
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    throw CudaError(err_msg(err == cudaErrorMemoryAllocation ? "out of GPU memory" : cudaGetErrorName(err),
                            " allocating ", nbytes, " bytes (", free_b >> 20, " MiB free of ", total_b >> 20,
                            " MiB; blocks cached by gradstyle's pool count as used)"));
  }
  return p;
}

void device_free(void* p) noexcept {
  if (p == nullptr) return;
  try {
    DeviceContext& c = current_context();
    cudaError_t err = c.pooled ? cudaFreeAsync(p, c.stream.load(std::memory_order_acquire)) : cudaFree(p);
    // Fails only at process teardown (runtime already unloaded) or after a sticky fault: nothing
    // useful can be done, and a destructor must not throw.
    if (err != cudaSuccess) (void)cudaGetLastError();
  } catch (...) {
  }
}

void memcpy_h2d(void* dst, const void* src, size_t n) {
  if (n == 0) return;
  cudaStream_t s = stream();
  GS_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s));
  // The source is ordinary pageable memory that the caller may free right after we return.
  GS_CUDA_CHECK(cudaStreamSynchronize(s));
}

void memcpy_d2h(void* dst, const void* src, size_t n) {
  if (n == 0) return;
  cudaStream_t s = stream();
  GS_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s));
  GS_CUDA_CHECK(cudaStreamSynchronize(s));  // the host reads dst next
}

void memcpy_d2d(void* dst, const void* src, size_t n) {
  if (n == 0) return;
  GS_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream()));
}

void memcpy_peer(void* dst, int dst_index, const void* src, int src_index, size_t n) {
  if (n == 0) return;
  if (dst_index == src_index) {
    DeviceGuard g(dst_index);
    return memcpy_d2d(dst, src, n);
  }
  {
    // The source may still be written by work queued on its device's stream.
    DeviceGuard g(src_index);
    synchronize();
  }
  DeviceGuard g(dst_index);
  cudaStream_t s = stream();
  GS_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_index, src, src_index, n, s));
  // The source's device knows nothing of this stream: a later free of src there must not race the copy.
  GS_CUDA_CHECK(cudaStreamSynchronize(s));
}

void synchronize() { GS_CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace gradstyle::cuda
