"""``medforget tune``: pay a method's hyper-parameter cost once, on a proxy request, and reuse it.

Approximate unlearning is sensitive to its learning rate, epochs, mask fraction...; the
published numbers come from per-request tuning against a retrained model, which a hospital
cannot afford for every request. Tuning once on a *proxy* is the practical answer: a random
forget set of the expected size drawn from the training split, with its own retrain. Optuna's
TPE sampler minimises the average gap to that retrain subject to a clinical constraint (the
missed-disease rate may not rise more than ``fnr_slack`` above the retrain's).

The validation split plays the role of the test set during tuning, so the test set stays
untouched for the reports that follow. The result is a :class:`MethodConfig` file that
``medforget unlearn --config`` and study configs read; it records what tuning cost, so every
later report can say how many requests amortise it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from medforget import progress
from medforget.baseline import train_or_load
from medforget.config import MethodConfig, TuneSettings, TuningRecord
from medforget.data import DataPaths, Split
from medforget.errors import MedforgetError, first_problem
from medforget.evaluation import EvalContext, ModelEval, evaluate
from medforget.fileio import atomic_path, check_writable, read_document
from medforget.methods import get_method
from medforget.request import design_request
from medforget.session import Task, open_task
from medforget.verify.metrics import average_gap, metric_rows

log = logging.getLogger(__name__)


def read_method_config(path: str | Path, method: str | None = None) -> MethodConfig:
    """Read a method config (JSON, TOML or YAML). Besides the ``{method, params}`` form written by ``tune``,
    a table named after the method or a flat table of parameters is accepted."""
    path = Path(path)
    data = read_document(path, "config")
    if not isinstance(data, dict):
        raise MedforgetError(f"config {path} must hold a table of parameters")
    if "params" in data:
        if method is not None and data.get("method") not in (None, method):
            raise MedforgetError(f"config {path} is for method {data['method']!r}, not {method!r}")
        data.setdefault("method", method)
        try:
            return MethodConfig.model_validate(data)
        except ValidationError as exc:
            raise MedforgetError(f"config {path}: {first_problem(exc, 'config')}") from None
    if method is None:
        raise MedforgetError(f"config {path} does not say which method it is for")
    params = data[method] if isinstance(data.get(method), dict) else data
    return MethodConfig(method=method, params=dict(params))


def method_config_schema() -> dict[str, Any]:
    """The published JSON Schema of a method config (``medforget tune`` output, ``unlearn --config`` input)."""
    return MethodConfig.model_json_schema()


def search_space(method: str, only: list[str] | None = None) -> dict[str, tuple[str, float, float]]:
    """The tunable parameters of ``method`` and their ranges, as the method declares them (``Params.SEARCH``)."""
    space = get_method(method).search_space
    if only:
        unknown = [k for k in only if k not in space]
        if unknown:
            raise MedforgetError(
                f"cannot tune {', '.join(unknown)} for {method}; tunable: {', '.join(space) or 'nothing'}"
            )
        space = {k: space[k] for k in only}
    if not space:
        raise MedforgetError(f"method {method} has no tunable parameters")
    return space


def _check(settings: TuneSettings, out: Path, force: bool) -> dict[str, tuple[str, float, float]]:
    """Everything that can refuse the job, before any training; returns the space to search."""
    if out.suffix.lower() != ".json":
        raise MedforgetError(f"the tuned config is written as JSON: name it *.json, not {out.name}")
    check_writable(out, force)
    spec = get_method(settings.method)
    if settings.method == "retrain":
        raise MedforgetError("retrain is exact unlearning: there is nothing to tune")
    space = search_space(settings.method, settings.search)
    spec.parse_params(settings.fixed)  # a bad fixed parameter fails now, not after the retrain
    space = {k: v for k, v in space.items() if k not in settings.fixed}  # a fixed parameter is not searched
    if not space:
        raise MedforgetError("every tunable parameter is fixed with --param: nothing left to search")
    return space


@dataclass
class _Proxy:
    """The proxy request, its retrain and how every trial is scored against it."""

    task: Task
    sets: dict[str, Split]
    ctx: EvalContext
    base_eval: ModelEval
    base_seconds: float
    reused_seconds: float


def _proxy(checkpoint: str | Path, settings: TuneSettings, data: DataPaths, key: bytes | None) -> _Proxy:
    from medforget.checkpoint import load_checkpoint
    from medforget.data import load_from_spec

    ckpt = load_checkpoint(checkpoint, key=key)
    dataset = load_from_spec(ckpt.meta.dataset.spec, data.data_root, data.manifest)
    request = design_request(dataset, settings.design, settings.fraction, settings.seed)
    task = open_task(ckpt, request, data, settings.device, key, allow_class_removal=True)
    log.info("tune %s: proxy %s forget set of %d samples; retrain baseline first",
             settings.method, settings.design, len(task.forget))  # fmt: skip
    recipe = ckpt.meta.train_config
    base = train_or_load(task.dataset, recipe, task.retain, recipe.seed, task.device)
    val = task.dataset.val  # validation stands in for test, so test figures in later reports stay honest
    sets = {"retain": task.retain, "forget": task.forget, "test": val, "val": val}
    ctx = EvalContext(
        classes=task.dataset.classes,
        positive=task.dataset.positive,
        seed=settings.seed,
        target_sensitivity=task.target_sensitivity(),
    )
    base_eval = evaluate(base.model, sets, ctx, task.device)
    seconds = base.seconds or 0.0
    return _Proxy(task, sets, ctx, base_eval, seconds, seconds if base.cached else 0.0)


def suggest(trial: Any, space: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    """The parameters of one Optuna trial: the fixed ones and a draw from the search space."""
    values: dict[str, Any] = dict(fixed)
    for name, (kind, lo, hi) in space.items():
        if kind == "int":
            values[name] = trial.suggest_int(name, int(lo), int(hi))
        else:
            values[name] = trial.suggest_float(name, lo, hi, log=kind == "log")
    return values


def score(proxy: _Proxy, settings: TuneSettings, values: dict[str, Any]) -> tuple[float, float, float]:
    """Unlearn the proxy with ``values``: the average gap to the proxy retrain, the FNR increase, the method's time.

    An undefined FNR (no positives in validation) is not "no increase": it is infinite, failing the constraint.
    """
    spec = get_method(settings.method)
    parsed = spec.parse_params(values)
    t0 = time.perf_counter()
    model = spec(proxy.task.method_task(settings.seed), parsed)
    seconds = time.perf_counter() - t0
    ev = evaluate(model, proxy.sets, proxy.ctx, proxy.task.device)
    avg = average_gap(metric_rows(ev, ev, [proxy.base_eval], {}))
    fnr, base_fnr = ev.test.fnr, proxy.base_eval.test.fnr
    fnr_up = fnr - base_fnr if fnr is not None and base_fnr is not None else math.inf
    return float(avg if avg is not None else 1.0), fnr_up, seconds


def mark(trial: Any, fnr_up: float, fnr_slack: float) -> None:
    """Record a trial's FNR increase and its constraint violation where the sampler reads them."""
    import optuna

    trial.set_user_attr("fnr_increase", None if math.isinf(fnr_up) else fnr_up)
    violation = fnr_up - fnr_slack if not math.isinf(fnr_up) else 1.0
    if hasattr(optuna.trial.Trial, "set_constraint"):  # Optuna >= 5
        trial.set_constraint("fnr_increase", violation)
    else:
        trial.set_user_attr("constraint", [violation])


