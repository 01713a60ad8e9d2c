// The process groups (contract in gradstyle/dist/dist.hpp): the local group of one process, and
// the MPI group (with NCCL for CUDA tensors when built with it), plus the collective watchdog.
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>

#include "dist/nccl.hpp"
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/dist/dist.hpp"

#ifdef GRADSTYLE_MPI
// The C API only: OpenMPI's deprecated C++ bindings draw -Wcast-function-type warnings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace gradstyle::dist {

namespace {

class LocalGroup final : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void all_reduce_sum_(Tensor&) override {}
  void broadcast_(Tensor&, int root) override { check_root(root); }
  void broadcast_bytes(std::vector<uint8_t>&, int root) override { check_root(root); }
  Tensor all_gather_rows(const Tensor& in) override { return in.contiguous().clone(); }
  std::vector<int64_t> all_gather_i64(int64_t v) override { return {v}; }
  void barrier() override {}
  void wait_for_root_io() override {}
  [[noreturn]] void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "gradstyle: %s\n", message.c_str());
    std::fflush(stderr);
    std::_Exit(code);
  }

 private:
  static void check_root(int root) {
    GS_CHECK(root == 0, dist::DistError, "broadcast: root ", root, " is not a rank of a group of size 1");
  }
};

ProcessGroup* g_world = nullptr;
ProcessGroup* g_batch_group = nullptr;

LocalGroup& local_group() {
  static LocalGroup g;
  return g;
}

double env_double(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double d = std::strtod(v, &end);
  if (end == v || *end != '\0') {
    std::fprintf(stderr, "gradstyle: %s=%s is not a number; using %g\n", name, v, fallback);
    return fallback;
  }
  return d;
}

#ifdef GRADSTYLE_MPI

// One thread per process watches the collective in flight: when it has waited longer than the
// timeout, it names the rank and the collective and ends this process, which makes mpirun stop
// the job (a dead peer otherwise leaves the survivors blocked forever).
class Watchdog {
 public:
  Watchdog(int rank, double timeout_s) : rank_(rank), timeout_s_(timeout_s) {
    if (timeout_s_ > 0) thread_ = std::thread([this] { run(); });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // limit_scale: this wait may last limit_scale x the timeout (waits on rank 0's file I/O).
  void begin(const char* what, double limit_scale = 1.0) {
    std::lock_guard<std::mutex> lk(m_);
    what_ = what;
    limit_s_ = timeout_s_ * limit_scale;
    since_ = std::chrono::steady_clock::now();
    busy_ = true;
  }
  void end() {
    std::lock_guard<std::mutex> lk(m_);
    busy_ = false;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lk(m_);
    while (!stop_) {
      cv_.wait_for(lk, std::chrono::milliseconds(200));
      if (stop_ || !busy_) continue;
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count();
      if (waited > limit_s_) {
        std::fprintf(stderr,
                     "gradstyle: rank %d: the collective %s has waited %.0f s (limit %g s; GRADSTYLE_COLLECTIVE_TIMEOUT "
                     "= %g s): another rank is stuck or has died; stopping the job (the last checkpoint is kept)\n",
                     rank_, what_, waited, limit_s_, timeout_s_);
        std::fflush(stderr);
        std::_Exit(3);
      }
    }
  }

  int rank_;
  double timeout_s_, limit_s_ = 0;
  std::mutex m_;
  std::condition_variable cv_;
  std::thread thread_;
  bool stop_ = false, busy_ = false;
  const char* what_ = "";
  std::chrono::steady_clock::time_point since_;
};

MPI_Datatype mpi_type(DType t, const char* op) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i64: return MPI_INT64_T;
    case DType::i32: return MPI_INT32_T;
    case DType::u8: return MPI_UINT8_T;
    default: break;
  }
  throw DistError(err_msg(op, ": dtype ", dtype_name(t), " is not supported (float32, float64, int64, int32, uint8)"));
}

// MPI counts are int: large buffers go in chunks of at most 2^30 elements.
constexpr int64_t kChunk = int64_t(1) << 30;

