#!/usr/bin/python3
"""PyTorch fixtures for the engine-foundation ops (issue 2) whose semantics are easy to get subtly
wrong: softplus's threshold rule, log_softmax, var (unbiased / biased), matmul batch broadcasting
and the amax tie rule. Everything is computed in float64 on the CPU; each entry holds the inputs,
the forward output, and the gradients of sum(out * w) for a stored weight w.

    /usr/bin/python3 tools/reference/make_core_fixtures.py

writes tests/golden/core/core_ops.json (read by tests/ops/test_torch_parity.cpp).
"""
import json
import os

import torch

torch.set_default_dtype(torch.float64)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "core", "core_ops.json")


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def case(fn, inputs, **meta):
    """Runs fn on leaf copies of inputs; returns inputs, output, weight and input gradients."""
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    g = torch.Generator().manual_seed(len(json.dumps(meta)) + out.numel())
    w = torch.randn(out.shape, generator=g)
    grads = torch.autograd.grad((out * w).sum(), leaves, allow_unused=True)
    return dict(meta,
                inputs=[{"shape": list(x.shape), "values": flat(x)} for x in inputs],
                out={"shape": list(out.shape), "values": flat(out)},
                weight=flat(w),
                grads=[flat(gr) if gr is not None else None for gr in grads])


def main():
    gen = torch.Generator().manual_seed(1234)
    rn = lambda *s: torch.randn(*s, generator=gen)
    cases = []
    # softplus: values on both sides of the threshold, and exactly at beta * x == threshold.
    xs = torch.tensor([-30.0, -2.0, -0.1, 0.0, 0.7, 1.5, 1.49, 1.51, 9.9, 10.0, 10.1, 25.0])
    for beta, thr in [(1.0, 20.0), (2.0, 3.0), (0.5, 5.0)]:
        cases.append(case(lambda x, b=beta, t=thr: torch.nn.functional.softplus(x, beta=b, threshold=t), [xs],
                          op="softplus", beta=beta, threshold=thr))
    # log_softmax / softmax over each dim of a [3,4] input with large and tied values.
    x = torch.tensor([[1000.0, 1001.0, 999.0, 1000.0], [-1.0, 0.5, 0.5, 2.0], [3.0, -7.0, 0.0, 1e-3]])
    for d in (0, 1):
        cases.append(case(lambda a, d=d: torch.log_softmax(a, d), [x], op="log_softmax", dim=d))
        cases.append(case(lambda a, d=d: torch.softmax(a, d), [x], op="softmax", dim=d))
    # var: unbiased and biased, over one dim, two dims and all dims, with and without keepdim.
    v = rn(3, 4, 5) + 10.0
    for dims, unbiased, keep in [([1], True, False), ([0, 2], False, True), ([], True, False), ([-1], False, False)]:
        cases.append(case(lambda a, dims=dims, u=unbiased, k=keep:
                          (torch.var(a, dim=dims, unbiased=u, keepdim=k) if dims else torch.var(a, unbiased=u)),
                          [v], op="var", dims=dims, unbiased=unbiased, keepdim=keep))
    # matmul with NumPy broadcasting, including 1-D operands.
    for sa, sb in [((2, 1, 3, 4), (5, 4, 2)), ((3, 4), (2, 4, 5)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((4,), (4,))]:
        cases.append(case(torch.matmul, [rn(*sa), rn(*sb)], op="matmul"))
    # amax with ties: PyTorch splits the gradient evenly between equal maxima.
    t = torch.tensor([[3.0, 1.0, 3.0], [7.0, 7.0, 7.0], [0.0, -1.0, 2.0]])
    cases.append(case(lambda a: torch.amax(a, dim=1), [t], op="amax", dims=[1], keepdim=False))
    cases.append(case(lambda a: torch.amin(a, dim=(0, 1), keepdim=True), [t], op="amin", dims=[0, 1], keepdim=True))

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "tools/reference/make_core_fixtures.py", "torch": torch.__version__, "cases": cases},
                  f, separators=(",", ":"))
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
