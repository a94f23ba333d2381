"""Where the headline numbers come from: bootstrap intervals, sample difficulty and patient groups.

Every deeper analysis is a different aggregation of the per-sample outcomes each model's
evaluation kept, so none of it runs a model again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from medforget.evaluation import (
    AveragedOutcomes,
    Interval,
    ModelEval,
    SliceMetrics,
    bootstrap_ratios,
    difficulty_terciles,
    percentile_interval,
    slice_metrics,
)
from medforget.evaluation.metrics import Outcomes
from medforget.verify.metrics import METRICS

GROUP_GAP_MIN_N = 5
"""Groups smaller than this are shown but left out of the max-min gap: one sample would make it 0 or 100%."""
MAX_GROUPS = 12
"""An attribute with more distinct values (say, age in years) is left out with a note: bin it in the manifest."""
BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95


@dataclass(frozen=True)
class ModelSamples:
    """One model's per-sample facts (or the retrains' average): outcomes per set, and per forget sample whether
    (or how often) the membership attack called it a non-member."""

    sets: dict[str, Outcomes]
    mia_non_member: np.ndarray

    @classmethod
    def of(cls, ev: ModelEval) -> ModelSamples | None:
        if any(ev.outcomes(s) is None for s in SET_NAMES):
            return None
        flags = np.asarray(ev.mia.forget_scores, dtype=np.float64) < 0.5
        return cls({s: ev.outcomes(s) for s in SET_NAMES}, flags.astype(np.float64))  # type: ignore[misc]

    @classmethod
    def average(cls, evals: Sequence[ModelEval], positive: Sequence[int]) -> ModelSamples | None:
        each = [cls.of(e) for e in evals]
        if not each or any(m is None for m in each):
            return None
        sets = {s: AveragedOutcomes.of([e.outcomes(s) for e in evals], positive) for s in SET_NAMES}  # type: ignore[misc]
        return cls(sets, np.mean([m.mia_non_member for m in each if m is not None], axis=0))  # type: ignore[arg-type]


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


MODEL_NAMES = ("original", "unlearned", "retrain")
SET_NAMES = ("retain", "forget", "test")
TERCILES = ("easy", "medium", "hard")

# Gap rows (compute_gaps) -> (set, statistic) whose unlearned - retrain difference is bootstrapped.
GAP_STATISTICS: dict[str, tuple[str, str]] = {m.label: (m.set, m.stat) for m in METRICS if m.gap != "none"}


def _set_distributions(
    outcomes: dict[str, Outcomes],
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
    evals: dict[str, ModelSamples],
    positive: Sequence[int],
    seed: int,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = CI_LEVEL,
) -> tuple[ConfidenceIntervals, dict[str, Interval | None]]:
    """Per-model intervals, and paired intervals of unlearned - retrain for every gap row.

    ``evals`` maps model names (original, unlearned, optionally retrain: the retrains' per-sample average)
    to their per-sample facts. Returns the report section and ``{gap metric: interval}`` (empty without
    retrains). The intervals measure sampling noise (another draw of images of the same kind); the spread
    between retrains is measured separately, by the verdict.
    """
    dists: dict[tuple[str, str, str], np.ndarray] = {}
    for k, set_name in enumerate(SET_NAMES):
        outs = {m: e.sets[set_name] for m, e in evals.items()}
        extra: dict[tuple[str, str], np.ndarray] = {}
        if set_name == "forget":
            # The attack's verdict per forget sample; efficacy is the share called non-member.
            extra = {(m, "mia"): e.mia_non_member for m, e in evals.items()}
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


def difficulty_analysis(evals: dict[str, ModelSamples], positive: Sequence[int]) -> DifficultyAnalysis | None:
    """Forget-set results by how hard each sample was for the original model.

    Unlearning methods that push the loss up uniformly hit easy samples (which the original model
    knew well) differently from hard ones; comparing each third with retrain exposes that bias,
    which the forget-set average hides.
    """
    base = evals["original"].sets["forget"]
    if len(base) == 0:
        return None
    is_pos = base.true_positive_class(positive)
    slices = []
    for name, rows in zip(TERCILES, difficulty_terciles(base.loss), strict=True):
        mask = np.zeros(len(base), dtype=bool)
        mask[rows] = True
        per_model = {m: slice_metrics(e.sets["forget"], mask, positive) for m, e in evals.items()}
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
    evals: dict[str, ModelSamples],
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
            first = evals["original"].sets[set_name]
            is_pos = first.true_positive_class(positive)
            groups = []
            for value in [*distinct, ""]:
                mask = arr == value
                if not mask.any():
                    continue
                per_model = {m: slice_metrics(e.sets[set_name], mask, positive) for m, e in evals.items()}
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
    retrains: Sequence[ModelEval],
    attributes: dict[str, dict[str, list[str]]],
    positive: Sequence[int],
    seed: int,
) -> tuple[ReportAnalysis | None, dict[str, Interval | None]]:
    """The report's analysis section and the gap intervals, or ``(None, {})`` if an evaluation kept no
    per-sample outcomes (e.g. it was read back from a JSON report). The retrains enter as their per-sample
    average: the share of retrains that got each image right."""
    evals = {"original": ModelSamples.of(original), "unlearned": ModelSamples.of(unlearned)}
    if retrains:
        evals["retrain"] = ModelSamples.average(retrains, positive)
    if any(e is None for e in evals.values()):
        return None, {}
    facts = {k: v for k, v in evals.items() if v is not None}
    intervals, diffs = confidence_intervals(facts, positive, seed, BOOTSTRAP_RESAMPLES, CI_LEVEL)
    groups, notes = attribute_analysis(facts, attributes, positive)
    analysis = ReportAnalysis(
        intervals=intervals, difficulty=difficulty_analysis(facts, positive), attributes=groups, notes=notes
    )
    return analysis, diffs
