"""``study`` and ``tune`` with ``--executor ray`` on a local 2-CPU Ray instance (skipped without Ray).

The grid and the proxy are the ones of ``test_study.py`` and ``test_tune.py``, so in a full run their
originals and retrains come from the session's cache, as they would on a cluster sharing its cache.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from medforget.cli import app
from medforget.config import RayOptions, TuneSettings
from medforget.study import load_study_config, run_study

ray = pytest.importorskip("ray")
pytest.importorskip("ray.tune")

TIMING = ("seconds", "time_", "speedup", "_s")
STUDY = """
name = "tiny-ray"
seeds = [0]
retrains = 2
methods = [{method = "finetune", label = "ft-1", params = {epochs = 1}}]
[[datasets]]
name = "breastmnist"
train = { arch = "resnet10s", epochs = 2, batch_size = 32, lr = 0.001, seed = 0 }
[[forget]]
name = "random20"
design = "random"
fraction = 0.2
"""


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with 2 CPUs for the module, started as medforget starts one (its runs then use it)."""
    from medforget.cluster import connect

    assert connect(ray, RayOptions(num_cpus=2))
    yield
    ray.shutdown()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in csv.DictReader(fh)]


def test_study_on_ray_gives_the_local_results_from_the_same_cache_and_resumes(local_ray, tmp_path: Path) -> None:
    from medforget.study.ray_runner import run_study_on_ray

    (tmp_path / "s.toml").write_text(STUDY)
    cfg = load_study_config(tmp_path / "s.toml")
    on_ray = run_study_on_ray(cfg, tmp_path / "ray", plots=False)
    assert on_ray.timings.runs_done == 1 and (tmp_path / "ray" / "runs" / "breastmnist" / "random20").is_dir()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the Ray workers, so that float sums run in the same order
    try:
        local = run_study(cfg, tmp_path / "local", plots=False)
    finally:
        torch.set_num_threads(threads)
    assert local.timings.originals_trained == 0  # the original the Ray task trained, from the shared cache
    assert _rows(tmp_path / "ray" / "results.csv") == _rows(tmp_path / "local" / "results.csv")
    again = CliRunner().invoke(app, ["study", str(tmp_path / "s.toml"), "--out", str(tmp_path / "ray"),
                                     "--executor", "ray", "--no-plots", "--json", "--quiet"])  # fmt: skip
    assert again.exit_code == 0, again.stderr
    timings = json.loads(again.stdout)["timings"]
    assert (timings["runs_done"], timings["runs_reused"], timings["originals_trained"]) == (0, 1, 0)


def test_tune_on_ray_drives_the_same_optuna_sampler(local_ray, breast_ckpt: Path, tmp_path: Path) -> None:
    """One trial at a time (each reserves both CPUs), the Ray search is the local search, trial for trial."""
    from medforget.tune import tune
    from medforget.tune_ray import tune_on_ray

    settings = TuneSettings(method="salun", trials=2, fraction=0.1, search=["lr"], fixed={"epochs": 1}, device="cpu")
    on_ray = tune_on_ray(breast_ckpt, settings, tmp_path / "ray.json", options=RayOptions(cpus_per_run=2))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        local = tune(breast_ckpt, settings, tmp_path / "local.json")
    finally:
        torch.set_num_threads(threads)
    assert on_ray.tuning is not None and local.tuning is not None
    assert on_ray.params == local.params
    assert on_ray.tuning.trials == 2 and on_ray.tuning.best_trial == local.tuning.best_trial
    assert on_ray.tuning.best_average_gap == local.tuning.best_average_gap
    assert json.loads((tmp_path / "ray.json").read_text())["tuning"]["search_space"] == {"lr": ["log", 1e-5, 1e-2]}


START_IN_BACKGROUND = """
import sys, threading
from medforget.cluster import session, starting
from medforget.config import RayOptions
import ray

TASKS = "medforget.study.ray_runner"
options = RayOptions(num_cpus=1)
try:  # bad input found after Ray began starting: the block's end stops it
    with starting(options, (TASKS,)):
        raise ValueError("bad config")
except ValueError:
    pass
print("after bad input:", ray.is_initialized(), [t.name for t in threading.enumerate() if "ray-start" in t.name])
print("-- bad input above, a run below --", file=sys.stderr, flush=True)
with starting(options, (TASKS,)):
    driver = TASKS in sys.modules
    with session(options, (TASKS,)) as r:
        worker = r.get(r.remote(lambda: TASKS in __import__("sys").modules).remote())
        cpus = r.cluster_resources()["CPU"]
print("session:", driver, worker, cpus)
print("after session:", ray.is_initialized(), [t.name for t in threading.enumerate() if "ray-start" in t.name])
"""


def test_a_local_instance_starts_in_the_background_and_its_worker_preloads_the_tasks_module(tmp_path: Path) -> None:
    """``starting`` is what the CLI does with --executor ray: Ray starts while the driver imports; the worker
    imports the tasks' module before it takes one; the instance ends with the session, or with the block when
    bad input stops the command first (and then Ray's start-up messages are never shown). Run in a process of
    its own (this module's instance is already up)."""
    import subprocess
    import sys

    (tmp_path / "start.py").write_text(START_IN_BACKGROUND)
    done = subprocess.run([sys.executable, str(tmp_path / "start.py")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "after bad input: False []",
        "session: False True 1.0",
        "after session: False []",
    ]
    bad_input, run = done.stderr.split("-- bad input above, a run below --")
    assert "Started a local Ray instance" not in bad_input  # the command's error is its only line
    assert "Started a local Ray instance" in run  # shown once the run goes on to use Ray
