"""The verification report: what an unlearning run did, measured against exact unlearning.

One pydantic model (:class:`UnlearnReport`, JSON Schema via :func:`report_schema`) is
written as JSON for programs and rendered as a Rich table for people. Every number for the
unlearned model stands next to the same number for the original model and for a model
retrained from scratch without the forgotten samples (the gold standard), with the
false-negative rate (missed disease) always in view.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, PrivateAttr
from rich.console import Group
from rich.table import Table
from rich.text import Text

from medforget import __version__
from medforget.metrics import (
    Interval,
    MiaResult,
    SampleOutcomes,
    SetMetrics,
    SliceMetrics,
    bootstrap_ratios,
    difficulty_terciles,
    percentile_interval,
    slice_metrics,
)
from medforget.request import ClassCount

REPORT_FORMAT = "medforget-report/1"
GROUP_GAP_MIN_N = 5
"""Groups smaller than this are shown but left out of the max-min gap: one sample would make it 0 or 100%."""
MAX_GROUPS = 12
"""An attribute with more distinct values (say, age in years) is left out with a note: bin it in the manifest."""
BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95


class ModelEval(BaseModel):
    """One model's results on the retain, forget and test sets, and the membership attack."""

    retain: SetMetrics
    forget: SetMetrics
    test: SetMetrics
    mia: MiaResult
    # Per-sample results behind the numbers above, kept in memory (never serialised: a retain set
    # can hold tens of thousands of samples) so the report's slices and intervals reuse the one
    # inference pass per set that produced them. Empty for a ModelEval read back from JSON.
    _outcomes: dict[str, SampleOutcomes] = PrivateAttr(default_factory=dict)

    def outcomes(self, name: str) -> SampleOutcomes | None:
        """Per-sample outcomes on ``retain``, ``forget`` or ``test``, if this evaluation kept them."""
        return self._outcomes.get(name)

    def keep_outcomes(self, outcomes: dict[str, SampleOutcomes]) -> ModelEval:
        """Attach the per-sample outcomes this evaluation was computed from (returns ``self``)."""
        self._outcomes = dict(outcomes)
        return self


class Thresholds(BaseModel):
    """Limits of the verdict (fractions: 0.05 = 5 percentage points). Documented CLI defaults."""

    forget_accuracy_tolerance: float = Field(0.05, ge=0, description="|forget acc - retrain's| at most this")
    mia_tolerance: float = Field(0.10, ge=0, description="|MIA efficacy - retrain's| at most this")
    max_test_accuracy_drop: float = Field(0.03, ge=0, description="retrain test acc - unlearned at most this")
    max_fnr_increase: float = Field(0.05, ge=0, description="unlearned test FNR - retrain's at most this")


CI_DOC = (
    "95% percentile-bootstrap interval of the checked difference, signed and in the check's direction "
    "(unlearned - retrain for forget accuracy, membership inference and test FNR; retrain - unlearned for test "
    "accuracy). Paired: both models are scored on the same resampled samples. For the two-sided checks "
    "(forget accuracy, membership inference) the limit applies to |difference|. None without a baseline."
)


class Check(BaseModel):
    """One criterion of the verdict. ``passed`` is decided on the point estimate ``value``; the optional
    ``ci*`` fields (absent from older reports, which stay valid) say whether that decision is clear given
    sampling noise or could be overturned by another sample of the same size."""

    name: str
    description: str
    value: float | None
    limit: float
    passed: bool
    ci: Interval | None = Field(None, description=CI_DOC)
    ci_includes_limit: bool | None = Field(
        None, description="True if the interval reaches across the limit: the data cannot tell pass from fail"
    )
    ci_conclusion: Literal["within limit", "beyond limit", "inconclusive"] | None = Field(
        None,
        description="'within limit': the whole interval satisfies the limit; 'beyond limit': none of it does; "
        "'inconclusive': it straddles the limit",
    )


class Verdict(BaseModel):
    status: Literal["pass", "fail", "unverified"]
    summary: str = Field(description="The verdict in one sentence")
    checks: list[Check] = Field(default_factory=list)


