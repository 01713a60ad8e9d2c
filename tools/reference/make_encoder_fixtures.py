#!/usr/bin/python3
"""PyTorch reference fixtures for the encoder, loss networks and edits (issue 6): e4e
Encoder4Editing, the IR-SE Backbone (ArcFace), the ArcFace identity loss, LPIPS-VGG and the
InterFaceGAN / GANSpace edits.

Run with Debian's python3-torch (CPU):  /usr/bin/python3 tools/reference/make_encoder_fixtures.py
Writes tests/golden/encoders/ (checked to stay below 3 MB):

- checkpoints in the ORIGINAL key layouts, at tiny sizes, read by the C++ tests through our .pt
  reader: e4e_tiny.pt / e4e_tiny256.pt ({state_dict: encoder.* + decoder.*, opts, latent_avg},
  like e4e_ffhq_encode.pt), e4e_bad_size.pt / e4e_psp.pt / e4e_no_avg.pt (files the loader must
  refuse: opts contradicting the keys, a pSp encoder, no latent_avg), irse_tiny.pth / ir_tiny.pth / arcface_tiny112.pth
  (plain Backbone state dicts like model_ir_se50.pth), vgg_tiny.pth (torchvision vgg16 layout:
  features.* + classifier.*), lin_tiny.pth (LPIPS heads, legacy format with cuda:0-tagged
  storages like weights/v0.1/vgg.pth), edit assets age.pt / pose.pt (cuda:0) / ffhq_pca.pt
  (non-contiguous comp), all saved to a buffer (root 'archive') like e4e's shipped files;
- *_io.pt: inputs, outputs and gradients (float32; computed in float64 from the float32 weights
  and inputs);
- keys_real.json: key -> shape of the FULL-SIZE networks (e4e encoder of e4e_ffhq_encode.pt,
  model_ir_se50.pth, torchvision vgg16, LPIPS vgg.pth heads).

Images used at the real 256-px geometry are not stored: both sides compute them from
synthetic_image() below (mirrored in tests/models/encoder_fixtures.hpp).
"""
import collections
import io
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e4e_ref import Encoder4Editing, e4e_forward  # noqa: E402
from irse_ref import IRSE_BLOCKS, Backbone, id_features, id_loss, randomize_  # noqa: E402
from lpips_ref import LPIPS, VGG16_CHANNELS, vgg16_features, vgg16_state_dict_keys  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "encoders")
torch.set_num_threads(1)
IRSE_TINY = (16, 20, 24, 28)  # narrowed IR-SE channel plan (>= 16 for the SE reduction of 16)

# ---- cuda:0 location tags without a GPU (like pose.pt and LPIPS vgg.pth) --------------------------
FAKE_CUDA = set()


def _tagger(storage):
    try:
        return "cuda:0" if storage.data_ptr() in FAKE_CUDA else None
    except Exception:
        return None


torch.serialization.register_package(1, _tagger, lambda obj, location: None)


def save(name, obj, to_buffer=True, legacy=False):
    path = os.path.join(OUT, name)
    if to_buffer:
        buf = io.BytesIO()
        torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
        with open(path, "wb") as f:
            f.write(buf.getvalue())
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    torch.load(path, map_location="cpu")  # torch reads it back


def f32(d):
    """float32 copies of a dict of tensors (the io files)."""
    return collections.OrderedDict((k, v.detach().float().contiguous()) for k, v in d.items())


def synthetic_image(b, c, h, w, phase=0.0):
    """Smooth deterministic image in about [-0.8, 0.8], float64 math then float32."""
    bb = torch.arange(b, dtype=torch.float64).view(b, 1, 1, 1)
    cc = torch.arange(c, dtype=torch.float64).view(1, c, 1, 1)
    yy = torch.arange(h, dtype=torch.float64).view(1, 1, h, 1)
    xx = torch.arange(w, dtype=torch.float64).view(1, 1, 1, w)
    v = 0.8 * torch.sin(0.11 * yy + 0.07 * xx * (cc + 1) + 0.5 * bb + phase) * torch.cos(0.05 * (yy - 2 * xx) + 0.3 * cc)
    return v.float()


def rnd(gen, *shape, scale=1.0):
    return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).float()


def state_f32(module):
    return collections.OrderedDict((k, v.float() if v.is_floating_point() else v) for k, v in module.state_dict().items())


