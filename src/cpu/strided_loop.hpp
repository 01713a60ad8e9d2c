#pragma once
// Internal (CPU): a row-wise walk over N strided views of one logical shape, used by the
// elementwise kernels instead of computing offset_of() per element.
//
//   1. coalesce: size-1 dims are dropped and adjacent dims merge when every operand is dense
//      across them (outer stride == inner stride * inner size). A dense tensor becomes one row;
//      [8,512,64,64] + [1,512,1,1] becomes [8,512,4096] rows with the bias stride 0 inside a row.
//   2. walk: the innermost (coalesced) dim is handed to a row function with fixed strides; the
//      outer offsets are advanced with an odometer (no divisions per row).
//   3. parallel: the flat index range is split evenly across OpenMP threads (chunks may start
//      and end mid-row), so a single long row is parallel too.
//
// A row function is called as fn(const int64_t* off, int64_t count, const int64_t* stride),
// with off[k] / stride[k] in elements of operand k. It specialises its inner loop on the common
// stride patterns (all 1, a broadcast 0) so that the compiler vectorises them.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <array>

#include "backend/view.hpp"

namespace gradstyle::cpu {

// Below this many elements one thread is faster than waking the team.
constexpr int64_t kElementwiseParallelGrain = 1 << 15;

template <int N>
struct StridedPlan {
  int ndim = 0;  // coalesced dims (outer first); 0 = a single element
  int64_t shape[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};
  int64_t numel = 1;
};

// views[0] defines the shape; all views must have that shape (broadcast views already do).
template <int N>
StridedPlan<N> make_strided_plan(const std::array<const backend::StridedView*, N>& v) {
  StridedPlan<N> p;
  p.numel = v[0]->numel;
  for (int d = 0; d < v[0]->ndim; ++d) {
    const int64_t s = v[0]->shape[d];
    if (s == 1) continue;
    if (p.ndim > 0) {
      const int q = p.ndim - 1;
      bool merge = true;
      for (int k = 0; k < N; ++k) merge = merge && p.strides[k][q] == v[k]->strides[d] * s;
      if (merge) {
        p.shape[q] *= s;
        for (int k = 0; k < N; ++k) p.strides[k][q] = v[k]->strides[d];
        continue;
      }
    }
    p.shape[p.ndim] = s;
    for (int k = 0; k < N; ++k) p.strides[k][p.ndim] = v[k]->strides[d];
    ++p.ndim;
  }
  return p;
}

// Runs fn over the flat range [begin, end) of the plan, one (partial) row at a time.
template <int N, class RowFn>
void strided_rows(const StridedPlan<N>& p, int64_t begin, int64_t end, RowFn& fn) {
  if (begin >= end) return;
  if (p.ndim == 0) {  // one element
    const int64_t off[N] = {}, st[N] = {};
    fn(off, int64_t(1), st);
    return;
  }
  const int in = p.ndim - 1;
  const int64_t inner = p.shape[in];
  int64_t st[N];
  for (int k = 0; k < N; ++k) st[k] = p.strides[k][in];
  int64_t row = begin / inner, col = begin - row * inner;
  // odometer over the outer dims, and the offsets of the current row start
  int64_t idx[kMaxDims] = {};
  int64_t off[N] = {};
  for (int d = in - 1; d >= 0; --d) {
    idx[d] = row % p.shape[d];
    row /= p.shape[d];
    for (int k = 0; k < N; ++k) off[k] += idx[d] * p.strides[k][d];
  }
  while (true) {
    const int64_t cnt = std::min(inner - col, end - begin);
    int64_t o[N];
    for (int k = 0; k < N; ++k) o[k] = off[k] + col * st[k];
    fn(static_cast<const int64_t*>(o), cnt, static_cast<const int64_t*>(st));
    begin += cnt;
    if (begin >= end) return;
    col = 0;
    for (int d = in - 1; d >= 0; --d) {
      if (++idx[d] < p.shape[d]) {
        for (int k = 0; k < N; ++k) off[k] += p.strides[k][d];
        break;
      }
      for (int k = 0; k < N; ++k) off[k] -= (p.shape[d] - 1) * p.strides[k][d];
      idx[d] = 0;
    }
  }
}

// The whole plan, split across OpenMP threads when it is large enough.
template <int N, class RowFn>
void for_each_row(const StridedPlan<N>& p, RowFn fn, int64_t grain = kElementwiseParallelGrain) {
  const int64_t n = p.numel;
  if (n <= grain || omp_get_max_threads() == 1 || omp_in_parallel()) {
    strided_rows(p, 0, n, fn);
    return;
  }
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = (n + nt - 1) / nt;
    const int64_t b = std::min(n, t * chunk), e = std::min(n, b + chunk);
    strided_rows(p, b, e, fn);
  }
}

}  // namespace gradstyle::cpu