class MpiGroup final : public ProcessGroup {
 public:
  MpiGroup() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
    watchdog_ = std::make_unique<Watchdog>(rank_, collective_timeout());
  }
  // Before MPI_Finalize and while the CUDA runtime is alive (not in a static destructor): the
  // NCCL communicator, then the watchdog thread.
  void shutdown() {
    nccl::destroy(nccl_);
    nccl_ = nullptr;
    watchdog_.reset();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string backend() const override { return nccl::built() ? "mpi+nccl" : "mpi"; }

  void all_reduce_sum_(Tensor& t) override {
    const char* op = "all_reduce_sum";
    check_contiguous(t, op);
    if (t.numel() == 0) return;
    Scope s(*this, op);
    if (t.is_cuda() && nccl::built() && t.dtype() != DType::u8) {
      nccl::all_reduce_sum(comm_for(t), t.raw_data(), size_t(t.numel()), t.dtype(), t.device().index);
      return;
    }
    Tensor h = t.is_cuda() ? t.cpu() : t;
    const MPI_Datatype ty = mpi_type(h.dtype(), op);
    char* p = static_cast<char*>(h.raw_data());
    const size_t es = dtype_size(h.dtype());
    for (int64_t off = 0; off < h.numel(); off += kChunk) {
      const int n = int(std::min(kChunk, h.numel() - off));
      check(MPI_Allreduce(MPI_IN_PLACE, p + size_t(off) * es, n, ty, MPI_SUM, MPI_COMM_WORLD), op);
    }
    if (t.is_cuda()) t.copy_(h);
  }

  void broadcast_(Tensor& t, int root) override {
    const char* op = "broadcast";
    check_contiguous(t, op);
    check_root(root, op);
    if (t.numel() == 0) return;
    Scope s(*this, op);
    if (t.is_cuda() && nccl::built()) {
      nccl::broadcast(comm_for(t), t.raw_data(), t.nbytes(), root, t.device().index);
      return;
    }
    Tensor h = t.is_cuda() ? t.cpu() : t;
    bcast_raw(h.raw_data(), h.nbytes(), root, op);
    if (t.is_cuda()) t.copy_(h);
  }

  void broadcast_bytes(std::vector<uint8_t>& bytes, int root) override {
    const char* op = "broadcast_bytes";
    check_root(root, op);
    Scope s(*this, op, kIoWaitScale);  // the other ranks wait while root reads a checkpoint
    uint64_t n = bytes.size();
    check(MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD), op);
    if (rank_ != root) bytes.resize(size_t(n));
    bcast_raw(bytes.data(), size_t(n), root, op);
  }

  Tensor all_gather_rows(const Tensor& in) override {
    const char* op = "all_gather";
    GS_CHECK(in.dim() >= 1, dist::DistError, op, ": expected at least 1 dim, got a 0-d tensor");
    Tensor x = in.contiguous();
    // Every rank must contribute the same shape and dtype: checked, since a mismatch would read
    // garbage.
    int64_t sig = int64_t(x.dtype()) + 31 * x.dim();
    for (int64_t d = 0; d < x.dim(); ++d) sig = sig * 1000003 + x.size(d);
    const std::vector<int64_t> sigs = all_gather_i64(sig);
    for (int r = 0; r < size_; ++r)
      GS_CHECK(sigs[size_t(r)] == sigs[0], dist::DistError, op, ": rank ", r, " gathers another shape or dtype than rank 0 (",
               shape_str(x.shape()), " here on rank ", rank_, "; every rank must gather the same)");
    Shape out_shape = x.shape();
    out_shape[0] *= size_;
    Tensor out = Tensor::empty(out_shape, {x.dtype(), x.device()});
    if (x.numel() == 0) return out;
    Scope s(*this, op);
    if (x.is_cuda() && nccl::built()) {
      nccl::all_gather(comm_for(x), x.raw_data(), out.raw_data(), x.nbytes(), x.device().index);
      return out;
    }
    Tensor hx = x.is_cuda() ? x.cpu() : x;
    Tensor ho = out.is_cuda() ? Tensor::empty(out_shape, {x.dtype(), Device::cpu()}) : out;
    GS_CHECK(int64_t(hx.nbytes()) < int64_t(INT_MAX), dist::DistError, op, ": ", hx.nbytes(),
             " bytes per rank is more than one MPI call can gather");
    check(MPI_Allgather(hx.raw_data(), int(hx.nbytes()), MPI_BYTE, ho.raw_data(), int(hx.nbytes()), MPI_BYTE,
                        MPI_COMM_WORLD),
          op);
    if (out.is_cuda()) out.copy_(ho);
    return out;
  }

  std::vector<int64_t> all_gather_i64(int64_t v) override {
    Scope s(*this, "all_gather_i64");
    std::vector<int64_t> out(static_cast<size_t>(size_));
    check(MPI_Allgather(&v, 1, MPI_INT64_T, out.data(), 1, MPI_INT64_T, MPI_COMM_WORLD), "all_gather_i64");
    return out;
  }

  void barrier() override {
    Scope s(*this, "barrier");
    check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
  }

  void wait_for_root_io() override {
    Scope s(*this, "wait_for_root_io (rank 0 writing files)", kIoWaitScale);
    check(MPI_Barrier(MPI_COMM_WORLD), "wait_for_root_io");
  }

  [[noreturn]] void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "gradstyle: rank %d: %s\n", rank_, message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 private:
  struct Scope {
    Scope(MpiGroup& g, const char* what, double limit_scale = 1.0) : g_(g) {
      GS_CHECK(g_.watchdog_ != nullptr, dist::DistError, what, ": the process group was shut down (dist::finalize)");
      g_.watchdog_->begin(what, limit_scale);
    }
    ~Scope() { g_.watchdog_->end(); }
    MpiGroup& g_;
  };
  // Waits on rank 0's file I/O (a checkpoint of a 1024 px run is gigabytes) may take this many
  // times the collective timeout.
  static constexpr double kIoWaitScale = 6.0;

  void check(int rc, const char* op) const {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw DistError(err_msg(op, " failed on rank ", rank_, ": ", std::string(text, size_t(len))));
  }
  void check_root(int root, const char* op) const {
    GS_CHECK(root >= 0 && root < size_, dist::DistError, op, ": root ", root, " is not a rank (size ", size_, ")");
  }
  static void check_contiguous(const Tensor& t, const char* op) {
    GS_CHECK(t.defined(), dist::DistError, op, ": undefined tensor");
    GS_CHECK(t.is_contiguous(), dist::DistError, op, ": the tensor must be contiguous (shape ", shape_str(t.shape()), ")");
  }
  void bcast_raw(void* p, size_t n, int root, const char* op) const {
    char* c = static_cast<char*>(p);
    for (size_t off = 0; off < n; off += size_t(kChunk)) {
      const int k = int(std::min<size_t>(size_t(kChunk), n - off));
      check(MPI_Bcast(c + off, k, MPI_BYTE, root, MPI_COMM_WORLD), op);
    }
  }
  // The NCCL communicator, made collectively on first use: rank 0 draws the unique id and
  // broadcasts it over MPI.
  nccl::Comm* comm_for(const Tensor& t) {
    if (nccl_) {
      GS_CHECK(t.device().index == nccl_device_, dist::DistError, "nccl: the communicator was made for cuda:", nccl_device_,
               " but a tensor is on ", t.device().str(), " (one GPU per rank)");
      return nccl_;
    }
    std::vector<uint8_t> id;
    if (rank_ == 0) id = nccl::make_unique_id();
    uint64_t n = id.size();
    check(MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD), "nccl bootstrap");
    id.resize(size_t(n));
    bcast_raw(id.data(), id.size(), 0, "nccl bootstrap");
    nccl_ = nccl::create(id, size_, rank_, t.device().index);
    nccl_device_ = t.device().index;
    return nccl_;
  }

  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::unique_ptr<Watchdog> watchdog_;
  nccl::Comm* nccl_ = nullptr;
  int nccl_device_ = -1;
};

