"""Reference LPIPS-VGG (SPEC.md C.6), written from the spec.

The trunk is torchvision's vgg16().features layout: config 'D' = [64, 64, M, 128, 128, M, 256, 256,
256, M, 512, 512, 512, M, 512, 512, 512, M], each number a Conv3x3(pad 1) + ReLU, M a MaxPool(2, 2),
so the convs sit at features.{0,2,5,7,10,12,14,17,19,21,24,26,28}. Channels are configurable
(tiny test nets keep the layout). The linear heads are `lin{l}.model.1.weight` [1, C, 1, 1]
(model.0 is a Dropout), as in weights/v0.1/vgg.pth.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

VGG16_CHANNELS = (64, 128, 256, 512, 512)
VGG16_CONVS = (2, 2, 3, 3, 3)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def vgg16_features(channels=VGG16_CHANNELS, convs=VGG16_CONVS):
    layers = []
    c_in = 3
    for c, n in zip(channels, convs):
        for _ in range(n):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(inplace=False)]
            c_in = c
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def vgg16_state_dict_keys(channels=VGG16_CHANNELS):
    """What torchvision's vgg16().state_dict() holds (features + classifier)."""
    feats = vgg16_features(channels)
    keys = [("features." + k, list(v.shape)) for k, v in feats.state_dict().items()]
    c = channels[-1]
    keys += [("classifier.0.weight", [4096, c * 7 * 7]), ("classifier.0.bias", [4096]),
             ("classifier.3.weight", [4096, 4096]), ("classifier.3.bias", [4096]),
             ("classifier.6.weight", [1000, 4096]), ("classifier.6.bias", [1000])]
    return keys


class NetLinLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, 1, 0, bias=False))

    def forward(self, x):
        return self.model(x)


class LPIPS(nn.Module):
    def __init__(self, channels=VGG16_CHANNELS, convs=VGG16_CONVS):
        super().__init__()
        self.features = vgg16_features(channels, convs)
        # taps: the ReLU closing each conv block (modules 3, 8, 15, 22, 29 for VGG16)
        self.taps = []
        idx = 0
        for n in convs:
            idx += 2 * n
            self.taps.append(idx - 1)
            idx += 1
        for l, c in enumerate(channels):
            setattr(self, f"lin{l}", NetLinLayer(c))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.n = len(channels)

    def feats(self, x):
        x = (x - self.shift) / self.scale
        out = []
        for i, m in enumerate(self.features):
            x = m(x)
            if i in self.taps:
                out.append(x)
                if len(out) == self.n:
                    break
        return out

    def forward(self, a, b):
        fa, fb = self.feats(a), self.feats(b)
        total = 0
        for l in range(self.n):
            na = fa[l] / (torch.sqrt(torch.sum(fa[l] ** 2, dim=1, keepdim=True)) + 1e-10)
            nb = fb[l] / (torch.sqrt(torch.sum(fb[l] ** 2, dim=1, keepdim=True)) + 1e-10)
            d = (na - nb) ** 2
            total = total + getattr(self, f"lin{l}")(d).mean(dim=(2, 3), keepdim=True)
        return total.view(-1)  # per sample [B]
