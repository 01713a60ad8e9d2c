#!/usr/bin/python3
"""PyTorch reference fixtures for the image-model ops (issue 3): conv2d, conv_transpose2d,
upfirdn2d and bias_act, on awkward shapes (odd sizes, stride 2, groups, dilation, padding larger
than half the kernel, negative pads, non-symmetric filters, clamping).

Run with Debian's python3-torch (CPU):  /usr/bin/python3 tools/reference/make_conv_fixtures.py
Writes tests/golden/conv/index.json (case list: op, parameters, tensor names, shapes, offsets)
and tests/golden/conv/<case>.bin (the tensors of one case, raw little-endian float32, in the
order of index.json). Inputs are seeded N(0,1) rounded to float32; every reference value is
computed in float64 from those float32 inputs and then stored as float32.

upfirdn2d and bias_act follow NVIDIA's reference implementations (stylegan2-ada-pytorch
torch_utils/ops, *_ref functions); they are re-written here from their documented semantics
with plain torch ops.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "conv")

torch.backends.mkldnn.enabled = True
torch.set_num_threads(1)  # deterministic reductions


def rnd(gen, *shape, scale=1.0):
    """Seeded N(0, 1) * scale, rounded to float32, returned as float64 (the reference dtype)."""
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).float().double()


# ---- reference ops --------------------------------------------------------------------------

def upfirdn2d_ref(x, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """x [N, C, H, W]; f [kh, kw] or [k] (separable); up/down = (x, y); pad = (x0, x1, y0, y1)."""
    n, c, h, w = x.shape
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = pad
    # zero-insert
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape(n, c, h * upy, w * upx)
    # pad, then crop for negative pads
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    # filter (2-D; a 1-D filter is the separable outer product)
    if f.ndim == 1:
        f = f[:, None] * f[None, :]
    f = f * gain
    if not flip_filter:
        f = f.flip([0, 1])  # conv2d correlates: flipping makes it a true convolution
    wgt = f[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, wgt, groups=c)
    return x[:, :, ::downy, ::downx]


def bias_act_ref(x, b, act, alpha, gain, clamp, dim):
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, alpha)
    x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def minibatch_stddev_ref(x, group_size=4, feat=1):
    """rosinality's Discriminator stddev layer (eps 1e-8)."""
    batch, channel, height, width = x.shape
    group = min(batch, group_size)
    s = x.view(group, -1, feat, channel // feat, height, width)
    s = torch.sqrt(s.var(0, unbiased=False) + 1e-8)
    s = s.mean([2, 3, 4], keepdim=True).squeeze(2)
    s = s.repeat(group, 1, height, width)
    return torch.cat([x, s], 1)


BLUR = (torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)[:, None]
        * torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)[None, :]) / 64.0


def tiny_discriminator(x, p):
    """A small StyleGAN2 discriminator: 1x1 ConvLayer, one ResBlock with blur + stride-2 convs,
    minibatch stddev, final 3x3 ConvLayer, two linear layers. p: dict of parameters."""
    lrelu = lambda t, b: bias_act_ref(t, b, "lrelu", 0.2, math.sqrt(2), -1, 1)
    h0 = lrelu(F.conv2d(x, p["w0"]), p["b0"])
    c1 = lrelu(F.conv2d(h0, p["w1"], padding=1), p["b1"])
    c2 = lrelu(F.conv2d(upfirdn2d_ref(c1, BLUR, pad=(2, 2, 2, 2)), p["w2"], stride=2), p["b2"])
    sk = F.conv2d(upfirdn2d_ref(h0, BLUR, pad=(1, 1, 1, 1)), p["ws"], stride=2)
    h = (c2 + sk) / math.sqrt(2)
    h = minibatch_stddev_ref(h, 4, 1)
    h = lrelu(F.conv2d(h, p["wf"], padding=1), p["bf"])
    h = h.reshape(h.shape[0], -1)
    h = lrelu(F.linear(h, p["wl1"]), p["bl1"])
    return F.linear(h, p["wl2"], p["bl2"])


