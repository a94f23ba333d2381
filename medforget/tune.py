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

import copy
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medforget import __version__
from medforget.errors import MedforgetError, first_problem
from medforget.fileio import atomic_path, check_writable, read_document

CONFIG_FORMAT = "medforget.method-config/1"

# Ranges by parameter name: names are consistent across methods, so one table serves all of them.
SEARCH_SPACE: dict[str, tuple[Literal["log", "float", "int"], float, float]] = {
    "lr": ("log", 1e-5, 1e-3),
    "epochs": ("int", 1, 8),
    "mask_fraction": ("float", 0.1, 0.9),
    "entropy_weight": ("log", 0.1, 5.0),
    "retain_ratio": ("float", 0.5, 3.0),
    "alpha": ("float", 0.5, 0.99),
    "gamma": ("log", 1e-6, 1e-3),
    "dampening": ("float", 0.1, 2.0),
    "kl_weight": ("log", 0.1, 10.0),
}


class TuningRecord(BaseModel):
    """How a configuration was found, and what finding it cost."""

    created_at: datetime
    medforget_version: str = __version__
    checkpoint_sha256: str
    dataset: str
    proxy: str = Field(description="How the proxy forget set was drawn")
    n_proxy_forget: int
    objective: str = "average |gap| to the proxy retrain over retain, forget and validation accuracy and MIA efficacy"
    constraint: str
    fnr_slack: float
    trials: int
    feasible_trials: int
    best_trial: int
    best_average_gap: float
    best_fnr_increase: float | None
    search_space: dict[str, list[Any]]
    tuning_seconds: float = Field(
        description="Wall time of the whole search, including the proxy retrain (its recorded time when the "
        "retrain was reused from the cache)"
    )
    retrain_seconds: float = Field(description="Wall time of the proxy retrain (the cost each request avoids)")
    method_seconds: float = Field(description="Wall time of the best trial's unlearning run")
    break_even_requests: float | None = Field(
        description="Requests after which tuning once + unlearning each is cheaper than retraining each: "
        "tuning_seconds / (retrain_seconds - method_seconds)"
    )


class MethodConfig(BaseModel):
    """A method and its parameters, as ``medforget tune`` writes and ``unlearn --config`` reads it."""

    model_config = ConfigDict(extra="forbid")
    format: str = CONFIG_FORMAT
    method: str
    params: dict[str, Any]
    tuning: TuningRecord | None = None


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
    return MethodConfig.model_json_schema()


def search_space(method: str, only: list[str] | None = None) -> dict[str, tuple[str, float, float]]:
    """The tunable parameters of ``method``: its fields that :data:`SEARCH_SPACE` has a range for."""
    from medforget.methods import get_method

    fields = get_method(method).params.model_fields
    space = {k: v for k, v in SEARCH_SPACE.items() if k in fields}
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