bool g_joined_mpi = false;
#endif  // GRADSTYLE_MPI

}  // namespace

ProcessGroup& world() { return g_world ? *g_world : local_group(); }

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

bool mpi_built() {
#ifdef GRADSTYLE_MPI
  return true;
#else
  return false;
#endif
}

bool nccl_built() { return nccl::built(); }

void init(int* argc, char*** argv) {
  if (!launched_by_mpi() || g_world) return;
#ifdef GRADSTYLE_MPI
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    throw DistError("MPI_Init_thread failed");
  g_joined_mpi = true;
  if (provided < MPI_THREAD_FUNNELED) {
    // Our OpenMP threads never call MPI, but the main thread is not the only thread; an MPI that
    // cannot promise FUNNELED might not tolerate them.
    MPI_Finalize();
    g_joined_mpi = false;
    throw DistError("this MPI provides thread level " + std::to_string(provided) +
                    ", below MPI_THREAD_FUNNELED, which gradstyle needs (OpenMP threads beside MPI)");
  }
  static MpiGroup group;
  g_world = &group;
#else
  (void)argc;
  (void)argv;
  throw DistError(
      "this process was started by an MPI launcher, but gradstyle was built without MPI: each of the N processes "
      "would train alone. Install libopenmpi-dev (tools/setup) and rebuild (meson feature 'mpi').");
#endif
}

void finalize() {
#ifdef GRADSTYLE_MPI
  if (g_joined_mpi) {
    if (auto* g = dynamic_cast<MpiGroup*>(g_world)) g->shutdown();
    g_world = nullptr;  // world() is the local group again
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
    g_joined_mpi = false;
  }
#endif
}

ProcessGroup* batch_group() { return g_batch_group; }
void set_batch_group(ProcessGroup* g) { g_batch_group = g; }

double collective_timeout() { return env_double("GRADSTYLE_COLLECTIVE_TIMEOUT", 600.0); }

void maybe_inject_fault(int rank, int64_t iteration) {
  struct Fault {
    int rank = -1;
    int64_t iteration = -1;
    bool hang = false;
  };
  static const Fault fault = [] {
    Fault f;
    const char* v = std::getenv("GRADSTYLE_FAULT");
    if (!v || !*v) return f;
    int r = -1;
    long long it = -1;
    char mode[16] = {0};
    const int n = std::sscanf(v, "%d:%lld:%15s", &r, &it, mode);
    if (n < 2 || (n == 3 && std::strcmp(mode, "hang") != 0)) {
      std::fprintf(stderr, "gradstyle: GRADSTYLE_FAULT=%s is not RANK:ITER or RANK:ITER:hang; ignored\n", v);
      return f;
    }
    f.rank = r;
    f.iteration = int64_t(it);
    f.hang = n == 3;
    return f;
  }();
  if (fault.rank != rank || fault.iteration != iteration) return;
  std::fprintf(stderr, "gradstyle: rank %d: GRADSTYLE_FAULT: %s at iteration %lld\n", rank,
               fault.hang ? "hanging" : "killing this process", static_cast<long long>(iteration));
  std::fflush(stderr);
  if (!fault.hang) std::raise(SIGKILL);
  for (;;) ::pause();
}

}  // namespace gradstyle::dist
