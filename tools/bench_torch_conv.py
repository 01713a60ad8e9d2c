#!/usr/bin/python3
"""Side-by-side CPU timings of gradstyle's image-model ops (issue 3) and the same PyTorch calls.

    OMP_NUM_THREADS=2 /usr/bin/python3 tools/bench_torch_conv.py [--bench build-conv/bench/ops/bench_conv]
        [--rounds 2] [--reps 5] [--filter REGEX] [--markdown out.md]

Ratios are PyTorch / gradstyle (> 1: gradstyle is faster), for wall time and for process CPU
time (all threads; meaningful on a shared, oversubscribed machine where wall time depends on
the other tenants). For every case it alternates gradstyle (one run of bench_conv filtered to that case, median of
--reps repetitions, Google Benchmark manual time) and PyTorch (median of --reps timed calls after
3 warm-up calls) for --rounds rounds (A, B, A, B, ...) and reports the median of each side. PERFORMANCE.md section 10: Debian's torch
with OpenBLAS (libopenblas0-pthread) and oneDNN, torch.set_num_threads(2), no_grad for forward.

PyTorch side of each case:
  conv2d_3x3            F.conv2d(x, w, b, padding=1)
  conv2d_3x3_backward   aten.convolution_backward for the input and weight gradients
  upfirdn2d             NVIDIA's reference upfirdn2d (zero-insert via reshape/pad, pad, depthwise
                        conv2d with the flipped filter), what StyleGAN2 code runs on the CPU
  bias_act              leaky_relu(x + b, 0.2) * sqrt(2) and its autograd input gradient
"""
import argparse
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
from make_conv_fixtures import upfirdn2d_ref  # noqa: E402  (our own reference implementation)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# (benchmark name in bench_conv, description, PyTorch setup returning a zero-argument callable)
CONV_SHAPES = [(1, 512, 64), (8, 512, 8), (8, 512, 16), (8, 512, 32), (8, 512, 64), (8, 256, 128)]


def conv_fwd(b, c, s):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, c, s, s, generator=g)
    w = torch.randn(c, c, 3, 3, generator=g) / math.sqrt(c * 9)
    bias = torch.randn(c, generator=g)

    def call():
        with torch.no_grad():
            return F.conv2d(x, w, bias, padding=1)
    return call


def conv_bwd(b, c, s):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(b, c, s, s, generator=g)
    w = torch.randn(c, c, 3, 3, generator=g) / math.sqrt(c * 9)
    gy = torch.randn(b, c, s, s, generator=g)

    def call():
        return torch.ops.aten.convolution_backward(gy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
                                                   [True, True, False])
    return call


def upfirdn(b, c, s, up):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(b, c, s, s, generator=g)
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = (k[:, None] * k[None, :]) / 64.0 * (up * up)
    pad = (2, 2, 2, 2) if up == 1 else (2, 1, 2, 1)

    def call():
        with torch.no_grad():
            return upfirdn2d_ref(x, k, (up, up), (1, 1), pad)
    return call


def bias_act(b, c, s):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(b, c, s, s, generator=g).requires_grad_()
    bias = torch.randn(c, generator=g)
    gy = torch.randn(b, c, s, s, generator=g)

    def call():
        y = F.leaky_relu(x + bias.reshape(1, -1, 1, 1), 0.2) * math.sqrt(2)
        return torch.autograd.grad(y, x, gy)
    return call


def cases():
    out = []
    for b, c, s in CONV_SHAPES:
        out.append((f"BM_conv2d_3x3/0/{b}/{c}/{s}", f"conv2d 3x3 {c}->{c}, {s}x{s}, batch {b}", conv_fwd(b, c, s)))
    for b, c, s in CONV_SHAPES:
        out.append((f"BM_conv2d_3x3_backward/0/{b}/{c}/{s}", f"conv2d 3x3 input+weight grad {c}, {s}x{s}, batch {b}",
                    conv_bwd(b, c, s)))
    for b, c, s, up in [(8, 512, 32, 1), (8, 256, 128, 1), (8, 3, 256, 2)]:
        what = "D blur 4x4 pad 2" if up == 1 else "ToRGB upsample x2 4x4"
        out.append((f"BM_upfirdn2d/0/{b}/{c}/{s}/{up}", f"upfirdn2d {what}, {c} ch, {s}x{s}, batch {b}",
                    upfirdn(b, c, s, up)))
    for b, c, s in [(8, 512, 32), (8, 256, 128)]:
        out.append((f"BM_bias_act/0/{b}/{c}/{s}", f"bias_act lrelu fwd+grad, {c} ch, {s}x{s}, batch {b}",
                    bias_act(b, c, s)))
    return out


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def time_torch(fn, reps):
    """(median wall seconds, median process CPU seconds) per call."""
    for _ in range(3):
        fn()
    ts, cs = [], []
    for _ in range(reps):
        c0 = cpu_seconds()
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
        cs.append(cpu_seconds() - c0)
    return statistics.median(ts), statistics.median(cs)


def time_ours(bench, name, reps):
    cmd = [bench, f"--benchmark_filter=^{re.escape(name)}/", f"--benchmark_repetitions={reps}",
           "--benchmark_report_aggregates_only=true", "--benchmark_format=json"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    data = json.loads(res.stdout)
    for b in data["benchmarks"]:
        if b.get("aggregate_name") == "median":
            if b.get("error_occurred"):
                raise RuntimeError(f"{name}: {b.get('error_message')}")
            unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
            return b["real_time"] * unit, b["proc_cpu_ms"] * 1e-3
    raise RuntimeError(f"{name}: no median in the benchmark output (did its result check fail?)\n{res.stdout}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=os.path.join(ROOT, "build-conv", "bench", "ops", "bench_conv"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--filter", default="")
    ap.add_argument("--markdown", default="")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; gradstyle OMP_NUM_THREADS="
          f"{os.environ['OMP_NUM_THREADS']}; load average before {load[0]:.1f}", flush=True)
    rows = []
    for name, what, fn in cases():
        if args.filter and not re.search(args.filter, name):
            continue
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(time_ours(args.bench, name, args.reps))
            theirs.append(time_torch(fn, args.reps))
        o, t = statistics.median(x[0] for x in ours), statistics.median(x[0] for x in theirs)
        oc, tc = statistics.median(x[1] for x in ours), statistics.median(x[1] for x in theirs)
        rows.append((what, t, o, t / o, tc, oc, tc / oc))
        print(f"{what:58s} wall: torch {t * 1e3:9.2f} ms gradstyle {o * 1e3:9.2f} ms ratio {t / o:5.2f} | "
              f"cpu: {tc * 1e3:9.2f} / {oc * 1e3:9.2f} ms ratio {tc / oc:5.2f}", flush=True)
    load = os.getloadavg()
    lines = ["| call (CPU, float32, 2 threads) | PyTorch ms | gradstyle ms | ratio (wall) | PyTorch CPU-ms | "
             "gradstyle CPU-ms | ratio (CPU time) |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {w} | {t * 1e3:.1f} | {o * 1e3:.1f} | {r:.2f} | {tc * 1e3:.1f} | {oc * 1e3:.1f} | {rc:.2f} |"
              for w, t, o, r, tc, oc, rc in rows]
    text = "\n".join(lines) + f"\n\n(load average after the run: {load[0]:.1f})\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
