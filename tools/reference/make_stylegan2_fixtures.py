#!/usr/bin/python3
"""Parity fixtures for the StyleGAN2 generator and discriminator (issue 6).

Run with Debian's python3-torch (CPU):  /usr/bin/python3 tools/reference/make_stylegan2_fixtures.py
Writes tests/golden/stylegan2/ (checked to stay below 3 MB):

  tiny.pt          {'g_ema', 'latent_avg', 'd'}: a 32 px generator (style_dim 32, n_mlp 3, channels
                   {4: 16, 8: 16, 16: 12, 32: 8}) and a 32 px discriminator with the same table, in
                   rosinality's key layout, torch.save zip format (like stylegan2-ffhq-config-f.pt).
  tiny_legacy.pt   {'g_ema', 'latent_avg'} of the same generator WITHOUT noises.* (an older model.py),
                   legacy serialisation (_use_new_zipfile_serialization=False).
  tiny_missing.pt  g_ema with 'convs.3.conv.modulation.bias' removed (strict loading must name it).
  tiny_badshape.pt g_ema with 'to_rgbs.1.conv.weight' of a wrong shape.
  tiny_io.pt       inputs, outputs and gradients (float32), described below in make_io(), and the
                   uint8 images NVIDIA's generate.py recipe gives for seeds 0 and 5 (CLI test).

All parameters are randomised (biases, noise strengths and ToRGB biases too, which are zeros at
initialisation) so every term of the forward is exercised. Inputs are seeded; the reference runs in
float64 from the float32 weights and inputs, and results are stored as float32.
"""
import io
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stylegan2_ref as ref  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "stylegan2")
CHANNELS = {4: 16, 8: 16, 16: 12, 32: 8}
SIZE, STYLE_DIM, N_MLP = 32, 32, 3

torch.set_num_threads(1)