DISC_SHAPES = [("w0", (4, 3, 1, 1)), ("b0", (4,)), ("w1", (4, 4, 3, 3)), ("b1", (4,)), ("w2", (6, 4, 3, 3)),
               ("b2", (6,)), ("ws", (6, 4, 1, 1)), ("wf", (6, 7, 3, 3)), ("bf", (6,)), ("wl1", (8, 96)),
               ("bl1", (8,)), ("wl2", (1, 8)), ("bl2", (1,))]


# ---- case writer ----------------------------------------------------------------------------

cases = []


def emit(name, op, params, tensors):
    """tensors: ordered list of (name, float64 tensor)."""
    blob = bytearray()
    entries = []
    offset = 0
    for tname, t in tensors:
        a = t.detach().to(torch.float32).contiguous().numpy().astype("<f4")
        entries.append({"name": tname, "shape": list(a.shape), "offset": offset})
        offset += a.size
        blob += a.tobytes()
    with open(os.path.join(OUT, name + ".bin"), "wb") as fh:
        fh.write(blob)
    cases.append({"name": name, "op": op, "params": params, "file": name + ".bin", "tensors": entries})


def grads(y, inputs, gen):
    gy = rnd(gen, *y.shape)
    gs = torch.autograd.grad(y, [t for t in inputs if t is not None], gy)
    return gy, gs


