"""Many runs on a cluster: connecting to Ray and spreading independent jobs over it.

``study --executor ray`` and ``tune --executor ray`` hand their runs to Ray tasks. A run in a Ray
worker is the same code as a local one; what makes the results the same is that every worker sees
the same files: the cache folder (``$MEDFORGET_CACHE_DIR``), the data and the study's output folder
must be on storage every node mounts at the same path (a local Ray instance has that for free).
The driver's medforget settings (cache folder, data root, key, import path) are passed to the
workers as their environment, with one thread per reserved CPU.

Ray is an optional extra: ``pip install 'medforget[ray]'``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from medforget.config import RayOptions
from medforget.errors import MedforgetError

log = logging.getLogger(__name__)

PASSED_ENV = ("MEDFORGET_CACHE_DIR", "MEDFORGET_DATA_ROOT", "MEDFORGET_KEY", "MEDFORGET_KEY_FILE", "PYTHONPATH")


def import_ray() -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise MedforgetError("--executor ray needs Ray: pip install 'medforget[ray]'") from None
    return ray


def worker_env(options: RayOptions) -> dict[str, str]:
    """The environment of medforget's Ray workers: the driver's medforget settings, one thread per reserved CPU."""
    env = {k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)}
    env["OMP_NUM_THREADS"] = str(max(1, int(options.cpus_per_run)))
    return env


@contextmanager
def session(options: RayOptions) -> Iterator[Any]:
    """Connected to ``options.address`` (or a fresh local instance) for this block; disconnected after."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=options.address,
            num_cpus=options.num_cpus if options.address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": worker_env(options)},
        )
        log.info("ray: %s CPUs, %s GPUs", ray.cluster_resources().get("CPU", 0), ray.cluster_resources().get("GPU", 0))
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def run_all(ray: Any, fn: Callable[[str], str], payloads: list[str], options: RayOptions) -> Iterator[str]:
    """Run ``fn(payload)`` for every payload as Ray tasks with the run's reserved resources; yield results as
    they finish (a failed task raises here, after the others were cancelled)."""
    remote = ray.remote(num_cpus=options.cpus_per_run, num_gpus=options.gpus_per_run, max_retries=0)(fn)
    pending = [remote.remote(p) for p in payloads]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


__all__ = ["import_ray", "run_all", "session", "worker_env"]
