#!/usr/bin/python3
"""PyTorch (CPU) reference timings for bench_imgops.cpp: the same workloads, shapes and dtype.

    OMP_NUM_THREADS=2 /usr/bin/python3 bench/ops/bench_imgops_torch.py [--reps 10]

Prints one line per workload: median, p10 and p90 of the wall time in ms over --reps runs after
3 warm-up runs, with torch.set_num_threads(2). Run it right next to
`OMP_NUM_THREADS=2 build-img/bench/ops/bench_imgops --benchmark_filter=cpu` and compare medians
(docs/PERFORMANCE.md section 10: same machine, same run, interleaved).
"""
import argparse
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)


def warp_grid(n, h, w):
    ys = torch.linspace(-1 + 1.0 / h, 1 - 1.0 / h, h).view(1, h, 1, 1).expand(n, h, w, 1)
    xs = torch.linspace(-1 + 1.0 / w, 1 - 1.0 / w, w).view(1, 1, w, 1).expand(n, h, w, 1)
    return (torch.cat([xs, ys], 3) + torch.rand(n, h, w, 2) * 0.3 - 0.15).contiguous()


def workloads():
    x = torch.randn(8, 512, 32, 32)
    g = warp_grid(8, 32, 32)
    yield "grid_sample_fwd", [x, g], lambda a, b: F.grid_sample(a, b, mode="bilinear", padding_mode="zeros",
                                                                 align_corners=False)
    for i, o in ((256, 1024), (1024, 256)):
        yield f"interp_{i}_to_{o}_fwd", [torch.randn(8, 3, i, i)], \
            lambda a, o=o: F.interpolate(a, size=(o, o), mode="bilinear", align_corners=False)
    rm, rv = torch.zeros(64), torch.ones(64)
    xb = torch.randn(8, 64, 128, 128) + 0.5
    w, b = torch.rand(64) + 0.5, torch.randn(64)
    yield "batch_norm_train_fwd", [xb, w, b], lambda a, ww, bb: F.batch_norm(a, rm, rv, ww, bb, training=True)
    yield "batch_norm_eval_fwd", [xb, w, b], lambda a, ww, bb: F.batch_norm(a, rm, rv, ww, bb, training=False)
    yield "avg_pool_4x4_1024", [torch.randn(8, 3, 1024, 1024)], lambda a: F.avg_pool2d(a, 4)


def timeit(fn, reps):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2], ts[len(ts) // 10], ts[(len(ts) * 9) // 10]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name, inputs, op in workloads():
        def fwd():
            with torch.no_grad():
                op(*inputs)

        leaves = [t.detach().clone().requires_grad_() for t in inputs]
        gy = torch.randn_like(op(*inputs))

        def fwd_bwd():
            torch.autograd.grad(op(*leaves), leaves, gy)

        m, lo, hi = timeit(fwd, args.reps)
        print(f"{name:32s} {m:9.2f} ms  (p10 {lo:.2f}, p90 {hi:.2f})")
        if name.endswith("_fwd") and "eval" not in name:
            m, lo, hi = timeit(fwd_bwd, args.reps)
            print(f"{name + '_bwd':32s} {m:9.2f} ms  (p10 {lo:.2f}, p90 {hi:.2f})")


if __name__ == "__main__":
    main()
