#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12: false positives from avx512fintrin.h inlined into Eigen (PR 105593)
// CPU convolution kernels: im2col + Eigen GEMM.
//
// The output columns (image, output row, output column) are cut into tiles of whole output rows
// (or of several whole images when an image is small). One work item = one tile of one group;
// items run in an OpenMP region where Eigen's GEMM stays single-threaded (Eigen does not nest
// its own threads inside a parallel region), each thread with its own im2col buffer. Tiles keep
// the im2col buffer bounded (a 512-channel 3x3 conv at 64 px would need 75 MB per image
// otherwise) and give both threads work even at batch 1.
//
//   forward:         col = im2col(x tile);  y_tile = W_g [kg, crs] @ col [crs, cols]
//                    (float32 3x3 stride-1 convs go to Winograd F(2x2,3x3), conv_winograd.cpp,
//                    and so does their data gradient, a flipped-kernel conv of the same kind)
//   backward data:   dcol = W_g^T @ dy_tile; col2im-add into dx. Tiles of one image overlap in
//                    dx by at most one neighbour, so even tiles run first, then odd tiles.
//   backward filter: dW_g += dy_tile @ col^T per thread (static schedule), then a fixed-order
//                    reduction over threads: deterministic for a given thread count.
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "backend/conv_kernels.hpp"
#include "cpu/eigen_setup.hpp"

