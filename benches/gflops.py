#!/usr/bin/env python3
"""Median throughput of every benchmark of the last `cargo bench --bench kernels`.

Reads criterion's `<target>/criterion/<group>/<bench>/new/{estimates,benchmark}.json`
and prints one line per benchmark: the median time per iteration and the
throughput at that median, in GFLOP/s for the GEMM groups (their Throughput
is the FLOP count), in M rows/s or images/s otherwise.

    python3 benches/gflops.py [TARGET_DIR]     # default: $CARGO_TARGET_DIR or ./target
"""
import json
import os
import sys
from pathlib import Path

target = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target"))
root = target / "criterion"
rows = []
for est in sorted(root.glob("**/new/estimates.json")):
    meta = json.loads((est.parent / "benchmark.json").read_text())
    median_ns = json.loads(est.read_text())["median"]["point_estimate"]
    elements = (meta.get("throughput") or {}).get("Elements")
    group = meta["group_id"]
    if elements is None:
        rate = ""
    elif "gemm" in group or group.startswith("fma_peak"):
        rate = f"{elements / median_ns:8.1f} GFLOP/s"
    elif group.startswith("sgd_step"):
        rate = f"{elements / median_ns * 1e9:8.3g} images/s"
    else:
        rate = f"{elements / median_ns * 1e3:8.1f} M rows/s"
    rows.append((group, meta["function_id"], median_ns, rate))

width = max((len(r[0]) + len(r[1]) for r in rows), default=0) + 1
for group, function, median_ns, rate in rows:
    name = f"{group}/{function}"
    print(f"{name:<{width}}  {median_ns / 1e3:10.2f} us  {rate}")
