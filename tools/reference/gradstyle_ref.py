"""Reference GradStyle modules and training iteration in plain PyTorch, written from SPEC.md Part B
(B.1-B.9) and docs notes/gradstyle_layout.md (module names and parameter keys, shared with the C++
models so each side loads the other's weights).

Contents:
  ResBlock, GRM (W_T, W_f, E_res with eres_levels / eres_input / grm_proj_kernel), Gate (Gate&Fusion
  W_g), Aligner (E_ab: 2-D / 1-D sine PE, selective top-k attention with the threshold tie rule,
  value- or query-side output), select_t / resize_t (B.2), homography / warp (B.7),
  GradStyleNet (the dual-stream forward on stylegan2_ref.Generator.synthesis hooks, gradient
  routing of B.7), the losses of B.7 and Adam + Lookahead.

Everything is plain torch and dtype-generic (the fixtures run it in float64).
"""
import json
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

DEFAULTS = {
    "refined_blocks": [3, 6, 8], "t_channels": 512, "t_resize": "area", "grm_proj_kernel": 1,
    "eres_levels": 1, "eres_interp_align_corners": True, "eres_input": "concat", "gate_channels": None,
    "gate_bias_init": -4.0, "aligner_layers": 3, "aligner_heads": 8, "aligner_mlp_ratio": 4,
    "aligner_dropout": 0.0, "pe": "2d", "pe_on_value": False, "pe_temperature": 10000.0, "topk_mu": 0.25,
    "topk_ties": "threshold", "aligner_output": "value", "noise_mode": "const", "loss_resolution": 256,
    "lambda_l2": 1.0, "lambda_lpips": 0.8, "lambda_id": 0.1, "lambda_adv": 0.001, "lambda_f": 0.01,
    "lambda_aligner": 0.1, "loss_reduction": "mean", "edit_stream_updates_gate": False,
    "lr": 1e-4, "lookahead_k": 6, "lookahead_alpha": 0.5,
}


def config(**kw):
    unknown = set(kw) - set(DEFAULTS)
    if unknown:
        raise KeyError(f"unknown gradstyle config keys: {sorted(unknown)}")
    c = dict(DEFAULTS)
    c.update(kw)
    return c


# ---- parameter access that can cut the graph (the gate in the editing stream, B.7) ---------------

def _p(t, detach):
    return None if t is None else (t.detach() if detach else t)


def conv(mod, x, detach=False):
    return F.conv2d(x, _p(mod.weight, detach), _p(mod.bias, detach), mod.stride, mod.padding)


# ---- ResBlock (StyleRes ResLayers; B.3) -----------------------------------------------------------

class ResBlock(nn.Module):
    """y = conv2(lrelu(conv1(x), 0.2)) + shortcut(x); conv2 carries the stride."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=True)
        self.shortcut = None if (cin == cout and stride == 1) else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x, detach=False):
        r = conv(self.conv2, F.leaky_relu(conv(self.conv1, x, detach), 0.2), detach)
        s = x if self.shortcut is None else conv(self.shortcut, x, detach)
        return r + s


# ---- GRM_m (B.3) ----------------------------------------------------------------------------------

class GRM(nn.Module):
    def __init__(self, c, ct, proj_kernel=1, levels=1, eres_input="concat", align_corners=True):
        super().__init__()
        if proj_kernel not in (1, 3):
            raise ValueError(f"grm_proj_kernel must be 1 or 3, got {proj_kernel}")
        if eres_input not in ("concat", "diff"):
            raise ValueError(f"eres_input must be concat or diff, got {eres_input}")
        self.eres_input = eres_input
        self.levels = levels
        self.align_corners = align_corners
        k = proj_kernel
        self.w_t = nn.Conv2d(ct, c, k, 1, k // 2)
        self.w_f = nn.Conv2d(c, c, k, 1, k // 2)
        self.stem_conv = nn.Conv2d(2 * c if eres_input == "concat" else c, c, 3, 1, 1)
        self.stem_prelu = nn.PReLU(c, init=0.25)
        self.stem_bn = nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
        self.enc = ResBlock(c, c, 1)
        self.down = nn.ModuleList([nn.Sequential(ResBlock(c, c, 2), ResBlock(c, c, 1)) for _ in range(levels)])
        self.up = nn.ModuleList([ResBlock(c, c, 1) for _ in range(max(levels - 1, 0))])
        self.dec = ResBlock(c, c, 1)
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, t, f):
        """t: T_m [B,Ct,R,R] (already resized), f: f_m^rec [B,C,R,R] -> F_m [B,C,R,R]."""
        a, b = self.w_t(t), self.w_f(f)
        x = torch.cat([a, b], 1) if self.eres_input == "concat" else a - b
        x = self.stem_bn(self.stem_prelu(self.stem_conv(x)))
        e = [self.enc(x)]                                  # e_0 at R
        for d in self.down:                                # e_i at R / 2^i
            e.append(d(e[-1]))
        h = e[-1]
        for lvl in range(self.levels, 0, -1):
            h = F.interpolate(h, size=e[lvl - 1].shape[2:], mode="bilinear",
                              align_corners=self.align_corners) + e[lvl - 1]
            if lvl >= 2:
                h = self.up[lvl - 2](h)
        return self.out(self.dec(h))


# ---- Gate&Fusion W_g (B.4) -------------------------------------------------------------------------

class Gate(nn.Module):
    def __init__(self, c, cg=None, bias_init=-4.0):
        super().__init__()
        cg = c if cg is None else cg
        self.r1 = ResBlock(2 * c, c, 1)
        self.r2 = ResBlock(c, c, 1)
        self.out = nn.Conv2d(c, cg, 1)
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.fill_(bias_init)

    def forward(self, f, feat, detach_params=False):
        """-> (f + g * feat, g). detach_params: the gate's weights are constants (editing stream)."""
        h = self.r2(self.r1(torch.cat([f, feat], 1), detach_params), detach_params)
        g = torch.sigmoid(conv(self.out, h, detach_params))
        return f + g * feat, g


