#!/usr/bin/python3
"""Parity fixtures for the GradStyle modules, the dual-stream network and 10 training iterations.

Run with Debian's python3-torch (CPU):  /usr/bin/python3 tools/reference/make_gradstyle_fixtures.py
Writes tests/golden/gradstyle/*.safetensors (checked < 2 MB; fixed seeds and one thread, so a re-run
reproduces the files byte for byte). The model is tools/reference/gradstyle_ref.py.

FILE FORMAT (every file)
  safetensors (FORMATS.md 6), tensors sorted by descending alignment then name, buffer 64-byte aligned.
  __metadata__ (all strings):  "format" = "gradstyle-fixture/1", "case" = file stem,
    "kind" = grm | gate | gam | net | train, "config" = the module / network configuration as JSON
    (keys of SPEC B.9, plus the module sizes), "note" = a sentence on what the case exercises.
  dtypes:  parameters, buffers and inputs are float32 values stored as F32 (the reference computes in
    float64 from exactly these values); num_batches_tracked is I64; every computed tensor (outputs,
    gradients, updated running statistics, losses, homographies) is F64. Scalars have shape [1].

PER-MODULE FILES (batch B = 2). Parameters use the keys of notes/gradstyle_layout.md with m = 0:
  grm_*.safetensors   config: {C, t_channels, R, grm_proj_kernel, eres_levels, eres_input,
                               eres_interp_align_corners}
    grm.0.<key>                     every parameter and buffer (stem_bn.running_mean/var/num_batches_tracked)
    in.T [B,Ct,R,R], in.f [B,C,R,R] inputs (T already resized)
    gy [B,C,R,R]                    loss = sum(F * gy)
    train.out [B,C,R,R]             F with BatchNorm in train mode (batch statistics, biased variance)
    train.grad.in.T, train.grad.in.f, train.grad.grm.0.<param>   gradients of the loss (every parameter)
    train.after.grm.0.stem_bn.running_mean / running_var (F64) / num_batches_tracked (I64)
                                    buffers after that one train-mode forward (momentum 0.1, unbiased var)
    eval.out, eval.grad.in.T, eval.grad.in.f, eval.grad.grm.0.<param>
                                    the same in eval mode (running statistics = the stored grm.0.* ones)
  gate_*.safetensors  config: {C, R, gate_channels}
    gate.0.<key>, in.f [B,C,R,R], in.F [B,C,R,R]
    out.fused [B,C,R,R] (= f + g * F), out.g [B,Cg,R,R], gy.fused, gy.g
    loss = sum(fused * gy.fused) + sum(g * gy.g);  grad.in.f, grad.in.F, grad.gate.0.<param>
  gam_*.safetensors   config: {C, R, aligner_layers, aligner_heads, aligner_mlp_ratio, pe, pe_on_value,
                               pe_temperature, topk_mu, k_top, aligner_output}
    gam.0.<key>, in.F [B,C,R,R] (keys/values: F_hat), in.f [B,C,R,R] (queries: f^edi)
    out [B,C,R,R] (F'), gy, loss = sum(out * gy); grad.in.F, grad.in.f, grad.gam.0.<param>
    kept.l<l> [B,heads,L] (F64)     number of kept keys per query row in layer l (> k_top where ties)
  gam_ties: the key projections of every layer only read the y-half of the channels and in.F's y-half
    is constant along x, so the 8 tokens of an image row have bit-identical keys and every score
    row holds groups of 8 exact ties; k_top = 13 keeps 16 (two whole groups) in every row.

NETWORK FILE net.safetensors (kind net): the 32 px generator and discriminator of
  tests/golden/stylegan2/tiny.pt ('g_ema', 'd'; noise_mode const = its noises.* buffers) and the LPIPS
  net of tests/golden/encoders/vgg_tiny.pth + lin_tiny.pth (channels 8,8,12,12,16), all in float64;
  metadata "frozen" (JSON) names these files and the generator config (size 32, style_dim 32, n_mlp 3,
  channels {4: 16, 8: 16, 16: 12, 32: 8}). Config "gate_channels": null means C of each module.
  config (metadata "config"): refined_blocks [3, 6] (R 8 and 16, C 16 and 12), t_channels 8,
  aligner 2 layers x 2 heads, mu 0.25, pe 2d, value output, loss_resolution 16 (adaptive average pool
  of the 32 px images), lambdas in the config (lambda_id = 0), edit_stream_updates_gate false.
    grm.m.*, gate.m.*, gam.m.*      module parameters and buffers, m = 0, 1 (F32; I64 counters)
    in.w [B,8,32]                   W+ (also the edited latent: alpha = 0)
    in.c3 [B,8,32,32], in.p2 [B,8,8,8]   e4e group features (block 3 -> c3, 32 -> 8 by two 2x2 average
                                    poolings; block 6 -> p2, 8 -> 16 bilinear, align_corners false)
    in.x [B,3,16,16]                loss target (X256 of the tiny config)
    in.u [B,4,2], in.corners [B,4,2], in.H [B,3,3] (F64)   warp: u ~ U(0,1), distortion 0.15 (sample 0)
                                    and 0.45 (sample 1); corners TL,TR,BR,BL inward; H destination ->
                                    source, shared by both stages
    out.F.m                         F_m = GRM_m(T_m, f^rec) (reconstruction stream), m = 0, 1
    out.Fp.m                        F'_m = Aligner_m(F_hat_m, f^edi) (editing stream), m = 0, 1
    out.T.0, out.g.0, out.Fhat.0    stage 0 only (size): resized T_0, gate g_0, warp(F_0, H)
    out.Xr, out.Xe [B,3,32,32]      reconstruction and editing images
    loss.l2, loss.lpips, loss.adv, loss.f, loss.aligner, loss.total   [1] each (B.7 definitions)
    grad.<param key>                d total / d param with B.7's routing (F detached at the GAM input,
                                    gate parameters detached in the editing stream); every parameter
    grad_egu.gate.m.{out.weight, out.bias, r1.conv1.bias, r2.conv2.bias}
                                    gate gradients with edit_stream_updates_gate = true (the script
                                    checks that every non-gate gradient is unchanged by that flag)
    after.grm.m.stem_bn.*           BatchNorm buffers after the iteration's forward (train mode)

TRAINING FILE train10.safetensors (kind train): 10 iterations from net.safetensors' parameters, data
  and homographies (the same batch every iteration), Adam (betas 0.9, 0.999, eps 1e-8, lr in config)
  inside Lookahead (k 6, alpha 0.5; slow weights start at the initial parameters), no D step.
    loss.<term> [10]                each iteration's loss terms, evaluated before its update
    final.<key>                     after the 10th update: every tensor of <= 64 elements (biases, norm
                                    parameters, BN buffers; F64, counters I64)
    final_stats.<key> [3]           every larger parameter by (sum, sum |x|, sum x^2) after the 10th update
"""
import collections
import copy
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gradstyle_ref as gs  # noqa: E402
import lpips_ref  # noqa: E402
import stylegan2_ref  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "gradstyle")
SG2_CHANNELS = {4: 16, 8: 16, 16: 12, 32: 8}
B = 2

