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
# --- the CLI's .gz path: a mode byte, then the .gz (mode & 2 == 0) or the
# IDX bytes the target compresses itself (mode & 2 == 2); mode & 1 picks
# images (0) or labels (1). ---------------------------------------------------
import zlib

small_images = images_file(2, 28, 28, real_images[: 2 * 784])
small_labels = labels_file(real_labels[:2])
put("idx_gz", "images-gz", b"\x00" + gzip.compress(small_images, mtime=0))
put("idx_gz", "labels-gz", b"\x01" + gzip.compress(small_labels, mtime=0))
put("idx_gz", "images-plain", b"\x02" + small_images)
put("idx_gz", "labels-plain", b"\x03" + small_labels)
put("idx_gz", "labels-plain-level9", b"\x27" + small_labels)
put("idx_gz", "labels-longer-than-header", b"\x03" + small_labels + bytes(3000))
put("idx_gz", "labels-gz-bomb", b"\x01" + gzip.compress(small_labels + bytes(200000), mtime=0))
put("idx_gz", "labels-gz-truncated", b"\x01" + gzip.compress(small_labels, mtime=0)[:-5])
put("idx_gz", "images-huge-promise", b"\x02" + images_file(0xFFFF, 0xFFFF, 0xFFFF, b""))
broken_dir = os.path.join(fixtures, "broken")
if os.path.isdir(broken_dir):
    for name in sorted(os.listdir(broken_dir)):
        with open(os.path.join(broken_dir, name), "rb") as f:
            content = f.read()
        if name.endswith(".gz") and len(content) < 8192:
            put("idx_gz", "broken-" + name, b"\x01" + content)
        elif "labels" in name or "images" in name:
            put("idx_gz", "broken-" + name, (b"\x03" if "labels" in name else b"\x02") + content[:4000])
        if name.endswith(".png"):
            put("png_predict", "broken-" + name, content)
        if name.endswith(".softreg"):
            put("model_file", "broken-" + name, content)
        elif not name.endswith((".gz", ".png", ".md", ".py")):
            # The raw broken IDX files, cut to the fuzzers' length limit.
            put("idx_labels", "broken-" + name, content[:4096])
            put("idx_images", "broken-" + name, content[:8192])
for name, mode in (("t10k-labels-idx1-ubyte.gz", b"\x01"), ("t10k-images-idx3-ubyte.gz", b"\x00")):
    path = os.path.join(dataset, name)
    if os.path.exists(path):
        with open(path, "rb") as f:
            put("idx_gz", "real-prefix-" + name, mode + f.read(2048))

# --- PNG images for `softreg predict` ---------------------------------------
def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width, height, color_type, bit_depth, rows, plte=None, trns=None, interlace=0):
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace))
    if plte is not None:
        out += chunk(b"PLTE", plte)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    raw = b"".join(b"\x00" + r for r in rows)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


gray = [bytes(real_images[r * 28 : r * 28 + 28]) for r in range(28)]
put("png_predict", "gray-28x28", png(28, 28, 0, 8, gray))
put("png_predict", "gray-inverted-28x28", png(28, 28, 0, 8, [bytes(255 - p for p in r) for r in gray]))
put("png_predict", "rgb-9x5", png(9, 5, 2, 8, [bytes((3 * x + y * 40) % 256 for x in range(27)) for y in range(5)]))
put("png_predict", "rgba-6x7", png(6, 7, 6, 8, [bytes((x * 11 + y) % 256 for x in range(24)) for y in range(7)]))
put("png_predict", "gray-alpha-5x5", png(5, 5, 4, 8, [bytes((x * 50) % 256 for x in range(10)) for _ in range(5)]))
put("png_predict", "gray16-4x4", png(4, 4, 0, 16, [bytes(range(8)) for _ in range(4)]))
put("png_predict", "gray1-16x3", png(16, 3, 0, 1, [b"\xaa\x55" for _ in range(3)]))
put("png_predict", "palette-4x4", png(4, 4, 3, 8, [bytes([0, 1, 2, 1]) for _ in range(4)], plte=bytes([0, 0, 0, 255, 255, 255, 255, 0, 0]), trns=bytes([255, 128])))
put("png_predict", "interlaced-8x8", png(8, 8, 0, 8, [bytes(range(8 * y, 8 * y + 8)) for y in range(8)], interlace=1))
put("png_predict", "tall-1x600", png(1, 600, 0, 8, [bytes([y % 256]) for y in range(600)]))
put("png_predict", "wide-600x1", png(600, 1, 0, 8, [bytes(x % 256 for x in range(600))]))
print("seeds written to", os.path.join(here, "corpus"))
