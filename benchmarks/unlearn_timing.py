"""Wall time of approximate methods against a freshly trained retrain baseline, on a quiet machine.

Studies and unlearn_bench.py reuse cached retrains, so their time columns are only valid when every
run shared the same load. This script times one request end to end with an empty cache: the retrain
is trained in the same process, right before the methods. Pass an original checkpoint (e.g. one from
the study cache); ``--param key=value`` applies to every method (to time a setting).

    python benchmarks/unlearn_timing.py ORIGINAL.safetensors --methods salun salun-cra random-label
"""

import argparse
import json
import os
import tempfile

os.environ["MEDFORGET_CACHE_DIR"] = tempfile.mkdtemp()  # before medforget is imported: no cached retrain

from _results import append, markdown_table

from medforget.checkpoint import load_checkpoint
from medforget.config import UnlearnSettings
from medforget.data import load_from_spec
from medforget.request import design_request
from medforget.session import open_task
from medforget.unlearn import run_unlearning

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("original")
ap.add_argument("--methods", nargs="+", default=["salun", "salun-cra", "random-label"])
ap.add_argument("--design", default="random")
ap.add_argument("--fraction", type=float, default=0.2)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--param", action="append", default=[], help="key=value for every method (JSON values)")
args = ap.parse_args()
params = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
ds = load_from_spec(load_checkpoint(args.original).meta.dataset.spec)
req = design_request(ds, args.design, args.fraction, args.seed)
rows = []
for m in args.methods:
    task = open_task(args.original, req, device="cpu", allow_class_removal=True)
    r = run_unlearning(task, UnlearnSettings(method=m, params=params, seed=args.seed, device="cpu")).report
    rows.append(
        [
            ds.name,
            f"{args.design}{round(100 * args.fraction)}",
            m,
            ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults",
            args.seed,
            f"{r.cost.method_seconds:.1f}",
            f"{r.cost.retrain_seconds:.1f}",
            f"{100 * r.cost.method_seconds / r.cost.retrain_seconds:.1f}%",
            f"{100 * r.average_gap:.2f}",
            f"{100 * (r.unlearned.test.fnr - r.retrain.test.fnr):+.1f}",
        ]
    )
    print(rows[-1], flush=True)
append(
    "Quiet timing check (method vs retrain, one seed)",
    markdown_table(
        [
            "dataset",
            "forget set",
            "method",
            "params",
            "seed",
            "method s",
            "retrain s",
            "time / retrain",
            "avg gap pts",
            "FNR − retrain pts",
        ],
        rows,
    ),
    "Run with nothing else on the machine; the retrain baseline is trained fresh in the same run (empty cache).",
)
