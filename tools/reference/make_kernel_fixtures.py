#!/usr/bin/python3
"""PyTorch reference fixtures for the hand-written kernels of issue 4: selective (top-k)
attention, the perspective warp and the modulated convolution.

Run with Debian's python3-torch (CPU):

    /usr/bin/python3 tools/reference/make_kernel_fixtures.py

It writes tests/golden/kernels/index.json and tests/golden/kernels/data.bin. Every case evaluates
the plain PyTorch formulation of the op in float64 (each one is written independently of our C++
code: dense attention with a top-k threshold mask; grid_sample on the homography grid;
rosinality's grouped modulated conv followed by the blur / noise / bias / lrelu epilogue),
back-propagates a random weight `gy` (loss = sum(y * gy)) and stores inputs, outputs and
gradients. data.bin holds the tensors raw, little-endian, back to back (float64, or float32 where
an entry says so); index.json gives each case's parameters and, per tensor, dtype, shape and
byte offset. tests/ops/kernel_fixture.hpp reads them.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(20240404)
np.random.seed(20240404)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT_DIR = os.path.join(ROOT, "tests", "golden", "kernels")

cases = []
blob = bytearray()


def add_tensor(entry, name, t, dtype="f64"):
    npd = {"f64": "<f8", "f32": "<f4"}[dtype]
    a = t.detach().to(torch.float64).contiguous().numpy().astype(npd)
    entry["tensors"][name] = {"dtype": dtype, "shape": list(a.shape), "offset": len(blob)}
    blob.extend(a.tobytes())


def run_case(name, op, params, inputs, fn, dtype="f64", extra=None):
    """inputs: dict name -> float64 tensor; those with requires_grad get 'grad_<name>'.
    fn(leaves) -> output y, or (y, dict of extra outputs)."""
    leaves = {k: v.detach().clone().requires_grad_(v.requires_grad) for k, v in inputs.items()}
    res = fn(leaves)
    outs = {}
    if isinstance(res, tuple):
        res, outs = res
    entry = {"name": name, "op": op, "params": params, "tensors": {}}
    for k, v in inputs.items():
        add_tensor(entry, k, v, dtype)
    add_tensor(entry, "y", res, dtype)
    for k, v in outs.items():
        add_tensor(entry, k, v, dtype)
    for k, v in (extra or {}).items():
        add_tensor(entry, k, v, dtype)
    diff = [k for k, v in leaves.items() if v.requires_grad]
    if diff:
        gy = torch.randn_like(res)
        grads = torch.autograd.grad((res * gy).sum(), [leaves[k] for k in diff])
        add_tensor(entry, "gy", gy, dtype)
        for k, g in zip(diff, grads):
            add_tensor(entry, "grad_" + k, g, dtype)
    cases.append(entry)


# ---------------------------------------------------------------------------------------------
# Selective attention: dense scores, per-row threshold = k-th largest (torch.topk values), keep
# every score >= threshold (ties kept), softmax over kept entries, times V.
def topk_count(mu, length):
    return min(length, max(1, math.ceil(mu * length)))


def dense_topk_attention(q, k, v, mu, heads):
    B, Lq, C = q.shape
    Lk = k.shape[1]
    d = C // heads
    kk = topk_count(mu, Lk)
    qh = q.reshape(B, Lq, heads, d).permute(0, 2, 1, 3)
    kh = k.reshape(B, Lk, heads, d).permute(0, 2, 1, 3)
    vh = v.reshape(B, Lk, heads, d).permute(0, 2, 1, 3)
    s = (qh @ kh.transpose(-1, -2)) / math.sqrt(d)
    tau = torch.topk(s.detach(), kk, dim=-1).values[..., -1:]
    keep = s.detach() >= tau
    p = torch.softmax(s.masked_fill(~keep, float("-inf")), dim=-1)
    lse = torch.logsumexp(s.detach().masked_fill(~keep, float("-inf")), dim=-1)
    o = (p @ vh).permute(0, 2, 1, 3).reshape(B, Lq, C)
    return o, {"tau": tau[..., 0], "lse": lse, "kept": keep.sum(-1).to(torch.float64)}


def attention_case(name, B, Lq, Lk, C, heads, mu, gen, dtype="f64"):
    q, k, v = gen(B, Lq, Lk, C)
    params = {"heads": heads, "mu": mu, "k_top": topk_count(mu, Lk)}
    run_case(name, "selective_attention", params,
             {"q": q.requires_grad_(), "k": k.requires_grad_(), "v": v.requires_grad_()},
             lambda t: dense_topk_attention(t["q"], t["k"], t["v"], mu, heads), dtype)


def gaussian(B, Lq, Lk, C):
    return (torch.randn(B, Lq, C, dtype=torch.float64), torch.randn(B, Lk, C, dtype=torch.float64),
            torch.randn(B, Lk, C, dtype=torch.float64))


def tied_integers(B, Lq, Lk, C):
    # Small integers: every score is exact in float32 and float64 whatever the summation order.
    # Keys repeat (only 4 distinct key vectors), so the k-th largest score is tied in most rows.
    q = torch.randint(-2, 3, (B, Lq, C)).to(torch.float64)
    base = torch.randint(-2, 3, (B, 4, C)).to(torch.float64)
    idx = torch.randint(0, 4, (Lk,))
    k = base[:, idx, :].clone()
    v = torch.randn(B, Lk, C, dtype=torch.float64)
    return q, k, v


def make_attention():
    attention_case("attn_basic", 2, 12, 12, 8, 2, 0.3, gaussian)
    attention_case("attn_cross", 1, 5, 17, 64, 1, 0.5, gaussian)
    attention_case("attn_ties", 2, 9, 10, 8, 2, 0.2, tied_integers)
    attention_case("attn_k1", 1, 6, 11, 16, 2, 0.01, gaussian)
    attention_case("attn_kL", 1, 6, 11, 16, 2, 1.0, gaussian)
    attention_case("attn_L64", 1, 64, 64, 128, 2, 0.25, gaussian, dtype="f32")


# ---------------------------------------------------------------------------------------------
# Perspective warp: homography (destination -> source, normalised coordinates, pixel centres at
# (2i+1)/n - 1) solved with numpy from the corner pairs; grid_sample(bilinear, zeros,
# align_corners=False) on the grid H (u, v, 1).
SRC_CORNERS = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)


def homography_numpy(dst):
    A, rhs = [], []
    for (u, v), (x, y) in zip(dst, SRC_CORNERS):
        A.append([u, v, 1, 0, 0, 0, -u * x, -v * x])
        rhs.append(x)
        A.append([0, 0, 0, u, v, 1, -u * y, -v * y])
        rhs.append(y)
    h = np.linalg.solve(np.array(A), np.array(rhs))
    return np.append(h, 1.0).reshape(3, 3)


def homography_grid(H, h, w):
    B = H.shape[0]
    u = (2 * torch.arange(w, dtype=torch.float64) + 1) / w - 1
    v = (2 * torch.arange(h, dtype=torch.float64) + 1) / h - 1
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    pts = torch.stack([uu, vv, torch.ones_like(uu)], -1).reshape(-1, 3)  # [h*w, 3]
    p = torch.einsum("bij,nj->bni", H, pts)
    return (p[..., :2] / p[..., 2:]).reshape(B, h, w, 2)


def warp_torch(x, H):
    grid = homography_grid(H, x.shape[2], x.shape[3])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def warp_case(name, shapes, corners):
    H = torch.tensor(np.stack([homography_numpy(c) for c in corners]))
    cor = torch.tensor(np.stack(corners))
    for i, (c, h, w) in enumerate(shapes):
        x = torch.randn(len(corners), c, h, w, dtype=torch.float64)
        run_case(f"{name}_{i}", "perspective_warp", {"level": i},
                 {"x": x.requires_grad_()}, lambda t: warp_torch(t["x"], H),
                 extra={"H": H, "corners": cor})


def inward(d, u):
    return SRC_CORNERS - SRC_CORNERS * d * u


def make_warp():
    rng = np.random.default_rng(7)
    corners = [inward(0.15, rng.uniform(size=(4, 2))),   # the default distortion
               inward(0.45, rng.uniform(size=(4, 2))),   # strong perspective
               SRC_CORNERS.copy(),                       # identity
               inward(-0.3, rng.uniform(size=(4, 2)))]   # corners outward: samples leave the map
    # one homography per sample shared by the three GradStyle scales (+ a non-square map)
    warp_case("warp", [(3, 8, 8), (2, 16, 16), (2, 32, 32), (2, 12, 20)], corners)


# ---------------------------------------------------------------------------------------------
# Modulated conv: rosinality's ModulatedConv2d (grouped conv with per-sample weights) followed by
# NoiseInjection and FusedLeakyReLU / ToRGB bias, with its upfirdn2d written out in plain torch.
def upfirdn2d_ref(x, k, up=1, down=1, pad=(0, 0)):
    # rosinality op/upfirdn2d.py upfirdn2d_native with pad = (pad0, pad1) on both axes
    p0, p1 = pad
    B, C, H, W = x.shape
    x = x.reshape(-1, H, 1, W, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
    x = x.reshape(-1, 1, H * up, W * up)
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    x = x[:, :, max(-p0, 0): x.shape[2] - max(-p1, 0), max(-p0, 0): x.shape[3] - max(-p1, 0)]
    w = torch.flip(k, [0, 1]).view(1, 1, *k.shape)
    x = F.conv2d(x, w)
    x = x[:, :, ::down, ::down]
    return x.reshape(B, C, x.shape[2], x.shape[3])


def make_kernel(k):
    k = torch.tensor(k, dtype=torch.float64)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def modconv_ref(x, weight, style, demodulate, up, down, noise, noise_weight, bias, act, clamp):
    B, I, H, W = x.shape
    O, _, k, _ = weight.shape
    scale = 1 / math.sqrt(I * k * k)
    w = scale * weight[None] * style.view(B, 1, I, 1, 1)
    if demodulate:
        w = w * torch.rsqrt(w.pow(2).sum([2, 3, 4]) + 1e-8).view(B, O, 1, 1, 1)
    blur = make_kernel([1, 3, 3, 1])
    if up == 2:
        wt = w.transpose(1, 2).reshape(B * I, O, k, k)
        out = F.conv_transpose2d(x.reshape(1, B * I, H, W), wt, padding=0, stride=2, groups=B)
        out = out.view(B, O, out.shape[2], out.shape[3])
        p = (4 - 2) - (k - 1)
        out = upfirdn2d_ref(out, blur * 4, pad=((p + 1) // 2 + 1, p // 2 + 1))
    elif down == 2:
        p = (4 - 2) + (k - 1)
        xb = upfirdn2d_ref(x, blur, pad=((p + 1) // 2, p // 2))
        out = F.conv2d(xb.reshape(1, B * I, *xb.shape[2:]), w.reshape(B * O, I, k, k), stride=2, groups=B)
        out = out.view(B, O, out.shape[2], out.shape[3])
    else:
        out = F.conv2d(x.reshape(1, B * I, H, W), w.reshape(B * O, I, k, k), padding=k // 2, groups=B)
        out = out.view(B, O, H, W)
    if noise is not None:
        out = out + noise_weight * noise
    out = out + bias.view(1, -1, 1, 1)
    if act:
        out = F.leaky_relu(out, 0.2) * math.sqrt(2)
    if clamp >= 0:
        out = out.clamp(-clamp, clamp)
    return out


def modconv_case(name, B, I, O, H, k, demodulate, up, down, noise, act, clamp):
    x = torch.randn(B, I, H, H, dtype=torch.float64)
    weight = torch.randn(O, I, k, k, dtype=torch.float64)
    style = 1 + 0.3 * torch.randn(B, I, dtype=torch.float64)
    bias = 0.1 * torch.randn(O, dtype=torch.float64)
    OH = H * 2 if up == 2 else (H // 2 if down == 2 else H)
    inputs = {"x": x.requires_grad_(), "weight": weight.requires_grad_(), "styles": style.requires_grad_(),
              "bias": bias.requires_grad_()}
    if noise:
        inputs["noise"] = torch.randn(B, 1, OH, OH, dtype=torch.float64)
        inputs["noise_weight"] = torch.tensor([0.7], dtype=torch.float64).requires_grad_()
    params = {"demodulate": demodulate, "up": up, "down": down, "act": act, "clamp": clamp}
    run_case(name, "modulated_conv2d", params, inputs,
             lambda t: modconv_ref(t["x"], t["weight"], t["styles"], demodulate, up, down, t.get("noise"),
                                   t.get("noise_weight"), t["bias"], act, clamp))


def make_modconv():
    modconv_case("modconv_3x3", 2, 4, 5, 6, 3, True, 1, 1, True, True, -1)
    modconv_case("modconv_up", 2, 3, 4, 5, 3, True, 2, 1, True, True, 0.5)
    modconv_case("modconv_torgb", 2, 6, 3, 4, 1, False, 1, 1, False, False, -1)
    modconv_case("modconv_down", 1, 3, 2, 8, 3, True, 1, 2, False, True, -1)


def main():
    make_attention()
    make_warp()
    make_modconv()
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "data.bin"), "wb") as f:
        f.write(bytes(blob))
    with open(os.path.join(OUT_DIR, "index.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1)
    print(f"wrote {len(cases)} cases, {len(blob)} bytes to {OUT_DIR}")


if __name__ == "__main__":
    main()
