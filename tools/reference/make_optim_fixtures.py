#!/usr/bin/python3
"""PyTorch reference for the train-layer optimisers (tests/train/test_optim.cpp).

    /usr/bin/python3 tools/reference/make_optim_fixtures.py

Writes tests/golden/train/optim.safetensors, all float64, deterministic:

  param.<name>             the initial parameters
  grad.<t>.<name>          the gradient fed at step t = 1..20 (fixed, not a function of the params)
  <case>.<t>.<name>        the parameters after step t
  <case>.final.<key>       state tensors after step 20 (<name>.exp_avg, <name>.exp_avg_sq, <name>.slow)
  <case>.hp.<key>          the hyperparameters of that case (0-d)

Cases: adam and adam_wd (torch.optim.Adam, foreach=False), adam_lookahead (that Adam wrapped in
a Lookahead written here), radam, ranger and ranger_wd (written here from the semantics of
e4e's training/ranger.py, computed in float64: see src/train/radam.cpp for that rule).
"""
import json
import math
import os
import struct

import torch

STEPS = 20
SHAPES = [("conv.weight", (2, 3, 2, 2)), ("fc.weight", (4, 3)), ("fc.bias", (4,))]
# Gradient scales per parameter: the bias is near Ranger's eps (1e-5) after the sqrt.
GRAD_SCALE = {"conv.weight": 1.0, "fc.weight": 0.1, "fc.bias": 1e-3}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "train")


def make_inputs():
    g = torch.Generator().manual_seed(20240610)
    params = {n: torch.randn(s, generator=g, dtype=torch.float64) for n, s in SHAPES}
    # Row offsets make the gradients' means non-zero, so centralisation changes something.
    grads = []
    for _ in range(STEPS):
        step = {}
        for n, s in SHAPES:
            x = torch.randn(s, generator=g, dtype=torch.float64)
            if len(s) > 1:
                x = x + torch.randn((s[0],) + (1,) * (len(s) - 1), generator=g, dtype=torch.float64)
            step[n] = x * GRAD_SCALE[n]
        grads.append(step)
    return params, grads


class Lookahead:
    """slow <- slow + alpha (fast - slow), fast <- slow after every k inner steps."""

    def __init__(self, inner, params, k=6, alpha=0.5):
        self.inner, self.params, self.k, self.alpha = inner, params, k, alpha
        self.slow = [p.detach().clone() for p in params]
        self.counter = 0

    def step(self):
        self.inner.step()
        self.counter += 1
        if self.counter % self.k == 0:
            with torch.no_grad():
                for p, s in zip(self.params, self.slow):
                    s.add_(p - s, alpha=self.alpha)
                    p.copy_(s)