namespace gradstyle::cpu {

using backend::ConvGeom;
using backend::StridedView;

namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using CMap = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using MMap = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;

// Tile size: columns per GEMM. 1024 columns keeps Eigen's repacking of the weight matrix (once
// per call) a few percent of the GEMM and the im2col buffer at <= 16 MB (bench/ops/bench_conv).
constexpr int64_t kTargetCols = 1024;
constexpr int64_t kColBudgetElems = int64_t(4) << 20;  // im2col buffer cap, in elements
constexpr int64_t kMinCols = 384;                        // narrowest tile made only for balance

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Output rows [oy0, oy1) of images [n0, n1); its columns are ordered (n, oy, ox).
struct Tile {
  int64_t n0, n1, oy0, oy1;
  int parity;  // alternates between neighbouring row tiles of one image (col2im phases)
};

struct Plan {
  int64_t cg, kg, crs;
  std::vector<Tile> tiles;
  int64_t max_cols = 0;
};

int64_t tile_cols(const Tile& t, int64_t ow) { return (t.n1 - t.n0) * (t.oy1 - t.oy0) * ow; }

Plan make_plan(const ConvGeom& g, int64_t min_rows, int nthreads) {
  Plan p;
  p.cg = g.c / g.groups;
  p.kg = g.k / g.groups;
  p.crs = p.cg * g.r * g.s;
  const int64_t per_img = g.oh * g.ow;
  const int64_t total = g.n * per_img;
  int64_t target = std::min(kTargetCols, std::max<int64_t>(64, kColBudgetElems / std::max<int64_t>(p.crs, 1)));
  // Enough items to keep every thread busy (groups multiply the items): a few per thread when
  // the tiles stay >= kMinCols wide, so that dynamic scheduling can even out a thread that the
  // OS preempts (the dev machine is shared) at a small cost in GEMM efficiency.
  const int64_t parts = std::max<int64_t>(1, ceil_div(nthreads, g.groups));
  const int64_t fine = nthreads > 1 ? ceil_div(total, 3 * parts) : total;
  target = std::max<int64_t>(1, std::min(target, std::max(std::min(kMinCols, ceil_div(total, parts)), fine)));
  if (per_img > target) {
    int64_t rows = std::max(min_rows, ceil_div(target, g.ow));
    // Few tiles: make their count a multiple of the thread count so no thread idles at the end.
    int64_t per = ceil_div(g.oh, rows);
    if (g.n * per < 4 * nthreads) {
      for (int64_t more = per; more < per + nthreads; ++more) {
        if ((g.n * more) % nthreads == 0 && ceil_div(g.oh, more) >= min_rows) {
          per = more;
          break;
        }
      }
      rows = std::max(min_rows, ceil_div(g.oh, per));
    }
    for (int64_t n = 0; n < g.n; ++n) {
      int par = 0;
      for (int64_t oy = 0; oy < g.oh; oy += rows, par ^= 1) p.tiles.push_back({n, n + 1, oy, std::min(g.oh, oy + rows), par});
    }
  } else {
    const int64_t imgs = std::max<int64_t>(1, target / std::max<int64_t>(per_img, 1));
    for (int64_t n = 0; n < g.n; n += imgs) p.tiles.push_back({n, std::min(g.n, n + imgs), 0, g.oh, 0});
  }
  for (const Tile& t : p.tiles) p.max_cols = std::max(p.max_cols, tile_cols(t, g.ow));
  return p;
}

// Valid output-column range [lo, hi) for kernel column q: 0 <= ox*sw + off < w, off = q*dw - pw.
inline void col_range(const ConvGeom& g, int64_t off, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : ceil_div(-off, g.stride_w);
  hi = (g.w - 1 - off) < 0 ? 0 : std::min(g.ow, (g.w - 1 - off) / g.stride_w + 1);
  lo = std::min(lo, g.ow);
  if (hi < lo) hi = lo;
}

// col [crs, ncols] <- the receptive fields of the tile's output pixels for group gi.
template <class T>
void im2col(const ConvGeom& g, const Plan& p, const T* x, const Tile& t, int64_t gi, T* col, int64_t ncols) {
  const int64_t rows = t.oy1 - t.oy0;
  for (int64_t n = t.n0; n < t.n1; ++n) {
    const int64_t colbase = (n - t.n0) * rows * g.ow;
    for (int64_t ci = 0; ci < p.cg; ++ci) {
      const T* xc = x + (n * g.c + gi * p.cg + ci) * g.h * g.w;
      for (int64_t kr = 0; kr < g.r; ++kr) {
        for (int64_t ks = 0; ks < g.s; ++ks) {
          T* dst = col + ((ci * g.r + kr) * g.s + ks) * ncols + colbase;
          const int64_t off = ks * g.dil_w - g.pad_w;
          int64_t lo, hi;
          col_range(g, off, lo, hi);
          for (int64_t oy = t.oy0; oy < t.oy1; ++oy, dst += g.ow) {
            const int64_t iy = oy * g.stride_h - g.pad_h + kr * g.dil_h;
            if (iy < 0 || iy >= g.h) {
              std::fill(dst, dst + g.ow, T(0));
              continue;
            }
            const T* src = xc + iy * g.w + off;
            std::fill(dst, dst + lo, T(0));
            if (g.stride_w == 1) {
              std::memcpy(dst + lo, src + lo, size_t(hi - lo) * sizeof(T));
            } else {
              for (int64_t ox = lo; ox < hi; ++ox) dst[ox] = src[ox * g.stride_w];
            }
            std::fill(dst + hi, dst + g.ow, T(0));
          }
        }
      }
    }
  }
}

// dx += col2im(dcol) for the tile's pixels of group gi.
template <class T>
void col2im_add(const ConvGeom& g, const Plan& p, T* dx, const Tile& t, int64_t gi, const T* col, int64_t ncols) {
  const int64_t rows = t.oy1 - t.oy0;
  for (int64_t n = t.n0; n < t.n1; ++n) {
    const int64_t colbase = (n - t.n0) * rows * g.ow;
    for (int64_t ci = 0; ci < p.cg; ++ci) {
      T* xc = dx + (n * g.c + gi * p.cg + ci) * g.h * g.w;
      for (int64_t kr = 0; kr < g.r; ++kr) {
        for (int64_t ks = 0; ks < g.s; ++ks) {
          const T* src = col + ((ci * g.r + kr) * g.s + ks) * ncols + colbase;
          const int64_t off = ks * g.dil_w - g.pad_w;
          int64_t lo, hi;
          col_range(g, off, lo, hi);
          for (int64_t oy = t.oy0; oy < t.oy1; ++oy, src += g.ow) {
            const int64_t iy = oy * g.stride_h - g.pad_h + kr * g.dil_h;
            if (iy < 0 || iy >= g.h) continue;
            T* dst = xc + iy * g.w + off;
            if (g.stride_w == 1) {
              for (int64_t ox = lo; ox < hi; ++ox) dst[ox] += src[ox];
            } else {
              for (int64_t ox = lo; ox < hi; ++ox) dst[ox * g.stride_w] += src[ox];
            }
          }
        }
      }
    }
  }
}

// buf [kg, ncols] <- the tile's columns of the [n, k, oh, ow] tensor t4 for group gi.
template <class T>
void gather_out(const ConvGeom& g, const Plan& p, const T* t4, const Tile& t, int64_t gi, T* buf, int64_t ncols) {
  const int64_t rows = t.oy1 - t.oy0, len = rows * g.ow;
  for (int64_t n = t.n0; n < t.n1; ++n)
    for (int64_t kk = 0; kk < p.kg; ++kk)
      std::memcpy(buf + kk * ncols + (n - t.n0) * len, t4 + ((n * g.k + gi * p.kg + kk) * g.oh + t.oy0) * g.ow,
                  size_t(len) * sizeof(T));
}

// Per-thread scratch that survives across calls (OpenMP keeps its worker threads): a fresh
// multi-MB buffer per call would be page-faulted in every time. Grow-only; slot 0 = im2col
// buffer, 1 = output/gradient tile, 2 = weight-gradient partial sums. At most about
// kColBudgetElems + 2 * (weight size) elements per thread stay allocated.
template <class T>
T* scratch(int slot, int64_t n) {
  thread_local std::unique_ptr<T[]> bufs[3];
  thread_local int64_t caps[3] = {0, 0, 0};
  n = std::max<int64_t>(n, 1);
  if (caps[slot] < n) {
    bufs[slot].reset();
    bufs[slot].reset(new T[size_t(n)]);
    caps[slot] = n;
  }
  return bufs[slot].get();
}

template <class T>
struct Buf {
  T* p;
  Buf(int slot, int64_t n) : p(scratch<T>(slot, n)) {}
  T* get() { return p; }
};

std::atomic<int64_t> g_min_parallel_macs{int64_t(1) << 19};

int64_t conv_macs(const ConvGeom& g) { return g.n * g.k * g.oh * g.ow * (g.c / g.groups) * g.r * g.s; }

// Threads for a kernel call: one per work item at most, and one per kMinParallelMacs of work
// (an OpenMP fork/join costs more than a tiny conv, far more on an oversubscribed machine).
int threads_for(const ConvGeom& g) {
  const int64_t by_work = std::max<int64_t>(1, conv_macs(g) / std::max<int64_t>(1, g_min_parallel_macs.load()));
  return int(std::min<int64_t>(by_work, omp_get_max_threads()));
}
int threads_for(int64_t items, int nt) { return int(std::max<int64_t>(1, std::min<int64_t>(items, nt))); }

template <class T>
void forward_t(const ConvGeom& g, T* y, const T* x, const T* w, const T* bias) {
  const int nt = threads_for(g);
  const Plan p = make_plan(g, 1, nt);
  const int64_t items = int64_t(p.tiles.size()) * g.groups;
#pragma omp parallel num_threads(threads_for(items, nt))
  {
    Buf<T> col(0, p.crs * p.max_cols), tmp(1, p.kg * p.max_cols);
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const Tile& t = p.tiles[size_t(it / g.groups)];
      const int64_t gi = it % g.groups, nc = tile_cols(t, g.ow);
      im2col(g, p, x, t, gi, col.get(), nc);
      CMap<T> A(w + gi * p.kg * p.crs, p.kg, p.crs, Eigen::OuterStride<>(p.crs));
      CMap<T> B(col.get(), p.crs, nc, Eigen::OuterStride<>(nc));
      MMap<T> C(tmp.get(), p.kg, nc, Eigen::OuterStride<>(nc));
      C.noalias() = A * B;
      const int64_t len = (t.oy1 - t.oy0) * g.ow;
      for (int64_t n = t.n0; n < t.n1; ++n) {
        for (int64_t kk = 0; kk < p.kg; ++kk) {
          T* dst = y + ((n * g.k + gi * p.kg + kk) * g.oh + t.oy0) * g.ow;
          const T* src = tmp.get() + kk * nc + (n - t.n0) * len;
          const T b = bias ? bias[gi * p.kg + kk] : T(0);
          for (int64_t i = 0; i < len; ++i) dst[i] = src[i] + b;
        }
      }
    }
  }
}

