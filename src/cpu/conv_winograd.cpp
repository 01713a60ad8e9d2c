#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12: false positives from avx512fintrin.h inlined into Eigen (PR 105593)
// CPU 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016).
//
// Each 2x2 output tile needs 16 multiplies per (input channel, output channel) instead of 36: the
// 4x4 input patch d and the 3x3 kernel g are transformed (V = B^T d B, U = G g G^T), multiplied
// elementwise, and transformed back (Y = A^T (U . V) A). Summed over input channels, the 16
// elementwise products become 16 GEMMs  M_xi [kg, tiles] = U_xi [kg, cg] @ V_xi [cg, tiles],
// so the heavy part runs in Eigen's GEMM with 2.25x fewer multiply-adds than im2col + GEMM.
//
// Work items are (image, group, block of tiles); each thread transforms its block's input
// patches, runs the 16 GEMMs and writes the 2x2 outputs. float32 only (the float64 path stays on
// im2col, the oracle for gradient checks); the transforms use only the exact constants 0, +-1 and
// 1/2, so the error stays at a few float32 ulps of the GEMM sums (tests/ops/test_conv.cpp).
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <memory>

#include "backend/conv_kernels.hpp"
#include "cpu/eigen_setup.hpp"

namespace gradstyle::cpu {

using backend::ConvGeom;
using backend::StridedView;

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using MMap = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;

std::atomic<bool> g_enabled{true};

constexpr int64_t kTilesPerBlock = 512;  // GEMM width; V and M blocks are 16*cg*256 floats

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grow-only per-thread scratch (see conv.cpp).
float* scratch(int slot, int64_t n) {
  thread_local std::unique_ptr<float[]> bufs[3];
  thread_local int64_t caps[3] = {0, 0, 0};
  n = std::max<int64_t>(n, 1);
  if (caps[slot] < n) {
    bufs[slot].reset();
    bufs[slot].reset(new float[size_t(n)]);
    caps[slot] = n;
  }
  return bufs[slot].get();
}

// U [16, k, cg] = G g G^T for every (k, ci), G = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]].
// Done in blocks of kernels with the kernel index innermost, so the arithmetic vectorises and
// each of the 16 outputs is written contiguously.
void transform_weights(const ConvGeom& g, const float* w, float* U, int nthreads) {
  const int64_t cg = g.c / g.groups, kc = g.k * cg;
  constexpr int64_t kB = 64;
  const int64_t nblocks = ceil_div(kc, kB);
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && kc > 4096)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t i0 = blk * kB, nb = std::min(kB, kc - i0);
    float in[9][kB], t[4][3][kB];
    for (int64_t ii = 0; ii < nb; ++ii)
      for (int e = 0; e < 9; ++e) in[e][ii] = w[(i0 + ii) * 9 + e];
    for (int j = 0; j < 3; ++j)  // G g: rows 0..3 of column j
      for (int64_t ii = 0; ii < nb; ++ii) {
        const float a = in[j][ii], b = in[3 + j][ii], c = in[6 + j][ii];
        t[0][j][ii] = a;
        t[1][j][ii] = 0.5f * (a + b + c);
        t[2][j][ii] = 0.5f * (a - b + c);
        t[3][j][ii] = c;
      }
    for (int r = 0; r < 4; ++r) {  // (G g) G^T
      float* u0 = U + (r * 4 + 0) * kc + i0;
      float* u1 = U + (r * 4 + 1) * kc + i0;
      float* u2 = U + (r * 4 + 2) * kc + i0;
      float* u3 = U + (r * 4 + 3) * kc + i0;
      for (int64_t ii = 0; ii < nb; ++ii) {
        const float a = t[r][0][ii], b = t[r][1][ii], c = t[r][2][ii];
        u0[ii] = a;
        u1[ii] = 0.5f * (a + b + c);
        u2[ii] = 0.5f * (a - b + c);
        u3[ii] = c;
      }
    }
  }
}

// V [16, cg, nt] for tiles [t0, t0 + nt) of image n, group gi: B^T d B with
// B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]].
void transform_input(const ConvGeom& g, const float* x, int64_t n, int64_t gi, int64_t t0, int64_t nt, int64_t tw,
                     float* V) {
  const int64_t cg = g.c / g.groups;
  const int64_t stride_xi = cg * nt;
  for (int64_t ci = 0; ci < cg; ++ci) {
    const float* xc = x + (n * g.c + gi * cg + ci) * g.h * g.w;
    for (int64_t j = 0; j < nt; ++j) {
      const int64_t t = t0 + j, ty = t / tw, tx = t % tw;
      const int64_t y0 = ty * 2 - g.pad_h, x0 = tx * 2 - g.pad_w;
      float d[4][4];
      const bool inside = y0 >= 0 && x0 >= 0 && y0 + 4 <= g.h && x0 + 4 <= g.w;
      for (int r = 0; r < 4; ++r) {
        const int64_t iy = y0 + r;
        for (int q = 0; q < 4; ++q) {
          const int64_t ix = x0 + q;
          d[r][q] = inside || (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) ? xc[iy * g.w + ix] : 0.f;
        }
      }
      float t1[4][4];  // B^T d
      for (int q = 0; q < 4; ++q) {
        t1[0][q] = d[0][q] - d[2][q];
        t1[1][q] = d[1][q] + d[2][q];
        t1[2][q] = d[2][q] - d[1][q];
        t1[3][q] = d[1][q] - d[3][q];
      }
      float* v = V + ci * nt + j;
      for (int r = 0; r < 4; ++r) {  // (B^T d) B
        v[(r * 4 + 0) * stride_xi] = t1[r][0] - t1[r][2];
        v[(r * 4 + 1) * stride_xi] = t1[r][1] + t1[r][2];
        v[(r * 4 + 2) * stride_xi] = t1[r][2] - t1[r][1];
        v[(r * 4 + 3) * stride_xi] = t1[r][1] - t1[r][3];
      }
    }
  }
}