class Gap(BaseModel):
    metric: str
    unlearned: float | None
    retrain: float | None
    gap: float | None = Field(description="|unlearned - retrain|")
    ci: Interval | None = Field(
        None, description="95% paired-bootstrap interval of unlearned - retrain (signed; gap is its absolute value)"
    )


class Cost(BaseModel):
    method_seconds: float
    retrain_seconds: float | None = Field(None, description="Wall time of the retrain baseline (as first trained)")
    speedup: float | None = Field(None, description="retrain_seconds / method_seconds")
    baseline_source: str = Field(description="'retrain (trained now)', 'retrain (cache)', a path, or 'none'")
    tuning_seconds: float | None = Field(
        None, description="One-off cost of tuning the method's parameters (medforget tune), if they were tuned"
    )
    tuning_break_even_requests: float | None = Field(
        None, description="Requests after which tuning once + unlearning is cheaper than retraining every time"
    )


class RequestSummary(BaseModel):
    request_id: str | None
    received_at: datetime | None
    reason: str | None
    n_samples: int
    n_patients: int
    counts: list[ClassCount]
    previously_forgotten: int
    warnings: list[str]


class Provenance(BaseModel):
    medforget_version: str = __version__
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    dataset: str
    dataset_fingerprint: str
    input_checkpoint: str
    input_sha256: str
    output_checkpoint: str
    output_sha256: str
    baseline_sha256: str | None
    seed: int
    device: str


class SetIntervals(BaseModel):
    """95% intervals of one model's headline rates on one set."""

    accuracy: Interval | None = None
    fnr: Interval | None = Field(None, description="Missed disease; None if the set has no positives")
    fpr: Interval | None = Field(None, description="False alarms; None if the set has no negatives")


class ModelIntervals(BaseModel):
    retain: SetIntervals
    forget: SetIntervals
    test: SetIntervals
    mia_efficacy: Interval | None = Field(
        description="Forget samples the attack calls non-members; resamples the forget samples with the fitted "
        "attack held fixed (the attack's own fitting noise is not included)"
    )


class ConfidenceIntervals(BaseModel):
    """How far each number could move with another draw of the same kind of samples."""

    level: float = Field(description="Coverage of every interval, e.g. 0.95")
    n_resamples: int
    seed: int
    method: str = Field(
        "percentile bootstrap over samples; unlearned-minus-retrain differences are paired (both models scored "
        "on the same resampled samples)",
        description="How the intervals were computed",
    )
    original: ModelIntervals
    unlearned: ModelIntervals
    retrain: ModelIntervals | None
    differences: dict[str, Interval | None] = Field(
        default_factory=dict,
        description="Paired intervals of unlearned - retrain, keyed '<set> <statistic>' (e.g. 'test fnr', "
        "'forget mia'); empty without a retrain baseline",
    )


class DifficultySlice(BaseModel):
    """One third of the forget set by how hard its samples were for the original model."""

    name: Literal["easy", "medium", "hard"]
    n: int
    n_positive: int
    loss_min: float | None = Field(description="Smallest original-model loss in this third")
    loss_max: float | None = Field(description="Largest original-model loss in this third")
    original: SliceMetrics
    unlearned: SliceMetrics
    retrain: SliceMetrics | None


class DifficultyAnalysis(BaseModel):
    basis: str = Field(
        "terciles of the original model's per-sample cross-entropy loss on the forget set (sorted, cut into three "
        "near-equal parts)",
        description="How samples were assigned to thirds",
    )
    slices: list[DifficultySlice]


class GroupSlice(BaseModel):
    """One value of a manifest attribute (e.g. sex = F) within the forget or test set."""

    group: str = Field(description="The attribute value; '(not recorded)' for samples the manifest leaves empty")
    recorded: bool = Field(description="False for the '(not recorded)' group, which no group gap counts")
    n: int
    n_positive: int
    original: SliceMetrics
    unlearned: SliceMetrics
    retrain: SliceMetrics | None


