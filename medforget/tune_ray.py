"""``medforget tune --executor ray``: Ray Tune runs the trials, the same Optuna sampler chooses them.

The proxy request and its retrain are made on the driver (and cached), exactly as ``tune`` does;
each trial then runs in a Ray worker: it opens the same proxy from the checkpoint and the cache,
unlearns it with the trial's parameters and reports the gap and the FNR increase. The parameters
come from the driver's Optuna study (TPE, seeded, the method's defaults first, the FNR constraint)
through a Ray Tune searcher that asks and tells that study, so the written configuration and its
tuning record are those of a local search. With one trial at a time the trials are the local ones;
with several at once TPE proposes each from the trials finished so far, as any parallel TPE does.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from medforget import progress
from medforget.config import MethodConfig, RayOptions, TuneSettings
from medforget.data import DataPaths
from medforget.fileio import cache_dir
from medforget.tune import _check, _Proxy, _proxy, _record, mark, new_study, score, suggest, write_config


class _TrialJob(BaseModel):
    """What a Ray worker needs to rebuild the proxy: the checkpoint, the tuning settings, the data and the key."""

    checkpoint: str
    settings: TuneSettings
    data: DataPaths
    key_hex: str | None = None


_PROXIES: dict[str, _Proxy] = {}


def run_trial(config: dict[str, Any], job: str) -> None:
    """A Ray Tune trial: unlearn the proxy with ``config`` and report gap, FNR increase and the method's time."""
    from ray import tune

    if job not in _PROXIES:  # one proxy per worker process, however many trials it runs
        j = _TrialJob.model_validate_json(job)
        key = bytes.fromhex(j.key_hex) if j.key_hex else None
        _PROXIES[job] = _proxy(j.checkpoint, j.settings, j.data, key)
    settings = _TrialJob.model_validate_json(job).settings
    gap, fnr_up, seconds = score(_PROXIES[job], settings, config)
    tune.report({"gap": gap, "fnr_increase": None if math.isinf(fnr_up) else fnr_up, "method_seconds": seconds})


def _not_restorable() -> None:
    return None


def _searcher(study: Any, space: dict[str, Any], settings: TuneSettings, seconds: dict[int, float], bar: Any) -> Any:
    from ray.tune.search import Searcher

    class SameSampler(Searcher):
        """Ray Tune's searcher interface over the driver's Optuna study (ask on suggest, tell on completion)."""

        def __init__(self) -> None:
            super().__init__(metric="gap", mode="min")
            self.asked: dict[str, Any] = {}

        def __reduce__(self) -> tuple:
            # Ray Tune pickles its state for a later restore; the study lives in this driver and is not restored.
            return (_not_restorable, ())

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            trial = study.ask()
            self.asked[trial_id] = trial
            return suggest(trial, space, settings.fixed)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            import optuna

            trial = self.asked.pop(trial_id)
            if error or not result or "gap" not in result:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return
            up = result["fnr_increase"]
            mark(trial, math.inf if up is None else up, settings.fnr_slack)
            seconds[trial.number] = result["method_seconds"]
            study.tell(trial, result["gap"])
            bar.advance(1, f"trial {trial.number}: gap {100 * result['gap']:.1f} pts")

    return SameSampler()


def tune_on_ray(
    checkpoint: str | Path,
    settings: TuneSettings,
    out: str | Path,
    data: DataPaths | None = None,
    key: bytes | None = None,
    force: bool = False,
    options: RayOptions | None = None,
) -> MethodConfig:
    """:func:`medforget.tune.tune` with its trials run by Ray Tune on a cluster (or a local Ray instance).

    Args:
        checkpoint: the trained model (on storage every Ray node mounts).
        settings: method, trials, proxy design and size, FNR constraint, search space, seed.
        out: the JSON config to write.
        data: where the data and manifest are, as the workers see them.
        key: the hospital's secret, for a keyed checkpoint (passed to the workers).
        force: replace an existing ``out``.
        options: the cluster's address and each trial's resources.

    Returns:
        The tuned parameters with their tuning record.
    """
    from medforget.cluster import session

    out, options, data = Path(out), options or RayOptions(), data or DataPaths()
    space = _check(settings, out, force)
    start = time.perf_counter()
    proxy = _proxy(checkpoint, settings, data, key)  # the proxy retrain is trained (or found) once, here
    study = new_study(settings, space)
    seconds: dict[int, float] = {}
    job = _TrialJob(checkpoint=str(Path(checkpoint).resolve()), settings=settings, data=data,
                    key_hex=key.hex() if key else None).model_dump_json()  # fmt: skip
    with session(options, preload=(__name__,)), progress.track(f"tune {settings.method} (ray)", settings.trials) as bar:
        from ray import tune

        trainable = tune.with_resources(
            tune.with_parameters(run_trial, job=job), {"cpu": options.cpus_per_run, "gpu": options.gpus_per_run}
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=_searcher(study, space, settings, seconds, bar), num_samples=settings.trials
            ),
            # Ray Tune's own experiment state, in the cache folder every node shares
            run_config=tune.RunConfig(storage_path=str(cache_dir() / "ray-tune"), verbose=0),
        )
        with contextlib.redirect_stdout(sys.stderr):  # Ray Tune prints tables: stdout is for the result alone
            tuner.fit()
    return write_config(_record(study, settings, space, proxy, seconds, time.perf_counter() - start), out, force)


__all__ = ["run_trial", "tune_on_ray"]