template <class T>
void backward_data_t(const ConvGeom& g, T* dx, const T* dy, const T* w, const T* bias) {
  // dx starts at the bias (conv_transpose2d) or zero; every tile then adds its contributions.
  const int64_t plane = g.h * g.w;
  const int nt = threads_for(g);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
    const T b = bias ? bias[nc % g.c] : T(0);
    std::fill(dx + nc * plane, dx + (nc + 1) * plane, b);
  }
  // Row tiles j and j+2 of one image must not touch the same dx rows: (rows+1)*sh > (r-1)*dh.
  int64_t min_rows = 1;
  while ((min_rows + 1) * g.stride_h <= (g.r - 1) * g.dil_h) ++min_rows;
  const Plan p = make_plan(g, min_rows, nt);
  const int64_t items = int64_t(p.tiles.size()) * g.groups;
#pragma omp parallel num_threads(threads_for(items, nt))
  {
    Buf<T> col(0, p.crs * p.max_cols), tmp(1, p.kg * p.max_cols);
    for (int phase = 0; phase < 2; ++phase) {
#pragma omp for schedule(dynamic, 1)
      for (int64_t it = 0; it < items; ++it) {
        const Tile& t = p.tiles[size_t(it / g.groups)];
        if (t.parity != phase) continue;
        const int64_t gi = it % g.groups, nc = tile_cols(t, g.ow);
        gather_out(g, p, dy, t, gi, tmp.get(), nc);
        CMap<T> A(w + gi * p.kg * p.crs, p.kg, p.crs, Eigen::OuterStride<>(p.crs));
        CMap<T> B(tmp.get(), p.kg, nc, Eigen::OuterStride<>(nc));
        MMap<T> C(col.get(), p.crs, nc, Eigen::OuterStride<>(nc));
        C.noalias() = A.transpose() * B;
        col2im_add(g, p, dx, t, gi, col.get(), nc);
      }  // implicit barrier: phase 1 starts after every phase-0 tile is done
    }
  }
}