class GroupGap(BaseModel):
    """Spread between the best- and worst-served groups of one model (max - min)."""

    accuracy: float | None = Field(description=f"Over recorded groups with at least {GROUP_GAP_MIN_N} samples")
    fnr: float | None = Field(description=f"Over recorded groups with at least {GROUP_GAP_MIN_N} positives")


class AttributeAnalysis(BaseModel):
    attribute: str
    set: Literal["forget", "test"]
    groups: list[GroupSlice]
    gap_original: GroupGap
    gap_unlearned: GroupGap
    gap_retrain: GroupGap | None


class ReportAnalysis(BaseModel):
    """Where the headline numbers come from: uncertainty, sample difficulty and patient groups."""

    intervals: ConfidenceIntervals
    difficulty: DifficultyAnalysis | None = Field(description="None when the forget set is empty")
    attributes: list[AttributeAnalysis] = Field(
        default_factory=list, description="One entry per manifest attribute and set (forget, test)"
    )
    notes: list[str] = Field(default_factory=list, description="Attributes left out, and why")


class UnlearnReport(BaseModel):
    """Everything ``medforget unlearn`` measured, with what it was measured on."""

    format: str = REPORT_FORMAT
    method: str
    params: dict[str, Any]
    request: RequestSummary
    classes: list[str]
    positive: list[str] = Field(description="Disease classes, on which FNR is measured")
    fn_cost: float
    fp_cost: float
    original: ModelEval
    unlearned: ModelEval
    retrain: ModelEval | None
    gaps: list[Gap]
    average_gap: float | None = Field(description="Mean |gap| over retain, forget, test accuracy and MIA efficacy")
    thresholds: Thresholds
    verdict: Verdict
    cost: Cost
    provenance: Provenance
    analysis: ReportAnalysis | None = Field(
        None,
        description="Bootstrap intervals, forget-set difficulty terciles and attribute groups (absent in reports "
        "written before it was added)",
    )


def report_schema() -> dict[str, Any]:
    return UnlearnReport.model_json_schema()


GAP_METRICS: list[tuple[str, Any]] = [
    ("retain accuracy", lambda e: e.retain.accuracy),
    ("forget accuracy", lambda e: e.forget.accuracy),
    ("test accuracy", lambda e: e.test.accuracy),
    ("MIA efficacy", lambda e: e.mia.forget_non_member_rate),
]


def compute_gaps(unlearned: ModelEval, retrain: ModelEval | None) -> tuple[list[Gap], float | None]:
    gaps = []
    for name, get in [*GAP_METRICS, ("test FNR", lambda e: e.test.fnr)]:
        u = get(unlearned)
        r = get(retrain) if retrain is not None else None
        gaps.append(
            Gap(metric=name, unlearned=u, retrain=r, gap=abs(u - r) if u is not None and r is not None else None)
        )
    core = [g.gap for g in gaps[: len(GAP_METRICS)] if g.gap is not None]
    return gaps, (sum(core) / len(core) if retrain is not None and core else None)


