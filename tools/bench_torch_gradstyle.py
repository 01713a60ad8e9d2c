#!/usr/bin/env python3
"""The PyTorch side of bench/models/bench_gradstyle.cpp: one GradStyle training iteration (B.7
steps 2-5, backward, Adam + Lookahead step) and one reconstruction pass (no gradient) on the tiny
32 px configuration of tools/reference/make_gradstyle_fixtures.py, float32, CPU, with the
reference modules of tools/reference/gradstyle_ref.py. Needs Debian's python3-torch
(tools/setup --torch). Prints milliseconds per call (median of N timed calls after warm-up).

    OMP_NUM_THREADS=2 python3 tools/bench_torch_gradstyle.py [--iters 20] [--threads 2]
"""
import argparse
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
import gradstyle_ref as gs  # noqa: E402
import make_gradstyle_fixtures as fx  # noqa: E402


def timed(fn, iters):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1000 * statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g, d, lp, latent_avg = fx.frozen_nets()
    net = fx.build_net(g, fx.Rnd(400))
    w, groups, x, _u, _c, h = fx.net_inputs(g, latent_avg, fx.Rnd(401))
    for m in (g, d, lp, net):
        m.float()
    w, x, h = w.float(), x.float(), h.double()
    groups = {k: v.float() for k, v in groups.items()}
    losses = gs.Losses(fx.NET_CFG, lpips=lp, disc=d)
    opt = gs.AdamLookahead(net.parameters(), lr=1e-4, k=6, alpha=0.5)

    def step():
        for p in net.parameters():
            p.grad = None
        terms, _ = gs.train_forward(net, losses, w, groups, x, h)
        terms["total"].backward()
        opt.step()

    def reconstruct():
        with torch.no_grad():
            net.eval()
            net.reconstruct(w, net.t_maps(groups))
            net.train()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"train_iteration_tiny  {timed(step, a.iters):8.2f} ms")
    print(f"reconstruct_tiny      {timed(reconstruct, a.iters):8.2f} ms")


if __name__ == "__main__":
    main()
