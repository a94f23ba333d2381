"""Does the verdict tell exact unlearning from no unlearning? Specificity, power and the calibrated verdict (issue 10).

For each dataset, forget design and request seed, a pool of M retrains (seeds recipe+1 ... recipe+M, from
the cache that ``retrain_pool.py`` fills) is evaluated once, each recalibrated as ``unlearn`` does. Then,
for each K of ``--k``:

* **specificity**: each retrain in turn is judged as if it were the unlearned model, against *every* set
  of K other retrains of the pool (M x C(M-1, K) trials per request): exact unlearning must pass or be
  inconclusive, never fail;
* **power**: the untouched original is judged against every set of K retrains of the pool: it must fail;
* **noise basis**: for the two forget checks whose margin rests on the images, the per-image standard
  error of each retrain's difference against the others, next to the spread of that difference between
  retrains (the two should agree; see ``medforget.verify.noise``);
* **agreement** (``--study DIR --calibration DATASET:DESIGN=FILE ...``): for every run of an
  ``unlearn_bench.py`` study, the verdict without retraining (``medforget calibrate``'s, from the run's
  recorded evaluations of the unlearned and original models) against its K-retrain verdict. With
  ``DATASET:DESIGN=pool`` the calibration of a run's request is computed by the library's
  :func:`~medforget.calibrate.calibrate` from the *other* request seeds of ``--study-seeds`` as
  proxies (leave one request out, 3 retrains each, all from the cache), or from the other requests of
  ``--proxy-seeds`` (requests calibrated on but not in the study), never on the request it judges.

    python benchmarks/verdict_calibration.py --cells breastmnist:random20 breastmnist:disease-heavy20 \\
        --request-seeds 0 --pool 5 --k 3 4 --study runs/bench \\
        --calibration breastmnist:random20=cal-random20.json breastmnist:disease-heavy20=pool
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from _results import append, markdown_table
from bench_designs import DESIGNS, RECIPES, original_model

from medforget.baseline import retrain_distribution, retrain_seeds
from medforget.calibrate import Calibration, calibrate, context, judge_calibrated, read_calibration
from medforget.config import Thresholds, TrainConfig
from medforget.data import load_dataset
from medforget.evaluation import MEMO, ModelEval
from medforget.recalibrate import retrain_eval
from medforget.request import design_request
from medforget.session import Task, open_task
from medforget.verify.checks import judge
from medforget.verify.evidence import sample_evidence
from medforget.verify.verdict import Verdict


def judged(candidate: ModelEval, refs: list[ModelEval], task: Task, t: Thresholds, floor: bool = True) -> Verdict:
    """The full verdict of ``candidate`` against ``refs``, with its per-sample evidence.

    ``floor=False`` judges as before the threshold refit's own noise entered the margin (an ablation).
    """
    if not floor:
        candidate, refs = _without_threshold_noise(candidate), [_without_threshold_noise(r) for r in refs]
    parts = []
    for name, split in (("forget", task.forget), ("test", task.dataset.test)):
        parts.append((candidate.phi(name), np.stack([r.phi(name) for r in refs]), split.labels.numpy()))
    return judge(candidate, refs, sample_evidence(parts[0], parts[1]), t)


def _without_threshold_noise(e: ModelEval) -> ModelEval:
    if e.at_operating_point is None:
        return e
    op = e.at_operating_point.model_copy(update={"accuracy_sd": None, "fnr_sd": None})
    return e.model_copy(update={"at_operating_point": op})  # keeps the per-image outcomes (private attributes)


def _failed(v: Verdict) -> list[str]:
    return [c.name for c in v.checks if c.status == "fail"]


def one_request(dataset_name: str, design: str, seed: int, pool: int, ks: list[int]) -> dict:
    """Every trial of one request: ``{k: {"fresh": [(status, failed)], "original": [...]}}`` and noise figures."""
    ds = load_dataset(dataset_name, 28)
    dev = torch.device("cpu")
    recipe = TrainConfig(**RECIPES[dataset_name])
    ck = original_model(ds, recipe, dev)
    d = DESIGNS[design]
    task = open_task(ck, design_request(ds, d["design"], d["fraction"], seed), device="cpu", allow_class_removal=True)
    retrains = retrain_distribution(ds, recipe, task.retain_set(), retrain_seeds(recipe.seed, pool), dev, workers=1)
    ctx = context(task)
    evals = [retrain_eval(task, r, ctx) for r in retrains]
    original = MEMO.evaluate(ck.sha256, task.original(), task.eval_sets(), ctx, dev, task.forget.sample_ids)
    t = Thresholds()
    out: dict = {"k": {}, "noise": noise_basis(evals, task, t)}
    for k in ks:
        fresh, unfloored, orig = [], [], []
        for j in range(pool):
            others = [i for i in range(pool) if i != j]
            for sub in itertools.combinations(others, k):
                v = judged(evals[j], [evals[i] for i in sub], task, t)
                fresh.append((v.status, _failed(v), retrains[j].seed))
                plain = judged(evals[j], [evals[i] for i in sub], task, t, floor=False)
                unfloored.append((plain.status, _failed(plain)))
        for sub in itertools.combinations(range(pool), k):
            v = judged(original, [evals[i] for i in sub], task, t)
            orig.append((v.status, _failed(v)))
        out["k"][k] = {"fresh": fresh, "unfloored": unfloored, "original": orig}
    return out


def noise_basis(evals: list[ModelEval], task: Task, t: Thresholds) -> dict[str, tuple[float, float]]:
    """For the image-based checks: mean per-image SE of a retrain's difference vs the SD of that difference."""
    found: dict[str, list[tuple[float, float]]] = {}
    for j, e in enumerate(evals):
        refs = [x for i, x in enumerate(evals) if i != j]
        v = judged(e, refs, task, t)
        for c in v.checks:
            if c.noise_basis == "images" and c.sample_se is not None and c.difference is not None:
                found.setdefault(c.name, []).append((c.difference, c.sample_se))
    return {
        name: (float(np.mean([se for _, se in rows])), float(np.std([d for d, _ in rows], ddof=1)))
        for name, rows in found.items()
        if len(rows) > 1
    }