def judge(unlearned: ModelEval, retrain: ModelEval | None, t: Thresholds) -> Verdict:
    """Pass only if the unlearned model forgets like retrain and is no less safe or accurate."""
    if retrain is None:
        return Verdict(
            status="unverified",
            summary="Not verified: no retrained baseline was compared (--baseline none), so forgetting is unproven.",
        )

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    fa = diff(unlearned.forget.accuracy, retrain.forget.accuracy)
    mia = diff(unlearned.mia.forget_non_member_rate, retrain.mia.forget_non_member_rate)
    drop = diff(retrain.test.accuracy, unlearned.test.accuracy)
    fnr = diff(unlearned.test.fnr, retrain.test.fnr)
    checks = [
        Check(
            name="forget accuracy",
            description="forget-set accuracy within tolerance of retrain",
            value=None if fa is None else abs(fa),
            limit=t.forget_accuracy_tolerance,
            passed=fa is not None and abs(fa) <= t.forget_accuracy_tolerance,
        ),
        Check(
            name="membership inference",
            description="forget samples look like non-members as often as for retrain",
            value=None if mia is None else abs(mia),
            limit=t.mia_tolerance,
            passed=mia is not None and abs(mia) <= t.mia_tolerance,
        ),
        Check(
            name="test accuracy",
            description="test accuracy no more than the limit below retrain",
            value=drop,
            limit=t.max_test_accuracy_drop,
            passed=drop is None or drop <= t.max_test_accuracy_drop,
        ),
        Check(
            name="missed disease (test FNR)",
            description="test false-negative rate no more than the limit above retrain",
            value=fnr,
            limit=t.max_fnr_increase,
            passed=fnr is None or fnr <= t.max_fnr_increase,
        ),
    ]
    failed = [c.name for c in checks if not c.passed]
    if not failed:
        summary = "Pass: the unlearned model matches a model retrained without these patients, within every limit."
    else:
        summary = f"Fail: the unlearned model differs from retraining on {', '.join(failed)}."
    return Verdict(status="fail" if failed else "pass", summary=summary, checks=checks)


# --------------------------------------------------------------------------- deeper analysis

MODEL_NAMES = ("original", "unlearned", "retrain")
SET_NAMES = ("retain", "forget", "test")
TERCILES = ("easy", "medium", "hard")

# Gap rows (compute_gaps) -> (set, statistic) whose unlearned - retrain difference is bootstrapped.
GAP_STATISTICS: dict[str, tuple[str, str]] = {
    "retain accuracy": ("retain", "accuracy"),
    "forget accuracy": ("forget", "accuracy"),
    "test accuracy": ("test", "accuracy"),
    "MIA efficacy": ("forget", "mia"),
    "test FNR": ("test", "fnr"),
}
# Verdict checks (judge) -> (gap row, sign of the checked difference relative to unlearned - retrain, two-sided).
CHECK_STATISTICS: dict[str, tuple[str, int, bool]] = {
    "forget accuracy": ("forget accuracy", 1, True),
    "membership inference": ("MIA efficacy", 1, True),
    "test accuracy": ("test accuracy", -1, False),
    "missed disease (test FNR)": ("test FNR", 1, False),
}


def _set_distributions(
    outcomes: dict[str, SampleOutcomes],
    positive: Sequence[int],
    extra: dict[tuple[str, str], np.ndarray],
    n_resamples: int,
    seed: int,
) -> dict[tuple[str, str], np.ndarray]:
    """Bootstrap distributions of every model's accuracy, FNR and FPR (and ``extra`` per-sample rates) on
    one set, all from the same resamples so that any difference between two models is paired."""
    keys: list[tuple[str, str]] = []
    nums: list[np.ndarray] = []
    dens: list[np.ndarray] = []
    for model, o in outcomes.items():
        pos = o.true_positive_class(positive).astype(np.float64)
        ones = np.ones(len(o))
        keys += [(model, "accuracy"), (model, "fnr"), (model, "fpr")]
        nums += [o.correct, o.missed(positive), o.false_alarm(positive)]
        dens += [ones, pos, 1.0 - pos]
    for key, flags in extra.items():
        keys.append(key)
        nums.append(flags)
        dens.append(np.ones(len(flags)))
    dist = bootstrap_ratios(np.stack(nums, 1), np.stack(dens, 1), n_resamples, seed)
    return {k: dist[:, i] for i, k in enumerate(keys)}


