#!/usr/bin/env python3
"""softreg against the NumPy peer, alternately, on this machine.

    cargo build --release
    python3 benches/peers/compare.py --data-dir ../shared/fashion-mnist [--runs 5]

Runs `softreg train --json` (default recipe: 32x32, batch 256, lr 0.1,
10 epochs, validation every epoch) and `softmax_numpy.py` one after the other,
`--runs` times each, and prints for each the median of train_seconds (the
epoch loop, validation included, loading excluded), the whole process's wall
time and its peak RSS (from wait4), then the ratios. Needs numpy.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))


def measure(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    return result["train_seconds"], wall, usage.ru_maxrss / 1024, result["val_acc"]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.environ.get("SOFTREG_DATA_DIR", "data/fashion-mnist"))
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", default=None, help="softreg --threads (default: its own)")
    args = p.parse_args()

    softreg = os.path.join(root, "target", "release", "softreg")
    if not os.path.exists(softreg):
        sys.exit("build softreg first: cargo build --release")
    numpy_cmd = [sys.executable, os.path.join(here, "softmax_numpy.py"), "--data-dir", args.data_dir]
    results = {"softreg": [], "numpy": []}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            cmd = [softreg, "train", "--json", "--offline", "--data-dir", args.data_dir,
                   "--out", os.path.join(tmp, f"run{run}")]
            if args.threads:
                cmd += ["--threads", args.threads]
            results["softreg"].append(measure(cmd))
            results["numpy"].append(measure(numpy_cmd))

    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; median of {args.runs} alternating runs")
    print(f"{'':8} {'train s':>9} {'wall s':>8} {'peak MB':>8} {'val acc':>8}")
    medians = {}
    for name, rows in results.items():
        medians[name] = [statistics.median(col) for col in zip(*rows)]
        train, wall, rss, acc = medians[name]
        print(f"{name:8} {train:9.3f} {wall:8.3f} {rss:8.0f} {acc:8.4f}")
    s, n = medians["softreg"], medians["numpy"]
    print(f"numpy / softreg: {n[0] / s[0]:.1f}x train time, {n[1] / s[1]:.1f}x wall, {n[2] / s[2]:.1f}x memory")


if __name__ == "__main__":
    main()
