"""Fill the cache with the retrains the verification benchmarks need, one worker per core.

Retrains are the expensive part of every verification benchmark, and they depend only on the
recipe, the data, the retained samples and the seed (:func:`medforget.cache.retrain_key`), not
on any unlearning method. Training them ahead of time, in parallel single-threaded workers,
lets ``verdict_calibration.py`` and ``unlearn_bench.py`` run on a warm cache:

    OMP_NUM_THREADS=1 python benchmarks/retrain_pool.py --worker 0/2 &
    OMP_NUM_THREADS=1 python benchmarks/retrain_pool.py --worker 1/2 &

Jobs are ordered so that every cell's first retrains come before any cell's extra ones; each
worker takes every n-th job. A job whose retrain is already cached costs a file read.
"""

from __future__ import annotations

import argparse
import logging
import time

from bench_designs import DESIGNS, RECIPES, original_model, request_rows

from medforget.baseline import retrain_seeds, train_or_load
from medforget.config import TrainConfig
from medforget.data import load_dataset
from medforget.engine import resolve_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(RECIPES))
    ap.add_argument("--designs", nargs="+", default=list(DESIGNS))
    ap.add_argument("--request-seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--retrains", type=int, default=3, help="retrains per request (seeds recipe+1 ... recipe+K)")
    ap.add_argument("--first", type=int, default=0, help="skip the first N retrain seeds of each request")
    ap.add_argument("--worker", default="0/1", help="i/n: this worker takes every n-th job starting at i")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    i, n = (int(x) for x in args.worker.split("/"))
    dev = resolve_device("cpu")
    jobs = []
    for rank in range(args.first, args.retrains):
        for name in args.datasets:
            for design in args.designs:
                for rs in args.request_seeds:
                    jobs.append((rank, name, design, rs))
    datasets = {}
    for k, (rank, name, design, rs) in enumerate(jobs):
        if k % n != i:
            continue
        if name not in datasets:
            datasets[name] = load_dataset(name, 28)
            original_model(datasets[name], TrainConfig(**RECIPES[name]), dev)
        ds = datasets[name]
        recipe = TrainConfig(**RECIPES[name])
        _, retain = request_rows(ds, design, rs)
        seed = retrain_seeds(recipe.seed, rank + 1)[rank]
        start = time.perf_counter()
        r = train_or_load(ds, recipe, ds.train.subset(retain), seed, dev)
        took = time.perf_counter() - start
        print(f"{name} {design} request seed {rs} retrain seed {seed}: {'cached' if r.cached else 'trained'} "
              f"in {took:.0f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