def confidence_intervals(
    evals: dict[str, ModelEval],
    positive: Sequence[int],
    seed: int,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = CI_LEVEL,
) -> tuple[ConfidenceIntervals, dict[str, Interval | None]]:
    """Per-model intervals, and paired intervals of unlearned - retrain for every gap row.

    ``evals`` maps model names (original, unlearned, optionally retrain) to evaluations that kept
    their per-sample outcomes. Returns the report section and ``{gap metric: interval}`` (empty
    without a retrain model).
    """
    dists: dict[tuple[str, str, str], np.ndarray] = {}
    for k, set_name in enumerate(SET_NAMES):
        outs = {m: e._outcomes[set_name] for m, e in evals.items()}
        extra: dict[tuple[str, str], np.ndarray] = {}
        if set_name == "forget":
            # The attack's verdict per forget sample; efficacy is the share called non-member.
            extra = {(m, "mia"): np.asarray(e.mia.forget_scores, dtype=np.float64) < 0.5 for m, e in evals.items()}
        for (model, stat), values in _set_distributions(outs, positive, extra, n_resamples, seed + k).items():
            dists[(set_name, model, stat)] = values

    def model_intervals(model: str) -> ModelIntervals:
        sets = {
            s: SetIntervals(
                **{st: percentile_interval(dists[(s, model, st)], level) for st in ("accuracy", "fnr", "fpr")}
            )
            for s in SET_NAMES
        }
        return ModelIntervals(**sets, mia_efficacy=percentile_interval(dists[("forget", model, "mia")], level))

    differences: dict[str, Interval | None] = {}
    if "retrain" in evals:
        for s, model, stat in dists:
            if model == "unlearned":
                paired = dists[(s, "unlearned", stat)] - dists[(s, "retrain", stat)]
                differences[f"{s} {stat}"] = percentile_interval(paired, level)
    diffs = {metric: differences[f"{s} {stat}"] for metric, (s, stat) in GAP_STATISTICS.items() if differences}
    section = ConfidenceIntervals(
        level=level,
        n_resamples=n_resamples,
        seed=seed,
        original=model_intervals("original"),
        unlearned=model_intervals("unlearned"),
        retrain=model_intervals("retrain") if "retrain" in evals else None,
        differences=differences,
    )
    return section, diffs


def difficulty_analysis(evals: dict[str, ModelEval], positive: Sequence[int]) -> DifficultyAnalysis | None:
    """Forget-set results by how hard each sample was for the original model.

    Unlearning methods that push the loss up uniformly hit easy samples (which the original model
    knew well) differently from hard ones; comparing each third with retrain exposes that bias,
    which the forget-set average hides.
    """
    base = evals["original"]._outcomes["forget"]
    if len(base) == 0:
        return None
    is_pos = base.true_positive_class(positive)
    slices = []
    for name, rows in zip(TERCILES, difficulty_terciles(base.loss), strict=True):
        mask = np.zeros(len(base), dtype=bool)
        mask[rows] = True
        per_model = {m: slice_metrics(e._outcomes["forget"], mask, positive) for m, e in evals.items()}
        slices.append(
            DifficultySlice(
                name=name,  # type: ignore[arg-type]
                n=len(rows),
                n_positive=int(is_pos[mask].sum()),
                loss_min=float(base.loss[rows].min()) if len(rows) else None,
                loss_max=float(base.loss[rows].max()) if len(rows) else None,
                original=per_model["original"],
                unlearned=per_model["unlearned"],
                retrain=per_model.get("retrain"),
            )
        )
    return DifficultyAnalysis(slices=slices)


def _group_gap(groups: list[GroupSlice], model: str) -> GroupGap:
    """max - min over recorded groups large enough for the rate to mean something."""
    accs = [getattr(g, model).accuracy for g in groups if g.recorded and g.n >= GROUP_GAP_MIN_N]
    fnrs = [getattr(g, model).fnr for g in groups if g.recorded and g.n_positive >= GROUP_GAP_MIN_N]
    accs = [a for a in accs if a is not None]
    fnrs = [f for f in fnrs if f is not None]
    return GroupGap(
        accuracy=max(accs) - min(accs) if len(accs) >= 2 else None,
        fnr=max(fnrs) - min(fnrs) if len(fnrs) >= 2 else None,
    )


