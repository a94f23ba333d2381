"""``medforget calibrate``: measure once what retraining does on this dataset, then judge requests without it.

A hospital cannot retrain K models for every deletion request just to check one. What the K retrains
tell the verdict, though, depends on the dataset and the recipe more than on the request: how far test
accuracy, AUROC and missed disease move when a model is retrained without a request of this size and
kind (the noise floor), how often the membership attack calls unseen images non-members, and how
forgotten images compare with unseen images of the same classes in a retrained model's eyes. So
:func:`calibrate` draws a few proxy requests like the ones expected, retrains each a few times, and
records those distributions. ``unlearn --baseline calibrated`` then judges a request with the
unlearned and the original model alone (:func:`judge_calibrated`):

* **forget confidence**: after each model's bias refit, the AUC of the forgotten images' confidence
  against unseen test images of the same classes must lie where retrained models put it (near 0.5: the
  model cannot tell them apart; well above, it still remembers them; well below, it forgot them so hard
  they stand out); its noise margin rests on the images (DeLong's standard error of the AUC), since a
  shift of the whole model moves forgotten and unseen images alike;
* **membership inference**: the attack's non-member rate on the forgotten images, as for a retrain;
* **test accuracy, AUROC, missed disease at the operating point**: the change from the original model
  must be one a retrain would make, within the calibrated noise floor. A request is not one of the
  proxies: which patients leave moves these numbers as much as the retrain's seed, so their margin is
  where a retrain of *another* request lands (:func:`~medforget.verify.noise.requests_margin`: the
  spread between the proxies and within them; with 2 proxies it is wide unless they agree).

Each check is the same equivalence test as the full verdict (:mod:`medforget.verify.verdict`), against
the calibrated distribution instead of this request's own retrains.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from medforget import __version__, progress
from medforget.baseline import retrain_distribution, retrain_seeds
from medforget.config import CalibrateSettings, Thresholds
from medforget.data import DataPaths
from medforget.errors import MedforgetError
from medforget.evaluation import MEMO, EvalContext, ModelEval
from medforget.recalibrate import retrain_eval
from medforget.session import Task
from medforget.verify.noise import Level
from medforget.verify.verdict import Check, Rule, Verdict, judge_check, verdict_of

log = logging.getLogger(__name__)

CALIBRATION_FORMAT = "medforget-calibration/1"


class Distribution(BaseModel):
    """Values one statistic took over the calibration's retrains."""

    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.mean(self.values)


class Calibration(BaseModel):
    """What retraining does on one dataset and recipe, for requests of one size and kind."""

    format: str = CALIBRATION_FORMAT
    medforget_version: str = __version__
    created_at: datetime
    checkpoint_sha256: str = Field(description="The original model the shifts are measured from")
    dataset_fingerprint: str
    design: str = Field(description="How the proxy requests were drawn (random, positive-heavy, ...)")
    fraction: float = Field(description="Their size, as a share of the training split")
    proxies: int
    retrains_per_proxy: int
    seconds: float = Field(description="Wall time of the calibration (including retrains trained now)")
    test_accuracy_shift: Distribution = Field(description="retrain - original test accuracy")
    test_auroc_shift: Distribution = Field(description="retrain - original test AUROC")
    test_fnr_op_shift: Distribution = Field(description="retrain - original test FNR at the operating point")
    forget_auc: Distribution = Field(description="Retrains' AUC of forget vs unseen-test confidence, class-matched")
    mia: Distribution = Field(description="Retrains' MIA efficacy on the proxy forget sets")
    forget_val_auc: Distribution | None = Field(
        None,
        description="Retrains' AUC of forget vs validation confidence after a bias refit on validation: what the "
        "methods' stopping rule measures, and its target with stop_target 'calibrated' (absent from older "
        "calibrations)",
    )


def _op_fnr(e: ModelEval) -> float | None:
    return e.at_operating_point.fnr if e.at_operating_point else None


def _shift(get: object, retrains: list[ModelEval], original: ModelEval) -> list[float]:
    f = get  # type: ignore[assignment]
    base = f(original)  # type: ignore[operator]
    return [f(r) - base for r in retrains if f(r) is not None and base is not None]  # type: ignore[operator]


def context(task: Task, seed: int = 0) -> EvalContext:
    """The evaluation context of a task: its classes, and the original model's validation sensitivity as target."""
    ds = task.dataset
    target = task.original_val_sensitivity()
    return EvalContext(classes=ds.classes, positive=ds.positive, seed=seed, target_sensitivity=target)


