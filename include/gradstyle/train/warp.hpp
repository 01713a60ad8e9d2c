#pragma once
// The misalignment warps of GradStyle training (SPEC B.7) beyond the default sampler of
// ops/perspective_warp.hpp: torchvision's RandomPerspective semantics, which HFGI uses on its
// 256 px image residual, offered as `warp_impl = torchvision` for comparison (B.7's pitfall says
// why it is not the default: on an 8 x 8 map it is the identity).
#include <cstdint>

#include "gradstyle/core/rng.hpp"
#include "gradstyle/core/tensor.hpp"
#include "gradstyle/ops/perspective_warp.hpp"

namespace gradstyle::train {

// torchvision.transforms.RandomPerspective(distortion_scale = o.distortion, p = o.prob).get_params
// for a height x width map: ONE draw for the whole batch (applied with probability p), integer
// end corners, each moved inward by randint(0, int(d * size / 2) + 1) pixels from the start corners
// (0, 0), (W-1, 0), (W-1, H-1), (0, H-1) (torchvision's corner coordinates, in which pixel i's
// centre is at i + 0.5). Returned as homographies [batch, 3, 3] (float64,
// CPU; every row the same) in perspective_warp's normalised convention, mapping the end corners to
// the start corners. Zero padding (torchvision's fill mask, which also dims border pixels, is not
// reproduced). Consumes 9 counters of gen per call. ValueError for batch < 0, a size < 2, d outside
// [0, 1) or p outside [0, 1].
// The homography [1, 3, 3] of torchvision.transforms.functional.perspective(img, startpoints =
// (0, 0), (W-1, 0), (W-1, H-1), (0, H-1), endpoints = `end`) on a height x width map: `end` holds the four end
// corners TL, TR, BR, BL as (x, y) pixel coordinates; the result maps normalised output (end)
// coordinates to input (start) coordinates. ValueError for a size < 2 or degenerate corners.
Tensor torchvision_homography(int64_t height, int64_t width, const double end[8]);

Tensor torchvision_perspective_homographies(int64_t batch, int64_t height, int64_t width, Generator& gen,
                                            const RandomHomographyOptions& o = {});

}  // namespace gradstyle::train
