#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

    python3 fuzz/make_seeds.py [path/to/fashion-mnist]

Seeds are small real files and the ways they get broken: IDX files cut from
the repository's fixtures (and from the start of the full .gz files when the
dataset folder is there), truncated, padded, with wrong magic or huge
dimensions; model files of the shapes the fuzz targets know, intact and
damaged. Standard library only. The corpora are not committed (.gitignore).
"""
import gzip
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
dataset = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "fashion-mnist")
fixtures = os.path.join(root, "fixtures")


def put(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def labels_file(labels):
    return struct.pack(">II", 0x801, len(labels)) + bytes(labels)


def images_file(count, rows, cols, pixels):
    return struct.pack(">IIII", 0x803, count, rows, cols) + bytes(pixels)


def broken(target, name, good, header_len):
    """The damages every IDX reader must refuse, derived from a good file."""
    put(target, name, good)
    put(target, name + "-empty", b"")
    put(target, name + "-magic-only", good[:4])
    put(target, name + "-short-header", good[: header_len - 1])
    put(target, name + "-header-only", good[:header_len])
    put(target, name + "-truncated", good[:-1])
    put(target, name + "-trailing", good + b"\0")
    put(target, name + "-bad-magic", b"\0\0\x08\x02" + good[4:])
    put(target, name + "-huge-dims", good[:4] + b"\xff" * (header_len - 4) + good[header_len:])
    put(target, name + "-zero-count", good[:4] + b"\0\0\0\0" + good[8:header_len])


# --- IDX, from the committed fixtures -------------------------------------
with open(os.path.join(fixtures, "t10k-256-labels-idx1-ubyte"), "rb") as f:
    real_labels = f.read()[8:]
with open(os.path.join(fixtures, "t10k-256-images-idx3-ubyte"), "rb") as f:
    real_images = f.read()[16:]

for n in (1, 16, 256):
    broken("idx_labels", f"t10k-labels-{n}", labels_file(real_labels[:n]), 8)
put("idx_labels", "out-of-range", labels_file([3, 9, 10, 255]))
put("idx_labels", "images-given", images_file(1, 2, 2, [1, 2, 3, 4]))

for n in (1, 3):
    broken("idx_images", f"t10k-images-{n}", images_file(n, 28, 28, real_images[: 784 * n]), 16)
broken("idx_images", "tiny-2x3", images_file(2, 2, 3, range(12)), 16)
put("idx_images", "zero-rows", images_file(5, 0, 28, b""))
put("idx_images", "labels-given", labels_file([1, 2, 3]))

# --- IDX, prefixes of the full files, when they are here ------------------
for name, target in (("t10k-labels-idx1-ubyte.gz", "idx_labels"), ("t10k-images-idx3-ubyte.gz", "idx_images")):
    path = os.path.join(dataset, name)
    if os.path.exists(path):
        with gzip.open(path, "rb") as f:
            head = f.read(16 + 784 * 2)
        # The real header (count 10,000) over a short prefix: a truncated file.
        put(target, "real-prefix-" + name[:-3], head[:64] if target == "idx_labels" else head)

# --- model files ------------------------------------------------------------
def model_file(inputs, outputs, side, values=None, version=1, dtype=0, reserved=0):
    n = inputs * outputs + outputs
    if values is None:
        values = [((i * 7919) % 201 - 100) / 37.0 for i in range(n)]
    header = b"SOFTREG\0" + struct.pack("<6I", version, inputs, outputs, side, dtype, reserved)
    return header + struct.pack(f"<{n}f", *values)


shapes = [(1, 1, 1), (4, 1, 2), (4, 3, 2), (4, 10, 2), (9, 2, 3), (16, 10, 4), (25, 3, 5), (784, 10, 28), (1024, 10, 32)]
for inputs, outputs, side in shapes:
    good = model_file(inputs, outputs, side)
    tag = f"{inputs}x{outputs}"
    put("model_file", tag, good)
    if inputs <= 25:
        put("model_file", tag + "-truncated", good[:-1])
        put("model_file", tag + "-trailing", good + b"\0\0\0\0")
        put("model_file", tag + "-nan", good[:40] + struct.pack("<f", float("nan")) + good[44:])
        put("model_file", tag + "-inf", good[:-4] + struct.pack("<f", float("inf")))
        put("model_file", tag + "-version2", model_file(inputs, outputs, side, version=2))
        put("model_file", tag + "-dtype1", model_file(inputs, outputs, side, dtype=1))
        put("model_file", tag + "-side-wrong", model_file(inputs, outputs, side + 1))
        put("model_file", tag + "-reserved", model_file(inputs, outputs, side, reserved=1))
# int8 models (parameter type 1): scales, bias, then one i8 per weight.
def int8_file(inputs, outputs, side, scale=0.01):
    header = b"SOFTREG\0" + struct.pack("<6I", 1, inputs, outputs, side, 1, 0)
    floats = [scale * (j + 1) for j in range(outputs)] + [0.1 * j for j in range(outputs)]
    weights = bytes(((i * 37) % 255 - 127) & 0xFF for i in range(inputs * outputs))
    return header + struct.pack(f"<{2 * outputs}f", *floats) + weights


for inputs, outputs, side in shapes:
    good = int8_file(inputs, outputs, side)
    tag = f"int8-{inputs}x{outputs}"
    put("model_file", tag, good)
    if inputs <= 25:
        put("model_file", tag + "-truncated", good[:-1])
        put("model_file", tag + "-nan-scale", good[:32] + struct.pack("<f", float("nan")) + good[36:])
put("model_file", "header-only", model_file(4, 3, 2)[:32])
put("model_file", "huge-dims", b"SOFTREG\0" + struct.pack("<6I", 1, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFF, 0, 0))
put("model_file", "bad-magic", b"SOFTREG\1" + model_file(4, 3, 2)[8:])
print("seeds written to", os.path.join(here, "corpus"))