def attribute_analysis(
    evals: dict[str, ModelEval],
    attributes: dict[str, dict[str, list[str]]],
    positive: Sequence[int],
) -> tuple[list[AttributeAnalysis], list[str]]:
    """Per-group accuracy and FNR for every manifest attribute on the forget and test sets.

    ``attributes`` is ``{"forget": split.attributes, "test": split.attributes}``. Unlearning can
    shift errors onto one group of patients (one sex, one hospital site) while the average stays
    put; the group gap of the unlearned model next to retrain's shows whether it did.
    """
    names = list(dict.fromkeys([*attributes.get("forget", {}), *attributes.get("test", {})]))
    out: list[AttributeAnalysis] = []
    notes: list[str] = []
    for attr in names:
        for set_name in ("forget", "test"):
            values = attributes.get(set_name, {}).get(attr)
            if not values or not any(values):
                continue
            distinct = sorted({v for v in values if v})
            if len(distinct) > MAX_GROUPS:
                notes.append(
                    f"attribute {attr!r} has {len(distinct)} distinct values on the {set_name} set (more than "
                    f"{MAX_GROUPS}); bin it in the manifest to see it by group"
                )
                continue
            arr = np.asarray(values, dtype=object)
            first = evals["original"]._outcomes[set_name]
            is_pos = first.true_positive_class(positive)
            groups = []
            for value in [*distinct, ""]:
                mask = arr == value
                if not mask.any():
                    continue
                per_model = {m: slice_metrics(e._outcomes[set_name], mask, positive) for m, e in evals.items()}
                groups.append(
                    GroupSlice(
                        group=value or "(not recorded)",
                        recorded=bool(value),
                        n=int(mask.sum()),
                        n_positive=int(is_pos[mask].sum()),
                        original=per_model["original"],
                        unlearned=per_model["unlearned"],
                        retrain=per_model.get("retrain"),
                    )
                )
            out.append(
                AttributeAnalysis(
                    attribute=attr,
                    set=set_name,  # type: ignore[arg-type]
                    groups=groups,
                    gap_original=_group_gap(groups, "original"),
                    gap_unlearned=_group_gap(groups, "unlearned"),
                    gap_retrain=_group_gap(groups, "retrain") if "retrain" in evals else None,
                )
            )
    return out, notes


def build_analysis(
    original: ModelEval,
    unlearned: ModelEval,
    retrain: ModelEval | None,
    attributes: dict[str, dict[str, list[str]]],
    positive: Sequence[int],
    seed: int,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = CI_LEVEL,
) -> tuple[ReportAnalysis | None, dict[str, Interval | None]]:
    """The report's analysis section and the gap intervals, or ``(None, {})`` if an evaluation kept no
    per-sample outcomes (e.g. it was read back from a JSON report)."""
    evals = {"original": original, "unlearned": unlearned}
    if retrain is not None:
        evals["retrain"] = retrain
    if any(set(SET_NAMES) - set(e._outcomes) for e in evals.values()):
        return None, {}
    intervals, diffs = confidence_intervals(evals, positive, seed, n_resamples, level)
    groups, notes = attribute_analysis(evals, attributes, positive)
    analysis = ReportAnalysis(
        intervals=intervals, difficulty=difficulty_analysis(evals, positive), attributes=groups, notes=notes
    )
    return analysis, diffs


def _ci_conclusion(
    ci: Interval, limit: float, two_sided: bool
) -> Literal["within limit", "beyond limit", "inconclusive"]:
    if two_sided:
        if -limit <= ci.low and ci.high <= limit:
            return "within limit"
        if ci.high < -limit or ci.low > limit:
            return "beyond limit"
        return "inconclusive"
    if ci.high <= limit:
        return "within limit"
    if ci.low > limit:
        return "beyond limit"
    return "inconclusive"


