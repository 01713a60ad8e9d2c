#!/usr/bin/python3
"""`gradstyle invert` + one edit per image beside the same work in PyTorch, in one run (issue 11).

  /usr/bin/python3 tools/bench_torch_invert.py --setup 1024 [--images 3] [--cli build/src/cli/gradstyle]
  /usr/bin/python3 tools/bench_torch_invert.py --setup 256
  ... --rss   also the peak RSS of each side, each as a process of its own

Builds the e4e setup with random weights: the full IR-SE50 Encoder4Editing (tools/reference/e4e_ref.py)
and a rosinality generator (config-f channels; 1024 px with 18 W+ rows, or 256 px with 14), saves
them as ONE checkpoint in e4e_ffhq_encode.pt's layout (state_dict with encoder.* and decoder.*,
opts, latent_avg; written by torch.save). The edit is e4e's real InterFaceGAN age.pt
(../shared/data/e4e-editings). The inputs are the
real photos of ../shared/data (astronaut, camera, chelsea), as files.

PyTorch side (Debian's torch, float32, 2 threads; the reference modules, which follow the original
code op for op): torch.load, then per image PIL open/convert/resize(256, BILINEAR), ToTensor,
Normalize, w = E(x) + latent_avg, G(w) with const noise, w + 3 d, G(w + 3 d).
gradstyle side: `gradstyle invert CKPT` and `gradstyle edit CKPT --direction d --edit_degree 3`
(which inverts, renders the inversion and the edit: the same work as the PyTorch loop, plus
writing the PNGs) on the same files, timed as processes, once with 1 image and once with all; the
per-image cost is the difference over the extra images, so the one-off load is separated out.
The latents of both sides are compared.
"""
import argparse
import collections
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
import stylegan2_ref as sref  # noqa: E402
from e4e_ref import Encoder4Editing  # noqa: E402
from irse_ref import randomize_  # noqa: E402
from make_stylegan2_fixtures import randomise  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, ".."))
PHOTOS = ["astronaut.png", "camera.png", "chelsea.png"]


def build(setup, out):
    gen = torch.Generator().manual_seed(1234)
    n_styles = 18 if setup == 1024 else 14
    t0 = time.perf_counter()
    enc = randomize_(Encoder4Editing(n_styles=n_styles), gen).eval()
    g = sref.Generator(setup, 512, 8)
    randomise(g, gen)
    with torch.no_grad():
        for n, p in g.named_parameters():
            if "to_rgb" in n and n.endswith("conv.weight"):
                p.mul_(0.05)
    g.eval()
    avg = (torch.randn(n_styles, 512, generator=gen, dtype=torch.float64) * 0.3).float()
    sd = collections.OrderedDict(("encoder." + k, v) for k, v in enc.state_dict().items())
    sd.update(("decoder." + k, v) for k, v in g.state_dict().items())
    opts = {"encoder_type": "Encoder4Editing", "stylegan_size": setup, "start_from_latent_avg": True,
            "dataset_type": "ffhq_encode", "learn_in_w": False}
    ckpt = os.path.join(out, f"e4e_{setup}.pt")
    torch.save({"state_dict": sd, "opts": opts, "latent_avg": avg}, ckpt)
    print(f"built the {setup} px setup ({os.path.getsize(ckpt) / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s",
          flush=True)
    # the real InterFaceGAN age direction of e4e's editings (a [1, 512] tensor, added to every row)
    return ckpt, os.path.join(ROOT, "..", "shared", "data", "e4e-editings", "age.pt")


def torch_side(ckpt, dpath, files, setup):
    t0 = time.perf_counter()
    obj = torch.load(ckpt, map_location="cpu")
    n_styles = obj["latent_avg"].shape[0]
    enc = Encoder4Editing(n_styles=n_styles)
    enc.load_state_dict({k[8:]: v for k, v in obj["state_dict"].items() if k.startswith("encoder.")})
    g = sref.Generator(setup, 512, 8)
    g.load_state_dict({k[8:]: v for k, v in obj["state_dict"].items() if k.startswith("decoder.")})
    enc.eval(), g.eval()
    avg = obj["latent_avg"]
    d = torch.load(dpath, map_location="cpu").float()
    load_s = time.perf_counter() - t0
    per, ws = [], []
    with torch.no_grad():
        for f in files:
            t = time.perf_counter()
            img = Image.open(f).convert("RGB").resize((256, 256), Image.BILINEAR)
            x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)[None]
            codes, _ = enc(x)
            w = codes + avg[None]
            rec = g.synthesis(w)
            edit = g.synthesis(w + 3.0 * d)
            per.append(time.perf_counter() - t)
            ws.append(w)
            assert torch.isfinite(rec).all() and torch.isfinite(edit).all()
    return load_s, per, torch.cat(ws)


