#pragma once
// Data-parallel training: the process group, collectives, and the batch group that makes the
// batch-coupled layers see the global batch.
//
//   mpirun -np 4 gradstyle train --exp_dir E --config cfg.json
//
// Every rank runs the same program on its own shard of each global batch (the ranks' batches
// concatenated in rank order form the global batch of size N * b). Per step:
//   * every loss term is a mean over the global batch (a rank's mean term is scaled by 1/N) or a
//     sum over it, so the gradient of the global loss is the SUM over ranks of the local ones:
//     all_reduce_gradients() adds them, in buckets, after backward;
//   * BatchNorm in training and StyleGAN2's minibatch standard deviation are the only layers that
//     couple samples; with a batch group set they compute their statistics over the global batch
//     through the differentiable collectives below, so N ranks x batch b compute what one process
//     computes with batch N * b (up to the order of float additions).
//
// Backends: "local" (one process, every collective the identity), "mpi" (MPI_Allreduce on host
// memory; CUDA tensors are staged through the host) and, when built with NCCL and the tensors are
// on a GPU, NCCL on the library stream for the gradient and batch-statistic reductions (the
// communicator is bootstrapped by an MPI broadcast of ncclUniqueId).
//
// Failure: every collective runs under a watchdog. A collective that has not finished after the
// timeout (GRADSTYLE_COLLECTIVE_TIMEOUT seconds, default 600; waits on rank 0's file I/O get 6x)
// prints which rank waited on what and ends that process with status 3 (_Exit from the watchdog
// thread: MPI may not be called from it under MPI_THREAD_FUNNELED), after which mpirun stops the
// job; a rank that dies is reported by mpirun with its rank number and the others are stopped by
// it. An error on one rank calls MPI_Abort. Checkpoints are written by rank 0 only, crash-safe
// (temp file + rename), so the last one stays intact.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gradstyle/core/error.hpp"
#include "gradstyle/core/tensor.hpp"

namespace gradstyle::dist {

// A collective that failed or timed out, or a process group used wrongly.
class DistError : public Error {
  using Error::Error;
};

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;  // rank among the processes of this node
  virtual int local_size() const = 0;
  virtual std::string backend() const = 0;  // "local", "mpi", "mpi+nccl"

  // In place on every rank: t = sum over ranks of t. Same shape and dtype on every rank;
  // float32, float64 or int64; CPU or CUDA; contiguous.
  virtual void all_reduce_sum_(Tensor& t) = 0;
  // In place: t = root's t (same shape and dtype on every rank).
  virtual void broadcast_(Tensor& t, int root) = 0;
  // bytes = root's bytes (resized on the other ranks).
  virtual void broadcast_bytes(std::vector<uint8_t>& bytes, int root) = 0;
  // out = the ranks' `in` concatenated along dim 0 in rank order (every rank the same shape).
  virtual Tensor all_gather_rows(const Tensor& in) = 0;
  // The given values of every rank, in rank order (for checks and logs).
  virtual std::vector<int64_t> all_gather_i64(int64_t v) = 0;
  virtual void barrier() = 0;
  // A barrier while rank 0 writes or reads files (checkpoints, images): the watchdog allows it
  // 6x the collective timeout.
  virtual void wait_for_root_io() = 0;
  // Prints "gradstyle: rank R: <message>" and stops every rank (exit status `code`).
  [[noreturn]] virtual void abort(const std::string& message, int code = 1) = 0;
};

// The process group of this process: a local group of size 1 unless init() joined an MPI job.
ProcessGroup& world();

// True when this process was started by an MPI launcher (mpirun / srun set OMPI_COMM_WORLD_SIZE,
// PMI_SIZE or PMIX_RANK), whether or not this build has MPI.
bool launched_by_mpi();
// True when the library was built with MPI (meson feature `mpi`), and with NCCL.
bool mpi_built();
bool nccl_built();
// Joins the MPI job when launched by mpirun (MPI_Init_thread, FUNNELED); does nothing otherwise.
// Throws DistError when launched by mpirun but built without MPI (N copies would each train alone).
void init(int* argc, char*** argv);
// When init() joined a job: destroys the NCCL communicator, stops the watchdog and calls
// MPI_Finalize; world() is the local group afterwards. Call it before exit (not from a static
// destructor: the CUDA runtime may be gone by then).
void finalize();