def _objective(proxy: _Proxy, settings: TuneSettings, space: dict[str, Any], seconds: dict[int, float]) -> Any:
    def objective(trial: Any) -> float:
        gap, fnr_up, seconds[trial.number] = score(proxy, settings, suggest(trial, space, settings.fixed))
        mark(trial, fnr_up, settings.fnr_slack)
        return gap

    return objective


def new_study(settings: TuneSettings, space: dict[str, Any]) -> Any:
    """The Optuna study of a search: TPE seeded by ``settings.seed``, the method's defaults as the first trial."""
    import optuna

    native_constraints = hasattr(optuna.trial.Trial, "set_constraint")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=settings.seed,
        n_startup_trials=min(5, settings.trials),
        **({} if native_constraints else {"constraints_func": lambda t: t.user_attrs.get("constraint", [1.0])}),
    )
    study = optuna.create_study(direction="minimize", sampler=sampler)
    defaults = get_method(settings.method).params().model_dump()
    study.enqueue_trial({k: v for k, v in defaults.items() if k in space})  # the defaults are always a candidate
    return study


def tune(
    checkpoint: str | Path,
    settings: TuneSettings,
    out: str | Path,
    data: DataPaths | None = None,
    key: bytes | None = None,
    force: bool = False,
) -> MethodConfig:
    """Search ``settings.method``'s parameters on a proxy request; write and return the best configuration.

    Args:
        checkpoint: the trained model.
        settings: method, trials, proxy design and size, FNR constraint, search space, seed.
        out: the JSON config to write (``unlearn --config`` reads it).
        data: where the data and manifest are.
        key: the hospital's secret, for a keyed checkpoint.
        force: replace an existing ``out``.

    Returns:
        The tuned parameters with their tuning record (trials, best gap, cost, break-even).
    """
    out = Path(out)
    space = _check(settings, out, force)
    start = time.perf_counter()
    proxy = _proxy(checkpoint, settings, data or DataPaths(), key)
    seconds: dict[int, float] = {}
    study = new_study(settings, space)
    with progress.track(f"tune {settings.method}", settings.trials) as job:

        def tick(st: Any, tr: Any) -> None:
            best = _best(st, settings.fnr_slack)
            job.advance(
                1, f"best gap {100 * best.value:.1f} pts" if best is not None and best.value is not None else ""
            )

        study.optimize(_objective(proxy, settings, space, seconds), n_trials=settings.trials, callbacks=[tick])
    return write_config(_record(study, settings, space, proxy, seconds, time.perf_counter() - start), out, force)


