#!/usr/bin/python3
"""Times the PyTorch reference StyleGAN2 (tools/reference/stylegan2_ref.py: rosinality's layout and
grouped modulated convolution, plain torch ops, Debian's torch 1.13 CPU) on the configurations of
bench/models/bench_stylegan2.cpp, and optionally runs that C++ benchmark in the same session to
print the ratios recorded in docs/perf.md.

  /usr/bin/python3 tools/bench_torch_stylegan2.py [--threads 2] [--cpp build/bench/models/bench_stylegan2]
  /usr/bin/python3 tools/bench_torch_stylegan2.py --full /tmp/sg2_full [--cpp ...]

--full DIR writes the full-size parity case (a config-f 1024 px generator with random weights in
rosinality's layout, DIR/g1024.pt, and DIR/io1024.pt with a W+ input and the reference image
computed in float64), times the float32 reference forward at 1024 px, and with --cpp runs
`bench_stylegan2 --full-check=DIR`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
import stylegan2_ref as ref  # noqa: E402
from make_stylegan2_fixtures import randomise  # noqa: E402


def timeit(fn, min_time=2.0, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    t_end = time.perf_counter() + min_time
    while time.perf_counter() < t_end or len(times) < 2:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, len(times)


def torch_timings():
    torch.manual_seed(1)
    g = ref.Generator(256, 512, 8, channel_multiplier=2).eval()
    d = ref.Discriminator(256, channel_multiplier=2)
    res = {}
    with torch.no_grad():
        for b in (1, 8):
            wp = torch.randn(b, g.n_latent, 512)
            res[f"G256_Forward/{b}"] = timeit(lambda: g.synthesis(wp))
    x = torch.randn(8, 3, 256, 256)

    def d_step():
        d.zero_grad(set_to_none=True)
        d(x).sum().backward()

    res["D256_ForwardBackward/8"] = timeit(d_step)
    return res


def cpp_timings(binary, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([binary, "--benchmark_format=json", "--benchmark_filter=256"], env=env, check=True,
                         capture_output=True, text=True).stdout
    res = {}
    for bm in json.loads(out)["benchmarks"]:
        name = bm["name"].replace("BM_", "").replace("_CPU", "").split("/real_time")[0]
        name = name.replace("/min_time:2.000", "")
        res[name] = (bm["real_time"], bm["iterations"])
    return res


def full_case(out_dir, binary, threads):
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(1024)
    torch.manual_seed(0)
    g = ref.Generator(1024, 512, 8, channel_multiplier=2).eval()
    randomise(g, gen)
    sd = {k: v.detach().float().contiguous() for k, v in g.state_dict().items()}
    torch.save({"g_ema": sd, "latent_avg": torch.randn(512, generator=gen)}, os.path.join(out_dir, "g1024.pt"))
    wp = torch.randn(1, g.n_latent, 512, generator=gen)
    with torch.no_grad():
        t, n = timeit(lambda: g.synthesis(wp), min_time=1.0, warmup=1)
        print(f"torch float32 1024 px generator forward, batch 1: {t:.0f} ms (median of {n})")
        t0 = time.perf_counter()
        img = g.double().synthesis(wp.double())
        print(f"torch float64 reference forward: {time.perf_counter() - t0:.1f} s")
    torch.save({"w_plus": wp, "image": img.float()}, os.path.join(out_dir, "io1024.pt"))
    print(f"wrote {out_dir}/g1024.pt ({len(sd)} keys) and io1024.pt; image std {img.std().item():.3f}")
    if binary:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        r = subprocess.run([binary, f"--full-check={out_dir}"], env=env, capture_output=True, text=True)
        print(r.stdout + r.stderr, end="")
        return r.returncode
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cpp", help="path of bench_stylegan2 (runs it in the same session)")
    ap.add_argument("--full", help="write and check the 1024 px full-size case in this directory")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.full:
        sys.exit(full_case(args.full, args.cpp, args.threads))
    t = torch_timings()
    c = cpp_timings(args.cpp, args.threads) if args.cpp else {}
    print("| benchmark | PyTorch reference (ms) | gradstyle (ms) | gradstyle / PyTorch |")
    print("|---|---:|---:|---:|")
    for k, (ms, n) in t.items():
        ours = c.get(k)
        if ours:
            print(f"| {k} | {ms:.1f} | {ours[0]:.1f} | {ours[0] / ms:.2f} |")
        else:
            print(f"| {k} | {ms:.1f} | - | - |")


if __name__ == "__main__":
    main()