// y tiles <- A^T M A (+ bias), A^T = [[1,1,1,0],[0,1,-1,-1]]; M [16, kg, nt].
void transform_output(const ConvGeom& g, const float* M, int64_t n, int64_t gi, int64_t t0, int64_t nt, int64_t tw,
                      const float* bias, float* y) {
  const int64_t kg = g.k / g.groups;
  const int64_t stride_xi = kg * nt;
  for (int64_t kk = 0; kk < kg; ++kk) {
    const int64_t k = gi * kg + kk;
    float* yk = y + (n * g.k + k) * g.oh * g.ow;
    const float b = bias ? bias[k] : 0.f;
    for (int64_t j = 0; j < nt; ++j) {
      const float* m = M + kk * nt + j;
      float mm[4][4];
      for (int r = 0; r < 4; ++r)
        for (int q = 0; q < 4; ++q) mm[r][q] = m[(r * 4 + q) * stride_xi];
      float t1[2][4];  // A^T M
      for (int q = 0; q < 4; ++q) {
        t1[0][q] = mm[0][q] + mm[1][q] + mm[2][q];
        t1[1][q] = mm[1][q] - mm[2][q] - mm[3][q];
      }
      const int64_t t = t0 + j, oy = (t / tw) * 2, ox = (t % tw) * 2;
      for (int r = 0; r < 2; ++r) {
        if (oy + r >= g.oh) break;
        float* row = yk + (oy + r) * g.ow + ox;
        row[0] = t1[r][0] + t1[r][1] + t1[r][2] + b;
        if (ox + 1 < g.ow) row[1] = t1[r][1] - t1[r][2] - t1[r][3] + b;
      }
    }
  }
}

}  // namespace

bool conv_winograd_enabled() { return g_enabled.load(); }
void set_conv_winograd_enabled(bool on) { g_enabled = on; }

bool conv_winograd_applies(const ConvGeom& g, DType dt) {
  return g_enabled.load() && dt == DType::f32 && g.r == 3 && g.s == 3 && g.stride_h == 1 && g.stride_w == 1 &&
         g.dil_h == 1 && g.dil_w == 1 && g.c / g.groups >= 8 && g.k / g.groups >= 8 &&
         g.oh == g.h + 2 * g.pad_h - 2 && g.ow == g.w + 2 * g.pad_w - 2;
}

void conv2d_forward_winograd(const ConvGeom& g, const StridedView& yv, const StridedView& xv, const StridedView& wv,
                             const StridedView& bv, int nthreads) {
  const float* x = static_cast<const float*>(xv.data);
  const float* w = static_cast<const float*>(wv.data);
  const float* bias = static_cast<const float*>(bv.data);
  float* y = static_cast<float*>(yv.data);
  const int64_t cg = g.c / g.groups, kg = g.k / g.groups, kc = g.k * cg;
  const int64_t th = ceil_div(g.oh, 2), tw = ceil_div(g.ow, 2), tiles = th * tw;
  // Blocks of tiles: at most kTilesPerBlock, and a few items per thread when there are few.
  int64_t per = ceil_div(tiles, kTilesPerBlock);
  const int64_t want = 3 * int64_t(nthreads);
  if (g.n * g.groups * per < want) per = std::min(ceil_div(tiles, 32), std::max(per, ceil_div(want, g.n * g.groups)));
  per = std::max<int64_t>(per, 1);
  const int64_t block = ceil_div(tiles, per);
  const int64_t blocks = ceil_div(tiles, block);
  float* U = scratch(2, 16 * kc);  // the calling thread's; read by every thread below
  transform_weights(g, w, U, nthreads);
  const int64_t items = g.n * g.groups * blocks;
#pragma omp parallel num_threads(int(std::max<int64_t>(1, std::min<int64_t>(items, nthreads))))
  {
    float* V = scratch(0, 16 * cg * block);
    float* M = scratch(1, 16 * kg * block);
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t bi = it % blocks, gi = (it / blocks) % g.groups, n = it / (blocks * g.groups);
      const int64_t t0 = bi * block, nt = std::min(block, tiles - t0);
      transform_input(g, x, n, gi, t0, nt, tw, V);
      for (int xi = 0; xi < 16; ++xi) {
        CMap A(U + xi * kc + gi * kg * cg, kg, cg, Eigen::OuterStride<>(cg));
        CMap B(V + xi * cg * nt, cg, nt, Eigen::OuterStride<>(nt));
        MMap C(M + xi * kg * nt, kg, nt, Eigen::OuterStride<>(nt));
        C.noalias() = A * B;
      }
      transform_output(g, M, n, gi, t0, nt, tw, bias, y);
    }
  }
}

}  // namespace gradstyle::cpu
