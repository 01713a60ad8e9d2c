"""Reference IR-SE networks (SPEC.md C.4, C.7), written from the spec with plain torch modules.

Key layout is that of omertov/encoder4editing models/encoders/helpers.py + model_irse.py:
  input_layer.{0: Conv3x3, 1: BatchNorm2d, 2: PReLU}
  body.{u}.shortcut_layer.{0: Conv1x1, 1: BatchNorm2d}   (only when in != out; else MaxPool(1, s))
  body.{u}.res_layer.{0: BN, 1: Conv3x3, 2: PReLU, 3: Conv3x3 (stride), 4: BN, 5: SE(fc1, fc2)}
  output_layer.{0: BN2d, 1: Dropout, 2: Flatten, 3: Linear, 4: BN1d}    (Backbone only)

The configuration is (blocks per stage, output channels per stage); IR-SE50 is
blocks (3, 4, 14, 3), channels (64, 128, 256, 512). The input layer outputs channels[0]; the first
unit of every stage has stride 2.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

IRSE_BLOCKS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
IRSE_CHANNELS = (64, 128, 256, 512)


def unit_plan(blocks, channels):
    """[(in, out, stride)] for every unit, in order."""
    plan = []
    prev = channels[0]
    for n, c in zip(blocks, channels):
        for u in range(n):
            plan.append((prev if u == 0 else c, c, 2 if u == 0 else 1))
        prev = c
    return plan


class SEModule(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)  # AdaptiveAvgPool2d(1)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class BottleneckIR(nn.Module):
    """bottleneck_IR_SE (se=True) or bottleneck_IR (se=False)."""

    def __init__(self, in_c, depth, stride, se=True, reduction=16):
        super().__init__()
        if in_c == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_c, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        layers = [nn.BatchNorm2d(in_c), nn.Conv2d(in_c, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
                  nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth)]
        if se:
            layers.append(SEModule(depth, reduction))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class IRSETrunk(nn.Module):
    """input_layer + body; forward returns the output of every stage."""

    def __init__(self, blocks=IRSE_BLOCKS[50], channels=IRSE_CHANNELS, se=True, in_channels=3):
        super().__init__()
        self.blocks = tuple(blocks)
        self.input_layer = nn.Sequential(nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False),
                                         nn.BatchNorm2d(channels[0]), nn.PReLU(channels[0]))
        self.body = nn.Sequential(*[BottleneckIR(i, o, s, se) for i, o, s in unit_plan(blocks, channels)])

    def stages(self, x):
        x = self.input_layer(x)
        ends = set()
        acc = 0
        for n in self.blocks:
            acc += n
            ends.add(acc - 1)
        outs = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in ends:
                outs.append(x)
        return outs


class Backbone(IRSETrunk):
    """model_irse.Backbone: the ArcFace / CurricularFace embedding network."""

    def __init__(self, input_size=112, blocks=IRSE_BLOCKS[50], channels=IRSE_CHANNELS, se=True, embedding=512,
                 drop_ratio=0.6, affine=True):
        super().__init__(blocks, channels, se)
        s = input_size
        for _ in blocks:
            s = (s + 1) // 2
        c = channels[-1]
        self.output_layer = nn.Sequential(nn.BatchNorm2d(c), nn.Dropout(drop_ratio), nn.Flatten(),
                                          nn.Linear(c * s * s, embedding), nn.BatchNorm1d(embedding, affine=affine))

    def forward(self, x):
        x = self.stages(x)[-1]
        x = self.output_layer(x)
        return x / torch.norm(x, 2, 1, True)  # l2_norm (no epsilon)


def id_features(backbone, img, crop=(35, 223, 32, 220), pool=112):
    """criteria/id_loss.py extract_feats: crop the 256 image, pool to 112, embed."""
    t, b, l, r = crop
    x = img[:, :, t:b, l:r]
    x = F.adaptive_avg_pool2d(x, (pool, pool))
    return backbone(x)


def id_loss(backbone, y_hat, y, **kw):
    """mean_b (1 - <phi(y_hat), phi(y).detach()>)."""
    fh = id_features(backbone, y_hat, **kw)
    fy = id_features(backbone, y, **kw).detach()
    return (1 - (fh * fy).sum(1)).mean()


def randomize_(module, gen):
    """Non-trivial values for every parameter and buffer (BN statistics, PReLU slopes), rounded to
    float32 so that float64 copies hold exactly the saved values."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            owner = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
            if isinstance(owner, nn.PReLU):
                p.copy_(torch.rand(p.shape, generator=gen, dtype=torch.float64) * 0.3 + 0.05)
            elif isinstance(owner, (nn.BatchNorm1d, nn.BatchNorm2d)):
                if leaf == "weight":
                    p.copy_(torch.rand(p.shape, generator=gen, dtype=torch.float64) * 0.8 + 0.6)
                else:
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.1)
            elif type(owner).__name__ == "EqualLinear" and leaf == "weight":
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))  # scaled at run time
            elif p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * (1.0 / fan_in) ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.1)
        for name, b in module.named_buffers():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "running_mean":
                b.copy_(torch.randn(b.shape, generator=gen, dtype=torch.float64) * 0.1)
            elif leaf == "running_var":
                b.copy_(torch.rand(b.shape, generator=gen, dtype=torch.float64) * 0.8 + 0.6)
            elif leaf == "num_batches_tracked":
                b.fill_(1234)
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.copy_(t.float().to(t.dtype))
    return module