// The group over which batch-coupled layers compute batch statistics (null: the local batch).
ProcessGroup* batch_group();
void set_batch_group(ProcessGroup* g);
class BatchGroupGuard {
 public:
  explicit BatchGroupGuard(ProcessGroup* g) : prev_(batch_group()) { set_batch_group(g); }
  ~BatchGroupGuard() { set_batch_group(prev_); }
  BatchGroupGuard(const BatchGroupGuard&) = delete;
  BatchGroupGuard& operator=(const BatchGroupGuard&) = delete;

 private:
  ProcessGroup* prev_;
};

// ---- differentiable collectives (every rank must call them in the same order) -------------
// y = sum over ranks of x; backward: the gradient summed over ranks. Differentiable to any order.
Tensor all_reduce_sum(const Tensor& x, ProcessGroup& pg);
// [b, ...] on each rank -> [N * b, ...] (rank order); backward: this rank's rows of the gradient
// summed over ranks. Differentiable to any order.
Tensor all_gather(const Tensor& x, ProcessGroup& pg);

// BatchNorm whose training statistics are those of the global batch: mean and biased variance
// from all-reduced per-channel sums (two passes), the running statistics updated with the global
// unbiased variance. Evaluation, or a group of size 1, is plain batch_norm. Same contract as
// gradstyle::batch_norm otherwise.
Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum, double eps, ProcessGroup& pg);

// ---- gradients and replicas ---------------------------------------------------------------
struct ReduceStats {
  int64_t tensors = 0, elements = 0, buckets = 0;
  double seconds = 0;  // wall time inside this call (packing, collectives, unpacking)
};
// Sums the .grad of `params` over ranks, packed into buckets of at most bucket_bytes (one
// collective per bucket and dtype). Parameters without a .grad are skipped; every rank must have
// the same set (checked: DistError naming the first rank that differs).
ReduceStats all_reduce_gradients(const std::vector<std::pair<std::string, Tensor>>& params, ProcessGroup& pg,
                                 size_t bucket_bytes = size_t(25) << 20);
// Throws DistError when the tensors' bytes differ between ranks (a replica drifted, or a frozen
// network or data set differs between nodes), naming `what` and the first rank that differs.
void check_replicas_equal(const std::vector<std::pair<std::string, Tensor>>& tensors, ProcessGroup& pg,
                          const std::string& what);
// The same for a string (a data set's file list, a configuration).
void check_same_text(const std::string& text, ProcessGroup& pg, const std::string& what);
// Sums doubles over ranks (host values: loss terms for the log).
std::vector<double> all_reduce_sum(const std::vector<double>& values, ProcessGroup& pg);
// In place: every value of `terms` (the same keys on every rank) summed over ranks.
void all_reduce_sum(std::map<std::string, double>& terms, ProcessGroup& pg);
// root's bytes of serialize() on every rank, handed to deserialize(bytes, name) on the others:
// how a trainer's whole state reaches every rank (no-op for a group of one).
void broadcast_state(ProcessGroup& pg, int root, const std::function<std::vector<uint8_t>()>& serialize,
                     const std::function<void(const std::vector<uint8_t>&, const std::string&)>& deserialize);

// ---- the watchdog ----------------------------------------------------------------------------
// Seconds a collective may wait before the job is aborted (GRADSTYLE_COLLECTIVE_TIMEOUT, default
// 600; <= 0 turns the watchdog off).
double collective_timeout();

// Testing hook: GRADSTYLE_FAULT="RANK:ITER" makes rank RANK kill itself (SIGKILL) as it starts
// training iteration ITER (1-based); "RANK:ITER:hang" makes it stop there forever, alive (what
// the collective timeout is for). `gradstyle train` calls it before every step.
void maybe_inject_fault(int rank, int64_t iteration);

}  // namespace gradstyle::dist
