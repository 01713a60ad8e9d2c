"""Reference e4e encoder (SPEC.md C.4), written from the spec: Encoder4Editing on an IR-SE trunk,
FPN (latlayer1/2, bilinear align_corners=True upsample-add), GradualStyleBlock heads, and the
pSp-level latent_avg addition. Keys are those of e4e_ffhq_encode.pt's `encoder.` entries:
input_layer.*, body.*, styles.{i}.convs.{0,2,...}.*, styles.{i}.linear.*, latlayer1.*, latlayer2.*.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from irse_ref import IRSE_BLOCKS, IRSE_CHANNELS, IRSETrunk


class EqualLinear(nn.Module):
    """rosinality EqualLinear without activation: x (W * lr_mul / sqrt(in))^T + b * lr_mul."""

    def __init__(self, in_dim, out_dim, lr_mul=1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class GradualStyleBlock(nn.Module):
    """log2(spatial) x [Conv3x3 s2 p1 (bias) -> LeakyReLU(0.01)], flatten, EqualLinear."""

    def __init__(self, in_c, out_c, spatial):
        super().__init__()
        self.out_c = out_c
        n = int(round(math.log2(spatial)))
        mods = []
        for i in range(n):
            mods += [nn.Conv2d(in_c if i == 0 else out_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*mods)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x):
        x = self.convs(x)
        return self.linear(x.view(-1, self.out_c))


def upsample_add(x, y):
    return F.interpolate(x, size=y.shape[2:], mode="bilinear", align_corners=True) + y


class Encoder4Editing(IRSETrunk):
    COARSE_IND = 3
    MIDDLE_IND = 7

    def __init__(self, blocks=IRSE_BLOCKS[50], channels=IRSE_CHANNELS, n_styles=18, style_dim=512, input_size=256):
        super().__init__(blocks, channels, se=True)
        assert len(blocks) == 4 and channels[-1] == style_dim
        self.n_styles = n_styles
        self.styles = nn.ModuleList()
        for i in range(n_styles):
            if i < self.COARSE_IND:
                sp = input_size // 16
            elif i < self.MIDDLE_IND:
                sp = input_size // 8
            else:
                sp = input_size // 4
            self.styles.append(GradualStyleBlock(style_dim, style_dim, sp))
        self.latlayer1 = nn.Conv2d(channels[2], style_dim, 1, 1, 0)
        self.latlayer2 = nn.Conv2d(channels[1], style_dim, 1, 1, 0)

    def forward(self, x):
        """Returns (codes [B, n_styles, D], features dict c1, c2, c3, p2, p1). p2/p1 are always
        computed (e4e computes them lazily, with the same values)."""
        _, c1, c2, c3 = self.stages(x)
        p2 = upsample_add(c3, self.latlayer1(c2))
        p1 = upsample_add(p2, self.latlayer2(c1))
        w0 = self.styles[0](c3)
        w = w0.repeat(self.n_styles, 1, 1).permute(1, 0, 2)
        w = w.clone()
        feats = c3
        for i in range(1, self.n_styles):
            if i == self.COARSE_IND:
                feats = p2
            elif i == self.MIDDLE_IND:
                feats = p1
            w[:, i] += self.styles[i](feats)
        return w, {"c1": c1, "c2": c2, "c3": c3, "p2": p2, "p1": p1}


def e4e_forward(encoder, latent_avg, x):
    """pSp.forward with start_from_latent_avg: codes + latent_avg."""
    codes, feats = encoder(x)
    return codes + latent_avg.unsqueeze(0), feats