def conv2d_case(name, seed, xs, ws, bias=True, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    gen = torch.Generator().manual_seed(seed)
    x = rnd(gen, *xs).requires_grad_()
    w = rnd(gen, *ws, scale=1.0 / math.sqrt(ws[1] * ws[2] * ws[3])).requires_grad_()
    b = rnd(gen, ws[0]).requires_grad_() if bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    gy, gs = grads(y, [x, w, b], gen)
    t = [("x", x), ("w", w)] + ([("b", b)] if bias else []) + [("y", y), ("gy", gy), ("gx", gs[0]), ("gw", gs[1])]
    if bias:
        t.append(("gb", gs[2]))
    emit(name, "conv2d", {"stride": list(stride), "padding": list(padding), "dilation": list(dilation),
                          "groups": groups}, t)


def conv_transpose2d_case(name, seed, xs, ws, bias=True, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                          dilation=(1, 1), groups=1):
    gen = torch.Generator().manual_seed(seed)
    x = rnd(gen, *xs).requires_grad_()
    w = rnd(gen, *ws, scale=1.0 / math.sqrt(ws[0] * ws[2] * ws[3] / groups)).requires_grad_()
    cout = ws[1] * groups
    b = rnd(gen, cout).requires_grad_() if bias else None
    y = F.conv_transpose2d(x, w, b, stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                           dilation=dilation)
    gy, gs = grads(y, [x, w, b], gen)
    t = [("x", x), ("w", w)] + ([("b", b)] if bias else []) + [("y", y), ("gy", gy), ("gx", gs[0]), ("gw", gs[1])]
    if bias:
        t.append(("gb", gs[2]))
    emit(name, "conv_transpose2d", {"stride": list(stride), "padding": list(padding),
                                    "output_padding": list(output_padding), "dilation": list(dilation),
                                    "groups": groups}, t)


def upfirdn2d_case(name, seed, xs, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    gen = torch.Generator().manual_seed(seed)
    x = rnd(gen, *xs).requires_grad_()
    f = torch.as_tensor(f, dtype=torch.float64).float().double()
    y = upfirdn2d_ref(x, f, up, down, pad, flip_filter, gain)
    gy, gs = grads(y, [x], gen)
    emit(name, "upfirdn2d", {"up": list(up), "down": list(down), "pad": list(pad), "flip_filter": flip_filter,
                             "gain": gain}, [("x", x), ("f", f), ("y", y), ("gy", gy), ("gx", gs[0])])


def bias_act_case(name, seed, xs, act, alpha=None, gain=None, clamp=-1.0, dim=1, bias=True, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    x = rnd(gen, *xs, scale=scale).requires_grad_()
    b = rnd(gen, xs[dim]).requires_grad_() if bias else None
    a = 0.2 if alpha is None else alpha
    g = (math.sqrt(2) if act == "lrelu" else 1.0) if gain is None else gain
    y = bias_act_ref(x, b, act, a, g, clamp, dim)
    gy, gs = grads(y, [x, b], gen)
    params = {"act": act, "clamp": clamp, "dim": dim}
    if alpha is not None:
        params["alpha"] = alpha
    if gain is not None:
        params["gain"] = gain
    t = [("x", x)] + ([("b", b)] if bias else []) + [("y", y), ("gy", gy), ("gx", gs[0])]
    if bias:
        t.append(("gb", gs[1]))
    emit(name, "bias_act", params, t)


def minibatch_std_case(name, seed, xs, group_size, feat):
    gen = torch.Generator().manual_seed(seed)
    x = rnd(gen, *xs).requires_grad_()
    y = minibatch_stddev_ref(x, group_size, feat)
    gy, gs = grads(y, [x], gen)
    emit(name, "minibatch_stddev", {"group_size": group_size, "num_features": feat},
         [("x", x), ("y", y), ("gy", gy), ("gx", gs[0])])


def r1_case(name, seed):
    """R1 = sum(grad_x(D(x).sum())^2) of the tiny discriminator, and its gradient w.r.t. every
    parameter (double backward)."""
    gen = torch.Generator().manual_seed(seed)
    x = rnd(gen, 4, 3, 8, 8).requires_grad_()
    p = {}
    for k, shp in DISC_SHAPES:
        fan_in = int(np.prod(shp[1:])) if len(shp) > 1 else 1
        p[k] = rnd(gen, *shp, scale=1.0 / math.sqrt(fan_in) if len(shp) > 1 else 0.1).requires_grad_()
    out = tiny_discriminator(x, p)
    (gx,) = torch.autograd.grad(out.sum(), [x], create_graph=True)
    r1 = gx.pow(2).sum()
    gp = torch.autograd.grad(r1, [p[k] for k, _ in DISC_SHAPES], allow_unused=True)
    gp = [torch.zeros_like(p[k]) if g is None else g for (k, _), g in zip(DISC_SHAPES, gp)]  # bl2 is unused
    tensors = [("x", x)] + [(k, p[k]) for k, _ in DISC_SHAPES] + [("out", out), ("r1", r1.reshape(1))]
    tensors += [("g_" + k, g) for (k, _), g in zip(DISC_SHAPES, gp)]
    emit(name, "r1", {}, tensors)


def main():
    os.makedirs(OUT, exist_ok=True)
    for fn in os.listdir(OUT):
        if fn.endswith(".bin") or fn == "index.json":
            os.remove(os.path.join(OUT, fn))

    # conv2d: odd sizes, stride 2, groups, dilation, padding > kernel/2, 1x1, depthwise, rectangular.
    conv2d_case("conv2d_odd_pad1", 1, (2, 3, 7, 9), (5, 3, 3, 3), padding=(1, 1))
    conv2d_case("conv2d_stride2_pad1", 2, (2, 4, 9, 8), (6, 4, 3, 3), stride=(2, 2), padding=(1, 1))
    conv2d_case("conv2d_groups2_dil", 3, (1, 4, 10, 11), (6, 2, 3, 3), stride=(2, 1), padding=(2, 3),
                dilation=(2, 1), groups=2)
    conv2d_case("conv2d_bigpad_rect", 4, (2, 3, 5, 6), (4, 3, 3, 2), padding=(3, 2))
    conv2d_case("conv2d_1x1_stride2_nobias", 5, (2, 8, 8, 8), (4, 8, 1, 1), bias=False, stride=(2, 2))
    conv2d_case("conv2d_depthwise", 6, (1, 6, 7, 7), (6, 1, 3, 3), padding=(1, 1), groups=6)
    conv2d_case("conv2d_4x2_stride12", 7, (3, 2, 6, 5), (3, 2, 4, 2), stride=(1, 2))
    conv2d_case("conv2d_downsample_after_blur", 8, (2, 4, 11, 11), (4, 4, 3, 3), stride=(2, 2))
    conv2d_case("conv2d_wide_channels", 9, (1, 33, 6, 5), (17, 33, 3, 3), padding=(1, 1))

    # conv_transpose2d: StyleGAN2's stride-2 up-conv, output_padding, groups, dilation.
    conv_transpose2d_case("convt_stride2_pad0", 11, (2, 4, 5, 6), (4, 3, 3, 3), bias=False, stride=(2, 2))
    conv_transpose2d_case("convt_stride2_pad1_outpad1", 12, (1, 3, 4, 5), (3, 5, 3, 3), stride=(2, 2),
                          padding=(1, 1), output_padding=(1, 1))
    conv_transpose2d_case("convt_groups2_stride3", 13, (2, 4, 3, 4), (4, 2, 4, 3), stride=(3, 2),
                          output_padding=(2, 1), groups=2)
    conv_transpose2d_case("convt_dil2_outpad", 14, (1, 2, 5, 5), (2, 3, 3, 3), dilation=(2, 2),
                          output_padding=(1, 0))
    conv_transpose2d_case("convt_bigpad_stride2", 15, (2, 3, 6, 6), (3, 2, 3, 3), stride=(2, 2), padding=(2, 2))

    # upfirdn2d: the StyleGAN2 uses plus awkward ones (per-axis factors, negative pads, flips).
    k4 = [1.0, 3.0, 3.0, 1.0]
    k2d = (np.outer(k4, k4) / 64.0).tolist()
    upfirdn2d_case("upfirdn_torgb_up2", 21, (2, 3, 5, 6), (np.array(k2d) * 4).tolist(), up=(2, 2), pad=(2, 1, 2, 1))
    upfirdn2d_case("upfirdn_blur_pad11", 22, (2, 4, 7, 7), (np.array(k2d) * 4).tolist(), pad=(1, 1, 1, 1))
    upfirdn2d_case("upfirdn_dblur_pad22", 23, (1, 3, 8, 9), k2d, pad=(2, 2, 2, 2))
    upfirdn2d_case("upfirdn_down2_asym", 24, (1, 2, 9, 8), [[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]], down=(2, 2),
                   pad=(1, 1, 1, 1))
    upfirdn2d_case("upfirdn_up3x2_down2x3_crop", 25, (2, 2, 5, 7),
                   [[0.1, 0.2, -0.3, 0.4], [0.5, -0.6, 0.7, 0.8], [0.9, 1.0, -1.1, 1.2]],
                   up=(3, 2), down=(2, 3), pad=(-1, 2, 0, -2))
    upfirdn2d_case("upfirdn_sep1d_flip_gain", 26, (1, 3, 6, 5), [1.0, 2.0, 4.0], up=(2, 2), pad=(1, 1, 2, 0),
                   flip_filter=True, gain=4.0)
    upfirdn2d_case("upfirdn_bigpad_small_kernel", 27, (1, 1, 3, 4), [[1.0, 2.0], [3.0, 4.0]], down=(1, 2),
                   pad=(4, 3, 5, 2))

    # bias_act
    bias_act_case("bias_act_linear", 31, (2, 5, 3, 4), "linear")
    bias_act_case("bias_act_lrelu_default", 32, (2, 5, 3, 4), "lrelu")
    bias_act_case("bias_act_lrelu_clamp", 33, (2, 6, 5, 3), "lrelu", alpha=0.1, gain=1.3, clamp=0.7, scale=1.5)
    bias_act_case("bias_act_lrelu_2d_nobias", 34, (6, 7), "lrelu", bias=False)
    bias_act_case("bias_act_linear_dim2_clamp", 35, (3, 4, 5), "linear", gain=2.0, clamp=1.5, dim=2)

    # minibatch stddev (rosinality's layer) and the R1 penalty of a tiny discriminator
    minibatch_std_case("mbstd_b8_g4", 41, (8, 6, 3, 3), 4, 1)
    minibatch_std_case("mbstd_b2_f2", 42, (2, 4, 3, 2), 4, 2)
    minibatch_std_case("mbstd_b3_g3", 43, (3, 2, 2, 2), 3, 1)
    r1_case("r1_tiny_discriminator", 51)

    with open(os.path.join(OUT, "index.json"), "w") as fh:
        json.dump({"generator": "tools/reference/make_conv_fixtures.py", "torch": torch.__version__,
                   "cases": cases}, fh, indent=1)
    total = sum(os.path.getsize(os.path.join(OUT, c["file"])) for c in cases)
    print(f"wrote {len(cases)} cases, {total} bytes of tensors, to {OUT}")


if __name__ == "__main__":
    sys.exit(main())