def grads_of(module, names):
    params = dict(module.named_parameters())
    return {"grads." + n: params[n].grad for n in names}


# ---- e4e -------------------------------------------------------------------------------------------

def e4e_case(gen, name, blocks, channels, n_styles, stylegan_size, input_size, x, grad_params, with_feats):
    enc = randomize_(Encoder4Editing(blocks, channels, n_styles, channels[-1], input_size), gen).double().eval()
    latent_avg = rnd(gen, n_styles, channels[-1], scale=0.5)
    sd = collections.OrderedDict(("encoder." + k, v) for k, v in state_f32(enc).items())
    sd["decoder.style.1.weight"] = rnd(gen, 4, 4)  # the generator half; the encoder loader skips it
    sd["decoder.input.input"] = rnd(gen, 1, 4, 4, 4)
    opts = {"exp_dir": "experiment/tiny", "dataset_type": "ffhq_encode", "encoder_type": "Encoder4Editing",
            "start_from_latent_avg": True, "stylegan_size": stylegan_size, "learn_in_w": False,
            "batch_size": 8, "lpips_lambda": 0.8, "progressive_steps": [0, 20000, 22000]}
    save(name + ".pt", {"state_dict": sd, "opts": opts, "latent_avg": latent_avg}, to_buffer=(name == "e4e_tiny"))
    xd = x.double().requires_grad_()
    w, feats = e4e_forward(enc, latent_avg.double(), xd)
    rw = rnd(gen, *w.shape)
    (w * rw.double()).sum().backward()
    io_ = {"rw": rw, "w_plus": w}
    if with_feats:  # the small case stores everything; the 256-px one only outputs and parameter grads
        io_.update({"x": x, "grad_x": xd.grad})
        io_.update(feats)
    io_.update(grads_of(enc, grad_params))
    save(name + "_io.pt", f32(io_), to_buffer=False)


def e4e_refusals():
    """Small e4e-layout files the loader must refuse (or accept only with help). Every tensor is a
    stride-0 view of one element, so each file is a few KB."""
    enc = Encoder4Editing((1, 1, 1, 1), (16, 20, 24, 16), 2, 16, 32)
    sd = collections.OrderedDict(("encoder." + k, torch.zeros(1, dtype=v.dtype).expand(v.shape) if v.dim() else v)
                                 for k, v in enc.state_dict().items())
    base = {"encoder_type": "Encoder4Editing", "start_from_latent_avg": True, "stylegan_size": 4}  # 2 heads
    avg = torch.zeros(1).expand(2, 16)
    # opts.stylegan_size contradicts the 2 heads (1024 implies 18)
    save("e4e_bad_size.pt", {"state_dict": sd, "opts": dict(base, stylegan_size=1024), "latent_avg": avg})
    # a pSp checkpoint (GradualStyleEncoder)
    save("e4e_psp.pt", {"state_dict": sd, "opts": dict(base, encoder_type="GradualStyleEncoder"), "latent_avg": avg})
    # start_from_latent_avg without a latent_avg entry
    save("e4e_no_avg.pt", {"state_dict": sd, "opts": base})


# ---- IR-SE backbone / ArcFace ----------------------------------------------------------------------

def backbone_case(gen, name, input_size, blocks, channels, se, emb, affine, batch=2):
    net = randomize_(Backbone(input_size, blocks, channels, se, emb, 0.6, affine), gen).double().eval()
    save(name + ".pth", state_f32(net))
    x = rnd(gen, batch, 3, input_size, input_size, scale=0.7)
    xd = x.double().requires_grad_()
    e = net(xd)
    r = rnd(gen, *e.shape)
    (e * r.double()).sum().backward()
    names = ["input_layer.0.weight", "body.0.res_layer.2.weight", "body.1.res_layer.0.weight",
             "output_layer.3.weight", "output_layer.0.bias"]
    if affine:
        names.append("output_layer.4.weight")
    if se:
        names.append("body.0.res_layer.5.fc1.weight")
    io_ = {"x": x, "r": r, "embedding": e, "grad_x": xd.grad}
    io_.update(grads_of(net, names))
    save(name + "_io.pt", f32(io_), to_buffer=False)
    net.zero_grad()
    return net


