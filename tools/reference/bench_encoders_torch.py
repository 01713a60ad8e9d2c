#!/usr/bin/python3
"""PyTorch CPU timings of the reference encoder / loss networks at full size (random weights), for
the same-session comparison with bench/models/bench_encoders (docs/perf.md, issue 6).

Run with Debian's python3-torch (OpenBLAS installed, PERFORMANCE.md §10):
    /usr/bin/python3 tools/reference/bench_encoders_torch.py [--reps N] [--only e4e,lpips,...]
Prints one line per workload: median wall time over N runs after one warm-up, 2 threads.

    /usr/bin/python3 tools/reference/bench_encoders_torch.py --write-full DIR
writes DIR/e4e_full.pt, a FULL-SIZE e4e checkpoint in e4e_ffhq_encode.pt's layout (random weights,
1.07 GB: {state_dict: encoder.*, opts, latent_avg}, root 'archive'), and DIR/e4e_full_io.pt (a
256-px synthetic input and the W+ computed in float64), and times torch.load + load_state_dict of
it. GS_E4E_FULL=DIR ./bench_encoders --benchmark_filter=LoadFull then loads the same file, checks
its W+ against PyTorch's and times the load.
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e4e_ref import Encoder4Editing, e4e_forward  # noqa: E402
from irse_ref import Backbone, id_loss  # noqa: E402
from lpips_ref import LPIPS  # noqa: E402
from irse_ref import randomize_  # noqa: E402


def timeit(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def write_full(out_dir):
    import collections
    import io as pyio
    from make_encoder_fixtures import synthetic_image
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(7)
    enc = randomize_(Encoder4Editing(), gen).eval()
    avg = (torch.randn(18, 512, generator=gen, dtype=torch.float64) * 0.5).float()
    sd = collections.OrderedDict(("encoder." + k, v) for k, v in enc.state_dict().items())
    opts = {"encoder_type": "Encoder4Editing", "stylegan_size": 1024, "start_from_latent_avg": True,
            "dataset_type": "ffhq_encode", "learn_in_w": False}
    buf = pyio.BytesIO()
    torch.save({"state_dict": sd, "opts": opts, "latent_avg": avg}, buf)
    path = os.path.join(out_dir, "e4e_full.pt")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    del buf
    x = synthetic_image(1, 3, 256, 256)
    with torch.no_grad():
        enc64 = enc.double()
        w, feats = e4e_forward(enc64, avg.double(), x.double())
    torch.save({"x": x, "w_plus": w.float(), "c3": feats["c3"].float()}, os.path.join(out_dir, "e4e_full_io.pt"))
    del enc, enc64

    def load():
        ck = torch.load(path, map_location="cpu")
        e = Encoder4Editing()
        e.load_state_dict({k[8:]: v for k, v in ck["state_dict"].items() if k.startswith("encoder.")})
        return e
    t0 = time.perf_counter()
    load()
    print(f"wrote {path} ({os.path.getsize(path) / 1e9:.2f} GB); torch.load + build + load_state_dict: "
          f"{time.perf_counter() - t0:.2f} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--write-full", default="", help="write the full-size e4e checkpoint and I/O to this directory")
    ap.add_argument("--only", default="", help="comma list: e4e,lpips,lpips_bwd,arcface,idloss")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    if args.write_full:
        write_full(args.write_full)
        return
    only = set(args.only.split(",")) if args.only else None
    want = lambda k: only is None or k in only  # noqa: E731
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, blas: {torch.__config__.show().count('OpenBLAS') > 0 and 'OpenBLAS' or 'see torch.__config__'}")

    if want("e4e"):
        enc = Encoder4Editing().eval()
        avg = torch.randn(18, 512) * 0.1
        x = (torch.randn(1, 3, 256, 256) * 0.5).clamp(-1, 1)
        with torch.no_grad():
            med, best = timeit(lambda: e4e_forward(enc, avg, x), args.reps)
        print(f"e4e forward 256 batch 1: median {med:.3f} s, best {best:.3f} s")
        del enc

    if want("lpips") or want("lpips_bwd"):
        lp = LPIPS().eval()
        for p in lp.parameters():
            p.requires_grad_(False)
        a = (torch.randn(1, 3, 256, 256) * 0.5).clamp(-1, 1)
        b = (torch.randn(1, 3, 256, 256) * 0.5).clamp(-1, 1)
        if want("lpips"):
            with torch.no_grad():
                med, best = timeit(lambda: lp(a, b), args.reps)
            print(f"LPIPS-VGG16 forward 256 batch 1: median {med:.3f} s, best {best:.3f} s")
        if want("lpips_bwd"):
            def fb():
                aa = a.clone().requires_grad_()
                lp(aa, b).sum().backward()
            med, best = timeit(fb, args.reps)
            print(f"LPIPS-VGG16 forward+backward 256 batch 1: median {med:.3f} s, best {best:.3f} s")

    if want("arcface") or want("idloss"):
        net = Backbone(112).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        if want("arcface"):
            x = (torch.randn(1, 3, 112, 112) * 0.5).clamp(-1, 1)
            with torch.no_grad():
                med, best = timeit(lambda: net(x), args.reps)
            print(f"ArcFace IR-SE50 embed 112 batch 1: median {med:.3f} s, best {best:.3f} s")
        if want("idloss"):
            y = (torch.randn(1, 3, 256, 256) * 0.5).clamp(-1, 1)

            def fb():
                yh = (torch.randn(1, 3, 256, 256) * 0.5).clamp(-1, 1).requires_grad_()
                id_loss(net, yh, y).backward()
            med, best = timeit(fb, args.reps)
            print(f"ArcFace ID loss forward+backward 256 batch 1: median {med:.3f} s, best {best:.3f} s")


if __name__ == "__main__":
    main()