def write_config(result: MethodConfig, out: Path, force: bool) -> MethodConfig:
    """Write a tuned configuration atomically; returns it."""
    with atomic_path(out, force) as tmp:
        tmp.write_text(result.model_dump_json(indent=2))
    return result


def _record(
    study: Any, settings: TuneSettings, space: dict[str, Any], proxy: _Proxy, seconds: dict[int, float], wall: float
) -> MethodConfig:
    best = _best(study, settings.fnr_slack)
    if best is None:
        raise MedforgetError("no trial completed")
    feasible = [t for t in study.trials if _fnr_up(t) <= settings.fnr_slack]
    if not feasible:
        log.warning("no trial kept the FNR within %.3f of retrain's; writing the trial with the smallest FNR increase",
                    settings.fnr_slack)  # fmt: skip
    tuned = get_method(settings.method).parse_params({**settings.fixed, **best.params}).model_dump()
    total = wall + proxy.reused_seconds
    saved = proxy.base_seconds - seconds[best.number]
    ckpt = proxy.task.checkpoint
    record = TuningRecord(
        created_at=datetime.now(timezone.utc),
        checkpoint_sha256=ckpt.sha256,
        dataset=proxy.task.dataset.name,
        proxy=f"{settings.design} {100 * settings.fraction:g}% of the training split, seed {settings.seed}",
        n_proxy_forget=len(proxy.task.forget),
        constraint=f"validation FNR - retrain's <= {settings.fnr_slack}",
        fnr_slack=settings.fnr_slack,
        trials=len(study.trials),
        feasible_trials=len(feasible),
        best_trial=best.number,
        best_average_gap=round(float(best.value), 5),
        best_fnr_increase=best.user_attrs.get("fnr_increase"),
        search_space={k: list(v) for k, v in space.items()},
        tuning_seconds=round(total, 2),
        retrain_seconds=round(proxy.base_seconds, 2),
        method_seconds=round(seconds[best.number], 2),
        break_even_requests=round(total / saved, 2) if saved > 0 else None,
    )
    return MethodConfig(method=settings.method, params=tuned, tuning=record)


def _fnr_up(trial: Any) -> float:
    v = trial.user_attrs.get("fnr_increase")
    return math.inf if v is None else v


def _best(study: Any, fnr_slack: float) -> Any:
    """The lowest-gap trial that meets the FNR constraint; without one, the one closest to meeting it."""
    done = [t for t in study.trials if t.value is not None]
    if not done:
        return None
    ok = [t for t in done if _fnr_up(t) <= fnr_slack]
    if ok:
        return min(ok, key=lambda t: t.value)
    return min(done, key=lambda t: (_fnr_up(t), t.value))