def attach_intervals(gaps: list[Gap], verdict: Verdict, diffs: dict[str, Interval | None]) -> tuple[list[Gap], Verdict]:
    """Copies of ``gaps`` and ``verdict`` with the bootstrap intervals filled in.

    The verdict itself is untouched (it stays decided on point estimates, as documented); each
    check only gains its interval and whether that interval lies within, beyond or across the limit,
    so a reader can tell a clear pass from a pass that sampling noise could overturn.
    """
    new_gaps = [g.model_copy(update={"ci": diffs.get(g.metric)}) for g in gaps]
    checks = []
    for c in verdict.checks:
        metric, sign, two_sided = CHECK_STATISTICS.get(c.name, (c.name, 1, False))
        d = diffs.get(metric)
        if d is None:
            checks.append(c)
            continue
        ci = d if sign > 0 else Interval(low=-d.high, high=-d.low)
        conclusion = _ci_conclusion(ci, c.limit, two_sided)
        checks.append(
            c.model_copy(
                update={"ci": ci, "ci_conclusion": conclusion, "ci_includes_limit": conclusion == "inconclusive"}
            )
        )
    return new_gaps, verdict.model_copy(update={"checks": checks})


# --------------------------------------------------------------------------- terminal rendering


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _pts(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def render(report: UnlearnReport) -> Group:
    """A Rich renderable: the verdict, then original / unlearned / retrain side by side."""
    r = report
    pos = ", ".join(r.positive)
    table = Table(
        title=f"{r.method} on request {r.request.request_id or '(no id)'}: "
        f"{r.request.n_samples} samples, {r.request.n_patients} patients forgotten"
    )
    for col, just in (
        ("metric", "left"),
        ("original", "right"),
        ("unlearned", "right"),
        ("retrain", "right"),
        ("gap to retrain (pts)", "right"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    models = (r.original, r.unlearned, r.retrain)
    rows: list[tuple[str, Any]] = [
        ("retain accuracy", lambda e: e.retain.accuracy),
        ("forget accuracy", lambda e: e.forget.accuracy),
        ("test accuracy", lambda e: e.test.accuracy),
        (f"test missed disease, FNR ({pos})", lambda e: e.test.fnr),
        ("test false alarms, FPR", lambda e: e.test.fpr),
        ("forget FNR", lambda e: e.forget.fnr),
        (f"test clinical cost / case (FN={r.fn_cost:g}, FP={r.fp_cost:g})", lambda e: e.test.clinical_cost),
        ("MIA efficacy (forget called non-member)", lambda e: e.mia.forget_non_member_rate),
    ]
    for name, get in rows:
        vals = [get(m) if m is not None else None for m in models]
        cost_row = "cost" in name
        fmt = (lambda v: "—" if v is None else f"{v:.3f}") if cost_row else _pct
        gap = None if vals[1] is None or vals[2] is None else abs(vals[1] - vals[2])
        style = "bold" if "FNR" in name and name.startswith("test") else None
        table.add_row(name, *(fmt(v) for v in vals), "—" if cost_row else _pts(gap), style=style)
    avg = "—" if r.average_gap is None else f"{100 * r.average_gap:.2f} pts"
    cost = r.cost
    speed = f", {cost.speedup:.1f}x faster than retraining" if cost.speedup else ""
    colour = {"pass": "green", "fail": "red", "unverified": "yellow"}[r.verdict.status]
    lines = [
        Text(r.verdict.summary, style=f"bold {colour}"),
        table,
        Text(
            f"average gap to retrain: {avg}   method time: {cost.method_seconds:.1f} s{speed} "
            f"(baseline: {cost.baseline_source})"
        ),
    ]
    if cost.tuning_seconds is not None:
        pays = (
            f"; it pays for itself after {cost.tuning_break_even_requests:.1f} requests"
            if cost.tuning_break_even_requests is not None
            else "; this method is not faster than retraining, so tuning never pays for itself"
        )
        lines.append(Text(f"parameters tuned once (medforget tune) for {cost.tuning_seconds:.0f} s{pays}"))
    for c in r.verdict.checks:
        mark = "✓" if c.passed else "✗"
        lines.append(
            Text(
                f"  {mark} {c.name}: {_pts(c.value)} pts (limit {_pts(c.limit)})", style="green" if c.passed else "red"
            )
        )
    for w in r.request.warnings:
        lines.append(Text(f"warning: {w}", style="yellow"))
    return Group(*lines)
