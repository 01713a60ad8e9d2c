#!/usr/bin/python3
"""Writes the io/ test fixtures into tests/golden/io/ (issue 5).

Run with Debian's python3 (python3-torch 1.13, numpy, PIL):

    /usr/bin/python3 tools/reference/make_io_fixtures.py

Everything is deterministic (fixed seeds, no timestamps in the data the tests compare). Besides
the fixture files it writes expected.json with every value of every tensor and every decoded image
pixel, which tests/io/*.cpp compare against.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zlib

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "io")

expected = {"pt": {}, "safetensors": {}, "npz": {}, "npy": {}, "images": {}, "resize": {}}

# ---------------------------------------------------------------------------------------------
# helpers

FAKE_CUDA_PTRS = set()


def _fake_cuda_tagger(storage):
    # Tags chosen CPU storages as 'cuda:0' (like e4e's pose.pt / LPIPS vgg.pth) without a GPU.
    try:
        ptr = storage.data_ptr()
    except Exception:
        return None
    if ptr in FAKE_CUDA_PTRS:
        return "cuda:0"
    return None


torch.serialization.register_package(1, _fake_cuda_tagger, lambda obj, location: None)


def q(t, step=64.0):
    """Quantised values (short decimal repr keeps expected.json small; still exercises signs)."""
    return torch.round(t * step) / step


def tensor_json(t):
    t = t.detach()
    if t.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        vals = t.to(torch.float64).contiguous().view(-1).tolist()
    elif t.dtype == torch.bool:
        vals = [int(v) for v in t.contiguous().view(-1).tolist()]
    else:
        vals = [int(v) for v in t.contiguous().view(-1).tolist()]
    names = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16",
             torch.bfloat16: "bfloat16", torch.int64: "int64", torch.int32: "int32", torch.int16: "int16",
             torch.int8: "int8", torch.uint8: "uint8", torch.bool: "bool"}
    return {"dtype": names[t.dtype], "shape": list(t.shape), "values": vals}


def flatten(obj, prefix=""):
    out = collections.OrderedDict()
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}.{i}" if prefix else str(i)))
    return out


def save_pt(name, obj, legacy=False, to_buffer=False):
    path = os.path.join(OUT, name)
    if to_buffer:  # root folder 'archive', like e4e's shipped files
        buf = io.BytesIO()
        torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
        with open(path, "wb") as f:
            f.write(buf.getvalue())
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    # Sanity: torch itself reads it back identically (map_location: 'cuda:0' tags, no GPU here).
    back = torch.load(path, map_location="cpu")
    flat, flat_back = flatten(obj), flatten(back)
    assert list(flat) == list(flat_back), name
    for k in flat:
        assert torch.equal(flat[k], flat_back[k]), (name, k)
    expected["pt"][name] = {k: tensor_json(v) for k, v in flat.items()}


# ---------------------------------------------------------------------------------------------
# PyTorch checkpoints


def make_pt():
    g = torch.Generator().manual_seed(1234)
    rn = lambda *s: q(torch.randn(*s, generator=g))

    # 1. a real module's state dict (OrderedDict + _metadata BUILD, int64 scalar buffer)
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(5, 2))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(q(p))
        m[1].running_mean.copy_(rn(4))
        m[1].running_var.copy_(q(torch.rand(4, generator=g)) + 1)
        m[1].num_batches_tracked.fill_(7)
    save_pt("state_dict.pt", m.state_dict())

    # 2. every storage dtype, a scalar, an empty tensor, a 'cuda:0'-tagged storage
    cuda_t = rn(3, 2)
    FAKE_CUDA_PTRS.add(cuda_t.data_ptr())
    dt = collections.OrderedDict()
    dt["f32"] = rn(2, 3)
    dt["f64"] = rn(3).double() / 3
    dt["f16"] = rn(2, 2).half()
    dt["bf16"] = rn(5).bfloat16()
    dt["i64"] = torch.tensor([0, -1, 2**40, -(2**62), 2**63 - 1], dtype=torch.int64)
    dt["i32"] = torch.tensor([-(2**31), 2**31 - 1, 5], dtype=torch.int32)
    dt["i16"] = torch.tensor([-32768, 32767, -2], dtype=torch.int16)
    dt["i8"] = torch.tensor([-128, 127, 0, -1], dtype=torch.int8)
    dt["u8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    dt["bool"] = torch.tensor([True, False, True])
    dt["scalar"] = torch.tensor(2.5)
    dt["empty"] = torch.zeros(0, 3)
    dt["on_cuda"] = cuda_t
    dt["param"] = torch.nn.Parameter(rn(2))
    save_pt("dtypes.pt", dt, to_buffer=True)

    # 3. laid out like rosinality's stylegan2-ffhq-config-f.pt (tiny shapes), shared storages
    shared = rn(6, 4)
    g_ema = collections.OrderedDict()
    g_ema["style.1.weight"] = rn(8, 8)
    g_ema["style.1.bias"] = rn(8)
    g_ema["input.input"] = rn(1, 8, 4, 4)
    g_ema["conv1.conv.weight"] = rn(1, 4, 8, 3, 3)
    g_ema["conv1.conv.modulation.weight"] = rn(8, 8)
    g_ema["conv1.noise.weight"] = torch.zeros(1)
    g_ema["to_rgb1.bias"] = rn(1, 3, 1, 1)
    g_ema["noises.noise_0"] = rn(1, 1, 4, 4)
    g_ema["convs.0.conv.weight"] = shared            # whole storage
    g_ema["convs.0.conv.blur.kernel"] = shared[2:4]  # same storage, offset 8
    gen = collections.OrderedDict((k, v) for k, v in g_ema.items())  # 'g' shares every storage
    d = collections.OrderedDict([("convs.0.0.weight", rn(4, 3, 1, 1)), ("final_linear.1.bias", rn(1))])
    save_pt("stylegan2_like.pt", {"g_ema": g_ema, "latent_avg": rn(8), "g": gen, "d": d})

    # 4. laid out like e4e_ffhq_encode.pt: state_dict + opts (plain data) + latent_avg, root 'archive'
    sd = collections.OrderedDict()
    sd["encoder.input_layer.0.weight"] = rn(4, 3, 3, 3)
    sd["encoder.body.0.shortcut_layer.1.running_var"] = q(torch.rand(4, generator=g)) + 0.5
    sd["encoder.styles.0.convs.0.bias"] = rn(8)
    sd["decoder.style.1.weight"] = rn(8, 8)
    sd["decoder.convs.0.conv.weight"] = rn(1, 4, 8, 3, 3)
    opts = {"exp_dir": "experiment/e4e", "dataset_type": "ffhq_encode", "encoder_type": "Encoder4Editing",
            "batch_size": 8, "learning_rate": 0.0001, "lpips_lambda": 0.8, "train_decoder": False,
            "start_from_latent_avg": True, "stylegan_size": 1024, "checkpoint_path": None,
            "w_discriminator_lambda": 0.1, "progressive_steps": [0, 20000, 22000], "big": 2**40,
            "neg": -5, "neg_big": -(2**40), "unicode": "gr\u00fc\u00dfe \u2192 e4e", "resize_factors": ""}
    e4e = {"state_dict": sd, "opts": opts, "latent_avg": rn(18, 8)}
    save_pt("e4e_like.pt", e4e, to_buffer=True)
    expected["e4e_opts"] = opts

    # 5. a [1,18,512] latent saved from a non-contiguous view (InterFaceGAN/latents.pt style)
    base = rn(512, 18)
    view = base.t().unsqueeze(0)
    assert not view.is_contiguous() and list(view.shape) == [1, 18, 512]
    save_pt("latent_view.pt", view, to_buffer=True)

    # 6. GANSpace ffhq_pca.pt style: comp is non-contiguous with a storage offset
    big = rn(10, 7)
    comp = big[2:, 1:].t()  # [6, 8], stride (1, 7), offset 15
    assert not comp.is_contiguous()
    save_pt("ganspace_like.pt", {"mean": rn(1, 8), "comp": comp, "std": rn(6).abs()}, to_buffer=True)

    # 7. half precision
    save_pt("half.pt", collections.OrderedDict([("w16", rn(3, 4).half()), ("b16", rn(4).bfloat16()),
                                                ("h_t", rn(4, 3).half().t())]))

    # 8. legacy stream (_use_new_zipfile_serialization=False) like LPIPS vgg.pth: cuda:0 tags,
    #    shared storage with offset, non-contiguous view, half
    lin = rn(1, 4, 1, 1)
    FAKE_CUDA_PTRS.add(lin.data_ptr())
    sh = rn(4, 5)
    legacy = collections.OrderedDict()
    legacy["lin0.model.1.weight"] = lin
    legacy["lin1.model.1.weight"] = rn(1, 6, 1, 1)
    legacy["shared_all"] = sh
    legacy["shared_row"] = sh[1]
    legacy["transposed"] = sh.t()
    legacy["half"] = rn(3).half()
    legacy["count"] = torch.tensor(42)
    save_pt("legacy.pt", legacy, legacy=True)

    # 9. refused files
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    class EvalCall:
        def __reduce__(self):
            return (eval, ("1+1",))

    for name, obj, leg in [("evil_system.pt", {"x": Evil()}, False), ("evil_eval.pt", [EvalCall()], False),
                           ("evil_legacy.pt", {"x": Evil()}, True)]:
        torch.save(obj, os.path.join(OUT, name), _use_new_zipfile_serialization=not leg)
    # NVIDIA-style bare pickle (not a torch.save file)
    with open(os.path.join(OUT, "bare.pkl"), "wb") as f:
        pickle.dump({"G_ema": [1, 2, 3]}, f, protocol=4)


# ---------------------------------------------------------------------------------------------
# safetensors, written by hand like the reference writer (sorted by alignment then name)

ST_DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
         torch.uint8: "U8", torch.bool: "BOOL", torch.int32: "I32", torch.float64: "F64"}


def st_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def make_safetensors():
    g = torch.Generator().manual_seed(99)
    tensors = collections.OrderedDict()
    tensors["w"] = q(torch.randn(2, 3, generator=g))
    tensors["h"] = q(torch.randn(4, generator=g)).half()
    tensors["bf"] = q(torch.randn(2, 2, generator=g)).bfloat16()
    tensors["idx"] = torch.tensor([3, -4, 2**50], dtype=torch.int64)
    tensors["bytes"] = torch.tensor([1, 2, 250, 0, 7], dtype=torch.uint8)
    tensors["mask"] = torch.tensor([True, False, False])
    tensors["scalar"] = torch.tensor(-9, dtype=torch.int32)
    tensors["nothing"] = torch.zeros(0, 2, dtype=torch.float64)
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header = {"__metadata__": {"format": "pt", "source": "make_io_fixtures"}}
    off = 0
    for k in order:
        n = len(st_bytes(tensors[k]))
        header[k] = {"dtype": ST_DT[tensors[k].dtype], "shape": list(tensors[k].shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(OUT, "fixture.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(st_bytes(tensors[k]) for k in order))
    expected["safetensors"]["fixture.safetensors"] = {
        "order": order, "metadata": header["__metadata__"],
        "tensors": {k: tensor_json(v) for k, v in tensors.items()}}


# ---------------------------------------------------------------------------------------------
# NumPy


def np_json(a):
    names = {"float32": "float32", "float64": "float64", "float16": "float16", "int64": "int64", "int32": "int32",
             "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool", "uint16": "int32"}
    vals = np.ascontiguousarray(a).reshape(-1)
    vals = [float(v) for v in vals] if a.dtype.kind == "f" else [int(v) for v in vals]
    return {"dtype": names[a.dtype.name], "shape": list(a.shape), "values": vals}


def make_numpy():
    rs = np.random.RandomState(5)
    w = (np.round(rs.randn(1, 4, 8) * 64) / 64).astype(np.float32)
    idx = np.array([1, -2, 3], dtype=np.int64)
    np.savez(os.path.join(OUT, "latents.npz"), w=w, idx=idx)
    np.savez_compressed(os.path.join(OUT, "latents_compressed.npz"), w=w, idx=idx)
    for n in ("latents.npz", "latents_compressed.npz"):
        expected["npz"][n] = {"order": ["w", "idx"], "tensors": {"w": np_json(w), "idx": np_json(idx)}}
    arrays = {
        "fortran.npy": np.asfortranarray((np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 7) / 4),
        "bigendian.npy": np.array([1.5, -2.25, 3e10, 0.0, -1e-5], dtype=">f4"),
        "u16.npy": np.array([[0, 65535], [300, 7]], dtype="<u2"),
        "scalar.npy": np.array(3.25, dtype=np.float32),
        "bool.npy": np.array([True, False, True, True]),
        "i16be.npy": np.array([-300, 2, 32767], dtype=">i2"),
    }
    for n, a in arrays.items():
        np.save(os.path.join(OUT, n), a)
        expected["npy"][n] = np_json(a.astype(a.dtype.newbyteorder("=")) if a.dtype.byteorder == ">" else a)


# ---------------------------------------------------------------------------------------------
# Images


def synth(w, h, seed):
    """Deterministic test pattern; tests/io/test_image.cpp has the same formula (synth_pixel)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    chans = [((x * x * 3 + y * 7 + c * 85 + x * y * seed) // (1 + c)) % 256 for c in range(3)]
    return np.stack(chans, axis=-1).astype(np.uint8)


def write_png_raw(path, w, h, color_type, bit_depth, rows):
    """Minimal PNG writer for 16-bit RGB (PIL cannot write it)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + r for r in rows)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def img_json(arr):
    return {"w": int(arr.shape[1]), "h": int(arr.shape[0]), "rgb": [int(v) for v in arr.reshape(-1)]}


def make_images():
    rgb = synth(37, 23, 1)
    im = Image.fromarray(rgb, "RGB")
    im.save(os.path.join(OUT, "rgb.png"))
    expected["images"]["rgb.png"] = img_json(rgb)
    im.save(os.path.join(OUT, "rgb.bmp"))
    expected["images"]["rgb.bmp"] = img_json(rgb)
    gray = rgb[:, :, 0]
    Image.fromarray(gray, "L").save(os.path.join(OUT, "gray.png"))
    expected["images"]["gray.png"] = img_json(np.stack([gray] * 3, -1))
    la = Image.fromarray(np.stack([gray, rgb[:, :, 1]], -1), "LA")
    la.save(os.path.join(OUT, "gray_alpha.png"))
    expected["images"]["gray_alpha.png"] = img_json(np.asarray(la.convert("RGB")))
    rgba = Image.fromarray(np.concatenate([rgb, rgb[:, :, :1]], -1), "RGBA")
    rgba.save(os.path.join(OUT, "rgba.png"))
    expected["images"]["rgba.png"] = img_json(np.asarray(rgba.convert("RGB")))
    pal = im.quantize(colors=16)
    pal.save(os.path.join(OUT, "palette.png"))
    expected["images"]["palette.png"] = img_json(np.asarray(pal.convert("RGB")))
    # 16-bit RGB: samples v*257 + (x % 7) so that the low byte differs from the high byte
    y, x = np.mgrid[0:23, 0:37]
    rgb16 = rgb.astype(np.uint16) * 257 + (x % 7)[:, :, None].astype(np.uint16)
    write_png_raw(os.path.join(OUT, "rgb16.png"), 37, 23, 2, 16, [r.astype(">u2").tobytes() for r in rgb16])
    expected["images"]["rgb16.png"] = img_json((rgb16 >> 8).astype(np.uint8))
    # Decompression bomb: a 1x1 gray PNG whose IDAT inflates to 4 MB
    write_png_raw(os.path.join(OUT, "bomb.png"), 1, 1, 0, 8, [b"\x00" * (4 << 20)])
    # JPEG: compared to PIL's (libjpeg-turbo) decode within a tolerance
    im.save(os.path.join(OUT, "rgb.jpg"), quality=90)
    expected["images"]["rgb.jpg"] = img_json(np.asarray(Image.open(os.path.join(OUT, "rgb.jpg")).convert("RGB")))

    # Resizing: PIL outputs for the synthetic source synth(301, 207, 3) (generated in C++ too)
    src = Image.fromarray(synth(301, 207, 3), "RGB")
    cases = [("bilinear_256.png", (256, 256), Image.BILINEAR), ("bilinear_61x47.png", (61, 47), Image.BILINEAR),
             ("bicubic_61x47.png", (61, 47), Image.BICUBIC), ("lanczos_61x47.png", (61, 47), Image.LANCZOS),
             ("bilinear_350x60.png", (350, 60), Image.BILINEAR)]
    for n, size, f in cases:
        src.resize(size, f).save(os.path.join(OUT, "resize_" + n))
    small = Image.fromarray(synth(37, 23, 1), "RGB")
    small.resize((256, 256), Image.BILINEAR).save(os.path.join(OUT, "resize_small_bilinear_256.png"))
    # The astronaut (if /work/shared is there): 512 -> 256 bilinear, as torchvision Resize does
    astro = os.path.join(ROOT, "..", "shared", "data", "astronaut.png")
    if os.path.exists(astro):
        Image.open(astro).convert("RGB").resize((256, 256), Image.BILINEAR).save(
            os.path.join(OUT, "resize_astronaut_256.png"))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    make_pt()
    make_safetensors()
    make_numpy()
    make_images()
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"), sort_keys=False)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, into {OUT}")
    assert total < 2_000_000, "fixtures must stay below 2 MB"


if __name__ == "__main__":
    sys.exit(main())
