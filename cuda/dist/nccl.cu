// NCCL collectives for the MPI process group (interface in src/dist/nccl.hpp): one communicator
// per process (one GPU per rank), bootstrapped by an MPI broadcast of the unique id, every call on
// the gradstyle stream of the rank's device and synchronised before returning.
// Compiled only when meson found NCCL (cuda/meson.build), so the interface is the NCCL one.
#define GRADSTYLE_NCCL 1
#include <nccl.h>

#include <cstring>
#include <string>

#include "../common/context.hpp"
#include "dist/nccl.hpp"
#include "backend/cuda_runtime.hpp"

namespace gradstyle::dist::nccl {

struct Comm {
  ncclComm_t comm = nullptr;
};

namespace {

void check(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return;
  throw DistError(std::string("nccl: ") + what + " failed: " + ncclGetErrorString(r));
}

void check_cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  throw DistError(std::string("nccl: ") + what + ": " + cudaGetErrorString(e));
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::f16: return ncclFloat16;
    case DType::bf16: return ncclBfloat16;
    case DType::i64: return ncclInt64;
    case DType::i32: return ncclInt32;
    case DType::u8: return ncclUint8;
    default: break;
  }
  throw DistError(std::string("nccl: dtype ") + dtype_name(t) + " is not supported");
}

void finish(int device, const char* what) {
  check_cuda(cudaStreamSynchronize(gradstyle::cuda::stream()), what);
  (void)device;
}

}  // namespace

std::vector<uint8_t> make_unique_id() {
  ncclUniqueId id;
  check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  std::vector<uint8_t> out(sizeof(id));
  std::memcpy(out.data(), &id, sizeof(id));
  return out;
}

Comm* create(const std::vector<uint8_t>& id, int nranks, int rank, int device) {
  ncclUniqueId uid;
  if (id.size() != sizeof(uid)) throw DistError("nccl: the broadcast unique id has the wrong size");
  std::memcpy(&uid, id.data(), sizeof(uid));
  gradstyle::cuda::DeviceGuard guard(device);
  auto* c = new Comm;
  const ncclResult_t r = ncclCommInitRank(&c->comm, nranks, uid, rank);
  if (r != ncclSuccess) {
    delete c;
    check(r, "ncclCommInitRank");
  }
  return c;
}

void destroy(Comm* c) noexcept {
  if (!c) return;
  if (c->comm) ncclCommDestroy(c->comm);
  delete c;
}

void all_reduce_sum(Comm* c, void* buf, size_t count, DType t, int device) {
  gradstyle::cuda::DeviceGuard guard(device);
  check(ncclAllReduce(buf, buf, count, nccl_type(t), ncclSum, c->comm, gradstyle::cuda::stream()), "ncclAllReduce");
  finish(device, "ncclAllReduce");
}

void broadcast(Comm* c, void* buf, size_t nbytes, int root, int device) {
  gradstyle::cuda::DeviceGuard guard(device);
  check(ncclBroadcast(buf, buf, nbytes, ncclUint8, root, c->comm, gradstyle::cuda::stream()), "ncclBroadcast");
  finish(device, "ncclBroadcast");
}

void all_gather(Comm* c, const void* in, void* out, size_t nbytes_per_rank, int device) {
  gradstyle::cuda::DeviceGuard guard(device);
  check(ncclAllGather(in, out, nbytes_per_rank, ncclUint8, c->comm, gradstyle::cuda::stream()), "ncclAllGather");
  finish(device, "ncclAllGather");
}

}  // namespace gradstyle::dist::nccl