def pool_calibration(dataset_name: str, design: str, seeds: list[int]) -> Calibration:
    """The calibration ``medforget calibrate`` would write with the requests of ``seeds`` as its proxies."""
    ds = load_dataset(dataset_name, 28)
    ck = original_model(ds, TrainConfig(**RECIPES[dataset_name]), torch.device("cpu"))
    d = DESIGNS[design]
    tasks = [
        open_task(ck, design_request(ds, d["design"], d["fraction"], s), device="cpu", allow_class_removal=True)
        for s in seeds
    ]
    return calibrate(tasks, d["design"], d["fraction"], retrains_per_proxy=3, workers=1)


def calibrations_from(
    items: list[str], seeds: list[int], proxy_seeds: list[int] | None = None
) -> dict[tuple[str, str, int], Calibration]:
    """``DATASET:DESIGN=FILE`` (one calibration for every request) or ``=pool`` (leave one request out).

    With ``=pool`` the request of each of ``seeds`` is calibrated on the other requests of ``proxy_seeds``
    (default: ``seeds``), each with 3 cached retrains.
    """
    cals = {}
    for item in items:
        cell, source = item.split("=", 1)
        name, design = cell.split(":")
        for seed in seeds:
            others = [s for s in (proxy_seeds or seeds) if s != seed]
            cal = pool_calibration(name, design, others) if source == "pool" else read_calibration(Path(source))
            cals[(name, design, seed)] = cal
    return cals


def agreement(study: Path, calibrations: dict[tuple[str, str, int], Calibration]) -> tuple[list[list[object]], str]:
    """Calibrated vs K-retrain verdicts over a study's runs, per dataset and design."""
    cells: dict[tuple[str, str], Counter] = {}
    for path in sorted((study / "runs").rglob("*.json")):
        rec = json.loads(path.read_text())
        cal = calibrations.get((rec["dataset"], rec["forget"], rec["seed"]))
        rep = rec["report"]
        if cal is None or rep["unlearned"].get("forget_auc") is None:
            continue
        unlearned, original = ModelEval(**rep["unlearned"]), ModelEval(**rep["original"])
        full, calibrated = rep["verdict"]["status"], judge_calibrated(unlearned, original, cal, Thresholds()).status
        c = cells.setdefault((rec["dataset"], rec["forget"]), Counter())
        c["runs"] += 1
        c["agree"] += full == calibrated
        c["contradict"] += {full, calibrated} == {"pass", "fail"}  # inconclusive is compatible with either
        c[f"{full}->{calibrated}"] += 1
    rows = []
    for (ds, design), c in cells.items():
        pairs = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if "->" in k)
        rows.append([ds, design, c["runs"], c["agree"], f"{100 * c['agree'] / c['runs']:.0f}%", pairs])
    total = sum(c["runs"] for c in cells.values())
    agree = sum(c["agree"] for c in cells.values())
    contradict = sum(c["contradict"] for c in cells.values())
    summary = f"agreement over all runs: {agree}/{total}" + (f" ({100 * agree / total:.0f}%)" if total else "")
    summary += f"; one passes what the other fails: {contradict}/{total}"
    return rows, summary