def arcface_case(gen, net):
    # small geometry with the irse_tiny backbone (32-px input): 64-px images, crop rows 9:56 and
    # cols 8:55 (47 px), adaptive pool to 32 (overlapping bins), 2x2 final map
    crop = (9, 56, 8, 55)
    y_hat = rnd(gen, 2, 3, 64, 64, scale=0.6)
    y = synthetic_image(2, 3, 64, 64)  # not stored: the test recomputes it
    yh = y_hat.double().requires_grad_()
    loss = id_loss(net, yh, y.double(), crop=crop, pool=32)
    loss.backward()
    io_ = {"y_hat": y_hat, "emb_hat": id_features(net, y_hat.double(), crop=crop, pool=32),
           "emb_y": id_features(net, y.double(), crop=crop, pool=32), "loss": loss.view(1), "grad_y_hat": yh.grad}
    save("arcface_tiny_io.pt", f32(io_), to_buffer=False)

    # real geometry: 256-px synthetic images, crop 35:223 x 32:220, pool to 112, 7x7 final map
    net = randomize_(Backbone(112, (1, 1, 1, 1), IRSE_TINY, True, 16, 0.6, True), gen).double().eval()
    save("arcface_tiny112.pth", state_f32(net))
    y_hat = synthetic_image(2, 3, 256, 256)
    y = synthetic_image(2, 3, 256, 256, phase=0.4)
    yh = y_hat.double().requires_grad_()
    loss = id_loss(net, yh, y.double())
    loss.backward()
    g = yh.grad
    io_ = {"emb_hat": id_features(net, y_hat.double()), "emb_y": id_features(net, y.double()), "loss": loss.view(1),
           # the input gradient inside the crop, summed over channels and 4x4-averaged (the full
           # one is 1.5 MB)
           "grad_y_hat_crop_pooled": F.avg_pool2d(g[:, :, 35:223, 32:220].sum(1, keepdim=True), 4),
           "grad_y_hat_outside_abs": (g.abs().sum() - g[:, :, 35:223, 32:220].abs().sum()).view(1)}
    save("arcface_tiny112_io.pt", f32(io_), to_buffer=False)


# ---- LPIPS -----------------------------------------------------------------------------------------

def lpips_case(gen):
    channels = (8, 8, 12, 12, 16)
    net = randomize_(LPIPS(channels), gen).double().eval()
    with torch.no_grad():
        for l in range(5):  # the published heads are non-negative
            getattr(net, f"lin{l}").model[1].weight.abs_()
    feats = collections.OrderedDict(("features." + k, v) for k, v in state_f32(net.features).items())
    c = channels[-1]
    feats["classifier.0.weight"] = rnd(gen, 6, c * 7 * 7, scale=0.01)  # torchvision's head: ignored
    feats["classifier.0.bias"] = rnd(gen, 6)
    feats["classifier.3.weight"] = rnd(gen, 6, 6)
    feats["classifier.3.bias"] = rnd(gen, 6)
    feats["classifier.6.weight"] = rnd(gen, 5, 6)
    feats["classifier.6.bias"] = rnd(gen, 5)
    save("vgg_tiny.pth", feats, to_buffer=False)
    lins = collections.OrderedDict()
    for l in range(5):
        t = getattr(net, f"lin{l}").model[1].weight.detach().float().clone()
        FAKE_CUDA.add(t.storage().data_ptr())
        lins[f"lin{l}.model.1.weight"] = t
    save("lin_tiny.pth", lins, to_buffer=False, legacy=True)
    a = rnd(gen, 2, 3, 32, 32, scale=0.5).clamp(-1, 1)
    b = (a.double() + rnd(gen, 2, 3, 32, 32, scale=0.3).double()).clamp(-1, 1).float()
    ad, bd = a.double().requires_grad_(), b.double().requires_grad_()
    d = net(ad, bd)
    r = torch.tensor([0.7, -1.3], dtype=torch.float64)
    (d * r).sum().backward()
    save("lpips_io.pt", f32({"a": a, "b": b, "r": r, "d": d, "grad_a": ad.grad, "grad_b": bd.grad}), to_buffer=False)


# ---- editing ---------------------------------------------------------------------------------------