class RangerE4E:
    """e4e's Ranger (RAdam + optional GC + optional Lookahead), in the parameters' dtype."""

    def __init__(self, params, lr, betas=(0.95, 0.999), eps=1e-5, weight_decay=0.0, n_sma_threshold=5.0,
                 use_gc=True, lookahead=True, k=6, alpha=0.5):
        self.params = params
        self.lr, self.betas, self.eps, self.wd = lr, betas, eps, weight_decay
        self.thr, self.use_gc, self.lookahead, self.k, self.alpha = n_sma_threshold, use_gc, lookahead, k, alpha
        self.state = [dict() for _ in params]

    @torch.no_grad()
    def step(self):
        b1, b2 = self.betas
        for p, st in zip(self.params, self.state):
            if p.grad is None:
                continue
            g = p.grad.clone()
            if not st:
                st["step"] = 0
                st["exp_avg"] = torch.zeros_like(p)
                st["exp_avg_sq"] = torch.zeros_like(p)
                st["slow"] = p.clone()
            if self.use_gc and g.dim() > 1:
                g.add_(-g.mean(dim=tuple(range(1, g.dim())), keepdim=True))
            st["step"] += 1
            t = st["step"]
            st["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
            st["exp_avg"].mul_(b1).add_(g, alpha=1 - b1)
            beta2_t = b2 ** t
            n_sma_max = 2 / (1 - b2) - 1
            n_sma = n_sma_max - 2 * t * beta2_t / (1 - beta2_t)
            if n_sma > self.thr:
                step_size = math.sqrt((1 - beta2_t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma *
                                      n_sma_max / (n_sma_max - 2)) / (1 - b1 ** t)
            else:
                step_size = 1.0 / (1 - b1 ** t)
            if self.wd != 0:
                p.add_(p, alpha=-self.wd * self.lr)
            if n_sma > self.thr:
                p.addcdiv_(st["exp_avg"], st["exp_avg_sq"].sqrt().add_(self.eps), value=-step_size * self.lr)
            else:
                p.add_(st["exp_avg"], alpha=-step_size * self.lr)
            if self.lookahead and t % self.k == 0:
                st["slow"].add_(p - st["slow"], alpha=self.alpha)
                p.copy_(st["slow"])


def run_case(case, params0, grads):
    names = [n for n, _ in SHAPES]
    params = [params0[n].clone().requires_grad_(True) for n in names]
    kind, hp = case["kind"], case["hp"]
    if kind == "adam":
        opt = torch.optim.Adam(params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                               weight_decay=hp["weight_decay"], foreach=False)
        stepper = Lookahead(opt, params, k=int(hp["k"]), alpha=hp["alpha"]) if case.get("lookahead") else opt
    else:
        stepper = RangerE4E(params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                            weight_decay=hp["weight_decay"], n_sma_threshold=hp["n_sma_threshold"],
                            use_gc=bool(hp["gradient_centralization"]), lookahead=case.get("lookahead", False),
                            k=int(hp.get("k", 6)), alpha=hp.get("alpha", 0.5))
    out = {}
    for t in range(1, STEPS + 1):
        for p, n in zip(params, names):
            p.grad = grads[t - 1][n].clone()
        stepper.step()
        for p, n in zip(params, names):
            out[f"{t}.{n}"] = p.detach().clone()
    for i, (p, n) in enumerate(zip(params, names)):
        if kind == "adam":
            st = opt.state[p]
            out[f"final.{n}.exp_avg"] = st["exp_avg"].clone()
            out[f"final.{n}.exp_avg_sq"] = st["exp_avg_sq"].clone()
            if case.get("lookahead"):
                out[f"final.{n}.slow"] = stepper.slow[i].clone()
        else:
            st = stepper.state[i]
            out[f"final.{n}.exp_avg"] = st["exp_avg"].clone()
            out[f"final.{n}.exp_avg_sq"] = st["exp_avg_sq"].clone()
            if case.get("lookahead"):
                out[f"final.{n}.slow"] = st["slow"].clone()
    for k, v in hp.items():
        out[f"hp.{k}"] = torch.tensor(float(v), dtype=torch.float64)
    return out


ADAM = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)
RADAM = dict(lr=1e-2, beta1=0.95, beta2=0.999, eps=1e-5, weight_decay=0.0, n_sma_threshold=5.0,
             gradient_centralization=0.0)
CASES = {
    "adam": dict(kind="adam", hp=dict(ADAM)),
    "adam_wd": dict(kind="adam", hp=dict(ADAM, weight_decay=0.1, lr=3e-2)),
    "adam_lookahead": dict(kind="adam", lookahead=True, hp=dict(ADAM, k=6.0, alpha=0.5)),
    "radam": dict(kind="radam", hp=dict(RADAM)),
    "ranger": dict(kind="radam", lookahead=True, hp=dict(RADAM, gradient_centralization=1.0, k=6.0, alpha=0.5)),
    "ranger_wd": dict(kind="radam", lookahead=True,
                      hp=dict(RADAM, gradient_centralization=1.0, k=6.0, alpha=0.5, weight_decay=0.1)),
}


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):  # all F64: one alignment, so sorted by name as the reference writer
        t = tensors[name].detach().contiguous().to(torch.float64)
        raw = struct.pack("<%dd" % t.numel(), *t.reshape(-1).tolist())
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = metadata
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((-(8 + len(js))) % 64)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


def main():
    torch.set_num_threads(1)
    params0, grads = make_inputs()
    tensors = {f"param.{n}": v for n, v in params0.items()}
    for t, step in enumerate(grads, start=1):
        for n, v in step.items():
            tensors[f"grad.{t}.{n}"] = v
    for case, spec in CASES.items():
        for k, v in run_case(spec, params0, grads).items():
            tensors[f"{case}.{k}"] = v
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "optim.safetensors")
    write_safetensors(path, tensors, {"generator": "tools/reference/make_optim_fixtures.py",
                                      "torch": torch.__version__, "steps": str(STEPS),
                                      "cases": ",".join(CASES)})
    size = os.path.getsize(path)
    assert size < 200_000, size
    print(f"wrote {path} ({size} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
