// CPU reductions and softmax rows (the softmax family's kernel lives here). Unlike the CUDA kernel, the CPU
// reduce_rows also takes a non-dense input (the op layer's permuted view), which saves the
// transposing copy; see docs/perf.md.
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/kernels.hpp"
#include "cpu/strided_loop.hpp"

namespace gradstyle::cpu {

using backend::ReduceOp;
using backend::StridedView;

namespace {

// One reduction's running state: a sum in double (accurate float32 sums) split over 8 partial
// sums, which breaks the add-latency chain on long rows; or a max/min that propagates NaN.
template <class T>
struct Reducer {
  ReduceOp op;
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  T best;
  bool nan = false;
  explicit Reducer(ReduceOp o)
      : op(o), best(o == ReduceOp::Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity()) {}
  void row(const T* p, int64_t n, int64_t st) {
    if (op == ReduceOp::Sum) {
      int64_t j = 0;
      if (st == 1)
        for (; j + 8 <= n; j += 8)
          for (int u = 0; u < 8; ++u) acc[u] += double(p[j + u]);
      for (; j < n; ++j) acc[0] += double(p[j * st]);
    } else {
      for (int64_t j = 0; j < n; ++j) {
        T v = p[j * st];
        nan = nan || v != v;
        best = op == ReduceOp::Max ? (v > best ? v : best) : (v < best ? v : best);
      }
    }
  }
  T result() const {
    if (op == ReduceOp::Sum) return T(((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
    return nan ? std::numeric_limits<T>::quiet_NaN() : best;
  }
};

template <class T>
void reduce_dense(ReduceOp op, T* out, const T* in, int64_t outer, int64_t n) {
#pragma omp parallel for if (outer * n > kElementwiseParallelGrain) schedule(static)
  for (int64_t r = 0; r < outer; ++r) {
    Reducer<T> red(op);
    red.row(in + r * n, n, 1);
    out[r] = red.result();
  }
}

// A sub-view of v made of dims [d0, d1).
StridedView sub_view(const StridedView& v, int d0, int d1) {
  StridedView s = v;
  s.ndim = d1 - d0;
  s.numel = 1;
  for (int d = d0; d < d1; ++d) {
    s.shape[d - d0] = v.shape[d];
    s.strides[d - d0] = v.strides[d];
    s.numel *= v.shape[d];
  }
  return s;
}

// in: any strides, logically [kept..., reduced...] with prod(kept) = outer, prod(reduced) = n
// (the op layer permutes the reduced dims last without copying). Two schedules:
//  * rows: each output walks its own reduced elements (best when the reduced dims are dense,
//    e.g. sum over (N, H, W) of NCHW: per channel, N rows of H*W contiguous values);
//  * columns: when the kept inner dim is dense and the reduced ones are not (sum over dim 0 of
//    [N, C]), blocks of 256 adjacent outputs accumulate together, one reduced element at a time,
//    so every load is contiguous.
template <class T>
void reduce_strided(ReduceOp op, T* out, const StridedView& in, int64_t outer, int64_t n) {
  int split = in.ndim;
  for (int64_t prod = 1; split > 0 && prod < n;) prod *= in.shape[--split];
  const StridedView kv = sub_view(in, 0, split), rv = sub_view(in, split, in.ndim);
  StridedView ov = kv;  // the dense output, shaped like the kept dims
  for (int64_t d = kv.ndim - 1, st = 1; d >= 0; --d) {
    ov.strides[d] = st;
    st *= kv.shape[d];
  }
  const auto rp = make_strided_plan<1>({&rv});
  const auto kp = make_strided_plan<2>({&kv, &ov});
  const T* base = static_cast<const T*>(in.data);
  const int64_t r_inner = rp.ndim ? rp.strides[0][rp.ndim - 1] : 1;
  const int64_t k_inner = kp.ndim ? kp.strides[0][kp.ndim - 1] : 0;
  const bool parallel = outer * n > kElementwiseParallelGrain;

  if (r_inner == 1 || k_inner != 1) {
    for_each_row(
        kp,
        [&](const int64_t* koff, int64_t cnt, const int64_t* kst) {
          for (int64_t i = 0; i < cnt; ++i) {
            Reducer<T> red(op);
            const T* p = base + koff[0] + i * kst[0];
            auto row = [&](const int64_t* roff, int64_t rc, const int64_t* rst) { red.row(p + roff[0], rc, rst[0]); };
            strided_rows(rp, 0, n, row);
            out[koff[1] + i * kst[1]] = red.result();
          }
        },
        parallel ? std::max<int64_t>(1, kElementwiseParallelGrain / std::max<int64_t>(n, 1)) : outer);
    return;
  }

  constexpr int64_t B = 256;
  const int64_t len = kp.shape[kp.ndim - 1];  // dense kept inner dim
  const int64_t kouter = outer / len, blocks = (len + B - 1) / B;
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t task = 0; task < kouter * blocks; ++task) {
    const int64_t ko = task / blocks, l0 = (task % blocks) * B, bl = std::min(B, len - l0);
    int64_t koff = 0;  // offset of kept-outer index ko (dims before the inner one)
    for (int64_t d = kp.ndim - 2, r = ko; d >= 0; --d) {
      koff += (r % kp.shape[d]) * kp.strides[0][d];
      r /= kp.shape[d];
    }
    const T* p = base + koff + l0;
    double acc[B];
    T best[B];
    bool nan[B];
    for (int64_t b = 0; b < bl; ++b) {
      acc[b] = 0;
      best[b] = op == ReduceOp::Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
      nan[b] = false;
    }
    auto row = [&](const int64_t* roff, int64_t rc, const int64_t* rst) {
      for (int64_t j = 0; j < rc; ++j) {
        const T* q = p + roff[0] + j * rst[0];
        if (op == ReduceOp::Sum) {
          for (int64_t b = 0; b < bl; ++b) acc[b] += double(q[b]);
        } else {
          for (int64_t b = 0; b < bl; ++b) {
            const T v = q[b];
            nan[b] = nan[b] || v != v;
            best[b] = op == ReduceOp::Max ? (v > best[b] ? v : best[b]) : (v < best[b] ? v : best[b]);
          }
        }
      }
    };
    strided_rows(rp, 0, n, row);
    T* o = out + ko * len + l0;
    for (int64_t b = 0; b < bl; ++b)
      o[b] = op == ReduceOp::Sum ? T(acc[b]) : (nan[b] ? std::numeric_limits<T>::quiet_NaN() : best[b]);
  }
}

template <class T>
void reduce_t(ReduceOp op, const StridedView& out, const StridedView& in, int64_t outer, int64_t n) {
  if (in.contiguous) return reduce_dense(op, static_cast<T*>(out.data), static_cast<const T*>(in.data), outer, n);
  reduce_strided(op, static_cast<T*>(out.data), in, outer, n);
}

template <class T>
void softmax_t(T* out, const T* in, int64_t outer, int64_t n, bool log) {
#pragma omp parallel for if (outer * n > (1 << 14)) schedule(static)
  for (int64_t r = 0; r < outer; ++r) {
    const T* x = in + r * n;
    T* y = out + r * n;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
    double s = 0;
    for (int64_t j = 0; j < n; ++j) s += std::exp(double(x[j] - m));
    if (log) {
      T ls = T(std::log(s));
      for (int64_t j = 0; j < n; ++j) y[j] = x[j] - m - ls;
    } else {
      T inv = T(1.0 / s);
      for (int64_t j = 0; j < n; ++j) y[j] = std::exp(x[j] - m) * inv;
    }
  }
}

}  // namespace

void reduce_rows(ReduceOp op, const StridedView& out, const StridedView& in, int64_t outer, int64_t n) {
  if (in.dtype == DType::f32) return reduce_t<float>(op, out, in, outer, n);
  if (in.dtype == DType::f64) return reduce_t<double>(op, out, in, outer, n);
  throw DTypeError(err_msg("reduce: unsupported dtype ", dtype_name(in.dtype)));
}

void softmax_rows(const StridedView& out, const StridedView& in, int64_t outer, int64_t n, bool log) {
  if (in.dtype == DType::f32) return softmax_t(static_cast<float*>(out.data), static_cast<const float*>(in.data), outer, n, log);
  if (in.dtype == DType::f64) return softmax_t(static_cast<double*>(out.data), static_cast<const double*>(in.data), outer, n, log);
  throw DTypeError(err_msg("softmax: unsupported dtype ", dtype_name(in.dtype)));
}

}  // namespace gradstyle::cpu
