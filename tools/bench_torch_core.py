#!/usr/bin/python3
"""Side-by-side CPU timings of the engine-foundation ops: gradstyle (bench/ops/bench_core, Google
Benchmark) against PyTorch at the same shapes, float32, both at the same thread count.

The two sides are interleaved (ours, torch, ours, torch, ...) per case and round, so that load from
other processes hits both alike; each side reports the median over rounds of its per-iteration
time, and the ratio is torch / gradstyle (> 1: gradstyle is faster), as in docs PERFORMANCE.md §10.

Usage (Debian's torch lives in /usr/bin/python3, not in a pyenv python):
    /usr/bin/python3 tools/bench_torch_core.py [--bench build-ops2/bench/ops/bench_core]
        [--rounds 5] [--threads 2] [--min-time 0.5] [--filter add]
        [--baseline path/to/older/bench_core]   # adds a "before" column, interleaved too
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

# name in bench_core, shape label, torch setup returning a zero-argument callable
CASES = [
    ("BM_add_contiguous", "add [8,512,64,64] + [8,512,64,64]",
     lambda: _binary((8, 512, 64, 64), (8, 512, 64, 64))),
    ("BM_add_broadcast_channel", "add [8,512,64,64] + [1,512,1,1]",
     lambda: _binary((8, 512, 64, 64), (1, 512, 1, 1))),
    ("BM_add_permuted", "add NHWC-permuted [8,512,64,64] + dense",
     lambda: _permuted_add()),
    ("BM_sum_channels", "sum [8,512,64,64] over (0,2,3)",
     lambda: _sum((8, 512, 64, 64), (0, 2, 3))),
    ("BM_matmul/512", "matmul 512x512 @ 512x512", lambda: _matmul((512, 512), (512, 512))),
    ("BM_matmul/2048", "matmul 2048x2048 @ 2048x2048", lambda: _matmul((2048, 2048), (2048, 2048))),
    ("BM_bmm/8/256", "matmul [8,256,256] @ [8,256,256]", lambda: _matmul((8, 256, 256), (8, 256, 256))),
]


def _binary(sa, sb):
    a, b = torch.randn(*sa), torch.randn(*sb)
    return lambda: torch.add(a, b)


def _permuted_add():
    a = torch.randn(8, 64, 64, 512).permute(0, 3, 1, 2)
    b = torch.randn(8, 512, 64, 64)
    return lambda: torch.add(a, b)


def _sum(shape, dims):
    a = torch.randn(*shape)
    return lambda: torch.sum(a, dims)


def _matmul(sa, sb):
    a, b = torch.randn(*sa), torch.randn(*sb)
    return lambda: torch.matmul(a, b)


def time_torch(fn, min_time):
    """Mean seconds per call over at least min_time seconds (after 3 warm-up calls)."""
    for _ in range(3):
        fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and n >= 3:
            return elapsed / n


def time_ours(binary, name, min_time, threads):
    """Per-iteration real time (seconds) reported by Google Benchmark, plus its context."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [binary, f"--benchmark_filter=^{name}/", "--benchmark_format=json", f"--benchmark_min_time={min_time}"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    data = json.loads(out)
    runs = [b for b in data["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    if len(runs) != 1:
        raise SystemExit(f"expected one benchmark for {name}, got {[b['name'] for b in runs]}")
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[runs[0]["time_unit"]]
    return runs[0]["real_time"] * scale, data["context"]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(root, "build-ops2", "bench", "ops", "bench_core"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per measurement and side")
    ap.add_argument("--filter", default="", help="only cases whose name contains this")
    ap.add_argument("--baseline", default="", help="an older bench_core binary to time alongside (before/after)")
    args = ap.parse_args()
    if not os.path.exists(args.bench):
        raise SystemExit(f"benchmark binary not found: {args.bench} (build it with ninja -C <builddir> bench/ops/bench_core)")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = [c for c in CASES if args.filter in c[0]]
    ours = {c[0]: [] for c in cases}
    theirs = {c[0]: [] for c in cases}
    before = {c[0]: [] for c in cases}
    context = {}
    with torch.no_grad():
        fns = {name: setup() for name, _, setup in cases}
        for r in range(args.rounds):
            for name, _, _ in cases:
                if args.baseline:
                    before[name].append(time_ours(args.baseline, name, args.min_time, args.threads)[0])
                t, context = time_ours(args.bench, name, args.min_time, args.threads)
                ours[name].append(t)
                theirs[name].append(time_torch(fns[name], args.min_time))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    print(f"# {datetime.date.today().isoformat()}  {cpu_model()}  ({os.cpu_count()} CPUs visible)")
    print(f"# threads: gradstyle OMP {context.get('omp_threads', '?')}, torch {torch.get_num_threads()}"
          f"  |  torch {torch.__version__}  |  load average {os.getloadavg()[0]:.2f}")
    print(f"# median of {args.rounds} interleaved rounds, >= {args.min_time} s each; ratio = torch / gradstyle"
          + ("; 'before' = the --baseline binary" if args.baseline else ""))
    print()
    extra_h = f" {'before ms':>9} | {'ratio':>6} |" if args.baseline else ""
    extra_s = f"{'-' * 10}:|{'-' * 7}:|" if args.baseline else ""
    print(f"| {'case':<42} |{extra_h} {'gradstyle ms':>12} | {'torch ms':>9} | {'ratio':>6} |")
    print(f"|{'-' * 44}|{extra_s}{'-' * 13}:|{'-' * 10}:|{'-' * 7}:|")
    for name, label, _ in cases:
        a, b = statistics.median(ours[name]) * 1e3, statistics.median(theirs[name]) * 1e3
        extra = ""
        if args.baseline:
            o = statistics.median(before[name]) * 1e3
            extra = f" {o:9.2f} | {b / o:6.2f} |"
        print(f"| {label:<42} |{extra} {a:12.2f} | {b:9.2f} | {b / a:6.2f} |")


if __name__ == "__main__":
    main()