def tune(
    checkpoint: str | Path,
    method: str,
    out: str | Path,
    trials: int = 20,
    fraction: float = 0.2,
    design: str = "random",
    fnr_slack: float = 0.01,
    params: list[str] | None = None,
    fixed: dict[str, Any] | None = None,
    seed: int = 0,
    data_root: str | Path | None = None,
    manifest: str | Path | None = None,
    device: str = "auto",
    force: bool = False,
    key: bytes | None = None,
    show_progress: bool = True,
) -> MethodConfig:
    """Search ``method``'s parameters on a proxy request; write and return the best configuration."""
    import optuna

    from medforget.checkpoint import check_dataset, load_checkpoint
    from medforget.data import load_from_spec
    from medforget.engine import progress_bar, resolve_device, stderr
    from medforget.keys import IdHasher
    from medforget.methods import UnlearnTask, get_method
    from medforget.report import compute_gaps
    from medforget.request import design_request, resolve
    from medforget.unlearn import evaluate, retrain_baseline

    out = Path(out)
    if out.suffix.lower() != ".json":
        raise MedforgetError(f"the tuned config is written as JSON: name it *.json, not {out.name}")
    check_writable(out, force)
    if trials < 1:
        raise MedforgetError("--trials must be at least 1")
    spec = get_method(method)
    if method == "retrain":
        raise MedforgetError("retrain is exact unlearning: there is nothing to tune")
    space = search_space(method, params)
    fixed = dict(fixed or {})
    spec.parse_params(fixed)  # a bad fixed parameter fails now, not after the retrain
    space = {k: v for k, v in space.items() if k not in fixed}  # a fixed parameter is not searched
    if not space:
        raise MedforgetError("every tunable parameter is fixed with --param: nothing left to search")
    start = time.perf_counter()
    ckpt = load_checkpoint(checkpoint, key=key)
    dataset = load_from_spec(ckpt.meta.dataset.spec, data_root, manifest)
    check_dataset(ckpt, dataset)
    request = design_request(dataset, design, fraction, seed)
    resolved = resolve(request, dataset, ckpt.meta.forgotten, key, allow_class_removal=True)
    dev = resolve_device(device)
    forget = dataset.train.subset(resolved.forget_rows)
    retain = dataset.train.subset(resolved.retain_rows)
    original = ckpt.build_model(dev)

    def task() -> UnlearnTask:
        return UnlearnTask(copy.deepcopy(original), forget, retain, dataset, ckpt.meta.train_config, dev, seed, False)

    stderr.print(f"tune {method}: proxy {design} forget set of {len(forget)} samples; retrain baseline first")
    base_model, base_seconds, source, _ = retrain_baseline(ckpt, task(), IdHasher(key), resolved)
    reused_retrain = (base_seconds or 0.0) if "cache" in source else 0.0  # paid earlier, but part of the cost
    sets = {"retain": retain, "forget": forget, "test": dataset.val}  # validation stands in for test
    base_eval = evaluate(base_model, sets, dataset, dev, 5.0, 1.0, seed)
    trial_seconds: dict[int, float] = {}
    native_constraints = hasattr(optuna.trial.Trial, "set_constraint")

    def objective(trial: optuna.Trial) -> float:
        values: dict[str, Any] = dict(fixed)
        for name, (kind, lo, hi) in space.items():
            if kind == "int":
                values[name] = trial.suggest_int(name, int(lo), int(hi))
            else:
                values[name] = trial.suggest_float(name, lo, hi, log=kind == "log")
        parsed = spec.parse_params(values)
        t0 = time.perf_counter()
        model = spec(task(), parsed)
        trial_seconds[trial.number] = time.perf_counter() - t0
        ev = evaluate(model, sets, dataset, dev, 5.0, 1.0, seed)
        _, avg = compute_gaps(ev, base_eval)
        fnr_up = (
            (ev.test.fnr - base_eval.test.fnr) if ev.test.fnr is not None and base_eval.test.fnr is not None else 0.0
        )
        trial.set_user_attr("fnr_increase", fnr_up)
        if native_constraints:  # Optuna >= 5
            trial.set_constraint("fnr_increase", fnr_up - fnr_slack)
        else:
            trial.set_user_attr("constraint", [fnr_up - fnr_slack])
        return float(avg if avg is not None else 1.0)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=min(5, trials),
        **({} if native_constraints else {"constraints_func": lambda t: t.user_attrs.get("constraint", [1.0])}),
    )
    study = optuna.create_study(direction="minimize", sampler=sampler)
    baseline_defaults = {k: v for k, v in spec.params().model_dump().items() if k in space}
    study.enqueue_trial(baseline_defaults)  # the defaults are always one candidate: tuning can only help
    with progress_bar(show_progress) as bar:
        job = bar.add_task(f"tune {method}", total=trials, info="")

        def tick(st: optuna.Study, tr: optuna.trial.FrozenTrial) -> None:
            best = _best(st, fnr_slack)
            info = f"best gap {100 * best.value:.1f} pts" if best is not None and best.value is not None else ""
            bar.update(job, advance=1, info=info)

        study.optimize(objective, n_trials=trials, callbacks=[tick])
    best = _best(study, fnr_slack)
    feasible = [t for t in study.trials if t.user_attrs.get("fnr_increase", 1.0) <= fnr_slack]
    if best is None:
        raise MedforgetError("no trial completed")
    if not feasible:
        stderr.print(
            f"[yellow]warning:[/] no trial kept the FNR within {fnr_slack:.3f} of retrain's; "
            "writing the trial with the smallest FNR increase"
        )
    tuned = {**fixed, **best.params}
    tuned = spec.parse_params(tuned).model_dump()
    seconds = time.perf_counter() - start + reused_retrain
    saved = (base_seconds or 0.0) - trial_seconds[best.number]
    record = TuningRecord(
        created_at=datetime.now(timezone.utc),
        checkpoint_sha256=ckpt.sha256,
        dataset=dataset.name,
        proxy=f"{design} {100 * fraction:g}% of the training split, seed {seed}",
        n_proxy_forget=len(forget),
        constraint=f"validation FNR - retrain's <= {fnr_slack}",
        fnr_slack=fnr_slack,
        trials=len(study.trials),
        feasible_trials=len(feasible),
        best_trial=best.number,
        best_average_gap=round(float(best.value), 5),
        best_fnr_increase=best.user_attrs.get("fnr_increase"),
        search_space={k: list(v) for k, v in space.items()},
        tuning_seconds=round(seconds, 2),
        retrain_seconds=round(base_seconds or 0.0, 2),
        method_seconds=round(trial_seconds[best.number], 2),
        break_even_requests=round(seconds / saved, 2) if saved > 0 else None,
    )
    result = MethodConfig(method=method, params=tuned, tuning=record)
    with atomic_path(out, force) as tmp:
        tmp.write_text(result.model_dump_json(indent=2))
    return result


def _best(study: Any, fnr_slack: float) -> Any:
    """The lowest-gap trial that meets the FNR constraint; without one, the one closest to meeting it."""
    done = [t for t in study.trials if t.value is not None]
    if not done:
        return None
    ok = [t for t in done if t.user_attrs.get("fnr_increase", 1.0) <= fnr_slack]
    if ok:
        return min(ok, key=lambda t: t.value)
    return min(done, key=lambda t: (t.user_attrs.get("fnr_increase", 1.0), t.value))
