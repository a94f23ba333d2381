"""Wall time of SalUn, SalUn-CRA and RL against a freshly trained retrain baseline, on a quiet machine.

unlearn_bench.py reuses cached retrains, so its time column is only valid when every run shared the same
load. This script times one request end to end with an empty cache. Pass the original checkpoint that
unlearn_bench.py trained (default runs/bench/breastmnist/original.safetensors).

    python benchmarks/unlearn_timing.py runs/bench/breastmnist/original.safetensors
"""

import os
import sys
import tempfile

os.environ["MEDFORGET_CACHE_DIR"] = tempfile.mkdtemp()  # before medforget is imported: no cached retrain

from _results import append, markdown_table

from medforget.data import load_medmnist
from medforget.request import design_request
from medforget.unlearn import unlearn

ds = load_medmnist("breastmnist")
orig = sys.argv[1] if len(sys.argv) > 1 else "runs/bench/breastmnist/original.safetensors"
req = design_request(ds, "random", 0.2, 0)
rows = []
for m in ["salun", "salun-cra", "random-label"]:
    r = unlearn(
        orig, req, m, os.path.join(tempfile.mkdtemp(), "out.safetensors"), device="cpu", seed=0, show_progress=False
    )
    rows.append(
        [
            "breastmnist",
            "random20",
            m,
            0,
            f"{r.cost.method_seconds:.1f}",
            f"{r.cost.retrain_seconds:.1f}",
            f"{100 * r.cost.method_seconds / r.cost.retrain_seconds:.1f}%",
            f"{100 * r.average_gap:.2f}",
        ]
    )
    print(rows[-1], flush=True)
append(
    "Quiet timing check (method vs retrain, one seed)",
    markdown_table(
        ["dataset", "forget set", "method", "seed", "method s", "retrain s", "time / retrain", "avg gap pts"], rows
    ),
    "Run with nothing else on the machine; the retrain baseline is trained fresh in the same run (empty cache).",
)
