// CPU perspective warp: forward (bilinear sampling on the homography grid, zeros outside) and the
// deterministic gather backward. All per-element math comes from backend/perspective_warp_kernels.hpp,
// shared with CUDA, so both devices produce the same bits.
//
// Forward: per (level, sample) the taps (offsets and weights) of every output pixel are computed
// once (they do not depend on the channel), then channels run in parallel over that table.
// Backward: per (level, sample) a table lists, for every input pixel, the output pixels of its
// gather box (row-major) whose sample uses it as a tap, with their weights; channels then run in
// parallel over that table.
#include <algorithm>
#include <vector>

#include "backend/perspective_warp_kernels.hpp"

namespace gradstyle::cpu {

using backend::StridedView;
using backend::WarpLevels;

namespace {

constexpr int64_t kParallelWork = 1 << 15;

// The (level, sample) pairs of one call, with the offset of each pair's table.
struct Pairs {
  std::vector<int> level;
  std::vector<int64_t> sample, first, planes;  // planes: B*C prefix over pairs (work items)
  int64_t elements = 0;                        // sum of B*C*H*W over the levels
};
Pairs make_pairs(const WarpLevels& lv, int64_t B) {
  Pairs r;
  int64_t first = 0, planes = 0;
  for (int l = 0; l < lv.n; ++l)
    for (int64_t b = 0; b < B; ++b) {
      r.level.push_back(l);
      r.sample.push_back(b);
      r.first.push_back(first);
      r.planes.push_back(planes);
      first += lv.H[l] * lv.W[l];
      planes += lv.C[l];
      r.elements += lv.C[l] * lv.H[l] * lv.W[l];
    }
  r.first.push_back(first);
  r.planes.push_back(planes);
  return r;
}

// Two parallel regions per call (tables, then planes), whatever the number of levels and samples:
// an OpenMP barrier per (level, sample) costs more than these small maps under load.
template <class T>
void forward_t(const WarpLevels& lv, const double* hom, int64_t B) {
  const Pairs pr = make_pairs(lv, B);
  const int64_t npairs = int64_t(pr.level.size()), ntaps = pr.first.back(), nplanes = pr.planes.back();
  std::vector<backend::WarpTaps<T>> taps(static_cast<size_t>(ntaps));
#pragma omp parallel for schedule(static) if (ntaps > 4096)
  for (int64_t i = 0; i < npairs; ++i) {
    const int l = pr.level[size_t(i)];
    const int64_t W = lv.W[l], Hh = lv.H[l];
    const double* h = hom + 9 * pr.sample[size_t(i)];
    for (int64_t p = 0; p < W * Hh; ++p)
      taps[size_t(pr.first[size_t(i)] + p)] = backend::warp_taps<T>(backend::warp_tap(h, p % W, p / W, W, Hh), W, Hh);
  }
#pragma omp parallel for schedule(static) if (pr.elements > kParallelWork)
  for (int64_t q = 0; q < nplanes; ++q) {  // q: one (level, sample, channel) plane
    const int64_t i = int64_t(std::upper_bound(pr.planes.begin(), pr.planes.end(), q) - pr.planes.begin()) - 1;
    const int l = pr.level[size_t(i)];
    const int64_t C = lv.C[l], P = lv.H[l] * lv.W[l], b = pr.sample[size_t(i)], c = q - pr.planes[size_t(i)];
    const T* plane = static_cast<const T*>(lv.src[l]) + (b * C + c) * P;
    T* out = static_cast<T*>(lv.dst[l]) + (b * C + c) * P;
    const backend::WarpTaps<T>* tp = taps.data() + pr.first[size_t(i)];
    for (int64_t p = 0; p < P; ++p) out[p] = backend::warp_apply(plane, tp[p]);
  }
}

template <class T>
void backward_t(const WarpLevels& lv, const double* hom, const double* hinv, int64_t B) {
  const Pairs pr = make_pairs(lv, B);
  const int64_t npairs = int64_t(pr.level.size()), npix = pr.first.back(), nplanes = pr.planes.back();
  // per input pixel (all pairs, flattened): its contributing output pixels idx and weights, in
  // row-major order of its gather box (the order the CUDA kernel uses); per-pair lists, then merged
  std::vector<std::vector<int64_t>> idx(static_cast<size_t>(npairs)), cnt(static_cast<size_t>(npairs));
  std::vector<std::vector<T>> wts(static_cast<size_t>(npairs));
#pragma omp parallel for schedule(dynamic, 1) if (npix > 1024)
  for (int64_t i = 0; i < npairs; ++i) {
    const int l = pr.level[size_t(i)];
    const int64_t W = lv.W[l], Hh = lv.H[l];
    const double* h = hom + 9 * pr.sample[size_t(i)];
    const double* hi = hinv + 9 * pr.sample[size_t(i)];
    for (int64_t p = 0; p < W * Hh; ++p) {
      const int64_t X = p % W, Y = p / W;
      int64_t ox0, ox1, oy0, oy1, n = 0;
      backend::warp_gather_box(hi, X, Y, W, Hh, ox0, ox1, oy0, oy1);
      for (int64_t oy = oy0; oy <= oy1; ++oy)
        for (int64_t ox = ox0; ox <= ox1; ++ox) {
          const double w = backend::warp_weight_on(h, ox, oy, X, Y, W, Hh);
          if (w != 0.0) {
            idx[size_t(i)].push_back(oy * W + ox);
            wts[size_t(i)].push_back(T(w));
            ++n;
          }
        }
      cnt[size_t(i)].push_back(n);
    }
  }
  std::vector<int64_t> start(static_cast<size_t>(npix + 1), 0), all_idx;
  std::vector<T> all_w;
  for (int64_t i = 0, p = 0; i < npairs; ++i) {
    for (int64_t n : cnt[size_t(i)]) {
      start[size_t(p + 1)] = start[size_t(p)] + n;
      ++p;
    }
    all_idx.insert(all_idx.end(), idx[size_t(i)].begin(), idx[size_t(i)].end());
    all_w.insert(all_w.end(), wts[size_t(i)].begin(), wts[size_t(i)].end());
  }
#pragma omp parallel for schedule(static) if (pr.elements > kParallelWork)
  for (int64_t q = 0; q < nplanes; ++q) {
    const int64_t i = int64_t(std::upper_bound(pr.planes.begin(), pr.planes.end(), q) - pr.planes.begin()) - 1;
    const int l = pr.level[size_t(i)];
    const int64_t C = lv.C[l], P = lv.H[l] * lv.W[l], b = pr.sample[size_t(i)], c = q - pr.planes[size_t(i)];
    const T* g = static_cast<const T*>(lv.src[l]) + (b * C + c) * P;
    T* d = static_cast<T*>(lv.dst[l]) + (b * C + c) * P;
    const int64_t* st = start.data() + pr.first[size_t(i)];
    for (int64_t p = 0; p < P; ++p) {
      T a = T(0);
      for (int64_t k = st[p]; k < st[p + 1]; ++k) a = backend::warp_fma(all_w[size_t(k)], g[all_idx[size_t(k)]], a);
      d[p] = a;
    }
  }
}

}  // namespace

void perspective_warp_forward(const WarpLevels& lv, const StridedView& hom, int64_t batch, DType dt) {
  const double* h = static_cast<const double*>(hom.data);
  if (dt == DType::f32) return forward_t<float>(lv, h, batch);
  if (dt == DType::f64) return forward_t<double>(lv, h, batch);
  throw DTypeError(err_msg("perspective_warp: unsupported dtype ", dtype_name(dt)));
}

void perspective_warp_backward(const WarpLevels& lv, const StridedView& hom, const StridedView& hinv, int64_t batch,
                               DType dt) {
  const double* h = static_cast<const double*>(hom.data);
  const double* hi = static_cast<const double*>(hinv.data);
  if (dt == DType::f32) return backward_t<float>(lv, h, hi, batch);
  if (dt == DType::f64) return backward_t<double>(lv, h, hi, batch);
  throw DTypeError(err_msg("perspective_warp: unsupported dtype ", dtype_name(dt)));
}

}  // namespace gradstyle::cpu
