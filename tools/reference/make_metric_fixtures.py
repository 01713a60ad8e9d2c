#!/usr/bin/python3
"""scikit-image reference values for `gradstyle eval` (issue 11): SSIM, PSNR and L2 on real image
pairs, computed by scikit-image itself (Debian's python3-skimage), not by our own reference.

Run:  /usr/bin/python3 tools/reference/make_metric_fixtures.py
Writes tests/golden/metrics/: for each real photo of ../shared/data (astronaut, camera, chelsea)
<name>_gt.png (the photo, PIL-bilinear resized to 96 x 96, RGB) and <name>_pred.png (the same after
a JPEG round trip at quality 20 and a small shift: a realistic degraded "reconstruction"), and
skimage.json with, per pair, on float images in [0, 1]:
  ssim = structural_similarity(gt, pred, win_size=21, channel_axis=2, data_range=1.0)
         (uniform window, sample covariance, K1 0.01, K2 0.03: SPEC D.2)
  psnr = peak_signal_noise_ratio(gt, pred, data_range=1.0)
  l2   = mean_squared_error(2 gt - 1, 2 pred - 1)   (the MSE on [-1, 1])
"""
import io
import json
import os

import numpy as np
import skimage
from PIL import Image, ImageChops
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "tests", "golden", "metrics")


def main():
    os.makedirs(OUT, exist_ok=True)
    values = {"skimage": skimage.__version__, "pairs": {}}
    for name in ("astronaut", "camera", "chelsea"):
        gt = Image.open(os.path.join(SHARED, name + ".png")).convert("RGB").resize((96, 96), Image.BILINEAR)
        buf = io.BytesIO()
        gt.save(buf, "JPEG", quality=20)
        pred = ImageChops.offset(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), 1, 0)
        gt.save(os.path.join(OUT, name + "_gt.png"))
        pred.save(os.path.join(OUT, name + "_pred.png"))
        g = np.asarray(Image.open(os.path.join(OUT, name + "_gt.png"))).astype(np.float64) / 255.0
        p = np.asarray(Image.open(os.path.join(OUT, name + "_pred.png"))).astype(np.float64) / 255.0
        values["pairs"][name] = {
            "ssim": float(structural_similarity(g, p, win_size=21, channel_axis=2, data_range=1.0)),
            "psnr": float(peak_signal_noise_ratio(g, p, data_range=1.0)),
            "l2": float(mean_squared_error(2 * g - 1, 2 * p - 1)),
        }
    with open(os.path.join(OUT, "skimage.json"), "w") as f:
        json.dump(values, f, indent=2)
        f.write("\n")
    print(json.dumps(values, indent=2))


if __name__ == "__main__":
    main()