torch.set_num_threads(1)

# ---- safetensors writer ---------------------------------------------------------------------------

ST_DT = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def save_st(name, tensors, kind, cfg, note, extra_meta=None):
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    meta = {"format": "gradstyle-fixture/1", "case": name, "kind": kind, "config": json.dumps(cfg, sort_keys=True),
            "note": note, **(extra_meta or {})}
    header, blobs, off = {"__metadata__": meta}, [], 0
    for k in order:
        t = tensors[k].detach().contiguous()
        b = t.numpy().tobytes()
        header[k] = {"dtype": ST_DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((64 - (8 + len(h)) % 64) % 64)
    with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def f32(t):
    return t.detach().to(torch.float32).clone()


def f64(t):
    return t.detach().to(torch.float64).clone()


def state(prefix, module):
    """Parameters / buffers as stored: float32 values (F32), integer counters as I64."""
    return {prefix + k: (v.clone() if not v.is_floating_point() else f32(v)) for k, v in module.state_dict().items()}


# ---- seeded values --------------------------------------------------------------------------------

class Rnd:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def randn(self, *shape, scale=1.0):
        """float32-representable float64 values."""
        return (torch.randn(*shape, generator=self.g) * scale).float().double()

    def rand(self, *shape):
        return torch.rand(*shape, generator=self.g).float().double()


def randomise(module, rnd):
    """Non-trivial float32-representable values for every parameter and floating buffer (module is
    float64): weights ~ N(0, 1/fan_in), biases N(0, 0.1^2), PReLU slopes U(0.05, 0.35), norm scales
    around 1, BN statistics away from (0, 1), so every term of the forward is exercised."""
    with torch.no_grad():
        for name, mod in module.named_modules():
            if isinstance(mod, nn.PReLU):
                mod.weight.copy_(rnd.rand(*mod.weight.shape) * 0.3 + 0.05)
            elif isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)):
                mod.weight.copy_(rnd.rand(*mod.weight.shape) * 0.8 + 0.6)
                mod.bias.copy_(rnd.randn(*mod.bias.shape, scale=0.1))
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.copy_(rnd.randn(*mod.running_mean.shape, scale=0.2))
                    mod.running_var.copy_(rnd.rand(*mod.running_var.shape) * 0.8 + 0.6)
                    mod.num_batches_tracked.fill_(7)
            elif isinstance(mod, (nn.Conv2d, nn.Linear)):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(rnd.randn(*mod.weight.shape, scale=fan_in ** -0.5))
                if mod.bias is not None:
                    mod.bias.copy_(rnd.randn(*mod.bias.shape, scale=0.1))
    return module