def _proxy_values(task: Task, retrains_per_proxy: int, workers: int) -> dict[str, list[float]]:
    """Every calibrated statistic for one proxy request's retrains, recalibrated as unlearned models are."""
    recipe = task.checkpoint.meta.train_config
    seeds = retrain_seeds(recipe.seed, retrains_per_proxy)
    retrains = retrain_distribution(task.dataset, recipe, task.retain_set(), seeds, task.device, workers)
    ctx, sets, ids = context(task), task.eval_sets(), task.forget.sample_ids
    original = MEMO.evaluate(
        task.checkpoint.sha256, task.original, sets, ctx, task.device, ids, task.recorded_eval_logits()
    )
    evals = [retrain_eval(task, r, ctx) for r in retrains]
    return {
        "test_accuracy_shift": _shift(lambda e: e.test.accuracy, evals, original),
        "test_auroc_shift": _shift(lambda e: e.test_auroc, evals, original),
        "test_fnr_op_shift": _shift(_op_fnr, evals, original),
        "forget_auc": [e.forget_auc for e in evals if e.forget_auc is not None],
        "mia": [e.mia.forget_non_member_rate for e in evals],
        "forget_val_auc": [e.forget_val_auc for e in evals if e.forget_val_auc is not None],
    }


def calibrate(
    tasks: list[Task], design: str, fraction: float, retrains_per_proxy: int, workers: int = 0
) -> Calibration:
    """Calibrate from proxy requests opened against one checkpoint (see the module docstring).

    Args:
        tasks: one opened proxy request per draw (same checkpoint and data).
        design: how they were drawn, recorded so a request of another kind is judged with care.
        fraction: their size as a share of the training split.
        retrains_per_proxy: retrains of each proxy (their seeds are the verdict's: recipe seed + 1, + 2, ...).
        workers: parallel retrain processes on CPU (0: one per core).

    Returns:
        The calibration, to write and to pass to ``unlearn --baseline calibrated --calibration FILE``.
    """
    if not tasks:
        raise MedforgetError("calibration needs at least one proxy request")
    start = time.perf_counter()
    pooled: dict[str, list[float]] = {}
    with progress.track("calibration proxies", len(tasks)) as bar:
        for task in tasks:
            for k, v in _proxy_values(task, retrains_per_proxy, workers).items():
                pooled.setdefault(k, []).extend(v)
            bar.advance(1)
    first = tasks[0]
    return Calibration(
        created_at=datetime.now(timezone.utc),
        checkpoint_sha256=first.checkpoint.sha256,
        dataset_fingerprint=first.checkpoint.meta.dataset.fingerprint,
        design=design,
        fraction=fraction,
        proxies=len(tasks),
        retrains_per_proxy=retrains_per_proxy,
        seconds=round(time.perf_counter() - start, 2),
        **{k: Distribution(values=[round(x, 6) for x in v]) for k, v in pooled.items()},
    )


def calibrate_checkpoint(
    checkpoint: str | Path, settings: CalibrateSettings, data: DataPaths | None = None, key: bytes | None = None
) -> Calibration:
    """Draw ``settings.proxies`` proxy requests from ``checkpoint``'s training data and calibrate on them.

    Args:
        checkpoint: the deployed model.
        settings: proxy design and size, how many proxies and retrains, seed, workers, device.
        data: where the data is.
        key: the hospital's secret (for a keyed or signed checkpoint).

    Returns:
        The calibration (not yet written).
    """
    from medforget.checkpoint import load_checkpoint
    from medforget.data import load_from_spec
    from medforget.request import design_request
    from medforget.session import open_task

    ck = load_checkpoint(checkpoint, key=key)
    d = data or DataPaths()
    dataset = load_from_spec(ck.meta.dataset.spec, d.data_root, d.manifest)
    tasks = []
    for i in range(settings.proxies):
        request = design_request(dataset, settings.design, settings.fraction, settings.seed + i)
        tasks.append(open_task(ck, request, d, settings.device, key, allow_class_removal=True))
    return calibrate(tasks, settings.design, settings.fraction, settings.retrains, settings.workers)


def read_calibration(path: Path) -> Calibration:
    """Read a calibration file; a missing or invalid file is one line (exit 2)."""
    from pydantic import ValidationError

    from medforget.errors import first_problem

    try:
        return Calibration.model_validate_json(Path(path).read_text())
    except OSError as exc:
        raise MedforgetError(f"cannot read calibration {path}: {exc.strerror}") from None
    except ValidationError as exc:
        raise MedforgetError(f"calibration {path}: {first_problem(exc, 'calibration')}") from None


