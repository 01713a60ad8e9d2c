#pragma once
// Perspective warp of feature maps by per-sample homographies, and the random homography sampler
// of SPEC B.7 (the misalignment GradStyle trains its Aligner on).
//
//   Generator gen(seed);                                        // the project's `warp` stream
//   Tensor H = random_homographies(8, gen);                     // [8, 3, 3] float64, CPU
//   auto warped = perspective_warp({f8, f16, f32}, H);          // one H per sample, all scales
//
// Coordinates are normalised to [-1, 1]^2 with pixel centres at (2i + 1)/n - 1 (align_corners =
// false), so one homography means the same geometric warp at every resolution. H maps
// DESTINATION (output) coordinates to SOURCE (input) coordinates:
//   (x, y, w) = H · (u, v, 1);  out[b, c, p] = bilinear(x[b, c], (x/w, y/w)), zeros outside,
// which is torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode='zeros',
// align_corners=False) on the homography grid.
//
// Determinism: the CPU and CUDA kernels share their per-element arithmetic (explicit fma, float64
// coordinates), so outputs and input gradients are bit-identical across devices, and the
// backward is a gather (no atomics), so it is bit-reproducible run to run.
#include <cstdint>
#include <vector>

#include "gradstyle/core/rng.hpp"
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

struct RandomHomographyOptions {
  double distortion = 0.15;  // d: corners move inward by d * U(0,1) along each axis (normalised units)
  double prob = 0.9;         // probability that a sample is warped (else the identity)
};

// Destination corners [B, 4, 2] (x, y) in the order TL, TR, BR, BL of the source corners
// (-1,-1), (1,-1), (1,1), (-1,1), drawn as SPEC B.7 states: per sample, counter 0 decides whether
// to warp (u <= prob), counters 1..8 give u_{k,x}, u_{k,y} ~ U(0,1], and
// c'_k = c_k + d * (s_x u_{k,x}, s_y u_{k,y}) with signs pointing inward. An unwarped sample gets
// the source corners. Always consumes exactly 9 * batch counters of gen, so a (seed, offset)
// reproduces the draw. float64, CPU. Throws ValueError for batch < 0, d outside [0, 1), prob
// outside [0, 1].
Tensor random_warp_corners(int64_t batch, Generator& gen, const RandomHomographyOptions& o = {});

// Homographies [B, 3, 3] (float64, CPU, H[2][2] = 1) mapping destination corner k to source corner
// k for dst_corners [B, 4, 2] (any float dtype and device). Solved in float64 from the 8 x 8 linear
// system with partial pivoting. Throws ShapeError for a wrong shape, ValueError for degenerate
// corners (three collinear).
Tensor homography_from_corners(const Tensor& dst_corners);

// homography_from_corners(random_warp_corners(batch, gen, o)).
Tensor random_homographies(int64_t batch, Generator& gen, const RandomHomographyOptions& o = {});

// Warps x [B, C, Hh, W] (float32 or float64, CPU or CUDA) with H [B, 3, 3] (any float dtype and
// device; read in float64 and treated as a constant). Output: dense [B, C, Hh, W], same dtype and
// device. Differentiable with respect to x to any order (the gradient is the adjoint warp, whose
// own gradient is the warp again). Throws ShapeError (ranks, batch mismatch), DTypeError,
// ValueError (a singular H), AutogradError (H requires grad: no gradient with respect to H).
Tensor perspective_warp(const Tensor& x, const Tensor& H);

// Several maps of one batch (e.g. the 8, 16 and 32 px features of one sample set), each warped by
// the same per-sample homography; on CUDA the forward is a single kernel launch for all of them
// (at most 4 maps; more are processed in groups of 4). Same contract as above per map; all maps
// share batch size, dtype and device.
std::vector<Tensor> perspective_warp(const std::vector<Tensor>& xs, const Tensor& H);

}  // namespace gradstyle