def randomise(module, gen):
    """Non-trivial values for every parameter (float32), keeping rosinality's scales sensible."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("noise.weight"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith("modulation.bias"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            elif name.startswith("style.") and name.endswith("weight"):
                p.copy_(torch.randn(p.shape, generator=gen) / 0.01)  # randn / lr_mul, as initialised
            else:
                p.copy_(torch.randn(p.shape, generator=gen))
        for name, b in module.named_buffers():
            if "noise_" in name:
                b.copy_(torch.randn(b.shape, generator=gen))


def build(gen):
    g = ref.Generator(SIZE, STYLE_DIM, N_MLP, channels=CHANNELS)
    d = ref.Discriminator(SIZE, channels=CHANNELS)
    randomise(g, gen)
    randomise(d, gen)
    return g.eval(), d.eval()


def f32(t):
    return t.detach().float().contiguous().clone()


def param_grads(module, loss, names):
    params = dict(module.named_parameters())
    grads = torch.autograd.grad(loss, [params[n] for n in names], retain_graph=True)
    return {n: g for n, g in zip(names, grads)}


def make_io(g32, d32, gen):
    g = g32.double()
    d = d32.double()
    out = {}
    rnd = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float32).double()  # noqa: E731

    # --- mapping, truncation and synthesis from z
    z = rnd(4, STYLE_DIM)
    latent_avg = g.style(rnd(64, STYLE_DIM)).mean(0)  # stored as the checkpoint's latent_avg
    latent_avg = latent_avg.float().double()
    out["z"] = z
    out["latent_avg"] = latent_avg
    out["g_style"] = g.style(z)
    out["g_img_z_trunc07"] = g(z, truncation=0.7, truncation_latent=latent_avg[None])

    # --- synthesis from W+, const noise, no noise, gradients
    wp = rnd(2, g.n_latent, STYLE_DIM).requires_grad_(True)
    r_img = rnd(2, 3, SIZE, SIZE)
    img = g.synthesis(wp)
    loss = (img * r_img).sum()
    out["w_plus"] = wp
    out["r_img"] = r_img
    out["g_img"] = img
    out["g_img_nonoise"] = g.synthesis(wp, noise=g.noise_list("none"))
    g_names = ["input.input", "conv1.noise.weight", "convs.1.conv.weight", "convs.2.conv.modulation.weight",
               "convs.2.activate.bias", "to_rgbs.0.conv.modulation.weight", "to_rgbs.2.bias"]
    grads = param_grads(g, loss, g_names)
    out["g_grad_w_plus"] = torch.autograd.grad(loss, wp, retain_graph=True)[0]
    for n in g_names:
        out["g_grad." + n] = grads[n]

    # --- gradient through the mapping network (z -> image, no truncation)
    zg = z.clone().requires_grad_(True)
    r4 = rnd(4, 3, SIZE, SIZE)
    loss_z = (g(zg) * r4).sum()
    out["r_img4"] = r4
    s_names = ["style.1.weight", "style.3.bias"]
    gz = torch.autograd.grad(loss_z, [zg] + [dict(g.named_parameters())[n] for n in s_names])
    out["g_grad_z"] = gz[0]
    for n, t in zip(s_names, gz[1:]):
        out["g_grad." + n] = t

    # --- hooks (SPEC B.1): the feature entering StyledConv b is replaced
    with torch.no_grad():
        wp0 = wp.detach()
        delta3 = rnd(2, CHANNELS[8], 8, 8)   # enters convs[1] (b = 3, odd: no ToRGB in between)
        delta4 = rnd(2, CHANNELS[8], 8, 8)   # enters convs[2] (b = 4, even: to_rgbs[0] reads it)
        out["delta3"] = delta3
        out["delta4"] = delta4
        out["g_img_hook3"] = g.synthesis(wp0, hook=lambda b, x: x + delta3 if b == 3 else x)
        out["g_img_hook4"] = g.synthesis(wp0, hook=lambda b, x: x + delta4 if b == 4 else x)
        out["g_img_hook_scale"] = g.synthesis(wp0, hook=lambda b, x: x * (1 + 0.05 * b))
        out["g_feat_stop1"] = g.synthesis(wp0, stop_after=1)
        out["g_feat_stop4"] = g.synthesis(wp0, stop_after=4)
        out["g_feat_stop7"] = g.synthesis(wp0, stop_after=7)

    # --- `gradstyle generate --seeds 0,5 --trunc 0.7`: NVIDIA generate.py's z and uint8 conversion
    import numpy as np
    with torch.no_grad():
        zs = torch.from_numpy(np.concatenate([np.random.RandomState(s).randn(1, STYLE_DIM) for s in (0, 5)]))
        zs = zs.float().double()  # NVIDIA's mapping casts z to float32
        img = g(zs, truncation=0.7, truncation_latent=latent_avg[None])
        out["cli_z"] = zs
        out["cli_img_u8"] = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)

    # --- discriminator: scores, input gradient, parameter gradients, R1 second order
    for b in (2, 4, 8):
        # Smooth images plus a little noise (white noise is mostly removed by the blur pyramid).
        smooth = torch.nn.functional.interpolate(rnd(b, 3, 8, 8), size=(SIZE, SIZE), mode="bilinear",
                                                 align_corners=False)
        x = (2 * smooth + 0.2 * rnd(b, 3, SIZE, SIZE)).float().double().requires_grad_(True)
        score = d(x)
        out[f"d_x{b}"] = x
        out[f"d_score{b}"] = score
        if b == 4:
            (gx,) = torch.autograd.grad(score.sum(), x, create_graph=True)
            out["d_grad_x4"] = gx
            d_names = ["convs.0.0.weight", "convs.1.conv2.1.weight", "convs.2.skip.1.weight", "final_conv.1.bias",
                       "final_linear.0.weight", "final_linear.1.bias"]
            dg = param_grads(d, score.sum(), d_names)
            for n in d_names:
                out["d_grad." + n] = dg[n]
            r1 = gx.pow(2).reshape(b, -1).sum(1).mean()
            out["d_r1"] = r1.reshape(1)
            r1_names = ["convs.1.conv1.0.weight", "final_conv.0.weight", "final_linear.0.weight"]
            rg = torch.autograd.grad(r1, [dict(d.named_parameters())[n] for n in r1_names])
            for n, t in zip(r1_names, rg):
                out["d_r1_grad." + n] = t
    return {k: (v if v.dtype == torch.uint8 else f32(v)) for k, v in out.items()}


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(20240217)
    g, d = build(gen)
    io_tensors = make_io(g, d, gen)
    g_sd = {k: f32(v) for k, v in g.state_dict().items()}
    d_sd = {k: f32(v) for k, v in d.state_dict().items()}
    latent_avg = io_tensors["latent_avg"]

    torch.save({"g_ema": g_sd, "latent_avg": latent_avg, "d": d_sd}, os.path.join(OUT, "tiny.pt"))
    old = {k: v for k, v in g_sd.items() if not k.startswith("noises.")}
    torch.save({"g_ema": old, "latent_avg": latent_avg}, os.path.join(OUT, "tiny_legacy.pt"),
               _use_new_zipfile_serialization=False)
    missing = dict(g_sd)
    del missing["convs.3.conv.modulation.bias"]
    torch.save({"g_ema": missing}, os.path.join(OUT, "tiny_missing.pt"))
    bad = dict(g_sd)
    bad["to_rgbs.1.conv.weight"] = torch.zeros(1, 3, CHANNELS[16] + 1, 1, 1)
    torch.save({"g_ema": bad}, os.path.join(OUT, "tiny_badshape.pt"))
    torch.save(io_tensors, os.path.join(OUT, "tiny_io.pt"))

    # Read everything back with torch.load so the files are known-good.
    back = torch.load(os.path.join(OUT, "tiny.pt"))
    assert set(back["g_ema"]) == set(g_sd) and set(back["d"]) == set(d_sd)
    torch.load(os.path.join(OUT, "tiny_legacy.pt"))
    g_params = sum(v.numel() for k, v in g.named_parameters())
    d_params = sum(v.numel() for k, v in d.named_parameters())
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"generator: {len(g_sd)} keys, {g_params} parameters; discriminator: {len(d_sd)} keys, {d_params} parameters")
    print(f"wrote {OUT}: {total / 1e6:.2f} MB")
    assert total < 3e6, "fixtures must stay below 3 MB"


if __name__ == "__main__":
    main()