CONFIDENCE = Rule(
    "forget confidence (calibrated)",
    "how well the model's confidence tells the forgotten images from unseen images of the same classes (AUC), "
    "against where retrained models put it",
    "forget vs unseen AUC",
    "two-sided",
)
MEMBERSHIP = Rule(
    "membership inference (calibrated)",
    "forgotten images called non-members as often as retrained models call them",
    "MIA efficacy",
    "two-sided",
)
QUALITY = Rule(
    "test accuracy (calibrated)",
    "change in test accuracy, as a retrain would change it",
    "test accuracy",
    "lower-is-worse",
)
RANKING = Rule(
    "test AUROC (calibrated)", "change in test AUROC, as a retrain would change it", "test AUROC", "lower-is-worse"
)
SAFETY = Rule(
    "missed disease (calibrated)",
    "change in missed disease at the operating point, as a retrain would change it",
    "test FNR at the operating point",
    "higher-is-worse",
)
SETTLE = "calibrate with more proxies or retrains (medforget calibrate --proxies, --retrains)"
CALIBRATED_RULES = (CONFIDENCE, MEMBERSHIP, QUALITY, RANKING, SAFETY)


def judge_calibrated(unlearned: ModelEval, original: ModelEval, cal: Calibration, t: Thresholds) -> Verdict:
    """The verdict without retraining: the unlearned model against the calibrated retrain distributions.

    Its five checks share the verdict's ``alpha`` as the full verdict's six do (:mod:`medforget.verify.noise`).
    """

    def shifted(value: float | None, base: float | None) -> float | None:
        return None if value is None or base is None else value - base

    def check(rule: Rule, value: float | None, dist: Distribution, tolerance: float, se: float | None = None) -> Check:
        level = Level(t.alpha, len(CALIBRATED_RULES), rule.direction == "two-sided")
        complete = len(dist.values) == cal.proxies * cal.retrains_per_proxy  # else the values cannot be grouped
        per_request = cal.retrains_per_proxy if complete else None
        return judge_check(rule, value, dist.values, tolerance, SETTLE, level, sample_se=se, per_request=per_request)

    # The confidence AUC compares forgotten with unseen images inside one model, so a whole-model shift
    # cancels and its noise is the images' (DeLong): this request's, and the calibration's mean over its
    # proxies' forget sets (its retrains of one proxy share their images).
    auc_se = unlearned.forget_auc_se
    image_se = None if auc_se is None else auc_se * math.sqrt(1 + 1 / cal.proxies)
    checks: list[Check] = [
        check(CONFIDENCE, unlearned.forget_auc, cal.forget_auc, t.forget_auc_tolerance, image_se),
        check(MEMBERSHIP, unlearned.mia.forget_non_member_rate, cal.mia, t.mia_tolerance),
        check(
            QUALITY, shifted(unlearned.test.accuracy, original.test.accuracy), cal.test_accuracy_shift,
            t.max_test_accuracy_drop,
        ),
        check(RANKING, shifted(unlearned.test_auroc, original.test_auroc), cal.test_auroc_shift, t.max_auroc_drop),
        check(
            SAFETY, shifted(_op_fnr(unlearned), _op_fnr(original)), cal.test_fnr_op_shift, t.max_fnr_increase
        ),
    ]  # fmt: skip
    return verdict_of(checks)


def stop_auc_target(cal: Calibration) -> float:
    """Where the calibration's retrains put the forget samples' AUC against validation: the target of a stopping
    rule with ``stop_target="calibrated"`` (refused for a calibration that did not measure it)."""
    if cal.forget_val_auc is None or not cal.forget_val_auc.values:
        raise MedforgetError(
            "this calibration has no forget-vs-validation AUC of its retrains (written by an older medforget): "
            "run 'medforget calibrate' again for stop_target 'calibrated'"
        )
    return cal.forget_val_auc.mean


def check_fits(cal: Calibration, task: Task, fraction: float) -> list[str]:
    """Refusals (a calibration of other data or another model) and warnings (a request unlike the proxies)."""
    if cal.dataset_fingerprint != task.checkpoint.meta.dataset.fingerprint:
        raise MedforgetError("the calibration was measured on other data than this model's")
    warnings = []
    if cal.checkpoint_sha256 != task.checkpoint.sha256:
        warnings.append("the calibration was measured from another checkpoint (e.g. before earlier deletions)")
    if not 0.5 <= fraction / cal.fraction <= 2:
        warnings.append(
            f"this request removes {100 * fraction:.1f}% of the training data, the calibration's proxies "
            f"{100 * cal.fraction:.1f}%: its noise floor may not fit"
        )
    return warnings


def summary_values(cal: Calibration) -> dict[str, float]:
    """Means and spreads, for people reading the calibration."""
    out = {}
    for name in ("test_accuracy_shift", "test_auroc_shift", "test_fnr_op_shift", "forget_auc", "mia", "forget_val_auc"):
        d: Distribution | None = getattr(cal, name)
        if d is None:
            continue
        out[f"{name} mean"] = d.mean
        out[f"{name} sd"] = float(np.std(d.values, ddof=1)) if len(d.values) > 1 else float("nan")
    return out


__all__ = [
    "Calibration",
    "calibrate",
    "calibrate_checkpoint",
    "check_fits",
    "judge_calibrated",
    "read_calibration",
    "stop_auc_target",
]
