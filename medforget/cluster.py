"""Many runs on a cluster: connecting to Ray and spreading independent jobs over it.

``study --executor ray`` and ``tune --executor ray`` hand their runs to Ray tasks. A run in a Ray
worker is the same code as a local one; what makes the results the same is that every worker sees
the same files: the cache folder (``$MEDFORGET_CACHE_DIR``), the data and the study's output folder
must be on storage every node mounts at the same path (a local Ray instance has that for free).
The driver's medforget settings (cache folder, data root, key, import path) are passed to the
workers as their environment, with one thread per reserved CPU.

A local instance started here costs as little as Ray allows (``benchmarks/ray_study.py``): its
workers inherit that environment from the raylet (with a job ``runtime_env`` Ray starts another
worker for the job instead of using the one it started ahead: 0.5-1 s before the first task), they
run at the driver's priority (Ray lowers its workers' by 15 by default, so on a busy machine a
grid ran slower than the local runner), and its autoscaler monitor is ended before shutdown (which
otherwise waits a second for it). A running cluster gets the environment as the job's ``runtime_env``.

Most of what a fresh local instance costs is waiting: its processes starting (3-5 s) and its first
worker importing torch and medforget (3-4 s) before it can run anything. :func:`starting` begins
both at once, as the command starts: ``ray.init`` runs in a thread of its own while the driver
imports torch and loads its data, and the workers Ray starts ahead import the module their tasks
run (``preload``) before they register, so the first task finds one ready.

Ray is an optional extra: ``pip install 'medforget[ray]'``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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


def connect(ray: Any, options: RayOptions, preload: tuple[str, ...] = ()) -> bool:
    """Connect to ``options.address``, or start a local instance, unless this process is connected already.

    Args:
        ray: the ``ray`` module.
        options: the cluster's address (None: a fresh local instance with ``options.num_cpus`` CPUs).
        preload: modules a local instance's workers import as they start, before they take a task.

    Returns:
        Whether this call connected (the caller then disconnects, with ``ray.shutdown()``).
    """
    if ray.is_initialized():
        return False
    env = worker_env(options)
    if options.address is not None or os.environ.get("RAY_ADDRESS"):
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env})  # fmt: skip
    else:
        with _environ(env):  # the raylet starts now and passes this environment to every worker it starts
            ray.init(num_cpus=options.num_cpus, include_dashboard=False, log_to_driver=False,
                     _system_config={"worker_niceness": 0, "preload_python_modules": list(preload)})  # fmt: skip
    return True


@contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    """This process's environment with ``env`` set, for the block (processes started in it keep it)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _Start:
    """:func:`connect` in a thread of its own, which lives until :meth:`close`.

    Ray ties the processes it starts to the thread that started them (they are killed when it ends),
    so the thread waits, once connected, until the session is over. While ``ray.init`` runs, this process's
    environment holds the workers' settings (:func:`connect`), so torch, imported meanwhile by the driver,
    takes the workers' thread count: the driver only hands out runs and collects their results.
    """

    def __init__(self, options: RayOptions, preload: tuple[str, ...]) -> None:
        self.options, self.connected, self.error = options, False, None
        self._held: list[logging.LogRecord] = []
        self._done, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, args=(preload,), name="medforget-ray-start", daemon=True)
        self._thread.start()

    def _run(self, preload: tuple[str, ...]) -> None:
        held: list[logging.LogRecord] = []
        try:
            ray_log = logging.getLogger("ray")
            ray = import_ray()
            saved, ray_log.handlers = ray_log.handlers, [_Hold(held)]
            try:
                self.connected = connect(ray, self.options, preload)
            finally:
                ray_log.handlers = saved
        except BaseException as exc:  # raised in the caller's thread by result()
            self.error = exc
        finally:
            # Ray warns that it sets no SIGTERM handler outside the main thread; none is needed: on SIGTERM
            # this process ends, and the processes Ray started go with this thread.
            self._held = [r for r in held if "SIGTERM handler is not set" not in r.getMessage()]
            self._done.set()
        self._release.wait()

    def result(self) -> bool:
        """Wait for the connection; whether this process started it (or the error that stopped it).

        Ray's own start-up messages are shown now, when the run goes on to use Ray: bad input found while
        Ray was starting ends the command with one line, not with Ray's.
        """
        self._done.wait()
        for record in self._held:
            logging.getLogger("ray").handle(record)
        self._held = []
        if self.error is not None:
            raise self.error
        return self.connected

    def close(self) -> None:
        """Disconnect if this thread connected (a Ray this process found running stays up), end the thread."""
        self._done.wait()
        if self.connected and self.error is None:
            _shutdown(import_ray())
        self._release.set()
        self._thread.join()


class _Hold(logging.Handler):
    """Keeps log records instead of printing them."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_EARLY: _Start | None = None
"""The connection :func:`starting` began, until a :func:`session` takes it over."""


@contextmanager
def starting(options: RayOptions | None, preload: tuple[str, ...] = ()) -> Iterator[None]:
    """Begin connecting now, in the background, so that Ray starts while this process does its own imports.

    A :func:`session` with the same options inside the block takes the connection over (and ends it);
    one that never comes (bad input found after the start) leaves it to this block's end to close, and
    Ray's start-up messages are then never shown: the command's one line says what was wrong.

    Args:
        options: the cluster's address or the local instance's CPUs, as the session will use them (None: the
            command runs without Ray, and the block does nothing).
        preload: modules the workers of a local instance import as they start (the tasks' module).
    """
    global _EARLY
    if options is None:
        yield
        return
    early = _EARLY = _Start(options, preload)
    try:
        yield
    finally:
        if _EARLY is early:  # not taken over
            _EARLY = None
            early.close()


@contextmanager
def session(options: RayOptions, preload: tuple[str, ...] = ()) -> Iterator[Any]:
    """Connected to ``options.address`` (or a fresh local instance) for this block; disconnected after.

    Args:
        options: the cluster's address and the local instance's CPUs.
        preload: modules the workers of a local instance import as they start (the tasks' module).
    """
    global _EARLY
    early, _EARLY = _EARLY, None
    if early is not None and early.options != options:  # started for other options: not this session's
        early.close()
        early = None
    ray = import_ray()
    started = early.result() if early is not None else connect(ray, options, preload)
    try:
        resources = ray.cluster_resources()
        log.info("ray: %s CPUs, %s GPUs", resources.get("CPU", 0), resources.get("GPU", 0))
        yield ray
    finally:
        if early is not None:
            early.close()
        elif started:
            _shutdown(ray)


def _shutdown(ray: Any) -> None:
    _stop_monitor(ray)
    ray.shutdown()


def _stop_monitor(ray: Any) -> None:
    """End a local instance's autoscaler monitor before ``ray.shutdown()``, which otherwise waits a second for it.

    On SIGTERM the monitor reports its end to the GCS, which shutdown has stopped just before, so Ray
    waits out its one-second grace and kills it anyway. A fixed local instance has nothing to scale;
    this is that kill, without the wait. Only a head node this process started has a monitor to end.
    """
    node = getattr(getattr(getattr(ray, "_private", None), "worker", None), "_global_node", None)
    if node is not None and getattr(node, "head", False) and hasattr(node, "kill_monitor"):
        with suppress(Exception):  # a Ray without this internal: shutdown ends the monitor as before
            node.kill_monitor(check_alive=False)


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


__all__ = ["connect", "import_ray", "run_all", "session", "starting", "worker_env"]
