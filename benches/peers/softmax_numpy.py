#!/usr/bin/env python3
"""The chapter's recipe in NumPy: the peer softreg is measured against.

Softmax regression on Fashion-MNIST resized to 32x32 (or left at 28x28),
W ~ N(0, 0.01^2), b = 0, minibatch SGD with batch 256 and lr 0.1 for 10 epochs,
a fresh per-example shuffle every epoch, the last partial batch included, a
numerically stable softmax, float32 throughout, and the whole test set
evaluated after every epoch: the same work `softreg train` does.

    python3 benches/peers/softmax_numpy.py --data-dir ../shared/fashion-mnist

Prints one line per epoch to stderr and one JSON object to stdout with
train_seconds (the epoch loop, validation included, data loading excluded),
val_acc, val_loss and peak_rss_mb. Threads: OpenBLAS uses what
OPENBLAS_NUM_THREADS allows (default: all cores).
"""
import argparse
import gzip
import json
import os
import resource
import struct
import sys
import time

import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndims = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndims, data[4 : 4 + 4 * ndims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def find(data_dir, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    sys.exit(f"{name}: not found in {data_dir}")


def resize_matrix(n_in=28, n_out=32):
    """The 1-D bilinear resize of tf.image.resize (half-pixel centres, edges
    clamped) as an n_out x n_in matrix T; the 2-D resize is T X T^T."""
    t = np.zeros((n_out, n_in), dtype=np.float64)
    scale = n_in / n_out
    for o in range(n_out):
        s = (o + 0.5) * scale - 0.5
        lo = max(int(np.floor(s)), 0)
        hi = min(int(np.ceil(s)), n_in - 1)
        frac = s - np.floor(s)
        t[o, lo] += 1 - frac
        t[o, hi] += frac
    return t


def load(data_dir, side):
    xs, ys = [], []
    for split in ("train", "t10k"):
        images = read_idx(find(data_dir, f"{split}-images-idx3-ubyte"))
        labels = read_idx(find(data_dir, f"{split}-labels-idx1-ubyte"))
        x = images.astype(np.float32) / np.float32(255.0)
        if side == 32:
            t = resize_matrix().astype(np.float32)
            x = t @ x @ t.T  # broadcast over images: T X T^T, float32
        xs.append(np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32))
        ys.append(labels.astype(np.int64))
    return xs[0], ys[0], xs[1], ys[1]


def softmax(o):
    o = o - o.max(axis=1, keepdims=True)
    e = np.exp(o)
    return e / e.sum(axis=1, keepdims=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.environ.get("SOFTREG_DATA_DIR", "data/fashion-mnist"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--resize", type=int, choices=(28, 32), default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    train_x, train_y, val_x, val_y = load(args.data_dir, args.resize)
    rng = np.random.default_rng(args.seed)
    n_in = train_x.shape[1]
    w = (rng.standard_normal((n_in, 10)) * 0.01).astype(np.float32)
    b = np.zeros(10, dtype=np.float32)
    lr = np.float32(args.lr)

    start = time.perf_counter()
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        order = rng.permutation(len(train_x))
        loss_sum = 0.0
        for i in range(0, len(order), args.batch_size):
            idx = order[i : i + args.batch_size]
            x, y = train_x[idx], train_y[idx]
            y_hat = softmax(x @ w + b)
            loss_sum -= np.log(y_hat[np.arange(len(y)), y]).sum()
            y_hat[np.arange(len(y)), y] -= 1.0
            g = y_hat / np.float32(len(y))
            w -= lr * (x.T @ g)
            b -= lr * g.sum(axis=0)
        y_hat = softmax(val_x @ w + b)
        val_loss = float(-np.log(y_hat[np.arange(len(val_y)), val_y]).mean())
        val_acc = float((y_hat.argmax(axis=1) == val_y).mean())
        print(
            f"epoch {epoch + 1}: train loss {loss_sum / len(order):.4f}, "
            f"val loss {val_loss:.4f}, val acc {val_acc:.4f}, {time.perf_counter() - t0:.3f} s",
            file=sys.stderr,
        )
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "peer": "numpy", "resize": args.resize, "epochs": args.epochs,
        "train_seconds": seconds, "val_acc": val_acc, "val_loss": val_loss,
        "peak_rss_mb": rss_mb,
    }))


if __name__ == "__main__":
    main()