# ---- Aligner E_ab (B.5) ----------------------------------------------------------------------------

def pe_2d(r, c, temperature=10000.0, dtype=torch.float64):
    """[R*R, C]: channels 0..C/2-1 encode y, C/2..C-1 encode x; within a half channel 2j = sin(u w_j),
    2j+1 = cos(u w_j), u = 2 pi (p+1) / R, w_j = T^(-4j/C)."""
    if c % 4:
        raise ValueError(f"pe=2d needs C divisible by 4, got {c}")
    p = torch.arange(r, dtype=dtype)
    u = 2 * math.pi * (p + 1) / r                                         # [R]
    j = torch.arange(c // 4, dtype=dtype)
    w = temperature ** (-4 * j / c)                                       # [C/4]
    a = u[:, None] * w[None, :]                                           # [R, C/4]
    half = torch.stack([torch.sin(a), torch.cos(a)], -1).reshape(r, c // 2)  # interleaved sin, cos
    py = half[:, None, :].expand(r, r, c // 2)                            # [y, x, C/2]
    px = half[None, :, :].expand(r, r, c // 2)
    return torch.cat([py, px], -1).reshape(r * r, c)


def pe_1d(length, c, temperature=10000.0, dtype=torch.float64):
    """Vaswani: PE[t, 2i] = sin(t / T^(2i/C)), PE[t, 2i+1] = cos(t / T^(2i/C)), t = 0..L-1."""
    if c % 2:
        raise ValueError(f"pe=1d needs an even C, got {c}")
    t = torch.arange(length, dtype=dtype)
    i = torch.arange(c // 2, dtype=dtype)
    a = t[:, None] / temperature ** (2 * i / c)[None, :]
    return torch.stack([torch.sin(a), torch.cos(a)], -1).reshape(length, c)


def topk_count(mu, length):
    """k = ceil(mu * L) in double precision, clamped to [1, L]."""
    return min(length, max(1, math.ceil(mu * length)))


def selective_attention(q, k, v, heads, mu, stats=None):
    """q [B,Lq,C], k, v [B,Lk,C]. Per (batch, head, row): s = q.k_j; tau = k-th largest s; keep every
    s_j >= tau (ties keep more than k); softmax of s_j / sqrt(d) over the kept entries, -inf elsewhere.
    The mask is a constant for autograd (masked_fill). stats: optional list receiving kept counts."""
    b, lq, c = q.shape
    lk = k.shape[1]
    d = c // heads
    kt = topk_count(mu, lk)
    qh = q.reshape(b, lq, heads, d).transpose(1, 2)          # [B,h,Lq,d]
    kh = k.reshape(b, lk, heads, d).transpose(1, 2)          # [B,h,Lk,d]
    vh = v.reshape(b, lk, heads, d).transpose(1, 2)
    s = qh @ kh.transpose(-1, -2)                            # [B,h,Lq,Lk] unscaled scores
    tau = torch.sort(s.detach(), dim=-1, descending=True).values[..., kt - 1:kt]   # k-th largest value
    keep = s.detach() >= tau
    p = torch.softmax((s / math.sqrt(d)).masked_fill(~keep, float("-inf")), dim=-1)
    if stats is not None:
        stats.append(keep.sum(-1))                           # [B,h,Lq]
    return (p @ vh).transpose(1, 2).reshape(b, lq, c)


class AlignerLayer(nn.Module):
    def __init__(self, c, ratio, has_norm1):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(c, c) for _ in range(4))
        self.fc1 = nn.Linear(c, ratio * c)
        self.fc2 = nn.Linear(ratio * c, c)
        if has_norm1:
            self.norm1 = nn.LayerNorm(c, eps=1e-5)
        self.norm2 = nn.LayerNorm(c, eps=1e-5)
        for lin in (self.q, self.k, self.v, self.o):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)


class Aligner(nn.Module):
    def __init__(self, c, layers=3, heads=8, ratio=4, pe="2d", pe_on_value=False, temperature=10000.0, mu=0.25,
                 output="value"):
        super().__init__()
        if c % heads:
            raise ValueError(f"aligner_heads {heads} must divide C = {c}")
        if pe not in ("2d", "1d") or output not in ("value", "query"):
            raise ValueError(f"bad aligner config pe={pe} aligner_output={output}")
        self.c, self.heads, self.pe, self.pe_on_value, self.temperature, self.mu = c, heads, pe, pe_on_value, \
            temperature, mu
        self.output = output
        n = layers
        self.layers = nn.ModuleList([AlignerLayer(c, ratio, has_norm1=(output == "query" or l < n - 1))
                                     for l in range(n)])
        self.out = nn.Linear(c, c)

    def forward(self, feat, f, stats=None):
        """feat: F (F_hat in training) [B,C,R,R] = keys/values; f: f^edi [B,C,R,R] = queries -> F'."""
        b, c, r, _ = feat.shape
        tok = lambda t: t.flatten(2).transpose(1, 2)          # [B,L,C], token y*R + x  # noqa: E731
        x, z = tok(f), tok(feat)
        if self.pe == "2d":
            p = pe_2d(r, c, self.temperature, feat.dtype)[None]
        else:
            p1 = pe_1d(r * r, c, self.temperature, feat.dtype)[None]
            x, z = x + p1, z + p1
            p = torch.zeros_like(p1)
        zk = z + p
        zv = z + p if self.pe_on_value else z
        n = len(self.layers)
        for l, ly in enumerate(self.layers):
            att = selective_attention(ly.q(x + p), ly.k(zk), ly.v(zv), self.heads, self.mu, stats)
            if self.output == "value" and l == n - 1:
                y = ly.o(att)
                x = ly.norm2(y + ly.fc2(F.relu(ly.fc1(y))))
            else:
                x = ly.norm1(x + ly.o(att))
                x = ly.norm2(x + ly.fc2(F.relu(ly.fc1(x))))
        return self.out(x).transpose(1, 2).reshape(b, c, r, r)


# ---- T_m selection and resizing (B.2) --------------------------------------------------------------

def t_group(block):
    """e4e group of code b (1-based): 1-3 -> c3, 4-7 -> p2, 8-18 -> p1."""
    return "c3" if block <= 3 else ("p2" if block <= 7 else "p1")


def resize_t(t, r, mode="area"):
    """t [B,Ct,S,S] -> [B,Ct,R,R]: k 2x2 average poolings when S = R * 2^k (mode area), bilinear
    align_corners=False when S < R or mode bilinear, identity when S == R."""
    s = t.shape[-1]
    if s == r:
        return t
    if s > r and mode == "area":
        k = int(round(math.log2(s / r)))
        if r * 2 ** k != s:
            raise ValueError(f"t_resize=area needs a power-of-two ratio, got {s} -> {r}")
        for _ in range(k):
            t = F.avg_pool2d(t, 2)
        return t
    return F.interpolate(t, size=(r, r), mode="bilinear", align_corners=False)


# ---- perspective warp (B.7) --------------------------------------------------------------------------

SRC_CORNERS = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)   # TL, TR, BR, BL


def inward_corners(u, d=0.15):
    """u [4,2] in [0,1): c'_k = c_k + d * (s_x u_x, s_y u_y), signs pointing inward."""
    return SRC_CORNERS - SRC_CORNERS * d * np.asarray(u, dtype=np.float64)


def homography(dst):
    """3x3 H (float64) mapping destination to source: the 8x8 system of the pairs c'_k -> c_k, H33 = 1."""
    a, rhs = np.zeros((8, 8)), np.zeros(8)
    for i, ((u, v), (x, y)) in enumerate(zip(np.asarray(dst, dtype=np.float64), SRC_CORNERS)):
        a[2 * i] = [u, v, 1, 0, 0, 0, -u * x, -v * x]
        a[2 * i + 1] = [0, 0, 0, u, v, 1, -u * y, -v * y]
        rhs[2 * i], rhs[2 * i + 1] = x, y
    return np.append(np.linalg.solve(a, rhs), 1.0).reshape(3, 3)


def warp(x, h):
    """x [B,C,H,W], h [B,3,3] (destination -> source, normalised coordinates with pixel centres at
    (2i+1)/n - 1): out(p) = bilinear(x, H p), zeros outside (grid_sample, align_corners=False)."""
    b, _, hh, ww = x.shape
    u = (2 * torch.arange(ww, dtype=torch.float64) + 1) / ww - 1
    v = (2 * torch.arange(hh, dtype=torch.float64) + 1) / hh - 1
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    pts = torch.stack([uu, vv, torch.ones_like(uu)], -1).reshape(-1, 3)      # [HW, 3]
    q = torch.einsum("bij,nj->bni", h.to(torch.float64), pts)
    grid = (q[..., :2] / q[..., 2:]).reshape(b, hh, ww, 2).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# ---- the network (B.6) and one training iteration (B.7) ---------------------------------------------

def block_resolution(block):
    """Input resolution of StyledConv b (B.1): 4 for b = 1, 2; 8 for 3, 4; 16 for 5, 6; ... 1024 for 17."""
    return 4 if block <= 2 else 2 ** ((block + 3) // 2)


class GradStyleNet(nn.Module):
    """K = len(refined_blocks) modules; state_dict keys grm.<m>.*, gate.<m>.*, gam.<m>.*. The frozen
    generator is held outside the module tree (not in state_dict)."""

    def __init__(self, generator, cfg):
        super().__init__()
        self.cfg = cfg
        self.__dict__["g"] = generator            # unregistered: frozen, never in state_dict
        blocks = cfg["refined_blocks"]
        if sorted(set(blocks)) != list(blocks) or blocks[0] < 3 or blocks[-1] > generator.num_layers:
            raise ValueError(f"refined_blocks must be strictly increasing in [3, {generator.num_layers}]: {blocks}")
        widths = [generator.channels[block_resolution(b)] for b in blocks]
        self.widths = widths
        self.grm = nn.ModuleList([GRM(c, cfg["t_channels"], cfg["grm_proj_kernel"], cfg["eres_levels"],
                                      cfg["eres_input"], cfg["eres_interp_align_corners"]) for c in widths])
        self.gate = nn.ModuleList([Gate(c, cfg["gate_channels"] or c, cfg["gate_bias_init"]) for c in widths])
        self.gam = nn.ModuleList([Aligner(c, cfg["aligner_layers"], cfg["aligner_heads"], cfg["aligner_mlp_ratio"],
                                          cfg["pe"], cfg["pe_on_value"], cfg["pe_temperature"], cfg["topk_mu"],
                                          cfg["aligner_output"]) for c in widths])

    def t_maps(self, groups):
        """groups {c3, p2, p1} -> [T_m] resized to R_m."""
        return [resize_t(groups[t_group(b)], block_resolution(b), self.cfg["t_resize"])
                for b in self.cfg["refined_blocks"]]

    def reconstruct(self, w, ts):
        """-> X^r, [F_m], [g_m]. One generator pass; each module refines the feature entering StyledConv b_m."""
        idx = {b: m for m, b in enumerate(self.cfg["refined_blocks"])}
        fs, gs = [], []

        def hook(b, f):
            if b not in idx:
                return f
            m = idx[b]
            feat = self.grm[m](ts[m], f)
            out, g = self.gate[m](f, feat)
            fs.append(feat)
            gs.append(g)
            return out

        return self.g.synthesis(w, hook=hook), fs, gs

    def edit(self, w_hat, f_hats, train_routing=True):
        """-> X^e, [F'_m]. f_hats: the (warped) reconstruction features, detached at the GAM input.
        With train_routing the gate runs with detached parameters unless edit_stream_updates_gate."""
        idx = {b: m for m, b in enumerate(self.cfg["refined_blocks"])}
        detach_gate = train_routing and not self.cfg["edit_stream_updates_gate"]
        fps = []

        def hook(b, f):
            if b not in idx:
                return f
            m = idx[b]
            fp = self.gam[m](f_hats[m].detach(), f)
            out, _ = self.gate[m](f, fp, detach_params=detach_gate)
            fps.append(fp)
            return out

        return self.g.synthesis(w_hat, hook=hook), fps


class Losses:
    """The terms of B.7. lpips: callable(a, b) -> per-sample [B]; id_net: IR-SE Backbone (irse_ref);
    disc: stylegan2_ref.Discriminator. A term whose weight is 0 is not computed."""

    def __init__(self, cfg, lpips=None, id_net=None, disc=None, id_kw=None):
        self.cfg, self.lpips, self.id_net, self.disc, self.id_kw = cfg, lpips, id_net, disc, id_kw or {}

    def pool(self, x):
        r = self.cfg["loss_resolution"]
        return x if x.shape[-1] == r else F.adaptive_avg_pool2d(x, (r, r))

    def __call__(self, xr, xe, target, fs, gs, fps):
        c = self.cfg
        red = torch.mean if c["loss_reduction"] == "mean" else torch.sum
        pr, pe = self.pool(xr), self.pool(xe)
        t = {}
        if c["lambda_l2"]:
            t["l2"] = red((pr - target) ** 2) + red((pe - target) ** 2)
        if c["lambda_lpips"]:
            t["lpips"] = self.lpips(pr, target).mean() + self.lpips(pe, target).mean()
        if c["lambda_id"]:
            import irse_ref
            t["id"] = irse_ref.id_loss(self.id_net, pr, target, **self.id_kw) + \
                irse_ref.id_loss(self.id_net, pe, target, **self.id_kw)
        if c["lambda_adv"]:
            t["adv"] = F.softplus(-self.disc(xr)).mean() + F.softplus(-self.disc(xe)).mean()
        if c["lambda_f"]:
            t["f"] = sum(red((g * f).abs()) for g, f in zip(gs, fs))
        if c["lambda_aligner"]:
            t["aligner"] = sum(red((fp - f.detach()).abs()) for fp, f in zip(fps, fs))
        t["total"] = sum(c["lambda_" + k] * v for k, v in t.items())
        return t


def train_forward(net, losses, w, groups, target, h):
    """One iteration's forward (B.7 steps 2-5) with alpha = 0 (w_hat = w) and the given per-sample
    homographies h [B,3,3] shared across stages. Returns (terms, record of intermediate tensors)."""
    ts = net.t_maps(groups)
    xr, fs, gs = net.reconstruct(w, ts)
    f_hats = [warp(f.detach(), h) for f in fs]
    xe, fps = net.edit(w, f_hats)
    terms = losses(xr, xe, target, fs, gs, fps)
    return terms, {"Xr": xr, "Xe": xe, "T": ts, "F": fs, "g": gs, "Fhat": f_hats, "Fp": fps}


class AdamLookahead:
    """Adam (torch.optim.Adam formula, no weight decay) inside Lookahead: after every k fast steps
    slow <- slow + alpha (fast - slow), fast <- slow. Slow weights start at the initial parameters."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, k=6, alpha=0.5):
        self.params = list(params)
        self.lr, self.b1, self.b2, self.eps, self.k, self.alpha = lr, betas[0], betas[1], eps, k, alpha
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.slow = [p.detach().clone() for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self):
        self.t += 1
        bc1, bc2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:  # torch.optim.Adam skips such a parameter (no state change)
                continue
            g = p.grad
            m.mul_(self.b1).add_(g, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            denom = (v.sqrt() / math.sqrt(bc2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bc1)
        if self.t % self.k == 0:
            for p, s in zip(self.params, self.slow):
                s.add_(p - s, alpha=self.alpha)
                p.copy_(s)


def config_json(cfg):
    return json.dumps(cfg, sort_keys=True)
