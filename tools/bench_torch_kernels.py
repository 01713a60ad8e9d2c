#!/usr/bin/python3
"""Times the PyTorch equivalents of the issue-4 kernels and our kernel-lab binaries in the same run,
interleaved (torch, ours, torch, ours, ...), and prints the ratios of medians (PERFORMANCE.md §10).

    OMP_NUM_THREADS=2 /usr/bin/python3 tools/bench_torch_kernels.py --build build --device cpu
    /usr/bin/python3 tools/bench_torch_kernels.py --build build-cuda --device cuda

PyTorch references (all float32, TF32 off on both sides, same seeds/shapes as bench/kernels/):
  attention : dense scores, torch.topk threshold, masked_fill(-inf), softmax, matmul (the
              dense+mask formulation), batch 8, 8 heads x 64, L = 64 / 256 / 1024
  warp      : the homography grid built with tensor ops + F.grid_sample for the 8/16/32 px maps
              of batch 8 x 512 channels
  modconv   : NVIDIA's non-fused path (stylegan2-ada-pytorch modulated_conv2d with
              fused_modconv=False, written with plain PyTorch ops: x * styles, conv2d /
              conv_transpose2d + blur, x * dcoefs, + noise, bias + lrelu * sqrt 2) at every
              StyleGAN2 synthesis layer, batch 8
Ratio = torch median / ours median (> 1: ours faster). Our times come from Google Benchmark's
manual-time JSON (the lab checks each variant against its reference before timing it).
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def time_torch(fn, dev, min_time=0.3, warmup=2):
    for _ in range(warmup):
        fn()
    sync(dev)
    samples = []
    t_end = time.perf_counter() + min_time
    while True:
        t0 = time.perf_counter()
        fn()
        sync(dev)
        samples.append(time.perf_counter() - t0)
        if time.perf_counter() > t_end and len(samples) >= 3:
            break
    return statistics.median(samples)


def time_ours(binary, name, dev):
    out = subprocess.run([binary, f"--benchmark_filter={name}/manual_time$", "--benchmark_format=json",
                          "--benchmark_min_time=0.3"], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2")))
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    res = json.loads(out.stdout)["benchmarks"]
    if not res:
        raise RuntimeError(f"no benchmark matched {name}")
    b = res[0]
    if b.get("error_occurred"):
        raise RuntimeError(f"{name}: {b.get('error_message')}")
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
    return b["real_time"] * scale


# --- attention ------------------------------------------------------------------------------
def attn_case(L, bwd, dev):
    B, H, C, d = 8, 8, 512, 64
    kk = min(L, max(1, math.ceil(0.25 * L)))
    g = torch.Generator().manual_seed(1)
    q, k, v, gy = (torch.randn(B, L, C, generator=g).to(dev) for _ in range(4))
    if bwd:
        for t in (q, k, v):
            t.requires_grad_()

    def fwd():
        qh = q.view(B, L, H, d).transpose(1, 2)
        kh = k.view(B, L, H, d).transpose(1, 2)
        vh = v.view(B, L, H, d).transpose(1, 2)
        s = (qh @ kh.transpose(-1, -2)) / math.sqrt(d)
        tau = torch.topk(s.detach(), kk, dim=-1).values[..., -1:]
        p = torch.softmax(s.masked_fill(s < tau, float("-inf")), dim=-1)
        return (p @ vh).transpose(1, 2).reshape(B, L, C)

    def run():
        if bwd:
            torch.autograd.grad(fwd(), (q, k, v), gy)
        else:
            with torch.no_grad():
                fwd()
    return run


# --- warp -----------------------------------------------------------------------------------
def warp_case(bwd, dev):
    B, C = 8, 512
    g = torch.Generator().manual_seed(2)
    src = torch.tensor([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=torch.float64)
    Hs = []
    for _ in range(B):
        dst = src - src * 0.15 * torch.rand(4, 2, generator=g, dtype=torch.float64)
        A, rhs = [], []
        for (u, vv), (x, y) in zip(dst.tolist(), src.tolist()):
            A += [[u, vv, 1, 0, 0, 0, -u * x, -vv * x], [0, 0, 0, u, vv, 1, -u * y, -vv * y]]
            rhs += [x, y]
        h = torch.linalg.solve(torch.tensor(A), torch.tensor(rhs))
        Hs.append(torch.cat([h, torch.ones(1, dtype=torch.float64)]).view(3, 3))
    H = torch.stack(Hs).to(torch.float32).to(dev)
    xs = [torch.randn(B, C, n, n, generator=g).to(dev) for n in (8, 16, 32)]
    gys = [torch.randn_like(x) for x in xs]
    if bwd:
        for x in xs:
            x.requires_grad_()

    def grid(n):
        c = (2 * torch.arange(n, device=dev, dtype=torch.float32) + 1) / n - 1
        vv, uu = torch.meshgrid(c, c, indexing="ij")
        pts = torch.stack([uu, vv, torch.ones_like(uu)], -1).reshape(-1, 3)
        p = H @ pts.t()
        return (p[:, :2] / p[:, 2:]).transpose(1, 2).reshape(B, n, n, 2)

    def fwd():
        return [F.grid_sample(x, grid(x.shape[-1]), mode="bilinear", padding_mode="zeros", align_corners=False)
                for x in xs]

    def run():
        if bwd:
            torch.autograd.grad(fwd(), xs, gys)
        else:
            with torch.no_grad():
                fwd()
    return run


# --- modulated conv -----------------------------------------------------------------------------
def channels(res):
    return 512 if res <= 64 else 512 * 64 // res


def layers():
    r = [("conv4", 4, 512, 512, 3, 1, False)]
    res = 8
    while res <= 1024:
        r.append(("up", res // 2, channels(res // 2), channels(res), 3, 2, False))
        r.append(("conv", res, channels(res), channels(res), 3, 1, False))
        res *= 2
    res = 4
    while res <= 1024:
        r.append(("torgb", res, channels(res), 3, 1, 1, True))
        res *= 2
    return r


def modconv_case(layer, bwd, dev):
    name, res, cin, cout, k, up, torgb = layer
    B = 8
    g = torch.Generator().manual_seed(3)
    oh = res * 2 if up == 2 else res
    x = torch.randn(B, cin, res, res, generator=g).to(dev)
    w = torch.randn(cout, cin, k, k, generator=g).to(dev)
    s = (1 + 0.3 * torch.randn(B, cin, generator=g)).to(dev)
    noise = torch.randn(1, 1, oh, oh, generator=g).to(dev)
    bias = (0.1 * torch.randn(cout, generator=g)).to(dev)
    gy = torch.randn(B, cout, oh, oh, generator=g).to(dev)
    blur = torch.tensor([1.0, 3.0, 3.0, 1.0], device=dev)
    blur = (blur[:, None] * blur[None, :]) / 64 * 4
    blur = blur.view(1, 1, 4, 4).repeat(cout, 1, 1, 1)
    if bwd:
        x.requires_grad_()

    def fwd():
        # stylegan2-ada-pytorch networks.modulated_conv2d, fused_modconv=False
        wg = w * (1 / math.sqrt(cin * k * k))
        y = x * s.reshape(B, -1, 1, 1)
        if up == 2:
            y = F.conv_transpose2d(y, wg.transpose(0, 1), stride=2)
            y = F.conv2d(F.pad(y, [1, 1, 1, 1]), blur, groups=cout)
        else:
            y = F.conv2d(y, wg, padding=k // 2)
        if not torgb:
            dco = ((wg[None] * s[:, None, :, None, None]).square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
            y = y * dco.reshape(B, -1, 1, 1) + noise * 0.1
            return F.leaky_relu(y + bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)
        return y + bias.view(1, -1, 1, 1)

    def run():
        if bwd:
            torch.autograd.grad(fwd(), (x,), gy)
        else:
            with torch.no_grad():
                fwd()
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--kernels", default="attn,warp,modconv")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-L", type=int, default=1024)
    ap.add_argument("--max-res", type=int, default=1024, help="largest modconv output resolution")
    ap.add_argument("--no-bwd", action="store_true")
    ap.add_argument("--only", default="", help="regex: run only the cases whose name matches")
    a = ap.parse_args()
    dev = a.device
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    di = 1 if dev == "cuda" else 0
    lab = lambda n: os.path.join(ROOT, a.build, "bench", "kernels", n)
    cases = []
    modes = [0] if a.no_bwd else [0, 1]
    kinds = a.kernels.split(",")
    if "attn" in kinds:
        for bwd in modes:
            for L in (64, 256, 1024):
                if L <= a.max_L:
                    cases.append((f"attention L={L} {'fwd+bwd' if bwd else 'fwd'}", attn_case(L, bwd, dev),
                                  lab("lab_selective_attention"),
                                  f"BM_selective_attention/dev:{di}/variant:0/L:{L}/bwd:{bwd}"))
    if "warp" in kinds:
        for bwd in modes:
            cases.append((f"warp 8+16+32 px {'fwd+bwd' if bwd else 'fwd'}", warp_case(bwd, dev),
                          lab("lab_perspective_warp"), f"BM_perspective_warp/dev:{di}/variant:0/bwd:{bwd}"))
    if "modconv" in kinds:
        for bwd in modes:
            for i, l in enumerate(layers()):
                oh = l[1] * 2 if l[5] == 2 else l[1]
                if oh <= a.max_res:
                    cases.append((f"modconv {l[0]} {l[1]}->{oh}px {l[2]}->{l[3]} {'fwd+dX' if bwd else 'fwd'}",
                                  modconv_case(l, bwd, dev), lab("lab_modulated_conv"),
                                  f"BM_modulated_conv/dev:{di}/variant:0/layer:{i}/bwd:{bwd}"))
    print(f"# device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    if dev == "cuda":
        print(f"# {torch.cuda.get_device_name()}")
    print("| case | torch ms | ours ms | ratio |")
    print("|---|---|---|---|")
    import re
    for name, fn, binary, bench in cases:
        if a.only and not re.search(a.only, name):
            continue
        tt, to = [], []
        try:
            for _ in range(a.rounds):
                tt.append(time_torch(fn, dev))
                to.append(time_ours(binary, bench, dev))
        except Exception as e:  # report and go on
            print(f"| {name} | error: {str(e).strip()[:120]} | | |")
            continue
        mt, mo = statistics.median(tt), statistics.median(to)
        print(f"| {name} | {mt * 1e3:.3f} | {mo * 1e3:.3f} | {mt / mo:.2f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
