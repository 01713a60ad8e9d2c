#!/usr/bin/env python3
"""Reference SSIM / PSNR / MSE for tests/eval/test_metrics.cpp, written independently of the C++
(a direct 2-D Gaussian window over every valid position, numpy only), in the definition of
skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, data_range=1,
use_sample_covariance=False). Prints the values the test hard-codes."""
import numpy as np


def images(H=20, W=24):
    i, j = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    x = np.stack([np.sin(0.3 * i + 0.2 * j + c) for c in range(3)])           # [-1, 1]
    y = np.stack([0.8 * np.sin(0.3 * i + 0.2 * j + c) + 0.15 * np.cos(0.5 * i * j / 16.0 + c) for c in range(3)])
    return x, y


def ssim(x, y):
    x, y = (x + 1) / 2, (y + 1) / 2
    r = np.arange(11) - 5.0
    g = np.exp(-r * r / (2 * 1.5 ** 2))
    g /= g.sum()
    w2 = np.outer(g, g)
    C1, C2 = 0.01 ** 2, 0.03 ** 2
    vals = []
    for c in range(x.shape[0]):
        for a in range(x.shape[1] - 10):
            for b in range(x.shape[2] - 10):
                px, py = x[c, a:a + 11, b:b + 11], y[c, a:a + 11, b:b + 11]
                mx, my = (w2 * px).sum(), (w2 * py).sum()
                vx = (w2 * px * px).sum() - mx * mx
                vy = (w2 * py * py).sum() - my * my
                cxy = (w2 * px * py).sum() - mx * my
                vals.append(((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2)))
    return float(np.mean(vals))


if __name__ == "__main__":
    x, y = images()
    # The C++ test computes on float32 inputs: round the same way.
    x, y = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
    mse = float(np.mean(((x + 1) / 2 - (y + 1) / 2) ** 2))
    print(f"mse  {mse:.12g}")
    print(f"psnr {10 * np.log10(1 / mse):.12g}")
    print(f"ssim {ssim(x, y):.12g}")
