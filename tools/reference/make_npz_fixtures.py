#!/usr/bin/python3
"""Writes numpy.savez_compressed files of many random sizes into tests/golden/io/npz_deflate/.

Needs numpy only:

    python3 tools/reference/make_npz_fixtures.py

These are the files users hand to `gradstyle generate --projected-w` and the loaders: zip members
deflated by Python's zipfile/zlib, sizes chosen at random so that the deflate streams end on every
kind of block boundary. Besides the files it writes manifest.json with, for every array, its dtype,
shape, the CRC-32 of its C-order little-endian bytes and its first and last values; the tests read
each file and compare all of that exactly. The arrays come from fixed seeds; the zip timestamps
are the time of the run (zipfile writes them), so rerunning changes the files' bytes but not their
arrays.
"""
import json
import os
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "io", "npz_deflate")
BUDGET = 300 * 1024  # bytes of fixtures in all

DTYPES = ["<f4", "<f8", "<f2", "<i8", "<i4", "|u1", "|i1", "|b1"]


def make_array(rng, dtype, shape, style):
    n = int(np.prod(shape)) if shape else 1
    if style == "noise":  # incompressible: deflate emits stored or dynamic blocks
        if dtype == "|b1":
            a = rng.random_sample(n) < 0.5
        elif dtype[1] in "iu":
            info = np.iinfo(np.dtype(dtype))
            a = rng.randint(info.min, int(info.max) + 1, size=n, dtype=np.int64)
        else:
            a = rng.randn(n)
    elif style == "runs":  # long runs: short fixed-Huffman streams
        a = np.repeat(rng.randint(0, 4, size=max(1, n // 37 + 1)), 37)[:n]
    else:  # "ramp": repetitive but not constant
        a = np.arange(n) % 251
    return np.ascontiguousarray(np.asarray(a).astype(np.dtype(dtype)).reshape(shape))


def describe(a):
    le = a.astype(a.dtype.newbyteorder("<")) if a.dtype.byteorder == ">" else a
    flat = le.reshape(-1)
    def value(x):
        return bool(x) if a.dtype == np.bool_ else (int(x) if a.dtype.kind in "iu" else float(x))
    return {
        "dtype": {"f": {2: "float16", 4: "float32", 8: "float64"}, "i": {1: "int8", 4: "int32", 8: "int64"},
                  "u": {1: "uint8"}, "b": {1: "bool"}}[a.dtype.kind][a.dtype.itemsize],
        "shape": list(a.shape),
        "crc32": zlib.crc32(np.ascontiguousarray(le).tobytes()) & 0xFFFFFFFF,
        "first": value(flat[0]) if flat.size else None,
        "last": value(flat[-1]) if flat.size else None,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".npz"):
            os.remove(os.path.join(OUT, f))
    files = []
    rng = np.random.RandomState(20240609)
    # The two sizes that stb's inflate refused: a W+ batch [3,18,512] and a 100-element vector.
    files.append(("wplus_3x18x512.npz", {"w": rng.randn(3, 18, 512).astype(np.float32)}))
    files.append(("vec_100.npz", {"w": rng.randn(100).astype(np.float32)}))
    # W+ codes for the tiny test generator of tests/golden/stylegan2 (8 rows of 32).
    files.append(("tiny_projected_w.npz", {"w": (0.7 * rng.randn(2, 8, 32)).astype(np.float32)}))
    for name, arrays in files:
        np.savez_compressed(os.path.join(OUT, name), **arrays)
    def used():
        return sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    k = 0
    while k < 60:
        arrays = {}
        for j in range(int(rng.randint(1, 4))):
            rank = int(rng.randint(0, 4))
            numel_target = int(np.exp(rng.uniform(0, np.log(3000))))
            shape = []
            left = numel_target
            for _ in range(rank):
                d = int(rng.randint(1, max(2, int(round(left ** (1.0 / max(1, rank)))) * 2)))
                shape.append(d)
                left = max(1, left // d)
            dtype = DTYPES[int(rng.randint(len(DTYPES)))]
            style = ["noise", "noise", "runs", "ramp"][int(rng.randint(4))]
            arrays["a%d" % j] = make_array(rng, dtype, tuple(shape), style)
        name = "random_%02d.npz" % k
        path = os.path.join(OUT, name)
        np.savez_compressed(path, **arrays)
        if used() > BUDGET - 40 * 1024:  # room for manifest.json
            os.remove(path)
            break
        files.append((name, arrays))
        k += 1
    manifest = {}
    for name, arrays in files:
        path = os.path.join(OUT, name)
        # Read back with numpy: the manifest describes what numpy itself loads.
        with np.load(path) as z:
            manifest[name] = {key: describe(z[key]) for key in z.files}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %d files, %d bytes, into %s" % (len(files), total, OUT))


if __name__ == "__main__":
    main()