def grads(loss, named):
    names = list(named)
    gr = torch.autograd.grad(loss, [named[n] for n in names], allow_unused=True)
    out = {}
    for n, g in zip(names, gr):
        if g is None:
            raise RuntimeError(f"no gradient reaches {n}")
        out[n] = f64(g)
    return out


def params(prefix, module):
    return {prefix + k: v for k, v in module.named_parameters()}


# ---- (a) per-module fixtures ----------------------------------------------------------------------

def grm_case(name, c, ct, r, k, levels, eres_input, ac, seed, note):
    rnd = Rnd(seed)
    mod = randomise(gs.GRM(c, ct, k, levels, eres_input, ac).double(), rnd)
    t_in, f_in = rnd.randn(B, ct, r, r), rnd.randn(B, c, r, r)
    gy = rnd.randn(B, c, r, r)
    ten = {**state("grm.0.", mod), "in.T": f32(t_in), "in.f": f32(f_in), "gy": f32(gy)}
    for mode in ("train", "eval"):
        m = copy.deepcopy(mod)
        m.train(mode == "train")
        t, f = t_in.clone().requires_grad_(), f_in.clone().requires_grad_()
        out = m(t, f)
        g = grads((out * gy).sum(), {"in.T": t, "in.f": f, **params("grm.0.", m)})
        ten[f"{mode}.out"] = f64(out)
        ten.update({f"{mode}.grad.{n}": v for n, v in g.items()})
        if mode == "train":
            bn = m.stem_bn
            ten["train.after.grm.0.stem_bn.running_mean"] = f64(bn.running_mean)
            ten["train.after.grm.0.stem_bn.running_var"] = f64(bn.running_var)
            ten["train.after.grm.0.stem_bn.num_batches_tracked"] = bn.num_batches_tracked.clone()
    cfg = {"C": c, "t_channels": ct, "R": r, "grm_proj_kernel": k, "eres_levels": levels, "eres_input": eres_input,
           "eres_interp_align_corners": ac}
    save_st(name, ten, "grm", cfg, note)


