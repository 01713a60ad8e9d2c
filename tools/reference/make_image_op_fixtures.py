#!/usr/bin/python3
"""PyTorch reference fixtures for the image-model ops of issue 3 (normalisation, pooling,
interpolation, padding, grid sampling).

Run with Debian's python3-torch (CPU):

    /usr/bin/python3 tools/reference/make_image_op_fixtures.py

It writes tests/golden/imgops/index.json and tests/golden/imgops/data.bin. Every case runs one op
in float32 on awkward shapes (odd sizes, stride 2, up and down scaling, ties for max pooling, grid
points outside the image, ...), then back-propagates a random weight `gy` (loss = sum(y * gy)) and
stores the inputs, the outputs and the input / weight gradients. data.bin holds the tensors as raw
little-endian float32, back to back; index.json gives each case's op, parameters and, for each
tensor, its shape and byte offset into data.bin. tests/ops/test_*.cpp read them (tests/ops/
imgops_fixtures.hpp).
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(20240301)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT_DIR = os.path.join(ROOT, "tests", "golden", "imgops")

cases = []
blob = bytearray()


def add_tensor(entry, name, t):
    a = t.detach().to(torch.float32).contiguous().numpy().astype("<f4")
    entry["tensors"][name] = {"shape": list(a.shape), "offset": len(blob)}
    blob.extend(a.tobytes())


def run_case(name, op, params, inputs, fn):
    """inputs: dict name -> tensor (those with requires_grad get a stored gradient 'grad_<name>');
    fn(inputs) -> output tensor (or dict of extra outputs with key 'y')."""
    leaves = {k: v.detach().clone().requires_grad_(v.requires_grad) for k, v in inputs.items()}
    res = fn(leaves)
    extra = {}
    if isinstance(res, dict):
        extra = {k: v for k, v in res.items() if k != "y"}
        res = res["y"]
    entry = {"name": name, "op": op, "params": params, "tensors": {}}
    for k, v in inputs.items():
        add_tensor(entry, k, v)
    add_tensor(entry, "y", res)
    for k, v in extra.items():
        add_tensor(entry, k, v)
    diff = [k for k, v in leaves.items() if v.requires_grad]
    if diff:
        gy = torch.randn_like(res)
        grads = torch.autograd.grad((res * gy).sum(), [leaves[k] for k in diff])
        add_tensor(entry, "gy", gy)
        for k, g in zip(diff, grads):
            add_tensor(entry, "grad_" + k, g)
    cases.append(entry)


def randn(*shape, grad=True):
    return torch.randn(*shape).requires_grad_(grad)


# ---- grid_sample (bilinear, zeros padding) -------------------------------------------------------
for ac in (False, True):
    for tag, xs, gs in (("a", (2, 3, 5, 7), (2, 4, 6, 2)), ("b", (1, 2, 6, 4), (1, 7, 3, 2))):
        # coordinates up to 1.3 in magnitude: some taps fall outside the image (zeros padding)
        grid = (torch.rand(*gs) * 2.6 - 1.3).requires_grad_()
        run_case(f"grid_sample_{tag}_ac{int(ac)}", "grid_sample", {"align_corners": ac},
                 {"x": randn(*xs), "grid": grid},
                 lambda t, ac=ac: F.grid_sample(t["x"], t["grid"], mode="bilinear", padding_mode="zeros",
                                                align_corners=ac))

# ---- interpolate -----------------------------------------------------------------------------------
interp_cases = [
    # name, input shape, mode, align_corners, size or None, scale or None
    ("bilinear_up_ac0", (2, 3, 5, 7), "bilinear", False, (9, 12), None),
    ("bilinear_down_ac0", (2, 2, 9, 11), "bilinear", False, (4, 5), None),
    ("bilinear_up_ac1", (2, 3, 5, 7), "bilinear", True, (11, 13), None),
    ("bilinear_down_ac1", (2, 2, 9, 11), "bilinear", True, (4, 6), None),
    ("bilinear_x2_ac1", (1, 3, 4, 5), "bilinear", True, (8, 10), None),
    ("bilinear_to1_ac1", (1, 2, 5, 6), "bilinear", True, (1, 3), None),
    ("bilinear_scale_ac0", (2, 2, 5, 7), "bilinear", False, None, (1.5, 0.6)),
    ("bilinear_scale_keep_ac0", (1, 2, 5, 6), "bilinear", False, None, (1.1, 2.3)),
    ("bilinear_scale_ac1", (1, 2, 5, 7), "bilinear", True, None, (1.7, 0.5)),
    ("nearest_up", (2, 3, 5, 7), "nearest", False, (12, 15), None),
    ("nearest_down", (2, 2, 10, 9), "nearest", False, (6, 4), None),
    ("nearest_x2", (1, 2, 3, 4), "nearest", False, (6, 8), None),
    ("nearest_scale", (2, 2, 7, 9), "nearest", False, None, (1.7, 0.45)),
]
for name, xs, mode, ac, size, scale in interp_cases:
    params = {"mode": mode, "align_corners": ac}
    if size is not None:
        params["size"] = list(size)
        kw = {"size": size}
    else:
        params["scale"] = list(scale)
        kw = {"scale_factor": scale}
    if mode == "bilinear":
        fn = lambda t, kw=kw, ac=ac: F.interpolate(t["x"], mode="bilinear", align_corners=ac, **kw)
    else:
        fn = lambda t, kw=kw: F.interpolate(t["x"], mode="nearest", **kw)
    run_case("interpolate_" + name, "interpolate", params, {"x": randn(*xs)}, fn)

# ---- batch_norm --------------------------------------------------------------------------------------
bn_cases = [
    # name, shape, training, affine, running stats, momentum
    ("train", (3, 4, 5, 7), True, True, True, 0.1),
    ("train_momentum", (2, 3, 3, 5), True, True, True, 0.3),
    ("train_2d", (6, 5), True, True, True, 0.1),
    ("train_plain", (2, 3, 4, 3), True, False, False, 0.1),
    ("eval", (3, 4, 5, 7), False, True, True, 0.1),
    ("eval_plain", (2, 3, 3, 4), False, False, True, 0.1),
]
for name, xs, training, affine, running, momentum in bn_cases:
    c = xs[1]
    # offset and scaled input: the statistics are far from (0, 1)
    inputs = {"x": (torch.randn(*xs) * 1.7 + 0.8).requires_grad_()}
    if affine:
        inputs["weight"] = (torch.rand(c) + 0.5).requires_grad_()
        inputs["bias"] = randn(c)
    if running:
        inputs["running_mean"] = torch.randn(c) * 0.3
        inputs["running_var"] = torch.rand(c) + 0.5

    def fn(t, training=training, momentum=momentum, affine=affine, running=running):
        rm = t["running_mean"].detach().clone() if running else None
        rv = t["running_var"].detach().clone() if running else None
        y = F.batch_norm(t["x"], rm, rv, t.get("weight"), t.get("bias"), training=training, momentum=momentum,
                         eps=1e-5)
        out = {"y": y}
        if running:
            out["new_running_mean"] = rm
            out["new_running_var"] = rv
        return out

    run_case("batch_norm_" + name, "batch_norm",
             {"training": training, "affine": affine, "running": running, "momentum": momentum, "eps": 1e-5},
             inputs, fn)

# ---- pooling -----------------------------------------------------------------------------------------
def tie_input(*shape):
    # small integers: many exact ties inside max-pool windows
    return torch.randint(-2, 3, shape).float().requires_grad_()


pool_cases = [
    ("avg_k3s2p1", "avg_pool2d", randn(2, 3, 9, 8), {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1]}),
    ("avg_k2", "avg_pool2d", randn(2, 3, 7, 7), {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]}),
    ("avg_k32_s12_p10", "avg_pool2d", randn(1, 2, 6, 7), {"kernel": [3, 2], "stride": [1, 2], "padding": [1, 0]}),
    ("max_k3s2p1", "max_pool2d", randn(2, 3, 9, 8), {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1]}),
    ("max_k2", "max_pool2d", randn(2, 3, 7, 7), {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]}),
    ("max_k1s2", "max_pool2d", randn(1, 3, 7, 6), {"kernel": [1, 1], "stride": [2, 2], "padding": [0, 0]}),
    ("max_ties_k3s1", "max_pool2d", tie_input(2, 2, 6, 5), {"kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]}),
    ("max_ties_k2", "max_pool2d", tie_input(1, 3, 6, 8), {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]}),
    ("adaptive_down", "adaptive_avg_pool2d", randn(2, 3, 9, 11), {"output_size": [4, 5]}),
    ("adaptive_19to11", "adaptive_avg_pool2d", randn(1, 2, 19, 19), {"output_size": [11, 11]}),
    ("adaptive_up", "adaptive_avg_pool2d", randn(1, 2, 3, 4), {"output_size": [5, 7]}),
]
for name, op, x, params in pool_cases:
    if op == "avg_pool2d":
        fn = lambda t, p=params: F.avg_pool2d(t["x"], p["kernel"], p["stride"], p["padding"])
    elif op == "max_pool2d":
        fn = lambda t, p=params: F.max_pool2d(t["x"], p["kernel"], p["stride"], p["padding"])
    else:
        fn = lambda t, p=params: F.adaptive_avg_pool2d(t["x"], p["output_size"])
    run_case("pool_" + name, op, params, {"x": x}, fn)

# ---- pad ---------------------------------------------------------------------------------------------
pad_cases = [
    ("reflect_2d", randn(2, 3, 5, 6), [1, 2, 2, 1], "reflect", 0.0),
    ("reflect_max", randn(1, 2, 4, 3), [2, 2, 3, 3], "reflect", 0.0),
    ("reflect_1d", randn(2, 4, 5), [3, 1], "reflect", 0.0),
    ("constant_value", randn(2, 3, 4, 5), [2, 1, 0, 3], "constant", 0.5),
    ("constant_crop", randn(1, 2, 6, 7), [-1, 2, 1, -2], "constant", 0.0),
]
for name, x, pads, mode, value in pad_cases:
    if mode == "reflect":
        fn = lambda t, pads=pads: F.pad(t["x"], pads, mode="reflect")
    else:
        fn = lambda t, pads=pads, value=value: F.pad(t["x"], pads, mode="constant", value=value)
    run_case("pad_" + name, "pad", {"pads": pads, "mode": mode, "value": value}, {"x": x}, fn)

# ---- prelu, layer_norm, pixel_norm ---------------------------------------------------------------------
run_case("prelu_channels", "prelu", {}, {"x": randn(2, 4, 3, 5), "weight": (torch.rand(4) * 0.5).requires_grad_()},
         lambda t: F.prelu(t["x"], t["weight"]))
run_case("prelu_shared", "prelu", {}, {"x": randn(3, 2, 4), "weight": torch.tensor([0.25]).requires_grad_()},
         lambda t: F.prelu(t["x"], t["weight"]))
run_case("layer_norm_last", "layer_norm", {"normalized_shape": [6], "eps": 1e-5},
         {"x": (torch.randn(2, 5, 6) * 2 + 1).requires_grad_(), "weight": randn(6), "bias": randn(6)},
         lambda t: F.layer_norm(t["x"], [6], t["weight"], t["bias"], 1e-5))
run_case("layer_norm_two", "layer_norm", {"normalized_shape": [3, 4], "eps": 1e-5},
         {"x": randn(2, 3, 4), "weight": randn(3, 4), "bias": randn(3, 4)},
         lambda t: F.layer_norm(t["x"], [3, 4], t["weight"], t["bias"], 1e-5))
run_case("pixel_norm", "pixel_norm", {"dim": 1, "eps": 1e-8}, {"x": randn(3, 8, 2, 3)},
         lambda t: t["x"] * torch.rsqrt(torch.mean(t["x"] ** 2, dim=1, keepdim=True) + 1e-8))

os.makedirs(OUT_DIR, exist_ok=True)
with open(os.path.join(OUT_DIR, "data.bin"), "wb") as f:
    f.write(bytes(blob))
with open(os.path.join(OUT_DIR, "index.json"), "w") as f:
    head = {"generator": "tools/reference/make_image_op_fixtures.py", "torch": torch.__version__, "dtype": "float32"}
    f.write(json.dumps(head)[:-1] + ', "cases": [\n')  # one case per line: readable diffs
    f.write(",\n".join(json.dumps(c) for c in cases))
    f.write("\n]}\n")
print(f"wrote {len(cases)} cases, {len(blob)} bytes of tensors to {os.path.relpath(OUT_DIR, ROOT)}")