def run(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def read_latents(path):
    """The 'latents' tensor of a safetensors file (F32), without the safetensors package."""
    import json
    import struct
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])["latents"]
    assert h["dtype"] == "F32"
    lo, hi = h["data_offsets"]
    return np.frombuffer(b[8 + n + lo:8 + n + hi], dtype="<f4").reshape(h["shape"]).copy()


def cli_side(cli, ckpt, dpath, files, work):
    def both(n):
        d = os.path.join(work, f"in{n}")
        os.makedirs(d, exist_ok=True)
        for f in files[:n]:
            shutil.copy(f, d)
        ti = run([cli, "invert", ckpt, "--images_dir", d, "--save_dir", os.path.join(work, f"inv{n}"),
                  "--device", "cpu", "--quiet", "--overwrite"])
        te = run([cli, "edit", ckpt, "--images_dir", d, "--save_dir", os.path.join(work, f"edit{n}"),
                  "--device", "cpu", "--quiet", "--overwrite", "--direction", dpath, "--edit_attribute", "age",
                  "--edit_degree", "3"])
        return ti, te
    i1, e1 = both(1)
    n = len(files)
    iN, eN = both(n)
    return i1, e1, iN, eN, read_latents(os.path.join(work, f"inv{n}", "latents.safetensors"))


def peak_rss_mb(cmd):
    """Peak resident memory of a command run as its own process (GNU time's %M, in MB)."""
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    return int(r.stderr.strip().splitlines()[-1]) / 1024.0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--torch-side":  # the PyTorch work alone, for --rss
        ckpt, dpath, setup, threads = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        torch.set_num_threads(threads)
        torch_side(ckpt, dpath, sys.argv[6:], setup)
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--setup", type=int, choices=(256, 1024), default=1024)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "src", "cli", "gradstyle"))
    ap.add_argument("--work", default=None, help="folder for the checkpoint (default: a temporary one)")
    ap.add_argument("--rss", action="store_true",
                    help="also the peak RSS of each side as a process of its own (invert + 1 edit of every photo)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    work = a.work or tempfile.mkdtemp(prefix="gs_bench_invert_")
    os.makedirs(work, exist_ok=True)
    files = [os.path.join(ROOT, "..", "shared", "data", p) for p in PHOTOS][: a.images]
    ckpt, dpath = build(a.setup, work)
    load_s, per, w_torch = torch_side(ckpt, dpath, files, a.setup)
    i1, e1, iN, eN, w_ours = cli_side(a.cli, ckpt, dpath, files, work)
    n = len(files)
    diff = (torch.from_numpy(w_ours) - w_torch).abs().max().item() / w_torch.abs().max().item()
    # `edit` inverts too: its per-image cost is the same work as PyTorch's loop (e4e, G(w), G(w + 3 d)).
    ours_per = (eN - e1) / (n - 1) if n > 1 else float("nan")
    inv_per = (iN - i1) / (n - 1) if n > 1 else float("nan")
    print(f"setup {a.setup} px, {n} photos, {a.threads} threads, {time.strftime('%Y-%m-%d')}")
    print(f"PyTorch: load {load_s:.2f} s; invert + 1 edit per image median {statistics.median(per):.2f} s "
          f"(all: {', '.join(f'{t:.2f}' for t in per)})")
    print(f"gradstyle: invert {i1:.2f} s (1 image) / {iN:.2f} s ({n}); edit {e1:.2f} s / {eN:.2f} s; "
          f"per image, load excluded: invert {inv_per:.2f} s, invert + 1 edit {ours_per:.2f} s")
    print(f"latents: max |ours - PyTorch| / max |PyTorch| = {diff:.2e}")
    if a.rss:
        d = os.path.join(work, f"in{n}")
        ours = peak_rss_mb([a.cli, "edit", ckpt, "--images_dir", d, "--save_dir", os.path.join(work, "edit_rss"),
                            "--device", "cpu", "--quiet", "--overwrite", "--direction", dpath, "--edit_attribute",
                            "age", "--edit_degree", "3"])
        theirs = peak_rss_mb([sys.executable, os.path.abspath(__file__), "--torch-side", ckpt, dpath, str(a.setup),
                              str(a.threads)] + files)
        print(f"peak RSS, invert + 1 edit of {n} photos: gradstyle {ours:.0f} MB, PyTorch {theirs:.0f} MB "
              f"(ratio {ours / theirs:.2f})")
    if not a.work:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
