"""The two unlearning studies' claims, checked on a study's own numbers."""

from __future__ import annotations

import statistics
from typing import Any

from medforget.study.tables import sub


def mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.mean(vals) if vals else None


def study_findings(rows: list[dict[str, Any]]) -> list[str]:
    """The two studies' claims, checked on this grid's numbers; each finding states its evidence.

    Differences are unlearned - retrain in points, averaged over seeds, per forget design (a mean
    over designs would mix a 20% and a disease-heavy request into one meaningless number).
    """
    out: list[str] = []

    def diff(rs: list[dict[str, Any]], col: str) -> float | None:
        return mean([sub(r[f"unlearned_{col}"], r[f"retrain_{col}"]) for r in rs])

    def pts(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:+.1f}"

    for ds in sorted({r["dataset"] for r in rows}):
        drows = [r for r in rows if r["dataset"] == ds]
        designs = list(dict.fromkeys(r["forget"] for r in drows))
        approx = [m for m in dict.fromkeys(r["label"] for r in drows) if m != "retrain"]
        for label in approx:
            rs = [r for r in drows if r["label"] == label]
            parts = []
            for f in designs:
                cell = [r for r in rs if r["forget"] == f]
                if cell:
                    retain, forget = pts(diff(cell, "retain_accuracy")), pts(diff(cell, "forget_accuracy"))
                    parts.append(f"{f}: retain {retain}, forget {forget}, test {pts(diff(cell, 'test_accuracy'))}")
            out.append(f"{ds}, {label} vs retrain (points): " + "; ".join(parts) + ".")
            sizes = sorted({r["fraction"] for r in rs if r["design"] == "random"})
            if len(sizes) > 1:
                drops = [mean([r["test_accuracy_drop"] for r in rs if r["design"] == "random" and r["fraction"] == f])
                         for f in sizes]  # fmt: skip
                if all(d is not None for d in drops):
                    grows = drops[-1] > drops[0] + 0.005  # type: ignore[operator]
                    out.append(
                        f"{ds}, {label}: retrain's test accuracy minus this method's at random forget sizes "
                        + ", ".join(f"{100 * f:g}%: {100 * d:.1f}" for f, d in zip(sizes, drops, strict=True))
                        + f" points: the generalisation cost {'grows' if grows else 'does not grow'} with the size."
                    )
            easy = mean([sub(r["unlearned_forget_easy_accuracy"], r["retrain_forget_easy_accuracy"]) for r in rs])
            hard = mean([sub(r["unlearned_forget_hard_accuracy"], r["retrain_forget_hard_accuracy"]) for r in rs])
            if easy is not None and hard is not None:
                verdict = "treated differently" if abs(easy - hard) > 0.05 else "treated alike"
                out.append(
                    f"{ds}, {label}: forget accuracy vs retrain on the easiest third of the forget set {pts(easy)}, on "
                    f"the hardest third {pts(hard)} points (all designs): easy and hard samples are {verdict}."
                )
        for f in designs:
            fnr = {label: mean([r["test_fnr_increase"] for r in drows if r["label"] == label and r["forget"] == f])
                   for label in approx}  # fmt: skip
            fnr = {k: v for k, v in fnr.items() if v is not None}
            if fnr:
                base = mean([r["retrain_test_fnr"] for r in drows if r["forget"] == f])
                out.append(
                    f"{ds}, {f}: test FNR minus retrain's ({'n/a' if base is None else f'{100 * base:.1f}%'}), points: "
                    + ", ".join(f"{k} {pts(v)}" for k, v in sorted(fnr.items(), key=lambda kv: kv[1]))
                    + "."
                )
    return out
