#!/usr/bin/env python3
"""Reference SSIM / PSNR / L2 for tests/eval/test_metrics.cpp, written independently of the C++
(a direct window sum over every valid position, numpy only), in SPEC D.2's definition: scikit-image
structural_similarity(win_size=21, uniform window, data_range=1, K1=0.01, K2=0.03, sample
covariance N/(N-1), per channel, averaged over the positions at least 10 px from the border).
L2 is the MSE with both images in [-1, 1], PSNR 10 log10(1 / MSE) on [0, 1]. Prints the values
the test hard-codes."""
import numpy as np


def images(H=30, W=32):
    i, j = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    x = np.stack([np.sin(0.3 * i + 0.2 * j + c) for c in range(3)])           # [-1, 1]
    y = np.stack([0.8 * np.sin(0.3 * i + 0.2 * j + c) + 0.15 * np.cos(0.5 * i * j / 16.0 + c) for c in range(3)])
    return x, y


def ssim(x, y, win=21):
    x, y = (x + 1) / 2, (y + 1) / 2
    n = win * win
    C1, C2 = 0.01 ** 2, 0.03 ** 2
    vals = []
    for c in range(x.shape[0]):
        for a in range(x.shape[1] - win + 1):
            for b in range(x.shape[2] - win + 1):
                px, py = x[c, a:a + win, b:b + win], y[c, a:a + win, b:b + win]
                mx, my = px.mean(), py.mean()
                vx = ((px - mx) ** 2).sum() / (n - 1)
                vy = ((py - my) ** 2).sum() / (n - 1)
                cxy = ((px - mx) * (py - my)).sum() / (n - 1)
                vals.append(((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2)))
    return float(np.mean(vals))


if __name__ == "__main__":
    x, y = images()
    # The C++ test computes on float32 inputs: round the same way.
    x, y = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
    l2 = float(np.mean((x - y) ** 2))
    print(f"l2   {l2:.12g}")
    print(f"psnr {10 * np.log10(1 / (l2 / 4)):.12g}")
    print(f"ssim {ssim(x, y):.12g}")
