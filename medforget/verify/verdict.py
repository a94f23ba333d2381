"""The verdict: is the unlearned model within the spread of models retrained without the forget set?

One retrain is not a standard: on a small medical dataset two exact retrains with different seeds
differ by as much as any clinical tolerance. So every check is an equivalence test against the K
retrains' distribution. For a metric with unlearned value ``u`` and retrain values ``r_1..r_K``
(mean ``m``):

* the **noise margin** is how far one more exact retrain could land from ``m`` by chance
  (:mod:`medforget.verify.noise`): ``t(K-1, p) * s * sqrt(1 + 1/K)`` from the retrains' own spread
  ``s``, or, for the forget checks that subtract unseen images of the same classes, ``z(p)`` times the
  image-by-image standard error of ``u - m``; for the checks scored at a threshold refit on validation,
  never less than ``z(p)`` times that refit's own bootstrap noise; the level ``p`` holds the whole
  verdict's chance of failing an exact retrain at ``alpha`` (5%: each of the m checks gets ``alpha / m``);
* the **difference** is ``u - m`` (its absolute value for two-sided checks; the harmful direction only
  for one-sided ones: a drop in accuracy or AUROC, a rise in missed disease);
* **fail** when the difference exceeds both the clinical tolerance and the noise margin: the model is
  outside what retraining produces, by more than anyone agreed to accept;
* **inconclusive** when it does not fail but the noise margin alone exceeds the tolerance: retraining
  itself is too variable here to show the model is within tolerance (the report says what would settle
  it: more retrains, more test cases of the disease);
* **pass** otherwise; **unknown** when a value is undefined (say, no disease cases to compute an FNR
  on), which never passes.

The verdict fails if any check fails, is inconclusive if none fails but one is inconclusive or
unknown, and passes only when every check passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from medforget.verify.noise import Basis, Level, noise_margin

Direction = Literal["two-sided", "higher-is-worse", "lower-is-worse"]
CheckStatus = Literal["pass", "fail", "inconclusive", "unknown"]
VerdictStatus = Literal["pass", "fail", "inconclusive", "unverified"]


class Check(BaseModel):
    """One criterion of the verdict: the unlearned model against the retrain distribution."""

    name: str
    description: str
    metric: str = Field(description="Which number is judged")
    unit: Literal["rate", "z"] = Field("rate", description="rate: a fraction (0.05 = 5 points); z: in retrain SDs")
    direction: Direction
    unlearned: float | None
    retrain_mean: float | None
    retrain_sd: float | None
    retrain_values: list[float] = Field(default_factory=list)
    difference: float | None = Field(
        description="unlearned - retrain mean, signed so that positive is harmful for one-sided checks "
        "(retrain mean - unlearned for accuracy and AUROC)"
    )
    tolerance: float = Field(description="Largest difference agreed to be clinically irrelevant")
    noise_margin: float | None = Field(
        description="Where one more exact retrain could land by chance: t(K-1, p) * retrain SD * sqrt(1 + 1/K), "
        "or z(p) * the per-image standard error of the difference, or (calibrated verdict) the random-effects "
        "margin over the proxies; for checks at a threshold refit on validation at least z(p) * that refit's "
        "bootstrap noise (None with fewer than 2 retrains)"
    )
    noise_basis: Basis = Field(
        "retrains",
        description="What the margin rests on: the spread between retrains, per-image differences, (calibrated "
        "verdict) the spread between the calibration's requests and their retrains, or the noise of a threshold "
        "refit on validation when that exceeds the retrains' spread",
    )
    sample_se: float | None = Field(
        None, description="Per-image standard error of the difference (checks on images only)"
    )
    level: float | None = Field(
        None, description="Quantile probability p of the margin: the verdict's alpha shared among its checks"
    )
    status: CheckStatus
    reason: str = Field(description="Why the check came out this way, in one sentence")
    settle: str | None = Field(None, description="For an inconclusive check: what would settle it")


class Verdict(BaseModel):
    status: VerdictStatus
    summary: str = Field(description="The verdict in one sentence")
    checks: list[Check] = Field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    """How one check is made: what it compares, which way is harm, and how much is tolerated."""

    name: str
    description: str
    metric: str
    direction: Direction
    unit: Literal["rate", "z"] = "rate"


def _harm(rule: Rule, u: float, mean: float) -> float:
    if rule.direction == "lower-is-worse":
        return mean - u
    return u - mean


def _fmt(rule: Rule, x: float) -> str:
    return f"{x:.2f} SD" if rule.unit == "z" else f"{100 * x:.1f} pts"


_VARY_THRESHOLD = "a threshold refit on validation's few disease cases alone moves it"


def _status(
    rule: Rule, size: float, tolerance: float, margin: float | None, settle: str, basis: Basis = "retrains"
) -> dict[str, str | None]:
    """The rule of the module docstring: status, reason and (when inconclusive) what would settle it."""
    if margin is None:
        return {
            "status": "inconclusive",
            "settle": "use at least 3 retrains (--retrains 3)",
            "reason": "one retrain cannot show how far retraining itself varies",
        }
    if size > max(tolerance, margin):
        return {
            "status": "fail",
            "settle": None,
            "reason": f"differs by {_fmt(rule, size)}, beyond the tolerance "
            f"({_fmt(rule, tolerance)}) and beyond where a retrain lands by chance ({_fmt(rule, margin)})",
        }
    if margin > tolerance:
        return {
            "status": "inconclusive",
            "settle": settle,
            "reason": f"{_VARY_THRESHOLD if basis == 'threshold' else 'retrains alone vary'} by up to "
            f"±{_fmt(rule, margin)}, more than the ±{_fmt(rule, tolerance)} tolerance",
        }
    return {
        "status": "pass",
        "settle": None,
        "reason": f"within {_fmt(rule, tolerance)} of the retrains (retrain noise ±{_fmt(rule, margin)})",
    }


def judge_check(  # noqa: PLR0913 -- the noise options are keyword-only, each for one kind of check
    rule: Rule,
    unlearned: float | None,
    retrains: Sequence[float | None],
    tolerance: float,
    settle: str,
    level: Level,
    *,
    sample_se: float | None = None,
    per_request: int | None = None,
    threshold_se: float | None = None,
) -> Check:
    """One equivalence test (see the module docstring for the rule).

    Args:
        rule: what is compared and which direction is harmful.
        unlearned: the unlearned model's value (None if undefined).
        retrains: each retrain's value (None if undefined for that retrain).
        tolerance: the clinical tolerance, in the check's unit.
        settle: what would settle the check if it is inconclusive (more retrains, more test positives).
        level: the check's share of the verdict's alpha (its quantile).
        sample_se: the per-image standard error of the difference, for a check whose whole-model shifts cancel
            (its margin then rests on the images, not on the K retrains).
        per_request: retrains per request, when ``retrains`` hold several requests' retrains (a calibration).
        threshold_se: for a check scored at a threshold refit on validation, that refit's own noise in the
            difference (:func:`medforget.verify.noise.refit_se`): a floor under the retrains' margin.

    Returns:
        The check with its status and a one-sentence reason.
    """
    values = [float(v) for v in retrains if v is not None]
    base = {
        "name": rule.name,
        "description": rule.description,
        "metric": rule.metric,
        "unit": rule.unit,
        "direction": rule.direction,
        "unlearned": unlearned,
        "retrain_values": values,
        "tolerance": tolerance,
        "level": round(level.p, 6),
    }
    if unlearned is None or not values or len(values) < len(retrains):
        why = "undefined for the unlearned model or a retrain (e.g. no disease cases), so it cannot pass"
        return Check(
            **base, retrain_mean=None, retrain_sd=None, difference=None, noise_margin=None, status="unknown", reason=why
        )
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None
    margin, basis = noise_margin(values, level, sample_se, per_request, threshold_se)
    diff = _harm(rule, unlearned, mean)
    size = abs(diff) if rule.direction == "two-sided" else diff
    status = _status(rule, size, tolerance, margin, settle, basis)
    return Check(**base, retrain_mean=mean, retrain_sd=sd, difference=diff, noise_margin=margin, noise_basis=basis,
                 sample_se=sample_se, **status)  # fmt: skip


def verdict_of(checks: list[Check]) -> Verdict:
    """Fail if any check fails; inconclusive if any is inconclusive or unknown; pass only if all pass."""
    failed = [c.name for c in checks if c.status == "fail"]
    unsure = [c.name for c in checks if c.status in ("inconclusive", "unknown")]
    if failed:
        summary = f"Fail: the unlearned model differs from retraining on {', '.join(failed)}."
        return Verdict(status="fail", summary=summary, checks=checks)
    if unsure:
        summary = (
            f"Inconclusive: nothing failed, but {', '.join(unsure)} cannot be decided: retraining itself varies more "
            "than the tolerance, or a value is undefined (see each check)."
        )
        return Verdict(status="inconclusive", summary=summary, checks=checks)
    summary = "Pass: the unlearned model is within every tolerance of models retrained without these patients."
    return Verdict(status="pass", summary=summary, checks=checks)


UNVERIFIED = Verdict(
    status="unverified",
    summary="Not verified: no retrained baseline was compared (--baseline none), so forgetting is unproven.",
)


__all__ = ["UNVERIFIED", "Check", "CheckStatus", "Rule", "Verdict", "judge_check", "verdict_of"]