def ganspace_ref(w, pca, idx, start, end, strength):
    """e4e editings/ganspace.py edit/get_delta, one latent at a time."""
    outs = []
    for lat in w:
        centered = lat - pca["mean"]
        coord = torch.sum(centered[0].reshape(-1) * pca["comp"][idx].reshape(-1)) / pca["std"][idx]
        delta = (strength - coord) * pca["comp"][idx] * pca["std"][idx]
        pad = torch.zeros_like(lat)
        pad[start:end] += delta.repeat(end - start, 1)
        outs.append(lat + pad)
    return torch.stack(outs)


def editing_case(gen):
    age = rnd(gen, 1, 512)
    age = (age / age.norm()).float()
    save("age.pt", age)
    pose = rnd(gen, 1, 18, 512)
    pose = (pose / pose.norm(dim=2, keepdim=True)).float()
    FAKE_CUDA.add(pose.storage().data_ptr())
    save("pose.pt", pose)
    FAKE_CUDA.discard(pose.storage().data_ptr())
    base = rnd(gen, 512, 80)
    base = base / base.norm(dim=0, keepdim=True)
    comp = base.t().unsqueeze(1)  # [80, 1, 512] with strides (1, ., 80): non-contiguous
    assert not comp.is_contiguous()
    pca = {"mean": rnd(gen, 1, 512, scale=0.5), "comp": comp,
           "std": (torch.rand(80, generator=gen, dtype=torch.float64) * 2.5 + 0.5).float()}
    save("ffhq_pca.pt", pca)
    w = rnd(gen, 2, 18, 512, scale=0.7)
    pd = {k: v.double() for k, v in pca.items()}
    wd = w.double()
    io_ = {"w": w,
           "age_a3": wd + 3.0 * age.double(),
           "pose_m2": wd + (-2.0) * pose.double(),
           # GANSpace changes rows start:end only: those rows are stored (the test checks that
           # the others are exactly w)
           "gs_eyes": ganspace_ref(wd, pd, 54, 7, 8, 20.0)[:, 7:8],
           "gs_beard": ganspace_ref(wd, pd, 58, 7, 9, -20.0)[:, 7:9],
           "gs_angle": ganspace_ref(wd, pd, 11, 1, 4, 20.0)[:, 1:4]}
    save("editing_io.pt", f32(io_), to_buffer=False)


# ---- key layouts of the full-size files ------------------------------------------------------------

def real_keys():
    out = {}
    with torch.no_grad():
        enc = Encoder4Editing()
        out["e4e_encoder"] = [[k, list(v.shape)] for k, v in enc.state_dict().items()]
        del enc
        bb = Backbone(112)
        out["model_ir_se50"] = [[k, list(v.shape)] for k, v in bb.state_dict().items()]
        del bb
    out["vgg16"] = [[k, s] for k, s in vgg16_state_dict_keys()]
    out["lpips_lin"] = [[f"lin{l}.model.1.weight", [1, c, 1, 1]] for l, c in enumerate(VGG16_CHANNELS)]
    with open(os.path.join(OUT, "keys_real.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(20240601)
    blocks, channels = (2, 2, 1, 1), (16, 20, 24, 16)
    e4e_case(gen, "e4e_tiny", blocks, channels, 10, 64, 32, rnd(gen, 2, 3, 32, 32, scale=0.6),
             ["input_layer.2.weight", "body.0.res_layer.1.weight", "body.1.res_layer.4.weight",
              "body.2.shortcut_layer.0.weight", "body.3.res_layer.5.fc2.weight", "styles.0.linear.weight",
              "styles.9.convs.2.bias", "latlayer1.weight", "latlayer2.bias"], with_feats=True)
    e4e_case(gen, "e4e_tiny256", (1, 1, 1, 1), channels, 8, 32, 256, synthetic_image(1, 3, 256, 256),
             ["body.0.res_layer.1.weight", "styles.7.convs.0.weight", "styles.2.linear.bias"], with_feats=False)
    e4e_refusals()
    irse = backbone_case(gen, "irse_tiny", 32, (1, 2, 1, 1), IRSE_TINY, True, 16, True)
    backbone_case(gen, "ir_tiny", 32, (1, 1, 1, 1), IRSE_TINY, False, 16, False)
    arcface_case(gen, irse)
    lpips_case(gen)
    editing_case(gen)
    real_keys()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total / 1e6:.2f} MB to {OUT}")
    assert total < 3e6, "fixtures exceed 3 MB"


if __name__ == "__main__":
    main()
