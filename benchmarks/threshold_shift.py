"""How much of an unlearned model's test-accuracy loss is a shift of its decision threshold?

Diagnostic for the generalisation cost of relabelling methods (issue 3). For one request it runs a
method through ``medforget.unlearn`` (retrain baseline from the cache when present), then refits only
the output-layer bias (one offset per class, by minimising cross-entropy on the validation split,
which no model trained on) and scores the models again. If the refit bias recovers most of the test
accuracy, the method mostly moved the threshold between classes instead of changing what the model
knows; if the forget accuracy also returns to the original's, the early-stop rule was met by that
shift rather than by forgetting the requested images.

    python benchmarks/threshold_shift.py ORIGINAL.safetensors --methods salun salun-cra --seed 1
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from _results import append, markdown_table

from medforget.checkpoint import load_checkpoint
from medforget.config import UnlearnSettings
from medforget.data import Split, load_from_spec
from medforget.engine import predict
from medforget.request import design_request, resolve
from medforget.session import open_task
from medforget.unlearn import run_unlearning


def fit_bias(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The per-class logit offset that minimises cross-entropy on (logits, labels)."""
    bias = torch.zeros(logits.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([bias], max_iter=100)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits + bias, labels)
        loss.backward()
        return loss

    opt.step(closure)
    return bias.detach()


def accuracy(logits: torch.Tensor, split: Split) -> float:
    return 100 * float((logits.argmax(1) == split.labels).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("original")
    ap.add_argument("--methods", nargs="+", default=["salun", "salun-cra"])
    ap.add_argument("--design", default="random")
    ap.add_argument("--fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    dev = torch.device("cpu")
    ds = load_from_spec(load_checkpoint(args.original).meta.dataset.spec)
    req = design_request(ds, args.design, args.fraction, args.seed)
    resolved = resolve(req, ds, allow_class_removal=True)  # the same rows unlearn() forgets and retains
    forget, retain = ds.train.subset(resolved.forget_rows), ds.train.subset(resolved.retain_rows)
    rows = []
    for method in args.methods:
        task = open_task(args.original, req, device="cpu", allow_class_removal=True)
        result = run_unlearning(task, UnlearnSettings(method=method, seed=args.seed, device="cpu"))
        report, model = result.report, result.model
        logits = {name: predict(model, s, dev) for name, s in (("val", ds.val), ("test", ds.test),
                                                                 ("forget", forget), ("retain", retain))}  # fmt: skip
        bias = fit_bias(logits["val"], ds.val.labels)
        before = [accuracy(logits[n], s) for n, s in (("test", ds.test), ("forget", forget), ("retain", retain))]
        after = [accuracy(logits[n] + bias, s) for n, s in (("test", ds.test), ("forget", forget), ("retain", retain))]
        rt = report.retrain
        assert rt is not None
        ref = [100 * (rt.test.accuracy or 0), 100 * (rt.forget.accuracy or 0), 100 * (rt.retain.accuracy or 0)]
        rows.append(
            [ds.name, f"{args.design}{round(100 * args.fraction)}", method, args.seed]
            + [f"{b:.1f} → {a:.1f} ({r:.1f})" for b, a, r in zip(before, after, ref, strict=True)]
            + [" ".join(f"{x:+.2f}" for x in bias.tolist())]
        )
    header = ["dataset", "forget set", "method", "seed", "test acc", "forget acc", "retain acc", "val-fit bias"]
    append(
        "Threshold shift after unlearning (threshold_shift.py)",
        markdown_table(header, rows),
        "Accuracies in percent: as unlearned → after refitting only the output bias on the validation split "
        "(retrain's in brackets). The bias is one logit offset per class, fitted by cross-entropy.",
    )


if __name__ == "__main__":
    main()