def gate_case(name, c, cg, r, seed, note):
    rnd = Rnd(seed)
    mod = randomise(gs.Gate(c, cg).double(), rnd)
    with torch.no_grad():  # a gate that is neither saturated nor 0.5 everywhere
        mod.out.bias.copy_(rnd.randn(cg, scale=0.5) - 1.0)
    f, feat = rnd.randn(B, c, r, r).requires_grad_(), rnd.randn(B, c, r, r).requires_grad_()
    fused, g = mod(f, feat)
    gyf, gyg = rnd.randn(*fused.shape), rnd.randn(*g.shape)
    gr = grads((fused * gyf).sum() + (g * gyg).sum(), {"in.f": f, "in.F": feat, **params("gate.0.", mod)})
    # editing-stream form: same values, and the same input gradients with the weights as constants
    fused2, g2 = mod(f, feat, detach_params=True)
    gr2 = torch.autograd.grad((fused2 * gyf).sum() + (g2 * gyg).sum(), [f, feat])
    assert torch.equal(fused2, fused) and all(torch.allclose(a, gr[n], rtol=0, atol=1e-14)
                                              for a, n in zip(gr2, ("in.f", "in.F")))
    ten = {**state("gate.0.", mod), "in.f": f32(f), "in.F": f32(feat), "gy.fused": f32(gyf), "gy.g": f32(gyg),
           "out.fused": f64(fused), "out.g": f64(g), **{"grad." + n: v for n, v in gr.items()}}
    save_st(name, ten, "gate", {"C": c, "R": r, "gate_channels": cg}, note)


