// CPU per-channel kernels behind batch_norm and prelu. x is viewed as [N, C, S]; statistics are
// accumulated in double (one pass of shifted sums) so float32 batches of any size and offset keep
// full float32 accuracy. Parallel over channels for reductions and over (n, c) rows for the
// elementwise passes.
#include <algorithm>
#include <limits>

#include "backend/norm_kernels.hpp"

namespace gradstyle::cpu {

using backend::ChannelParams;
using backend::float_dispatch;
using backend::StridedView;

namespace {
constexpr int64_t kGrain = 1 << 15;

template <class T>
const T* cptr(const StridedView& v) {
  return static_cast<const T*>(v.data);
}
}  // namespace

void channel_moments(const StridedView& mean, const StridedView& var, const StridedView& x, const ChannelParams& p) {
  float_dispatch(x.dtype, "batch_norm statistics", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = cptr<T>(x);
    T* m = static_cast<T*>(mean.data);
    T* v = static_cast<T*>(var.data);
    const double count = double(p.n * p.s);
#pragma omp parallel for if (x.numel > kGrain) schedule(static)
    for (int64_t c = 0; c < p.c; ++c) {
      if (p.n * p.s == 0) {
        m[c] = v[c] = std::numeric_limits<T>::quiet_NaN();
        continue;
      }
      // One pass of sums shifted by the channel's first value (the same scheme as the CUDA
      // kernel): in double this keeps float32 data exact to rounding whatever its offset, and the
      // simd reduction lets the compiler vectorise (several partial sums instead of one chain).
      const double shift = double(xp[c * p.s]);
      double s1 = 0, s2 = 0;
      for (int64_t n = 0; n < p.n; ++n) {
        const T* row = xp + (n * p.c + c) * p.s;
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t s = 0; s < p.s; ++s) {
          const double d = double(row[s]) - shift;
          s1 += d;
          s2 += d * d;
        }
      }
      const double d = s1 / count;
      m[c] = T(shift + d);
      v[c] = T(std::max(s2 / count - d * d, 0.0));
    }
  });
}

void channel_grad_sums(const StridedView& sum_g, const StridedView& sum_gx, const StridedView& g, const StridedView& x,
                       const StridedView& center, const ChannelParams& p) {
  float_dispatch(g.dtype, "batch_norm backward", [&](auto tag) {
    using T = decltype(tag);
    const T* gp = cptr<T>(g);
    const T* xp = cptr<T>(x);
    const T* ctr = cptr<T>(center);
    T* sg = static_cast<T*>(sum_g.data);
    T* sgx = static_cast<T*>(sum_gx.data);
#pragma omp parallel for if (g.numel > kGrain) schedule(static)
    for (int64_t c = 0; c < p.c; ++c) {
      const double mu = double(ctr[c]);
      double a = 0, b = 0;
      for (int64_t n = 0; n < p.n; ++n) {
        const int64_t base = (n * p.c + c) * p.s;
#pragma omp simd reduction(+ : a, b)
        for (int64_t s = 0; s < p.s; ++s) {
          const double gv = double(gp[base + s]);
          a += gv;
          b += gv * (double(xp[base + s]) - mu);
        }
      }
      sg[c] = T(a);
      sgx[c] = T(b);
    }
  });
}

void channel_affine(const StridedView& out, const StridedView& x, const StridedView& scale, const StridedView& shift,
                    const ChannelParams& p) {
  float_dispatch(x.dtype, "channel_affine", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = cptr<T>(x);
    const T* sc = cptr<T>(scale);
    const T* sh = cptr<T>(shift);
    T* o = static_cast<T*>(out.data);
#pragma omp parallel for if (x.numel > kGrain) schedule(static)
    for (int64_t r = 0; r < p.n * p.c; ++r) {
      const int64_t c = r % p.c;
      const T a = sc[c], b = sh[c];
      const T* xr = xp + r * p.s;
      T* orow = o + r * p.s;
      for (int64_t s = 0; s < p.s; ++s) orow[s] = xr[s] * a + b;
    }
  });
}

void channel_affine2(const StridedView& out, const StridedView& a, const StridedView& sa, const StridedView& b,
                     const StridedView& sb, const StridedView& shift, const ChannelParams& p) {
  float_dispatch(a.dtype, "channel_affine2", [&](auto tag) {
    using T = decltype(tag);
    const T* ap = cptr<T>(a);
    const T* bp = cptr<T>(b);
    const T* ka = cptr<T>(sa);
    const T* kb = cptr<T>(sb);
    const T* ks = cptr<T>(shift);
    T* o = static_cast<T*>(out.data);
#pragma omp parallel for if (a.numel > kGrain) schedule(static)
    for (int64_t r = 0; r < p.n * p.c; ++r) {
      const int64_t c = r % p.c;
      const T u = ka[c], v = kb[c], w = ks[c];
      const T* ar = ap + r * p.s;
      const T* br = bp + r * p.s;
      T* orow = o + r * p.s;
      for (int64_t s = 0; s < p.s; ++s) orow[s] = ar[s] * u + br[s] * v + w;
    }
  });
}

void prelu_fwd(const StridedView& out, const StridedView& x, const StridedView& w, const ChannelParams& p) {
  float_dispatch(x.dtype, "prelu", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = cptr<T>(x);
    const T* wp = cptr<T>(w);
    const bool shared = w.numel == 1;
    T* o = static_cast<T*>(out.data);
#pragma omp parallel for if (x.numel > kGrain) schedule(static)
    for (int64_t r = 0; r < p.n * p.c; ++r) {
      const T slope = wp[shared ? 0 : r % p.c];
      const T* xr = xp + r * p.s;
      T* orow = o + r * p.s;
      for (int64_t s = 0; s < p.s; ++s) orow[s] = xr[s] > T(0) ? xr[s] : slope * xr[s];
    }
  });
}

}  // namespace gradstyle::cpu