template <class T>
void backward_filter_t(const ConvGeom& g, T* dw, const T* x, const T* dy) {
  const Plan p = make_plan(g, 1, threads_for(g));
  const int64_t items = int64_t(p.tiles.size()) * g.groups;
  const int nt = threads_for(items, threads_for(g));
  const int64_t wsize = g.k * p.crs;  // [k, cg*r*s] is exactly the weight layout
  std::vector<T*> accp(size_t(nt), nullptr);
#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num();
    T* a = tid == 0 ? dw : (accp[size_t(tid)] = scratch<T>(2, wsize));
    std::fill(a, a + wsize, T(0));
    Buf<T> col(0, p.crs * p.max_cols), tmp(1, p.kg * p.max_cols);
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const Tile& t = p.tiles[size_t(it / g.groups)];
      const int64_t gi = it % g.groups, nc = tile_cols(t, g.ow);
      im2col(g, p, x, t, gi, col.get(), nc);
      gather_out(g, p, dy, t, gi, tmp.get(), nc);
      CMap<T> D(tmp.get(), p.kg, nc, Eigen::OuterStride<>(nc));
      CMap<T> B(col.get(), p.crs, nc, Eigen::OuterStride<>(nc));
      MMap<T> W(a + gi * p.kg * p.crs, p.kg, p.crs, Eigen::OuterStride<>(p.crs));
      W.noalias() += D * B.transpose();
    }
  }
  // Fixed-order reduction of the per-thread partial sums into dw (thread 0 wrote dw directly).
  if (nt > 1) {
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < wsize; ++i) {
      T s = dw[i];
      for (int t = 1; t < nt; ++t) s += accp[size_t(t)][i];
      dw[i] = s;
    }
  }
}

