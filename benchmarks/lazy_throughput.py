"""Lazily read images at 224 px from a CSV folder: pipeline vs raw model throughput, and peak memory.

Builds (once) a folder of ``--n`` grayscale JPEGs of 256x256 px listed in a plain medforget CSV (a
CheXpert-like archive), then, each in a fresh process so peak memory is its own:

* ``ratio``: in one process, raw forward+backward+step of the model on a random in-memory batch (the
  ceiling) and the real pipeline (``fit`` on the lazily read split, ``--workers`` reading ahead),
  alternately, ``--steps`` steps each; target pipeline >= 90% of raw;
* ``feed``: the data pipeline alone (read + normalise batches, no model), with and without workers:
  the headroom a faster device (a GPU) would have;
* ``memory``: peak resident memory (VmHWM) of a process training ``--steps`` steps on the lazily read
  split, of one training on random tensors (no data), and of one that loads the split in memory
  first, against the split's size in memory; target: lazy well under the split's size above no-data.

    python benchmarks/lazy_throughput.py --n 20000 --workers 2 --steps 8
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_folder(folder: Path, n: int) -> Path:
    """``n`` JPEGs (smooth gradients and noise, so they compress like radiographs) and their manifest."""
    from PIL import Image

    manifest = folder / "manifest.csv"
    if manifest.exists():
        return manifest
    rng = np.random.default_rng(0)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:256, 0:256]
    rows = []
    for i in range(n):
        label = i % 2
        base = 80 + 60 * label + 40 * np.sin(xx / (20 + i % 13)) * np.cos(yy / (17 + i % 7))
        arr = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(arr, "L").save(folder / "img" / f"{i:06d}.jpg", quality=90)
        split = "train" if i < 0.9 * n else ("val" if i < 0.95 * n else "test")
        rows.append({"sample_id": f"s{i:06d}", "path": f"img/{i:06d}.jpg", "label": ["no", "yes"][label],
                     "split": split})  # fmt: skip
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return manifest


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _load(manifest: Path, lazy: bool, workers: int):
    from medforget.config import ReadOptions
    from medforget.data import load_dataset, reading

    with reading(ReadOptions(lazy=lazy, workers=workers)):
        return load_dataset("csv", size=224, manifest=manifest, positive=["yes"])


def _raw(model, cfg, shape, steps: int) -> float:
    from train_throughput import raw_throughput  # the same ceiling train_throughput.py measures

    return raw_throughput(model, cfg, shape, steps)


def _fresh(split, start: int, k: int):
    """``k`` rows from ``start`` on, wrapping around a small split."""
    return split.subset([(start + i) % len(split) for i in range(min(k, len(split)))])


def mode_ratio(args) -> dict:
    """Raw and pipeline throughput, alternating, in this one process."""
    import torch

    from medforget.config import TrainConfig
    from medforget.engine import build_model, fit

    ds = _load(args.manifest, True, args.workers)
    cfg = TrainConfig(arch=args.arch, epochs=1, batch_size=args.batch_size, seed=0)
    dev = torch.device("cpu")
    n = args.steps * cfg.batch_size
    raw, pipe = [], []
    for rep in range(args.repeats):
        raw.append(_raw(build_model(cfg, ds, dev), cfg, tuple(ds.train.images.shape[1:]), args.steps))
        model = build_model(cfg, ds, dev)
        fit(model, ds.train.subset(range(cfg.batch_size)), cfg, dev)  # warm-up step
        sub = _fresh(ds.train, cfg.batch_size + rep * n, n)  # images not read before in this process
        result = fit(model, sub, cfg, dev)
        pipe.append(result.images_per_second)
    return {"raw": float(np.median(raw)), "pipeline": float(np.median(pipe)), "raw_all": raw, "pipe_all": pipe}


def mode_feed(args) -> dict:
    """Images per second the pipeline alone delivers (read + normalise), read in this thread or ahead by
    ``--workers`` threads (what a GPU gets)."""
    import torch

    from medforget.data.batches import to_float
    from medforget.data.lazy import lazy_batches

    out = {}
    for w in (0, args.workers):
        ds = _load(args.manifest, True, w)
        split = _fresh(ds.train, w * 2048, 2048)
        chunks = list(torch.randperm(len(split), generator=torch.Generator().manual_seed(0)).split(args.batch_size))
        start = time.perf_counter()
        for x in lazy_batches(split.images, chunks, ahead=w > 0):
            to_float(x).contiguous(memory_format=torch.channels_last)
        out[f"workers={w}"] = len(split) / (time.perf_counter() - start)
    return out


def mode_memory(args) -> dict:
    """Peak memory of training ``--steps`` steps: on lazy data, on random tensors only, or after an in-memory load."""
    import torch

    from medforget.config import TrainConfig
    from medforget.engine import build_model, fit

    cfg = TrainConfig(arch=args.arch, epochs=1, batch_size=args.batch_size, seed=0)
    dev = torch.device("cpu")
    if args.variant == "none":
        ds = _load(args.manifest, True, 0)
        _raw(build_model(cfg, ds, dev), cfg, tuple(ds.train.images.shape[1:]), args.steps)
        return {"peak_mb": peak_rss_mb(), "data_mb": 0.0}
    lazy = args.variant == "lazy"
    ds = _load(args.manifest, lazy, args.workers if lazy else 0)
    size_mb = sum(int(np.prod(s.images.shape)) for s in ds.splits.values()) / 2**20
    model = build_model(cfg, ds, dev)
    fit(model, ds.train.subset(range(args.steps * cfg.batch_size)), cfg, dev)
    return {"peak_mb": peak_rss_mb(), "data_mb": size_mb}


def child(mode: str, args, variant: str = "") -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--variant", variant, "--manifest", str(args.manifest),
           "--workers", str(args.workers), "--steps", str(args.steps), "--arch", args.arch,
           "--batch-size", str(args.batch_size), "--repeats", str(args.repeats)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{HERE.parent}:{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20000, help="Images in the generated folder")
    ap.add_argument("--folder", type=Path, default=Path("/tmp/medforget-lazy-bench"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--child", default=None)
    ap.add_argument("--variant", default="")
    ap.add_argument("--manifest", type=Path, default=None)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    if args.child:
        modes = {"ratio": mode_ratio, "feed": mode_feed, "memory": mode_memory}
        print(json.dumps(modes[args.child](args)))
        return
    report(args)


def report(args) -> None:
    from _results import append, markdown_table

    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    args.manifest = make_folder(args.folder, args.n)
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    _ = child("feed", args)  # the first lazy load decodes every image into the image cache
    cache_build = time.perf_counter() - t0
    ratio = child("ratio", args)
    feed = child("feed", args)
    mem = {v: child("memory", args, v) for v in ("none", "lazy", "eager")}
    share = ratio["pipeline"] / ratio["raw"]
    lazy_extra = mem["lazy"]["peak_mb"] - mem["none"]["peak_mb"]
    eager_extra = mem["eager"]["peak_mb"] - mem["none"]["peak_mb"]
    data_mb = mem["lazy"]["data_mb"]
    rows = [
        [f"pipeline (lazy, read in the training thread) / raw {args.arch}, img/s",
         f"{ratio['pipeline']:.2f} / {ratio['raw']:.2f}", f"{100 * share:.1f}%", ">= 90%",
         "yes" if share >= 0.9 else "NO"],
        [f"data pipeline alone, img/s (in the thread / {args.workers} read-ahead threads)",
         f"{feed['workers=0']:.0f} / {feed[f'workers={args.workers}']:.0f}", "", "", ""],
        ["peak memory above no-data run, lazy (MB)", f"{lazy_extra:.0f}", f"{100 * lazy_extra / data_mb:.1f}% of data",
         "well under the data", "yes" if lazy_extra < 0.25 * data_mb else "NO"],
        ["peak memory above no-data run, in memory (MB)", f"{eager_extra:.0f}",
         f"{100 * eager_extra / data_mb:.1f}% of data", "(reference)", ""],
        ["decoded dataset in memory (MB) / images", f"{data_mb:.0f} / {args.n}", "", "", ""],
        ["peak memory MB: no data / lazy / in memory",
         f"{mem['none']['peak_mb']:.0f} / {mem['lazy']['peak_mb']:.0f} / {mem['eager']['peak_mb']:.0f}", "", "", ""],
        [f"one-time image cache build s (decode {args.n} JPEGs, {args.workers} processes)",
         f"{cache_build:.0f}", f"{args.n / cache_build:.0f} img/s", "", ""],
    ]  # fmt: skip
    table = markdown_table(["measure", "value", "ratio", "target", "met"], rows)
    notes = (
        f"{args.steps} steps of batch {args.batch_size} per measurement, median of {args.repeats} alternating "
        f"raw/pipeline repeats in one process (each repeat on images not read before); memory runs each in a "
        f"fresh process. Folder generated in {made:.0f} s. Raw per-repeat img/s: "
        f"{[round(v, 2) for v in ratio['raw_all']]}, pipeline: {[round(v, 2) for v in ratio['pipe_all']]}. "
        f"Under load: 1-minute load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
        f"({os.cpu_count()} cores shared with other jobs)."
    )
    append("Lazy loading at 224 px from a CSV folder (lazy_throughput.py)", table, notes, record=not args.no_record)


if __name__ == "__main__":
    main()