def gam_case(name, c, r, layers, heads, ratio, pe, pe_on_value, temperature, mu, output, seed, note, ties=False):
    rnd = Rnd(seed)
    mod = randomise(gs.Aligner(c, layers, heads, ratio, pe, pe_on_value, temperature, mu, output).double(), rnd)
    feat, f = rnd.randn(B, c, r, r), rnd.randn(B, c, r, r)
    if ties:
        with torch.no_grad():
            for ly in mod.layers:
                ly.k.weight[:, c // 2:] = 0           # keys read only the y-half (PE of the row)
            feat[:, : c // 2] = feat[:, : c // 2, :, :1].clone()  # y-half constant along x
    feat.requires_grad_()
    f.requires_grad_()
    stats = []
    out = mod(feat, f, stats)
    gy = rnd.randn(*out.shape)
    gr = grads((out * gy).sum(), {"in.F": feat, "in.f": f, **params("gam.0.", mod)})
    kt = gs.topk_count(mu, r * r)
    kept = torch.stack(stats)                           # [layers, B, h, L]
    assert (kept >= kt).all()
    if ties:
        assert (kept % r == 0).all() and (kept > kt).all(), kept.unique()
    ten = {**state("gam.0.", mod), "in.F": f32(feat), "in.f": f32(f), "gy": f32(gy), "out": f64(out),
           **{"grad." + n: v for n, v in gr.items()}, **{f"kept.l{l}": f64(kept[l]) for l in range(layers)}}
    cfg = {"C": c, "R": r, "aligner_layers": layers, "aligner_heads": heads, "aligner_mlp_ratio": ratio, "pe": pe,
           "pe_on_value": pe_on_value, "pe_temperature": temperature, "topk_mu": mu, "k_top": kt,
           "aligner_output": output}
    save_st(name, ten, "gam", cfg, note)


def make_modules():
    grm_case("grm_c8_k1_l1_concat", 8, 4, 8, 1, 1, "concat", True, 101,
             "default topology (B.3 table): 1x1 projections, one down/up level, concat")
    grm_case("grm_c4_k3_l2_diff", 4, 4, 8, 3, 2, "diff", True, 102,
             "3x3 projections, two levels (8 -> 4 -> 2, up.0 used), eres_input diff")
    grm_case("grm_c4_k1_l0_concat", 4, 3, 8, 1, 0, "concat", True, 103, "eres_levels 0: stem, enc, dec, out")
    grm_case("grm_c4_k3_l1_concat_ac0", 4, 3, 6, 3, 1, "concat", False, 104,
             "R = 6 (inner 3x3), eres_interp_align_corners false")
    gate_case("gate_c8_cg8", 8, 8, 8, 201, "per-channel gate (gate_channels = C)")
    gate_case("gate_c4_cg1", 4, 1, 8, 202, "spatial gate (gate_channels = 1) broadcast over channels")
    gam_case("gam_c8_2d_value", 8, 8, 2, 2, 4, "2d", False, 10000.0, 0.25, "value", 301,
             "default aligner form: 2-D PE on Q/K, value-side output, k = 16 of 64")
    gam_case("gam_c8_1d_value", 8, 8, 2, 2, 4, "1d", False, 10000.0, 0.5, "value", 302,
             "pe 1d (added once to both inputs, so the values carry it too), k = 32 of 64")
    gam_case("gam_c8_2d_query_pev", 8, 4, 3, 2, 2, "2d", True, 100.0, 0.3, "query", 303,
             "aligner_output query (every layer has norm1), 2-D PE on values, temperature 100, "
             "L = 16, k = ceil(0.3 * 16) = 5")
    gam_case("gam_c4_2d_value_a1_k1", 4, 8, 1, 1, 2, "2d", False, 10000.0, 0.01, "value", 304,
             "one layer, one head, k = 1")
    gam_case("gam_ties", 8, 8, 2, 2, 4, "2d", False, 10000.0, 0.2, "value", 305,
             "exact ties: 8 equal keys per image row; k = 13 keeps 16", ties=True)


# ---- (b) the network and (c) training ---------------------------------------------------------------

NET_CFG = gs.config(refined_blocks=[3, 6], t_channels=8, aligner_layers=2, aligner_heads=2, aligner_mlp_ratio=2,
                    topk_mu=0.25, loss_resolution=16, lambda_l2=1.0, lambda_lpips=0.8, lambda_id=0.0,
                    lambda_adv=0.05, lambda_f=0.05, lambda_aligner=0.1, lr=1e-3)


FROZEN = json.dumps({
    "generator": {"file": "tests/golden/stylegan2/tiny.pt", "key": "g_ema", "size": 32, "style_dim": 32, "n_mlp": 3,
                  "channels": {str(k): v for k, v in SG2_CHANNELS.items()}, "noise_mode": "const"},
    "discriminator": {"file": "tests/golden/stylegan2/tiny.pt", "key": "d", "size": 32},
    "lpips": {"features": "tests/golden/encoders/vgg_tiny.pth", "lin": "tests/golden/encoders/lin_tiny.pth",
              "channels": [8, 8, 12, 12, 16]}}, sort_keys=True)
EGU_KEYS = ("out.weight", "out.bias", "r1.conv1.bias", "r2.conv2.bias")


def frozen_nets():
    ck = torch.load(os.path.join(ROOT, "tests", "golden", "stylegan2", "tiny.pt"), map_location="cpu")
    g = stylegan2_ref.Generator(32, 32, 3, channels=SG2_CHANNELS)
    g.load_state_dict(ck["g_ema"])
    d = stylegan2_ref.Discriminator(32, channels=SG2_CHANNELS)
    d.load_state_dict(ck["d"])
    enc = os.path.join(ROOT, "tests", "golden", "encoders")
    lp = lpips_ref.LPIPS((8, 8, 12, 12, 16))
    feats = torch.load(os.path.join(enc, "vgg_tiny.pth"), map_location="cpu")
    lp.features.load_state_dict({k[len("features."):]: v for k, v in feats.items() if k.startswith("features.")})
    lins = torch.load(os.path.join(enc, "lin_tiny.pth"), map_location="cpu")
    for l in range(5):
        getattr(lp, f"lin{l}").model[1].weight.data.copy_(lins[f"lin{l}.model.1.weight"])
    for m in (g, d, lp):
        m.double().eval().requires_grad_(False)
    return g, d, lp, ck["latent_avg"].double()


def net_inputs(g, latent_avg, rnd):
    with torch.no_grad():
        z = rnd.randn(B, 32)
        w = g.style(z).lerp(latent_avg[None], 0.3)[:, None].repeat(1, g.n_latent, 1)
        w = (w + rnd.randn(*w.shape, scale=0.2)).float().double()            # e4e-like per-row offsets
        w2 = (g.style(rnd.randn(B, 32))[:, None].repeat(1, g.n_latent, 1) * 0.5 + w * 0.5)
        x = torch.nn.functional.adaptive_avg_pool2d(g.synthesis(w2), 16).clamp(-1, 1).float().double()
    groups = {"c3": rnd.randn(B, 8, 32, 32), "p2": rnd.randn(B, 8, 8, 8)}
    rng = np.random.default_rng(401)
    u = rng.uniform(size=(B, 4, 2))
    corners = np.stack([gs.inward_corners(u[0], 0.15), gs.inward_corners(u[1], 0.45)])
    h = torch.tensor(np.stack([gs.homography(cn) for cn in corners]))
    return w, groups, x, torch.tensor(u), torch.tensor(corners), h


def build_net(g, rnd):
    net = gs.GradStyleNet(g, NET_CFG).double()
    randomise(net, rnd)
    with torch.no_grad():  # gates open enough that the refined features matter
        for gt in net.gate:
            gt.out.bias.copy_(rnd.randn(*gt.out.bias.shape, scale=0.5) - 1.0)
    return net.train()


def make_net():
    g, d, lp, latent_avg = frozen_nets()
    rnd = Rnd(400)
    net = build_net(g, rnd)
    w, groups, x, u, corners, h = net_inputs(g, latent_avg, rnd)
    init = {k: v.clone() for k, v in net.state_dict().items()}
    losses = gs.Losses(NET_CFG, lpips=lp, disc=d)

    terms, rec = gs.train_forward(net, losses, w, groups, x, h)
    named = params("", net)
    gr = grads(terms["total"], named)
    ten = {**{k: (v.clone() if not v.is_floating_point() else f32(v)) for k, v in init.items()},
           "in.w": f32(w), "in.c3": f32(groups["c3"]), "in.p2": f32(groups["p2"]), "in.x": f32(x),
           "in.u": f64(u), "in.corners": f64(corners), "in.H": f64(h),
           "out.Xr": f64(rec["Xr"]), "out.Xe": f64(rec["Xe"]),
           **{f"loss.{k}": f64(v).reshape(1) for k, v in terms.items()},
           **{"grad." + n: v for n, v in gr.items()}}
    for key in ("T", "F", "g", "Fhat", "Fp"):
        for m, t in enumerate(rec[key]):
            if m == 0 or key in ("F", "Fp"):
                ten[f"out.{key}.{m}"] = f64(t)
    for m, grm in enumerate(net.grm):
        ten[f"after.grm.{m}.stem_bn.running_mean"] = f64(grm.stem_bn.running_mean)
        ten[f"after.grm.{m}.stem_bn.running_var"] = f64(grm.stem_bn.running_var)
        ten[f"after.grm.{m}.stem_bn.num_batches_tracked"] = grm.stem_bn.num_batches_tracked.clone()

    # the same iteration with edit_stream_updates_gate = true: only the gate gradients change
    net2 = build_net(g, Rnd(400))
    net2.load_state_dict(init)
    net2.cfg = dict(NET_CFG, edit_stream_updates_gate=True)
    t2, _ = gs.train_forward(net2, gs.Losses(net2.cfg, lpips=lp, disc=d), w, groups, x, h)
    gr2 = grads(t2["total"], params("", net2))
    for n, v in gr2.items():
        if n.startswith("gate."):
            if n.split(".", 2)[2] in EGU_KEYS:
                ten["grad_egu." + n] = v
        else:
            assert torch.allclose(v, gr[n], rtol=1e-12, atol=1e-14), n
    assert any(not torch.allclose(gr2[n], gr[n]) for n in gr if n.startswith("gate."))

    # routing sanity: editing-stream-only terms do not reach GRM, reconstruction terms do not reach GAM
    net3 = build_net(g, Rnd(400))
    net3.load_state_dict(init)
    t3, r3 = gs.train_forward(net3, losses, w, groups, x, h)
    pe3 = losses.pool(r3["Xe"])
    edit_only = ((pe3 - x) ** 2).mean() + sum((fp - f.detach()).abs().mean() for fp, f in zip(r3["Fp"], r3["F"]))
    ge = torch.autograd.grad(edit_only, list(params("", net3).values()), allow_unused=True)
    for n, v in zip(params("", net3), ge):
        assert (v is None or not v.abs().sum()) == (not n.startswith("gam.")), n

    note = ("one training iteration of B.7 at alpha = 0 on the tiny 32 px generator; G, D, LPIPS from "
            "tests/golden/stylegan2/tiny.pt and tests/golden/encoders/{vgg,lin}_tiny.pth")
    save_st("net", ten, "net", NET_CFG, note, {"frozen": FROZEN})
    return g, d, lp, init, (w, groups, x, h), terms


def make_train(g, d, lp, init, data):
    w, groups, x, h = data
    net = build_net(g, Rnd(400))
    net.load_state_dict(init)
    losses = gs.Losses(NET_CFG, lpips=lp, disc=d)
    opt = gs.AdamLookahead(net.parameters(), lr=NET_CFG["lr"], k=NET_CFG["lookahead_k"],
                           alpha=NET_CFG["lookahead_alpha"])
    hist = collections.defaultdict(list)
    for _ in range(10):
        for p in net.parameters():
            p.grad = None
        terms, _ = gs.train_forward(net, losses, w, groups, x, h)
        terms["total"].backward()
        opt.step()
        for k, v in terms.items():
            hist[k].append(v.item())
    ten = {f"loss.{k}": torch.tensor(v, dtype=torch.float64) for k, v in hist.items()}
    for k, v in net.state_dict().items():
        if not v.is_floating_point():
            ten["final." + k] = v.clone()
        elif v.numel() <= 64:
            ten["final." + k] = f64(v)
        else:  # large tensors by their statistics (a full copy of every tensor would be 0.5 MB)
            ten["final_stats." + k] = torch.stack([v.sum(), v.abs().sum(), (v * v).sum()]).double()
    cfg = dict(NET_CFG, optimizer="adam_lookahead", iterations=10, adam_betas=[0.9, 0.999], adam_eps=1e-8)
    save_st("train10", ten, "train", cfg,
            "10 iterations of Adam + Lookahead from net.safetensors (same batch and homographies each step)",
            {"frozen": FROZEN})
    return hist


def main():
    os.makedirs(OUT, exist_ok=True)
    make_modules()
    g, d, lp, init, data, terms = make_net()
    hist = make_train(g, d, lp, init, data)
    print("net losses:", {k: round(v.item(), 6) for k, v in terms.items()})
    print("train total:", [round(v, 6) for v in hist["total"]])
    sizes = {f: os.path.getsize(os.path.join(OUT, f)) for f in sorted(os.listdir(OUT))}
    for f, s in sizes.items():
        print(f"  {f}: {s / 1e3:.1f} kB")
    total = sum(sizes.values())
    print(f"wrote {OUT}: {total / 1e6:.2f} MB")
    assert total < 2e6, "fixtures must stay below 2 MB"


if __name__ == "__main__":
    main()
