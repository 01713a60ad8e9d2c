#!/usr/bin/python3
"""torchvision reference for `warp_impl = torchvision` (train/warp.hpp): the output of
torchvision.transforms.functional.perspective on feature maps, for fixed integer end corners.

Run with Debian's python3-torch and python3-torchvision:  /usr/bin/python3 tools/reference/make_warp_fixtures.py
Writes tests/golden/train/warp_torchvision.pt: for case i, x_i [2, 3, H, W] (float64 inputs rounded
to float32), ends_i [4, 2] (TL, TR, BR, BL end corners in pixels, as RandomPerspective.get_params
returns them) and out_i = perspective(x, startpoints = pixel-centre corners, endpoints, BILINEAR,
fill=None) in float64. fill=None: torchvision's fill mask (RandomPerspective's default fill=0
multiplies by a resampled ones map) is not part of our warp.
"""
import os

import torch
import torchvision
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "train", "warp_torchvision.pt")


def main():
    gen = torch.Generator().manual_seed(42)
    cases = [(8, 8, [[0, 0], [7, 0], [7, 7], [0, 7]]),           # RandomPerspective's only draw at 8 x 8
             (16, 16, [[1, 0], [15, 1], [14, 15], [0, 14]]),
             (32, 32, [[2, 1], [29, 0], [31, 30], [1, 29]]),
             (12, 20, [[3, 2], [17, 0], [18, 11], [0, 9]])]        # non-square, larger moves
    out = {"torchvision": torch.tensor([int(v) for v in torchvision.__version__.split(".")[:2]])}
    for i, (h, w, ends) in enumerate(cases):
        x = torch.randn(2, 3, h, w, generator=gen).float().double()  # float32 values, float64 math
        start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
        y = TF.perspective(x, start, ends, interpolation=InterpolationMode.BILINEAR, fill=None)
        out[f"x_{i}"] = x.float()
        out[f"ends_{i}"] = torch.tensor(ends, dtype=torch.float64)
        out[f"out_{i}"] = y
    torch.save(out, OUT)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
