#pragma once
// Internal: the NCCL half of the MPI process group (cuda/dist/nccl.cu). Every call is enqueued on
// the gradstyle stream of `device` and waited for before it returns, so the collective watchdog
// sees a hang where it happens and the host may read the result at once. Never includes CUDA or
// NCCL headers; without NCCL (GRADSTYLE_NCCL undefined) built() is false and the rest throws.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gradstyle/core/dtype.hpp"
#include "gradstyle/dist/dist.hpp"

namespace gradstyle::dist::nccl {

struct Comm;

#ifdef GRADSTYLE_NCCL
constexpr bool built() { return true; }
std::vector<uint8_t> make_unique_id();  // ncclGetUniqueId (rank 0)
Comm* create(const std::vector<uint8_t>& id, int nranks, int rank, int device);
void destroy(Comm* c) noexcept;
void all_reduce_sum(Comm* c, void* buf, size_t count, DType t, int device);
void broadcast(Comm* c, void* buf, size_t nbytes, int root, int device);
void all_gather(Comm* c, const void* in, void* out, size_t nbytes_per_rank, int device);
#else
constexpr bool built() { return false; }
[[noreturn]] inline void unavailable() { throw DistError("this build has no NCCL"); }
inline std::vector<uint8_t> make_unique_id() { unavailable(); }
inline Comm* create(const std::vector<uint8_t>&, int, int, int) { unavailable(); }
inline void destroy(Comm*) noexcept {}
inline void all_reduce_sum(Comm*, void*, size_t, DType, int) { unavailable(); }
inline void broadcast(Comm*, void*, size_t, int, int) { unavailable(); }
inline void all_gather(Comm*, const void*, void*, size_t, int) { unavailable(); }
#endif

}  // namespace gradstyle::dist::nccl
