"""The six checks of the verdict: what each compares, in which direction harm lies, and how to settle it.

Each check reads one number from every model's evaluation (or, for the per-sample evidence, from the
leave-one-out comparison of the retrains) and hands it to :func:`medforget.verify.verdict.judge_check`,
with its share of the verdict's ``alpha`` and, where the number is an average over images, the
image-by-image standard error of its difference, or, where it is scored at a threshold refit on
validation, that refit's own noise (:mod:`medforget.verify.noise`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medforget.config import Thresholds
from medforget.evaluation import ModelEval
from medforget.evaluation.metrics import matched_weights
from medforget.verify.evidence import SampleEvidence
from medforget.verify.noise import Level, per_sample_se, refit_se
from medforget.verify.verdict import Check, Rule, Verdict, judge_check, verdict_of

Getter = Callable[[ModelEval], float | None]
N_CHECKS = 6

FORGET = Rule(
    "forget accuracy",
    "accuracy on the forgotten images minus accuracy on unseen test images of the same classes, after each "
    "model's own threshold refit on validation: forgetting that survives the refit, and that a model which is "
    "simply better or worse on the whole class does not fake",
    "forget accuracy - matched test accuracy (bias refit)",
    "two-sided",
)
EVIDENCE = Rule(
    "forget evidence",
    "per image, the model's confidence against the retrains', on the forgotten images minus unseen test images of "
    "the same classes: under- and over-forgetting both count",
    "mean z-score difference, forget - matched test",
    "two-sided",
    unit="z",
)
PRIVACY = Rule(
    "membership inference",
    "forgotten images look like non-members to a membership attack as often as for the retrains",
    "MIA efficacy",
    "two-sided",
)
QUALITY = Rule(
    "test accuracy", "accuracy on new patients no lower than the retrains'", "test accuracy", "lower-is-worse"
)
RANKING = Rule(
    "test AUROC",
    "how well the model ranks disease above healthy on new patients, whatever the threshold",
    "test AUROC",
    "lower-is-worse",
)
SAFETY = Rule(
    "missed disease (test FNR)",
    "missed disease on new patients, at the operating point that gives the original model's validation "
    "sensitivity (so a shifted threshold cannot hide or fake it)",
    "test FNR at the operating point",
    "higher-is-worse",
)


def _settle(k: int, extra: str = "") -> str:
    more = max(2 * k, k + 3)
    return f"more retrains narrow where a retrain lands by chance (e.g. --retrains {more}){extra}"


def judge(
    unlearned: ModelEval,
    retrains: list[ModelEval],
    evidence: SampleEvidence | None,
    t: Thresholds,
    recalibrated: bool = True,
) -> Verdict:
    """All six checks of the unlearned model against the retrain distribution, and the verdict.

    Args:
        unlearned: the unlearned model's evaluation.
        retrains: the K retrains' evaluations (K >= 2 to measure noise; 3 or more recommended).
        evidence: the per-sample evidence (None without at least 3 retrains: that check is then unknown).
        t: the clinical tolerances and the verdict's alpha.
        recalibrated: whether the models' thresholds were refit on validation (``unlearn``'s default): test
            accuracy is then scored at that threshold, and its margin includes the refit's noise.

    Returns:
        The verdict with one check per criterion.
    """
    k = len(retrains)
    op = unlearned.operating_point
    val_pos = f", or a validation split with more disease cases (it has {op.val_positives})" if op else ""

    def check(rule: Rule, get: Getter, tolerance: float, settle: str, **noise: float | None) -> Check:
        level = Level(t.alpha, N_CHECKS, rule.direction == "two-sided")
        return judge_check(rule, get(unlearned), [get(r) for r in retrains], tolerance, settle, level, **noise)

    op_fnr: Getter = lambda e: e.at_operating_point.fnr if e.at_operating_point else None  # noqa: E731
    checks = [
        check(
            FORGET, forget_gap, t.forget_accuracy_tolerance, _settle(k), sample_se=_forget_gap_se(unlearned, retrains)
        ),
        _evidence_check(evidence, t, k),
        check(PRIVACY, lambda e: e.mia.forget_non_member_rate, t.mia_tolerance, _settle(k)),
        check(
            QUALITY,
            lambda e: e.test.accuracy,
            t.max_test_accuracy_drop,
            _settle(k, val_pos if recalibrated else ""),
            threshold_se=_threshold_se(unlearned, retrains, "accuracy_sd") if recalibrated else None,
        ),
        check(RANKING, lambda e: e.test_auroc, t.max_auroc_drop, _settle(k)),
        check(
            SAFETY,
            op_fnr,
            t.max_fnr_increase,
            _settle(
                k, f", and so would a test set with more disease cases (it has {unlearned.test.n_positive})" + val_pos
            ),
            threshold_se=_threshold_se(unlearned, retrains, "fnr_sd"),
        ),
    ]
    return verdict_of(checks)


def _threshold_se(unlearned: ModelEval, retrains: list[ModelEval], stat: str) -> float | None:
    """The operating-point refit's own noise in the difference (None if a model's evaluation lacks it)."""
    sds = [getattr(e.at_operating_point, stat) if e.at_operating_point else None for e in [unlearned, *retrains]]
    return refit_se(sds[0], sds[1:])


def forget_gap(e: ModelEval) -> float | None:
    """Forget accuracy minus class-matched test accuracy, both after the bias refit (about 0 for a retrain)."""
    r = e.refit
    if r is None or r.forget_accuracy is None or r.matched_test_accuracy is None:
        return None
    return r.forget_accuracy - r.matched_test_accuracy


def _forget_gap_se(unlearned: ModelEval, retrains: list[ModelEval]) -> float | None:
    """Per-image standard error of the forget-gap difference (None unless every model kept its per-image results)."""
    models = [unlearned, *retrains]
    outcomes = [(e.outcomes("forget@refit"), e.outcomes("test@refit")) for e in models]
    if len(retrains) < 2 or any(f is None or t is None for f, t in outcomes):
        return None
    forget, test = outcomes[0]
    weights = np.r_[np.full(len(forget), 1.0 / max(len(forget), 1)), matched_weights(forget.labels, test.labels)]
    scores = np.stack([np.r_[f.correct, t.correct].astype(np.float64) for f, t in outcomes])  # type: ignore[union-attr]
    return per_sample_se(scores[0], scores[1:], weights)


def _evidence_check(evidence: SampleEvidence | None, t: Thresholds, k: int) -> Check:
    level = Level(t.alpha, N_CHECKS, two_sided=True)
    if evidence is None or len(evidence.retrain_differences) < 2:
        unknown = judge_check(EVIDENCE, None, [None], t.evidence_tolerance, _settle(k), level)
        if k < 3:  # each retrain's own difference is taken against the others: two others at least
            why = "needs at least 3 retrains (--retrains 3), so it cannot pass"
            unknown = unknown.model_copy(update={"reason": why})
        return unknown
    return judge_check(
        EVIDENCE,
        evidence.difference,
        evidence.retrain_differences,
        t.evidence_tolerance,
        _settle(k),
        level,
        sample_se=evidence.sample_se,
    )


__all__ = ["EVIDENCE", "FORGET", "PRIVACY", "QUALITY", "RANKING", "SAFETY", "forget_gap", "judge"]
