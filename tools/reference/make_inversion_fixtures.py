#!/usr/bin/python3
"""PyTorch reference fixtures for `gradstyle invert` / `gradstyle edit` (issue 11).

Run with Debian's python3-torch (CPU):  /usr/bin/python3 tools/reference/make_inversion_fixtures.py
Writes tests/golden/inversion/ (checked to stay below 1.5 MB):

- e4e_full.pt: a tiny checkpoint in the ORIGINAL e4e_ffhq_encode.pt layout, written by torch.save:
  {state_dict: encoder.* (Encoder4Editing, IR-SE trunk, 8 heads, style width 32, input 32 px) +
  decoder.* (a 32 px rosinality generator with its noises.* buffers), opts (encoder_type,
  stylegan_size 32, start_from_latent_avg), latent_avg [8, 32]}; its storages tagged cuda:0 like
  files saved on a GPU;
- images/a.png, images/b.bmp, images/c.png: 40x36, 36x36 and 48x40 RGB images (not the encoder's size:
  the PIL bilinear resize is part of the path);
- age.pt: an InterFaceGAN-style direction [1, 32]; pca.pt: a GANSpace PCA {mean, comp, std} (6 components);
- inversion_io.pt: for the three images in name order, computed in float64 from the float32 weights
  with e4e's own recipe (PIL convert('RGB').resize((32, 32), BILINEAR), ToTensor, Normalize(0.5, 0.5),
  codes + latent_avg, G(w, input_is_latent=True, randomize_noise=False)):
    x [3,3,32,32], w [3,8,32], image [3,3,32,32], image_u8 [3,32,32,3] (e4e's tensor2im),
    age_w/age_image for w + 1.5 age, gs_w/gs_image for GANSpace (2, 1, 3, 4.0).
"""
import collections
import io
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stylegan2_ref as sref  # noqa: E402
from e4e_ref import Encoder4Editing  # noqa: E402
from irse_ref import randomize_  # noqa: E402
from make_stylegan2_fixtures import randomise  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "inversion")
SIZE, STYLE, N_STYLES, INPUT = 32, 32, 8, 32
G_CHANNELS = {4: 16, 8: 16, 16: 12, 32: 8}
E_BLOCKS, E_CHANNELS = (1, 1, 1, 1), (16, 20, 24, 32)
torch.set_num_threads(1)

FAKE_CUDA = set()
torch.serialization.register_package(
    1, lambda s: "cuda:0" if s.data_ptr() in FAKE_CUDA else None, lambda obj, location: None)


def f32(d):
    return collections.OrderedDict((k, v.detach().float().contiguous()) for k, v in d.items())


def images(gen):
    os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
    out = []
    for name, (w, h) in (("a.png", (40, 36)), ("b.bmp", (36, 36)), ("c.png", (48, 40))):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        base = torch.rand(3, generator=gen, dtype=torch.float64).numpy()
        px = np.stack([127 + 120 * np.sin(0.2 * xx * (c + 1) + 0.13 * yy + 6 * base[c]) for c in range(3)], -1)
        img = Image.fromarray(np.clip(np.round(px), 0, 255).astype(np.uint8), "RGB")
        img.save(os.path.join(OUT, "images", name))
        out.append(os.path.join(OUT, "images", name))
    return out


def tensor2im(x):
    v = ((x.permute(0, 2, 3, 1) + 1) / 2).clamp(0, 1) * 255
    return v.to(torch.uint8)  # truncation, as numpy's astype('uint8') in e4e's tensor2im


def main():
    gen = torch.Generator().manual_seed(20261202)
    enc = randomize_(Encoder4Editing(E_BLOCKS, E_CHANNELS, N_STYLES, STYLE, INPUT), gen).eval()
    g = sref.Generator(SIZE, STYLE, 2, channels=G_CHANNELS)
    randomise(g, gen)
    with torch.no_grad():  # keep the image in a sensible range: small ToRGB weights
        for n, p in g.named_parameters():
            if "to_rgb" in n and n.endswith("conv.weight"):
                p.mul_(0.05)
    g.eval()
    latent_avg = (torch.randn(N_STYLES, STYLE, generator=gen, dtype=torch.float64) * 0.3).float()
    sd = collections.OrderedDict()
    for k, v in enc.state_dict().items():
        sd["encoder." + k] = v.float() if v.is_floating_point() else v
    for k, v in g.state_dict().items():
        sd["decoder." + k] = v.float()
    for v in sd.values():
        FAKE_CUDA.add(v.data_ptr())
    opts = {"exp_dir": "experiment/tiny", "dataset_type": "ffhq_encode", "encoder_type": "Encoder4Editing",
            "start_from_latent_avg": True, "stylegan_size": SIZE, "learn_in_w": False, "batch_size": 8,
            "checkpoint_path": None, "device": "cuda:0"}
    buf = io.BytesIO()
    torch.save({"state_dict": sd, "opts": opts, "latent_avg": latent_avg}, buf)
    with open(os.path.join(OUT, "e4e_full.pt"), "wb") as f:
        f.write(buf.getvalue())

    age = (torch.randn(1, STYLE, generator=gen, dtype=torch.float64) * 0.5).float()
    FAKE_CUDA.add(age.data_ptr())
    torch.save(age, os.path.join(OUT, "age.pt"))
    K = 6
    q, _ = torch.linalg.qr(torch.randn(STYLE, K, generator=gen, dtype=torch.float64))
    pca = {"mean": (torch.randn(1, STYLE, generator=gen, dtype=torch.float64) * 0.2).float(),
           "comp": q.t().float().unsqueeze(1).contiguous(),
           "std": (torch.rand(K, generator=gen, dtype=torch.float64) * 2 + 0.5).float()}
    torch.save(pca, os.path.join(OUT, "pca.pt"))

    files = images(gen)
    xs = []
    for p in files:
        img = Image.open(p).convert("RGB").resize((INPUT, INPUT), Image.BILINEAR)
        t = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).double() / 255.0
        xs.append((t - 0.5) / 0.5)
    x = torch.stack(xs)
    encd, gd = enc.double(), g.double()
    with torch.no_grad():
        codes, _ = encd(x)
        w = codes + latent_avg.double().unsqueeze(0)
        image = gd.synthesis(w)  # const noise: randomize_noise=False
        age_w = w + 1.5 * age.double()
        age_image = gd.synthesis(age_w)
        pd = {k: v.double() for k, v in pca.items()}
        gs_w = w.clone()
        for b in range(w.shape[0]):
            coord = torch.sum((w[b, 0] - pd["mean"][0]) * pd["comp"][2, 0]) / pd["std"][2]
            gs_w[b, 1:3] += (4.0 - coord) * pd["comp"][2, 0] * pd["std"][2]
        gs_image = gd.synthesis(gs_w)
    io_ = f32({"x": x, "w": w, "image": image, "age_w": age_w, "age_image": age_image, "gs_w": gs_w,
               "gs_image": gs_image})
    io_["image_u8"] = tensor2im(image)
    io_["age_image_u8"] = tensor2im(age_image)
    torch.save(io_, os.path.join(OUT, "inversion_io.pt"))
    for n in ("e4e_full.pt", "age.pt", "pca.pt", "inversion_io.pt"):
        torch.load(os.path.join(OUT, n), map_location="cpu")
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"image range {image.min().item():.3f}..{image.max().item():.3f}; w range {w.min().item():.3f}..{w.max().item():.3f}")
    print(f"wrote {OUT}: {total / 1e6:.2f} MB")
    assert total < 1.5e6


if __name__ == "__main__":
    main()