def _tables(results: dict[tuple[str, str, int], dict], ks: list[int]) -> tuple[str, str]:
    """The summary table per cell and K, and the notes naming every failed exact retrain."""
    summary, failed_notes = [], []
    cells = sorted({(name, design) for name, design, _ in results})
    for k in ks:
        for name, design in cells:
            reqs = [r for (n, d, _), r in results.items() if (n, d) == (name, design)]
            fresh = [x for r in reqs for x in r["k"][k]["fresh"]]
            orig = [x for r in reqs for x in r["k"][k]["original"]]
            ok = sum(s != "fail" for s, _, _ in fresh)
            incon = sum(s == "inconclusive" for s, _, _ in fresh)
            why = Counter(c for s, f, _ in fresh if s == "fail" for c in f)
            summary.append([name, design, k, len(reqs), len(fresh), ok, f"{100 * ok / max(len(fresh), 1):.1f}%",
                            incon, f"{sum(s == 'fail' for s, _ in orig)}/{len(orig)}",
                            ", ".join(f"{c} {n}" for c, n in why.most_common()) or "none",
                            _count_failed([x for r in reqs for x in r["k"][k]["unfloored"]])])  # fmt: skip
            for (n, d, seed), r in results.items():
                seeds = (
                    Counter(rs for s, _, rs in r["k"][k]["fresh"] if s == "fail") if (n, d) == (name, design) else {}
                )
                failed_notes += [f"{d} request {seed}, K={k}: retrain seed {rs} failed {c}x" for rs, c in seeds.items()]
    head = ["dataset", "design", "K", "requests", "specificity trials", "passed or inconclusive",
            "specificity (target >= 95%)", "of which inconclusive", "original failed (target: all)",
            "checks failing exact retrains", "exact retrains failed without the threshold-noise floor"]  # fmt: skip
    return markdown_table(head, summary), "; ".join(failed_notes) or "none"


def _count_failed(trials: list[tuple[str, list[str]]]) -> str:
    """How many trials failed, and on which checks: "n (check m, ...)"."""
    why = Counter(c for s, f in trials if s == "fail" for c in f)
    n = sum(s == "fail" for s, _ in trials)
    return f"{n} ({', '.join(f'{c} {m}' for c, m in why.most_common())})" if n else "0"


def _noise_table(results: dict[tuple[str, str, int], dict]) -> str:
    rows = []
    for (name, design, seed), r in sorted(results.items()):
        for check, (se, sd) in r["noise"].items():
            rows.append([name, design, seed, check, f"{se:.3f}", f"{sd:.3f}"])
    head = ["dataset", "design", "request seed", "check", "mean per-image SE", "SD of the difference between retrains"]
    return markdown_table(head, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--cells",
        nargs="*",
        default=["breastmnist:random20", "breastmnist:disease-heavy20"],
        help="DATASET:DESIGN cells for specificity and power (none: only the agreement of --study)",
    )
    ap.add_argument("--request-seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--pool", type=int, default=5, help="M retrains per request (each judged against K others)")
    ap.add_argument("--k", nargs="+", type=int, default=[3], help="K retrains each verdict compares with")
    ap.add_argument("--study", type=Path, help="an unlearn_bench study folder, for the calibrated agreement")
    ap.add_argument("--study-seeds", nargs="+", type=int, default=[0, 1, 2], help="the study's request seeds")
    ap.add_argument(
        "--proxy-seeds",
        nargs="+",
        type=int,
        help="requests a =pool calibration draws its proxies from (default: "
        "--study-seeds; each run's own request is left out)",
    )
    ap.add_argument(
        "--calibration", nargs="*", default=[], help="DATASET:DESIGN=FILE (medforget calibrate's) or =pool (see above)"
    )
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    if not args.cells and not args.study:
        ap.error("nothing to measure: give --cells, --study, or both")
    results = {}
    for cell in args.cells:
        name, design = cell.split(":")
        for seed in args.request_seeds:
            results[(name, design, seed)] = one_request(name, design, seed, args.pool, args.k)
            print(f"{name} {design} request {seed}: done", flush=True)
    text, notes = "", ""
    if results:
        table, failed = _tables(results, args.k)
        text = table + "\n\nNoise of the image-based checks (each retrain of the pool against the others):\n\n"
        text += _noise_table(results)
        notes = (
            f"Pool of {args.pool} retrains per request (seeds recipe+1 ... recipe+{args.pool}); each retrain judged "
            f"against every set of K others, the original against every set of K. Default tolerances, alpha 0.05. "
            f"Exact retrains that failed: {failed}."
        )
    if args.study:
        cals = calibrations_from(args.calibration, args.study_seeds, args.proxy_seeds)
        agree_rows, agree_summary = agreement(args.study, cals)
        text += "\n\nCalibrated verdict vs K-retrain verdict (target >= 80% agreement):\n\n"
        text += markdown_table(["dataset", "design", "runs", "agree", "share", "K-retrain -> calibrated"], agree_rows)
        proxies = args.proxy_seeds or args.study_seeds
        used = ", ".join(args.calibration)
        notes += f" Calibrations: {used} (proxy requests {proxies}, a run's own left out). {agree_summary}."
    append(
        "Verdict specificity, power and calibrated agreement (verdict_calibration.py)",
        text,
        notes,
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