template <class T>
const T* ptr(const StridedView& v) {
  return static_cast<const T*>(v.data);
}
template <class T>
T* mptr(const StridedView& v) {
  return static_cast<T*>(v.data);
}

[[noreturn]] void bad_dtype(const char* op, DType t) {
  throw DTypeError(err_msg(op, ": unsupported dtype ", dtype_name(t), " (float32 or float64 expected)"));
}

}  // namespace

int64_t conv_min_parallel_macs() { return g_min_parallel_macs.load(); }
void set_conv_min_parallel_macs(int64_t macs) { g_min_parallel_macs = std::max<int64_t>(1, macs); }

void conv2d_forward(const ConvGeom& g, const StridedView& y, const StridedView& x, const StridedView& w,
                    const StridedView& bias) {
  if (conv_winograd_applies(g, y.dtype)) return conv2d_forward_winograd(g, y, x, w, bias, threads_for(g));
  if (y.dtype == DType::f32)
    return forward_t<float>(g, mptr<float>(y), ptr<float>(x), ptr<float>(w), ptr<float>(bias));
  if (y.dtype == DType::f64)
    return forward_t<double>(g, mptr<double>(y), ptr<double>(x), ptr<double>(w), ptr<double>(bias));
  bad_dtype("conv2d", y.dtype);
}

// The data gradient of a stride-1 3x3 conv is itself a stride-1 3x3 conv of dy with the kernel
// flipped and its in/out channels swapped (per group), padding 2 - pad: Winograd applies too.
static bool backward_data_winograd(const ConvGeom& g, const StridedView& dx, const StridedView& dy, const StridedView& w,
                            const StridedView& bias) {
  if (g.pad_h > 2 || g.pad_w > 2) return false;
  ConvGeom t = g;
  t.c = g.k, t.h = g.oh, t.w = g.ow;
  t.k = g.c, t.oh = g.h, t.ow = g.w;
  t.pad_h = 2 - g.pad_h, t.pad_w = 2 - g.pad_w;
  if (!conv_winograd_applies(t, dx.dtype)) return false;
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups;
  std::unique_ptr<float[]> wt(new float[size_t(g.c * kg * 9)]);  // [c, kg, 3, 3]
  const float* wp = static_cast<const float*>(w.data);
  for (int64_t gi = 0; gi < g.groups; ++gi)
    for (int64_t ci = 0; ci < cg; ++ci)
      for (int64_t kk = 0; kk < kg; ++kk)
        for (int e = 0; e < 9; ++e)
          wt[size_t(((gi * cg + ci) * kg + kk) * 9 + e)] = wp[((gi * kg + kk) * cg + ci) * 9 + (8 - e)];
  StridedView wv = w;
  wv.data = wt.get();
  conv2d_forward_winograd(t, dx, dy, wv, bias, threads_for(g));
  return true;
}

void conv2d_backward_data(const ConvGeom& g, const StridedView& dx, const StridedView& dy, const StridedView& w,
                          const StridedView& bias) {
  if (backward_data_winograd(g, dx, dy, w, bias)) return;
  if (dx.dtype == DType::f32)
    return backward_data_t<float>(g, mptr<float>(dx), ptr<float>(dy), ptr<float>(w), ptr<float>(bias));
  if (dx.dtype == DType::f64)
    return backward_data_t<double>(g, mptr<double>(dx), ptr<double>(dy), ptr<double>(w), ptr<double>(bias));
  bad_dtype("conv2d_backward_data", dx.dtype);
}

void conv2d_backward_filter(const ConvGeom& g, const StridedView& dw, const StridedView& x, const StridedView& dy) {
  if (dw.dtype == DType::f32) return backward_filter_t<float>(g, mptr<float>(dw), ptr<float>(x), ptr<float>(dy));
  if (dw.dtype == DType::f64) return backward_filter_t<double>(g, mptr<double>(dw), ptr<double>(x), ptr<double>(dy));
  bad_dtype("conv2d_backward_filter", dw.dtype);
}

}  // namespace gradstyle::cpu
